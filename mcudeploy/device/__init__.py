"""The device side of a run: one session with a device (session.py), the serial protocol it speaks
(protocol.py, docs/protocol.md) and the runners that start a target and reach its UART (runners/)."""

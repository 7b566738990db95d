"""A real board's UART through a serial port: the debug probe's USB virtual COM port (found by
the board's USB VID:PID), or any port given with --port, as a device path or as a pyserial URL
(`rfc2217://HOST:PORT?ign_set_control` for a port that ser2net serves over the network,
`socket://HOST:PORT` for a raw TCP port). The firmware must already be on the board (`mcudeploy
flash`); the run's HELLO checks that it is the model just built."""

from __future__ import annotations

import serial
from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo

from mcudeploy.boards import Board
from mcudeploy.device.runners.base import Runner
from mcudeploy.errors import RunnerError


class SerialRunner(Runner):
    """Opens `port` (default: the one `find_port` picks) at the board's baud rate."""

    def __init__(self, board: Board, port: str | None = None) -> None:
        self.board = board
        self.port = port

    def start(self) -> serial.SerialBase:
        return open_port(self.port or find_port(self.board, list_ports.comports()), self.board.baudrate)

    def stop(self) -> None:
        """Nothing to stop: the board keeps running (the base class closes the port)."""

    def exit_status(self, timeout: float = 5.0) -> int:
        """0: a board has no exit status to read; its answer to EXIT is all a serial port tells."""
        del timeout
        return 0


def open_port(url: str, baudrate: int) -> serial.SerialBase:
    """An open pyserial port for a device path or a URL (`rfc2217://`, `socket://`, ...), with
    nothing waiting in its input; a RunnerError naming the port if it cannot be opened."""
    try:
        port = serial.serial_for_url(url, baudrate, timeout=0.05, exclusive=True)
        port.reset_input_buffer()
    except (serial.SerialException, OSError, ValueError) as exc:
        raise RunnerError(f"cannot open serial port {url}: {exc}") from exc
    return port


def find_port(board: Board, ports: list[ListPortInfo]) -> str:
    """The one port in `ports` (pyserial's `list_ports.comports()`) whose USB VID:PID is the
    board's probe's; a RunnerError when there is none or more than one."""
    probe = board.probe
    if probe is None:
        raise RunnerError(f"board {board.name} has no [probe] table to find its serial port by; "
                          "pass --port")
    usb = f"{probe.usb_vid:04x}:{probe.usb_pid:04x}"
    found = sorted(p.device for p in ports if (p.vid, p.pid) == (probe.usb_vid, probe.usb_pid))
    if not found:
        seen = ", ".join(sorted(p.device for p in ports)) or "none"
        raise RunnerError(f"no serial port of a {probe.name} (USB {usb}) for board {board.name} "
                          f"(ports: {seen}); connect the board or pass --port")
    if len(found) > 1:
        raise RunnerError(f"several {probe.name} ports (USB {usb}): {', '.join(found)}; "
                          "choose one with --port")
    return found[0]

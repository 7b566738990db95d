"""The runner interface: start a target, hand out a pyserial port to it, always clean up."""

from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from types import TracebackType

import serial

from mcudeploy.errors import LinkError


class Runner(ABC):
    """A context manager: `with runner as port:` starts the target and yields its serial port;
    leaving the block (normally, by exception or by KeyboardInterrupt) closes the port and reaps
    every process the runner started. A LinkError raised in the block after the target stopped
    by itself is re-raised with the runner's account of why (e.g. the emulator's last words)."""

    _port: serial.SerialBase | None = None

    def __enter__(self) -> serial.SerialBase:
        try:
            self._port = self.start()
        except BaseException:
            self.stop()
            raise
        return self._port

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        reason = self.stopped_reason() if type(exc) is LinkError else None
        try:
            if self._port is not None:
                self._port.close()
                self._port = None
        finally:
            self.stop()
        if reason:
            raise LinkError(f"{exc} ({reason})") from exc

    @abstractmethod
    def start(self) -> serial.SerialBase:
        """Start the target; returns an open port to its UART."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the target and reap its processes; safe to call more than once."""

    def stopped_reason(self) -> str | None:
        """Why the target stopped by itself, if it did (None: still running or unknown)."""
        return None

    @abstractmethod
    def exit_status(self, timeout: float = 5.0) -> int:
        """Wait for the target to stop by itself (after EXIT or a fault) and return its status."""


def reap(process: subprocess.Popen[bytes] | None, grace: float = 2.0) -> None:
    """Terminate `process` if it still runs, kill it after `grace` seconds, and wait for it."""
    if process is None:
        return
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()

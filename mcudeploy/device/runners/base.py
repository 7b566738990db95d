"""The runner interface: start a target, hand out a pyserial port to it, always clean up."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import serial

from mcudeploy.errors import DeviceFault, LinkError, RunnerError


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


class SimulatorRunner(Runner):
    """A runner whose target is one local simulator process (`process`), named `simulator` in
    messages."""

    simulator: str = "the simulator"
    process: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        reap(self.process)

    def exit_status(self, timeout: float = 5.0) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise DeviceFault(f"{self.simulator} did not stop within {timeout} s") from None


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


def find_executable(name: str, hint: str) -> str:
    """The path of `name` on PATH, or a RunnerError saying how to get it."""
    found = shutil.which(name)
    if found is None:
        raise RunnerError(f"{name} is not on PATH; {hint}")
    return found


def free_port() -> int:
    """A local TCP port nobody listens on right now (an emulator binds it next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect_socket(tcp_port: int, process: subprocess.Popen[bytes], timeout: float,
                   describe_exit: Callable[[int], str]) -> serial.SerialBase:
    """A pyserial port on 127.0.0.1:`tcp_port` once the `process` serving it listens. A LinkError
    (worded by `describe_exit`) if the process exits first, or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return serial.serial_for_url(f"socket://127.0.0.1:{tcp_port}", timeout=0.05)
        except serial.SerialException:
            pass
        status = process.poll()
        if status is not None:
            raise LinkError(describe_exit(status))
        if time.monotonic() > deadline:
            raise LinkError(f"nothing listened on local port {tcp_port} within {timeout} s")
        time.sleep(0.01)


def log_tail(path: Path, lines: int = 3) -> str:
    """The last lines of a log file, on one line ("" if it cannot be read)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())

"""Run firmware on QEMU; the command line comes from the board file's [qemu] table only."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import serial

from mcudeploy.boards import Board
from mcudeploy.errors import BoardError, DeviceFault, LinkError
from mcudeploy.runners.base import Runner, reap

_BIND_TRIES = 3
_EXIT_GRACE_SECONDS = 0.5


class QemuRunner(Runner):
    """QEMU with the board's UART on a local TCP socket (QEMU waits for us before booting).

    `icount=True` adds `-icount shift=0`: one instruction per virtual nanosecond, so SysTick
    ticks count instructions exactly. QEMU's output goes to `log_path` (default: beside the ELF).
    `process` is the running QEMU (None before `start`).
    """

    def __init__(
        self, board: Board, elf: Path, *, icount: bool = False, log_path: Path | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        if board.qemu is None:
            raise BoardError(f"board {board.name} has no [qemu] table")
        self.board = board
        self.elf = Path(elf)
        self.icount = icount
        self.log_path = Path(log_path) if log_path else self.elf.with_suffix(".qemu.log")
        self.connect_timeout = connect_timeout
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, tcp_port: int) -> list[str]:
        """The qemu-system-arm command line serving the UART on `tcp_port`."""
        assert self.board.qemu is not None
        # nodelay=on: without it Nagle's algorithm holds each small answer back ~40 ms.
        serial_port = f"tcp:127.0.0.1:{tcp_port},server=on,wait=on,nodelay=on"
        cmd = ["qemu-system-arm", "-M", self.board.qemu.machine, "-display", "none",
               "-monitor", "none", "-serial", serial_port]
        if self.board.semihosting:
            cmd.append("-semihosting")
        if self.icount:
            cmd += ["-icount", "shift=0"]
        return [*cmd, "-kernel", str(self.elf)]

    def start(self) -> serial.SerialBase:
        for _ in range(_BIND_TRIES):
            tcp_port = _free_port()
            with open(self.log_path, "wb") as log:
                self.process = subprocess.Popen(
                    self.command(tcp_port), stdin=subprocess.DEVNULL, stdout=log, stderr=log
                )
            port = self._connect(tcp_port)
            if port is not None:
                return port
            reap(self.process)
        raise LinkError(f"QEMU could not bind a local TCP port in {_BIND_TRIES} tries")

    def _connect(self, tcp_port: int) -> serial.SerialBase | None:
        """The port once QEMU listens; None if QEMU could not bind `tcp_port`."""
        assert self.process is not None
        deadline = time.monotonic() + self.connect_timeout
        while True:
            try:
                return serial.serial_for_url(f"socket://127.0.0.1:{tcp_port}", timeout=0.05)
            except serial.SerialException:
                pass
            status = self.process.poll()
            if status is not None:
                tail = self.log_tail()
                if "Failed to bind" in tail or "in use" in tail:
                    return None
                raise LinkError(f"QEMU exited (status {status}) before serving its UART: {tail}")
            if time.monotonic() > deadline:
                raise LinkError(f"QEMU did not open its UART socket in {self.connect_timeout} s")
            time.sleep(0.01)

    def stop(self) -> None:
        reap(self.process)

    def exit_status(self, timeout: float = 5.0) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise DeviceFault(f"QEMU did not stop within {timeout} s") from None

    def stopped_reason(self) -> str | None:
        if self.process is None:
            return None
        try:
            status = self.process.wait(_EXIT_GRACE_SECONDS)  # the socket closes before the exit
        except subprocess.TimeoutExpired:
            return None
        tail = self.log_tail()
        return f"QEMU exited with status {status}" + (f": {tail}" if tail else "")

    def log_tail(self, lines: int = 3) -> str:
        """The last lines of QEMU's output, on one line."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

"""Run firmware on QEMU; the command line comes from the board file's [qemu] table only."""

from __future__ import annotations

import subprocess
from pathlib import Path

import serial

from mcudeploy.boards import Board
from mcudeploy.device.runners.base import (
    SimulatorRunner,
    connect_socket,
    find_executable,
    free_port,
    log_tail,
    reap,
)
from mcudeploy.errors import BoardError, LinkError

QEMU = "qemu-system-arm"
_BIND_TRIES = 3
_EXIT_GRACE_SECONDS = 0.5


class QemuRunner(SimulatorRunner):
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
        self.simulator = "QEMU"

    def command(self, serial_backend: str) -> list[str]:
        """The qemu-system-arm command line with the UART on `serial_backend` (QEMU's -serial
        syntax: `tcp:...`, `pty`, `stdio`)."""
        assert self.board.qemu is not None
        cmd = [QEMU, "-M", self.board.qemu.machine, "-display", "none", "-monitor", "none",
               "-serial", serial_backend]
        if self.board.semihosting:
            cmd.append("-semihosting")
        if self.icount:
            cmd += ["-icount", "shift=0"]
        return [*cmd, "-kernel", str(self.elf)]

    def start(self) -> serial.SerialBase:
        find_executable(QEMU, "install it (Debian: apt-get install qemu-system-arm)")
        for _ in range(_BIND_TRIES):
            tcp_port = free_port()
            # nodelay=on: without it Nagle's algorithm holds each small answer back ~40 ms.
            backend = f"tcp:127.0.0.1:{tcp_port},server=on,wait=on,nodelay=on"
            with open(self.log_path, "wb") as log:
                self.process = subprocess.Popen(
                    self.command(backend), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True,  # a terminal Ctrl-C reaches us, and we reap QEMU
                )
            try:
                return connect_socket(tcp_port, self.process, self.connect_timeout, self._exited)
            except LinkError:
                tail = log_tail(self.log_path)
                if "Failed to bind" not in tail and "in use" not in tail:
                    raise
            reap(self.process)
        raise LinkError(f"QEMU could not bind a local TCP port in {_BIND_TRIES} tries")

    def _exited(self, status: int) -> str:
        return f"QEMU exited (status {status}) before serving its UART: {log_tail(self.log_path)}"

    def stopped_reason(self) -> str | None:
        if self.process is None:
            return None
        try:
            status = self.process.wait(_EXIT_GRACE_SECONDS)  # the socket closes before the exit
        except subprocess.TimeoutExpired:
            return None
        tail = log_tail(self.log_path)
        return f"QEMU exited with status {status}" + (f": {tail}" if tail else "")

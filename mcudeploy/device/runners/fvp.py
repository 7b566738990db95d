"""Run firmware on an Arm Fixed Virtual Platform (e.g. FVP_Corstone_SSE-300_Ethos-U55).

The command line comes from the board file's [fvp] table: the model's executable, the telnet
terminal wired to the protocol's UART, and `-C` parameters. The terminal runs in raw mode (no
telnet negotiation bytes in the binary stream) on a local port that the FVP announces on its
output; the model's `uartN.out_file` option would only record the device's side, and its
`shutdown_on_eot` must stay off, since 0x04 is an ordinary byte of the protocol.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import serial

from mcudeploy.boards import Board
from mcudeploy.device.runners.base import (
    SimulatorRunner,
    connect_socket,
    find_executable,
    free_port,
    log_tail,
)
from mcudeploy.errors import BoardError, InputError, LinkError

_LISTENING = re.compile(r"(\w+): Listening for serial connection on port (\d+)")


class FvpRunner(SimulatorRunner):
    """An FVP serving the board's UART on a local TCP port.

    `executable` is the model to run (`--fvp`); by default the board's [fvp] model on PATH. The
    FVP's output goes to `log_path` (default: beside the ELF).
    """

    def __init__(self, board: Board, elf: Path, *, executable: Path | None = None,
                 log_path: Path | None = None, connect_timeout: float = 60.0) -> None:
        if board.fvp is None:
            raise BoardError(f"board {board.name} has no [fvp] table")
        self.board = board
        self.elf = Path(elf)
        self.executable = executable
        self.log_path = Path(log_path) if log_path else self.elf.with_suffix(".fvp.log")
        self.connect_timeout = connect_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.simulator = "the FVP"

    def model(self) -> str:
        """The FVP executable: `--fvp` if given (it must exist), else the board's model on PATH."""
        assert self.board.fvp is not None
        if self.executable is None:
            return find_executable(self.board.fvp.model, "install Arm's Corstone FVP (a free download "
                                   "from Arm) and add its models directory to PATH, or pass --fvp PATH")
        if not self.executable.is_file() or not os.access(self.executable, os.X_OK):
            raise InputError(f"--fvp {self.executable}: not an executable file")
        return str(self.executable)

    def command(self, model: str, tcp_port: int) -> list[str]:
        """The FVP command line loading the ELF, with the UART's terminal on `tcp_port`."""
        assert self.board.fvp is not None
        terminal = self.board.fvp.terminal
        settings = {
            f"{terminal}.start_telnet": 0,   # no xterm
            f"{terminal}.mode": "raw",
            f"{terminal}.start_port": tcp_port,
            **self.board.fvp.parameters,
        }
        cmd = [model, "-a", str(self.elf)]
        for key, value in settings.items():
            cmd += ["-C", f"{key}={value}"]
        return cmd

    def start(self) -> serial.SerialBase:
        model = self.model()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command(model, free_port()),
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            start_new_session=True)
        return connect_socket(self._announced_port(), self.process, self.connect_timeout, self._exited)

    def _announced_port(self) -> int:
        """The port the FVP says its terminal listens on (the next free one if ours was taken)."""
        assert self.process is not None and self.board.fvp is not None
        name = self.board.fvp.terminal.rsplit(".", 1)[-1]
        deadline = time.monotonic() + self.connect_timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
            ports = [int(port) for term, port in _LISTENING.findall(text) if term == name]
            if ports:
                return ports[0]
            status = self.process.poll()
            if status is not None:
                raise LinkError(self._exited(status))
            time.sleep(0.05)
        raise LinkError(f"the FVP did not announce {name}'s port within {self.connect_timeout} s")

    def _exited(self, status: int, when: str = " before serving its UART") -> str:
        return f"the FVP exited (status {status}){when}: {log_tail(self.log_path)}"

    def stopped_reason(self) -> str | None:
        if self.process is None or self.process.poll() is None:
            return None
        return self._exited(self.process.returncode, when="")

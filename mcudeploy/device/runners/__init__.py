"""Runners: how firmware gets onto a target and how its UART is reached."""

from __future__ import annotations

from pathlib import Path

from mcudeploy.boards import Board
from mcudeploy.device.runners.base import Runner
from mcudeploy.device.runners.fvp import FvpRunner
from mcudeploy.device.runners.labgrid import LabgridRunner, Place
from mcudeploy.device.runners.qemu import QemuRunner
from mcudeploy.device.runners.serial import SerialRunner
from mcudeploy.errors import BoardError, InputError

RUNNERS = ("qemu", "fvp", "serial", "labgrid")


def make_runner(name: str, board: Board, elf: Path, *, icount: bool = False, port: str | None = None,
                fvp: Path | None = None, place: Place | None = None) -> Runner:
    """The runner `name` for `board`, refusing one the board does not list. `icount` is QEMU's
    instruction counting, `port` the serial runner's port, `fvp` the FVP executable, `place` the
    labgrid place acquired for this runner."""
    if name not in board.runners:
        raise BoardError(f"board {board.name} cannot use runner {name!r} "
                         f"(its runners: {', '.join(board.runners)})")
    if name == "qemu":
        return QemuRunner(board, elf, icount=icount)
    if name == "fvp":
        return FvpRunner(board, elf, executable=fvp)
    if name == "serial":
        return SerialRunner(board, port)
    if name == "labgrid":
        if place is None:
            raise InputError("--runner labgrid needs a place: --place NAME")
        return LabgridRunner(board, elf, place)
    raise BoardError(f"runner {name!r} is not available (available: {', '.join(RUNNERS)})")

"""Runners: how firmware gets onto a target and how its UART is reached."""

from __future__ import annotations

from pathlib import Path

from mcudeploy.boards import Board
from mcudeploy.errors import BoardError
from mcudeploy.runners.base import Runner
from mcudeploy.runners.qemu import QemuRunner

RUNNERS = ("qemu",)


def make_runner(name: str, board: Board, elf: Path, *, icount: bool = False) -> Runner:
    """The runner `name` for `board`, refusing one the board does not list."""
    if name not in board.runners:
        raise BoardError(f"board {board.name} cannot use runner {name!r} "
                         f"(its runners: {', '.join(board.runners)})")
    if name == "qemu":
        return QemuRunner(board, elf, icount=icount)
    raise BoardError(f"runner {name!r} is not available (available: {', '.join(RUNNERS)})")

"""Runners: how firmware gets onto a target and how its UART is reached; `Devices`: which runner
each device of a run gets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mcudeploy.boards import Board
from mcudeploy.device.runners.base import Runner
from mcudeploy.device.runners.fvp import FvpRunner
from mcudeploy.device.runners.labgrid import LabgridRunner, Place, acquired_places
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


@dataclass(frozen=True)
class Devices:
    """The devices a run uses: runner `runner` for `board` running `elf` (with QEMU's `icount`, the
    serial runner's `port`, the FVP executable `fvp`, labgrid's `places` and `coordinator`), or, in
    tests, `factory(board, elf, icount)` instead."""

    board: Board
    elf: Path
    runner: str = "qemu"
    icount: bool = True
    port: str | None = None
    fvp: Path | None = None
    places: tuple[str, ...] = ()
    coordinator: str | None = None
    factory: Callable[[Board, Path, bool], Runner] | None = None

    @contextmanager
    def acquired(self, count: int, say: Callable[[str], None]) -> Iterator[list[Place | None]]:
        """One place per device: for the labgrid runner, places acquired for the block (and
        released after it); for the others, no place."""
        if self.runner != "labgrid":
            yield [None] * count
            return
        with acquired_places(self.coordinator, self.places, count, say) as places:
            yield list(places)

    def make(self, place: Place | None = None, job: int = 0) -> Runner:
        """The runner of one device (on `place`); QEMU of a `job` after the first logs to its own file."""
        if self.factory is not None:
            runner = self.factory(self.board, self.elf, self.icount)
        else:
            runner = make_runner(self.runner, self.board, self.elf, icount=self.icount, port=self.port,
                                 fvp=self.fvp, place=place)
        if job and isinstance(runner, QemuRunner):
            runner.log_path = runner.log_path.with_suffix(f".job{job}.log")
        return runner

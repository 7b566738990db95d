"""Build the firmware for a real board and write it to the board's flash through its debug probe
(pyOCD), then reset the board. Afterwards `mcudeploy run MODEL --board B --runner serial` streams
the test vectors over the probe's USB serial port. With `--runner labgrid --place NAME` the board
is a place of a labgrid farm instead, flashed through the GDB server the place offers (acquired
for the flash, and released after it unless you hold it).

Writes DIR/model/ and DIR/build/firmware.elf as `mcudeploy build` does, with the same NN library
(--cmsis-nn) and lowerings (--tune measures them on the board's simulator, --tuning FILE reuses a
tuning file). A float ONNX model needs the same --calibration here and in `run`, so that both build
the same model; `run --runner serial` then checks the firmware on the board against the oracles.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mcudeploy import terminal
from mcudeploy.boards import load_board
from mcudeploy.cli.options import (
    add_labgrid,
    add_library,
    add_model_and_board,
    add_quantization,
    add_tuning,
    build_options,
    check_labgrid,
    out_dir,
)
from mcudeploy.device.runners.flash import flash
from mcudeploy.device.runners.labgrid import acquired_places, flash_place
from mcudeploy.errors import BoardError
from mcudeploy.pipeline import make_firmware
from mcudeploy.progress import Progress

HELP = "build the firmware and flash it to a board through its debug probe (pyOCD) or labgrid"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_and_board(parser)
    add_library(parser)
    add_tuning(parser)
    add_quantization(parser)
    parser.add_argument("--probe", metavar="ID",
                        help="part of the debug probe's unique ID, when several are connected")
    parser.add_argument("--pack", type=Path, metavar="FILE",
                        help="a CMSIS .pack describing the target, if pyOCD does not know it")
    parser.add_argument("--runner", choices=("pyocd", "labgrid"), default="pyocd",
                        help="flash through a probe on this machine (pyocd, the default) or a "
                             "place of a labgrid board farm (labgrid, with --place)")
    add_labgrid(parser)


def run(args: argparse.Namespace) -> int:
    check_labgrid(args)
    board = load_board(args.board)
    if args.runner == "labgrid" and "labgrid" not in board.runners:
        raise BoardError(f"board {board.name} cannot use runner 'labgrid' "
                         f"(its runners: {', '.join(board.runners)})")
    if args.runner == "pyocd" and board.probe is None:
        raise BoardError(f"board {board.name} has no [probe] table: it cannot be flashed "
                         f"(its runners: {', '.join(board.runners)})")
    progress = Progress(quiet=args.quiet)
    try:
        built = make_firmware(args.model, build_options(args), out_dir(args), progress)
        if args.runner == "labgrid":
            with acquired_places(args.coordinator, tuple(args.place), 1, progress.step) as [place]:
                progress.step(f"flashing {built.elf} to place {place.name} through its GDB server")
                flash_place(place, built.elf, board)
            where = f"labgrid place {place.name}"
        else:
            progress.step(f"flashing {built.elf} to {board.name} through pyOCD")
            where = flash(board, built.elf, probe_id=args.probe, pack=args.pack)
    finally:
        progress.close()
    terminal.console().print(f"flashed {built.elf} ({built.sizes['image']} B) to {board.name} through "
                              f"{where}; it is running")
    return 0

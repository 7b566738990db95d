"""Build the firmware for a real board and write it to the board's flash through its debug probe
(pyOCD), then reset the board. Afterwards `mcudeploy run MODEL --board B --runner serial` streams
the test vectors over the probe's USB serial port.

Writes DIR/model/ and DIR/build/firmware.elf as `mcudeploy build` does, with the same NN library
(--cmsis-nn) and lowerings (--tune measures them on the board's simulator, --tuning FILE reuses a
tuning file). A float ONNX model needs the same --calibration here and in `run`, so that both build
the same model; `run --runner serial` then checks the firmware on the board against the oracles.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from mcudeploy.boards import load_board
from mcudeploy.cli.options import (
    add_library,
    add_model_and_board,
    add_quantization,
    add_tuning,
    import_options,
    out_dir,
    tune_options,
)
from mcudeploy.errors import BoardError
from mcudeploy.pipeline import build_only
from mcudeploy.progress import Progress
from mcudeploy.runners.flash import flash

HELP = "build the firmware and flash it to a board through its debug probe (pyOCD)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_and_board(parser)
    add_library(parser)
    add_tuning(parser)
    add_quantization(parser)
    parser.add_argument("--probe", metavar="ID",
                        help="part of the debug probe's unique ID, when several are connected")
    parser.add_argument("--pack", type=Path, metavar="FILE",
                        help="a CMSIS .pack describing the target, if pyOCD does not know it")


def run(args: argparse.Namespace) -> int:
    board = load_board(args.board)
    if board.probe is None:
        raise BoardError(f"board {board.name} has no [probe] table: it cannot be flashed "
                         f"(its runners: {', '.join(board.runners)})")
    progress = Progress(quiet=args.quiet)
    try:
        built = build_only(args.model, args.board, out_dir(args), progress, import_options(args),
                           args.emit_tflite, args.cmsis_nn, tune_options(args))
        progress.step(f"flashing {built.elf} to {board.name} through pyOCD")
        probe = flash(board, built.elf, probe_id=args.probe, pack=args.pack)
    finally:
        progress.close()
    Console().print(f"flashed {built.elf} ({built.sizes['image']} B) to {board.name} through "
                    f"{probe}; it is running", highlight=False)
    return 0

"""Generate C code calling CMSIS-NN for a model and build the firmware for a board.

Writes DIR/model/ (model.c, model.h, manifest.json) and DIR/build/firmware.elf; with --tune or a
tuning file, DIR/tuning.json: which lowering each layer uses, as measured on the board's simulator.
"""

from __future__ import annotations

import argparse

from mcudeploy import terminal
from mcudeploy.cli.options import (
    add_library,
    add_model_and_board,
    add_quantization,
    add_tuning,
    build_options,
    out_dir,
)
from mcudeploy.pipeline import make_firmware
from mcudeploy.progress import Progress

HELP = "generate the C code and build the firmware"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_and_board(parser)
    add_library(parser)
    add_tuning(parser)
    add_quantization(parser)


def run(args: argparse.Namespace) -> int:
    out = out_dir(args)
    built = make_firmware(args.model, build_options(args), out, Progress(quiet=args.quiet))
    m, s = built.manifest, built.sizes
    terminal.console().print(
        f"built {built.elf} for {built.board.name}: {len(m.layers)} layers, arena {m.arena_bytes} B "
        f"(lower bound {m.lower_bound} B), flash {s['image']} B of which weights {s['weights']} B",
    )
    return 0

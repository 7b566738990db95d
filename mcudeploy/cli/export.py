"""Generate the model as a C library for your own firmware (a CMake, Zephyr, PlatformIO or plain
make project): DIR gets NAME.c and NAME.h (the API: NAME_init, NAME_invoke, NAME_reset, macros
for every input's and output's size, shape, scale and zero point), the NN library sources the
model calls, a CMakeLists.txt with the static library target NAME, a Zephyr module, a PlatformIO
library.json and manifest.json. See docs/integration.md.

NAME.c is generated exactly as `mcudeploy run` generates and verifies it for the same model,
board, NN library (--cmsis-nn), lowerings (--tune, --tuning) and --name: the report of the run and
the manifest here give the same SHA-256. The default NAME is the model's file name made a C
identifier; every symbol of the library starts with NAME_ and every macro with NAME_ in capitals,
so that several models link into one firmware.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mcudeploy import terminal
from mcudeploy.cli.options import (
    add_library,
    add_model_and_board,
    add_quantization,
    add_tuning,
    build_options,
)
from mcudeploy.pipeline import export_model
from mcudeploy.progress import Progress

HELP = "generate the model as a C library folder for your own firmware (CMake, Zephyr, PlatformIO)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_and_board(parser, out_required=True)
    add_library(parser)
    add_tuning(parser)
    add_quantization(parser)


def run(args: argparse.Namespace) -> int:
    progress = Progress(quiet=args.quiet)
    try:
        exported = export_model(args.model, build_options(args), Path(args.out), progress)
    finally:
        progress.close()
    m = exported.manifest
    terminal.console().print(
        f"exported {m.name} to {exported.folder} for {exported.board.name} ({m.cpu_class} path, "
        f"{m.library}): {len(exported.files)} files, arena {m.arena_bytes} B, weights {m.weight_bytes} B; "
        f"{m.code_file} SHA-256 {m.files[m.code_file]}",
        soft_wrap=True,
    )
    return 0

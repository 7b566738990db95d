"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_BOARD = "mps3-an547"


def add_model_and_board(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL", help="an int8 .tflite file")
    parser.add_argument("--board", default=DEFAULT_BOARD,
                        help=f"board name (see `mcudeploy boards`) or a board .toml file "
                             f"(default: {DEFAULT_BOARD})")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="output directory (default: out/<model name>); replaced as a whole")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the result")


def out_dir(args: argparse.Namespace) -> Path:
    return args.out if args.out is not None else Path("out") / args.model.stem

"""Build the firmware, run it on the board's runner (QEMU by default), stream test vectors over the
serial link and compare every output bit for bit with the host reference and with TFLM.

Exit status: 0 when every vector is bit-exact with every oracle, 1 when one differs, 2 for an
error in the input (model, board, options), 3 when the device or the link failed.
Writes DIR/report.json and DIR/report.txt beside the build.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mcudeploy.cli.options import add_model_and_board, out_dir
from mcudeploy.errors import InputError
from mcudeploy.pipeline import RunOptions, run_model
from mcudeploy.progress import Progress
from mcudeploy.report.text import print_report

HELP = "build, run on the device and verify bit-exactness"
EXIT_STATUS = {"pass": 0, "fail": 1, "error": 3}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_and_board(parser)
    parser.add_argument("--runner", default="qemu", help="where to run (default: qemu)")
    parser.add_argument("--vectors", type=int, default=20, metavar="N",
                        help="number of random test vectors (default: 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random vectors")
    parser.add_argument("--inputs", type=Path, metavar="FILE",
                        help=".npy/.npz test vectors instead of random ones (int8, or float to be "
                             "quantized with the input's scale)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                        help="longest time one inference may take on the device (default: 30)")


def run(args: argparse.Namespace) -> int:
    if args.vectors < 1:
        raise InputError(f"--vectors must be at least 1, not {args.vectors}")
    if args.timeout <= 0:
        raise InputError(f"--timeout must be positive, not {args.timeout}")
    options = RunOptions(board=args.board, runner=args.runner, vectors=args.vectors,
                         seed=args.seed, inputs=args.inputs, invoke_timeout=args.timeout)
    out = out_dir(args)
    progress = Progress(quiet=args.quiet)
    try:
        report = run_model(args.model, options, out, progress)
    finally:
        progress.close()
    print_report(report)
    print(f"report: {out / 'report.json'}")
    return EXIT_STATUS[report.verdict]

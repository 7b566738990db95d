"""Build the firmware, run it on the board's runner (QEMU by default), stream test vectors over the
serial link and compare every output bit for bit with the host reference and with TFLM.

Exit status: 0 when every vector is bit-exact with every oracle, 1 when one differs, 2 for an
error in the input (model, board, options), 3 when the device or the link failed (a fault, a hang,
a dead link: the vectors verified before it are kept in the report), 4 when an oracle could not
answer (TFLM crashed, an oracle's output is not finite): no verdict. On a mismatch the first
failing vector is re-run layer by layer and the first layer that diverges is named.
Writes DIR/report.json, DIR/report.txt and DIR/report.html beside the build.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mcudeploy import terminal
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
from mcudeploy.device.runners import RUNNERS
from mcudeploy.errors import InputError, OracleError
from mcudeploy.pipeline import RunHooks, RunOptions, run_model
from mcudeploy.progress import Progress
from mcudeploy.report.text import print_report

HELP = "build, run on the device and verify bit-exactness"
EXIT_STATUS = {"pass": 0, "fail": 1, "error": 3}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_and_board(parser)
    add_library(parser)
    add_tuning(parser)
    add_quantization(parser)
    parser.add_argument("--min-snr", type=float, default=15.0, metavar="DB",
                        help="ONNX models: fail when a device output's SNR against onnxruntime's "
                             "float output is below this (default: 15 dB)")
    parser.add_argument("--runner", default="qemu", choices=RUNNERS,
                        help="where to run: qemu, fvp (Arm's Corstone FVP), serial (a board "
                             "flashed with `mcudeploy flash`) or labgrid (a place of a labgrid "
                             "board farm, flashed for the run) (default: qemu)")
    parser.add_argument("--port", metavar="DEVICE",
                        help="serial runner: the board's serial port, a device path (/dev/ttyACM0) "
                             "or a pyserial URL (rfc2217://HOST:PORT?ign_set_control, "
                             "socket://HOST:PORT) (default: found by the board's USB VID:PID)")
    add_labgrid(parser)
    parser.add_argument("--fvp", type=Path, metavar="PATH",
                        help="fvp runner: the FVP executable (default: the board's model on PATH)")
    parser.add_argument("--vectors", type=int, default=20, metavar="N",
                        help="number of random test vectors (default: 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random vectors")
    parser.add_argument("--inputs", type=Path, metavar="FILE",
                        help=".npy/.npz test vectors instead of random ones (int8, or float to be "
                             "quantized with the input's scale)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                        help="longest time one inference may take on the device (default: 30)")
    parser.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                        help="spread the vectors over N devices run at once (emulators, or N "
                             "labgrid places; default: 1)")


def run(args: argparse.Namespace, hooks: RunHooks | None = None) -> int:
    """`hooks`: test-only changes to the firmware and the runner (see `RunHooks`)."""
    if args.vectors < 1:
        raise InputError(f"--vectors must be at least 1, not {args.vectors}")
    if args.timeout <= 0:
        raise InputError(f"--timeout must be positive, not {args.timeout}")
    if args.port is not None and args.runner != "serial":
        raise InputError("--port is for --runner serial")
    if args.fvp is not None and args.runner != "fvp":
        raise InputError("--fvp is for --runner fvp")
    if args.jobs < 1:
        raise InputError(f"--jobs must be at least 1, not {args.jobs}")
    if args.jobs > 1 and args.runner == "serial":
        raise InputError("--jobs is for emulators: a serial board is one device")
    check_labgrid(args)
    options = RunOptions(build=build_options(args), runner=args.runner, vectors=args.vectors,
                         seed=args.seed, inputs=args.inputs, invoke_timeout=args.timeout,
                         port=args.port, fvp=args.fvp, places=tuple(args.place or ()),
                         coordinator=args.coordinator, min_snr_db=args.min_snr, jobs=args.jobs)
    out = out_dir(args)
    progress = Progress(quiet=args.quiet)
    try:
        report = run_model(args.model, options, out, progress, hooks)
    finally:
        progress.close()
    console = terminal.console()
    print_report(report, console)
    console.print(f"report: {out / 'report.json'} (and report.html)", soft_wrap=True)
    if report.error_kind == "oracle":
        return OracleError.exit_code
    return EXIT_STATUS[report.verdict]

"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from mcudeploy.codegen.cname import check_name
from mcudeploy.codegen.memory import DEFAULT_MAX_SLOWDOWN, StagePolicy
from mcudeploy.errors import InputError
from mcudeploy.model import ImportOptions
from mcudeploy.pipeline import BuildOptions
from mcudeploy.quantize.calibrate import METHODS
from mcudeploy.quantize.precision import PRECISIONS
from mcudeploy.tune import TuneOptions

DEFAULT_BOARD = "mps3-an547"
OPTIMIZATIONS = ("balanced", "ram", "time")


def add_model_and_board(parser: argparse.ArgumentParser, out_required: bool = False) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL",
                        help="an int8 .tflite file, or a float .onnx file with --calibration")
    parser.add_argument("--board", default=DEFAULT_BOARD,
                        help=f"board name (see `mcudeploy boards`) or a board .toml file "
                             f"(default: {DEFAULT_BOARD})")
    parser.add_argument("--out", type=Path, metavar="DIR", required=out_required,
                        help="output directory" + ("" if out_required else " (default: out/<model name>)")
                             + "; replaced as a whole")
    parser.add_argument("--name", type=check_name, metavar="NAME",
                        help="the model's C library: NAME.c, NAME.h, NAME_invoke(), NAME_INPUT0_BYTES "
                             "(default: the model's file name made a C identifier)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the result")


def add_library(parser: argparse.ArgumentParser) -> None:
    """The NN library the firmware links: nnref by default, or a CMSIS-NN pack."""
    parser.add_argument("--cmsis-nn", metavar="PATH",
                        help="link Arm's CMSIS-NN instead of mcudeploy's nnref: a .pack file, an "
                             "unpacked pack directory, or a pack id in cmsis-pack-manager's cache "
                             "(ARM::CMSIS-NN, ARM::CMSIS-NN@6.0.0)")


def add_labgrid(parser: argparse.ArgumentParser) -> None:
    """Where the labgrid runner finds its board: places of a labgrid coordinator."""
    group = parser.add_argument_group("labgrid runner (see README, Board farms)")
    group.add_argument("--place", action="append", metavar="NAME",
                       help="a labgrid place, or a pattern matching several (part of their names "
                            "or aliases); repeat for more. With --jobs N, N of them are used")
    group.add_argument("--coordinator", metavar="HOST:PORT",
                       help="the labgrid coordinator (default: $LG_COORDINATOR, else 127.0.0.1:20408)")


def check_labgrid(args: argparse.Namespace) -> None:
    """--place and --coordinator go with --runner labgrid, which needs a place."""
    if args.runner == "labgrid" and not args.place:
        raise InputError("--runner labgrid needs a place: --place NAME")
    for option in ("place", "coordinator"):
        if getattr(args, option) is not None and args.runner != "labgrid":
            raise InputError(f"--{option} is for --runner labgrid")


def add_tuning(parser: argparse.ArgumentParser) -> None:
    """How each layer is lowered: measured (--tune), from a tuning file, or the CPU's defaults."""
    group = parser.add_argument_group("lowering (see README, Tuning)")
    group.add_argument("--tune", action="store_true",
                       help="measure the lowering candidates of each layer that has several on the "
                            "board's simulator, with the NN library in use, and keep the fastest "
                            "bit-exact one (recorded in DIR/tuning.json)")
    group.add_argument("--tuning", type=Path, metavar="FILE",
                       help="lower layers as measured in this tuning file (with --tune: measure what "
                            "it lacks and add it there) instead of the DIR/tuning.json of an "
                            "earlier build")
    group.add_argument("--library-calls", action="store_true",
                       help="every layer through the NN library's calls, none through the kernels "
                            "mcudeploy generates (mcd_dsp, mcd_mve): to measure or use the library "
                            "alone")
    group.add_argument("--optimization", choices=OPTIMIZATIONS, default="balanced",
                       help="what streamed stages (a chain of layers computed a few rows at a time: "
                            "less arena, more instructions; docs/memory.md) may cost: balanced "
                            "(the default) takes them while together they add at most --max-slowdown "
                            "of the model's estimated instructions; ram takes them at any cost; time "
                            "takes none. Any of them takes stages beyond that when the model would "
                            "not fit the board without them")
    group.add_argument("--max-slowdown", type=slowdown, default=None, metavar="PCT",
                       help=f"with --optimization balanced, the instructions streamed stages may add, "
                            f"in percent of the model's (default: {DEFAULT_MAX_SLOWDOWN:g})")


def slowdown(text: str) -> float:
    """--max-slowdown's PCT: a finite percentage, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a percentage, 0 or more (e.g. 3 or 0.5)")
    return value


def stage_policy(args: argparse.Namespace) -> StagePolicy:
    """The streamed stages' policy of --optimization and --max-slowdown."""
    optimization = getattr(args, "optimization", "balanced")
    max_slowdown = getattr(args, "max_slowdown", None)
    if max_slowdown is not None and optimization != "balanced":
        raise InputError(f"--max-slowdown is for --optimization balanced, not {optimization}")
    if optimization == "ram":
        return StagePolicy(max_slowdown=None)
    if optimization == "time":
        return StagePolicy(max_slowdown=0.0)
    return StagePolicy(DEFAULT_MAX_SLOWDOWN if max_slowdown is None else max_slowdown)


def _tune_options(args: argparse.Namespace) -> TuneOptions:
    if not hasattr(args, "tune"):
        return TuneOptions()
    return TuneOptions(tune=args.tune, tuning=args.tuning, seed=getattr(args, "seed", 0),
                       library_calls=args.library_calls)


def add_quantization(parser: argparse.ArgumentParser) -> None:
    """Options for float models (ONNX, float TFLite), which mcudeploy quantizes to int8, and for
    an integer TFLite file's LSTM."""
    lstm = parser.add_argument_group("LSTM (integer TFLite files, see README, LSTM)")
    lstm.add_argument("--lstm-state", choices=("reset", "keep"), default="reset",
                      help="an LSTM starts each inference from the zero state, as Keras computes it "
                           "(reset, the default), or keeps the state the last one left, as TFLite's "
                           "variable tensors do (keep: a streaming model)")
    group = parser.add_argument_group("quantization (float ONNX and TFLite models)")
    group.add_argument("--calibration", type=Path, metavar="DATA",
                       help="calibration inputs in the model file's layout (NCHW for ONNX, NHWC for "
                            "TFLite): .npy (one input), .npz (one array per input name) or a folder "
                            "of them")
    group.add_argument("--calibration-method", choices=METHODS, default="minmax",
                       help="activation ranges from min/max, or from the 0.01/99.99 percentiles")
    group.add_argument("--snr-warn", type=float, default=20.0, metavar="DB",
                       help="warn, naming the worst layers, when the int8 output SNR against the "
                            "float model is below this (default: 20 dB); a top-1 agreement below "
                            "90 %% warns too")
    group.add_argument("--precision", choices=PRECISIONS, default=None,
                       help="int8 layers (default); 16x8 (int16 activations) for every layer that has "
                            "that form; or auto: int8, moving the layers below --snr-warn to 16x8 one "
                            "at a time, worst first, until the output SNR reaches it")
    group.add_argument("--emit-tflite", type=Path, metavar="FILE",
                       help="also write the quantized model as an int8 .tflite file")
    group.add_argument("--input-shape", action="append", type=input_shape, metavar="NAME=D0,D1,...",
                       help="pin the dynamic dimensions of input NAME (batch included), e.g. "
                            "x=1,3,48,192; repeat for several inputs")


def input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """NAME=1,3,48,192 as (name, shape); the name is what precedes the last '='."""
    name, sep, dims = text.rpartition("=")
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:
        shape = ()
    if not sep or not name or not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=D0,D1,... with positive sizes, "
                                         "e.g. x=1,3,48,192")
    return name, shape


def import_options(args: argparse.Namespace) -> ImportOptions:
    """How to read the model: calibration, method, warning floor and pinned input shapes."""
    shapes = tuple(args.input_shape or ())
    names = [name for name, _ in shapes]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"--input-shape names {', '.join(map(repr, repeated))} more than once")
    return ImportOptions(calibration=args.calibration, method=args.calibration_method,
                         snr_warn_db=args.snr_warn, input_shapes=shapes,
                         precision=args.precision, lstm_state=args.lstm_state)


def build_options(args: argparse.Namespace) -> BuildOptions:
    """The board, import, library and tuning options a subcommand was given (those it has)."""
    return BuildOptions(board=args.board, import_options=import_options(args),
                        cmsis_nn=getattr(args, "cmsis_nn", None), tuning=_tune_options(args),
                        emit_tflite=args.emit_tflite, name=args.name, stage_policy=stage_policy(args))


def out_dir(args: argparse.Namespace) -> Path:
    return args.out if args.out is not None else Path("out") / args.model.stem

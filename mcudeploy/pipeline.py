"""The whole flow, in order: import → check → tune → lower/plan/emit → build → run → verify → report.

Every command that builds firmware (build, flash, run, bench) loads the model and the board, then
prepares the same way: the library, a staged output directory, the tuning, the firmware. `run` then
runs every vector on the device, verifies the outputs with the oracles and traces a mismatch to the
first layer that diverges; `bench` counts one inference's instructions on QEMU instead. Nothing is
written to the output directory until the build succeeded; a run that fails on the device still
writes its report (verdict "error", with the vectors verified so far).

Stack: every firmware's stack is sized at build time from the call graph of its code
(mcudeploy.stack); every session reads the device's stack high-water mark after the handshake and
at its end and checks it against that bound. The reports give RAM as arena + the measured stack +
static data, beside the stack the image reserves.

Instructions (bench, and run on QEMU): the firmware times each layer with SysTick on the CPU clock;
under QEMU's `-icount shift=0` one instruction takes one virtual nanosecond, so ticks x the board's
`instructions_per_tick` is an exact count of instructions (to one tick). The inference `bench`
measures is also checked bit for bit against the host reference and TFLM.

`export` generates the model as every other command does, the firmware's code being the model's C
library (NAME.c) unchanged, and writes that library's folder instead of a firmware.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

from mcudeploy.boards import Board, load_board
from mcudeploy.build import build_firmware, firmware_sizes, stack_plan
from mcudeploy.codegen import generate
from mcudeploy.codegen.cname import name_from_file
from mcudeploy.codegen.memory import BALANCED, StagePolicy
from mcudeploy.codegen.tuning import Tuning
from mcudeploy.device.runners import Devices, make_runner
from mcudeploy.device.runners.base import Runner
from mcudeploy.device.session import Session, open_session, stack_marks
from mcudeploy.errors import BoardError, InputError, OracleError
from mcudeploy.export import write_library
from mcudeploy.jobs import run_on_devices
from mcudeploy.manifest import Manifest
from mcudeploy.memory import flash_figures, measure_tflm_arena, ram_figures
from mcudeploy.model import ImportOptions, Model, import_model, report_quality, vectors_for
from mcudeploy.nnlib import NNLibrary, nnref_library
from mcudeploy.outdir import staged_directory
from mcudeploy.packs import nn_library
from mcudeploy.progress import Progress
from mcudeploy.report import RunReport
from mcudeploy.report.bench_result import BenchResult, LayerFigures
from mcudeploy.scratch_probe import scratch_sizes
from mcudeploy.stack import StackPlan, stack_figures
from mcudeploy.tune import TuneOptions, tuning_for, tuning_report
from mcudeploy.vectors import random_vectors
from mcudeploy.verify.compare import compare
from mcudeploy.verify.expected import expected_outputs
from mcudeploy.verify.localise import localise_first_mismatch
from mcudeploy.verify.verdict import bit_exact_verdict, combined, failure_of, float_verdict


@dataclass(frozen=True)
class BuildOptions:
    """What every command that builds firmware was asked: the board, how to import the model, the
    NN library (a CMSIS-NN pack instead of nnref, mcudeploy.packs), the tuning (mcudeploy.tune),
    where to write the int8 TFLite file, and the name of the model's C library (NAME.c; None: from
    the model's file name, mcudeploy.codegen.cname); how many instructions streamed stages may add
(mcudeploy.codegen.memory)."""

    board: str = "mps3-an547"
    import_options: ImportOptions = field(default_factory=ImportOptions)
    cmsis_nn: str | None = None
    tuning: TuneOptions = field(default_factory=TuneOptions)
    emit_tflite: Path | None = None
    name: str | None = None
    stage_policy: StagePolicy = BALANCED

    def library_name(self, model_path: Path) -> str:
        """NAME: the one asked for, else the model file's stem made a C identifier."""
        return self.name if self.name is not None else name_from_file(model_path.stem)


@dataclass(frozen=True)
class RunOptions:
    """What `mcudeploy run` was asked to do."""

    build: BuildOptions = BuildOptions()
    runner: str = "qemu"
    vectors: int = 20
    seed: int = 0
    inputs: Path | None = None
    invoke_timeout: float = 30.0
    icount: bool = True
    port: str | None = None
    fvp: Path | None = None
    places: tuple[str, ...] = ()  # labgrid runner: place names or patterns
    coordinator: str | None = None  # labgrid runner: HOST:PORT (default: LG_COORDINATOR)
    jobs: int = 1
    min_snr_db: float = 15.0


@dataclass(frozen=True)
class RunHooks:
    """Test-only changes to a run, never reachable from the command line: C sources and -D
    defines added to the firmware build (a firmware that faults, hangs or miscomputes on purpose,
    tests/firmware/variants), and a runner factory used instead of the board's runner, called as
    `runner(board, elf, icount)` (e.g. QEMU behind a fault-injecting proxy)."""

    sources: tuple[Path, ...] = ()
    defines: dict[str, str] = field(default_factory=dict)
    runner: Callable[[Board, Path, bool], Runner] | None = None


@dataclass(frozen=True)
class Firmware:
    """A generated and compiled model."""

    board: Board
    library: NNLibrary
    manifest: Manifest
    elf: Path
    sizes: dict[str, int]
    stack: StackPlan
    seconds: float
    tuning: Tuning | None = None  # the tuning file's choices it was built with (None: defaults)


@dataclass(frozen=True)
class Exported:
    """A model exported as a C library folder: its files, relative to `folder`."""

    board: Board
    library: NNLibrary
    manifest: Manifest
    folder: Path
    files: tuple[Path, ...]


def load(model_path: Path, options: BuildOptions, progress: Progress) -> tuple[Model, Board]:
    """Import: the model (refused before anything is written if mcudeploy cannot deploy it) and the
    board."""
    model = import_model(model_path, options.import_options)
    report_quality(model, progress)
    return model, load_board(options.board)


@contextmanager
def prepared(model: Model, board: Board, options: BuildOptions, out: Path, progress: Progress,
             hooks: RunHooks | None = None) -> Iterator[tuple[Firmware, Path]]:
    """Tune and build into a staging directory beside `out`, which replaces `out` when the block
    ends without an error: yields the firmware and the staging directory."""
    library = nn_library(options.cmsis_nn)
    with staged_directory(out) as work:
        tuning = tuning_for(model.graph, board, library, out, work, options.tuning, progress,
                            source=model.path.name)
        yield compile_model(model, board, work, progress, hooks, library, tuning,
                            options.library_name(model.path), options.stage_policy), work
    if options.emit_tflite is not None:
        options.emit_tflite.parent.mkdir(parents=True, exist_ok=True)
        options.emit_tflite.write_bytes(model.tflite)


def compile_model(model: Model, board: Board, work: Path, progress: Progress,
                  hooks: RunHooks | None = None, library: NNLibrary | None = None,
                  tuning: Tuning | None = None, name: str = "model",
                  stage_policy: StagePolicy = BALANCED) -> Firmware:
    """Lower, plan and emit the model into work/model as the C library `name` (NAME.c, NAME.h), and
    build work/build/firmware.elf (.hex, .bin) on it with `library` (default nnref), each layer
    lowered as `tuning` says (default: the CPU class's defaults), with streamed stages as
    `stage_policy` allows."""
    hooks = hooks or RunHooks()
    start = time.monotonic()
    library = library or nnref_library()
    manifest = generate_code(model, board, work, progress, library, tuning, name, stage_policy)
    layers = {"MCD_MAX_LAYERS": str(max(1, len(manifest.layers)))}  # sizes the per-layer tick table
    with progress.working("building firmware"):
        elf = build_firmware(board, work / "model", work / "build", library,
                             extra_sources=hooks.sources, extra_defines=layers | hooks.defines)
    return Firmware(board, library, manifest, elf, firmware_sizes(elf), stack_plan(elf),
                    time.monotonic() - start, tuning)


def generate_code(model: Model, board: Board, work: Path, progress: Progress, library: NNLibrary,
                  tuning: Tuning | None, name: str, stage_policy: StagePolicy = BALANCED) -> Manifest:
    """Lower, plan and emit the model into work/model as the C library `name`, with streamed
    stages as `stage_policy` allows (each taken or declined is printed)."""
    progress.step(f"generating C for {board.name} ({board.cpu_class} path, {library.name})")
    choose = tuning.chooser(board.cpu_class, library) if tuning is not None else None
    scratch = scratch_sizes(library, board, work / "model-scratch-probe")
    manifest = generate(model.graph, board, library, work / "model", model.path.name, choose,
                        scratch=scratch, name=name, stage_policy=stage_policy)
    for decision in manifest.stages:
        progress.step(f"streamed stage of {decision['description']}")
    return manifest


def export_model(model_path: Path, options: BuildOptions, out: Path, progress: Progress) -> Exported:
    """`mcudeploy export`: the model as a C library folder in `out` (mcudeploy.export), generated
    exactly as `build` and `run` generate it for the same options, so that its NAME.c is the one
    they build and verify."""
    model, board = load(model_path, options, progress)
    library = nn_library(options.cmsis_nn)
    with staged_directory(out) as work:
        tuning = tuning_for(model.graph, board, library, out, work, options.tuning, progress,
                            source=model.path.name)
        with tempfile.TemporaryDirectory(prefix="mcudeploy-export-") as generated:
            manifest = generate_code(model, board, Path(generated), progress, library, tuning,
                                     options.library_name(model_path), options.stage_policy)
            files = write_library(work, Path(generated) / "model", manifest, library)
    if options.emit_tflite is not None:
        options.emit_tflite.parent.mkdir(parents=True, exist_ok=True)
        options.emit_tflite.write_bytes(model.tflite)
    return Exported(board, library, manifest, out, tuple(files))


def make_firmware(model_path: Path, options: BuildOptions, out: Path, progress: Progress) -> Firmware:
    """`mcudeploy build` (and `flash`): the generated sources and the firmware in `out` (with
    `--tune`, the lowering candidates measured first, DIR/tuning.json)."""
    model, board = load(model_path, options, progress)
    with prepared(model, board, options, out, progress) as (firmware, work):
        pass
    return replace(firmware, elf=out / firmware.elf.relative_to(work))


def run_model(model_path: Path, options: RunOptions, out: Path, progress: Progress,
              hooks: RunHooks | None = None) -> RunReport:
    """`mcudeploy run`: build, run every vector on the device, compare with the oracles, and trace
    a mismatch to the first layer that diverges. `hooks` are for tests only."""
    hooks = hooks or RunHooks()
    model, board = load(model_path, options.build, progress)
    vectors = vectors_for(model, options.inputs, options.vectors, options.seed)
    if not vectors:
        raise InputError("no test vectors to run")
    with prepared(model, board, options.build, out, progress, hooks) as (firmware, work):
        started = time.monotonic()
        devices = Devices(board, firmware.elf, options.runner, options.icount, options.port, options.fvp,
                          options.places, options.coordinator, hooks.runner)
        results = run_on_devices(devices, firmware.manifest, vectors, options.jobs, options.invoke_timeout,
                                 progress, firmware.stack)
        ran = vectors[: max(results.run.indices, default=-1) + 1]
        with progress.working(f"computing expected outputs of {len(ran)} vectors (host reference, "
                              "TFLM)"):
            try:
                expected, oracle_error = expected_outputs(model, ran), None
            except OracleError as exc:
                expected, oracle_error = {}, exc
        failure = combined(failure_of(results.error, firmware.elf), failure_of(oracle_error, firmware.elf))
        verdict = bit_exact_verdict(results.run, expected, failure)
        if model.float_model is not None:
            verdict = float_verdict(verdict, model.float_model, model.graph, results.run, ran,
                                    options.min_snr_db)
        localised: list[Session] = []
        fresh_device = partial(_one_session, devices, firmware.manifest, options.invoke_timeout, progress,
                               firmware.stack, localised)
        localisation = localise_first_mismatch(verdict, model.graph, firmware.manifest, vectors,
                                               fresh_device, progress.step)
        m, sizes = firmware.manifest, firmware.sizes
        marks = stack_marks(localised, results.stack)
        ram = ram_figures(sizes, m.state_bytes, marks.peak)
        counts = options.runner == "qemu" and board.qemu is not None and options.icount  # instructions
        per_tick = board.qemu.instructions_per_tick if counts else None
        report = RunReport(
            model=model_path.name, board=board.name, runner=options.runner, library=firmware.library.name,
            oracles=["host-reference", "tflm",
                     *([f"{model.float_model.name}-float"] if model.float_model else [])],
            **verdict.report_fields(), localisation=localisation,
            model_info={"hash": m.model_hash, "library_name": m.name,
                        "code_sha256": m.files.get(m.code_file, ""),
                        "layers": len(m.layers), "arena_bytes": m.arena_bytes,
                        "lower_bound": m.lower_bound, "weight_bytes": m.weight_bytes,
                        "float_io": dict(model.graph.float_io), "uint8_io": dict(model.graph.uint8_io),
                        "stages": [stage["description"] for stage in m.stages]},
            firmware={"flash_bytes": sizes["image"], "weights_bytes": sizes["weights"],
                      "ram_bytes": ram["total"], **sizes, "stack_use": stack_figures(firmware.stack, marks)},
            link=results.link, instructions=results.instructions(m, per_tick),
            quantization=asdict(model.quality) if model.quality is not None else {},
            tuning=tuning_report(model.graph, firmware.library, board.cpu_class, firmware.tuning),
            timing={"build_seconds": round(firmware.seconds, 3),
                    "run_seconds": round(time.monotonic() - started, 3)},
        )
        report.write(work)
    return report


def bench_model(model_path: Path, options: BuildOptions, out: Path, progress: Progress, *,
                seed: int = 0, tflm: bool = True) -> BenchResult:
    """`mcudeploy bench`: build the model, count its instructions on QEMU, measure its memory, ask
    TFLM for its arena; writes out/bench.json (and out/model.tflite, the int8 file TFLM ran)."""
    model, board = load(model_path, options, progress)
    if board.qemu is None:
        raise BoardError(f"board {board.name} has no [qemu] table: bench counts instructions on QEMU")
    with prepared(model, board, options, out, progress) as (firmware, work):
        (work / "model.tflite").write_bytes(model.tflite)
        progress.step(f"counting instructions on QEMU {board.qemu.machine} (-icount shift=0)")
        vectors = random_vectors(model.graph, 1, seed)
        with open_session(make_runner("qemu", board, firmware.elf, icount=True), firmware.manifest,
                          stack=firmware.stack) as device:
            inference = device.infer(vectors[0])
            layer_ticks, startup_ticks = device.layer_ticks(), device.startup_ticks()
        marks = stack_marks([device])
        expected = expected_outputs(model, vectors)
        exact = not any(compare(0, inference.outputs, want[0], name) for name, want in expected.items())
        tflm_arena = None
        if tflm:
            progress.step("asking TFLM for its arena (recording allocator)")
            tflm_arena = measure_tflm_arena(model.tflite)
        per_tick, m = board.qemu.instructions_per_tick, firmware.manifest
        layers = [LayerFigures(x.index, x.name, x.op, x.origin, x.macs, round(t * per_tick))
                  for x, t in zip(m.layers, layer_ticks, strict=True)]
        result = BenchResult(
            model=model_path.name, board=board.name, cpu=board.cpu, cpu_class=board.cpu_class,
            library=firmware.library.name, bit_exact=exact, layers=layers,
            instructions=round(inference.ticks * per_tick), macs=sum(layer.macs for layer in layers),
            arena_bytes=m.arena_bytes, lower_bound=m.lower_bound,
            ram=ram_figures(firmware.sizes, m.state_bytes, marks.peak),
            flash=flash_figures(firmware.sizes, firmware.elf), stack=stack_figures(firmware.stack, marks),
            tflm=tflm_arena, method=f"QEMU -icount shift=0, SysTick ticks x {per_tick}",
            startup_instructions=round(startup_ticks * per_tick),
            tuning=tuning_report(model.graph, firmware.library, board.cpu_class, firmware.tuning),
        )
        result.save(work / "bench.json")
    return result


@contextmanager
def _one_session(devices: Devices, manifest: Manifest, invoke_timeout: float, progress: Progress,
                 stack: StackPlan, sessions: list[Session]) -> Iterator[Session]:
    """A session with one fresh device (acquired for the block, on the labgrid runner), added to
    `sessions` (for its stack high-water marks)."""
    with devices.acquired(1, progress.step) as [place], \
            open_session(devices.make(place), manifest, invoke_timeout=invoke_timeout,
                         opened=sessions.append, stack=stack) as session:
        yield session

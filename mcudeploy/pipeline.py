"""The whole flow, in order: import → check → lower/plan/emit → build → run → verify → report.

`build_model` stops after the firmware; `run_model` goes on to the device and the verdict.
Nothing is written to the output directory until the build succeeded; a run that fails on the
device still writes its report (verdict "error", with the vectors verified so far); a mismatch
is traced to the first layer that diverges (`mcudeploy.localise`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mcudeploy.boards import Board, load_board
from mcudeploy.build import NNLibrary, build_firmware, firmware_sizes, nnref_library
from mcudeploy.codegen import generate
from mcudeploy.codegen.emit import Manifest
from mcudeploy.codegen.tuning import Tuning, model_tuning, tuning_summary
from mcudeploy.errors import (
    DeviceFault,
    InputError,
    LinkError,
    MCUDeployError,
    ModelFormatError,
    OracleError,
)
from mcudeploy.export_tflite import graph_to_tflite
from mcudeploy.faults import function_at
from mcudeploy.frontends.onnx import load_onnx
from mcudeploy.frontends.tflite import load_tflite
from mcudeploy.ir import Graph
from mcudeploy.jobs import Jobs
from mcudeploy.localise import Localisation, device_layer_outputs, localise
from mcudeploy.oracles import OnnxFloat, Tflm, dequantize, snr_db
from mcudeploy.outdir import staged_directory
from mcudeploy.packs import nn_library
from mcudeploy.progress import Progress
from mcudeploy.protocol import CpuFault, DeviceHang, Link
from mcudeploy.quality import Quality, measure
from mcudeploy.quantize.calibrate import calibrate, load_samples
from mcudeploy.quantize.quantizer import quantize_graph
from mcudeploy.reference import run_graph
from mcudeploy.report import RunReport
from mcudeploy.runners import make_runner
from mcudeploy.runners.base import Runner
from mcudeploy.runners.labgrid import Place, acquired_places
from mcudeploy.runners.qemu import QemuRunner
from mcudeploy.support import check_graph
from mcudeploy.tune import TuneOptions, build_tuning
from mcudeploy.vectors import Vector, load_vectors, random_vectors
from mcudeploy.verify import DeviceLayerError, DeviceRun, compare, run_vectors


@dataclass(frozen=True)
class Model:
    """An imported int8 model: the IR, the TFLite bytes TFLM runs as the oracle, and for ONNX input
    the float model (onnxruntime) with the quantization quality measured at conversion."""

    path: Path
    graph: Graph
    tflite: bytes
    float_model: OnnxFloat | None = None
    quality: Quality | None = None


@dataclass(frozen=True)
class Built:
    """A generated and compiled model."""

    board: Board
    library: NNLibrary
    manifest: Manifest
    elf: Path
    sizes: dict[str, int]
    seconds: float
    tuning: Tuning | None = None  # the tuning file's choices it was built with (None: defaults)

    @property
    def stateful(self) -> bool:
        """The model keeps state between inferences (its vectors form one sequence)."""
        return bool(self.manifest.variables)


@dataclass(frozen=True)
class ImportOptions:
    """How to read a model: calibration data and method for float ONNX models."""

    calibration: Path | None = None
    method: str = "minmax"
    snr_warn_db: float = 20.0
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()  # --input-shape NAME=1,3,48,192


@dataclass(frozen=True)
class RunOptions:
    """What `mcudeploy run` was asked to do."""

    board: str = "mps3-an547"
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
    import_options: ImportOptions = ImportOptions()
    min_snr_db: float = 15.0
    emit_tflite: Path | None = None
    cmsis_nn: str | None = None  # a CMSIS-NN pack instead of nnref (mcudeploy.packs)
    tuning: TuneOptions | None = None  # --tune / --tuning FILE (mcudeploy.tune)


@dataclass(frozen=True)
class RunHooks:
    """Test-only changes to a run, never reachable from the command line: C sources and -D
    defines added to the firmware build (a firmware that faults, hangs or miscomputes on purpose,
    tests/firmware/variants), and a runner factory used instead of the board's runner, called as
    `runner(board, elf, icount)` (e.g. QEMU behind a fault-injecting proxy)."""

    sources: tuple[Path, ...] = ()
    defines: dict[str, str] = field(default_factory=dict)
    runner: Callable[[Board, Path, bool], Runner] | None = None


def import_model(path: Path, options: ImportOptions = ImportOptions()) -> Model:
    """Read a model file (int8 TFLite, or float ONNX quantized on the calibration data) and refuse
    what mcudeploy cannot deploy, before anything is written."""
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        if options.calibration is not None:
            raise InputError(f"{path}: an int8 TFLite file keeps its own quantization; "
                             "--calibration is for float ONNX models")
        if options.input_shapes:
            raise InputError(f"{path}: a TFLite file's shapes are static; --input-shape is for ONNX models")
        graph = load_tflite(path)
        check_graph(graph, str(path))
        return Model(path, graph, path.read_bytes())
    if suffix == ".onnx":
        if options.calibration is None:
            raise InputError(f"{path}: a float ONNX model needs --calibration data (.npy, .npz or a "
                             "folder of them) to be quantized")
        imp = load_onnx(path, input_shapes=dict(options.input_shapes))
        samples = load_samples(imp, options.calibration)
        calibration = calibrate(imp, samples, options.method, source=str(options.calibration))
        graph = quantize_graph(imp.graph, calibration.ranges, imp.where)
        check_graph(graph)
        quality = measure(graph, calibration.float_values, options.snr_warn_db,
                          calibration_samples=len(samples))
        return Model(path, graph, graph_to_tflite(graph), OnnxFloat(imp, graph, samples), quality)
    raise ModelFormatError(f"{path}: unknown model format {path.suffix!r} (expected .tflite or .onnx)")


def build_model(model: Model, board: Board, work: Path, progress: Progress,
                hooks: RunHooks | None = None, library: NNLibrary | None = None,
                tuning: Tuning | None = None) -> Built:
    """Lower, plan and emit the model into work/model, and build work/build/firmware.elf with
    `library` (default nnref), each layer lowered as `tuning` says (default: the CPU class's
    defaults)."""
    hooks = hooks or RunHooks()
    start = time.monotonic()
    library = library or nnref_library()
    progress.step(f"generating C for {board.name} ({board.cpu_class} path, {library.name})")
    choose = tuning.chooser(board.cpu_class, library) if tuning is not None else None
    manifest = generate(model.graph, board, library, work / "model", source=model.path.name, choose=choose)
    layers = {"MCD_MAX_LAYERS": str(max(1, len(manifest.layers)))}  # sizes the per-layer tick table
    with progress.working("building firmware"):
        elf = build_firmware(board, work / "model", work / "build", library,
                             extra_sources=hooks.sources, extra_defines=layers | hooks.defines)
    return Built(board, library, manifest, elf, firmware_sizes(elf), time.monotonic() - start, tuning)


def tuning_report(model: Model, built: Built) -> dict:
    """Per layer with several lowerings: the one used and, from a tuning file, every candidate's
    figures and the gain over the first (the wrapper call)."""
    rows = model_tuning(model.graph, built.library, built.board.cpu_class, built.tuning or Tuning())
    return {**tuning_summary(rows), "tuning_file": built.tuning is not None}


def expected_outputs(model: Model, vectors: list[Vector]) -> dict[str, list[list[np.ndarray]]]:
    """Outputs of the host reference and of TFLM for every vector. TFLM runs in a worker process:
    when it crashes, aborts or refuses the file, this raises `OracleError`."""
    graph = model.graph
    reference = []
    state: dict[str, np.ndarray] = {}  # persistent variables carry over from vector to vector
    for vector in vectors:
        values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)), state)
        reference.append([values[n] for n in graph.outputs])
    with Tflm(model.tflite, graph) as oracle:
        tflm = [oracle.invoke(list(vector)) for vector in vectors]
    return {"host-reference": reference, "tflm": tflm}


def _emit_tflite(model: Model, target: Path | None) -> None:
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(model.tflite)


def build_only(model_path: Path, board_name: str, out: Path, progress: Progress,
               import_options: ImportOptions = ImportOptions(), emit_tflite: Path | None = None,
               cmsis_nn: str | None = None, tune: TuneOptions | None = None) -> Built:
    """`mcudeploy build`: the generated sources and the firmware in `out` (with `tune`, the
    lowering candidates measured first, DIR/tuning.json)."""
    model = import_model(model_path, import_options)
    _report_quality(model, progress)
    board = load_board(board_name)
    library = nn_library(cmsis_nn)
    with staged_directory(out) as work:
        tuning = build_tuning(model.graph, board, library, out, work, tune or TuneOptions(), progress,
                              source=model_path.name)
        built = build_model(model, board, work, progress, library=library, tuning=tuning)
    _emit_tflite(model, emit_tflite)
    return _moved(built, work, out)


def _vectors(model: Model, options: RunOptions) -> list[Vector]:
    """The user's vectors, else quantized calibration samples (ONNX), else seeded random int8."""
    if options.inputs is not None:
        if model.float_model is not None:
            return model.float_model.vectors_from(options.inputs)
        return load_vectors(model.graph, options.inputs)
    if model.float_model is not None:
        samples = model.float_model.calibration_vectors
        return [samples[i % len(samples)] for i in range(options.vectors)]
    return random_vectors(model.graph, options.vectors, options.seed)


def _report_quality(model: Model, progress: Progress) -> None:
    for note in model.graph.notes:  # what the import changed: folded shapes, pinned dimensions
        progress.step(note)
    q = model.quality
    if q is None:
        return
    outputs = ", ".join(f"{n} {s:.1f} dB" for n, s in q.output_snr_db.items())
    measured = "all of them" if q.samples == q.calibration_samples else f"the first {q.samples}"
    progress.step(f"quantized: ranges from {q.calibration_samples} calibration samples, quality "
                  f"measured on {measured}: output SNR {outputs}")
    if q.warning:
        progress.warn(q.warning)


def run_model(model_path: Path, options: RunOptions, out: Path, progress: Progress,
              hooks: RunHooks | None = None) -> RunReport:
    """`mcudeploy run`: build, run every vector on the device, compare with the oracles, and trace
    a mismatch to the first layer that diverges. `hooks` are for tests only."""
    hooks = hooks or RunHooks()
    model = import_model(model_path, options.import_options)
    _report_quality(model, progress)
    board = load_board(options.board)
    vectors = _vectors(model, options)
    if not vectors:
        raise InputError("no test vectors to run")
    library = nn_library(options.cmsis_nn)
    with staged_directory(out) as work:
        tuning = build_tuning(model.graph, board, library, out, work, options.tuning or TuneOptions(),
                              progress, source=model_path.name)
        built = build_model(model, board, work, progress, hooks, library, tuning)
        report = RunReport(
            model=model_path.name, board=board.name, runner=options.runner,
            library=built.library.name, oracles=[],
            model_info={
                "hash": built.manifest.model_hash, "layers": len(built.manifest.layers),
                "arena_bytes": built.manifest.arena_bytes,
                "lower_bound": built.manifest.lower_bound,
                "weight_bytes": built.manifest.weight_bytes,
                "float_io": dict(model.graph.float_io),
            },
            firmware={"flash_bytes": built.sizes["image"], "weights_bytes": built.sizes["weights"],
                      "ram_bytes": built.sizes["ram"], **built.sizes},
        )
        device = DeviceRun()
        started = time.monotonic()
        try:
            _run_on_device(built, options, vectors, device, report, progress, hooks)
        except MCUDeployError as exc:
            _record_failure(report, exc, built.elf)
        ran = vectors[: max(device.indices, default=-1) + 1]
        with progress.working(f"computing expected outputs of {len(ran)} vectors (host reference, "
                              "TFLM)"):
            try:
                expected = expected_outputs(model, ran)
            except OracleError as exc:
                _record_failure(report, exc, built.elf)
                expected = {}
        report.oracles = ["host-reference", "tflm", *(["onnxruntime-float"] if model.float_model else [])]
        _verdict(report, device, expected)
        if model.float_model is not None:
            _float_verdict(report, model.float_model, model.graph, device, ran, options.min_snr_db)
        if model.quality is not None:
            report.quantization = asdict(model.quality)
        report.localisation = _localise(report, model, built, options, vectors, progress, hooks)
        report.tuning = tuning_report(model, built)
        _emit_tflite(model, options.emit_tflite)
        report.timing = {"build_seconds": round(built.seconds, 3),
                         "run_seconds": round(time.monotonic() - started, 3)}
        report.write(work)
    return report


def _run_on_device(built: Built, options: RunOptions, vectors: list[Vector], device: DeviceRun,
                   report: RunReport, progress: Progress, hooks: RunHooks) -> None:
    """Every vector on the device: with `options.jobs` > 1, contiguous slices on as many devices
    at once. The results go into `device` in vector order, also those of a run that failed."""
    count = max(1, min(options.jobs, len(vectors)))
    if built.stateful:
        count = 1  # a stateful model's vectors form one sequence on one device
    bounds = [len(vectors) * j // count for j in range(count + 1)]
    parts = [DeviceRun() for _ in range(count)]
    links: list[Link] = []
    spans: list[tuple[float, float]] = []
    layer_ticks: list[int] = []
    jobs = Jobs()

    def job(j: int) -> None:
        with _device(built, options, hooks, jobs, j, links, places[j]) as link:
            started = time.monotonic()
            run_vectors(link, built.manifest, vectors[bounds[j] : bounds[j + 1]],
                        options.invoke_timeout, advance, into=parts[j], first=bounds[j],
                        stop=jobs.stop)
            spans.append((started, time.monotonic()))
            if j == 0 and parts[0].indices:
                layer_ticks[:] = link.layer_ticks(len(built.manifest.layers))

    try:
        with _places(options, count, progress) as places:
            advance = progress.bar(len(vectors), "vectors")
            jobs.run(count, job)
    finally:
        progress.close()
        for part in parts:
            device.extend(part)
        report.link = _link_figures(links, spans, len(device.indices))
        report.instructions = _instructions(built, options, device, layer_ticks)


@contextmanager
def _places(options: RunOptions, count: int, progress: Progress) -> Iterator[list[Place | None]]:
    """One place per job: for the labgrid runner, places acquired for the block (and released
    after it); for the others, no place."""
    if options.runner != "labgrid":
        yield [None] * count
        return
    with acquired_places(options.coordinator, options.places, count, progress.step) as places:
        yield list(places)


@contextmanager
def _device(built: Built, options: RunOptions, hooks: RunHooks, jobs: Jobs, job: int,
            links: list[Link], place: Place | None = None) -> Iterator[Link]:
    """A Link to a freshly started device running `built.elf` (on `place`, for the labgrid
    runner), after the handshake (the device must carry the model just built). When the block
    ends normally the device is told to exit, and must exit with status 0."""
    if hooks.runner is not None:
        runner = hooks.runner(built.board, built.elf, options.icount)
    else:
        runner = make_runner(options.runner, built.board, built.elf, icount=options.icount,
                             port=options.port, fvp=options.fvp, place=place)
    if job and isinstance(runner, QemuRunner):
        runner.log_path = runner.log_path.with_suffix(f".job{job}.log")
    jobs.track(runner)
    with runner as port:
        link = Link(port)
        links.append(link)
        info = link.hello()
        if info.model_hash.hex() != built.manifest.model_hash:
            raise LinkError(f"the device runs model {info.model_hash.hex()}, "
                            f"not the one just built ({built.manifest.model_hash})")
        if info.init_status != 0:
            layer = built.manifest.layers[-info.init_status - 1]
            raise LinkError(f"layer {layer.index} ({layer.op}, {layer.origin}) needs more scratch "
                            "than planned on this device")
        yield link
        link.exit(0)
        exit_status = runner.exit_status()
        if exit_status != 0:
            raise DeviceFault(f"the device exited with status {exit_status} when told to exit")


def _link_figures(links: list[Link], spans: list[tuple[float, float]], vectors: int) -> dict:
    """The links' counters added up, and the vector rate over the time the jobs ran vectors."""
    figures: dict = {}
    for link in links:
        for name, value in vars(link.stats).items():
            merge = min if name == "smallest_chunk" else (lambda a, b: a + b)
            figures[name] = merge(figures[name], value) if name in figures else value
    seconds = max(e for _, e in spans) - min(s for s, _ in spans) if spans else 0.0
    return {**figures, "jobs": len(links), "seconds": round(seconds, 3),
            "vectors_per_second": round(vectors / seconds, 2) if seconds > 0 else 0.0}


def _instructions(built: Built, options: RunOptions, device: DeviceRun,
                  layer_ticks: list[int]) -> dict:
    """Instructions per inference (and per layer, for the last vector of the first job), from
    SysTick ticks under QEMU -icount."""
    if not (options.runner == "qemu" and built.board.qemu and options.icount and device.ticks):
        return {}
    per_tick = built.board.qemu.instructions_per_tick
    figures: dict = {
        "per_inference": round(float(np.mean(device.ticks)) * per_tick),
        "method": f"QEMU -icount shift=0, SysTick ticks x {per_tick}",
    }
    if layer_ticks:
        figures["per_layer"] = [
            {"layer": layer.index, "name": layer.name, "instructions": round(ticks * per_tick)}
            for layer, ticks in zip(built.manifest.layers, layer_ticks, strict=True)
        ]
    return figures


def _record_failure(report: RunReport, exc: MCUDeployError, elf: Path) -> None:
    """The run could not finish: the error in words (a fault with the function it hit)."""
    if isinstance(exc, CpuFault):
        function = function_at(elf, exc.report.pc)
        report.error = exc.report.describe(function)
        report.fault = {**asdict(exc.report), "function": function,
                        "causes": [bit for bit, _ in exc.report.causes()]}
    elif report.error is not None:  # the device failed first: its error stays the run's
        report.error += f"; and {exc}"
        return
    else:
        report.error = str(exc)
    kinds = ((CpuFault, "fault"), (DeviceHang, "hang"), (DeviceLayerError, "layer status"),
             (LinkError, "link"), (DeviceFault, "device"), (OracleError, "oracle"))
    report.error_kind = next((name for kind, name in kinds if isinstance(exc, kind)), "other")


_REPLAY_LIMIT = 5000  # inferences a stateful model's layer-by-layer re-run may take


def _localise(report: RunReport, model: Model, built: Built, options: RunOptions,
              vectors: list[Vector], progress: Progress, hooks: RunHooks) -> Localisation | None:
    """On a mismatch with the host reference, re-run its first vector layer by layer on a fresh
    device and find the first layer that diverges."""
    bad = min((m.vector for m in report.mismatches if m.oracle == "host-reference"), default=None)
    if bad is None or report.error is not None:
        return None
    history = vectors[:bad] if built.stateful else []  # the state vector `bad` started from
    replays = len(history) * len(built.manifest.layers)
    if replays > _REPLAY_LIMIT:
        return Localisation(bad, error=f"not re-run: for a stateful model that means replaying the "
                                       f"{len(history)} vectors before it for each layer "
                                       f"({replays} inferences)")
    progress.step(f"re-running vector {bad} layer by layer to find the first layer that diverges")
    try:
        with _places(options, 1, progress) as places, \
                _device(built, options, hooks, Jobs(), 0, [], places[0]) as link:
            outputs = device_layer_outputs(link, built.manifest, vectors[bad],
                                           options.invoke_timeout, history)
    except MCUDeployError as exc:
        return Localisation(bad, error=str(exc))
    return localise(built.manifest, model.graph, bad, vectors[bad], outputs, history)


def _verdict(report: RunReport, device: DeviceRun,
             expected: dict[str, list[list[np.ndarray]]]) -> None:
    report.vectors = len(device.outputs)
    bad: set[int] = set()
    for i, outputs in zip(device.indices, device.outputs, strict=True):
        for oracle, values in expected.items():
            found = compare(i, outputs, values[i], oracle)
            report.mismatches += found
            bad.update(m.vector for m in found)
    report.mismatched_vectors = len(bad)
    report.bit_exact_vectors = report.vectors - len(bad) if expected else 0  # none: no oracle answered
    if report.error is not None:
        report.verdict = "error"
    else:
        report.verdict = "pass" if not bad and report.vectors > 0 else "fail"


def _float_verdict(report: RunReport, oracle: OnnxFloat, graph: Graph, device: DeviceRun,
                   vectors: list[Vector], min_snr_db: float) -> None:
    """Device outputs, dequantized, against onnxruntime's float outputs: SNR per output over all
    vectors. Below `min_snr_db` the verdict fails: bit-exactness alone cannot catch a weight-layout
    mistake made the same way in the reference and the device. When onnxruntime cannot answer (an
    output that is not finite), a pass becomes an error: no verdict rests on it."""
    report.float_oracle = {"name": "onnxruntime", "min_snr_db": min_snr_db, "snr_db": {}, "passed": False}
    floats = {}
    for i in device.indices:
        try:
            floats[i] = oracle.invoke(vectors[i])
        except OracleError as exc:
            report.float_oracle["error"] = error = f"vector {i}: {exc}"
            if report.verdict == "pass":
                report.verdict, report.error, report.error_kind = "error", error, "oracle"
            return
    snr = {}
    for k, name in enumerate(graph.outputs):
        t = graph.tensor(name)
        got = [dequantize(out[k], t.scale, t.zero_point).reshape(-1) for out in device.outputs]
        want = [floats[i][k].reshape(-1) for i in device.indices]
        if got:
            snr[name] = round(snr_db(np.concatenate(want), np.concatenate(got)), 2)
    low = {n: v for n, v in snr.items() if not v >= min_snr_db}
    report.float_oracle.update(snr_db=snr, passed=bool(snr) and not low)
    if low and report.verdict == "pass":
        report.verdict = "fail"


def _moved(built: Built, work: Path, out: Path) -> Built:
    """The same build, with paths pointing into the final directory."""
    return Built(built.board, built.library, built.manifest, out / built.elf.relative_to(work),
                 built.sizes, built.seconds, built.tuning)

"""The whole flow, in order: import → check → lower/plan/emit → build → run → verify → report.

`build_model` stops after the firmware; `run_model` goes on to the device and the verdict.
Nothing is written to the output directory until the build succeeded; a run that fails on the
device still writes its report (verdict "error", with the vectors verified so far).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcudeploy.boards import Board, load_board
from mcudeploy.build import NNLibrary, build_firmware, firmware_sizes, nnref_library
from mcudeploy.codegen import generate
from mcudeploy.codegen.emit import Manifest
from mcudeploy.errors import InputError, LinkError, MCUDeployError, ModelFormatError
from mcudeploy.frontends.tflite import load_tflite
from mcudeploy.ir import Graph
from mcudeploy.oracles import Tflm
from mcudeploy.outdir import staged_directory
from mcudeploy.progress import Progress
from mcudeploy.protocol import Link
from mcudeploy.reference import run_graph
from mcudeploy.report import RunReport
from mcudeploy.runners import make_runner
from mcudeploy.support import check_graph
from mcudeploy.vectors import Vector, load_vectors, random_vectors
from mcudeploy.verify import DeviceRun, compare, run_vectors


@dataclass(frozen=True)
class Model:
    """An imported model: the IR, and the TFLite bytes TFLM runs as the oracle."""

    path: Path
    graph: Graph
    tflite: bytes


@dataclass(frozen=True)
class Built:
    """A generated and compiled model."""

    board: Board
    library: NNLibrary
    manifest: Manifest
    elf: Path
    sizes: dict[str, int]
    seconds: float


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


def import_model(path: Path) -> Model:
    """Read a model file and refuse what mcudeploy cannot deploy, before anything is written."""
    if path.suffix.lower() != ".tflite":
        raise ModelFormatError(f"{path}: unknown model format {path.suffix!r} (expected .tflite)")
    graph = load_tflite(path)
    check_graph(graph)
    return Model(path, graph, path.read_bytes())


def build_model(model: Model, board: Board, work: Path, progress: Progress) -> Built:
    """Lower, plan and emit the model into work/model, and build work/build/firmware.elf."""
    start = time.monotonic()
    library = nnref_library()
    progress.step(f"generating C for {board.name} ({board.cpu_class} path, {library.name})")
    manifest = generate(model.graph, board, library, work / "model", source=model.path.name)
    progress.step("building firmware")
    layers = {"MCD_MAX_LAYERS": str(max(1, len(manifest.layers)))}  # sizes the per-layer tick table
    elf = build_firmware(board, work / "model", work / "build", library, extra_defines=layers)
    return Built(board, library, manifest, elf, firmware_sizes(elf), time.monotonic() - start)


def expected_outputs(model: Model, vectors: list[Vector]) -> dict[str, list[list[np.ndarray]]]:
    """Outputs of the host reference and of TFLM for every vector."""
    graph = model.graph
    oracle = Tflm(model.tflite, len(graph.outputs))
    reference, tflm = [], []
    for vector in vectors:
        values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
        reference.append([values[n] for n in graph.outputs])
        tflm.append(oracle.invoke(list(vector)))
    return {"host-reference": reference, "tflm": tflm}


def build_only(model_path: Path, board_name: str, out: Path, progress: Progress) -> Built:
    """`mcudeploy build`: the generated sources and the firmware in `out`."""
    model = import_model(model_path)
    board = load_board(board_name)
    with staged_directory(out) as work:
        built = build_model(model, board, work, progress)
    return _moved(built, work, out)


def run_model(model_path: Path, options: RunOptions, out: Path, progress: Progress) -> RunReport:
    """`mcudeploy run`: build, run every vector on the device, compare with the oracles."""
    model = import_model(model_path)
    board = load_board(options.board)
    vectors = (load_vectors(model.graph, options.inputs) if options.inputs
               else random_vectors(model.graph, options.vectors, options.seed))
    if not vectors:
        raise InputError("no test vectors to run")
    with staged_directory(out) as work:
        built = build_model(model, board, work, progress)
        progress.step(f"computing expected outputs of {len(vectors)} vectors (host reference, TFLM)")
        expected = expected_outputs(model, vectors)
        report = RunReport(
            model=model_path.name, board=board.name, runner=options.runner,
            library=built.library.name, oracles=list(expected),
            model_info={
                "hash": built.manifest.model_hash, "layers": len(built.manifest.layers),
                "arena_bytes": built.manifest.arena_bytes,
                "lower_bound": built.manifest.lower_bound,
                "weight_bytes": built.manifest.weight_bytes,
            },
            firmware={"flash_bytes": built.sizes["image"], "weights_bytes": built.sizes["weights"],
                      "ram_bytes": built.sizes["ram"], **built.sizes},
        )
        device = DeviceRun()
        started = time.monotonic()
        try:
            _run_on_device(built, options, vectors, device, report, progress)
        except MCUDeployError as exc:
            report.error = str(exc)
        _verdict(report, device, expected)
        report.timing = {"build_seconds": round(built.seconds, 3),
                         "run_seconds": round(time.monotonic() - started, 3)}
        report.write(work)
    return report


def _run_on_device(built: Built, options: RunOptions, vectors: list[Vector], device: DeviceRun,
                   report: RunReport, progress: Progress) -> None:
    runner = make_runner(options.runner, built.board, built.elf, icount=options.icount)
    with runner as port:
        link = Link(port)
        info = link.hello()
        if info.model_hash.hex() != built.manifest.model_hash:
            raise LinkError(f"the device runs model {info.model_hash.hex()}, "
                            f"not the one just built ({built.manifest.model_hash})")
        if info.init_status != 0:
            layer = built.manifest.layers[-info.init_status - 1]
            raise LinkError(f"layer {layer.index} ({layer.op}, {layer.origin}) needs more scratch "
                            "than planned on this device")
        started = time.monotonic()
        advance: Callable[[int], None] = progress.bar(len(vectors), "vectors")
        run_vectors(link, built.manifest, vectors, options.invoke_timeout, advance, into=device)
        seconds = time.monotonic() - started
        link.exit(0)
        report.link = {**vars(link.stats), "seconds": round(seconds, 3),
                       "vectors_per_second": round(len(vectors) / max(seconds, 1e-9), 2)}
        exit_status = runner.exit_status()
        if exit_status != 0:
            raise LinkError(f"the device exited with status {exit_status} after the last vector")
    if built.board.qemu and options.icount and device.ticks:
        per_tick = built.board.qemu.instructions_per_tick
        report.instructions = {
            "per_inference": round(float(np.mean(device.ticks)) * per_tick),
            "method": f"QEMU -icount shift=0, SysTick ticks x {per_tick}",
        }


def _verdict(report: RunReport, device: DeviceRun,
             expected: dict[str, list[list[np.ndarray]]]) -> None:
    report.vectors = len(device.outputs)
    bad: set[int] = set()
    for i, outputs in enumerate(device.outputs):
        for oracle, values in expected.items():
            found = compare(i, outputs, values[i], oracle)
            report.mismatches += found
            bad.update(m.vector for m in found)
    report.mismatched_vectors = len(bad)
    report.bit_exact_vectors = report.vectors - len(bad)
    if report.error is not None:
        report.verdict = "error"
    else:
        report.verdict = "pass" if not bad and report.vectors > 0 else "fail"


def _moved(built: Built, work: Path, out: Path) -> Built:
    """The same build, with paths pointing into the final directory."""
    return Built(built.board, built.library, built.manifest, out / built.elf.relative_to(work),
                 built.sizes, built.seconds)

"""`--tune`: measure the lowering candidates of a model's layers on the board's simulator, with the
NN library in use, and keep the fastest bit-exact one of each in a tuning file.

The layers measured are those with several candidates (mcudeploy.codegen.candidates) whose shape
the tuning file does not hold yet for this CPU class and library (one layer per shape). Image i
holds every such layer's i-th candidate (its first where it has fewer), so a model whose layers
have at most k candidates costs k firmware builds and k device sessions, not one per layer and
candidate. Each image runs on the simulator (QEMU with `-icount`: exact instruction counts; the
FVP where the board has no QEMU machine: ticks):

1. one inference of a seeded random vector, each layer timed in SysTick ticks;
2. each measured layer's output read back (TENSOR space) and compared with the host reference's
   value of that tensor. Outputs still intact at a common layer are read after one INVOKE that
   stops there (a model output: after the full inference). An output that differs is checked again
   against the reference computed from the layer's own inputs as read from the device, so that a
   wrong candidate earlier in the same image does not condemn a correct one.

A candidate whose layer returns an error status, or whose scratch query asks for more than was
planned, fails and its image is rebuilt without it; a fault or hang fails every candidate the image
measures. The fastest bit-exact candidate is kept, the earlier in the table on a tie. A layer none
of whose candidates is bit-exact stops the tuning with an error naming it.

In every image the layers not measured are lowered as the final firmware will lower them, and a
layer of the same shape as a measured one takes the same candidate. Still, with link-time
optimisation a kernel called from one layer only is specialised for that call (inlined, its
constant arguments propagated), and one shared by several layers is not: a candidate's cost
depends on the other layers' lowerings (issue 16: `split_multiplier` 605,500 instructions in its
image, where it alone called the depthwise wrapper; 746,031 in the final firmware, where layer 1's
wrapper call shares it). So once chosen, the model is built once more with every layer as chosen
and measured: each entry keeps its chosen candidate's figures there (`in_model`), which are what the
final firmware measures. Tuning images keep whole tensors (mcudeploy.codegen.memory's lowerings
off): an overlap changes no instruction, but a layer that the final firmware computes inside a
streamed stage is counted there in the stage's instructions, which `in_model` does not predict.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mcudeploy.boards import Board
from mcudeploy.build import build_firmware, stack_plan
from mcudeploy.codegen import generate
from mcudeploy.codegen.arena import IN_PLACE_KINDS
from mcudeploy.codegen.candidates import (
    CANDIDATES,
    Candidate,
    Chooser,
    Table,
    candidates_for,
    library_only,
)
from mcudeploy.codegen.lower import Layer, LoweredModel, lower
from mcudeploy.codegen.tuning import (
    CandidateFigures,
    Tuning,
    TuningEntry,
    entry_key,
    layer_signature,
    library_id,
    model_tuning,
    tuning_summary,
)
from mcudeploy.device.runners import make_runner
from mcudeploy.device.session import DeviceLayerError, ScratchRefused, Session, open_session
from mcudeploy.errors import BoardError, BuildError, DeviceFault, InputError, LinkError
from mcudeploy.ir import Graph
from mcudeploy.manifest import Manifest
from mcudeploy.nnlib import NNLibrary
from mcudeploy.progress import Progress
from mcudeploy.reference import KERNELS, run_graph
from mcudeploy.scratch_probe import scratch_sizes
from mcudeploy.vectors import Vector, random_vectors


@dataclass(frozen=True)
class Simulator:
    """Where candidates are measured: the runner, instructions per SysTick tick (QEMU -icount;
    None on the FVP, whose figures stay in ticks) and the method in words."""

    runner: str
    per_tick: float | None
    method: str


def simulator(board: Board) -> Simulator:
    """QEMU when the board has a machine there, else its FVP; a board with neither is refused."""
    if board.qemu is not None and "qemu" in board.runners:
        per_tick = board.qemu.instructions_per_tick
        return Simulator("qemu", per_tick, f"QEMU {board.qemu.machine} -icount shift=0, "
                                           f"SysTick ticks x {per_tick}")
    if board.fvp is not None and "fvp" in board.runners:
        return Simulator("fvp", None, f"FVP {board.fvp.model}, SysTick ticks")
    raise BoardError(f"board {board.name} has no simulator ([qemu] or [fvp] table): --tune measures "
                     "lowering candidates on one")


@dataclass(frozen=True)
class _Target:
    """A layer to measure: its plain lowering, its candidates and its tuning key."""

    layer: Layer
    options: Sequence[Candidate]
    key: str


class _LayerFailed(Exception):
    def __init__(self, layer: int, note: str) -> None:
        super().__init__(note)
        self.layer, self.note = layer, note


@dataclass
class _Session:
    """What one image needs on the device: the model, its vector and the host's expectations."""

    graph: Graph
    lowered: LoweredModel
    vector: Vector
    expected: dict[str, np.ndarray]
    valid_until: dict[int, int]
    manifest: Manifest | None = None  # the image's, once generated


def tune_graph(graph: Graph, board: Board, library: NNLibrary, tuning: Tuning, work: Path,
               progress: Progress, *, source: str, seed: int = 0,
               table: Table = CANDIDATES) -> list[TuningEntry]:
    """Measure what `tuning` lacks for `graph` on `board` with `library`; the new entries are
    added to `tuning` and returned. Firmware images are built under work/tuning, removed after."""
    sim = simulator(board)
    lowered = lower(graph)
    targets: dict[int, _Target] = {}
    for layer in lowered.layers:
        options = candidates_for(layer, library, table, board.cpu_class)
        if len(options) < 2:
            continue
        key = entry_key(layer_signature(layer), board.cpu_class, library_id(library))
        if key not in tuning.entries and all(t.key != key for t in targets.values()):
            targets[layer.index] = _Target(layer, options, key)
    if not targets:
        return []
    vector = random_vectors(graph, 1, seed)[0]
    session = _Session(graph, lowered, vector, run_graph(graph, dict(zip(graph.inputs, vector, strict=True))),
                       valid_until(graph, lowered))
    images = max(len(t.options) for t in targets.values())
    progress.step(f"tuning {len(targets)} layers with several lowerings: {images} firmware images on "
                  f"{sim.runner.upper()} ({library.name})")
    figures: dict[int, dict[str, CandidateFigures]] = {i: {} for i in targets}
    root = work / "tuning"
    others = tuning.chooser(board.cpu_class, library)
    try:
        for i in range(images):
            measured = {k: t.options[i].name for k, t in targets.items() if i < len(t.options)}
            with progress.working(f"candidate image {i + 1} of {images}: {len(measured)} layers"):
                _measure_image(board, library, sim, session, root / f"image{i}", source, table,
                               measured, figures, {k: t.key for k, t in targets.items()}, others)
        entries = [_entry(t, figures[k], board, library, sim,
                          f"{source}: {t.layer.name} ({t.layer.op.origin})") for k, t in targets.items()]
        for entry in entries:
            tuning.add(entry)
        with progress.working("the model as chosen: the chosen candidates measured in it"):
            entries = _confirm(board, library, sim, session, root / "chosen", source, table, tuning, targets)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for entry in entries:
        tuning.add(entry)
    return entries


def valid_until(graph: Graph, lowered: LoweredModel) -> dict[int, int]:
    """For each layer, the last layer after which its output is still intact in the arena: up to
    its last consumer (the end for a model output), one before it when that consumer may write in
    place over it."""
    end = len(lowered.layers) - 1
    last: dict[str, tuple[int, str]] = {}
    for layer in lowered.layers:
        for name in layer.inputs:
            if not graph.tensor(name).is_constant:
                last[lowered.storage(name)] = (layer.index, layer.op.kind)
    outputs = {lowered.storage(name) for name in graph.outputs}
    until = {}
    for layer in lowered.layers:
        key = lowered.storage(layer.output)
        if key in outputs:
            until[layer.index] = end
            continue
        index, kind = last.get(key, (layer.index, ""))
        until[layer.index] = max(layer.index, index - 1 if kind in IN_PLACE_KINDS else index)
    return until


def stop_points(layers: Sequence[int], until: dict[int, int]) -> list[tuple[int, list[int]]]:
    """Layers grouped so that each group's outputs are all intact after one INVOKE stopping at the
    group's layer (greedy, in layer order): [(stop, layers)]."""
    groups: list[tuple[int, list[int]]] = []
    for t in sorted(layers):
        if groups and t <= groups[-1][0]:
            stop, members = groups[-1]
            groups[-1] = (min(stop, until[t]), [*members, t])
        else:
            groups.append((until[t], [t]))
    return groups


def _measure_image(board: Board, library: NNLibrary, sim: Simulator, session: _Session, folder: Path,
                   source: str, table: Table, measured: dict[int, str],
                   figures: dict[int, dict[str, CandidateFigures]], keys: dict[int, str],
                   others: Chooser) -> None:
    """Build and run the image holding `measured` (layer -> candidate name), rebuilding without a
    candidate that fails with a status; record every candidate's figures. A layer of the same shape
    as a measured one (`keys`: its tuning key) takes the same candidate; any other is lowered as
    `others` chooses (the tuning file's choice or the default), as the final firmware will be."""
    pending = dict(measured)
    while pending:
        def choose(layer: Layer, options: Sequence[Candidate]) -> Candidate:
            by_key = {keys[k]: name for k, name in pending.items()}
            wanted = pending.get(layer.index) or by_key.get(_key(layer, board, library))
            return next((c for c in options if c.name == wanted), None) or others(layer, options)

        elf = _build_image(board, library, session, folder, source, choose, table)
        try:
            results = _run_image(board, sim, session, elf, pending)
        except _LayerFailed as failed:
            if failed.layer not in pending:
                raise BuildError(f"layer {failed.layer} ({session.lowered.layers[failed.layer].op.origin}) "
                                 f"{failed.note} in its plain lowering on {board.name}") from None
            name = pending.pop(failed.layer)
            figures[failed.layer][name] = CandidateFigures(name, None, None, False, failed.note)
            continue
        except (DeviceFault, LinkError) as exc:
            for k, name in pending.items():
                figures[k][name] = CandidateFigures(name, None, None, False, f"the image failed: {exc}")
            return
        for k, name in pending.items():
            ticks, exact, note = results[k]
            instructions = round(ticks * sim.per_tick) if sim.per_tick else None
            figures[k][name] = CandidateFigures(name, ticks, instructions, exact, note)
        return


def _build_image(board: Board, library: NNLibrary, session: _Session, folder: Path, source: str,
                 choose: Chooser, table: Table) -> Path:
    """Generate the model with each layer lowered as `choose` says into folder/model (its manifest
    kept in `session`) and build its firmware; returns the ELF. Its tensors are whole and intact
    until their last reader ran (no overlaps, no streamed stages: `below_bound=False`), as reading
    each layer's output and inputs back needs."""
    scratch = scratch_sizes(library, board, folder / "model-scratch-probe")
    session.manifest = generate(session.graph, board, library, folder / "model", source, choose, table,
                                scratch, below_bound=False)
    return build_firmware(board, folder / "model", folder / "build", library,
                          extra_defines={"MCD_MAX_LAYERS": str(max(1, len(session.manifest.layers)))})


def _key(layer: Layer, board: Board, library: NNLibrary) -> str:
    return entry_key(layer_signature(layer), board.cpu_class, library_id(library))


def _confirm(board: Board, library: NNLibrary, sim: Simulator, session: _Session, folder: Path, source: str,
             table: Table, tuning: Tuning, targets: dict[int, _Target]) -> list[TuningEntry]:
    """The model with every layer lowered as chosen (the final firmware), measured: each tuned
    layer's entry with its chosen candidate's figures in it (`in_model`). With link-time
    optimisation a kernel's cost depends on which other layers call it, so these can differ from
    the candidate image's figures; they are what the final firmware measures."""
    choose = tuning.chooser(board.cpu_class, library)
    elf = _build_image(board, library, session, folder, source, choose, table)
    chosen = {k: choose(t.layer, t.options).name for k, t in targets.items()}
    try:
        results = _run_image(board, sim, session, elf, chosen)
    except (_LayerFailed, DeviceFault, LinkError) as exc:
        raise BuildError(f"the model with every layer lowered as measured failed on {board.name}: "
                         f"{exc}") from None
    entries = []
    for k, target in targets.items():
        ticks, exact, note = results[k]
        if not exact:
            raise BuildError(f"layer {k} ({target.layer.op.origin}) lowered as {chosen[k]} is bit-exact in "
                             f"its candidate image but not in the model as chosen: {note}")
        entry = tuning.entries[target.key]
        entries.append(replace(entry, in_model_ticks=ticks,
                               in_model=round(ticks * sim.per_tick) if sim.per_tick else None))
    return entries


def _run(device: Session, session: _Session, stop: int | None = None) -> None:
    """The whole model, or layers 0..stop, from fresh state (earlier runs may have changed it)."""
    if session.graph.variables:
        device.reset()
    try:
        if stop is None:
            device.infer(session.vector)
        else:
            device.run_to(stop, session.vector)
    except DeviceLayerError as exc:
        raise _LayerFailed(exc.layer, f"returned status {exc.status}") from None


def _tensor(device: Session, session: _Session, layer: int, name: str) -> np.ndarray:
    """The device's value of tensor `name`, stored as layer `layer`'s output."""
    t = session.graph.tensor(name)
    return np.frombuffer(device.tensor(layer), dtype=t.dtype).reshape(t.shape)


def _run_image(board: Board, sim: Simulator, session: _Session, elf: Path,
               measured: dict[int, str]) -> dict[int, tuple[int, bool, str]]:
    """Per measured layer: its ticks, whether it was bit-exact, and why not."""
    manifest, lowered = session.manifest, session.lowered
    results: dict[int, tuple[int, bool, str]] = {}
    try:
        with open_session(make_runner(sim.runner, board, elf, icount=True), manifest,
                          stack=stack_plan(elf)) as device:
            _run(device, session)
            ticks = device.layer_ticks()
            last = len(manifest.layers) - 1
            differing = []
            for stop, group in stop_points(list(measured), session.valid_until):
                if stop != last:
                    _run(device, session, stop)
                for k in group:
                    output = lowered.layers[k].output
                    exact = np.array_equal(_tensor(device, session, k, output), session.expected[output])
                    results[k] = (ticks[k], exact, "")
                    if not exact:
                        differing.append(k)
            for k in differing:
                results[k] = (ticks[k], *_check_alone(device, session, k))
    except ScratchRefused as exc:
        raise _LayerFailed(exc.layer, "asks for more scratch than planned") from None
    return results


def _check_alone(device: Session, session: _Session, k: int) -> tuple[bool, str]:
    """Layer k's output against the reference computed from its own inputs on the device."""
    graph, lowered = session.graph, session.lowered
    layer = lowered.layers[k]
    _run(device, session, k)
    producers = {lowered.storage(x.output): x.index for x in lowered.layers[:k]}
    inputs = []
    for name in (n for n in layer.op.inputs if n):
        t = graph.tensor(name)
        if t.is_constant:
            inputs.append(t.data)
        elif (j := producers.get(lowered.storage(name))) is not None:
            inputs.append(_tensor(device, session, j, name))
        else:
            inputs.append(session.expected[name])
    out = graph.tensor(layer.output)
    want = KERNELS[layer.op.kind](layer.op, graph, inputs).reshape(out.shape)
    got = _tensor(device, session, k, layer.output)
    if np.array_equal(got, want):
        return True, ""
    diff = np.abs(got.astype(np.int32) - want.astype(np.int32))
    count = int(np.count_nonzero(diff))
    return False, f"{count} of {diff.size} elements differ, max |diff| {int(diff.max())}"


def _entry(target: _Target, figures: dict[str, CandidateFigures], board: Board, library: NNLibrary,
           sim: Simulator, measured_on: str) -> TuningEntry:
    """The tuning entry of a measured layer: the fastest bit-exact candidate."""
    rows = tuple(figures.get(c.name, CandidateFigures(c.name, None, None, False, "not measured"))
                 for c in target.options)
    good = [f for f in rows if f.bit_exact and f.ticks is not None]
    if not good:
        why = "; ".join(f"{f.name}: {f.note}" for f in rows)
        raise BuildError(f"layer {target.layer.index} ({target.layer.op.origin}): no lowering computed it "
                         f"bit-exactly on {board.name} with {library.name} ({why})")
    chosen = min(good, key=lambda f: f.ticks)
    signature = layer_signature(target.layer)
    return TuningEntry(signature, board.cpu_class, library_id(library), chosen.name, rows, sim.method,
                       measured_on)


TUNING_FILE = "tuning.json"


@dataclass(frozen=True)
class TuneOptions:
    """`--tune`: measure what the tuning file lacks; `--tuning FILE`: the tuning file to read (and,
    with `tune`, to update) instead of a previous build's DIR/tuning.json; `seed`: of the vector
    the candidates are checked with; `--library-calls`: no generated kernel, every layer through the
    NN library (what `tune` then measures are the library's own candidates)."""

    tune: bool = False
    tuning: Path | None = None
    seed: int = 0
    library_calls: bool = False


def tuning_for(graph: Graph, board: Board, library: NNLibrary, out: Path, work: Path,
               options: TuneOptions, progress: Progress, *, source: str) -> Tuning | None:
    """The tuning a build of `graph` into `out` (staged in `work`) uses, None for the CPU class's
    defaults: `--tuning FILE`, else out/tuning.json left by an earlier build, with what `--tune`
    measures added (with `--library-calls`, marked to leave the generated kernels out). It is
    written to work/tuning.json (and with `--tune`, to FILE)."""
    path = options.tuning if options.tuning is not None else out / TUNING_FILE
    if path.is_file():
        tuning = Tuning.load(path)
    elif options.tuning is not None and not options.tune:
        raise InputError(f"{path}: no such tuning file (--tune creates one)")
    elif options.tune or options.library_calls:
        tuning = Tuning()
    else:
        return None
    tuning.library_only = options.library_calls
    if options.tune:
        table = library_only() if options.library_calls else CANDIDATES
        tune_graph(graph, board, library, tuning, work, progress, source=source, seed=options.seed,
                   table=table)
        if options.tuning is not None:
            tuning.save(options.tuning)
    tuning.save(work / TUNING_FILE)
    return tuning


def tuning_report(graph: Graph, library: NNLibrary, cpu_class: str, tuning: Tuning | None) -> dict:
    """Per layer with several lowerings: the one used and, from a tuning file, every candidate's
    figures and the gain over the first (the wrapper call)."""
    rows = model_tuning(graph, library, cpu_class, tuning or Tuning())
    return {**tuning_summary(rows), "tuning_file": tuning is not None}

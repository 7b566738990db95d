"""Per-layer localisation of a mismatch.

For one vector the device runs layers 0..k and returns layer k's output (INVOKE with
stop_after_layer = k, then a READ of the TENSOR space), for every k; each output is compared with
the host reference's value of the same tensor. The first layer whose output differs is the one
that computed wrongly (every layer before it was fed, and produced, the right values); its
differences are described by axis: which channels (last axis), rows, columns and batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import numpy as np

from mcudeploy.device.session import Session
from mcudeploy.errors import DeviceFault, MCUDeployError
from mcudeploy.ir import Graph
from mcudeploy.manifest import LayerInfo, Manifest
from mcudeploy.reference import run_graph
from mcudeploy.vectors import Vector
from mcudeploy.verify.compare import abs_diff
from mcudeploy.verify.verdict import Verdict

# Axis names by tensor rank (NHWC is fixed by the IR): the last axis is always "channels".
_AXES = {1: ("channels",), 2: ("batches", "channels"), 3: ("batches", "rows", "channels"),
         4: ("batches", "rows", "columns", "channels")}
_LIST_AT_MOST = 16
REPLAY_LIMIT = 5000  # inferences a stateful model's layer-by-layer re-run may take


@dataclass(frozen=True)
class LayerDiff:
    """One layer's output on the device against the host reference. `pattern` maps an axis name
    (batches, rows, columns, channels) to the indices along it where some element differs;
    `channel_max_abs_diff` is the largest |diff| of each channel. The mean is over all elements."""

    index: int
    name: str
    op: str
    origin: str
    kind: str
    shape: list[int]
    elements: int
    differing: int
    max_abs_diff: int
    mean_abs_diff: float
    pattern: dict[str, list[int]]
    channel_max_abs_diff: list[int]


@dataclass
class Localisation:
    """The layer-by-layer comparison of one vector. `first_divergent` is the index of the first
    layer whose output differs (None: every layer matched, the mismatch did not reproduce);
    `heatmap` is that layer's largest |diff| by row (or batch) and channel. `error`: the device
    failed during the layer-by-layer run (the layers are then not compared)."""

    vector: int
    layers: list[LayerDiff] = field(default_factory=list)
    first_divergent: int | None = None
    heatmap: list[list[int]] | None = None
    heatmap_rows: str = "rows"
    error: str | None = None

    def first(self) -> LayerDiff | None:
        return next((d for d in self.layers if d.index == self.first_divergent), None)

    def describe(self) -> str:
        """One line for people: the first diverging layer and the pattern of its differences."""
        d = self.first()
        if self.error is not None:
            return f"vector {self.vector} could not be re-run layer by layer: {self.error}"
        if d is None:
            return (f"vector {self.vector}: every layer's output matched the host reference when "
                    "run layer by layer (the mismatch did not reproduce)")
        by_axis = list(zip(d.pattern.items(), d.shape, strict=True))[::-1]  # channels first
        axes = "; ".join(f"{axis} {format_indices(found)} (of {size})"
                         for (axis, found), size in by_axis)
        return (f"layer {d.index} {d.name} ({d.origin}) is the first to diverge on vector "
                f"{self.vector}: {d.differing} of {d.elements} elements differ; {axes}; "
                f"max |diff| {d.max_abs_diff}, mean |diff| {d.mean_abs_diff:.3g}")


def localise_first_mismatch(verdict: Verdict, graph: Graph, manifest: Manifest, vectors: Sequence[Vector],
                            open_device: Callable[[], AbstractContextManager[Session]],
                            say: Callable[[str], None]) -> Localisation | None:
    """On a mismatch with the host reference in a run that finished, re-run its first vector layer
    by layer on a fresh device (`open_device`) and find the first layer that diverges."""
    bad = min((m.vector for m in verdict.mismatches if m.oracle == "host-reference"), default=None)
    if bad is None or verdict.failure is not None:
        return None
    history = vectors[:bad] if manifest.variables else []  # the state vector `bad` started from
    replays = len(history) * len(manifest.layers)
    if replays > REPLAY_LIMIT:
        return Localisation(bad, error=f"not re-run: for a stateful model that means replaying the "
                                       f"{len(history)} vectors before it for each layer "
                                       f"({replays} inferences)")
    say(f"re-running vector {bad} layer by layer to find the first layer that diverges")
    try:
        with open_device() as session:
            outputs = device_layer_outputs(session, vectors[bad], history)
    except MCUDeployError as exc:
        return Localisation(bad, error=str(exc))
    return localise(manifest, graph, bad, vectors[bad], outputs, history)


def device_layer_outputs(session: Session, vector: Vector,
                         history: Sequence[Vector] = ()) -> dict[int, bytes]:
    """Each layer's output tensor on the device for `vector`, by layer index (the raw bytes).

    `history`: the vectors a stateful model ran before this one. Before each layer the device is
    reset and runs them again, so that the layer sees the state it saw in the run."""
    found = {}
    for layer in session.manifest.layers:
        context = f"layer by layer, up to layer {layer.index}"
        if history:
            session.reset()
            for earlier in history:
                session.infer(earlier, context=context)
        session.run_to(layer.index, vector, context=context)
        found[layer.index] = session.tensor(layer.index)
    return found


def localise(manifest: Manifest, graph: Graph, vector_index: int, vector: Vector,
             device: dict[int, bytes], history: Sequence[Vector] = ()) -> Localisation:
    """Compare the device's layer outputs with the host reference's and find the first layer
    that diverges. Layers whose tensor the reference does not compute are left out. `history`:
    the vectors a stateful model ran before this one (its state follows from them)."""
    state: dict[str, np.ndarray] = {}
    for earlier in history:
        run_graph(graph, dict(zip(graph.inputs, earlier, strict=True)), state)
    values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)), state)
    tensors = {t.id: t for t in manifest.tensors}
    result = Localisation(vector_index)
    for layer in manifest.layers:
        data = device.get(layer.index)
        tensor = tensors.get(layer.tensor)
        if data is None or tensor is None or tensor.name not in values:
            continue
        expected = np.asarray(values[tensor.name])
        got = np.frombuffer(data, dtype=expected.dtype)
        if got.size != expected.size:
            raise DeviceFault(f"{manifest.describe_layer(layer.index)}: the device's tensor has "
                              f"{got.size} elements, the reference's {expected.size}")
        diff = abs_diff(got.reshape(expected.shape), expected)
        result.layers.append(_layer_diff(layer, diff))
        if result.first_divergent is None and diff.any():
            result.first_divergent = layer.index
            result.heatmap, result.heatmap_rows = _heatmap(diff)
    return result


def _layer_diff(layer: LayerInfo, diff: np.ndarray) -> LayerDiff:
    shape = list(diff.shape) or [1]
    diff = diff.reshape(shape)
    axes = _AXES.get(len(shape)) or (*(f"axis {i}" for i in range(len(shape) - 1)), "channels")
    pattern = {}
    for axis, name in enumerate(axes):
        others = tuple(a for a in range(len(shape)) if a != axis)
        pattern[name] = [int(i) for i in np.flatnonzero(diff.max(axis=others) if others else diff)]
    channels = diff.reshape(-1, shape[-1]).max(axis=0)
    return LayerDiff(
        index=layer.index, name=layer.name, op=layer.op, origin=layer.origin, kind=layer.kind,
        shape=shape, elements=int(diff.size), differing=int(np.count_nonzero(diff)),
        max_abs_diff=int(diff.max(initial=0)), mean_abs_diff=round(float(diff.mean()), 6),
        pattern=pattern, channel_max_abs_diff=[int(v) for v in channels],
    )


def _heatmap(diff: np.ndarray) -> tuple[list[list[int]], str]:
    """The largest |diff| by (row, channel) for NHWC, by (batch, channel) for [N, C]."""
    if diff.ndim == 4:
        grid, rows = diff.max(axis=(0, 2)), "rows"
    elif diff.ndim >= 2:
        grid, rows = diff.reshape(-1, diff.shape[-1]), "batches" if diff.ndim == 2 else "rows"
    else:
        grid, rows = diff.reshape(1, -1), "batches"
    return [[int(v) for v in row] for row in grid], rows


def format_indices(found: Sequence[int]) -> str:
    """`none`, `5`, `0-5`, `1, 3, 5`: the indices, runs written as ranges, long lists cut."""
    if not found:
        return "none"
    runs: list[list[int]] = []
    for i in found:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    parts = [str(a) if a == b else f"{a}-{b}" for a, b in runs]
    if len(parts) > _LIST_AT_MOST:
        parts = [*parts[:_LIST_AT_MOST], f"... ({len(found)} in all)"]
    return ", ".join(parts)

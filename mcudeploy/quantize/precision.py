"""Which layers of a float model are quantized int8 and which 16x8 (`--precision`):

- `int8`: every layer int8 (TFLite's int8 scheme);
- `int16`: every layer that has a 16x8 form (mcudeploy.arith.params_s16.S16_KINDS) 16x8, the others
  int8, with a QUANTIZE wherever a tensor crosses between the two;
- `auto`: start from int8 and measure every layer's SNR against the float model on the calibration
  samples; while the output SNR is below the floor (`--snr-warn`), move the worst layer still below
  it that has a 16x8 form and was not tried yet to 16x8, and measure again; a move that does not
  raise the output SNR is undone. Each decision is recorded with the layer's SNR, the output SNR
  before and after, and its cost: the arena (planned as code generation plans it) and the
  constants' bytes.

The mixed graph is made on the float IR before quantization (`with_precision`): each operator
computes in its precision, a RESHAPE in its input's, a model input in its first user's; an operator
that reads a tensor of the other precision reads a new tensor, its QUANTIZE, inserted just before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from mcudeploy import ir
from mcudeploy.arith.params_s16 import S16_KINDS
from mcudeploy.errors import UnsupportedError
from mcudeploy.quantize.quality import Quality

Range = tuple[float, float]
PRECISIONS = ("int8", "int16", "auto")


@dataclass(frozen=True)
class Mixed:
    """A float graph with its QUANTIZE between precisions, the ranges of its tensors and each
    activation's integer type."""

    graph: ir.Graph
    ranges: dict[str, Range]
    dtypes: dict[str, str]


def with_precision(graph: ir.Graph, ranges: dict[str, Range], int16_ops: frozenset[str]) -> Mixed:
    """`graph` with the operators named in `int16_ops` computing in int16 (see the module)."""
    ranges = dict(ranges)
    dtypes: dict[str, str] = {}
    users = {name: [op for op in graph.ops if name in op.inputs] for name in graph.inputs}
    for name in graph.inputs:
        dtypes[name] = "int16" if users[name] and users[name][0].name in int16_ops else "int8"
    tensors = dict(graph.tensors)
    converted: dict[tuple[str, str], str] = {}
    ops: list[ir.Op] = []
    for op in graph.ops:
        if op.kind == "reshape":
            precision = dtypes.get(op.inputs[0], "int8")
        else:
            precision = "int16" if op.name in int16_ops else "int8"
        inputs = []
        for name in op.inputs:
            t = tensors.get(name)
            if not name or t is None or t.is_constant or dtypes.get(name, precision) == precision:
                inputs.append(name)
                continue
            key = (name, precision)
            if key not in converted:
                new = f"{name} as {precision}"
                tensors[new] = replace(t, name=new)
                ranges[new] = ranges[name]
                dtypes[new] = precision
                ops.append(ir.Op(f"{op.name}_quantize_input", ir.Quantize(), (name,), (new,),
                                 f"QUANTIZE to {precision} before {op.origin}"))
                converted[key] = new
            inputs.append(converted[key])
        for name in op.outputs:
            dtypes[name] = precision
        ops.append(replace(op, inputs=tuple(inputs)))
    return Mixed(replace(graph, tensors=tensors, ops=tuple(ops)), ranges, dtypes)


def int16_candidates(graph: ir.Graph) -> list[ir.Op]:
    """The operators that have a 16x8 form."""
    return [op for op in graph.ops if op.kind in S16_KINDS]


@dataclass
class Move:
    """One `auto` decision: a layer tried as 16x8, the SNRs before and after, whether it was kept,
    and what it costs (arena bytes planned, constants' bytes)."""

    layer: str
    origin: str
    layer_snr_db: float
    output_snr_db_before: float
    output_snr_db_after: float
    kept: bool
    arena_bytes: int
    constant_bytes: int
    refused: str = ""  # why the 16x8 form of this layer cannot be deployed, if it cannot


@dataclass
class Choice:
    """The quantized graph chosen, its quality, and how it was chosen."""

    graph: ir.Graph
    quality: Quality
    int16_layers: list[str] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)


Quantize = Callable[[frozenset[str]], tuple[ir.Graph, Quality]]
Costs = Callable[[ir.Graph], tuple[int, int]]


def _output_snr(quality: Quality) -> float:
    return min(quality.output_snr_db.values(), default=float("inf"))


def choose_precision(float_graph: ir.Graph, mode: str, floor_db: float, quantize: Quantize,
                     costs: Costs) -> Choice:
    """The graph `mode` gives (see the module); `quantize(int16_ops)` quantizes and measures,
    `costs(graph)` gives the planned arena and the constants' bytes of a quantized graph."""
    if mode == "int8":
        graph, quality = quantize(frozenset())
        return Choice(graph, quality)
    if mode == "int16":
        layers = frozenset(op.name for op in int16_candidates(float_graph))
        graph, quality = quantize(layers)
        return Choice(graph, quality, sorted(layers, key=[op.name for op in float_graph.ops].index))
    graph, quality = quantize(frozenset())
    chosen: list[str] = []
    moves: list[Move] = []
    tried: set[str] = set()
    producers = {op.outputs[0]: op for op in int16_candidates(float_graph)}
    while _output_snr(quality) < floor_db:
        below = [(snr, producers[name]) for name, snr in quality.layer_snr_db.items()
                 if name in producers and snr < floor_db and producers[name].name not in tried]
        if not below:
            break
        snr, op = min(below, key=lambda pair: pair[0])
        tried.add(op.name)
        before = _output_snr(quality)
        try:
            trial_graph, trial = quantize(frozenset([*chosen, op.name]))
        except UnsupportedError as exc:
            moves.append(Move(op.name, op.origin, snr, before, before, False, 0, 0, str(exc)))
            continue
        after = _output_snr(trial)
        arena, constants = (b - a for a, b in zip(costs(graph), costs(trial_graph), strict=True))
        kept = after > before
        moves.append(Move(op.name, op.origin, snr, before, after, kept, arena, constants))
        if kept:
            chosen.append(op.name)
            graph, quality = trial_graph, trial
    return Choice(graph, quality, chosen, moves)

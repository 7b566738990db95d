"""The memory lowerings the planner may choose, and the arena they give.

Two lowerings go below the tensor-granularity bound, both bit-exact (the same kernels sum the same
products in the same order):
- overlaps: a layer's output starts a proved number of bytes below an input that dies there
  (mcudeploy.codegen.access_order, from each library's code and the generated kernels' templates:
  mcudeploy.codegen.walks; free at run time);
- streamed stages: a chain of convolutions computed a few rows at a time, whose inner maps are
  never whole (mcudeploy.codegen.stages; one kernel call per band, and rows moved).

The search is greedy: at the step where the most bytes are alive (overlaps taken), each chain
through that step that can be a stage is tried, with each band height; of those whose bound with
every overlap is within `TOLERANCE` of the lowest, the one with the fewest kernel calls is
planned, and kept when its arena is at least `MIN_GAIN` smaller. Then again, for at most
`MAX_STAGES` stages. Streaming needs the library's scratch for each band's dims, asked on the host
(`band_scratch`); a library that cannot answer there (older packs, sized by the device probe) gets
overlaps only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from mcudeploy.codegen.arena import ALIGNMENT, ArenaLayout, overlap_bound, plan_arena
from mcudeploy.codegen.lower import Layer, LoweredModel
from mcudeploy.codegen.planner import alive_bytes
from mcudeploy.codegen.stages import STAGE_TEMPLATE, chains, stage
from mcudeploy.codegen.walks import layer_shift
from mcudeploy.ir import Graph
from mcudeploy.nnlib import NNLibrary

MIN_GAIN = 0.10  # a stage costs instructions and code: it must cut the arena by a tenth
MAX_STAGES = 4
BANDS = (1, 2, 4, 8)
TOLERANCE = 0.02  # bytes given up for fewer kernel calls (each call has a fixed cost)


@dataclass(frozen=True)
class MemoryPlan:
    """The model with its stages, its scratch, the overlaps offered and the arena planned."""

    lowered: LoweredModel
    scratch: dict[int, int]
    shifts: dict[int, int]
    layout: ArenaLayout


def overlap_shifts(lowered: LoweredModel, library: NNLibrary, cpu_class: str,
                   stages: dict[int, int]) -> dict[int, int]:
    """Each layer's proved overlap: its kernel's (access_order), or a stage's own schedule."""
    shifts = dict(stages)
    for layer in lowered.layers:
        if layer.template != STAGE_TEMPLATE:
            shift = layer_shift(layer, library, cpu_class)
            if shift is not None:
                shifts[layer.index] = shift
    return shifts


def plan_memory(graph: Graph, lowered: LoweredModel, scratch: dict[int, int], library: NNLibrary,
                cpu_class: str, band_scratch: Callable[[Layer], int] | None,
                below_bound: bool = True) -> MemoryPlan:
    """Choose stages (see the module) and plan the arena with every proved overlap; without
    `below_bound`, neither (whole tensors, as the planner alone places them). `band_scratch` sizes
    the scratch of any layer, a band's too (None: no stages)."""
    if not below_bound:
        return MemoryPlan(lowered, scratch, {}, plan_arena(graph, lowered, scratch))
    shifts = overlap_shifts(lowered, library, cpu_class, {})
    best = MemoryPlan(lowered, scratch, shifts, plan_arena(graph, lowered, scratch, shifts=shifts))
    if band_scratch is None:
        return best
    bound = best.layout.plan.lower_bound  # of the model's whole tensors, without stages
    stages: dict[int, int] = {}
    for _ in range(MAX_STAGES):
        peak = _peak_step(best)
        trials = []
        for i, j in chains(graph, best.lowered):
            if not i <= peak <= j + 1:
                continue
            for band in BANDS:
                made = stage(best.lowered, i, j, band, band_scratch)
                if made is not None:
                    lowered2, stage_bytes, shift = made
                    scratch2 = {**best.scratch, **{k: 0 for k in range(i, j)}, j: stage_bytes}
                    shifts2 = overlap_shifts(lowered2, library, cpu_class, {**stages, j: shift})
                    trials.append(_Trial(overlap_bound(graph, lowered2, scratch2, shifts2),
                                         lowered2.layers[j].values["calls"], i, j,
                                         MemoryPlan(lowered2, scratch2, shifts2, best.layout), shift))
        if not trials:
            break
        least = min(t.bound for t in trials)
        chosen = min((t for t in trials if t.bound <= least * (1 + TOLERANCE)),
                     key=lambda t: (t.calls, t.first, t.last))
        model = chosen.model
        layout = plan_arena(graph, model.lowered, model.scratch, shifts=model.shifts)
        if layout.plan.arena_bytes > (1 - MIN_GAIN) * best.layout.plan.arena_bytes:
            break
        stages[chosen.last] = chosen.shift
        best = replace(model, layout=replace(layout, plan=replace(layout.plan, lower_bound=bound)))
    return best


@dataclass(frozen=True)
class _Trial:
    """A stage tried: the bound it allows, its kernel calls, its layers, the model with it."""

    bound: int
    calls: int
    first: int
    last: int
    model: MemoryPlan
    shift: int


def _peak_step(plan: MemoryPlan) -> int:
    """The last step at which the most bytes are alive (with the plan's overlaps taken)."""
    buffers = plan.layout.buffers
    return max(range(len(plan.lowered.layers) + 1), key=lambda s: (alive_bytes(buffers, s, ALIGNMENT), s))

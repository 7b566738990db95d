"""The memory lowerings the planner may choose, and the arena they give.

Two lowerings go below the tensor-granularity bound, both bit-exact (the same kernels sum the same
products in the same order):
- overlaps: a layer's output starts a proved number of bytes below an input that dies there
  (mcudeploy.codegen.access_order, from each library's code: mcudeploy.codegen.walks; free at
  run time);
- streamed stages: a chain of convolutions computed a few rows at a time, whose inner maps are
  never whole (mcudeploy.codegen.stages; one kernel call per band, and rows moved).

The search is greedy: at the step where the bound with every overlap taken is reached, each chain
through that step that can be a stage is tried, with each band height; of those whose bound is
within `TOLERANCE` of the lowest, the one with the fewest kernel calls is planned, and kept when
its arena is at least `MIN_GAIN` smaller. Then again, for at most
`MAX_STAGES` stages. Streaming needs the library's scratch for each band's dims, asked on the host;
a library that cannot answer there (older packs) gets overlaps only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mcudeploy.build import NNLibrary
from mcudeploy.codegen.arena import ArenaLayout, overlap_bound, plan_arena
from mcudeploy.codegen.lower import Layer, LoweredModel
from mcudeploy.codegen.scratch import answers_on_host, scratch_bytes
from mcudeploy.codegen.stages import STAGE_TEMPLATE, chains, stage
from mcudeploy.codegen.walks import layer_shift
from mcudeploy.ir import Graph

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
                cpu_class: str, with_stages: bool = True) -> MemoryPlan:
    """Choose stages (see the module; none without `with_stages`) and plan the arena with every
    proved overlap."""
    stages: dict[int, int] = {}
    shifts = overlap_shifts(lowered, library, cpu_class, stages)
    best = MemoryPlan(lowered, scratch, shifts, plan_arena(graph, lowered, scratch, shifts=shifts))
    if not with_stages or not answers_on_host(library, cpu_class):
        return best
    bound = best.layout.plan.lower_bound  # of the model's whole tensors, without stages

    def scratch_of(layer: Layer) -> int:
        return scratch_bytes(layer, library, cpu_class)

    for _ in range(MAX_STAGES):
        peak = _peak_step(graph, best)
        trials = []
        for i, j in chains(graph, best.lowered):
            if not i <= peak <= j + 1:
                continue
            for band in BANDS:
                made = stage(best.lowered, i, j, band, scratch_of)
                if made is None:
                    continue
                lowered2, stage_bytes, shift = made
                scratch2 = {**best.scratch, **{k: 0 for k in range(i, j)}, j: stage_bytes}
                stages2 = {**stages, j: shift}
                shifts2 = overlap_shifts(lowered2, library, cpu_class, stages2)
                estimate = overlap_bound(graph, lowered2, scratch2, shifts2)
                calls = lowered2.layers[j].values["calls"]
                trials.append((estimate, calls, i, j, lowered2, scratch2, stages2, shifts2))
        if not trials:
            break
        # The fewest kernel calls among the stages within TOLERANCE of the smallest bound.
        least = min(t[0] for t in trials)
        near = [t for t in trials if t[0] <= least * (1 + TOLERANCE)]
        _, _, _, j, lowered2, scratch2, stages2, shifts2 = min(near, key=lambda t: t[1:4])
        layout = plan_arena(graph, lowered2, scratch2, shifts=shifts2)
        if layout.plan.arena_bytes > (1 - MIN_GAIN) * best.layout.plan.arena_bytes:
            break
        stages = stages2
        layout = replace(layout, plan=replace(layout.plan, lower_bound=bound))
        best = MemoryPlan(lowered2, scratch2, shifts2, layout)
    return best


def _peak_step(graph: Graph, plan: MemoryPlan) -> int:
    """A step where the planned arena's bytes are all needed: the last step at which the buffers
    alive (with the overlaps taken) are the most."""
    layout = plan.layout
    steps = range(len(plan.lowered.layers) + 1)

    def alive(step: int) -> int:
        total = 0
        for b in layout.buffers:
            parts = b.parts or (None,)
            for part in parts:
                first, last, size = ((b.first, b.last, b.size) if part is None
                                     else (part.first, part.last, part.size))
                if first <= step <= last:
                    total += size
        return total

    return max(steps, key=lambda s: (alive(s), s))


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
every overlap is within `TOLERANCE` of the lowest, the one with the fewest extra instructions
(mcudeploy.codegen.stage_cost) is planned, and kept when its arena is at least `MIN_GAIN`
smaller. Then again, for at most `MAX_STAGES` stages. The `StagePolicy` bounds the instructions
all stages may add, as a share of the model's: a stage beyond it is declined, unless the arena
would not fit the board without it (`fits`). Every stage taken or declined is a `StageDecision`.
Streaming needs the library's scratch for each band's dims, asked on the host (`band_scratch`); a
library that cannot answer there (older packs, sized by the device probe) gets overlaps only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from mcudeploy.codegen.arena import ALIGNMENT, ArenaLayout, overlap_bound, plan_arena
from mcudeploy.codegen.lower import Layer, LoweredModel
from mcudeploy.codegen.planner import alive_bytes
from mcudeploy.codegen.stage_cost import model_instructions, stage_instructions
from mcudeploy.codegen.stages import ADD_TEMPLATES, STAGE_TEMPLATE, chains, residual_refusal, stage
from mcudeploy.codegen.walks import layer_shift, release_of
from mcudeploy.ir import Graph
from mcudeploy.nnlib import NNLibrary

MIN_GAIN = 0.10  # a stage costs instructions and code: it must cut the arena by a tenth
MAX_STAGES = 4
BANDS = (1, 2, 4, 8)
TOLERANCE = 0.02  # bytes given up for fewer instructions
DEFAULT_MAX_SLOWDOWN = 3.0  # percent of the model's instructions all stages together may add
Fits = Callable[[LoweredModel, ArenaLayout], bool]


@dataclass(frozen=True)
class StagePolicy:
    """How many instructions streamed stages may add, all together, in percent of the model's
    estimated instructions: `max_slowdown` (None: no limit, the least arena)."""

    max_slowdown: float | None = DEFAULT_MAX_SLOWDOWN


BALANCED = StagePolicy()


@dataclass(frozen=True)
class StageDecision:
    """A stage taken, declined or refused: layers first..last, `band` rows at a time (`residual`: the
    last an ADD of the chain's output and the stage's input, written over that input); the arena
    without and with it; the instructions it adds (estimated) and the model's; why. A refused stage
    (`stages.residual_refusal`) is not formed: its arena after and instructions are its arena
    before and 0."""

    first: int
    last: int
    band: int
    arena_before: int
    arena_after: int
    extra_instructions: int
    model_instructions: int
    taken: bool
    reason: str
    residual: bool = False
    refused: bool = False

    def describe(self) -> str:
        """One line for the report."""
        if self.refused:
            return f"layers {self.first}-{self.last} (ending in an ADD) refused: {self.reason}"
        rows = f"{self.band} row{'s' if self.band > 1 else ''}"
        what = f"layers {self.first}-{self.last} ({rows} at a time"
        what += ", the last an ADD with the stage's input, written over it)" if self.residual else ")"
        verb = "taken" if self.taken else "declined"
        return (f"{what} {verb}: arena {self.arena_before} -> "
                f"{self.arena_after} B, about +{self.extra_instructions} instructions "
                f"(+{_percent(self.extra_instructions, self.model_instructions)} of about "
                f"{self.model_instructions}); {self.reason}")


@dataclass(frozen=True)
class MemoryPlan:
    """The model with its stages, its scratch, the overlaps offered and the arena planned."""

    lowered: LoweredModel
    scratch: dict[int, int]
    shifts: dict[int, int]
    layout: ArenaLayout
    stages: tuple[StageDecision, ...] = ()


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
                below_bound: bool = True, policy: StagePolicy = BALANCED,
                fits: Fits | None = None) -> MemoryPlan:
    """Choose stages (see the module) and plan the arena with every proved overlap; without
    `below_bound`, neither (whole tensors, as the planner alone places them). `band_scratch` sizes
    the scratch of any layer, a band's too (None: no stages); `fits` tells whether a plan's arena
    fits the board (None: always)."""
    if not below_bound:
        return MemoryPlan(lowered, scratch, {}, plan_arena(graph, lowered, scratch))
    shifts = overlap_shifts(lowered, library, cpu_class, {})
    best = MemoryPlan(lowered, scratch, shifts, plan_arena(graph, lowered, scratch, shifts=shifts))
    if band_scratch is None:
        return best
    release = release_of(library)
    release_name = release.name if release is not None else None
    model_cost = model_instructions(lowered, release_name, cpu_class)
    budget = None if policy.max_slowdown is None else policy.max_slowdown / 100 * model_cost
    bound = best.layout.plan.lower_bound  # of the model's whole tensors, without stages
    stages: dict[int, int] = {}
    banded: frozenset[str] = frozenset()  # the templates stages call on bands
    decisions: list[StageDecision] = []
    spent = 0
    refused: set[tuple[int, int]] = set()
    for _ in range(MAX_STAGES):
        peak = _peak_step(best)
        trials = []
        for i, j in chains(graph, best.lowered):
            if not i <= peak <= j + 1:
                continue
            residual = best.lowered.layers[j].template in ADD_TEMPLATES
            reasons = [residual_refusal(best.lowered, i, j, band) for band in BANDS]
            if all(reasons) and (i, j) not in refused:
                refused.add((i, j))
                arena = best.layout.plan.arena_bytes
                decisions.append(StageDecision(i, j, BANDS[0], arena, arena, 0, model_cost, False,
                                               reasons[0], residual, True))
            for band in BANDS:
                made = stage(best.lowered, i, j, band, band_scratch)
                if made is not None:
                    lowered2, stage_bytes, shift = made
                    scratch2 = {**best.scratch, **{k: 0 for k in range(i, j)}, j: stage_bytes}
                    shifts2 = overlap_shifts(lowered2, library, cpu_class, {**stages, j: shift})
                    trials.append(_Trial(overlap_bound(graph, lowered2, scratch2, shifts2),
                                         stage_instructions(best.lowered, i, j, band, release_name,
                                                            cpu_class, banded),
                                         i, j, band, MemoryPlan(lowered2, scratch2, shifts2, best.layout),
                                         shift, residual))
        if not trials:
            break
        must_fit = fits is not None and not fits(best.lowered, best.layout)
        affordable = [t for t in trials if must_fit or budget is None or spent + t.extra <= budget]
        taken = _gain(graph, _pick(affordable), best) if affordable else None
        if taken is None:
            if len(affordable) < len(trials):  # declined for its instructions only?
                over = _gain(graph, _pick(trials), best)
                if over is not None:
                    share = _percent(spent + over[0].extra, model_cost)
                    decisions.append(_decision(*over, best, model_cost, False,
                                               f"stages would add {share} of the instructions, over the "
                                               f"{policy.max_slowdown:g}% allowed"))
            break
        chosen, planned = taken
        over_budget = budget is not None and spent + chosen.extra > budget
        reason = ("the arena does not fit the board without it (over the "
                  f"{policy.max_slowdown:g}% allowed)" if over_budget
                  else "no limit on instructions" if budget is None
                  else f"within the {policy.max_slowdown:g}% allowed")
        decisions.append(_decision(chosen, planned, best, model_cost, True, reason))
        spent += chosen.extra
        stages[chosen.last] = chosen.shift
        banded |= {layer.template for layer in best.lowered.layers[chosen.first:chosen.last + 1]}
        layout = planned.layout
        best = replace(planned, layout=replace(layout, plan=replace(layout.plan, lower_bound=bound)))
    return replace(best, stages=tuple(decisions))


@dataclass(frozen=True)
class _Trial:
    """A stage tried: the bound it allows, its estimated extra instructions, its layers and band,
    the model with it."""

    bound: int
    extra: int
    first: int
    last: int
    band: int
    model: MemoryPlan
    shift: int
    residual: bool = False


def _pick(trials: list[_Trial]) -> _Trial:
    """Of the trials whose bound is within TOLERANCE of the lowest, the cheapest."""
    least = min(t.bound for t in trials)
    return min((t for t in trials if t.bound <= least * (1 + TOLERANCE)),
               key=lambda t: (t.extra, t.first, t.last))


def _gain(graph: Graph, trial: _Trial, best: MemoryPlan) -> tuple[_Trial, MemoryPlan] | None:
    """The trial planned, if its arena is at least MIN_GAIN below `best`'s."""
    model = trial.model
    layout = plan_arena(graph, model.lowered, model.scratch, shifts=model.shifts)
    if layout.plan.arena_bytes > (1 - MIN_GAIN) * best.layout.plan.arena_bytes:
        return None
    return trial, replace(model, layout=layout)


def _percent(extra: int, total: int) -> str:
    return f"{100 * extra / max(total, 1):.2f}%"


def _decision(trial: _Trial, planned: MemoryPlan, best: MemoryPlan, model_cost: int, taken: bool,
              reason: str) -> StageDecision:
    return StageDecision(trial.first, trial.last, trial.band, best.layout.plan.arena_bytes,
                         planned.layout.plan.arena_bytes, trial.extra, model_cost, taken, reason,
                         trial.residual)


def _peak_step(plan: MemoryPlan) -> int:
    """The last step at which the most bytes are alive (with the plan's overlaps taken)."""
    buffers = plan.layout.buffers
    return max(range(len(plan.lowered.layers) + 1), key=lambda s: (alive_bytes(buffers, s, ALIGNMENT), s))

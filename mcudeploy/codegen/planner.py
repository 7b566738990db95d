"""Static arena planning: every activation and scratch buffer gets a fixed offset in one arena.

The algorithm (greedy by size, as in TFLM's GreedyMemoryPlanner and "Efficient Memory Management
for Deep Neural Net Inference", Pisarchyk and Lee 2020), then a repair loop:

1. Each buffer has a size and a lifetime [first, last] in layer steps: a model input lives from
   step 0, a layer's output from its layer, a model output until the end, a scratch buffer only
   during its layer. Two buffers conflict when their lifetimes overlap.
2. Take buffers from the largest to the smallest. For each, look at the already placed buffers it
   conflicts with, sorted by offset, and put it in the first gap (at aligned offsets) that is big
   enough, or after the last of them.
3. The arena is the highest end offset.
4. Repair: while the arena is above the liveness lower bound, move the buffer that ends highest to
   the front of the order and place everything again; keep the best plan. Greedy by size fails
   where a large buffer takes the bottom of the arena at a step that is not the peak: in a
   MobileNet the 96x96x3 input sits at offset 0, the first two layer outputs stack above it, and
   the arena is 17% over the bound. Placing the buffer that overflows first lets the others fit
   around it; a few rounds meet the bound on the MLPerf Tiny networks.

The baseline, `plan_linear`, gives every buffer its own range (the sum of all sizes). The
liveness lower bound is the largest total of (aligned) bytes alive at one step: no plan can do
better. Finding the smallest arena is NP-hard in general (dynamic storage allocation), so the
bound is not always reachable, and `Plan` reports both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

REPAIR_ROUNDS = 64


@dataclass(frozen=True)
class Buffer:
    """A buffer to place: `first` and `last` are the layer steps it must survive, inclusive."""

    name: str
    size: int
    first: int
    last: int

    def overlaps(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass(frozen=True)
class Plan:
    """Offsets of every buffer in an arena of `arena_bytes`."""

    offsets: dict[str, int]
    arena_bytes: int
    lower_bound: int
    algorithm: str


def align(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


def lower_bound(buffers: list[Buffer], alignment: int) -> int:
    """Max over steps of the aligned bytes alive at that step."""
    steps = {b.first for b in buffers} | {b.last for b in buffers}
    return max(
        (sum(align(b.size, alignment) for b in buffers if b.first <= s <= b.last) for s in steps),
        default=0,
    )


def _place(order: Sequence[Buffer], alignment: int) -> dict[str, int]:
    """First fit in the given order: each buffer in the lowest gap its placed conflicts leave."""
    placed: list[tuple[Buffer, int]] = []
    for buf in order:
        size = align(buf.size, alignment)
        conflicts = sorted(
            (off, off + align(other.size, alignment)) for other, off in placed
            if other.overlaps(buf) and other.size > 0
        )
        offset = 0
        for start, end in conflicts:
            if start - offset >= size:
                break
            offset = max(offset, end)
        placed.append((buf, offset))
    return {b.name: off for b, off in placed}


def _arena(buffers: Sequence[Buffer], offsets: dict[str, int], alignment: int) -> int:
    return max((offsets[b.name] + align(b.size, alignment) for b in buffers), default=0)


def plan_greedy(buffers: list[Buffer], alignment: int = 4) -> Plan:
    """Greedy by size, then repaired towards the lower bound (see the module's docstring)."""
    bound = lower_bound(buffers, alignment)
    order = sorted(buffers, key=lambda b: (-b.size, b.first, b.name))
    best = _place(order, alignment)
    best_arena = _arena(buffers, best, alignment)
    offsets, arena = best, best_arena
    for _ in range(REPAIR_ROUNDS):
        if best_arena <= bound:
            break
        # The buffer ending highest; of several, the one placed last (it was pushed up).
        _, rank = max((offsets[b.name] + align(b.size, alignment), i) for i, b in enumerate(order))
        if rank == 0:
            break
        top = order[rank]
        order = [top] + [b for b in order if b is not top]
        offsets = _place(order, alignment)
        arena = _arena(buffers, offsets, alignment)
        if arena < best_arena:
            best, best_arena = offsets, arena
    return Plan(best, best_arena, bound, "greedy-by-size")


def plan_linear(buffers: list[Buffer], alignment: int = 4) -> Plan:
    """Baseline: one range per buffer, nothing shared."""
    offsets, cursor = {}, 0
    for buf in buffers:
        offsets[buf.name] = cursor
        cursor += align(buf.size, alignment)
    return Plan(offsets, cursor, lower_bound(buffers, alignment), "linear")

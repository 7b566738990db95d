"""Static arena planning: every activation and scratch buffer gets a fixed offset in one arena.

The algorithm (greedy by size, as in TFLM's GreedyMemoryPlanner and "Efficient Memory Management
for Deep Neural Net Inference", Pisarchyk and Lee 2020):

1. Each buffer has a size and a lifetime [first, last] in layer steps: a model input lives from
   step 0, a layer's output from its layer, a model output until the end, a scratch buffer only
   during its layer. Two buffers conflict when their lifetimes overlap.
2. Take buffers from the largest to the smallest. For each, look at the already placed buffers it
   conflicts with, sorted by offset, and put it in the first gap (at aligned offsets) that is big
   enough, or after the last of them.
3. The arena is the highest end offset.

The baseline, `plan_linear`, gives every buffer its own range (the sum of all sizes). The
liveness lower bound is the largest total of (aligned) bytes alive at one step: no plan can do
better, and greedy-by-size usually meets it.
"""

from __future__ import annotations

from dataclasses import dataclass


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


def plan_greedy(buffers: list[Buffer], alignment: int = 4) -> Plan:
    """Greedy by size: the largest buffers first, each in the lowest gap its conflicts leave."""
    placed: list[tuple[Buffer, int]] = []
    order = sorted(buffers, key=lambda b: (-b.size, b.first, b.name))
    for buf in order:
        size = align(buf.size, alignment)
        conflicts = sorted(
            ((off, off + align(other.size, alignment)) for other, off in placed
             if other.overlaps(buf) and other.size > 0),
        )
        offset = 0
        for start, end in conflicts:
            if start - offset >= size:
                break
            offset = max(offset, align(end, alignment))
        placed.append((buf, offset))
    offsets = {b.name: off for b, off in placed}
    arena = max((off + align(b.size, alignment) for b, off in placed), default=0)
    return Plan(offsets, arena, lower_bound(buffers, alignment), "greedy-by-size")


def plan_linear(buffers: list[Buffer], alignment: int = 4) -> Plan:
    """Baseline: one range per buffer, nothing shared."""
    offsets, cursor = {}, 0
    for buf in buffers:
        offsets[buf.name] = cursor
        cursor += align(buf.size, alignment)
    return Plan(offsets, cursor, lower_bound(buffers, alignment), "linear")

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

A buffer may be made of parts, each at a fixed offset inside it with its own lifetime: tensors
whose bytes a layer's output overlaps (mcudeploy.codegen.arena). Two buffers conflict where two of
their parts are alive together, and only those parts' bytes must stay apart; the bound counts, at
each step, the bytes of a buffer's parts alive then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

REPAIR_ROUNDS = 64

# For each buffer: the buffers it may not share bytes with, and the ranges of offsets (relative to
# where each of those is placed) it must avoid.
Conflicts = dict[str, list[tuple[str, list[tuple[int, int]]]]]


@dataclass(frozen=True)
class Part:
    """A piece of a buffer: `size` bytes at `offset` inside it, alive from step `first` to `last`."""

    offset: int
    size: int
    first: int
    last: int


@dataclass(frozen=True)
class Buffer:
    """A buffer to place: `first` and `last` are the layer steps it must survive, inclusive.
    `parts`, when given, say which of its bytes are alive when (else all of them, all along)."""

    name: str
    size: int
    first: int
    last: int
    parts: tuple[Part, ...] = ()

    def overlaps(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last

    def pieces(self, alignment: int) -> tuple[Part, ...]:
        """Its parts (aligned), or the whole buffer as one part."""
        if not self.parts:
            return (Part(0, align(self.size, alignment), self.first, self.last),)
        return tuple(Part(p.offset, align(p.size, alignment), p.first, p.last) for p in self.parts if p.size)


@dataclass(frozen=True)
class Plan:
    """Offsets of every buffer in an arena of `arena_bytes`."""

    offsets: dict[str, int]
    arena_bytes: int
    lower_bound: int
    algorithm: str


def align(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


def _alive_bytes(pieces: Sequence[Part], step: int) -> int:
    """Bytes covered by the parts alive at `step` (parts of one buffer may overlap)."""
    spans = sorted((p.offset, p.offset + p.size) for p in pieces if p.first <= step <= p.last)
    total, reach = 0, None
    for start, end in spans:
        if reach is None or start >= reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total


def alive_bytes(buffers: Sequence[Buffer], step: int, alignment: int) -> int:
    """The aligned bytes of `buffers` alive at `step`."""
    return sum(_alive_bytes(b.pieces(alignment), step) for b in buffers)


def lower_bound(buffers: list[Buffer], alignment: int) -> int:
    """Max over steps of the aligned bytes alive at that step."""
    pieces = [b.pieces(alignment) for b in buffers]
    steps = {p.first for ps in pieces for p in ps} | {p.last for ps in pieces for p in ps}
    return max((sum(_alive_bytes(ps, s) for ps in pieces) for s in steps), default=0)


def _forbidden(mine: Sequence[Part], theirs: Sequence[Part]) -> list[tuple[int, int]]:
    """Open ranges of offsets, relative to where the other buffer is placed, where a buffer of parts
    `mine` would overlap a live byte of the other buffer's parts `theirs`."""
    return [(b.offset - a.offset - a.size, b.offset + b.size - a.offset)
            for a in mine for b in theirs if a.first <= b.last and b.first <= a.last]


def _conflicts(buffers: Sequence[Buffer], alignment: int) -> Conflicts:
    """Which buffers conflict, and where (see `Conflicts`); computed once per plan."""
    pieces = {b.name: b.pieces(alignment) for b in buffers}
    found: Conflicts = {b.name: [] for b in buffers}
    for buf in buffers:
        for other in buffers:
            if other is not buf and other.size > 0 and buf.overlaps(other):
                ranges = _forbidden(pieces[buf.name], pieces[other.name])
                if ranges:
                    found[buf.name].append((other.name, ranges))
    return found


def _place(order: Sequence[Buffer], conflicts: Conflicts, alignment: int) -> dict[str, int]:
    """First fit in the given order: each buffer at the lowest offset its placed conflicts leave."""
    offsets: dict[str, int] = {}
    for buf in order:
        forbidden = sorted((offsets[other] + low, offsets[other] + high)
                           for other, ranges in conflicts[buf.name] if other in offsets
                           for low, high in ranges)
        offset = 0
        for low, high in forbidden:
            if offset <= low:
                break
            if offset < high:
                offset = align(high, alignment)
        offsets[buf.name] = offset
    return offsets


def _arena(buffers: Sequence[Buffer], offsets: dict[str, int], alignment: int) -> int:
    return max((offsets[b.name] + align(b.size, alignment) for b in buffers), default=0)


def plan_greedy(buffers: list[Buffer], alignment: int = 4) -> Plan:
    """Greedy by size, then repaired towards the lower bound (see the module's docstring)."""
    bound = lower_bound(buffers, alignment)
    order = sorted(buffers, key=lambda b: (-b.size, b.first, b.name))
    conflicts = _conflicts(buffers, alignment)
    best = _place(order, conflicts, alignment)
    best_arena = _arena(buffers, best, alignment)
    offsets, arena = best, best_arena
    seen = {tuple(b.name for b in order)}
    for _ in range(REPAIR_ROUNDS):
        if best_arena <= bound:
            break
        # The buffer ending highest; of several, the one placed last (it was pushed up).
        _, rank = max((offsets[b.name] + align(b.size, alignment), i) for i, b in enumerate(order))
        if rank == 0:
            break
        top = order[rank]
        order = [top] + [b for b in order if b is not top]
        key = tuple(b.name for b in order)
        if key in seen:  # the rounds would repeat: no arena not seen already
            break
        seen.add(key)
        offsets = _place(order, conflicts, alignment)
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

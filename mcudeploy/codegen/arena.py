"""Lifetimes of the model's buffers, handed to the planner: activations and per-layer scratch.

Four kinds of sharing are decided here, before placement:
- a RESHAPE output is its input (the lowering records it as an alias);
- an element-wise layer (ADD, MUL) writes its output over an input that dies at that layer, when
  the two have the same size: the output takes the input's buffer, offset for offset;
- a layer whose kernel's access order allows it writes its output over the end of an input that
  dies at that layer, starting a proved number of bytes below it (`shifts`, from
  mcudeploy.codegen.access_order, or a streamed stage's own schedule: mcudeploy.codegen.stages);
- scratch lives only during its layer, like a tensor produced and consumed by one step.

Tensors that share bytes form one group, each at a fixed offset inside it; the planner places
groups, each member's bytes reserved over that member's lifetime only (planner.Part). A group's
members that are alive together never overlap, but for the pairs allowed above (which overlaps
to take: `plan_arena`).

In-place is safe because the element-wise kernels, nnref's and CMSIS-NN's, read element i (or a
block of elements) of both inputs before they write element i (or that block) of the output, walk
forward, and take no `restrict` pointers: with the output exactly on top of an input, every
element is read before it is overwritten.

`plan.lower_bound` stays the tensor-granularity bound (largest total of whole tensors alive at one
step, with the in-place element-wise outputs merged): overlapping layers go below it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from mcudeploy.codegen.lower import LoweredModel
from mcudeploy.codegen.planner import Buffer, Part, Plan, align, alive_bytes, lower_bound, plan_greedy
from mcudeploy.ir import Graph

ALIGNMENT = 4
IN_PLACE_KINDS = frozenset({"add", "mul"})


@dataclass(frozen=True)
class ArenaLayout:
    """Where each tensor (by storage name) and each layer's scratch lives in the arena.

    `in_place` maps a layer's index to the input whose buffer its output took over; `overlaps`
    maps a layer's index to how many bytes below its input its output starts (over the input)."""

    plan: Plan
    buffers: tuple[Buffer, ...]
    tensor_offsets: dict[str, int]
    scratch_offsets: dict[int, int]
    in_place: dict[int, str]
    overlaps: dict[int, int] = field(default_factory=dict)


def scratch_name(layer_index: int) -> str:
    return f"scratch:{layer_index}"


@dataclass
class _Group:
    """Tensors sharing one planned buffer: each storage name at an offset inside it."""

    members: dict[str, int]

    def size(self, sizes: Mapping[str, int]) -> int:
        return max((offset + align(sizes[k], ALIGNMENT) for k, offset in self.members.items()), default=0)


@dataclass
class _Lifetimes:
    """Buffers to place: the groups of tensors (by their first member) and the scratch."""

    sizes: dict[str, int]  # storage name -> bytes
    first: dict[str, int]  # storage name -> first step
    last: dict[str, int]  # storage name -> last step
    groups: dict[str, _Group]  # group name -> group
    group_of: dict[str, str]  # storage name -> group name
    scratch: list[Buffer]
    in_place: dict[int, str]
    overlaps: dict[int, int] = field(default_factory=dict)  # layer -> bytes its output starts below its input

    def buffers(self) -> list[Buffer]:
        out = []
        for name, group in self.groups.items():
            members = group.members
            parts = tuple(Part(off, self.sizes[k], self.first[k], self.last[k])
                          for k, off in members.items()) if len(members) > 1 else ()
            out.append(Buffer(name, group.size(self.sizes), min(self.first[k] for k in members),
                              max(self.last[k] for k in members), parts))
        return out + self.scratch


def _lifetimes(graph: Graph, lowered: LoweredModel, scratch: dict[int, int]) -> _Lifetimes:
    end = len(lowered.layers)
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    owner: dict[str, str] = {}
    in_place: dict[int, str] = {}

    def buffer(name: str) -> str:
        key = lowered.storage(name)
        return owner.get(key, key)

    def touch(key: str, step: int) -> None:
        first[key] = min(first.get(key, step), step)
        last[key] = max(last.get(key, step), step)

    # Last uses of the storage names, before any in-place merging.
    for name in graph.inputs:
        touch(lowered.storage(name), 0)
    for layer in lowered.layers:
        for name in layer.inputs:
            if not graph.tensor(name).is_constant:
                touch(lowered.storage(name), layer.index)
        if lowered.storage(layer.output) not in lowered.internal:
            touch(lowered.storage(layer.output), layer.index)
    for name in graph.outputs:
        touch(lowered.storage(name), end)

    lifetimes = (dict(first), dict(last))  # each tensor's own, before merging
    # In order: an element-wise output takes over an input buffer that dies at its layer.
    for layer in lowered.layers:
        if layer.op.kind not in IN_PLACE_KINDS:
            continue
        out = lowered.storage(layer.output)
        for name in layer.inputs:
            if graph.tensor(name).is_constant:
                continue
            host = buffer(name)
            if (host != out and host not in graph.variables and last[host] == layer.index
                    and graph.tensor(host).nbytes == graph.tensor(out).nbytes):
                owner[out] = host
                last[host] = last.pop(out)
                first.pop(out)
                in_place[layer.index] = name
                break

    keys = [k for k in first if k not in graph.variables]  # variables live in their own arrays
    sizes = {k: graph.tensor(k).nbytes for k in keys}
    sizes.update({k: graph.tensor(k).nbytes for k in owner})
    groups = {k: _Group({k: 0}) for k in keys}
    for out, host in owner.items():
        groups[host].members[out] = 0
    group_of = {k: g for g, group in groups.items() for k in group.members}
    scratch_buffers = [
        Buffer(scratch_name(i), size, i, i) for i, size in scratch.items()
        if size > 0 and not lowered.layers[i].persistent_scratch
    ]
    return _Lifetimes(sizes, *lifetimes, groups, group_of, scratch_buffers, in_place)


def model_buffers(graph: Graph, lowered: LoweredModel, scratch: dict[int, int]) -> list[Buffer]:
    """One buffer per stored activation (reshape and in-place aliases merged) and per layer
    needing arena scratch."""
    return _lifetimes(graph, lowered, scratch).buffers()


def _merge(lives: _Lifetimes, source: str, target: str, shift: int, index: int) -> _Lifetimes | None:
    """`lives` with the group of `target` (layer `index`'s output) joined to the group of `source`
    (its input, which dies there), `target` starting `shift` bytes below `source`; None if two
    members alive together would then overlap."""
    gi, go = lives.group_of[source], lives.group_of[target]
    if gi == go:
        return None
    inner, outer = lives.groups[gi].members, lives.groups[go].members
    delta = inner[source] - align(shift, ALIGNMENT) - outer[target]
    moved = {k: off + delta for k, off in outer.items()}
    for a, a_off in moved.items():
        for b, b_off in inner.items():
            if (b, a) == (source, target):
                continue
            alive = lives.first[a] <= lives.last[b] and lives.first[b] <= lives.last[a]
            apart = (a_off + lives.sizes[a] <= b_off or b_off + lives.sizes[b] <= a_off
                     or not lives.sizes[a] or not lives.sizes[b])
            if alive and not apart:
                return None
    members = {**inner, **moved}
    low = min(members.values())
    members = {k: off - low for k, off in members.items()}
    groups = {name: g for name, g in lives.groups.items() if name != go}
    groups[gi] = _Group(members)
    group_of = {**lives.group_of, **{k: gi for k in moved}}
    return replace(lives, groups=groups, group_of=group_of,
                   overlaps={**lives.overlaps, index: align(shift, ALIGNMENT)})


def _candidates(lowered: LoweredModel, lives: _Lifetimes, shifts: Mapping[int, int] | None):
    """The (layer, input, output, shift) overlaps that `shifts` offers, in layer order."""
    for index, shift in sorted((shifts or {}).items()):
        layer = lowered.layers[index]
        source, target = lowered.storage(layer.inputs[0]), lowered.storage(layer.output)
        if (source in lives.group_of and target in lives.group_of
                and lives.last[source] == index and lives.first[target] == index):
            yield index, source, target, shift


def _merged(lives: _Lifetimes, candidates, wanted: Callable[[_Lifetimes, int], bool]) -> _Lifetimes:
    """`lives` with the overlaps of `candidates` taken, in order, where `wanted(lives, layer)`."""
    for index, source, target, shift in candidates:
        if wanted(lives, index):
            lives = _merge(lives, source, target, shift, index) or lives
    return lives


def overlap_bound(graph: Graph, lowered: LoweredModel, scratch: dict[int, int],
                  shifts: Mapping[int, int] | None = None) -> int:
    """The liveness bound with every overlap `shifts` offers taken: what a plan could reach."""
    lives = _lifetimes(graph, lowered, scratch)
    lives = _merged(lives, list(_candidates(lowered, lives, shifts)), lambda lives, index: True)
    return lower_bound(lives.buffers(), ALIGNMENT)


def plan_arena(
    graph: Graph, lowered: LoweredModel, scratch: dict[int, int],
    planner: Callable[[list[Buffer], int], Plan] = plan_greedy,
    shifts: Mapping[int, int] | None = None,
) -> ArenaLayout:
    """Plan every buffer of the model in one arena. `shifts` maps a layer's index to the bytes its
    output must start below its first input to overlap it (proved for its kernel; see the module).

    Overlaps fix their tensors' offsets relative to each other, and a chain of them drifts down
    (each output starts below its input), so taking every overlap can cost more than it saves. The
    plans tried: no overlap; the overlaps at the steps that hold more bytes than the bound with
    every overlap taken (the steps that need them), in layer order; every overlap. The smallest
    arena wins (the first of equals)."""
    lives = _lifetimes(graph, lowered, scratch)
    buffers = lives.buffers()
    tensor_bound = lower_bound(buffers, ALIGNMENT)
    candidates = list(_candidates(lowered, lives, shifts))
    every = _merged(lives, candidates, lambda lives, index: True)
    target = lower_bound(every.buffers(), ALIGNMENT)
    needed = _merged(lives, candidates,
                     lambda lives, index: alive_bytes(lives.buffers(), index, ALIGNMENT) > target)
    options = [lives, needed, every] if candidates else [lives]
    plans = [(planner(option.buffers(), ALIGNMENT), option) for option in options]
    plan, lives = min(plans, key=lambda p: p[0].arena_bytes)
    plan = replace(plan, lower_bound=tensor_bound)
    tensors = {k: plan.offsets[g] + lives.groups[g].members[k] for k, g in lives.group_of.items()}
    scratch_offsets = {int(b.name.split(":")[1]): plan.offsets[b.name] for b in lives.scratch}
    return ArenaLayout(plan, tuple(lives.buffers()), tensors, scratch_offsets, lives.in_place,
                       dict(lives.overlaps))

"""Lifetimes of the model's buffers, handed to the planner: activations and per-layer scratch.

Three kinds of sharing are decided here, before placement:
- a RESHAPE output is its input (the lowering records it as an alias);
- an element-wise layer (ADD, MUL) writes its output over an input that dies at that layer, when
  the two have the same size: the output takes the input's buffer, offset for offset;
- scratch lives only during its layer, like a tensor produced and consumed by one step.

In-place is safe because the element-wise kernels, nnref's and CMSIS-NN's, read element i (or a
block of elements) of both inputs before they write element i (or that block) of the output, walk
forward, and take no `restrict` pointers: with the output exactly on top of an input, every
element is read before it is overwritten. Only exact aliasing is allowed, never a shifted overlap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mcudeploy.codegen.lower import LoweredModel
from mcudeploy.codegen.planner import Buffer, Plan, plan_greedy
from mcudeploy.ir import Graph

ALIGNMENT = 4
IN_PLACE_KINDS = frozenset({"add", "mul"})


@dataclass(frozen=True)
class ArenaLayout:
    """Where each tensor (by storage name) and each layer's scratch lives in the arena.

    `in_place` maps a layer's index to the input whose buffer its output took over.
    """

    plan: Plan
    buffers: tuple[Buffer, ...]
    tensor_offsets: dict[str, int]
    scratch_offsets: dict[int, int]
    in_place: dict[int, str]


def scratch_name(layer_index: int) -> str:
    return f"scratch:{layer_index}"


@dataclass(frozen=True)
class _Lifetimes:
    """Buffers to place, and which storage name lives in which buffer."""

    buffers: list[Buffer]
    owner: dict[str, str]  # storage name -> the buffer holding it
    in_place: dict[int, str]


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
        touch(lowered.storage(layer.output), layer.index)
    for name in graph.outputs:
        touch(lowered.storage(name), end)

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

    buffers = [Buffer(k, graph.tensor(k).nbytes, first[k], last[k]) for k in first
               if k not in graph.variables]  # variables live in their own arrays, not the arena
    buffers += [
        Buffer(scratch_name(i), size, i, i) for i, size in scratch.items()
        if size > 0 and not lowered.layers[i].persistent_scratch
    ]
    return _Lifetimes(buffers, owner, in_place)


def model_buffers(graph: Graph, lowered: LoweredModel, scratch: dict[int, int]) -> list[Buffer]:
    """One buffer per stored activation (reshape and in-place aliases merged) and per layer
    needing arena scratch."""
    return _lifetimes(graph, lowered, scratch).buffers


def plan_arena(
    graph: Graph, lowered: LoweredModel, scratch: dict[int, int],
    planner: Callable[[list[Buffer], int], Plan] = plan_greedy,
) -> ArenaLayout:
    """Plan every buffer of the model in one arena."""
    lives = _lifetimes(graph, lowered, scratch)
    plan = planner(lives.buffers, ALIGNMENT)
    tensors = {b.name: plan.offsets[b.name] for b in lives.buffers if not b.name.startswith("scratch:")}
    tensors.update({key: tensors[host] for key, host in lives.owner.items()})
    scratch_offsets = {
        int(b.name.split(":")[1]): plan.offsets[b.name] for b in lives.buffers
        if b.name.startswith("scratch:")
    }
    return ArenaLayout(plan, tuple(lives.buffers), tensors, scratch_offsets, lives.in_place)

"""Lifetimes of the model's buffers, handed to the planner: activations and per-layer scratch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mcudeploy.codegen.lower import LoweredModel
from mcudeploy.codegen.planner import Buffer, Plan, plan_greedy
from mcudeploy.ir import Graph

ALIGNMENT = 4


@dataclass(frozen=True)
class ArenaLayout:
    """Where each tensor (by storage name) and each layer's scratch lives in the arena."""

    plan: Plan
    buffers: tuple[Buffer, ...]
    tensor_offsets: dict[str, int]
    scratch_offsets: dict[int, int]


def scratch_name(layer_index: int) -> str:
    return f"scratch:{layer_index}"


def model_buffers(graph: Graph, lowered: LoweredModel, scratch: dict[int, int]) -> list[Buffer]:
    """One buffer per stored activation (aliases merged) and per layer needing arena scratch."""
    end = len(lowered.layers)
    first: dict[str, int] = {}
    last: dict[str, int] = {}

    def touch(name: str, step: int) -> None:
        key = lowered.storage(name)
        first[key] = min(first.get(key, step), step)
        last[key] = max(last.get(key, step), step)

    for name in graph.inputs:
        touch(name, 0)
    for layer in lowered.layers:
        for name in layer.inputs:
            if not graph.tensor(name).is_constant:
                touch(name, layer.index)
        touch(layer.output, layer.index)
    for name in graph.outputs:
        touch(name, end)
    buffers = [Buffer(k, graph.tensor(k).nbytes, first[k], last[k]) for k in first]
    buffers += [
        Buffer(scratch_name(i), size, i, i) for i, size in scratch.items()
        if size > 0 and not lowered.layers[i].persistent_scratch
    ]
    return buffers


def plan_arena(
    graph: Graph, lowered: LoweredModel, scratch: dict[int, int],
    planner: Callable[[list[Buffer], int], Plan] = plan_greedy,
) -> ArenaLayout:
    """Plan every buffer of the model in one arena."""
    buffers = model_buffers(graph, lowered, scratch)
    plan = planner(buffers, ALIGNMENT)
    tensors = {b.name: plan.offsets[b.name] for b in buffers if not b.name.startswith("scratch:")}
    scratch_offsets = {
        int(b.name.split(":")[1]): plan.offsets[b.name] for b in buffers
        if b.name.startswith("scratch:")
    }
    return ArenaLayout(plan, tuple(buffers), tensors, scratch_offsets)

"""Data-movement nodes (Reshape, Flatten, Squeeze, Unsqueeze, Transpose) in the NHWC plan: which
layout their output takes, whether their NHWC bytes stay in place (a free reshape), and if not,
which transpose of the NHWC form they are. Each is worked out on index arrays: the output, in ONNX
order, holds every element's position in the input, and the layouts map both to IR order.
"""

from __future__ import annotations

import itertools

import numpy as np
import onnx
from onnx import helper

from mcudeploy.frontends.layout import Layout, candidates, onnx_positions
from mcudeploy.frontends.onnx_graph import OnnxGraph

SPATIAL_OPS = {"Conv", "AveragePool", "MaxPool", "GlobalAveragePool", "GlobalMaxPool",
               "BatchNormalization"}  # they read a channels-first tensor
MOVES = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose"}
MAX_TRANSPOSE_RANK = 4  # arm_transpose_s8


def moved_sources(og: OnnxGraph, node: onnx.NodeProto) -> np.ndarray | None:
    """For a data-movement node: its output (ONNX order) holding each element's flat index in the
    input (ONNX order); None for a Transpose whose perm is not a permutation of the input's axes."""
    in_shape, out_shape = og.shapes[node.input[0]], og.shapes[node.output[0]]
    count = int(np.prod(in_shape, dtype=np.int64))
    index = np.arange(count).reshape(in_shape)
    if node.op_type == "Transpose":
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        perm = [int(p) for p in attrs.get("perm", list(range(len(in_shape)))[::-1])]
        if sorted(perm) != list(range(len(in_shape))):
            return None
        index = index.transpose(perm)
    return index.reshape(out_shape) if index.size == int(np.prod(out_shape, dtype=np.int64)) else None


def gather(x: Layout, out: Layout, sources: np.ndarray) -> np.ndarray:
    """For each IR element of the output laid out as `out`, the IR position of its input element."""
    position = np.empty(int(np.prod(x.onnx_shape, dtype=np.int64)), dtype=np.int64)
    position[onnx_positions(x)] = np.arange(position.size)
    return position[out.to_ir(sources).reshape(-1)]


_ELEMENTWISE = {"Relu", "Clip", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid",
                "Add", "Mul", "Sub", "Div", "Max", "Min", "Identity", "Dropout"}


def spatial_reader(og: OnnxGraph, name: str, depth: int = 6) -> bool:
    """A convolution, pooling or batch norm reads `name`, directly or through element-wise nodes."""
    for node in og.nodes:
        if name in node.input:
            if node.op_type in SPATIAL_OPS:
                return True
            if node.op_type in _ELEMENTWISE and depth and spatial_reader(og, node.output[0], depth - 1):
                return True
    return False


def out_layouts(og: OnnxGraph, node: onnx.NodeProto, x: Layout) -> list[Layout]:
    """The layouts a moved tensor may take: channels first only when windows read it."""
    found = candidates(x, og.shapes[node.output[0]])
    if spatial_reader(og, node.output[0]):
        found = [lay for lay in found if lay.kind in ("nchw", "ncl")]
    return found


def free_move(og: OnnxGraph, node: onnx.NodeProto, x: Layout) -> bool:
    """The node leaves the IR bytes of an input of layout `x` in place, for some output layout."""
    sources = moved_sources(og, node)
    return sources is not None and any((gather(x, out, sources) == np.arange(sources.size)).all()
               for out in out_layouts(og, node, x))


def as_transpose(gather: np.ndarray,
                  shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """A permutation of a view of `shape` (its axes of size 1 dropped, axes that stay neighbours
    merged) that orders the elements as `gather`: (view shape, permutation), or None."""
    view = [d for d in shape if d != 1]
    index = np.arange(gather.size)
    for perm in itertools.permutations(range(len(view))):
        if (index.reshape(view).transpose(perm).reshape(-1) == gather).all():
            return _merge(tuple(view), perm)
    return None


def _merge(view: tuple[int, ...], perm: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Merge input axes i and i + 1 that the permutation keeps next to each other."""
    groups: list[list[int]] = []
    for axis in perm:
        if groups and groups[-1][-1] + 1 == axis:
            groups[-1].append(axis)
        else:
            groups.append([axis])
    order = sorted(range(len(groups)), key=lambda g: groups[g][0])
    merged = tuple(int(np.prod([view[a] for a in groups[g]])) for g in order)
    return merged, tuple(order.index(g) for g in range(len(groups)))

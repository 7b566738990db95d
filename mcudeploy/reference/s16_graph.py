"""The 16x8 kernels of mcudeploy.reference.s16 over graph operators: the parameters come from
mcudeploy.arith.params_s16, as for the generated C. `run_graph` picks these for 16x8 operators."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np

from mcudeploy.arith import params_s16 as p16
from mcudeploy.ir import Graph, Op
from mcudeploy.reference import s16
from mcudeploy.reference.lstm import run_op

Kernel = Callable[[Op, Graph, list[np.ndarray]], np.ndarray]


def _window(op: Op) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    a = op.attrs
    return a.stride, getattr(a, "dilation", (1, 1)), (a.padding.top, a.padding.left)


def _conv2d(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    stride, dilation, padding = _window(op)
    return s16.conv2d(ins[0], ins[1], p16.conv_params(op, g), stride, dilation, padding,
                      g.tensor(op.outputs[0]).shape)


def _depthwise(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    stride, dilation, padding = _window(op)
    return s16.depthwise_conv2d(ins[0], ins[1], p16.conv_params(op, g), stride, dilation, padding,
                                op.attrs.depth_multiplier, g.tensor(op.outputs[0]).shape)


def _fully_connected(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return s16.fully_connected(ins[0], ins[1], p16.conv_params(op, g))


def _pool(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    a = op.attrs
    return s16.pool2d(ins[0], a.mode, a.window, a.stride, (a.padding.top, a.padding.left),
                      p16.pool_range(op, g), g.tensor(op.outputs[0]).shape)


def _broadcast(op: Op, g: Graph, ins: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    shape = g.tensor(op.outputs[0]).shape
    return np.broadcast_to(ins[0], shape), np.broadcast_to(ins[1], shape)


def _add(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return s16.add(*_broadcast(op, g, ins), p16.add_params(op, g))


def _mul(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    p = p16.mul_params(op, g)
    return s16.mul(*_broadcast(op, g, ins), p.multiplier, p.shift, (p.act_min, p.act_max))


@cache
def softmax_tables() -> tuple[np.ndarray, np.ndarray]:
    """TFLite's two int16 softmax tables (computed once; read only)."""
    return s16.softmax_luts()


def _softmax(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    multiplier, shift = p16.softmax_params(op, g)
    return s16.softmax(ins[0], multiplier, shift, *softmax_tables())


def _reshape(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    """A RESHAPE of an int16 tensor (one that follows a 16x8 layer): the same values, its shape."""
    return ins[0].reshape(g.tensor(op.outputs[0]).shape)


KERNELS_S16: dict[str, Kernel] = {
    "conv2d": _conv2d,
    "depthwise_conv2d": _depthwise,
    "fully_connected": _fully_connected,
    "pool2d": _pool,
    "add": _add,
    "mul": _mul,
    "softmax": _softmax,
    "reshape": _reshape,
    "lstm": run_op,  # mcudeploy.reference.lstm, as for int8
}
"""The 16x8 kernel of each IR operator that has one (mcudeploy.arith.params_s16.S16_KINDS)."""


def s16_kernel(op: Op, graph: Graph) -> Kernel | None:
    """The 16x8 kernel of `op` if it computes on int16 activations, else None."""
    return KERNELS_S16[op.kind] if p16.is_s16(op, graph) else None

"""The host reference: numpy kernels of TFLite int8 semantics, and of its 16x8 kernels for operators
on int16 activations (mcudeploy.reference.s16_graph), run over a whole graph."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from mcudeploy.arith import params as qp
from mcudeploy.ir import Graph, Op
from mcudeploy.reference.conv import conv2d, depthwise_conv2d, fully_connected
from mcudeploy.reference.elementwise import add, mul, squared_difference, sub
from mcudeploy.reference.lstm import run_op
from mcudeploy.reference.pooling import mean, pool2d
from mcudeploy.reference.resize import resize
from mcudeploy.reference.s16_graph import s16_kernel
from mcudeploy.reference.softmax import softmax
from mcudeploy.reference.unary import hard_swish, leaky_relu, logistic, prelu, quantize, relu, rsqrt, tanh

Kernel = Callable[[Op, Graph, list[np.ndarray]], np.ndarray]


def _conv2d(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    a = op.attrs
    out = g.tensor(op.outputs[0]).shape
    return conv2d(ins[0], ins[1], qp.conv_params(op, g), a.stride, a.dilation, a.padding, out)


def _depthwise(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    a = op.attrs
    out = g.tensor(op.outputs[0]).shape
    return depthwise_conv2d(
        ins[0], ins[1], qp.conv_params(op, g), a.stride, a.dilation, a.padding,
        a.depth_multiplier, out,
    )


def _fully_connected(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return fully_connected(ins[0], ins[1], qp.conv_params(op, g))


def _pool(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return pool2d(ins[0], op.attrs, qp.pool_params(op, g), g.tensor(op.outputs[0]).shape)


def _add(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return add(ins[0], ins[1], qp.add_params(op, g))


def _sub(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return sub(ins[0], ins[1], qp.add_params(op, g))


def _squared_difference(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return squared_difference(ins[0], ins[1], qp.squared_difference_params(op, g))


def _mul(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return mul(ins[0], ins[1], qp.mul_params(op, g))


def _extremum(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    """TFLite MAXIMUM/MINIMUM: the raw int8 values compared (one quantization, no requantizing)."""
    pick = np.maximum if op.attrs.mode == "max" else np.minimum
    return pick(ins[0], ins[1]).astype(np.int8)


def _concat(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(ins, axis=op.attrs.axis)


def _pad(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    zero = g.tensor(op.outputs[0]).zero_point
    return np.pad(ins[0], op.attrs.pads, constant_values=zero)


def _mean(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return mean(ins[0], qp.mean_params(op, g))


def _slice(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    a = op.attrs
    index = tuple(slice(b, e, s) for b, e, s in zip(a.begin, a.end, a.strides, strict=True))
    return ins[0][index].copy()


def _logistic(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return logistic(ins[0], qp.logistic_params(op, g))


def _tanh(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return tanh(ins[0], qp.tanh_params(op, g))


def _hard_swish(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return hard_swish(ins[0], qp.hard_swish_params(op, g))


def _leaky_relu(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return leaky_relu(ins[0], qp.leaky_relu_params(op, g))


def _rsqrt(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return rsqrt(ins[0], qp.rsqrt_params(op, g))


def _relu(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return relu(ins[0], qp.relu_params(op, g))


def _prelu(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return prelu(ins[0], ins[1], qp.prelu_params(op, g))


def _transpose(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return np.ascontiguousarray(ins[0].transpose(op.attrs.perm))


def _resize(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return resize(ins[0], g.tensor(op.outputs[0]).shape[1:3], op.attrs)


def _quantize(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return quantize(ins[0], qp.quantize_params(op, g), g.tensor(op.outputs[0]).dtype)


def _copy(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return ins[0].copy()


def _softmax(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return softmax(ins[0], qp.softmax_params(op, g))


def _reshape(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    return ins[0].copy()


KERNELS: dict[str, Kernel] = {
    "conv2d": _conv2d,
    "depthwise_conv2d": _depthwise,
    "fully_connected": _fully_connected,
    "pool2d": _pool,
    "add": _add,
    "sub": _sub,
    "squared_difference": _squared_difference,
    "mul": _mul,
    "extremum": _extremum,
    "concat": _concat,
    "pad": _pad,
    "softmax": _softmax,
    "reshape": _reshape,
    "slice": _slice,
    "mean": _mean,
    "logistic": _logistic,
    "tanh": _tanh,
    "leaky_relu": _leaky_relu,
    "hard_swish": _hard_swish,
    "rsqrt": _rsqrt,
    "relu": _relu,
    "prelu": _prelu,
    "transpose": _transpose,
    "resize": _resize,
    "quantize": _quantize,
    "read_variable": _copy,
    "assign_variable": _copy,
    "lstm": run_op,  # mcudeploy.reference.lstm: updates the state variables it is given
}


def run_graph(graph: Graph, inputs: Mapping[str, np.ndarray],
              state: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every tensor's value (constants excluded) after running `graph` on `inputs`.

    Persistent variables start from `state` (or their initial values); when `state` is given it
    is updated in place with their values after the run, so a sequence of calls streams."""
    values: dict[str, np.ndarray] = {}
    for name, initial in graph.variables.items():
        values[name] = np.array(state[name] if state and name in state else initial)
    for name in graph.inputs:
        t = graph.tensor(name)
        values[name] = np.asarray(inputs[name], dtype=t.dtype).reshape(t.shape)
    for op in graph.ops:
        ins = [
            values[n] if n in values else graph.tensor(n).data
            for n in op.inputs if n
        ]
        out_t = graph.tensor(op.outputs[0])
        kernel = s16_kernel(op, graph) or KERNELS[op.kind]
        values[op.outputs[0]] = kernel(op, graph, ins).reshape(out_t.shape)
    if state is not None:
        state.update({name: values[name].copy() for name in graph.variables})
    return values

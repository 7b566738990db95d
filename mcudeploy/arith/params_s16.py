"""Kernel parameters of 16x8 operators (int16 activations with zero point 0, int8 weights, int64 or
int32 bias), derived from the graph exactly as TFLite(-Micro) derives them; the host reference and
the generated C both take their numbers from here (the arithmetic is mcudeploy.reference.s16).

An operator is 16x8 when its first input or its output is int16 (`is_s16`); a QUANTIZE between
int8 and int16 is not: it is one requantization loop, whichever the types.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcudeploy.arith import quantize_multiplier
from mcudeploy.ir import Graph, Op
from mcudeploy.reference import s16

S16_KINDS = ("conv2d", "depthwise_conv2d", "fully_connected", "pool2d", "add", "mul", "softmax", "lstm")
"""The IR operators that have a 16x8 form (TFLM's int16 kernels, CMSIS-NN's `_s16` functions)."""


def is_s16(op: Op, graph: Graph) -> bool:
    """Whether `op` computes on int16 activations (a QUANTIZE never is: it converts)."""
    if op.kind == "quantize":
        return False
    names = [n for n in (*op.inputs[:1], *op.outputs[:1]) if n]
    return any(graph.tensor(n).dtype == "int16" for n in names)


def _act(op: Op, graph: Graph) -> tuple[int, int]:
    clip = op.attrs.activation
    return s16.activation_range(clip.low, clip.high, graph.tensor(op.outputs[0]).scale)


def conv_params(op: Op, graph: Graph) -> s16.ConvParamsS16:
    """Per-channel multipliers and shifts (one value for a per-tensor fully connected layer, whose
    scale product TFLite takes in float32), the bias as the file holds it (int64, or int32 for a
    convolution: then TFLite accumulates in int32) and the int16 clamp."""
    x, w, y = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    assert w.quant is not None
    if op.kind == "fully_connected" and not w.quant.per_channel:
        product = float(np.float32(x.scale) * np.float32(w.quant.scale[0]))
        m, s = quantize_multiplier(product / float(y.scale))
        multiplier, shift = np.array([m], np.int64), np.array([s], np.int64)
    else:
        multiplier, shift = s16.conv_multipliers(x.scale, np.asarray(w.quant.scale), y.scale)
        c_out = y.shape[-1]
        multiplier, shift = np.resize(multiplier, c_out), np.resize(shift, c_out)
    bias_name = op.inputs[2] if len(op.inputs) > 2 else ""
    bias = None
    if bias_name:
        data = graph.tensor(bias_name).data
        assert data is not None
        bias = data.reshape(-1).astype(np.int32 if data.dtype == np.int32 else np.int64)
    return s16.ConvParamsS16(multiplier, shift, bias, *_act(op, graph))


def add_params(op: Op, graph: Graph) -> s16.AddParamsS16:
    """TFLite's general int16 ADD: both inputs to twice the larger scale, left shift 15."""
    a, b, y = (graph.tensor(n) for n in (*op.inputs[:2], op.outputs[0]))
    return s16.add_params(a.scale, b.scale, y.scale, _act(op, graph))


@dataclass(frozen=True)
class MulParamsS16:
    multiplier: int
    shift: int
    act_min: int
    act_max: int


def mul_params(op: Op, graph: Graph) -> MulParamsS16:
    """TFLite int16 MUL: the product requantized by s1 * s2 / s_out."""
    a, b, y = (graph.tensor(n) for n in (*op.inputs[:2], op.outputs[0]))
    m, s = quantize_multiplier(float(a.scale) * float(b.scale) / float(y.scale))
    return MulParamsS16(m, s, *_act(op, graph))


def pool_range(op: Op, graph: Graph) -> tuple[int, int]:
    """The int16 clamp of a pooling layer's fused activation."""
    return _act(op, graph)


def softmax_params(op: Op, graph: Graph) -> tuple[int, int]:
    """Multiplier and shift of (input - row max) onto the exp table's [-10, 0]."""
    return s16.softmax_params(graph.tensor(op.inputs[0]).scale, op.attrs.beta)

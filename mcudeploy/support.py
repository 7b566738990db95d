"""What mcudeploy deploys, as named constraints: each one's docstring is the rule a user reads.

`check_graph` runs them and refuses the first violation with `UnsupportedError` naming the
operator, its origin in the user's file and the detail; `supported_ops_markdown` renders the same
constraints as the supported-operators table in docs/SUPPORTED_OPS.md.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mcudeploy import ir
from mcudeploy.arith import INT32_MAX, quantize_multiplier
from mcudeploy.arith import params as qp
from mcudeploy.errors import UnsupportedError
from mcudeploy.frontends.padding import output_size
from mcudeploy.reference.resize import bilinear_fault
from mcudeploy.support_lstm import LSTM_RULES
from mcudeploy.support_s16 import (
    constraint_int16_activations,
    constraint_int16_add_scales,
    constraint_int16_requantization,
    constraint_int16_softmax,
    constraint_int16_weights,
    uses_int16,
)

Constraint = Callable[[ir.Op, ir.Graph], str | None]


_WEIGHTED = ("conv2d", "depthwise_conv2d", "fully_connected", "lstm")


def _activations(op: ir.Op, g: ir.Graph) -> list[ir.Tensor]:
    """The tensors an operator computes with, but its weights and bias: constant operands of
    element-wise operators are quantized as activations are."""
    names = (*op.inputs[:1], *op.outputs) if op.kind in _WEIGHTED else (*op.inputs, *op.outputs)
    return [g.tensor(n) for n in names if n]


def constraint_int8_activations(op: ir.Op, g: ir.Graph) -> str | None:
    """Activations are int8 (a QUANTIZE may output uint8) with one scale and zero point per tensor,
    and so are the constant operands of element-wise operators."""
    for t in _activations(op, g):
        uint8_ok = op.kind == "quantize" and t.name == op.outputs[0]
        if t.dtype != "int8" and not (uint8_ok and t.dtype == "uint8"):
            return f"tensor {t.name!r} is {t.dtype}"
        if t.quant is None or len(t.quant.scale) != 1 or len(t.quant.zero_point) != 1:
            return f"tensor {t.name!r} is not quantized per tensor"
        if not (np.isfinite(t.scale) and t.scale > 0):
            return f"tensor {t.name!r} has scale {t.scale}"
    return None


def constraint_static_shapes(op: ir.Op, g: ir.Graph) -> str | None:
    """Every tensor shape is fully known (no unknown or zero dimensions)."""
    for n in (*op.inputs, *op.outputs):
        if n and any(d <= 0 for d in g.tensor(n).shape):
            return f"tensor {n!r} has shape {list(g.tensor(n).shape)}"
    return None


def constraint_nhwc(op: ir.Op, g: ir.Graph) -> str | None:
    """Input and output are 4-D NHWC tensors with the same batch."""
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    if len(x.shape) != 4 or len(y.shape) != 4:
        return f"input {list(x.shape)}, output {list(y.shape)}"
    if x.shape[0] != y.shape[0]:
        return f"input batch {x.shape[0]}, output batch {y.shape[0]}"
    return None


def constraint_weights(op: ir.Op, g: ir.Graph) -> str | None:
    """Weights are constant int8, symmetric (zero point 0), per tensor or per output channel;
    the bias, if any, is constant int32 with one value per output channel."""
    detail = constraint_int8_weights(op, g)
    if detail is None and len(op.inputs) > 2 and op.inputs[2]:
        b, c_out = g.tensor(op.inputs[2]), g.tensor(op.outputs[0]).shape[-1]
        if b.data is None or b.dtype != "int32" or b.size != c_out:
            return f"bias {b.name!r} is not a constant int32 vector of {c_out} values"
    return detail


def constraint_int8_weights(op: ir.Op, g: ir.Graph) -> str | None:
    """Weights are constant int8, symmetric (zero point 0), per tensor or per output channel."""
    w = g.tensor(op.inputs[1])
    if w.data is None or w.dtype != "int8" or w.quant is None:
        return f"weights {w.name!r} are not constant quantized int8"
    if len(w.quant.zero_point) != len(w.quant.scale):
        return f"weights {w.name!r} have {len(w.quant.scale)} scales, {len(w.quant.zero_point)} zero points"
    if any(z != 0 for z in w.quant.zero_point):
        return f"weights {w.name!r} have a non-zero zero point"
    y = g.tensor(op.outputs[0])
    if not y.shape:
        return f"output {y.name!r} is a scalar"
    c_out = y.shape[-1]
    axis = {"conv2d": 0, "depthwise_conv2d": 3, "fully_connected": 0}[op.kind]
    if w.quant.per_channel and (w.quant.axis != axis or len(w.quant.scale) != c_out):
        return (f"weights {w.name!r} have {len(w.quant.scale)} scales on axis {w.quant.axis}, "
                f"expected {c_out} on axis {axis}")
    if not all(np.isfinite(s) and s > 0 for s in w.quant.scale):
        return f"weights {w.name!r} have a scale that is not a positive number"
    return None


def _window_check(op: ir.Op, g: ir.Graph, kernel: tuple[int, int]) -> str | None:
    a = op.attrs
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    dilation = getattr(a, "dilation", (1, 1))
    if min(*a.stride, *dilation, *kernel) < 1:
        return f"stride {a.stride}, dilation {dilation}, kernel {kernel}"
    p = a.padding
    effective = [(k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True)]
    if max(p.top, p.bottom) >= effective[0] or max(p.left, p.right) >= effective[1]:
        return f"padding {p} is not smaller than the {effective[0]}x{effective[1]} window"
    if effective[0] > x.shape[1] + p.top + p.bottom or effective[1] > x.shape[2] + p.left + p.right:
        return f"the {effective[0]}x{effective[1]} window is larger than the padded input"
    expect = (
        output_size(x.shape[1], kernel[0], a.stride[0], dilation[0], p.top, p.bottom),
        output_size(x.shape[2], kernel[1], a.stride[1], dilation[1], p.left, p.right),
    )
    if tuple(y.shape[1:3]) != expect:
        return f"output is {list(y.shape[1:3])} high x wide but the window gives {list(expect)}"
    if min(p.top, p.bottom, p.left, p.right) < 0:
        return f"negative padding {p}"
    return None


INT16_MAX = 32767


def constraint_int16_geometry(op: ir.Op, g: ir.Graph) -> str | None:
    """Paddings, and the strides and dilations of convolutions, fit in 16 bits: TFLite keeps them
    as int16 and would truncate them."""
    a = op.attrs
    p = a.padding
    values = [p.top, p.bottom, p.left, p.right] + ([] if op.kind == "pool2d" else [*a.stride, *a.dilation])
    if max(values) > INT16_MAX:
        return f"padding {p}" + ("" if op.kind == "pool2d" else f", stride {a.stride}, dilation {a.dilation}")
    return None


def constraint_conv_geometry(op: ir.Op, g: ir.Graph) -> str | None:
    """Groups divide both channel counts (C_in = groups x filter channels, C_out a multiple of
    groups); the output size follows from kernel, stride, dilation and explicit padding."""
    x, w, y = (g.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    c_out, kh, kw, c_f = w.shape
    if c_f == 0 or x.shape[3] % c_f:
        return f"input channels {x.shape[3]} are not a multiple of filter channels {c_f}"
    groups = x.shape[3] // c_f
    if c_out % groups or y.shape[3] != c_out:
        return f"{c_out} filters cannot form {groups} groups for {y.shape[3]} output channels"
    return _window_check(op, g, (kh, kw))


def constraint_depthwise_geometry(op: ir.Op, g: ir.Graph) -> str | None:
    """Output channels = input channels x depth multiplier, filter [1, KH, KW, C_out]; the output
    size follows from kernel, stride, dilation and explicit padding."""
    x, w, y = (g.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    m = op.attrs.depth_multiplier
    if len(w.shape) != 4 or w.shape[0] != 1 or w.shape[3] != y.shape[3]:
        return f"filter shape {list(w.shape)} for {y.shape[3]} output channels"
    if m < 1 or x.shape[3] * m != y.shape[3]:
        return f"{x.shape[3]} input channels x multiplier {m} != {y.shape[3]} output channels"
    return _window_check(op, g, (w.shape[1], w.shape[2]))


def constraint_fc_geometry(op: ir.Op, g: ir.Graph) -> str | None:
    """The filter is [C_out, K] and the input holds a whole number of rows of K values."""
    x, w, y = (g.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if len(w.shape) != 2 or x.size % w.shape[1]:
        return f"input of {x.size} values, filter {list(w.shape)}"
    if y.size != (x.size // w.shape[1]) * w.shape[0]:
        return f"output {list(y.shape)} for {x.size // w.shape[1]} rows of {w.shape[0]}"
    return None


def constraint_pool_geometry(op: ir.Op, g: ir.Graph) -> str | None:
    """Pooling keeps the input's scale and zero point and channel count; the output size follows
    from window, stride and padding."""
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    if x.quant != y.quant:
        return "output quantization differs from the input's"
    if x.shape[3] != y.shape[3]:
        return f"input has {x.shape[3]} channels, output {y.shape[3]}"
    return _window_check(op, g, op.attrs.window)


def broadcast_block(small: tuple[int, ...], out: tuple[int, ...]) -> int | None:
    """Elements of `small` if it repeats along the leading axes of `out` (its shape, right-aligned,
    is ones then `out`'s trailing dims), else None."""
    small = tuple(small)
    trimmed = small[next((i for i, d in enumerate(small) if d != 1), len(small)):]
    if len(trimmed) > len(out) or (trimmed and tuple(out[len(out) - len(trimmed):]) != trimmed):
        return None
    return int(np.prod(trimmed, dtype=np.int64))


def constraint_broadcast(op: ir.Op, g: ir.Graph) -> str | None:
    """Both inputs have the output's shape, or one of them repeats along leading axes (a scalar,
    [C] or [1, 1, 1, C] against [N, H, W, C]); other broadcasts are not supported yet."""
    a, b, y = (tuple(g.tensor(n).shape) for n in (*op.inputs[:2], op.outputs[0]))
    try:
        shape = tuple(np.broadcast_shapes(a, b))
    except ValueError:
        return f"shapes {list(a)} and {list(b)} do not broadcast"
    if shape != y:
        return f"shapes {list(a)} and {list(b)} broadcast to {list(shape)}, not {list(y)}"
    full = int(np.prod(y, dtype=np.int64))
    for big, small in ((a, b), (b, a)):
        if int(np.prod(big, dtype=np.int64)) == full and broadcast_block(small, y) is not None:
            return None
    return f"shapes {list(a)} and {list(b)}"


def _broadcast_4d(op: ir.Op, g: ir.Graph) -> str | None:
    """Why the two inputs do not broadcast to the output (at most 4-D), or None."""
    a, b, y = (g.tensor(n) for n in (*op.inputs[:2], op.outputs[0]))
    rank = len(y.shape)
    if rank > 4 or any(len(t.shape) > rank for t in (a, b)):
        return f"shapes {list(a.shape)} and {list(b.shape)} into {list(y.shape)}"
    for t in (a, b):
        padded = (1,) * (rank - len(t.shape)) + tuple(t.shape)
        if any(d not in (1, o) for d, o in zip(padded, y.shape, strict=True)):
            return f"input {t.name!r} of shape {list(t.shape)} does not broadcast to {list(y.shape)}"
    shape = tuple(np.broadcast_shapes(a.shape, b.shape))
    if shape != tuple(y.shape):
        return f"shapes {list(a.shape)} and {list(b.shape)} broadcast to {list(shape)}, not {list(y.shape)}"
    return None


def constraint_extremum(op: ir.Op, g: ir.Graph) -> str | None:
    """Both inputs broadcast to the output (each extent the output's or 1, at most 4-D; the output
    is their broadcast shape) and share its scale and zero point."""
    detail = _broadcast_4d(op, g)
    if detail is not None:
        return detail
    y = g.tensor(op.outputs[0])
    for t in (g.tensor(n) for n in op.inputs[:2]):
        if t.quant != y.quant:
            return f"input {t.name!r} is quantized unlike the output"
    return None


def constraint_broadcast_4d(op: ir.Op, g: ir.Graph) -> str | None:
    """Both inputs broadcast to the output: each extent the output's or 1, at most 4-D, the output
    their broadcast shape (a tensor minus its mean over the last axis, minus a constant)."""
    return _broadcast_4d(op, g)


def constraint_same_quantization(op: ir.Op, g: ir.Graph) -> str | None:
    """All inputs share the output's scale and zero point, and match it on every axis but the
    concatenation axis."""
    y = g.tensor(op.outputs[0])
    axis = op.attrs.axis
    for n in op.inputs:
        x = g.tensor(n)
        if x.quant != y.quant:
            return f"input {n!r} is quantized differently from the output"
        if len(x.shape) != len(y.shape) or not 0 <= axis < len(y.shape):
            return f"input {n!r} has shape {list(x.shape)}, output {list(y.shape)}, axis {axis}"
        if any(d != e for i, (d, e) in enumerate(zip(x.shape, y.shape, strict=True)) if i != axis):
            return f"input {n!r} has shape {list(x.shape)}, output {list(y.shape)}"
    if sum(g.tensor(n).shape[axis] for n in op.inputs) != y.shape[axis]:
        return "the inputs do not add up to the output along the axis"
    return None


def constraint_pad(op: ir.Op, g: ir.Graph) -> str | None:
    """Padding amounts are constant and not negative, one (before, after) pair per axis, and the
    output keeps the input's scale and zero point (padded elements are real zero)."""
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    pads = op.attrs.pads
    if len(pads) != len(x.shape) or any(a < 0 or b < 0 for a, b in pads):
        return f"pads {list(pads)} for a {len(x.shape)}-D input"
    if tuple(d + a + b for d, (a, b) in zip(x.shape, pads, strict=True)) != tuple(y.shape):
        return f"{list(x.shape)} padded by {list(pads)} is not {list(y.shape)}"
    if x.quant != y.quant:
        return "output quantization differs from the input's"
    return None


def constraint_softmax_output(op: ir.Op, g: ir.Graph) -> str | None:
    """The output has TFLite's int8 softmax quantization (scale 1/256, zero point -128), the
    same shape as the input, and beta is positive."""
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    if not np.isclose(y.scale, 1 / 256, rtol=0, atol=1e-9) or y.zero_point != -128:
        return f"output scale {y.scale}, zero point {y.zero_point}"
    if x.shape != y.shape:
        return f"input {list(x.shape)}, output {list(y.shape)}"
    if not op.attrs.beta > 0:
        return f"beta {op.attrs.beta}"
    return None


def constraint_softmax_scaling(op: ir.Op, g: ir.Graph) -> str | None:
    """beta x input scale x 2^26 is above 1: TFLite derives the softmax input multiplier with
    QuantizeMultiplierGreaterThanOne, which stops the interpreter for anything smaller."""
    x = g.tensor(op.inputs[0])
    real = float(op.attrs.beta) * float(x.scale) * (1 << (31 - qp.SOFTMAX_DIFF_INTEGER_BITS))
    if not real > 1.0:
        return f"input {x.name!r} has scale {x.scale:.6g} and beta is {op.attrs.beta:.6g}: {real:.6g}"
    return None


def constraint_add_scales(op: ir.Op, g: ir.Graph) -> str | None:
    """The output multiplier 2 x max(input scales) / (2^20 x output scale) is below 1: TFLite's int8
    ADD takes it with QuantizeMultiplierSmallerThanOneExp, which stops the interpreter otherwise."""
    a, b, y = (g.tensor(n) for n in (*op.inputs[:2], op.outputs[0]))
    real = 2.0 * max(float(a.scale), float(b.scale)) / ((1 << qp.ADD_LEFT_SHIFT) * float(y.scale))
    if not (real < 1.0 and quantize_multiplier(real)[1] <= 0):
        return (f"output {y.name!r} has scale {y.scale:.6g}, inputs {a.name!r} {a.scale:.6g} and "
                f"{b.name!r} {b.scale:.6g}: {real:.6g}")
    return None


def constraint_sub_scales(op: ir.Op, g: ir.Graph) -> str | None:
    """The output multiplier 2 x max(input scales) / (2^20 x output scale) is below 1: TFLM's int8
    SUB, prepared as ADD, takes it with QuantizeMultiplierSmallerThanOneExp, which stops the
    interpreter otherwise."""
    return constraint_add_scales(op, g)


def constraint_mul_broadcast(op: ir.Op, g: ir.Graph) -> str | None:
    """One input has the output's shape and the other repeats along its leading axes (any rank;
    CMSIS-NN computes it), or both inputs broadcast to an output of at most 4 dimensions (a
    generated loop)."""
    if constraint_broadcast(op, g) is None:
        return None
    return _broadcast_4d(op, g)


def constraint_squared_difference_scales(op: ir.Op, g: ir.Graph) -> str | None:
    """The output multiplier (2 x max(input scales))^2 / (2^14 x output scale) is below 1: the
    squared difference (up to 2^30) shifted further left would overflow TFLM's int32 (an output
    scale that small saturates every output anyway)."""
    p = qp.squared_difference_params(op, g)
    if p.output_shift > 0:
        a, b, y = (g.tensor(n) for n in (*op.inputs[:2], op.outputs[0]))
        return (f"output {y.name!r} has scale {y.scale:.6g}, inputs {a.name!r} {a.scale:.6g} and "
                f"{b.name!r} {b.scale:.6g}")
    return None


def constraint_rsqrt_input(op: ir.Op, g: ir.Graph) -> str | None:
    """The input zero point is -128, so that every input is a real value of at least 0 (TFLM's
    RSQRT stops the interpreter at a negative input; real 0 gives 127)."""
    x = g.tensor(op.inputs[0])
    if x.zero_point != -128:
        return f"input {x.name!r} has zero point {x.zero_point}"
    return None


def constraint_rsqrt_scales(op: ir.Op, g: ir.Graph) -> str | None:
    """1 / (sqrt(input scale) x output scale) is at least 2^-12 and below 2^30: TFLite requantizes
    2^20 / sqrt(x) by it with a shift 20 bits smaller, which must stay within 31 bits either way."""
    p = qp.rsqrt_params(op, g)
    if p.multiplier == 0 or p.shift - qp.RSQRT_SHIFT < -31 or _shift(p.multiplier, p.shift) > 30:
        x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
        return f"input {x.name!r} scale {x.scale:.6g}, output {y.name!r} scale {y.scale:.6g}"
    return None


def _int8_span(t: ir.Tensor) -> int:
    """The largest |q - zero point| of an int8 tensor."""
    return max(127 - t.zero_point, t.zero_point + 128)


def _shift(multiplier: int, shift: int) -> int:
    """The left shift TFLite applies (quantize_multiplier saturates reals of 2^31 and more)."""
    return 31 if (multiplier, shift) == (INT32_MAX, 30) else shift


def _accumulators(op: ir.Op, g: ir.Graph) -> list[tuple[int, int, str]]:
    """Each value an operator requantizes: the largest it can be, the left shift applied to it
    before the multiplication, and where it comes from, in words."""
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    ratio = f"{x.name!r} ({x.scale:.6g}) / {y.name!r} ({y.scale:.6g})"
    if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected"):
        p, w = qp.conv_params(op, g), g.tensor(op.inputs[1])
        axis = 3 if op.kind == "depthwise_conv2d" else 0
        weights = np.abs(np.moveaxis(w.data.astype(np.int64), axis, 0)).reshape(w.shape[axis], -1)
        bounds = weights.sum(axis=1) * _int8_span(x) + np.abs(p.bias.astype(np.int64))[: w.shape[axis]]
        shifts = np.broadcast_to(p.shift, bounds.shape)
        multipliers = np.broadcast_to(p.multiplier, bounds.shape)
        return [(int(b), _shift(int(m), int(s)), f"output channel {c} of {x.name!r} x {w.name!r} / "
                 f"{y.name!r}") for c, (b, m, s) in enumerate(zip(bounds, multipliers, shifts, strict=True))]
    if op.kind == "mul":
        p, b = qp.mul_params(op, g), g.tensor(op.inputs[1])
        return [(_int8_span(x) * _int8_span(b), _shift(p.output_multiplier, p.output_shift),
                 f"{x.name!r} ({x.scale:.6g}) x {b.name!r} ({b.scale:.6g}) / {y.name!r} ({y.scale:.6g})")]
    if op.kind == "leaky_relu":
        p = qp.leaky_relu_params(op, g)
        return [(_int8_span(x), _shift(p.identity_multiplier, p.identity_shift), ratio),
                (_int8_span(x), _shift(p.alpha_multiplier, p.alpha_shift), f"alpha x {ratio}")]
    if op.kind == "relu":
        p = qp.relu_params(op, g)
        return [(_int8_span(x), _shift(p.multiplier, p.shift), ratio)]
    if op.kind == "prelu":
        p, alpha = qp.prelu_params(op, g), g.tensor(op.inputs[1])
        return [(_int8_span(x), _shift(p.positive_multiplier, p.positive_shift), ratio),
                (_int8_span(x) * _int8_span(alpha), _shift(p.negative_multiplier, p.negative_shift),
                 f"{ratio} x alpha {alpha.name!r} ({alpha.scale:.6g})")]
    if op.kind == "mean":
        p = qp.mean_params(op, g)
        return [(_int8_span(x) * p.count, _shift(p.multiplier, p.shift), f"sum of {p.count} x {ratio}")]
    p = qp.quantize_params(op, g)
    return [(_int8_span(x), _shift(p.multiplier, p.shift), ratio)]


def constraint_requantization(op: ir.Op, g: ir.Graph) -> str | None:
    """A multiplier above 1 (an output scale below input scale x weight scale, and the like)
    shifts the accumulator left before multiplying: the largest accumulator, so shifted, fits in 32
    bits (beyond, TFLite's result depends on how its C++ was compiled)."""
    for bound, shift, source in _accumulators(op, g):
        if shift > 0 and bound > 0 and bound << shift > INT32_MAX:
            return f"{source}: values up to {bound} shifted left by {shift} bits"
    return None


def constraint_fc_bias_scale(op: ir.Op, g: ir.Graph) -> str | None:
    """With per-tensor weights and a bias, the bias scale is the input scale x the weight scale,
    within 2 % of the output scale (TFLite's GetQuantizedConvolutionMultipler refuses otherwise)."""
    x, w, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    if len(op.inputs) < 3 or not op.inputs[2] or w.quant is None or w.quant.per_channel:
        return None
    b = g.tensor(op.inputs[2])
    bias_scale = float(b.quant.scale[0]) if b.quant is not None else 0.0
    product = float(np.float32(x.scale) * np.float32(w.quant.scale[0]))
    if not abs(product - bias_scale) / float(y.scale) <= 0.02:
        return (f"bias {b.name!r} has scale {bias_scale:.6g}, input x weight scale is {product:.6g}, "
                f"output {y.name!r} scale {y.scale:.6g}")
    return None


def constraint_q4_27_input(op: ir.Op, g: ir.Graph) -> str | None:
    """The input scale is at least 2^-28 and below 8: TFLite rescales the input to Q4.27 with a
    left shift of 0 to 30 bits (outside, TFLM's shifts are undefined and it saturates otherwise)."""
    x = g.tensor(op.inputs[0])
    if not 2.0**-28 <= float(x.scale) < 8.0:
        return f"input {x.name!r} has scale {x.scale:.6g}"
    return None


def constraint_reshape(op: ir.Op, g: ir.Graph) -> str | None:
    """Reshape keeps the number of elements and the quantization of a computed tensor."""
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    if x.is_constant:
        return "its input is a constant"
    if x.size != y.size or x.quant != y.quant:
        return f"{list(x.shape)} -> {list(y.shape)}"
    return None


def constraint_slice(op: ir.Op, g: ir.Graph) -> str | None:
    """A slice has positive strides, stays inside its input of at most 4 dimensions, and keeps
    the input's quantization."""
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    a = op.attrs
    if len(x.shape) > 4 or not len(a.begin) == len(a.end) == len(a.strides) == len(x.shape):
        return f"a {len(x.shape)}-D input with begin {list(a.begin)}"
    if any(s < 1 or b < 0 or e > d or b >= e for b, e, s, d in zip(a.begin, a.end, a.strides, x.shape,
                                                                   strict=True)):
        return f"begin {list(a.begin)}, end {list(a.end)}, strides {list(a.strides)} on {list(x.shape)}"
    size = int(np.prod([len(range(b, e, s)) for b, e, s in zip(a.begin, a.end, a.strides, strict=True)]))
    if size != y.size or x.quant != y.quant:
        return f"output {list(y.shape)} or its quantization does not match the slice"
    return None


def constraint_logistic_output(op: ir.Op, g: ir.Graph) -> str | None:
    """The output has TFLite's int8 logistic quantization (scale 1/256, zero point -128)."""
    y = g.tensor(op.outputs[0])
    if not np.isclose(y.scale, 1 / 256, rtol=0, atol=1e-9) or y.zero_point != -128:
        return f"output scale {y.scale}, zero point {y.zero_point}"
    return None


def constraint_tanh_output(op: ir.Op, g: ir.Graph) -> str | None:
    """The output has TFLite's int8 tanh quantization (scale 1/128, zero point 0)."""
    y = g.tensor(op.outputs[0])
    if not np.isclose(y.scale, 1 / 128, rtol=0, atol=1e-9) or y.zero_point != 0:
        return f"output scale {y.scale}, zero point {y.zero_point}"
    return None


def constraint_hard_swish_scales(op: ir.Op, g: ir.Graph) -> str | None:
    """The output scale is above 1/128 of the input's (TFLM's int8 HARD_SWISH only scales down)."""
    if qp.hard_swish_params(op, g).output_exponent > 0:
        x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
        return f"output scale {y.scale} is below 1/128 of the input scale {x.scale}"
    return None


def constraint_hard_swish_shifts(op: ir.Op, g: ir.Graph) -> str | None:
    """The input scale / 128 is at least 2^-16 of the output scale and of 3/32768: TFLite divides
    its 16-bit intermediate values by at most 2^15 (measured: beyond, TFLM's results differ)."""
    p = qp.hard_swish_params(op, g)
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    for name, multiplier, exponent in (("output", p.output_multiplier, p.output_exponent),
                                       ("relu-ish", p.reluish_multiplier, p.reluish_exponent)):
        if multiplier == 0 or exponent < -15:
            return (f"input {x.name!r} scale {x.scale:.6g}, output {y.name!r} scale {y.scale:.6g}: the "
                    f"{name} multiplier needs a right shift of {-exponent if multiplier else 'over 31'} bits")
    return None


def constraint_same_size(op: ir.Op, g: ir.Graph) -> str | None:
    """Input and output hold the same number of elements."""
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    return None if x.size == y.size else f"input {list(x.shape)}, output {list(y.shape)}"


def constraint_variable(op: ir.Op, g: ir.Graph) -> str | None:
    """A variable is read and assigned with its own shape and quantization."""
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    if (x.shape, x.quant) != (y.shape, y.quant):
        return f"{x.name!r} {list(x.shape)} and {y.name!r} {list(y.shape)} differ"
    return None


def constraint_mean(op: ir.Op, g: ir.Graph) -> str | None:
    """MEAN averages over H and W of a 4-D NHWC input, into [N, 1, 1, C] or [N, C]."""
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    expected = (x.shape[0], 1, 1, x.shape[3]) if op.attrs.keep_dims else (x.shape[0], x.shape[3])
    if len(x.shape) != 4 or tuple(y.shape) != expected:
        return f"input {list(x.shape)}, output {list(y.shape)}"
    return None


def constraint_relu_bounds(op: ir.Op, g: ir.Graph) -> str | None:
    """A clamp other than [0, inf) keeps its input's scale and zero point (TFLite RELU6 ignores
    the output's, and other bounds are written as MAXIMUM and MINIMUM), and its bounds are ordered."""
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    low, high = op.attrs.low, op.attrs.high
    if low is not None and high is not None and not low < high:
        return f"bounds [{low}, {high}]"
    if (low, high) != (0.0, None) and x.quant != y.quant:
        return f"bounds [{low}, {high}] with output {y.name!r} quantized unlike input {x.name!r}"
    return None


def constraint_prelu(op: ir.Op, g: ir.Graph) -> str | None:
    """alpha is a constant int8 tensor with one scale and zero point that repeats along the leading
    axes of the input ([C] against [N, H, W, C]), and the output has the input's shape."""
    x, alpha, y = (g.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if not alpha.is_constant or alpha.dtype != "int8" or alpha.quant is None or len(alpha.quant.scale) != 1:
        return f"alpha {alpha.name!r} is not a constant int8 tensor quantized per tensor"
    if x.shape != y.shape or broadcast_block(alpha.shape, x.shape) is None:
        return f"input {list(x.shape)}, alpha {list(alpha.shape)}, output {list(y.shape)}"
    return None


def constraint_transpose(op: ir.Op, g: ir.Graph) -> str | None:
    """A permutation of at most 4 axes (arm_transpose_s8) whose output has the permuted shape and
    the input's quantization."""
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    perm = op.attrs.perm
    if len(x.shape) > 4 or sorted(perm) != list(range(len(x.shape))):
        return f"permutation {list(perm)} of a {len(x.shape)}-D input"
    if tuple(x.shape[p] for p in perm) != tuple(y.shape) or x.quant != y.quant:
        return f"input {list(x.shape)} permuted by {list(perm)} is not the output {list(y.shape)} " \
               "of the same quantization"
    return None


def constraint_resize(op: ir.Op, g: ir.Graph) -> str | None:
    """A 4-D NHWC input resized on H and W only, into an output of the input's quantization, not
    both align_corners and half_pixel_centers (TFLite refuses the pair); bilinear: sizes whose
    integer source positions stay inside the input (else TFLM reads outside it)."""
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    a = op.attrs
    if len(x.shape) != 4 or len(y.shape) != 4 or (x.shape[0], x.shape[3]) != (y.shape[0], y.shape[3]):
        return f"input {list(x.shape)}, output {list(y.shape)}"
    if x.quant != y.quant:
        return f"output {y.name!r} is quantized unlike input {x.name!r}"
    if a.align_corners and a.half_pixel_centers:
        return "both align_corners and half_pixel_centers"
    if a.mode == "bilinear":
        return bilinear_fault(x.shape[1:3], y.shape[1:3], a)
    return None


COMMON: tuple[Constraint, ...] = (constraint_static_shapes, constraint_int8_activations)
CONSTRAINTS: dict[str, tuple[Constraint, ...]] = {
    "conv2d": (constraint_nhwc, constraint_weights, constraint_conv_geometry, constraint_int16_geometry,
               constraint_requantization),
    "depthwise_conv2d": (constraint_nhwc, constraint_weights, constraint_depthwise_geometry,
                         constraint_int16_geometry, constraint_requantization),
    "fully_connected": (constraint_weights, constraint_fc_geometry, constraint_fc_bias_scale,
                        constraint_requantization),
    "pool2d": (constraint_nhwc, constraint_pool_geometry, constraint_int16_geometry),
    "add": (constraint_broadcast, constraint_add_scales),
    "sub": (constraint_broadcast_4d, constraint_sub_scales),
    "squared_difference": (constraint_broadcast_4d, constraint_squared_difference_scales),
    "mul": (constraint_mul_broadcast, constraint_requantization),
    "extremum": (constraint_extremum,),
    "concat": (constraint_same_quantization,),
    "pad": (constraint_pad,),
    "softmax": (constraint_softmax_output, constraint_softmax_scaling),
    "reshape": (constraint_reshape,),
    "slice": (constraint_slice,),
    "mean": (constraint_mean, constraint_requantization),
    "logistic": (constraint_same_size, constraint_logistic_output, constraint_q4_27_input),
    "tanh": (constraint_same_size, constraint_tanh_output, constraint_q4_27_input),
    "leaky_relu": (constraint_same_size, constraint_requantization),
    "hard_swish": (constraint_same_size, constraint_hard_swish_scales, constraint_hard_swish_shifts),
    "rsqrt": (constraint_same_size, constraint_rsqrt_input, constraint_rsqrt_scales),
    "quantize": (constraint_same_size, constraint_requantization),
    "relu": (constraint_same_size, constraint_relu_bounds, constraint_requantization),
    "prelu": (constraint_prelu, constraint_requantization),
    "transpose": (constraint_transpose,),
    "resize": (constraint_resize,),
    "read_variable": (constraint_variable,),
    "assign_variable": (constraint_variable,),
    "lstm": LSTM_RULES,
}


COMMON_S16: tuple[Constraint, ...] = (constraint_static_shapes, constraint_int16_activations)
CONSTRAINTS_S16: dict[str, tuple[Constraint, ...]] = {
    "conv2d": (constraint_nhwc, constraint_int8_weights, constraint_int16_weights,
               constraint_conv_geometry, constraint_int16_geometry, constraint_int16_requantization),
    "depthwise_conv2d": (constraint_nhwc, constraint_int8_weights, constraint_int16_weights,
                         constraint_depthwise_geometry, constraint_int16_geometry,
                         constraint_int16_requantization),
    "fully_connected": (constraint_int8_weights, constraint_int16_weights, constraint_fc_geometry,
                        constraint_fc_bias_scale, constraint_int16_requantization),
    "pool2d": (constraint_nhwc, constraint_pool_geometry, constraint_int16_geometry),
    "add": (constraint_broadcast, constraint_int16_add_scales),
    "mul": (constraint_broadcast, constraint_int16_requantization),
    "softmax": (constraint_int16_softmax,),
    "reshape": (constraint_reshape,),
    "quantize": (constraint_same_size, constraint_int16_requantization),
    "lstm": LSTM_RULES,
}
"""The rules of operators on int16 activations (16x8); kinds not listed have no 16x8 form."""


def constraints_for(op: ir.Op, graph: ir.Graph) -> tuple[Constraint, ...]:
    """The rules `op` must follow: its 16x8 rules when it reads or writes an int16 activation.
    An operator on int16 activations without a 16x8 form is refused."""
    if not uses_int16(op, graph):
        return (*COMMON, *CONSTRAINTS[op.kind])
    if op.kind not in CONSTRAINTS_S16:
        raise UnsupportedError(f"{op.origin} ({op.name}): not supported: {op.kind} has no 16x8 form "
                               f"(int16 activations); 16x8 operators: {', '.join(CONSTRAINTS_S16)}.")
    return (*COMMON_S16, *CONSTRAINTS_S16[op.kind])


def rule(constraint: Constraint) -> str:
    """The user-facing rule of a constraint: its docstring on one line."""
    return " ".join((constraint.__doc__ or "").split())


def check_dataflow(graph: ir.Graph) -> None:
    """Every operator reads constants, model inputs or earlier results; outputs are computed."""
    available = set(graph.inputs) | set(graph.variables)
    for name in graph.inputs:
        if graph.tensor(name).is_constant:
            raise UnsupportedError(f"{graph.name}: model input {name!r} is a constant")
    for op in graph.ops:
        for name in op.inputs:
            if name and name not in available and not graph.tensor(name).is_constant:
                raise UnsupportedError(
                    f"{op.origin} ({op.name}): reads tensor {name!r}, which no earlier operator "
                    "computes and which is not a model input"
                )
        available.update(op.outputs)
    for name in graph.outputs:
        if name not in available:
            raise UnsupportedError(f"{graph.name}: model output {name!r} is never computed")


def check_graph(graph: ir.Graph, where: str | None = None) -> None:
    """Raise UnsupportedError for the first operator that breaks a constraint; `where` (the
    model file) starts the message."""
    try:
        _check_operators(graph)
    except UnsupportedError as exc:
        if where is None:
            raise
        raise UnsupportedError(f"{where}: {exc}") from None


def _check_operators(graph: ir.Graph) -> None:
    if not any(op.kind != "reshape" for op in graph.ops):
        raise UnsupportedError(f"{graph.name}: the model computes nothing (no operator but reshapes)")
    check_dataflow(graph)
    for op in graph.ops:
        for constraint in constraints_for(op, graph):
            detail = constraint(op, graph)
            if detail is not None:
                raise UnsupportedError(
                    f"{op.origin} ({op.name}): not supported: {rule(constraint)} Here: {detail}."
                )


def supported_ops_markdown(tflite: dict[str, type], onnx_ops: dict[str, tuple[str, str]]) -> str:
    """The supported-operators table, generated from the frontends' tables and the constraints.

    `tflite` maps TFLite operators to IR attribute classes; `onnx_ops` maps ONNX op types to
    (what they become, their import rules)."""
    kinds = {attrs.KIND: attrs for attrs in tflite.values()}
    lines = ["# Supported operators", "",
             "Generated by `python scripts/gen_supported_ops.py` from the frontends' tables and "
             "`mcudeploy/support.py`; every rule below is checked at conversion, and a model that "
             "breaks one is refused with the operator's name.", "",
             "Every operator: " + " ".join(rule(c) for c in COMMON), "",
             "## IR operators and their rules", "", "| IR operator | rules |", "| --- | --- |"]
    for kind in CONSTRAINTS:
        doc = " ".join((kinds[kind].__doc__ or "").split()) if kind in kinds else ""
        rules = "<br>".join(rule(c) for c in CONSTRAINTS[kind])
        lines.append(f"| `{kind}`: {doc} | {rules} |")
    lines += ["", "## 16x8 operators (int16 activations, int8 weights)", "",
              "An operator that reads or writes an int16 activation follows these rules instead: "
              + " ".join(rule(c) for c in COMMON_S16), "", "| IR operator | rules |", "| --- | --- |"]
    lines += [f"| `{kind}` | {'<br>'.join(rule(c) for c in rules)} |"
              for kind, rules in CONSTRAINTS_S16.items()]
    lines += ["", "## int8 TFLite", "", "| operator | becomes |", "| --- | --- |"]
    lines += [f"| `{name}` | `{attrs.KIND}` |" for name, attrs in tflite.items()]
    lines += ["", "## float ONNX (quantized by mcudeploy)", "",
              "| operator | becomes | import rules |", "| --- | --- | --- |"]
    lines += [f"| `{name}` | {becomes} | {rules} |" for name, (becomes, rules) in onnx_ops.items()]
    return "\n".join(lines) + "\n"

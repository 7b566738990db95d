"""The rules of 16x8 operators (int16 activations, int8 weights): named constraints as in
mcudeploy.support, whose docstrings are the rules a user reads. mcudeploy.support applies them,
with the shape and geometry rules every operator shares, to each operator that reads or writes an
int16 activation; an operator kind without a 16x8 form is refused there, naming the layer."""

from __future__ import annotations

import numpy as np

from mcudeploy import ir
from mcudeploy.arith import INT32_MAX
from mcudeploy.arith import params as qp
from mcudeploy.arith import params_s16 as p16

INT16_SPAN = 32768
S64_ACC_LIMIT = 1 << 47  # TFLite's MultiplyByQuantizedMultiplier(int64_t ...) takes |x| below 2^47
S64_MAX_SHIFT = 7  # ... and a shift of -31 to 7
SOFTMAX_MAX_SHIFT = 15  # a row difference (down to -65535) shifted left must fit in 32 bits


def uses_int16(op: ir.Op, g: ir.Graph) -> bool:
    """Whether an operator reads or writes an int16 activation (its weights and bias aside)."""
    return any(t.dtype == "int16" for t in _activations(op, g))


def _activations(op: ir.Op, g: ir.Graph) -> list[ir.Tensor]:
    weighted = op.kind in ("conv2d", "depthwise_conv2d", "fully_connected", "lstm")
    names = (*op.inputs[:1], *op.outputs) if weighted else (*op.inputs, *op.outputs)
    return [g.tensor(n) for n in names if n]


def constraint_int16_activations(op: ir.Op, g: ir.Graph) -> str | None:
    """16x8: activations are int16, symmetric (zero point 0) with one scale per tensor, and so are
    the constant operands of element-wise operators; only QUANTIZE converts between int8 and int16."""
    for t in _activations(op, g):
        allowed = ("int8", "int16") if op.kind == "quantize" else ("int16",)
        if t.dtype not in allowed:
            return f"tensor {t.name!r} is {t.dtype}"
        if t.quant is None or len(t.quant.scale) != 1 or len(t.quant.zero_point) != 1:
            return f"tensor {t.name!r} is not quantized per tensor"
        if not (np.isfinite(t.scale) and t.scale > 0):
            return f"tensor {t.name!r} has scale {t.scale}"
        if t.dtype == "int16" and t.zero_point != 0:
            return f"int16 tensor {t.name!r} has zero point {t.zero_point}"
    return None


def constraint_int16_weights(op: ir.Op, g: ir.Graph) -> str | None:
    """16x8: the bias, if any, is constant int64 with one value per output channel (a convolution
    may have an int32 bias, which TFLite then sums in int32); convolutions are not grouped."""
    c_out = g.tensor(op.outputs[0]).shape[-1]
    if op.kind == "conv2d" and g.tensor(op.inputs[1]).shape[3] != g.tensor(op.inputs[0]).shape[3]:
        return (f"filter {op.inputs[1]!r} has {g.tensor(op.inputs[1]).shape[3]} input channels, the input "
                f"{g.tensor(op.inputs[0]).shape[3]} (a grouped convolution)")
    if len(op.inputs) > 2 and op.inputs[2]:
        b = g.tensor(op.inputs[2])
        kinds = ("int64", "int32") if op.kind == "conv2d" else ("int64",)
        if b.data is None or b.dtype not in kinds or b.size != c_out:
            return f"bias {b.name!r} is not a constant {' or '.join(kinds)} vector of {c_out} values"
    return None


def _s64_bounds(op: ir.Op, g: ir.Graph) -> list[tuple[int, int, int]]:
    """Per output channel: the largest |accumulator| (bias included), its multiplier and shift."""
    p, w = p16.conv_params(op, g), g.tensor(op.inputs[1])
    axis = 3 if op.kind == "depthwise_conv2d" else 0
    weights = np.abs(np.moveaxis(w.data.astype(np.int64), axis, 0)).reshape(w.shape[axis], -1)
    bias = np.abs(p.bias.astype(np.int64)) if p.bias is not None else np.zeros(w.shape[axis], np.int64)
    bounds = weights.sum(axis=1) * INT16_SPAN + bias[: w.shape[axis]]
    multipliers = np.broadcast_to(p.multiplier, bounds.shape)
    shifts = np.broadcast_to(p.shift, bounds.shape)
    return [(int(b), int(m), int(s)) for b, m, s in zip(bounds, multipliers, shifts, strict=True)]


def constraint_int16_requantization(op: ir.Op, g: ir.Graph) -> str | None:
    """16x8 requantization stays in TFLite's ranges: with an int64 bias the accumulator is below
    2^47 and the shift at most 7 (an output scale at least 1/128 of input x weight scale); with an
    int32 bias, and for MUL and QUANTIZE, the value shifted left fits in 32 bits."""
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected"):
        int32 = p16.conv_params(op, g).int32_accumulation
        for c, (bound, _, shift) in enumerate(_s64_bounds(op, g)):
            if int32 and bound << max(shift, 0) > INT32_MAX:
                return f"output channel {c}: int32 accumulator up to {bound} shifted left by {max(shift, 0)}"
            if not int32 and (bound >= S64_ACC_LIMIT or shift > S64_MAX_SHIFT):
                return (f"output channel {c} of {x.name!r} ({x.scale:.6g}) / {y.name!r} ({y.scale:.6g}): "
                        f"accumulator up to {bound}, shift {shift}")
        return None
    if op.kind == "mul":
        p = p16.mul_params(op, g)
        bound, shift = INT16_SPAN * INT16_SPAN, p.shift
    else:  # quantize
        p = qp.quantize_params(op, g)
        bound = INT16_SPAN if x.dtype == "int16" else max(127 - x.zero_point, x.zero_point + 128)
        shift = p.shift
    if shift > 0 and bound << shift > INT32_MAX:
        return (f"{x.name!r} ({x.scale:.6g}) to {y.name!r} ({y.scale:.6g}): values up to {bound} "
                f"shifted left by {shift}")
    return None


def constraint_int16_add_scales(op: ir.Op, g: ir.Graph) -> str | None:
    """16x8 ADD: the output multiplier 2 x max(input scales) / (2^15 x output scale) is below 1
    (TFLite takes it with QuantizeMultiplierSmallerThanOneExp)."""
    a, b, y = (g.tensor(n) for n in (*op.inputs[:2], op.outputs[0]))
    p = p16.add_params(op, g)
    real = 2.0 * max(float(a.scale), float(b.scale)) / ((1 << p.left_shift) * float(y.scale))
    if not (real < 1.0 and p.output_shift <= 0):
        return f"output {y.name!r} scale {y.scale:.6g}, inputs {a.scale:.6g} and {b.scale:.6g}: {real:.6g}"
    return None


def constraint_int16_softmax(op: ir.Op, g: ir.Graph) -> str | None:
    """16x8 SOFTMAX: the output has scale 1/32768 and zero point 0 and the input's shape, beta is
    positive, and input scale x beta is within 2^-31 and 2^15 of 10/65535 (the exp table's step)."""
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    if not np.isclose(y.scale, 1 / 32768, rtol=0, atol=1e-3 / 32768) or y.zero_point != 0:
        return f"output scale {y.scale}, zero point {y.zero_point}"
    if x.shape != y.shape or not op.attrs.beta > 0:
        return f"input {list(x.shape)}, output {list(y.shape)}, beta {op.attrs.beta}"
    multiplier, shift = p16.softmax_params(op, g)
    if multiplier == 0 or shift > SOFTMAX_MAX_SHIFT:
        return f"input {x.name!r} scale {x.scale:.6g}, beta {op.attrs.beta:.6g}: shift {shift}"
    return None

"""The rules of the integer LSTM (TFLite UNIDIRECTIONAL_SEQUENCE_LSTM: int8 activations and int32
biases, or 16x8: int16 activations and int64 biases; int16 gates and cell state): named
constraints as in mcudeploy.support, whose docstrings are the rules a user reads. The forms TFLite
has and mcudeploy does not deploy (peephole, projection, layer normalisation, CIFG) are refused at
import, naming the operator (mcudeploy.frontends.tflite)."""

from __future__ import annotations

import numpy as np

from mcudeploy import ir
from mcudeploy.arith import INT32_MAX
from mcudeploy.reference.lstm import GATES, checked_log2, op_params
from mcudeploy.support_s16 import S64_ACC_LIMIT, S64_MAX_SHIFT

# The tanh of the cell state scales it by 3 * 2^(p + 12) (p: log2 of the cell scale) in 32 bits.
CELL_POWER_RANGE = (-40, 2)


def _span(t: ir.Tensor) -> int:
    info = np.iinfo(t.dtype)
    return max(int(info.max) - t.zero_point, t.zero_point - int(info.min))


def constraint_lstm_shapes(op: ir.Op, g: ir.Graph) -> str | None:
    """LSTM: the sequence is [batch, time, inputs] ([time, batch, inputs] when time major) and the
    output [batch, time, hidden] in the same order; each gate has constant int8 input weights
    [hidden, inputs] and recurrent weights [hidden, hidden], quantized per tensor with zero point 0,
    and a constant int32 bias [hidden] (int64 in a 16x8 LSTM)."""
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    if len(x.shape) != 3 or len(y.shape) != 3 or x.shape[:2] != y.shape[:2]:
        return f"input {list(x.shape)}, output {list(y.shape)}"
    inputs, hidden = x.shape[2], y.shape[2]
    bias_type = "int64" if x.dtype == "int16" else "int32"
    for position, name in enumerate(op.inputs[1:13], start=1):
        t = g.tensor(name)
        shape, dtype = ((hidden, inputs), "int8") if position <= 4 else \
            ((hidden, hidden), "int8") if position <= 8 else ((hidden,), bias_type)
        if not t.is_constant or t.dtype != dtype or t.shape != shape:
            return f"{name!r} is {t.dtype} {list(t.shape)}{'' if t.is_constant else ' (not constant)'}, " \
                   f"expected a constant {dtype} {list(shape)}"
        if dtype == "int8" and (t.quant is None or len(t.quant.scale) != 1 or t.quant.zero_point[0] != 0
                                or not (np.isfinite(t.quant.scale[0]) and t.quant.scale[0] > 0)):
            return f"weights {name!r} are not quantized per tensor with zero point 0"
    return None


def constraint_lstm_cell_scale(op: ir.Op, g: ir.Graph) -> str | None:
    """LSTM: the cell state's scale is a power of two 2^p (TFLite's CheckedLog2), p from -40 to 2,
    and the cell clip is 0 (none) or at least the cell scale (a smaller one quantizes to 0, for
    which TFLM holds the cell state at 0 and Arm's API, where 0 means no clip, does not)."""
    a = op.attrs
    if not (np.isfinite(a.cell_scale) and a.cell_scale > 0):
        return f"cell scale {a.cell_scale}"
    power = checked_log2(a.cell_scale)
    if abs(np.log2(a.cell_scale) - power) > 1e-3 or not CELL_POWER_RANGE[0] <= power <= CELL_POWER_RANGE[1]:
        return f"cell scale {a.cell_scale:.6g}"
    if not (np.isfinite(a.cell_clip) and (a.cell_clip == 0 or op_params(op, g).cell_clip > 0)):
        return f"cell clip {a.cell_clip:.6g}, cell scale {a.cell_scale:.6g}"
    return None


def constraint_lstm_requantization(op: ir.Op, g: ir.Graph) -> str | None:
    """LSTM: each gate's sums requantized to Q3.12 fit in 32 bits when a multiplier above 1 shifts
    them left (16x8: they are below 2^47 and the shift at most 7, TFLite's 64-bit requantization),
    and the products requantized to the cell and hidden state (gate x cell, gate x gate,
    tanh x gate) have multipliers below 1."""
    p = op_params(op, g)
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    for name in GATES:
        gate = p.gates[name]
        for weights, span, bias, shift, what in (
                (gate.input_weights, _span(x), gate.bias, gate.input_shift, "input"),
                (gate.hidden_weights, _span(y), None, gate.hidden_shift, "recurrent")):
            bound = np.abs(weights.astype(np.int64)).sum(axis=1) * span
            if bias is not None:
                bound = bound + np.abs(bias.astype(np.int64))
            largest = int(bound.max())
            if p.int16 and (largest >= S64_ACC_LIMIT or shift > S64_MAX_SHIFT):
                return f"{name} gate, {what} weights: sums up to {largest}, shift {shift}"
            if not p.int16 and (largest > INT32_MAX or (shift > 0 and largest << shift > INT32_MAX)):
                return (f"{name} gate, {what} weights: sums up to {largest} shifted left by "
                        f"{max(shift, 0)} bits")
    for (multiplier, shift), what in ((p.forget_to_cell, "forget gate x cell state"),
                                      (p.input_to_cell, "input gate x cell gate"),
                                      (p.hidden, "tanh(cell state) x output gate")):
        if shift > 0:
            return f"{what}: multiplier {multiplier} x 2^{shift} (hidden scale {y.scale:.6g})"
    return None


def constraint_lstm_alone(op: ir.Op, g: ir.Graph) -> str | None:
    """LSTM: one that starts each inference from the zero state (as Keras computes it, while
    TFLite would keep its state: TFLM is reset before each inference, which would also reset
    variables) is in a model without resource variables."""
    if not op.attrs.keeps_state and g.variables:
        return f"the model has resource variables ({', '.join(repr(v) for v in list(g.variables)[:3])})"
    return None


def constraint_lstm_state(op: ir.Op, g: ir.Graph) -> str | None:
    """LSTM: one that keeps its state from inference to inference (--lstm-state keep) has batch 1
    or is time major (Arm's step reads the state of a batch-major batch with the sequence's
    stride), and its state variables are [batch, hidden] (the cell state int16)."""
    if not op.attrs.keeps_state:
        return None
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    batch = x.shape[1] if op.attrs.time_major else x.shape[0]
    if batch != 1 and not op.attrs.time_major:
        return f"batch-major input {list(x.shape)} of batch {batch}"
    hidden, cell = g.tensor(op.inputs[13]), g.tensor(op.inputs[14])
    if hidden.shape != (batch, y.shape[2]) or cell.shape != hidden.shape or cell.dtype != "int16" \
            or hidden.dtype != y.dtype:
        return f"state {hidden.dtype} {list(hidden.shape)} and {cell.dtype} {list(cell.shape)}"
    return None


LSTM_RULES = (constraint_lstm_shapes, constraint_lstm_cell_scale, constraint_lstm_requantization,
              constraint_lstm_alone, constraint_lstm_state)

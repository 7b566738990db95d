"""The float LSTM of an imported float graph (the IR's `lstm` with float weights), for calibration.

The integer LSTM needs two ranges that a float model does not expose at every step: its whole
output sequence (an ONNX LSTM's Y may be unused, only Y_h read) and its cell state, which TFLite's
converter quantizes to int16 with a power-of-two scale covering its calibrated range
(2^ceil(log2(max |c|)) / 2^15). Both are computed here in float64 from the LSTM's input, as ONNX
and Keras define the layer (gates i, f, c, o; c' = f c + i g; h' = o tanh(c')), for each sample.
An ONNX GRU, imported as ordinary operators unrolled over the steps (mcudeploy.frontends.onnx_gru),
has every intermediate computed here the same way, since the float model exposes none of them.
"""

from __future__ import annotations

import math

import numpy as np

from mcudeploy import ir

CELL_SUFFIX = " (cell state)"  # the calibration entry of an LSTM's cell state: its output's name + this


def cell_state_name(op: ir.Op) -> str:
    """The name calibration measures `op`'s cell state under."""
    return op.outputs[0] + CELL_SUFFIX


def cell_scale(low: float, high: float) -> float:
    """TFLite's int16 cell state scale for values in [low, high]: a power of two, 2^ceil(log2 peak) / 2^15
    (a state that stays 0 gets 2^-15)."""
    peak = max(abs(low), abs(high))
    power = math.ceil(math.log2(peak)) if peak > 0 else 0
    return 2.0 ** (power - 15)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def float_lstm(op: ir.Op, g: ir.Graph, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The output sequence and every step's cell state of float `op` (time major) on input `x`."""
    consts = [g.tensor(n).data.astype(np.float64) for n in op.inputs[1:13]]
    w_in, w_hid, bias = consts[0:4], consts[4:8], consts[8:12]  # input, forget, cell, output gates
    seq = x.astype(np.float64) if op.attrs.time_major else np.swapaxes(x, 0, 1).astype(np.float64)
    hidden_size = w_in[0].shape[0]
    h = np.zeros((seq.shape[1], hidden_size))
    c = np.zeros_like(h)
    outputs, cells = [], []
    for step in seq:
        i, f, gate, o = (step @ w_in[k].T + h @ w_hid[k].T + bias[k] for k in range(4))
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(gate)
        h = _sigmoid(o) * np.tanh(c)
        outputs.append(h)
        cells.append(c)
    y = np.stack(outputs)
    return (y if op.attrs.time_major else np.swapaxes(y, 0, 1)).astype(np.float32), np.stack(cells)


def lstm_names(g: ir.Graph) -> list[str]:
    """What calibration adds for each float LSTM (its output sequence and its cell state) and for
    each ONNX GRU unrolled into ordinary operators (every operator's output)."""
    return [name for op in g.ops if op.kind == "lstm" for name in (op.outputs[0], cell_state_name(op))] \
        + [op.outputs[0] for op in g.ops if _from_gru(op)]


def _from_gru(op: ir.Op) -> bool:
    return op.origin.endswith("(GRU)")


def _arithmetic(op: ir.Op, g: ir.Graph, ins: list[np.ndarray]) -> np.ndarray:
    """A fully connected layer, an element-wise operator, a sigmoid or tanh of an unrolled GRU, in
    float64."""
    x = [v.astype(np.float64) for v in ins]
    if op.kind == "fully_connected":
        return x[0] @ x[1].T + x[2]
    if op.kind == "logistic":
        return _sigmoid(x[0])
    if op.kind == "tanh":
        return np.tanh(x[0])
    return {"add": np.add, "sub": np.subtract, "mul": np.multiply}[op.kind](x[0], x[1])


def _move(op: ir.Op, g: ir.Graph, ins: list[np.ndarray]) -> np.ndarray:
    """A slice, concatenation or reshape of float values."""
    if op.kind == "slice":
        a = op.attrs
        return ins[0][tuple(slice(b, e, s) for b, e, s in zip(a.begin, a.end, a.strides, strict=True))]
    if op.kind == "concat":
        return np.concatenate(ins, axis=op.attrs.axis)
    return ins[0].reshape(g.tensor(op.outputs[0]).shape)


def lstm_values(g: ir.Graph, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The output sequence and cell states of each float LSTM, in graph order, from `values` (the
    float model's tensors) and what it computes itself: the LSTMs' outputs and the slices,
    concatenations and reshapes the import adds around them (a reversed sequence), and every
    operator of an unrolled GRU."""
    found: dict[str, np.ndarray] = {}
    for op in g.ops:
        ins = [values.get(n, found.get(n)) if g.tensor(n).data is None else g.tensor(n).data
               for n in op.inputs[:1 if op.kind == "lstm" else None]]
        if any(v is None for v in ins) or (op.kind != "lstm" and op.outputs[0] in values):
            continue
        if op.kind == "lstm":
            found[op.outputs[0]], found[cell_state_name(op)] = float_lstm(op, g, ins[0])
        elif op.kind in ("slice", "concat", "reshape"):
            found[op.outputs[0]] = _move(op, g, ins)
        elif _from_gru(op):
            found[op.outputs[0]] = _arithmetic(op, g, ins).astype(np.float32)
    return found

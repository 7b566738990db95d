"""TFLite's integer UNIDIRECTIONAL_SEQUENCE_LSTM, bit for bit as TFLite-Micro's lstm_eval computes
it: int8 activations with int16 gates and cell state ("8x8->16", int32 biases) or int16
activations ("16x8->16", int64 biases); no peephole, projection or layer normalisation (TFLM
supports none of them). The graph runner computes the IR's `lstm` operator with `op_params` and
`lstm`, from the zero state at each inference.

One step, for each batch row (the rows are independent):
  gate  = act(sat16(clamp16(rq(W_in (x - zp_x) + b)) + clamp16(rq(W_hid (h - zp_h)))))
          (sigmoid; the cell gate's activation is the layer's, tanh in Keras)
  cell  = clip(sat16(clamp16(rq(f * cell)) + clamp16(rq(i * g))))
  h     = clamp(rq(tanh(cell) * o) + zp_h)
rq is the 32-bit requantization for int8 layers and the 64-bit one (FCs of 16x8 layers); gates
are Q3.12 before and Q0.15 after their activation; the cell state has scale 2^cell_scale_power.
The hidden and cell state persist from call to call (TFLite's variable tensors), starting at
real zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mcudeploy.arith import quantize_multiplier, requantize, wrap_int32
from mcudeploy.ir import Graph, Op
from mcudeploy.reference.s16 import INT16_MAX, INT16_MIN, activation, requantize_s64

GATE_INPUT_SCALE = 2.0**-12  # the gates' FC outputs, Q3.12
GATE_OUTPUT_SCALE = 2.0**-15  # the gates after sigmoid/tanh, Q0.15
GATES = ("forget", "input", "cell", "output")


@dataclass(frozen=True, eq=False)
class LstmGate:
    """One gate: its two FCs (int8 weights [hidden, columns]) and its activation."""

    input_weights: np.ndarray
    input_multiplier: int
    input_shift: int
    hidden_weights: np.ndarray
    hidden_multiplier: int
    hidden_shift: int
    bias: np.ndarray  # int32 (int8 layer) or int64 (16x8 layer), [hidden]
    activation: str = "sigmoid"


@dataclass(frozen=True, eq=False)
class LstmParams:
    """Everything TFLM's Prepare derives for one integer LSTM layer."""

    int16: bool  # 16x8 (int16 activations) or int8
    time_major: bool
    input_zero_point: int
    hidden_zero_point: int  # of the hidden state and output
    forget_to_cell: tuple[int, int]  # (multiplier, shift): forget gate * cell -> cell
    input_to_cell: tuple[int, int]  # input gate * cell gate -> cell
    hidden: tuple[int, int]  # tanh(cell) * output gate -> hidden state
    cell_clip: int  # quantized; 0 for none
    cell_scale_power: int  # cell scale = 2^cell_scale_power
    gates: dict[str, LstmGate]  # forget, input, cell, output

    @property
    def hidden_size(self) -> int:
        return self.gates["forget"].input_weights.shape[0]


def checked_log2(scale: float) -> int:
    """TFLite's CheckedLog2: log2 of a float32 scale, rounded (exact for powers of two)."""
    x_log2 = np.float32(math.log(np.float32(scale))) * np.float32(1.0 / math.log(2.0))
    return int(math.copysign(math.floor(abs(float(x_log2)) + 0.5), float(x_log2)))


def _fc_multiplier(input_scale: float, weight_scale: float) -> tuple[int, int]:
    """A gate FC's requantization to Q3.12: TFLite's per-tensor multiplier, the scales' product in
    float32, divided in double."""
    product = float(np.float32(input_scale) * np.float32(weight_scale))
    return quantize_multiplier(product / GATE_INPUT_SCALE)


def _mul_multiplier(scale1: float, scale2: float, output_scale: float) -> tuple[int, int]:
    """TFLM's CreateInterGateMulParams: double(s1) * double(s2) / double(s_out)."""
    s1, s2, so = (float(np.float32(s)) for s in (scale1, scale2, output_scale))
    return quantize_multiplier(s1 * s2 / so)


def lstm_params(*, int16: bool, time_major: bool, input_scale: float, input_zero_point: int,
                hidden_scale: float, hidden_zero_point: int, cell_scale: float, cell_clip: float,
                weights: dict[str, tuple[np.ndarray, float, np.ndarray, float]],
                biases: dict[str, np.ndarray], cell_activation: str = "tanh") -> LstmParams:
    """The layer's parameters from its tensors, as TFLM's PrepareGateParametersInteger and
    CreateLstmCellStateInfo derive them. `weights[gate]` = (input weights, their scale, recurrent
    weights, their scale), per-tensor int8; `biases[gate]` int32 or int64."""
    gates = {}
    for name in GATES:
        w_in, s_in, w_hid, s_hid = weights[name]
        gates[name] = LstmGate(
            np.asarray(w_in, np.int8), *_fc_multiplier(input_scale, s_in),
            np.asarray(w_hid, np.int8), *_fc_multiplier(hidden_scale, s_hid),
            np.asarray(biases[name]), cell_activation if name == "cell" else "sigmoid")
    clip = float(np.float64(np.float32(cell_clip)) / np.float64(np.float32(cell_scale)))
    return LstmParams(
        int16=int16, time_major=time_major, input_zero_point=input_zero_point,
        hidden_zero_point=hidden_zero_point,
        forget_to_cell=_mul_multiplier(GATE_OUTPUT_SCALE, cell_scale, cell_scale),
        input_to_cell=_mul_multiplier(GATE_OUTPUT_SCALE, GATE_OUTPUT_SCALE, cell_scale),
        hidden=_mul_multiplier(GATE_OUTPUT_SCALE, GATE_OUTPUT_SCALE, hidden_scale),
        cell_clip=int(min(max(clip, -32768.0), 32767.0)) if cell_clip > 0 else 0,
        cell_scale_power=checked_log2(cell_scale), gates=gates)


def op_params(op: Op, g: Graph) -> LstmParams:
    """The parameters of the IR's `lstm` operator (inputs: sequence, then the input weights, the
    recurrent weights and the biases of the input, forget, cell and output gates)."""
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    order = ("input", "forget", "cell", "output")
    tensors = [g.tensor(n) for n in op.inputs[1:13]]
    weights = {gate: (tensors[i].data, tensors[i].quant.scale[0], tensors[4 + i].data,
                      tensors[4 + i].quant.scale[0]) for i, gate in enumerate(order)}
    biases = {gate: tensors[8 + i].data for i, gate in enumerate(order)}
    a = op.attrs
    return lstm_params(int16=x.dtype == "int16", time_major=a.time_major, input_scale=x.scale,
                       input_zero_point=x.zero_point, hidden_scale=y.scale, hidden_zero_point=y.zero_point,
                       cell_scale=a.cell_scale, cell_clip=a.cell_clip, weights=weights, biases=biases)


def run_op(op: Op, g: Graph, ins: list[np.ndarray]) -> np.ndarray:
    """The IR's `lstm` on its input values: the whole sequence from the zero state, or with
    `keeps_state` from the state in its two variable inputs, which it updates in place."""
    p = op_params(op, g)
    if not op.attrs.keeps_state:
        return lstm(ins[0], p)[0]
    out, (hidden, cell) = lstm(ins[0], p, (ins[13], ins[14]))
    ins[13][...] = hidden
    ins[14][...] = cell
    return out


def _sat16(x: np.ndarray) -> np.ndarray:
    return np.clip(x, INT16_MIN, INT16_MAX)


def _fc(rows: np.ndarray, weights: np.ndarray, bias: np.ndarray | None, multiplier: int, shift: int,
        int16: bool) -> np.ndarray:
    """clamp16(requantize(rows @ weights.T + bias)): int64 sums for 16x8, int32 for int8 layers."""
    acc = rows @ weights.astype(np.int64).T
    if bias is not None:
        acc = acc + bias.astype(np.int64)
    if int16:
        return _sat16(requantize_s64(acc, multiplier, shift))
    return _sat16(requantize(wrap_int32(acc), multiplier, shift))


def _step(x: np.ndarray, hidden: np.ndarray, cell: np.ndarray, p: LstmParams
          ) -> tuple[np.ndarray, np.ndarray]:
    """One time step for rows x [B, input] (int64) from hidden [B, H] (raw) and cell [B, H]."""
    x_off = x - p.input_zero_point
    h_off = hidden - p.hidden_zero_point
    out = {}
    for name in GATES:
        g = p.gates[name]
        pre = _fc(x_off, g.input_weights, g.bias, g.input_multiplier, g.input_shift, p.int16) + _fc(
            h_off, g.hidden_weights, None, g.hidden_multiplier, g.hidden_shift, p.int16)
        out[name] = activation(_sat16(pre), 0, g.activation).astype(np.int64)
    kept = _sat16(requantize(out["forget"] * cell, *p.forget_to_cell))
    added = _sat16(requantize(out["input"] * out["cell"], *p.input_to_cell))
    cell = _sat16(kept + added)
    if p.cell_clip > 0:
        cell = np.clip(cell, -p.cell_clip, p.cell_clip)
    squashed = activation(cell, p.cell_scale_power + 12, "tanh").astype(np.int64)
    low, high = (INT16_MIN, INT16_MAX) if p.int16 else (-128, 127)
    hidden = np.clip(requantize(squashed * out["output"], *p.hidden) + p.hidden_zero_point, low, high)
    return hidden, cell


def initial_state(p: LstmParams, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Hidden state at its zero point and cell state 0, as after TFLM's reset of the variables."""
    return (np.full((batch, p.hidden_size), p.hidden_zero_point, np.int64),
            np.zeros((batch, p.hidden_size), np.int64))


def lstm(x: np.ndarray, p: LstmParams, state: tuple[np.ndarray, np.ndarray] | None = None
         ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The whole sequence: x [T, B, I] (time major) or [B, T, I]; returns every step's hidden state
    in the same layout (int8 or int16) and the final (hidden, cell) state to pass to the next call."""
    seq = np.asarray(x, np.int64)
    if not p.time_major:
        seq = seq.transpose(1, 0, 2)
    hidden, cell = initial_state(p, seq.shape[1]) if state is None else (np.asarray(state[0], np.int64),
                                                                         np.asarray(state[1], np.int64))
    steps = []
    for t in range(seq.shape[0]):
        hidden, cell = _step(seq[t], hidden, cell, p)
        steps.append(hidden)
    out = np.stack(steps)
    if not p.time_major:
        out = out.transpose(1, 0, 2)
    return out.astype(np.int16 if p.int16 else np.int8), (hidden, cell)

"""The integer LSTM (IR `lstm`, TFLite UNIDIRECTIONAL_SEQUENCE_LSTM) → one call of CMSIS-NN's
`arm_lstm_unidirectional_s8` (int8 activations) or `_s16` (16x8: int16 activations, int64 biases)
with its `cmsis_nn_lstm_params`.

Every number is computed on the host by TFLite's rules, as the host reference's are
(mcudeploy.reference.lstm.op_params): each gate's two effective scales as Q31 multipliers and
shifts to Q3.12, the three products' (to the cell and the hidden state), the cell clip and the
cell scale's power of two. Arm's API takes each gate's kernel sums folded into the bias ("effective
biases", what `arm_vector_sum_s8` computes in TFLM's CMSIS-NN port): bias - input zero point x
row sum of the input weights, and - hidden zero point x row sum of the recurrent weights (16x8:
the bias itself and zeros, the zero points being 0; Arm's `_s16` reads both arrays); they are
computed here and placed in flash. The call's three int16 buffers (two gates' values and the cell
state, batch x hidden each) are its scratch in the arena.

An LSTM that keeps its state (`keeps_state`) is a loop over the time steps of Arm's step function,
`arm_nn_lstm_step_s8`/`_s16` (declared in `arm_nnsupportfunctions.h`): the hidden state and the
cell state are the model's persistent variables, each step reads and rewrites the hidden state in
place and copies it to the step's output; only the two gate buffers are scratch.
"""

from __future__ import annotations

import numpy as np

from mcudeploy.arith import wrap_int32
from mcudeploy.codegen.lower import Const, Dims, FixedScratch, Layer
from mcudeploy.ir import Graph, Op
from mcudeploy.reference.lstm import op_params

STRUCT_GATES = ("forget", "input", "cell", "output")  # cmsis_nn_lstm_params' order
ACTIVATIONS = {"sigmoid": "ARM_SIGMOID", "tanh": "ARM_TANH"}
BUFFERS = 3  # temp1, temp2, cell_state


def effective_bias(weights: np.ndarray, zero_point: int, bias: np.ndarray | None, int16: bool
                   ) -> np.ndarray:
    """bias - zero_point x each row's sum: int32 (arm_vector_sum_s8 with lhs_offset -zero_point),
    or int64 for a 16x8 LSTM (arm_vector_sum_s8_s64)."""
    total = -zero_point * weights.astype(np.int64).sum(axis=1)
    if bias is not None:
        total = total + bias.astype(np.int64)
    return total if int16 else wrap_int32(total).astype(np.int32)


def lower_lstm(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    p = op_params(op, g)
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    steps, batch = (x.shape[0], x.shape[1]) if p.time_major else (x.shape[1], x.shape[0])
    hidden, inputs = p.hidden_size, x.shape[2]
    bias_ctype = "int64_t" if p.int16 else "int32_t"
    consts: list[Const] = []
    gates = []
    for name in STRUCT_GATES:
        gate = p.gates[name]
        base = f"{prefix}_{name}"
        consts += [Const(f"{base}_input_weights", "int8_t", gate.input_weights.reshape(-1)),
                   Const(f"{base}_input_bias", bias_ctype,
                         effective_bias(gate.input_weights, p.input_zero_point, gate.bias, p.int16)),
                   Const(f"{base}_hidden_weights", "int8_t", gate.hidden_weights.reshape(-1)),
                   Const(f"{base}_hidden_bias", bias_ctype,
                         effective_bias(gate.hidden_weights, p.hidden_zero_point, None, p.int16))]
        gates.append({"name": name, "symbol": base, "input_multiplier": gate.input_multiplier,
                      "input_shift": gate.input_shift, "hidden_multiplier": gate.hidden_multiplier,
                      "hidden_shift": gate.hidden_shift, "activation": ACTIVATIONS[gate.activation]})
    buffer_bytes = batch * hidden * 2
    keeps_state = op.attrs.keeps_state
    element = 2 if p.int16 else 1
    step_rows = batch if p.time_major else 1  # rows of one time step, side by side in memory
    values = {
        "time_major": int(p.time_major), "batch": batch, "steps": steps, "input_size": inputs,
        "hidden_size": hidden, "input_offset": -p.input_zero_point, "output_offset": p.hidden_zero_point,
        "forget_to_cell": p.forget_to_cell, "input_to_cell": p.input_to_cell, "output": p.hidden,
        "cell_clip": p.cell_clip, "cell_scale_power": p.cell_scale_power, "gates": gates,
        "buffer_bytes": buffer_bytes, "s16": p.int16, "input_dims": Dims.nhwc(x.shape),
        "output_dims": Dims.nhwc(y.shape), "keeps_state": keeps_state,
        # the step function's strides: one step of the input and output, and the batch offset
        "step_in": step_rows * inputs, "step_out": step_rows * hidden,
        "step_out_bytes": step_rows * hidden * element,
        "batch_offset": 1 if p.time_major else steps,
    }
    macs = steps * batch * 4 * hidden * (inputs + hidden)
    buffers = BUFFERS - 1 if keeps_state else BUFFERS  # a kept cell state is a variable
    inputs_used = (op.inputs[0], *op.inputs[13:15]) if keeps_state else op.inputs[:1]
    return Layer(index, prefix, op, "lstm.c.j2", inputs_used, op.outputs[0], values, tuple(consts),
                 FixedScratch(f"{prefix}_get_buffer_size", "fixed", size=buffers * buffer_bytes), macs=macs)

"""ONNX GRU → ordinary float IR operators unrolled over the static sequence, as TensorFlow's converter
deploys a GRU: FULLY_CONNECTED, ADD, SUB, MUL, LOGISTIC, TANH, SLICE, CONCATENATION and RESHAPE,
which the quantizer then calibrates one by one (their float values come from
mcudeploy.quantize.lstm_float) and TFLM runs as they are.

ONNX stacks the gates of W `[D, 3H, I]`, R `[D, 3H, H]` and B `[D, 6H]` (Wb then Rb) in the order
z, r, h. The inputs' part of each gate is one fully connected layer over the whole sequence `[T, I]`
(its bias Wb + Rb for z and r, Wb_h + Rb_h, or Wb_h alone with linear_before_reset), each step a
slice of it; then for each step, from the previous hidden state h:

    z = sigmoid(x_z + h Rz^T)              r = sigmoid(x_r + h Rr^T)
    n = tanh(x_h + (r h) Rh^T)             (linear_before_reset 0)
    n = tanh(x_h + r (h Rh^T + Rb_h))      (linear_before_reset 1)
    h' = (1 - z) n + z h = n + z (h - n)

The first step starts from h = 0: z = sigmoid(x_z), n = tanh(x_h) (tanh(x_h + r Rb_h) with
linear_before_reset), h' = n - z n. A reverse direction runs the steps from the last, Y keeping
each step's place; bidirectional is both, concatenated on Y's direction axis. Y `[T, D, 1, H]` is the
steps concatenated and reshaped, Y_h `[D, 1, H]` the last computed steps.

Refused by name: clip, activations other than Sigmoid/Tanh, layout 1, a batch other than 1, a
sequence_lens shorter than the sequence, a non-zero or computed initial_h.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import onnx

from mcudeploy import ir
from mcudeploy.frontends.onnx_lstm import (
    DIRECTIONS,
    MAX_CONCAT_INPUTS,
    attribute_text,
    check_layout_and_activations,
    check_zero_state,
    emit_part,
    recurrent_weights,
)

if TYPE_CHECKING:
    from mcudeploy.frontends.onnx import _Converter

GATES = ("z", "r", "h")  # the order of W, R and B's blocks
DEFAULT_ACTIVATIONS = ("Sigmoid", "Tanh")


def _check(c: _Converter, node: onnx.NodeProto, attrs: dict) -> str:
    """The direction, once the attributes and optional inputs are checked."""
    direction = attribute_text(attrs.get("direction", "forward"))
    if direction not in DIRECTIONS:
        raise c.refuse(f"attribute direction={direction} is not a GRU direction")
    if "clip" in attrs:
        raise c.refuse(f"attribute clip={attrs['clip']:g} (a clip of the gates' inputs) is not supported")
    check_layout_and_activations(c, attrs, DEFAULT_ACTIVATIONS)
    if len(node.input) < 3 or not all(node.input[:3]):
        raise c.refuse("X, W and R are required inputs")
    return direction


def _check_optional_inputs(c: _Converter, node: onnx.NodeProto, steps: int) -> None:
    """sequence_lens covers the whole sequence; the initial state is zero."""
    check_zero_state(c, list(node.input) + [""] * (6 - len(node.input)), steps, "GRU", ((5, "initial_h"),))


class _Unroller:
    """Emits one direction's steps; every tensor and operator named after `base`."""

    def __init__(self, c: _Converter, base: str, hidden: int, before_reset: bool) -> None:
        self.c, self.base, self.hidden, self.before_reset = c, base, hidden, before_reset
        self.row = (1, hidden)

    def op(self, attrs: ir.Attrs, inputs: tuple[str, ...], what: str, shape: tuple[int, ...] | None = None
           ) -> str:
        shape = shape or self.row
        out = self.c.intermediate(f"{self.base}_{what}", shape)
        emit_part(self.c, attrs, inputs, out, shape, what)
        return out

    def const(self, what: str, value: np.ndarray) -> str:
        return self.c.new_constant(f"{self.base}_{what}", value)

    def fc(self, x: str, weights: np.ndarray, bias: np.ndarray, what: str, rows: int = 1) -> str:
        ins = (x, self.const(f"{what}_weights", weights), self.const(f"{what}_bias", bias))
        return self.op(ir.FullyConnected(ir.NO_CLIP), ins, what, (rows, self.hidden))

    def run(self, x2d: str, steps: int, w: np.ndarray, r: np.ndarray, b: np.ndarray,
            order: list[int]) -> dict[int, str]:
        """Each step's hidden state [1, H], by its place in the sequence."""
        h_size = self.hidden
        block = {g: slice(i * h_size, (i + 1) * h_size) for i, g in enumerate(GATES)}
        wb = {g: b[block[g]] for g in GATES}
        rb = {g: b[3 * h_size:][block[g]] for g in GATES}
        input_bias = {"z": wb["z"] + rb["z"], "r": wb["r"] + rb["r"],
                      "h": wb["h"] if self.before_reset else wb["h"] + rb["h"]}
        resets_first = self.before_reset and bool(np.any(rb["h"] != 0))  # r matters from the zero state
        projected = {g: self.fc(x2d, w[block[g]], input_bias[g], f"x{g}", steps)
                     for g in GATES if g != "r" or steps > 1 or resets_first}
        rec = {g: r[block[g]] for g in GATES}
        zero = np.zeros(h_size, np.float32)
        states: dict[int, str] = {}
        h = ""
        for t in order:
            uses_r = bool(h) or resets_first
            x = {g: self.op(ir.Slice((t, 0), (t + 1, h_size), (1, 1)), (projected[g],), f"x{g}{t}")
                 for g in GATES if g != "r" or uses_r}
            if not h:  # the zero state
                z = self.op(ir.Logistic(), (x["z"],), f"z{t}")
                pre = x["h"]
                if uses_r:
                    r_gate = self.op(ir.Logistic(), (x["r"],), f"r{t}")
                    reset = self.op(ir.Mul(ir.NO_CLIP), (r_gate, self.const(f"rbh{t}", rb["h"][None])),
                                    f"reset{t}")
                    pre = self.op(ir.Add(ir.NO_CLIP), (x["h"], reset), f"nin{t}")
                n = self.op(ir.Tanh(), (pre,), f"n{t}")
                zn = self.op(ir.Mul(ir.NO_CLIP), (z, n), f"zn{t}")
                h = self.op(ir.Sub(ir.NO_CLIP), (n, zn), f"h{t}")
            else:
                gate = {}
                for g in ("z", "r"):
                    hg = self.fc(h, rec[g], zero, f"h{g}{t}")
                    gate[g] = self.op(ir.Logistic(), (self.op(ir.Add(ir.NO_CLIP), (x[g], hg), f"{g}in{t}"),),
                                      f"{g}{t}")
                if self.before_reset:
                    hh = self.fc(h, rec["h"], rb["h"], f"hh{t}")
                    reset = self.op(ir.Mul(ir.NO_CLIP), (gate["r"], hh), f"reset{t}")
                else:
                    rh = self.op(ir.Mul(ir.NO_CLIP), (gate["r"], h), f"rh{t}")
                    reset = self.fc(rh, rec["h"], zero, f"hh{t}")
                n = self.op(ir.Tanh(), (self.op(ir.Add(ir.NO_CLIP), (x["h"], reset), f"nin{t}"),), f"n{t}")
                diff = self.op(ir.Sub(ir.NO_CLIP), (h, n), f"d{t}")
                zd = self.op(ir.Mul(ir.NO_CLIP), (gate["z"], diff), f"zd{t}")
                h = self.op(ir.Add(ir.NO_CLIP), (n, zd), f"h{t}")
            states[t] = h
        return states


def _concat(c: _Converter, parts: list[str], shape_of: tuple[int, ...], base: str) -> str:
    """Rows [1, H] concatenated on axis 0, in groups of at most MAX_CONCAT_INPUTS (TFLM's limit)."""
    while len(parts) > 1:
        groups = [parts[i : i + MAX_CONCAT_INPUTS] for i in range(0, len(parts), MAX_CONCAT_INPUTS)]
        parts = []
        for group in groups:
            if len(group) == 1:
                parts.append(group[0])
                continue
            rows = sum(c.tensors[p].shape[0] for p in group)
            shape = (rows, *shape_of[1:])
            out = c.intermediate(f"{base}_steps", shape)
            emit_part(c, ir.Concat(0), tuple(group), out, shape, "steps")
            parts.append(out)
    return parts[0]


def convert_gru(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
    """ONNX GRU → fully connected layers, element-wise operators, sigmoid and tanh unrolled over the
    steps; Y is the steps concatenated and reshaped, Y_h the last step."""
    direction = _check(c, node, attrs)
    x = c.layout(node.input[0])
    if x.kind != "plain" or len(x.onnx_shape) != 3:
        raise c.refuse(f"X ({node.input[0]!r}) of shape {list(x.onnx_shape)} must be a 3-D [seq, batch, "
                       "input] tensor")
    steps, batch, inputs = x.onnx_shape
    if batch != 1:
        raise c.refuse(f"a batch of {batch} is not supported (only 1)")
    r_shape = c.og.shapes.get(node.input[2]) or tuple(c.need_const(node.input[2], "R").shape)
    hidden = int(attrs.get("hidden_size", r_shape[-1]))
    _check_optional_inputs(c, node, steps)
    directions = DIRECTIONS[direction]
    w, r, b = recurrent_weights(c, node, 3, hidden, inputs, directions)
    outputs = list(node.output) + [""] * (2 - len(node.output))
    base = outputs[0] or outputs[1] or node.name or "gru"
    x2d = c.intermediate(f"{base}_x", (steps, inputs))
    emit_part(c, ir.Reshape(), (c.ir_name(node.input[0]),), x2d, (steps, inputs), "x")
    before_reset = bool(int(attrs.get("linear_before_reset", 0)))
    runs = []
    for d in range(directions):
        backward = direction == "reverse" or d == 1
        order = list(range(steps))[::-1] if backward else list(range(steps))
        name = f"{base}_backward" if d == 1 else base
        states = _Unroller(c, name, hidden, before_reset).run(x2d, steps, w[d], r[d], b[d], order)
        runs.append((states, order[-1], name))
    if outputs[0] and c.uses[outputs[0]]:
        y_shape = c.og.shapes[outputs[0]]
        sequences = [_concat(c, [states[t] for t in range(steps)], (steps, hidden), name)
                     for states, _, name in runs]
        if directions == 1:
            emit_part(c, ir.Reshape(), (sequences[0],), outputs[0], y_shape, "y")
        else:
            views = []
            for d, sequence in enumerate(sequences):
                view = c.intermediate(f"{base}_direction{d}", (steps, 1, 1, hidden))
                emit_part(c, ir.Reshape(), (sequence,), view, (steps, 1, 1, hidden), f"direction{d}")
                views.append(view)
            emit_part(c, ir.Concat(1), tuple(views), outputs[0], y_shape, "y")
    if outputs[1] and c.uses[outputs[1]]:
        h_shape = c.og.shapes[outputs[1]]
        lasts = [states[last] for states, last, _ in runs]
        last = lasts[0] if directions == 1 else _concat(c, lasts, (directions, hidden), f"{base}_last")
        emit_part(c, ir.Reshape(), (last,), outputs[1], h_shape, "y_h")

"""ONNX LSTM → the IR's `lstm` (TFLite's UNIDIRECTIONAL_SEQUENCE_LSTM, time major), float.

ONNX stacks the gates of W `[D, 4H, I]`, R `[D, 4H, H]` and B `[D, 8H]` (Wb then Rb) in the order
i, o, f, c; the IR takes the input weights, the recurrent weights and the biases of the input,
forget, cell and output gates, each gate's two biases summed. X `[T, B, I]` (layout 0) is time
major; the IR's output `[T, B, H]` is reshaped to Y `[T, 1, B, H]`, and Y_h, the last step, is a
slice of it. A reverse direction is a forward LSTM over the reversed sequence, its output reversed
back (each step sliced, concatenated in reverse order); bidirectional is both, Y their outputs
concatenated on the direction axis. The state starts at zero (no initial_h/initial_c, or all-zero
constants: what tf2onnx's Shape/Expand sub-graph folds to once the batch is static); the quantizer
gives the cell state its scale (mcudeploy.quantize.lstm_float).

Refused by name: clip, peepholes (P), input_forget, layout 1, activations other than
Sigmoid/Tanh/Tanh, a sequence_lens shorter than the sequence, a non-zero or computed initial state
(a stateful export's state inputs), a used Y_c (the integer LSTM does not output its cell state).
A GRU (mcudeploy.frontends.onnx_gru) becomes ordinary operators unrolled over the steps.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import onnx

from mcudeploy import ir
from mcudeploy.frontends.layout import Layout

if TYPE_CHECKING:
    from mcudeploy.frontends.onnx import _Converter

ONNX_GATES = ("input", "output", "forget", "cell")  # the order of W, R and B's blocks
IR_GATES = ("input", "forget", "cell", "output")  # the IR's (TFLite's) order
DEFAULT_ACTIVATIONS = ("Sigmoid", "Tanh", "Tanh")
MAX_CONCAT_INPUTS = 10  # TFLM's CONCATENATION takes at most 10 inputs (kMaxInputNum)


DIRECTIONS = {"forward": 1, "reverse": 1, "bidirectional": 2}  # direction -> LSTMs


def attribute_text(value: object) -> str:
    """An ONNX string attribute (bytes) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _check_attributes(c: _Converter, attrs: dict) -> str:
    """The direction, once the attributes are checked."""
    direction = attribute_text(attrs.get("direction", "forward"))
    if direction not in DIRECTIONS:
        raise c.refuse(f"attribute direction={direction} is not an LSTM direction")
    if "clip" in attrs:
        raise c.refuse(f"attribute clip={attrs['clip']:g} (a clip of the gates' inputs) is not supported: "
                       "TFLite's integer LSTM has no such clip")
    if int(attrs.get("input_forget", 0)):
        raise c.refuse("attribute input_forget=1 (coupled input and forget gates) is not supported")
    check_layout_and_activations(c, attrs, DEFAULT_ACTIVATIONS)
    return direction


def check_layout_and_activations(c: _Converter, attrs: dict, default: tuple[str, ...]) -> None:
    """Refuses a recurrent node's layout other than 0 and activations other than `default` (once per
    direction), or with alpha or beta."""
    if int(attrs.get("layout", 0)) != 0:
        raise c.refuse(f"attribute layout={attrs['layout']} is not supported (only 0: X is [seq, batch, "
                       "input])")
    activations = tuple(attribute_text(a) for a in attrs.get("activations", default))
    if activations not in (default, default * 2) or "activation_alpha" in attrs or "activation_beta" in attrs:
        raise c.refuse(f"activations {list(activations)} are not supported (only {', '.join(default)}, "
                       "without alpha or beta)")


def recurrent_weights(c: _Converter, node: onnx.NodeProto, gates: int, hidden: int, inputs: int,
                      directions: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An ONNX LSTM's or GRU's W [D, gates*H, I], R [D, gates*H, H] and B [D, 2*gates*H] (zeros when
    absent), float32, their shapes checked."""
    w = c.need_const(node.input[1], "W")
    r = c.need_const(node.input[2], "R")
    d, rows = directions, gates * hidden
    if w.shape != (d, rows, inputs) or r.shape != (d, rows, hidden):
        raise c.refuse(f"W {list(w.shape)} and R {list(r.shape)} must be [{d}, {rows}, {inputs}] and "
                       f"[{d}, {rows}, {hidden}] ({d} direction(s), hidden_size {hidden})")
    b = np.zeros((d, 2 * rows), np.float32)
    if len(node.input) > 3 and node.input[3]:
        b = c.need_const(node.input[3], "B")
        if b.shape != (d, 2 * rows):
            raise c.refuse(f"B ({node.input[3]!r}) of shape {list(b.shape)} must be [{d}, {2 * rows}]")
    return w.astype(np.float32), r.astype(np.float32), b.astype(np.float32)


def check_zero_state(c: _Converter, given: list[str], steps: int, layer: str,
                     states: tuple[tuple[int, str], ...]) -> None:
    """sequence_lens (input 4) covers the whole sequence and each initial state (at its input
    position) is absent or a constant zero: what an `layer` ("LSTM", "GRU") is deployed with."""
    if given[4]:
        lengths = c.need_const(given[4], "sequence_lens")
        if not (lengths == steps).all():
            raise c.refuse(f"sequence_lens {lengths.reshape(-1).tolist()} must be the whole sequence "
                           f"({steps} steps) for every batch row")
    for position, what in states:
        if not given[position]:
            continue
        value = c.const(given[position])
        if value is None:
            raise c.refuse(f"{what} ({given[position]!r}) is computed or a model input: mcudeploy deploys "
                           f"{'an' if layer == 'LSTM' else 'a'} {layer} whose state starts at zero (a "
                           "constant zero initial state is accepted)")
        if np.any(value != 0):
            raise c.refuse(f"{what} ({given[position]!r}) is not zero: mcudeploy deploys "
                           f"{'an' if layer == 'LSTM' else 'a'} {layer} whose state starts at zero")


def _check_optional_inputs(c: _Converter, node: onnx.NodeProto, steps: int) -> None:
    """sequence_lens covers the whole sequence; the initial state is zero; no peepholes."""
    given = list(node.input) + [""] * (8 - len(node.input))
    if given[7]:
        raise c.refuse(f"peephole weights P ({given[7]!r}) are not supported (TFLite-Micro's integer LSTM "
                       "has none)")
    check_zero_state(c, given, steps, "LSTM", ((5, "initial_h"), (6, "initial_c")))


def emit_part(c: _Converter, attrs: ir.Attrs, inputs: tuple[str, ...], output: str, shape: tuple[int, ...],
          suffix: str) -> None:
    """An operator the node becomes besides its recurrent layers, named apart from them (--precision
    moves operators by name); the GRU import builds from these too."""
    op = c.emit(attrs, inputs, output, Layout("plain", shape))
    c.ops[-1] = replace(op, name=f"{op.name}_{suffix}")


def _step(c: _Converter, source: str, shape: tuple[int, ...], t: int, base: str) -> str:
    """Step t [1, B, C] of a time-major sequence [T, B, C]."""
    step = (1, *shape[1:])
    part = c.intermediate(f"{base}_step{t}", step)
    emit_part(c, ir.Slice((t, 0, 0), (t + 1, *shape[1:]), (1, 1, 1)), (source,), part, step, f"step{t}")
    return part


def _reversed(c: _Converter, source: str, shape: tuple[int, ...], base: str) -> str:
    """A time-major sequence [T, B, C] in reverse order: each step sliced, concatenated backwards."""
    if shape[0] == 1:
        return source
    parts = [_step(c, source, shape, t, base) for t in reversed(range(shape[0]))]
    while len(parts) > MAX_CONCAT_INPUTS:  # concatenated in groups first
        groups = [parts[i : i + MAX_CONCAT_INPUTS] for i in range(0, len(parts), MAX_CONCAT_INPUTS)]
        parts = []
        for group in groups:
            group_shape = (len(group), *shape[1:])
            part = c.intermediate(f"{base}_steps", group_shape)
            emit_part(c, ir.Concat(0), tuple(group), part, group_shape, "reverse_group")
            parts.append(part)
    out = c.intermediate(f"{base}_reversed", shape)
    emit_part(c, ir.Concat(0), tuple(parts), out, shape, "reverse")
    return out


def _one_direction(c: _Converter, x: str, weights: tuple[np.ndarray, ...], hidden: int, base: str,
                   shape: tuple[int, int, int], suffix: str) -> str:
    """One IR lstm over `x` [T, B, I]: its output sequence [T, B, H]."""
    w, r, bias = weights
    block = {gate: slice(i * hidden, (i + 1) * hidden) for i, gate in enumerate(ONNX_GATES)}
    names = [c.new_constant(f"{base}_{gate}_input_weights", w[block[gate]]) for gate in IR_GATES]
    names += [c.new_constant(f"{base}_{gate}_recurrent_weights", r[block[gate]]) for gate in IR_GATES]
    names += [c.new_constant(f"{base}_{gate}_bias", bias[block[gate]]) for gate in IR_GATES]
    sequence = c.intermediate(f"{base}_sequence", (shape[0], shape[1], hidden))
    attrs_ir = ir.Lstm(time_major=True, cell_clip=0.0, cell_scale=float("nan"))
    op = c.emit(attrs_ir, (x, *names), sequence, Layout("plain", (shape[0], shape[1], hidden)))
    if suffix:
        c.ops[-1] = replace(op, name=f"{op.name}_{suffix}")
    return sequence


def convert_lstm(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
    """ONNX LSTM → IR lstm (time major), one per direction, a reverse direction between two
    reversals of the sequence (slices and a concatenation); Y is their outputs reshaped (and
    concatenated), Y_h their last steps."""
    direction = _check_attributes(c, attrs)
    if len(node.input) < 3 or not all(node.input[:3]):
        raise c.refuse("X, W and R are required inputs")
    x = c.layout(node.input[0])
    if x.kind != "plain" or len(x.onnx_shape) != 3:
        raise c.refuse(f"X ({node.input[0]!r}) of shape {list(x.onnx_shape)} must be a 3-D [seq, batch, "
                       "input] tensor")
    steps, batch, inputs = x.onnx_shape
    r_shape = c.og.shapes.get(node.input[2]) or tuple(c.need_const(node.input[2], "R").shape)
    hidden = int(attrs.get("hidden_size", r_shape[-1]))
    _check_optional_inputs(c, node, steps)
    outputs = list(node.output) + [""] * (3 - len(node.output))
    if outputs[2] and c.uses[outputs[2]]:
        raise c.refuse(f"its output Y_c ({outputs[2]!r}) is used: the integer LSTM does not output its cell "
                       "state (Y and Y_h are supported)")
    directions = DIRECTIONS[direction]
    w, r, b = recurrent_weights(c, node, 4, hidden, inputs, directions)
    bias = b[:, : 4 * hidden] + b[:, 4 * hidden :]  # ONNX's input and recurrent biases, summed
    base = outputs[0] or outputs[1] or node.name or "lstm"
    source = c.ir_name(node.input[0])
    out_shape = (steps, batch, hidden)
    computed = []  # each direction's output in the order it computes the steps
    for d in range(directions):
        backward = direction == "reverse" or d == 1
        name = f"{base}_backward" if d == 1 else base
        seq_in = _reversed(c, source, x.onnx_shape, f"{name}_input") if backward else source
        computed.append((_one_direction(c, seq_in, (w[d], r[d], bias[d]), hidden, name, x.onnx_shape,
                                        "backward" if d == 1 else ""), backward, name))
    if outputs[0] and c.uses[outputs[0]]:
        sequences = [_reversed(c, seq, out_shape, name) if backward else seq
                     for seq, backward, name in computed]
        y_shape = c.og.shapes[outputs[0]]
        if directions == 1:
            emit_part(c, ir.Reshape(), (sequences[0],), outputs[0], y_shape, "y")
        else:
            views = []
            for d, sequence in enumerate(sequences):
                view = c.intermediate(f"{base}_direction{d}", (steps, 1, batch, hidden))
                emit_part(c, ir.Reshape(), (sequence,), view, (steps, 1, batch, hidden), f"direction{d}")
                views.append(view)
            emit_part(c, ir.Concat(1), tuple(views), outputs[0], y_shape, "y")
    if outputs[1] and c.uses[outputs[1]]:
        h_shape = c.og.shapes[outputs[1]]
        if directions == 1:
            last = ir.Slice((steps - 1, 0, 0), out_shape, (1, 1, 1))
            emit_part(c, last, (computed[0][0],), outputs[1], h_shape, "last_step")
        else:
            parts = tuple(_step(c, seq, out_shape, steps - 1, f"{base}_last{d}")
                          for d, (seq, _, _) in enumerate(computed))
            emit_part(c, ir.Concat(0), parts, outputs[1], h_shape, "y_h")

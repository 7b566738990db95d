"""Float IR → int8 IR with the TFLite int8 scheme that CMSIS-NN implements:

- activations per tensor, asymmetric: scale = (max - min) / 255 over a range that includes 0,
  zero point = round(-128 - min / scale); a tensor that is always 0 gets the range [0, 1];
- weights per output channel, symmetric: scale = max|w| / 127, values in [-127, 127], zero point 0
  (a channel whose scale would underflow float32, max|w| < 1.5e-36, is all zeros: scale 1/127);
- bias int32 with scale s_in * s_w[c]; where the bias would not fit int32 at that scale, the
  channel's weight scale grows until it does (as TFLite's quantizer does);
- tensors that TFLite requires to share one quantization (pooling, reshape, transpose, slice, resize
  and pad outputs and their inputs; all inputs and the output of a concatenation, a maximum or a
  minimum) get the union of their ranges;
  softmax and logistic outputs are fixed at scale 1/256, zero point -128, tanh outputs at 1/128, 0.
- an LSTM as TensorFlow's converter quantizes it: weights per tensor, symmetric, int8; each gate's
  bias (int32, int64 in 16x8) at the input scale times its input weights' scale; the hidden state
  shares the output's quantization; the cell state is int16 at the power-of-two scale covering its
  calibrated range (mcudeploy.quantize.lstm_float.cell_scale).

16x8 layers (`int16_ops`, chosen by mcudeploy.quantize.precision, which also inserts the QUANTIZE
between int8 and int16 tensors) follow TFLite's 16x8 scheme: int16 activations symmetric, scale
max(|min|, |max|) / 32767, zero point 0; the same int8 weights; an int64 bias at s_in * s_w[c]; a
16x8 softmax output at 1/32768, 0.

A layer whose rescale factor a Q31 multiplier cannot hold (2**30 or more: TFLite saturates it),
or whose input scale is below what TFLite's softmax, logistic or tanh preparation accepts, is
refused naming its node and tensors: its output's calibrated range is too narrow for its inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from mcudeploy import ir
from mcudeploy.arith import INT32_MAX, round_half_away
from mcudeploy.arith.params import LOGISTIC_INPUT_INTEGER_BITS, SOFTMAX_DIFF_INTEGER_BITS
from mcudeploy.arith.params_s16 import is_s16
from mcudeploy.errors import UnsupportedError
from mcudeploy.quantize.lstm_float import cell_scale, cell_state_name

Range = tuple[float, float]
SOFTMAX_QUANT = ir.QuantParams((1.0 / 256.0,), (-128,))  # TFLite's for softmax and logistic outputs
TANH_QUANT = ir.QuantParams((1.0 / 128.0,), (0,))  # TFLite's for tanh outputs
SOFTMAX_QUANT_S16 = ir.QuantParams((1.0 / 32768.0,), (0,))  # TFLite's for int16 softmax outputs
_FIXED_QUANT = {"softmax": SOFTMAX_QUANT, "logistic": SOFTMAX_QUANT, "tanh": TANH_QUANT}
_SHARES_INPUT_QUANT = ("pool2d", "reshape", "pad", "transpose", "slice", "resize")
_WEIGHT_AXIS = {"conv2d": 0, "depthwise_conv2d": 3, "fully_connected": 0}
_Q31_LIMIT = 2.0**30  # quantize_multiplier saturates from here on (shift > 30)
_BIAS_TARGET = 2.0**30  # a bias that would not fit int32 is brought to about this magnitude


def int16_quant(low: float, high: float) -> ir.QuantParams:
    """Symmetric int16 parameters (zero point 0) for values in [low, high]."""
    peak = max(abs(float(low)), abs(float(high)))
    peak = 1.0 if peak == 0.0 else max(peak, 1e-8)
    return ir.QuantParams((float(np.float32(peak / 32767.0)),), (0,))


def activation_quant(low: float, high: float) -> ir.QuantParams:
    """Asymmetric int8 parameters for values in [low, high] (widened to include 0)."""
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    if low == high:  # always 0: any scale holds it exactly, and a sane one keeps rescales sane
        high = 1.0
    elif high - low < 1e-8:
        high = low + 1e-8
    scale = float(np.float32((high - low) / 255.0))
    zero = int(np.clip(round_half_away(-128.0 - low / scale), -128, 127))
    return ir.QuantParams((scale,), (zero,))


def quantize_weights(w: np.ndarray, axis: int,
                     least: np.ndarray | None = None) -> tuple[np.ndarray, tuple[float, ...]]:
    """Per-channel symmetric int8 weights and their scales, each at least `least[c]` if given (an
    all-zero channel, or one too small for a float32 scale, gets 1/127 and zeros)."""
    moved = np.moveaxis(w.astype(np.float64), axis, 0).reshape(w.shape[axis], -1)
    peak = np.abs(moved).max(axis=1)
    wanted = np.maximum(peak / 127.0, least if least is not None else 0.0)
    scales = np.where(wanted >= np.finfo(np.float32).tiny, wanted, 1.0 / 127.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(round_half_away(w / scales.astype(np.float64).reshape(shape)), -127, 127)
    q[np.broadcast_to((wanted < np.finfo(np.float32).tiny).reshape(shape), q.shape)] = 0
    return q.astype(np.int8), tuple(float(s) for s in scales)


def _bias_quant(bias: np.ndarray, x_scale: float,
                w_scales: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """int32 bias and its scales s_in * s_w[c] (float32, as TFLite), or None if a channel does not fit."""
    scales = np.float32(x_scale) * np.asarray(w_scales, dtype=np.float32)
    q = round_half_away(bias.astype(np.float64) / scales.astype(np.float64))
    if not (np.abs(q) <= INT32_MAX).all():
        return None
    return q.astype(np.int32), scales


def _layer_quant(w: np.ndarray, bias: np.ndarray, axis: int,
                 x_scale: float) -> tuple[np.ndarray, tuple[float, ...], np.ndarray, np.ndarray] | None:
    """Weights, weight scales, bias and bias scales of one layer: a bias too large for int32 at
    s_in * s_w[c] raises that channel's weight scale so that it fits (None if it still does not)."""
    data, scales = quantize_weights(w, axis)
    fitted = _bias_quant(bias, x_scale, scales)
    if fitted is None:
        data, scales = quantize_weights(w, axis, np.abs(bias.astype(np.float64)) / (x_scale * _BIAS_TARGET))
        fitted = _bias_quant(bias, x_scale, scales)
    return None if fitted is None else (data, scales, *fitted)


class _Groups:
    """Union-find over tensor names that must share one quantization."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, name: str) -> str:
        self.parent.setdefault(name, name)
        while self.parent[name] != name:
            self.parent[name] = self.parent[self.parent[name]]
            name = self.parent[name]
        return name

    def join(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def _shared_quant(graph: ir.Graph, ranges: dict[str, Range], dtypes: Mapping[str, str]
                  ) -> dict[str, ir.QuantParams]:
    groups = _Groups()
    fixed: dict[str, ir.QuantParams] = {}
    for op in graph.ops:
        clamp = op.kind == "relu" and (op.attrs.low, op.attrs.high) != (0.0, None)
        if op.kind in _SHARES_INPUT_QUANT or clamp:  # a clamp other than RELU keeps its input's
            groups.join(op.outputs[0], op.inputs[0])
        elif op.kind in ("concat", "extremum"):
            for name in op.inputs:
                groups.join(name, op.outputs[0])
        elif op.kind == "softmax" and dtypes.get(op.outputs[0]) == "int16":
            fixed[op.outputs[0]] = SOFTMAX_QUANT_S16
        elif op.kind in _FIXED_QUANT:
            fixed[op.outputs[0]] = _FIXED_QUANT[op.kind]
    union: dict[str, Range] = {}
    for name, (low, high) in ranges.items():
        root = groups.find(name)
        old = union.get(root, (low, high))
        union[root] = (min(old[0], low), max(old[1], high))
    fixed_roots = {groups.find(n): q for n, q in fixed.items()}
    quant = {}
    for t in graph.activations:
        root = groups.find(t.name)
        if root in fixed_roots:
            quant[t.name] = fixed_roots[root]
        elif dtypes.get(t.name) == "int16":
            quant[t.name] = int16_quant(*union[root])
        else:
            quant[t.name] = activation_quant(*union[root])
    return quant


def quantize_graph(graph: ir.Graph, ranges: dict[str, Range], where: str = "",
                   dtypes: Mapping[str, str] | None = None) -> ir.Graph:
    """The quantized graph for a float graph whose activations span `ranges`: int8, or int16 for
    the activations `dtypes` says so (their layers are 16x8); `where` (the model file) prefixes
    refusals."""
    dtypes = dtypes or {}
    quant = _shared_quant(graph, ranges, dtypes)
    tensors = dict(graph.tensors)
    for name, q in quant.items():
        tensors[name] = replace(tensors[name], dtype=dtypes.get(name, "int8"), quant=q)
    ops = list(graph.ops)
    for index, op in enumerate(graph.ops):
        if op.kind == "lstm":
            tensors.update(_lstm_layer(op, graph, tensors[op.inputs[0]], where))
            low, high = ranges[cell_state_name(op)]
            ops[index] = replace(op, attrs=replace(op.attrs, cell_scale=cell_scale(low, high)))
        elif op.kind in _WEIGHT_AXIS and tensors[op.inputs[0]].dtype == "int16":
            tensors.update(_layer_s16(op, graph, tensors[op.inputs[0]]))
        elif op.kind in ("add", "mul") and tensors[op.outputs[0]].dtype == "int16":
            for name in op.inputs:
                t = graph.tensor(name)
                if t.is_constant:
                    q = int16_quant(float(t.data.min()), float(t.data.max()))
                    data = np.clip(round_half_away(t.data / q.scale[0]), -32768, 32767)
                    tensors[name] = replace(t, dtype="int16", quant=q, data=data.astype(np.int16))
        elif op.kind in _WEIGHT_AXIS:
            x = tensors[op.inputs[0]]
            w, b = graph.tensor(op.inputs[1]), graph.tensor(op.inputs[2])
            axis = _WEIGHT_AXIS[op.kind]
            layer = _layer_quant(w.data, b.data, axis, float(x.scale))
            if layer is None:
                raise UnsupportedError(f"{where}: {op.origin}: the bias {b.name!r} does not fit int32 at "
                                       f"the scale of input {x.name!r} ({x.scale:g}) times any weight scale")
            data, scales, bias, bias_scales = layer
            tensors[w.name] = replace(w, dtype="int8", data=data,
                                      quant=ir.QuantParams(scales, (0,) * len(scales), axis))
            tensors[b.name] = replace(b, dtype="int32", data=bias, quant=ir.QuantParams(
                tuple(float(s) for s in bias_scales), (0,) * len(scales), 0))
        elif op.kind in ("add", "sub", "squared_difference", "mul", "prelu", "extremum"):
            for name in op.inputs:
                t = graph.tensor(name)
                if t.is_constant:
                    # an extremum's constant takes the quantization of its group (TFLite's rule);
                    # beyond the int8 range it clamps, which min and max then compute exactly
                    q = quant[op.outputs[0]] if op.kind == "extremum" else \
                        activation_quant(float(t.data.min()), float(t.data.max()))
                    data = np.clip(round_half_away(t.data / q.scale[0]) + q.zero_point[0], -128, 127)
                    tensors[name] = replace(t, dtype="int8", quant=q, data=data.astype(np.int8))
    quantized = replace(graph, tensors=tensors, ops=tuple(ops))
    _check_rescales(quantized, ranges, where)
    return quantized


def _layer_s16(op: ir.Op, graph: ir.Graph, x: ir.Tensor) -> dict[str, ir.Tensor]:
    """The int8 weights and int64 bias (at s_in * s_w[c], float32 as TFLite) of a 16x8 layer."""
    w, b = graph.tensor(op.inputs[1]), graph.tensor(op.inputs[2])
    axis = _WEIGHT_AXIS[op.kind]
    data, scales = quantize_weights(w.data, axis)
    bias_scales = np.float32(x.scale) * np.asarray(scales, dtype=np.float32)
    bias = round_half_away(b.data.astype(np.float64) / bias_scales.astype(np.float64)).astype(np.int64)
    weights = ir.QuantParams(scales, (0,) * len(scales), axis)
    return {w.name: replace(w, dtype="int8", data=data, quant=weights),
            b.name: replace(b, dtype="int64", data=bias, quant=ir.QuantParams(
                tuple(float(s) for s in bias_scales), (0,) * len(scales), 0))}


def _lstm_layer(op: ir.Op, graph: ir.Graph, x: ir.Tensor, where: str) -> dict[str, ir.Tensor]:
    """An LSTM's weights (int8, per tensor, symmetric) and biases (int32, or int64 for 16x8, at the
    input scale times the gate's input weight scale), as TFLite's converter quantizes them."""
    weights, biases = op.inputs[1:9], op.inputs[9:13]
    out: dict[str, ir.Tensor] = {}
    for name in weights:
        w = graph.tensor(name)
        data, (scale,) = quantize_weights(w.data.reshape(1, -1), 0)
        out[name] = replace(w, dtype="int8", data=data.reshape(w.shape), quant=ir.QuantParams((scale,), (0,)))
    for gate, name in enumerate(biases):
        b = graph.tensor(name)
        bias_scale = float(np.float32(x.scale) * np.float32(out[weights[gate]].quant.scale[0]))
        q = round_half_away(b.data.astype(np.float64) / bias_scale)
        if x.dtype == "int16":
            data = q.astype(np.int64)
        elif not (np.abs(q) <= INT32_MAX).all():
            raise UnsupportedError(f"{where}: {op.origin}: the bias {name!r} does not fit int32 at the scale "
                                   f"of input {x.name!r} ({x.scale:g}) times its weight scale")
        else:
            data = q.astype(np.int32)
        out[name] = replace(b, dtype=str(data.dtype), data=data, quant=ir.QuantParams((bias_scale,), (0,)))
    return out


def _rescales(op: ir.Op, graph: ir.Graph) -> list[tuple[float, str]]:
    """The real factors op's int8 kernel multiplies by (Q31 multipliers), as TFLite derives them,
    each with how it is made."""
    x, out = (float(graph.tensor(n).scale) for n in (op.inputs[0], op.outputs[0]))
    own = f"input scale {x:g} / output scale {out:g}"
    if op.kind in _WEIGHT_AXIS:
        w = graph.tensor(op.inputs[1])
        return [(x * s / out, f"input scale {x:g} x weight scale {s:g} ({w.name!r}) / output scale {out:g}")
                for s in w.quant.scale]
    if op.kind in ("add", "sub"):
        b = float(graph.tensor(op.inputs[1]).scale)
        return [(2.0 * max(x, b) / (2**20 * out), f"2 x input scale {max(x, b):g} / 2**20 / output scale "
                 f"{out:g}")]
    if op.kind == "mul":
        b = float(graph.tensor(op.inputs[1]).scale)
        return [(x * b / out, f"input scales {x:g} x {b:g} / output scale {out:g}")]
    if op.kind == "leaky_relu":
        return [(x / out, own), (x * abs(float(op.attrs.alpha)) / out, f"{own} x alpha {op.attrs.alpha:g}")]
    if op.kind == "hard_swish":
        return [(x / 128.0 / out, f"{own} / 128")]
    if op.kind in ("mean", "relu"):
        return [(x / out, own)]
    if op.kind == "squared_difference":
        b = float(graph.tensor(op.inputs[1]).scale)
        return [((2.0 * max(x, b)) ** 2 / (2**14 * out),
                 f"(2 x input scale {max(x, b):g})**2 / 2**14 / output scale {out:g}")]
    if op.kind == "rsqrt":
        return [(1.0 / (math.sqrt(x) * out), f"1 / sqrt(input scale {x:g}) / output scale {out:g}")]
    if op.kind == "prelu":
        a = float(graph.tensor(op.inputs[1]).scale)
        return [(x / out, own), (x * a / out, f"{own} x alpha scale {a:g}")]
    return []


def _input_scale_bounds(op: ir.Op) -> tuple[float, float]:
    """The input scales TFLite's preparation handles: softmax needs beta * s_in * 2**26 > 1;
    logistic and tanh shift s_in * 2**27 left by its binary exponent, which must lie in [0, 62]
    (else the input radius is undefined C)."""
    if op.kind == "softmax":
        return 1.0 / (float(op.attrs.beta) * 2.0 ** (31 - SOFTMAX_DIFF_INTEGER_BITS)), math.inf
    if op.kind in ("logistic", "tanh"):
        q4 = 2.0 ** (31 - LOGISTIC_INPUT_INTEGER_BITS)
        return 0.5 / q4, 2.0**62 / q4
    return 0.0, math.inf


def _check_rescales(graph: ir.Graph, ranges: dict[str, Range], where: str) -> None:
    """int8 layers (16x8 ones are checked by mcudeploy.support_s16)."""
    for op in graph.ops:
        if is_s16(op, graph):
            continue
        y = op.outputs[0]
        span = f"[{ranges[y][0]:g}, {ranges[y][1]:g}]" if y in ranges else "fixed"
        for real, made in _rescales(op, graph):
            if not math.isfinite(real) or abs(real) >= _Q31_LIMIT:
                raise UnsupportedError(
                    f"{where}: {op.origin}: output {y!r} (calibrated range {span}) needs a rescale "
                    f"factor of {real:g} = {made}, beyond what a Q31 multiplier holds (< 2**30)")
        x = graph.tensor(op.inputs[0])
        least, most = _input_scale_bounds(op)
        if x.quant is not None and not least < float(x.scale) < most:
            lo, hi = ranges.get(x.name, (0.0, 0.0))
            raise UnsupportedError(
                f"{where}: {op.origin}: input {x.name!r} has scale {x.scale:g} (calibrated range "
                f"[{lo:g}, {hi:g}]); TFLite's {op.kind} needs a scale between {least:g} and {most:g}")

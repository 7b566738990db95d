"""Float IR → int8 IR with the TFLite int8 scheme that CMSIS-NN implements:

- activations per tensor, asymmetric: scale = (max - min) / 255 over a range that includes 0,
  zero point = round(-128 - min / scale);
- weights per output channel, symmetric: scale = max|w| / 127, values in [-127, 127], zero point 0;
- bias int32 with scale s_in * s_w[c];
- tensors that TFLite requires to share one quantization (pooling, reshape and pad outputs and
  their inputs; all inputs and the output of a concatenation, a maximum or a minimum) get the
  union of their ranges;
  softmax and logistic outputs are fixed at scale 1/256, zero point -128, tanh outputs at 1/128, 0.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mcudeploy import ir
from mcudeploy.quantize.arith import round_half_away

Range = tuple[float, float]
SOFTMAX_QUANT = ir.QuantParams((1.0 / 256.0,), (-128,))  # TFLite's for softmax and logistic outputs
TANH_QUANT = ir.QuantParams((1.0 / 128.0,), (0,))  # TFLite's for tanh outputs
_FIXED_QUANT = {"softmax": SOFTMAX_QUANT, "logistic": SOFTMAX_QUANT, "tanh": TANH_QUANT}
_SHARES_INPUT_QUANT = ("pool2d", "reshape", "pad")
_WEIGHT_AXIS = {"conv2d": 0, "depthwise_conv2d": 3, "fully_connected": 0}


def activation_quant(low: float, high: float) -> ir.QuantParams:
    """Asymmetric int8 parameters for values in [low, high] (widened to include 0)."""
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    if high - low < 1e-8:
        high = low + 1e-8
    scale = float(np.float32((high - low) / 255.0))
    zero = int(np.clip(round_half_away(-128.0 - low / scale), -128, 127))
    return ir.QuantParams((scale,), (zero,))


def quantize_weights(w: np.ndarray, axis: int) -> tuple[np.ndarray, tuple[float, ...]]:
    """Per-channel symmetric int8 weights and their scales (an all-zero channel gets 1/127)."""
    moved = np.moveaxis(w.astype(np.float64), axis, 0).reshape(w.shape[axis], -1)
    peak = np.abs(moved).max(axis=1)
    scales = np.where(peak > 0, peak / 127.0, 1.0 / 127.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(round_half_away(w / scales.astype(np.float64).reshape(shape)), -127, 127)
    return q.astype(np.int8), tuple(float(s) for s in scales)


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


def _shared_quant(graph: ir.Graph, ranges: dict[str, Range]) -> dict[str, ir.QuantParams]:
    groups = _Groups()
    fixed: dict[str, ir.QuantParams] = {}
    for op in graph.ops:
        if op.kind in _SHARES_INPUT_QUANT:
            groups.join(op.outputs[0], op.inputs[0])
        elif op.kind in ("concat", "extremum"):
            for name in op.inputs:
                groups.join(name, op.outputs[0])
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
        else:
            quant[t.name] = activation_quant(*union[root])
    return quant


def quantize_graph(graph: ir.Graph, ranges: dict[str, Range]) -> ir.Graph:
    """The int8 graph for a float graph whose activations span `ranges`."""
    quant = _shared_quant(graph, ranges)
    tensors = dict(graph.tensors)
    for name, q in quant.items():
        tensors[name] = replace(tensors[name], dtype="int8", quant=q)
    for op in graph.ops:
        if op.kind in _WEIGHT_AXIS:
            x = tensors[op.inputs[0]]
            w = graph.tensor(op.inputs[1])
            data, scales = quantize_weights(w.data, _WEIGHT_AXIS[op.kind])
            tensors[w.name] = replace(w, dtype="int8", data=data,
                                      quant=ir.QuantParams(scales, (0,) * len(scales), _WEIGHT_AXIS[op.kind]))
            b = graph.tensor(op.inputs[2])
            bias_scales = np.float32(x.scale) * np.asarray(scales, dtype=np.float32)
            q = round_half_away(b.data.astype(np.float64) / bias_scales.astype(np.float64))
            tensors[b.name] = replace(
                b, dtype="int32", data=np.clip(q, -(2**31), 2**31 - 1).astype(np.int32),
                quant=ir.QuantParams(tuple(float(s) for s in bias_scales), (0,) * len(scales), 0),
            )
        elif op.kind in ("add", "mul"):
            for name in op.inputs:
                t = graph.tensor(name)
                if t.is_constant:
                    q = activation_quant(float(t.data.min()), float(t.data.max()))
                    data = np.clip(round_half_away(t.data / q.scale[0]) + q.zero_point[0], -128, 127)
                    tensors[name] = replace(t, dtype="int8", quant=q, data=data.astype(np.int8))
    return replace(graph, tensors=tensors)

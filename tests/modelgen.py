"""Builders of small random int8 graphs for tests: one call per layer kind, quantization random.

Graphs are built in the IR, written to TFLite with mcudeploy's writer and read back, so that TFLM
(the oracle) and mcudeploy run exactly the same file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from mcudeploy import ir
from mcudeploy.export_tflite import graph_to_tflite
from mcudeploy.frontends.padding import output_size, same_padding
from mcudeploy.frontends.tflite import parse_tflite


@dataclass
class GraphBuilder:
    """Appends layers to a graph under construction; each layer gets random weights and scales."""

    seed: int = 0
    tensors: dict[str, ir.Tensor] = field(default_factory=dict)
    ops: list[ir.Op] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def _act_quant(self) -> ir.QuantParams:
        return ir.QuantParams((float(self.rng.uniform(0.01, 0.1)),), (int(self.rng.integers(-20, 20)),))

    def _add(self, name: str, shape: tuple[int, ...], dtype: str = "int8",
             quant: ir.QuantParams | None = None, data: np.ndarray | None = None) -> str:
        self.tensors[name] = ir.Tensor(name, tuple(shape), dtype, quant, data)
        return name

    def input(self, shape: tuple[int, ...]) -> str:
        name = "input" if not self.inputs else f"input{len(self.inputs)}"
        self.inputs.append(self._add(name, shape, quant=self._act_quant()))
        return name

    def _op(self, attrs: ir.Attrs, inputs: tuple[str, ...], out_shape: tuple[int, ...],
            out_quant: ir.QuantParams | None = None) -> str:
        index = len(self.ops)
        out = self._add(f"t{index}_{attrs.KIND}", out_shape, quant=out_quant or self._act_quant())
        self.ops.append(ir.Op(f"op{index}_{attrs.KIND}", attrs, inputs, (out,), f"op {index}"))
        return out

    def _weights(self, shape: tuple[int, ...], channels: int, axis: int, name: str) -> str:
        w = self.rng.integers(-127, 128, size=shape).astype(np.int8)
        scales = tuple(float(s) for s in self.rng.uniform(0.002, 0.02, size=channels))
        return self._add(name, shape, quant=ir.QuantParams(scales, (0,) * channels, axis), data=w)

    def _bias(self, x: str, w: str, channels: int, name: str) -> str:
        sx = self.tensors[x].scale
        scales = tuple(sx * s for s in self.tensors[w].quant.scale)
        if len(scales) == 1:
            scales = scales * channels
        b = self.rng.integers(-3000, 3000, size=channels).astype(np.int32)
        return self._add(name, (channels,), "int32", ir.QuantParams(scales, (0,) * channels, 0), b)

    def _pad(self, x: str, kernel, stride, dilation, padding: str | ir.Padding) -> ir.Padding:
        if isinstance(padding, ir.Padding):
            return padding
        if padding == "valid":
            return ir.Padding()
        return same_padding(self.tensors[x].shape[1:3], kernel, stride, dilation)

    def _out_hw(self, x: str, kernel, stride, dilation, pad: ir.Padding) -> tuple[int, int]:
        _, h, w, _ = self.tensors[x].shape
        return (output_size(h, kernel[0], stride[0], dilation[0], pad.top, pad.bottom),
                output_size(w, kernel[1], stride[1], dilation[1], pad.left, pad.right))

    def conv(self, x: str, c_out: int, kernel=(3, 3), stride=(1, 1), dilation=(1, 1),
             padding: str | ir.Padding = "same", groups: int = 1,
             activation: ir.Clip = ir.NO_CLIP) -> str:
        n, _, _, c_in = self.tensors[x].shape
        k = len(self.ops)
        w = self._weights((c_out, *kernel, c_in // groups), c_out, 0, f"w{k}")
        b = self._bias(x, w, c_out, f"b{k}")
        pad = self._pad(x, kernel, stride, dilation, padding)
        out = (n, *self._out_hw(x, kernel, stride, dilation, pad), c_out)
        return self._op(ir.Conv2D(stride, dilation, pad, activation), (x, w, b), out)

    def depthwise(self, x: str, multiplier: int = 1, kernel=(3, 3), stride=(1, 1),
                  dilation=(1, 1), padding: str | ir.Padding = "same",
                  activation: ir.Clip = ir.NO_CLIP) -> str:
        n, _, _, c_in = self.tensors[x].shape
        c_out, k = c_in * multiplier, len(self.ops)
        w = self._weights((1, *kernel, c_out), c_out, 3, f"w{k}")
        b = self._bias(x, w, c_out, f"b{k}")
        pad = self._pad(x, kernel, stride, dilation, padding)
        out = (n, *self._out_hw(x, kernel, stride, dilation, pad), c_out)
        attrs = ir.DepthwiseConv2D(stride, dilation, pad, multiplier, activation)
        return self._op(attrs, (x, w, b), out)

    def fully_connected(self, x: str, c_out: int, activation: ir.Clip = ir.NO_CLIP,
                        per_channel: bool = False) -> str:
        shape = self.tensors[x].shape
        depth, k = shape[-1], len(self.ops)
        w = self._weights((c_out, depth), c_out if per_channel else 1, 0, f"w{k}")
        b = self._bias(x, w, c_out, f"b{k}")
        rows = int(np.prod(shape[:-1]))
        return self._op(ir.FullyConnected(activation), (x, w, b), (rows, c_out))

    def pool(self, x: str, mode: str, window=(2, 2), stride=(2, 2),
             padding: str | ir.Padding = "valid", activation: ir.Clip = ir.NO_CLIP) -> str:
        n, _, _, c = self.tensors[x].shape
        pad = self._pad(x, window, stride, (1, 1), padding)
        out = (n, *self._out_hw(x, window, stride, (1, 1), pad), c)
        return self._op(ir.Pool2D(mode, window, stride, pad, activation), (x,), out,
                        self.tensors[x].quant)

    def add(self, a: str, b: str, activation: ir.Clip = ir.NO_CLIP) -> str:
        return self._op(ir.Add(activation), (a, b), self.tensors[a].shape)

    def mul(self, a: str, b: str, activation: ir.Clip = ir.NO_CLIP) -> str:
        shape = np.broadcast_shapes(self.tensors[a].shape, self.tensors[b].shape)
        return self._op(ir.Mul(activation), (a, b), tuple(shape))

    def sub(self, a: str, b: str, activation: ir.Clip = ir.NO_CLIP) -> str:
        """SUB, a minus b, with broadcasting."""
        shape = np.broadcast_shapes(self.tensors[a].shape, self.tensors[b].shape)
        return self._op(ir.Sub(activation), (a, b), tuple(shape))

    def squared_difference(self, a: str, b: str) -> str:
        """SQUARED_DIFFERENCE, (a - b)^2 with broadcasting."""
        shape = np.broadcast_shapes(self.tensors[a].shape, self.tensors[b].shape)
        return self._op(ir.SquaredDifference(), (a, b), tuple(shape))

    def rsqrt(self, x: str) -> str:
        """RSQRT of an input (or constant), which gets zero point -128: every value is then real 0
        or more (TFLM refuses negative ones)."""
        assert not any(x in op.outputs for op in self.ops), "x must not be computed"
        self.tensors[x] = replace(self.tensors[x], quant=ir.QuantParams((self.tensors[x].scale,), (-128,)))
        quant = ir.QuantParams((float(self.rng.uniform(0.01, 0.1)),), (int(self.rng.integers(-128, -100)),))
        return self._op(ir.Rsqrt(), (x,), self.tensors[x].shape, quant)

    def add_b(self, a: str, b: str, activation: ir.Clip = ir.NO_CLIP) -> str:
        """ADD with broadcasting."""
        shape = np.broadcast_shapes(self.tensors[a].shape, self.tensors[b].shape)
        return self._op(ir.Add(activation), (a, b), tuple(shape))

    def constant(self, shape: tuple[int, ...]) -> str:
        """A constant int8 operand with random per-tensor quantization."""
        data = self.rng.integers(-128, 128, size=shape).astype(np.int8)
        return self._add(f"c{len(self.tensors)}", shape, quant=self._act_quant(), data=data)

    def concat(self, xs: list[str], axis: int) -> str:
        quant = self.tensors[xs[0]].quant
        for x in xs:  # TFLite int8 concatenation needs one quantization: requantize others
            if self.tensors[x].quant != quant:
                raise ValueError("concat inputs must share quantization; build them so")
        shape = list(self.tensors[xs[0]].shape)
        shape[axis] = sum(self.tensors[x].shape[axis] for x in xs)
        return self._op(ir.Concat(axis), tuple(xs), tuple(shape), quant)

    def pad(self, x: str, pads: tuple[tuple[int, int], ...]) -> str:
        shape = tuple(d + a + b for d, (a, b) in zip(self.tensors[x].shape, pads, strict=True))
        return self._op(ir.Pad(pads), (x,), shape, self.tensors[x].quant)

    def pool_same_quant(self, x: str) -> str:
        """A 1x1 max pool: a new tensor with x's quantization (to build concat inputs)."""
        return self.pool(x, "max", (1, 1), (1, 1))

    def slice(self, x: str, begin: tuple[int, ...], end: tuple[int, ...],
              strides: tuple[int, ...] | None = None) -> str:
        strides = strides or (1,) * len(begin)
        shape = tuple(len(range(b, e, s)) for b, e, s in zip(begin, end, strides, strict=True))
        return self._op(ir.Slice(tuple(begin), tuple(end), tuple(strides)), (x,), shape,
                        self.tensors[x].quant)

    def logistic(self, x: str) -> str:
        quant = ir.QuantParams((1.0 / 256.0,), (-128,))
        return self._op(ir.Logistic(), (x,), self.tensors[x].shape, quant)

    def extremum(self, mode: str, a: str, b: str) -> str:
        """MAXIMUM/MINIMUM: `b` (an input or a constant) takes `a`'s quantization; the output
        broadcasts both."""
        assert not any(b in op.outputs for op in self.ops), "b must not be computed"
        self.tensors[b] = replace(self.tensors[b], quant=self.tensors[a].quant)
        shape = tuple(np.broadcast_shapes(self.tensors[a].shape, self.tensors[b].shape))
        return self._op(ir.Extremum(mode), (a, b), shape, self.tensors[a].quant)

    def tanh(self, x: str) -> str:
        quant = ir.QuantParams((1.0 / 128.0,), (0,))
        return self._op(ir.Tanh(), (x,), self.tensors[x].shape, quant)

    def hard_swish(self, x: str, scale: float, zero_point: int) -> str:
        quant = ir.QuantParams((scale,), (zero_point,))
        return self._op(ir.HardSwish(), (x,), self.tensors[x].shape, quant)

    def leaky_relu(self, x: str, alpha: float, scale: float | None = None, zero_point: int = -20) -> str:
        """Leaky ReLU into a fresh quantization (the input's scale unless `scale` is given)."""
        quant = ir.QuantParams((scale or self.tensors[x].scale,), (zero_point,))
        return self._op(ir.LeakyRelu(alpha), (x,), self.tensors[x].shape, quant)

    def quantize(self, x: str, dtype: str = "uint8") -> str:
        index = len(self.ops)
        name = self._add(f"t{index}_quantize", self.tensors[x].shape, dtype,
                         ir.QuantParams((float(self.rng.uniform(0.005, 0.05)),),
                                        (int(self.rng.integers(100, 156)) if dtype == "uint8" else 3,)))
        self.ops.append(ir.Op(f"op{index}_quantize", ir.Quantize(), (x,), (name,), f"op {index}"))
        return name

    def mean(self, x: str, keep_dims: bool = False) -> str:
        n, _, _, c = self.tensors[x].shape
        return self._op(ir.Mean(keep_dims), (x,), (n, 1, 1, c) if keep_dims else (n, c))

    def float_input(self, shape: tuple[int, ...]) -> str:
        """A float32 model input with a QUANTIZE to int8 after it (TFLite's float I/O wrapper)."""
        name = f"input{len(self.inputs)}" if self.inputs else "input"
        self.inputs.append(self._add(name, shape, "float32"))
        index = len(self.ops)
        out = self._add(f"t{index}_quantize", shape, quant=self._act_quant())
        self.ops.append(ir.Op(f"op{index}_quantize", ir.Quantize(), (name,), (out,), f"op {index}"))
        return out

    def dequantize(self, x: str) -> str:
        index = len(self.ops)
        out = self._add(f"t{index}_dequantize", self.tensors[x].shape, "float32")
        self.ops.append(ir.Op(f"op{index}_dequantize", ir.Quantize(), (x,), (out,), f"op {index}"))
        return out

    def softmax(self, x: str, beta: float = 1.0) -> str:
        quant = ir.QuantParams((1.0 / 256.0,), (-128,))
        return self._op(ir.Softmax(beta), (x,), self.tensors[x].shape, quant)

    def reshape(self, x: str, shape: tuple[int, ...]) -> str:
        return self._op(ir.Reshape(), (x,), shape, self.tensors[x].quant)

    def build(self, outputs: list[str], name: str = "test") -> tuple[ir.Graph, bytes]:
        """The graph as written to TFLite and read back, and the TFLite bytes."""
        graph = ir.Graph(name, dict(self.tensors), tuple(self.ops), tuple(self.inputs), tuple(outputs))
        data = graph_to_tflite(graph)
        return parse_tflite(data, name), data

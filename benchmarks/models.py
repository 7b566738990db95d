"""The MLPerf Tiny architectures as int8 TFLite files, built reproducibly from a seed.

No TensorFlow: each network is built in mcudeploy's IR and written with mcudeploy.export_tflite, so
that mcudeploy and TFLM read the same file. The layer shapes are those of the MLPerf Tiny reference
models (v1.0); the weights are random and seeded, so accuracy means nothing here, but every figure
the benchmark reports (MACs, instructions, arena, flash) depends only on the shapes.

Quantization is what the TFLite converter produces for such nets: per-channel symmetric int8
weights, int32 biases at input scale times weight scale, per-tensor activations. The scales are
"plausible": weights are drawn He-style (real std sqrt(2 / fan_in)), and each activation's scale
covers four standard deviations of its expected real value, so values use the int8 range without
saturating everywhere. ReLU outputs take zero point -128, as the converter gives them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mcudeploy import ir
from mcudeploy.export_tflite import graph_to_tflite
from mcudeploy.frontends.padding import output_size, same_padding

RELU, RELU6 = ir.Clip(0.0, None), ir.Clip(0.0, 6.0)
_WEIGHT_STD = 127 / math.sqrt(3)  # std of integers uniform in [-127, 127]


@dataclass
class NetBuilder:
    """Appends int8 layers to a graph, keeping an estimate of each activation's real std."""

    name: str
    seed: int = 0
    tensors: dict[str, ir.Tensor] = field(default_factory=dict)
    ops: list[ir.Op] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    std: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def _tensor(self, name: str, shape: tuple[int, ...], quant: ir.QuantParams | None,
                dtype: str = "int8", data: np.ndarray | None = None) -> str:
        self.tensors[name] = ir.Tensor(name, tuple(shape), dtype, quant, data)
        return name

    @staticmethod
    def _act_quant(std: float, activation: ir.Clip) -> ir.QuantParams:
        if activation.low == 0.0:
            top = min(4 * std, activation.high or math.inf)
            return ir.QuantParams((top / 255,), (-128,))
        return ir.QuantParams((8 * std / 255,), (0,))

    def input(self, shape: tuple[int, ...], name: str = "input") -> str:
        self.inputs.append(self._tensor(name, shape, ir.QuantParams((1 / 64,), (0,))))
        self.std[name] = 1.0
        return name

    def _op(self, attrs: ir.Attrs, inputs: tuple[str, ...], shape: tuple[int, ...],
            quant: ir.QuantParams, std: float) -> str:
        index = len(self.ops)
        out = self._tensor(f"{self.name}/{index}_{attrs.KIND}", shape, quant)
        self.std[out] = std
        self.ops.append(ir.Op(f"{index}_{attrs.KIND}", attrs, inputs, (out,), f"layer {index}"))
        return out

    def _weights(self, x: str, shape: tuple[int, ...], axis: int, fan_in: int) -> tuple[str, str]:
        """He-style int8 weights, per-channel scales along `axis`, and a small int32 bias."""
        channels = shape[axis]
        k = len(self.ops)
        scales = math.sqrt(2 / fan_in) / _WEIGHT_STD * self.rng.uniform(0.8, 1.25, channels)
        w = self._tensor(f"{self.name}/{k}_weights", shape, ir.QuantParams(
            tuple(float(s) for s in scales), (0,) * channels, axis),
            data=self.rng.integers(-127, 128, size=shape).astype(np.int8))
        bias_scales = self.tensors[x].scale * scales
        bias = self.rng.normal(0.0, 0.1 * self.std[x], channels) / bias_scales
        b = self._tensor(f"{self.name}/{k}_bias", (channels,), ir.QuantParams(
            tuple(float(s) for s in bias_scales), (0,) * channels, 0), "int32",
            np.round(bias).astype(np.int32))
        return w, b

    def _window(self, x: str, kernel, stride, padding: str) -> tuple[ir.Padding, int, int]:
        _, h, w, _ = self.tensors[x].shape
        pad = same_padding((h, w), kernel, stride, (1, 1)) if padding == "same" else ir.Padding()
        return (pad, output_size(h, kernel[0], stride[0], 1, pad.top, pad.bottom),
                output_size(w, kernel[1], stride[1], 1, pad.left, pad.right))

    def _out_std(self, x: str, activation: ir.Clip) -> float:
        # He init keeps the pre-activation std near sqrt(2) x the input's; ReLU halves the power.
        std = math.sqrt(2) * self.std[x]
        return std / math.sqrt(2) if activation.low == 0.0 else std

    def conv(self, x: str, c_out: int, kernel=(3, 3), stride=(1, 1), padding: str = "same",
             activation: ir.Clip = RELU) -> str:
        n, _, _, c_in = self.tensors[x].shape
        w, b = self._weights(x, (c_out, *kernel, c_in), 0, kernel[0] * kernel[1] * c_in)
        pad, oh, ow = self._window(x, kernel, stride, padding)
        std = self._out_std(x, activation)
        return self._op(ir.Conv2D(tuple(stride), (1, 1), pad, activation), (x, w, b),
                        (n, oh, ow, c_out), self._act_quant(std, activation), std)

    def depthwise(self, x: str, kernel=(3, 3), stride=(1, 1), padding: str = "same",
                  activation: ir.Clip = RELU) -> str:
        n, _, _, c = self.tensors[x].shape
        w, b = self._weights(x, (1, *kernel, c), 3, kernel[0] * kernel[1])
        pad, oh, ow = self._window(x, kernel, stride, padding)
        std = self._out_std(x, activation)
        attrs = ir.DepthwiseConv2D(tuple(stride), (1, 1), pad, 1, activation)
        return self._op(attrs, (x, w, b), (n, oh, ow, c), self._act_quant(std, activation), std)

    def dense(self, x: str, c_out: int, activation: ir.Clip = RELU) -> str:
        shape = self.tensors[x].shape
        depth = shape[-1]
        w, b = self._weights(x, (c_out, depth), 0, depth)
        std = self._out_std(x, activation)
        rows = int(np.prod(shape[:-1]))
        return self._op(ir.FullyConnected(activation), (x, w, b), (rows, c_out),
                        self._act_quant(std, activation), std)

    def avgpool(self, x: str, window=None) -> str:
        """Average pooling (the whole map by default); the output keeps the input's quantization."""
        n, h, w, c = self.tensors[x].shape
        window = tuple(window or (h, w))
        pad, oh, ow = self._window(x, window, window, "valid")
        attrs = ir.Pool2D("avg", window, window, pad, ir.NO_CLIP)
        return self._op(attrs, (x,), (n, oh, ow, c), self.tensors[x].quant, self.std[x])

    def add(self, a: str, b: str, activation: ir.Clip = RELU) -> str:
        std = math.hypot(self.std[a], self.std[b])
        std = std / math.sqrt(2) if activation.low == 0.0 else std
        return self._op(ir.Add(activation), (a, b), self.tensors[a].shape,
                        self._act_quant(std, activation), std)

    def reshape(self, x: str, shape: tuple[int, ...]) -> str:
        return self._op(ir.Reshape(), (x,), shape, self.tensors[x].quant, self.std[x])

    def softmax(self, x: str) -> str:
        return self._op(ir.Softmax(1.0), (x,), self.tensors[x].shape,
                        ir.QuantParams((1 / 256,), (-128,)), 0.1)

    def graph(self, outputs: list[str]) -> ir.Graph:
        return ir.Graph(self.name, dict(self.tensors), tuple(self.ops), tuple(self.inputs),
                        tuple(outputs))


def ds_cnn(seed: int = 0) -> ir.Graph:
    """Keyword spotting, DS-CNN (small): 49x10 MFCC in, 12 classes out."""
    b = NetBuilder("ds_cnn_kws", seed)
    x = b.conv(b.input((1, 49, 10, 1)), 64, kernel=(10, 4), stride=(2, 2))
    for _ in range(4):
        x = b.conv(b.depthwise(x), 64, kernel=(1, 1))
    x = b.reshape(b.avgpool(x), (1, 64))
    return b.graph([b.softmax(b.dense(x, 12, ir.NO_CLIP))])


def mobilenet_v1_025(seed: int = 0) -> ir.Graph:
    """Visual wake words, MobileNetV1 with width 0.25: 96x96 RGB in, 2 classes out."""
    b = NetBuilder("mobilenet_v1_025_vww", seed)
    x = b.conv(b.input((1, 96, 96, 3)), 8, stride=(2, 2), activation=RELU6)
    blocks = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1), (128, 1),
              (128, 1), (128, 1), (256, 2), (256, 1)]
    for c_out, stride in blocks:
        x = b.depthwise(x, stride=(stride, stride), activation=RELU6)
        x = b.conv(x, c_out, kernel=(1, 1), activation=RELU6)
    x = b.reshape(b.avgpool(x), (1, 256))
    return b.graph([b.softmax(b.dense(x, 2, ir.NO_CLIP))])


def resnet8(seed: int = 0) -> ir.Graph:
    """Image classification, ResNet-8: 32x32 RGB in (CIFAR-10), 10 classes out."""
    b = NetBuilder("resnet8_cifar10", seed)
    x = b.conv(b.input((1, 32, 32, 3)), 16)
    for c_out, stride in ((16, 1), (32, 2), (64, 2)):
        y = b.conv(x, c_out, stride=(stride, stride))
        y = b.conv(y, c_out, activation=ir.NO_CLIP)
        if stride != 1:
            x = b.conv(x, c_out, kernel=(1, 1), stride=(stride, stride), activation=ir.NO_CLIP)
        x = b.add(x, y)
    x = b.reshape(b.avgpool(x), (1, 64))
    return b.graph([b.softmax(b.dense(x, 10, ir.NO_CLIP))])


def fc_autoencoder(seed: int = 0) -> ir.Graph:
    """Anomaly detection, the FC autoencoder: 640 in, 4 x 128, 8 (bottleneck), 4 x 128, 640 out."""
    b = NetBuilder("fc_autoencoder_ad", seed)
    x = b.input((1, 640))
    for width in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        x = b.dense(x, width)
    return b.graph([b.dense(x, 640, ir.NO_CLIP)])


MLPERF_TINY: dict[str, Callable[[int], ir.Graph]] = {
    "ds_cnn_kws": ds_cnn,
    "mobilenet_v1_025_vww": mobilenet_v1_025,
    "resnet8_cifar10": resnet8,
    "fc_autoencoder_ad": fc_autoencoder,
}


def mlperf_tiny_tflite(name: str, seed: int = 0) -> bytes:
    """The int8 TFLite file of one MLPerf Tiny architecture, the same bytes for the same seed."""
    return graph_to_tflite(MLPERF_TINY[name](seed))

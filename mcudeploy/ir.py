"""The intermediate representation: tensors, operators and the graph, as frozen dataclasses.

Layouts are fixed here and only here, for every frontend:
- activations NHWC (a 1-D convolution is a 2-D one with H = 1), batch first;
- convolution filters OHWI `[C_out, KH, KW, C_in / groups]`;
- depthwise filters `[1, KH, KW, C_out]` with `C_out = C_in * depth_multiplier`, output channel
  `o` reading input channel `o // depth_multiplier`;
- fully connected filters `[C_out, K]`.
These are the TFLite and CMSIS-NN layouts, so lowering never transposes weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization: real = scale * (q - zero_point), per tensor or per `axis` channel."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int | None = None

    @property
    def per_channel(self) -> bool:
        return self.axis is not None and len(self.scale) > 1


@dataclass(frozen=True, eq=False)
class Tensor:
    """A tensor of the graph; `data` is set for constants (weights, biases, shapes)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: QuantParams | None = None
    data: np.ndarray | None = field(default=None, repr=False)

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize

    @property
    def scale(self) -> float:
        """The per-tensor scale (activations)."""
        assert self.quant is not None and len(self.quant.scale) == 1, self.name
        return self.quant.scale[0]

    @property
    def zero_point(self) -> int:
        """The per-tensor zero point (activations)."""
        assert self.quant is not None and len(self.quant.zero_point) >= 1, self.name
        return self.quant.zero_point[0]


@dataclass(frozen=True)
class Clip:
    """A fused activation as a real-valued clamp: ReLU is Clip(0, None), ReLU6 is Clip(0, 6)."""

    low: float | None = None
    high: float | None = None


NO_CLIP = Clip()


@dataclass(frozen=True)
class Padding:
    """Explicit zero padding in elements: rows above/below, columns left/right."""

    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0


@dataclass(frozen=True)
class Conv2D:
    """Convolution, grouped when the filter has fewer input channels than the input."""

    KIND: ClassVar[str] = "conv2d"
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: Padding
    activation: Clip


@dataclass(frozen=True)
class DepthwiseConv2D:
    """Depthwise convolution with a channel multiplier."""

    KIND: ClassVar[str] = "depthwise_conv2d"
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: Padding
    depth_multiplier: int
    activation: Clip


@dataclass(frozen=True)
class FullyConnected:
    """Fully connected: each of the N input rows times the transposed `[C_out, K]` filter."""

    KIND: ClassVar[str] = "fully_connected"
    activation: Clip


@dataclass(frozen=True)
class Pool2D:
    """Average or max pooling over a window; the output keeps the input's quantization."""

    KIND: ClassVar[str] = "pool2d"
    mode: str  # "avg" | "max"
    window: tuple[int, int]
    stride: tuple[int, int]
    padding: Padding
    activation: Clip


@dataclass(frozen=True)
class Add:
    """Element-wise addition, with numpy/TFLite broadcasting."""

    KIND: ClassVar[str] = "add"
    activation: Clip


@dataclass(frozen=True)
class Sub:
    """Element-wise subtraction, first input minus second, with numpy/TFLite broadcasting."""

    KIND: ClassVar[str] = "sub"
    activation: Clip


@dataclass(frozen=True)
class SquaredDifference:
    """(a - b)^2 element-wise, with numpy/TFLite broadcasting (TFLite SQUARED_DIFFERENCE; Keras'
    LayerNormalization computes its variance so)."""

    KIND: ClassVar[str] = "squared_difference"


@dataclass(frozen=True)
class Mul:
    """Element-wise multiplication, with numpy/TFLite broadcasting."""

    KIND: ClassVar[str] = "mul"
    activation: Clip


@dataclass(frozen=True)
class Concat:
    """Concatenation along `axis` of tensors sharing one quantization."""

    KIND: ClassVar[str] = "concat"
    axis: int


@dataclass(frozen=True)
class Pad:
    """Constant padding with real zero: (before, after) elements for every axis."""

    KIND: ClassVar[str] = "pad"
    pads: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Slice:
    """A strided slice: elements begin[i], begin[i] + strides[i], ... below end[i] on each axis."""

    KIND: ClassVar[str] = "slice"
    begin: tuple[int, ...]
    end: tuple[int, ...]
    strides: tuple[int, ...]


@dataclass(frozen=True)
class Mean:
    """The mean over the spatial axes 1 and 2 of an NHWC tensor, requantized (TFLite MEAN)."""

    KIND: ClassVar[str] = "mean"
    keep_dims: bool


@dataclass(frozen=True)
class Logistic:
    """The sigmoid, TFLite int8 (output scale 1/256, zero point -128)."""

    KIND: ClassVar[str] = "logistic"


@dataclass(frozen=True)
class Rsqrt:
    """1 / sqrt(x), TFLite int8 RSQRT (gemmlowp's fixed-point inverse square root, requantized)."""

    KIND: ClassVar[str] = "rsqrt"


@dataclass(frozen=True)
class Extremum:
    """Element-wise maximum or minimum of two tensors of one quantization, with broadcasting."""

    KIND: ClassVar[str] = "extremum"
    mode: str  # "max" or "min"


@dataclass(frozen=True)
class Tanh:
    """The hyperbolic tangent, TFLite int8 (output scale 1/128, zero point 0)."""

    KIND: ClassVar[str] = "tanh"


@dataclass(frozen=True)
class HardSwish:
    """x * relu6(x + 3) / 6, TFLite int8 (int16 fixed-point arithmetic, requantized)."""

    KIND: ClassVar[str] = "hard_swish"


@dataclass(frozen=True)
class LeakyRelu:
    """x for x >= 0, alpha * x below, requantized to the output's scale and zero point."""

    KIND: ClassVar[str] = "leaky_relu"
    alpha: float


@dataclass(frozen=True)
class Relu:
    """A standalone clamp to [low, high] (None: unbounded): TFLite RELU, requantized to the
    output's scale and zero point, or for other bounds a clamp in the input's quantization."""

    KIND: ClassVar[str] = "relu"
    low: float | None
    high: float | None


@dataclass(frozen=True)
class PRelu:
    """x for x >= 0, alpha * x below, alpha a constant repeating along leading axes (TFLite PRELU)."""

    KIND: ClassVar[str] = "prelu"


@dataclass(frozen=True)
class Transpose:
    """The axes permuted: output axis i is input axis perm[i] (TFLite TRANSPOSE)."""

    KIND: ClassVar[str] = "transpose"
    perm: tuple[int, ...]


@dataclass(frozen=True)
class Resize:
    """H and W of an NHWC tensor resized to the output's, sharing one quantization (TFLite
    RESIZE_BILINEAR or RESIZE_NEAREST_NEIGHBOR): `mode` "bilinear" or "nearest"."""

    KIND: ClassVar[str] = "resize"
    mode: str
    align_corners: bool
    half_pixel_centers: bool


@dataclass(frozen=True)
class Quantize:
    """Requantization to the output's scale, zero point and type (int8 or uint8)."""

    KIND: ClassVar[str] = "quantize"


@dataclass(frozen=True)
class ReadVariable:
    """The current value of a persistent variable (the input tensor named in Graph.variables)."""

    KIND: ClassVar[str] = "read_variable"


@dataclass(frozen=True)
class AssignVariable:
    """Store the input as the new value of a persistent variable (the output tensor)."""

    KIND: ClassVar[str] = "assign_variable"


@dataclass(frozen=True)
class Softmax:
    """Softmax over the last axis."""

    KIND: ClassVar[str] = "softmax"
    beta: float


@dataclass(frozen=True)
class Reshape:
    """A new shape for the same bytes."""

    KIND: ClassVar[str] = "reshape"


@dataclass(frozen=True)
class Lstm:
    """A unidirectional LSTM over a whole sequence `[B, T, I]` (`[T, B, I]` when time major), every
    step's hidden state out (TFLite UNIDIRECTIONAL_SEQUENCE_LSTM, integer): inputs are the sequence,
    then the input weights `[H, I]`, the recurrent weights `[H, H]` and the biases `[H]` of the
    input, forget, cell and output gates, in that order. The hidden state has the output's
    quantization; the cell state, int16, has scale `cell_scale`. Each inference starts from the
    zero state, or, with `keeps_state`, from the state the last one left: then two more inputs,
    the hidden and cell state `[B, H]`, are persistent variables (Graph.variables) it updates."""

    KIND: ClassVar[str] = "lstm"
    time_major: bool
    cell_clip: float  # in real units; 0 for none
    cell_scale: float
    keeps_state: bool = False


Attrs = (Conv2D | DepthwiseConv2D | FullyConnected | Pool2D | Add | Sub | SquaredDifference
         | Mul | Concat | Pad | Softmax
         | Reshape | Slice | Mean | Logistic | Tanh | HardSwish | LeakyRelu | Rsqrt | Extremum | Quantize
         | ReadVariable | AssignVariable | Relu | PRelu | Transpose | Lstm | Resize)


@dataclass(frozen=True)
class Op:
    """One operator: `origin` says where it came from in the user's file, for messages."""

    name: str
    attrs: Attrs
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    origin: str

    @property
    def kind(self) -> str:
        return self.attrs.KIND


@dataclass(frozen=True)
class Graph:
    """A network: tensors by name, operators in execution order, inputs and outputs."""

    name: str
    tensors: Mapping[str, Tensor]
    ops: tuple[Op, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    variables: Mapping[str, np.ndarray] = field(default_factory=dict)
    """Persistent state carried between inferences: variable tensor name -> initial value."""
    float_io: Mapping[str, str] = field(default_factory=dict)
    """Float inputs and outputs of the file that the host quantizes and dequantizes around the
    int8 graph: int8 tensor name -> the file's float tensor name."""
    uint8_io: Mapping[str, str] = field(default_factory=dict)
    """uint8 inputs and outputs of the file, 128 apart from the int8 graph's (the host shifts
    them): int8 tensor name -> the file's uint8 tensor name."""
    notes: tuple[str, ...] = ()
    """What the import changed that the user should know (shape sub-graphs folded, dimensions
    pinned), one sentence each, for the progress output."""

    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def producer(self, tensor_name: str) -> Op | None:
        return next((op for op in self.ops if tensor_name in op.outputs), None)

    @property
    def activations(self) -> list[Tensor]:
        """Every non-constant tensor (variables included), in first-use order."""
        seen: dict[str, Tensor] = {}
        for name in self.inputs:
            seen[name] = self.tensors[name]
        for op in self.ops:
            for name in (*op.inputs, *op.outputs):
                t = self.tensors.get(name)
                if t is not None and not t.is_constant:
                    seen.setdefault(name, t)
        return list(seen.values())

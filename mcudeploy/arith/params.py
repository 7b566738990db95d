"""Kernel parameters of each quantized operator, derived exactly as TFLite(-Micro) derives them.

The host reference and the generated C both take their numbers from here, so the only
arithmetic that can differ between them is the kernels' own; the TFLM oracle checks both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mcudeploy.arith import quantize_multiplier, quantize_value, round_half_away
from mcudeploy.ir import Clip, Graph, Op, Tensor

INT8_MIN, INT8_MAX = -128, 127
ADD_LEFT_SHIFT = 20
SOFTMAX_DIFF_INTEGER_BITS = 5


@dataclass(frozen=True, eq=False)
class ConvParams:
    """For convolution, depthwise convolution and fully connected layers."""

    input_offset: int
    output_offset: int
    multiplier: np.ndarray  # int32, one per output channel (length 1 if per tensor)
    shift: np.ndarray  # int32
    act_min: int
    act_max: int
    bias: np.ndarray  # int32 [C_out]


@dataclass(frozen=True)
class AddParams:
    input1_offset: int
    input1_multiplier: int
    input1_shift: int
    input2_offset: int
    input2_multiplier: int
    input2_shift: int
    left_shift: int
    output_offset: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class MulParams:
    input1_offset: int
    input2_offset: int
    output_offset: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class PoolParams:
    act_min: int
    act_max: int


@dataclass(frozen=True)
class SoftmaxParams:
    multiplier: int
    left_shift: int
    diff_min: int


def activation_range(clip: Clip, out: Tensor) -> tuple[int, int]:
    """TFLite CalculateActivationRangeQuantized for an int8 output."""
    low, high = INT8_MIN, INT8_MAX
    if clip.low is not None:
        low = max(low, quantize_value(clip.low, out.scale, out.zero_point))
    if clip.high is not None:
        high = min(high, quantize_value(clip.high, out.scale, out.zero_point))
    return low, high


def conv_params(op: Op, graph: Graph) -> ConvParams:
    """Offsets, per-channel multipliers/shifts, clamp and bias of a conv, depthwise or FC layer."""
    x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    y = graph.tensor(op.outputs[0])
    assert w.quant is not None
    if op.kind == "fully_connected" and not w.quant.per_channel:
        # TFLite GetQuantizedConvolutionMultipler: the scale product is taken in float32.
        product = float(np.float32(x.scale) * np.float32(w.quant.scale[0]))
        reals = [product / float(y.scale)]
    else:
        reals = [float(x.scale) * float(s) / float(y.scale) for s in w.quant.scale]
    pairs = [quantize_multiplier(r) for r in reals]
    c_out = y.shape[-1]
    if len(pairs) == 1 and op.kind != "fully_connected":
        pairs = pairs * c_out
    bias_name = op.inputs[2] if len(op.inputs) > 2 else ""
    if bias_name:
        bias = graph.tensor(bias_name).data
        assert bias is not None
        bias = bias.astype(np.int32).reshape(-1)
    else:
        bias = np.zeros(c_out, dtype=np.int32)
    low, high = activation_range(op.attrs.activation, y)
    return ConvParams(
        input_offset=-x.zero_point,
        output_offset=y.zero_point,
        multiplier=np.array([m for m, _ in pairs], dtype=np.int32),
        shift=np.array([s for _, s in pairs], dtype=np.int32),
        act_min=low,
        act_max=high,
        bias=bias,
    )


def add_params(op: Op, graph: Graph) -> AddParams:
    """TFLite ADD and SUB (int8): both inputs rescaled to twice the larger input scale, left shift
    20, the ratios divided in double. For SUB that is what the tflite-micro interpreter (the oracle)
    computes, although TFLM's sub_common.cc at 90b983c2 divides in float32 (measured:
    tests/test_layer_norm.py)."""
    a, b = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    y = graph.tensor(op.outputs[0])
    twice_max = 2.0 * max(float(a.scale), float(b.scale))
    m1, s1 = quantize_multiplier(float(a.scale) / twice_max)
    m2, s2 = quantize_multiplier(float(b.scale) / twice_max)
    mo, so = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * float(y.scale)))
    low, high = activation_range(op.attrs.activation, y)
    return AddParams(
        input1_offset=-a.zero_point, input1_multiplier=m1, input1_shift=s1,
        input2_offset=-b.zero_point, input2_multiplier=m2, input2_shift=s2,
        left_shift=ADD_LEFT_SHIFT,
        output_offset=y.zero_point, output_multiplier=mo, output_shift=so,
        act_min=low, act_max=high,
    )


SQUARED_DIFFERENCE_LEFT_SHIFT = 7  # TFLM's: 255^2 x 2^14 still fits int32


def squared_difference_params(op: Op, graph: Graph) -> AddParams:
    """TFLM's int8 SQUARED_DIFFERENCE preparation: ADD's input rescaling with a left shift of 7, the
    output multiplier (2 x max input scale)^2 / (2^14 x output scale), all divided in double; the
    output spans the whole int8 range (no fused activation)."""
    a, b = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    y = graph.tensor(op.outputs[0])
    twice_max = 2.0 * float(max(np.float32(a.scale), np.float32(b.scale)))
    m1, s1 = quantize_multiplier(float(np.float32(a.scale)) / twice_max)
    m2, s2 = quantize_multiplier(float(np.float32(b.scale)) / twice_max)
    shifted_scale = float(np.float32(1 << 2 * SQUARED_DIFFERENCE_LEFT_SHIFT) * np.float32(y.scale))
    mo, so = quantize_multiplier(twice_max * twice_max / shifted_scale)
    return AddParams(
        input1_offset=-a.zero_point, input1_multiplier=m1, input1_shift=s1,
        input2_offset=-b.zero_point, input2_multiplier=m2, input2_shift=s2,
        left_shift=SQUARED_DIFFERENCE_LEFT_SHIFT,
        output_offset=y.zero_point, output_multiplier=mo, output_shift=so,
        act_min=-128, act_max=127,
    )


def mul_params(op: Op, graph: Graph) -> MulParams:
    """TFLite MUL (int8): the product of the offset inputs times s1 * s2 / s_out."""
    a, b = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    y = graph.tensor(op.outputs[0])
    m, s = quantize_multiplier(float(a.scale) * float(b.scale) / float(y.scale))
    low, high = activation_range(op.attrs.activation, y)
    return MulParams(-a.zero_point, -b.zero_point, y.zero_point, m, s, low, high)


@dataclass(frozen=True)
class LogisticParams:
    input_zero_point: int
    input_range_radius: int
    input_multiplier: int
    input_left_shift: int


LOGISTIC_INPUT_INTEGER_BITS = 4


def logistic_params(op: Op, graph: Graph) -> LogisticParams:
    """TFLM's int8 LOGISTIC preparation: the input scaled to Q4.27, and the radius beyond which the
    output saturates."""
    x = graph.tensor(op.inputs[0])
    bits = LOGISTIC_INPUT_INTEGER_BITS
    mantissa, shift = math.frexp(float(x.scale) * float(1 << (31 - bits)))
    multiplier = int(round_half_away(mantissa * (1 << 31)))
    radius = ((1 << bits) - 1) * (1 << (31 - bits)) / 2.0**shift
    return LogisticParams(x.zero_point, math.floor(radius), multiplier, shift)


def tanh_params(op: Op, graph: Graph) -> LogisticParams:
    """TFLM prepares int8 TANH as it does LOGISTIC: the input in Q4.27, the same radius."""
    return logistic_params(op, graph)


@dataclass(frozen=True)
class RsqrtParams:
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int


RSQRT_SHIFT = 20  # TFLM's RSQRT holds 1 / sqrt(x) as an integer scaled by 2^20


def rsqrt_params(op: Op, graph: Graph) -> RsqrtParams:
    """TFLM's int8 RSQRT preparation (SetRsqrtOutputMultiplier): 1 / (sqrt(s_in) x s_out), the
    square root and the product in float32, the reciprocal in double."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    root = np.sqrt(np.float32(x.scale)) * np.float32(y.scale)
    return RsqrtParams(x.zero_point, y.zero_point, *quantize_multiplier(1.0 / float(root)))


@dataclass(frozen=True)
class LeakyReluParams:
    input_zero_point: int
    output_zero_point: int
    identity_multiplier: int
    identity_shift: int
    alpha_multiplier: int
    alpha_shift: int


def leaky_relu_params(op: Op, graph: Graph) -> LeakyReluParams:
    """TFLM's int8 LEAKY_RELU preparation: s_in / s_out and s_in * alpha / s_out, each computed
    in float32 as TFLM does, as Q31 multipliers."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    s_in, s_out, alpha = np.float32(x.scale), np.float32(y.scale), np.float32(op.attrs.alpha)
    identity = quantize_multiplier(float(s_in / s_out))
    scaled = quantize_multiplier(float(np.float32(s_in * alpha) / s_out))
    return LeakyReluParams(x.zero_point, y.zero_point, *identity, *scaled)


@dataclass(frozen=True)
class HardSwishParams:
    input_zero_point: int
    output_zero_point: int
    output_multiplier: int  # Q15
    output_exponent: int
    reluish_multiplier: int  # Q15
    reluish_exponent: int


def _q15(real: np.float32) -> tuple[int, int]:
    """QuantizeMultiplier, then DownScaleInt32ToInt16Multiplier (rounded to the top 16 bits)."""
    m32, exponent = quantize_multiplier(float(real))
    m16 = 32767 if m32 >= (1 << 31) - 1 - (1 << 15) else (m32 + (1 << 15)) >> 16
    return m16, exponent


def hard_swish_params(op: Op, graph: Graph) -> HardSwishParams:
    """TFLM's int8 HARD_SWISH preparation, in float32 as TFLM computes it: the input on a scale
    128 times finer, requantized to the output and to the "reluish" scale 3 / 32768."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    hires = np.float32(1.0 / 128.0) * np.float32(x.scale)
    output = _q15(hires / np.float32(y.scale))
    reluish = _q15(hires / np.float32(3.0 / 32768.0))
    return HardSwishParams(x.zero_point, y.zero_point, *output, *reluish)


@dataclass(frozen=True)
class QuantizeParams:
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int
    out_min: int
    out_max: int


def quantize_params(op: Op, graph: Graph) -> QuantizeParams:
    """TFLite QUANTIZE between integer types: requantize by s_in / s_out."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    m, s = quantize_multiplier(float(x.scale) / float(y.scale))
    info = np.iinfo(y.dtype)
    return QuantizeParams(x.zero_point, y.zero_point, m, s, int(info.min), int(info.max))


@dataclass(frozen=True)
class MeanParams:
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int
    count: int


def mean_params(op: Op, graph: Graph) -> MeanParams:
    """TFLite's integer MEAN: the multiplier s_in / s_out divided by the element count in 64 bits,
    with as much left shift as keeps it in range (QuantizedMeanOrSum)."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    count = x.shape[1] * x.shape[2]
    multiplier, shift = quantize_multiplier(float(x.scale) / float(y.scale))
    extra = min(count.bit_length() - 1, 32, 31 + shift)
    return MeanParams(x.zero_point, y.zero_point, (multiplier << extra) // count, shift - extra, count)


def pool_params(op: Op, graph: Graph) -> PoolParams:
    low, high = activation_range(op.attrs.activation, graph.tensor(op.outputs[0]))
    return PoolParams(act_min=low, act_max=high)


def softmax_params(op: Op, graph: Graph) -> SoftmaxParams:
    """TFLite PreprocessSoftmaxScaling and CalculateInputRadius for int8 input."""
    x = graph.tensor(op.inputs[0])
    bits = SOFTMAX_DIFF_INTEGER_BITS
    real = min(float(op.attrs.beta) * float(x.scale) * (1 << (31 - bits)), (1 << 31) - 1.0)
    multiplier, left_shift = quantize_multiplier(real)
    assert left_shift >= 0
    radius = ((1 << bits) - 1) * (1 << (31 - bits)) / (1 << left_shift)
    return SoftmaxParams(multiplier=multiplier, left_shift=left_shift, diff_min=-math.floor(radius))


@dataclass(frozen=True)
class ReluParams:
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int
    act_min: int
    act_max: int


def relu_params(op: Op, graph: Graph) -> ReluParams:
    """TFLM's int8 RELU preparation (CalculateReluOpData): s_in / s_out divided in float32, the
    bounds quantized with the output's scale; RELU6 with equal quantizations is the same clamp."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    m, s = quantize_multiplier(float(np.float32(x.scale) / np.float32(y.scale)))
    low, high = activation_range(Clip(op.attrs.low, op.attrs.high), y)
    return ReluParams(x.zero_point, y.zero_point, m, s, low, high)


@dataclass(frozen=True)
class PReluParams:
    input_offset: int
    alpha_offset: int
    output_offset: int
    positive_multiplier: int
    positive_shift: int
    negative_multiplier: int
    negative_shift: int


def prelu_params(op: Op, graph: Graph) -> PReluParams:
    """TFLM's int8 PRELU preparation (CalculatePreluParams): s_in / s_out for x >= 0 and
    s_in * s_alpha / s_out for the product below, in double."""
    x, alpha, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    positive = quantize_multiplier(float(x.scale) / float(y.scale))
    negative = quantize_multiplier(float(x.scale) * float(alpha.scale) / float(y.scale))
    return PReluParams(-x.zero_point, -alpha.zero_point, y.zero_point, *positive, *negative)

"""TFLite's 16x8 kernels (int16 activations with zero point 0, int8 weights, int64 or int32 bias),
bit for bit as TFLite-Micro's reference kernels compute them, and the parameters they derive
from the scales. Not wired into the graph runner yet: each function takes its numbers explicitly.

Arithmetic in one place:
- `requantize_s64`: MultiplyByQuantizedMultiplier of an int64 accumulator (multiplier rounded to
  16 bits, one rounding shift), for layers with int64 bias;
- int32 bias (16x8 CONV_2D converted with an int32 bias type): int32 accumulation and the 32-bit
  `requantize` of the int8 kernels;
- ADD and MUL requantize as their int8 twins, with ADD's left shift 15 instead of 20;
- SOFTMAX interpolates two 513-entry tables (`softmax_luts`), LOGISTIC/TANH (the LSTM gates) one
  256-entry sigmoid table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mcudeploy.arith import quantize_multiplier, quantize_value, requantize, wrap_int32

INT16_MIN, INT16_MAX = -32768, 32767
ADD_LEFT_SHIFT_S16 = 15

# sigmoid(i / 24) in unsigned 0.16 fixed point: the values of TFLite's sigmoid_table_uint16
# (tensorflow/lite/kernels/internal/common.h), which no formula reproduces exactly; nnref holds
# the same numbers (firmware/nnref/Source/NNSupportFunctions/arm_nn_sigmoid_table_s16.c).
SIGMOID_TABLE = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149,
    40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369,
    47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169,
    53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370,
    60565, 60753, 60935, 61110, 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302,
    62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186, 63279, 63368, 63454, 63536,
    63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786,
    64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
    65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
    65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474,
    65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498,
    65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522,
    65523, 65523, 65524, 65524, 65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528,
    65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531,
    65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65534, 65534, 65534, 65535,
], dtype=np.int64)


# ---------------------------------------------------------------- arithmetic

def requantize_s64(acc: np.ndarray, multiplier: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier for int64 accumulators, broadcast over the last axis:
    (acc * round(multiplier / 2^16) + 2^(14 - shift)) >> (15 - shift), ties up, low 32 bits."""
    multiplier = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    reduced = np.where(multiplier < 0x7FFF0000, (multiplier + (1 << 15)) >> 16, 0x7FFF)
    total = 15 - shift
    with np.errstate(over="ignore"):
        scaled = np.asarray(acc, dtype=np.int64) * reduced + (np.int64(1) << (total - 1))
    return wrap_int32(scaled >> total)


def _clamp16(x: np.ndarray) -> np.ndarray:
    return np.clip(x, INT16_MIN, INT16_MAX)


def activation_range(low: float | None, high: float | None, scale: float) -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized for an int16 output (zero point 0): a fused
    RELU has low 0, RELU6 low 0 and high 6, RELU_N1_TO_1 -1 and 1; None for no bound."""
    act_min = INT16_MIN if low is None else max(INT16_MIN, quantize_value(low, scale, 0))
    act_max = INT16_MAX if high is None else min(INT16_MAX, quantize_value(high, scale, 0))
    return act_min, act_max


# ---------------------------------------------------------------- convolution and fully connected

@dataclass(frozen=True, eq=False)
class ConvParamsS16:
    """Requantization of a 16x8 convolution, depthwise convolution or fully connected layer.

    `multiplier`/`shift` hold one value per output channel (or one, per tensor); the dtype of
    `bias` (int64 or int32, None for no bias of `bias_int32`'s kind) picks TFLite's accumulation."""

    multiplier: np.ndarray
    shift: np.ndarray
    bias: np.ndarray | None
    act_min: int = INT16_MIN
    act_max: int = INT16_MAX
    bias_int32: bool = False

    @property
    def int32_accumulation(self) -> bool:
        return self.bias.dtype == np.int32 if self.bias is not None else self.bias_int32


def conv_multipliers(input_scale: float, filter_scales: np.ndarray, output_scale: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel Q31 multipliers and shifts of s_in * s_w[c] / s_out (doubles of the float32
    scales, as TFLite's PopulateConvolutionQuantizationParams)."""
    pairs = [quantize_multiplier(float(np.float64(np.float32(input_scale)) * np.float64(np.float32(s))
                                       / np.float64(np.float32(output_scale))))
             for s in np.atleast_1d(filter_scales)]
    return (np.array([m for m, _ in pairs], dtype=np.int64), np.array([s for _, s in pairs], dtype=np.int64))


def _finish(acc: np.ndarray, p: ConvParamsS16) -> np.ndarray:
    """acc: exact integer sums (int64), output channels on the last axis."""
    if p.int32_accumulation:
        total = wrap_int32(acc + (p.bias.astype(np.int64) if p.bias is not None else 0))
        out = requantize(total, p.multiplier, p.shift)
    else:
        total = acc + (p.bias.astype(np.int64) if p.bias is not None else 0)
        out = requantize_s64(total, p.multiplier, p.shift)
    return np.clip(out, p.act_min, p.act_max).astype(np.int16)


def _windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
             padding: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """[N, OH, OW, C, KH, KW] windows of x (as float64), positions outside the input zero."""
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (dh, dw), (top, left), (oh, ow) = kernel, stride, dilation, padding, out_hw
    need_h = (oh - 1) * sh + (kh - 1) * dh + 1
    need_w = (ow - 1) * sw + (kw - 1) * dw + 1
    padded = np.zeros((n, top + max(h, need_h) + 1, left + max(w, need_w) + 1, c))
    padded[:, top:top + h, left:left + w, :] = x
    padded = padded[:, :need_h, :need_w, :]
    win = sliding_window_view(padded, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(1, 2))
    return win[:, ::sh, ::sw, :, ::dh, ::dw][:, :oh, :ow]


def _exact(acc: np.ndarray) -> np.ndarray:
    # float64 sums of int16 * int8 products are exact below 2^53, i.e. for any layer that fits a MCU.
    return np.rint(acc).astype(np.int64)


def conv2d(x: np.ndarray, w: np.ndarray, p: ConvParamsS16, stride: tuple[int, int], dilation: tuple[int, int],
           padding: tuple[int, int], out_shape: tuple[int, ...]) -> np.ndarray:
    """CONV_2D: x [N,H,W,C] int16, w OHWI [C_out,KH,KW,C] int8; padding (top, left)."""
    _, kh, kw, _ = w.shape
    win = _windows(x, (kh, kw), stride, dilation, padding, tuple(out_shape[1:3]))
    acc = np.einsum("nhwcij,oijc->nhwo", win, w.astype(np.float64), optimize=True)
    return _finish(_exact(acc), p)


def depthwise_conv2d(x: np.ndarray, w: np.ndarray, p: ConvParamsS16, stride: tuple[int, int],
                     dilation: tuple[int, int], padding: tuple[int, int], multiplier: int,
                     out_shape: tuple[int, ...]) -> np.ndarray:
    """DEPTHWISE_CONV_2D: w [1,KH,KW,C_out], output channel o reads input channel o // multiplier."""
    _, kh, kw, _ = w.shape
    win = _windows(x, (kh, kw), stride, dilation, padding, tuple(out_shape[1:3]))
    win = np.repeat(win, multiplier, axis=3)
    acc = np.einsum("nhwoij,ijo->nhwo", win, w[0].astype(np.float64), optimize=True)
    return _finish(_exact(acc), p)


def fully_connected(x: np.ndarray, w: np.ndarray, p: ConvParamsS16) -> np.ndarray:
    """FULLY_CONNECTED: rows of K values times w [C_out, K]; per tensor or per channel."""
    rows = x.reshape(-1, w.shape[1]).astype(np.float64)
    return _finish(_exact(rows @ w.astype(np.float64).T), p)


# ---------------------------------------------------------------- element-wise

@dataclass(frozen=True)
class AddParamsS16:
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int
    act_min: int = INT16_MIN
    act_max: int = INT16_MAX
    left_shift: int = ADD_LEFT_SHIFT_S16


def add_params(scale1: float, scale2: float, output_scale: float, act: tuple[int, int]) -> AddParamsS16:
    """TFLite's general int16 ADD preparation: both inputs to twice the larger scale, shifted left
    by 15 (QuantizeMultiplierSmallerThanOneExp of each ratio)."""
    s1, s2, so = (float(np.float32(s)) for s in (scale1, scale2, output_scale))
    twice_max = 2 * max(s1, s2)
    m1 = quantize_multiplier(s1 / twice_max)
    m2 = quantize_multiplier(s2 / twice_max)
    mo = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT_S16) * so))
    return AddParamsS16(*m1, *m2, *mo, *act)


def add(a: np.ndarray, b: np.ndarray, p: AddParamsS16) -> np.ndarray:
    """ADD of two same-shape int16 tensors."""
    va = wrap_int32(a.astype(np.int64) << p.left_shift)
    vb = wrap_int32(b.astype(np.int64) << p.left_shift)
    total = wrap_int32(requantize(va, p.input1_multiplier, p.input1_shift)
                       + requantize(vb, p.input2_multiplier, p.input2_shift))
    out = requantize(total, p.output_multiplier, p.output_shift)
    return np.clip(out, p.act_min, p.act_max).astype(np.int16)


def mul(a: np.ndarray, b: np.ndarray, multiplier: int, shift: int, act: tuple[int, int]) -> np.ndarray:
    """MUL of two same-shape int16 tensors: the product requantized by s1 * s2 / s_out."""
    out = requantize(a.astype(np.int64) * b.astype(np.int64), multiplier, shift)
    return np.clip(out, *act).astype(np.int16)


# ---------------------------------------------------------------- pooling

def pool2d(x: np.ndarray, mode: str, window: tuple[int, int], stride: tuple[int, int],
           padding: tuple[int, int], act: tuple[int, int], out_shape: tuple[int, ...]) -> np.ndarray:
    """AVERAGE_POOL_2D ("avg") or MAX_POOL_2D ("max"); windows clipped to the input, the average
    rounded half away from zero over the positions inside."""
    _, h, w, _ = x.shape
    _, oh, ow, _ = out_shape
    (kh, kw), (sh, sw), (top, left) = window, stride, padding
    out = np.empty(out_shape, dtype=np.int64)
    xs = x.astype(np.int64)
    for oy in range(oh):
        y0 = oy * sh - top
        ys = slice(max(y0, 0), min(y0 + kh, h))
        for ox in range(ow):
            x0 = ox * sw - left
            win = xs[:, ys, max(x0, 0):min(x0 + kw, w), :]
            if mode == "max":
                out[:, oy, ox, :] = win.max(axis=(1, 2))
            else:
                count = win.shape[1] * win.shape[2]
                total = win.sum(axis=(1, 2))
                num = np.where(total > 0, total + count // 2, total - count // 2)
                out[:, oy, ox, :] = np.sign(num) * (np.abs(num) // count)
    return np.clip(out, *act).astype(np.int16)


# ---------------------------------------------------------------- lookup tables

def lut_lookup(value: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """TFLite's LUTLookup on int16 values: entry 256 + (value >> 7), interpolated with the low 7
    bits; the slope and the result are truncated to int16 as in C++."""
    value = np.asarray(value, dtype=np.int64)
    lut = np.asarray(lut, dtype=np.int64)
    index = 256 + (value >> 7)
    base = lut[index]
    slope = _wrap16(lut[index + 1] - base)
    return _wrap16(base + ((slope * (value & 0x7F) + 64) >> 7))


def _wrap16(x: np.ndarray) -> np.ndarray:
    return ((np.asarray(x, dtype=np.int64) + 0x8000) & 0xFFFF) - 0x8000


def _round_f32(x: np.ndarray) -> np.ndarray:
    """std::round of float32 values (exact: float32 widened to float64 loses nothing)."""
    x = np.asarray(x, dtype=np.float32).astype(np.float64)
    return (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype(np.float32)


def _lut_populate(transform, input_scale: np.float32, input_zero: int, output_scale: np.float32
                  ) -> np.ndarray:
    """TFLite's LUTPopulate<int16_t> (float32 arithmetic, output zero point 0): 512 samples over
    the int16 input range with the interpolation error of each midpoint halved into the sample,
    and a 513th value at the top."""
    f32 = np.float32
    input_min = f32(input_scale * f32(INT16_MIN - input_zero))
    input_max = f32(input_scale * f32(INT16_MAX - input_zero))
    output_min = f32(output_scale * f32(INT16_MIN))
    output_max = f32(output_scale * f32(INT16_MAX))
    steps = 512
    step = f32(f32(input_max - input_min) / f32(steps))
    half_step = f32(step / f32(2))
    inv = f32(f32(65536) / f32(output_max - output_min))
    i = np.arange(steps, dtype=np.float32)
    at = (input_min + i * step).astype(np.float32)
    val = transform(at)
    val_mid = transform((at + half_step).astype(np.float32))
    val_next = transform((input_min + (i + f32(1)) * step).astype(np.float32))
    sample = _round_f32(val * inv)
    mid_interp = _round_f32(((val_next * inv).astype(np.float32) + sample) / f32(2))
    mid = _round_f32(val_mid * inv)
    bias = _round_f32((mid_interp - mid) / f32(2))
    lut = np.clip(sample - bias, INT16_MIN, INT16_MAX).astype(np.int64)
    top = np.clip(_round_f32(transform(np.array([input_max], np.float32)) * inv), INT16_MIN, INT16_MAX)
    return np.concatenate([lut, top.astype(np.int64)]).astype(np.int16)


def _expf(x: np.ndarray) -> np.ndarray:
    """expf, correctly rounded (exp in double, rounded once to float)."""
    return np.exp(np.asarray(x, dtype=np.float64)).astype(np.float32)


def _one_over_one_plus(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return (np.float32(1) / (np.float32(1) + x)).astype(np.float32)


def softmax_luts() -> tuple[np.ndarray, np.ndarray]:
    """The two tables of TFLite's int16 SOFTMAX, 513 int16 values each: exp(x) on [-10, 0] and
    1 / (1 + x) on [0, 1], both with output scale 2 / 65535 (arm_softmax_s16's
    cmsis_nn_softmax_lut_s16 exp_lut and one_by_one_lut)."""
    span = np.float32(65535)
    exp_lut = _lut_populate(_expf, np.float32(10) / span, INT16_MAX, np.float32(2) / span)
    recip_lut = _lut_populate(_one_over_one_plus, np.float32(1) / span, INT16_MIN, np.float32(2) / span)
    return exp_lut, recip_lut


def softmax_params(input_scale: float, beta: float) -> tuple[int, int]:
    """Multiplier and shift scaling (input - row max) so that [-65535, 0] is exp's [-10, 0]."""
    return quantize_multiplier(float(np.float32(input_scale)) * float(np.float32(beta)) / (10.0 / 65535.0))


def softmax(x: np.ndarray, multiplier: int, shift: int, exp_lut: np.ndarray, recip_lut: np.ndarray
            ) -> np.ndarray:
    """SOFTMAX over the last axis, int16 in, int16 out (scale 1/32768, zero point 0)."""
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
    diff = rows - rows.max(axis=1, keepdims=True)
    scaled = requantize(diff, multiplier, shift)
    exps = lut_lookup(_clamp16(scaled + 32767), exp_lut)
    total = exps.sum(axis=1, keepdims=True)
    clz = 32 - np.frexp(total.astype(np.float64))[1].astype(np.int64)  # frexp's exponent: the bit length
    shifted = ((total << (clz - 1)) + (1 << 13)) >> 14
    recip = lut_lookup(_clamp16(shifted - (1 << 15) - (1 << 16)), recip_lut)
    right = 31 - clz
    out = (exps * recip + (np.int64(1) << (right - 1))) >> right
    return np.clip(out, 0, INT16_MAX).reshape(x.shape).astype(np.int16)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """TFLite's int16 LOGISTIC kernel on x already in units of 1 / (3 * 2^12) (see `activation`)."""
    x = np.asarray(x, dtype=np.int64)
    mag = np.abs(x)
    entry = np.minimum(mag >> 9, 254)
    a, b = SIGMOID_TABLE[entry], SIGMOID_TABLE[entry + 1]
    r = np.where((mag >> 9) >= 255, 0x7FFF << 10, (a << 9) + (mag & 0x1FF) * (b - a))
    r = np.where(x >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1)
    return (r >> 10).astype(np.int16)


def tanh(x: np.ndarray) -> np.ndarray:
    """TFLite's int16 TANH kernel on x in units of 1 / (3 * 2^12)."""
    x = np.asarray(x, dtype=np.int64)
    mag = np.abs(x)
    entry = np.minimum(mag >> 8, 254)
    a, b = SIGMOID_TABLE[entry], SIGMOID_TABLE[entry + 1]
    r = np.where((mag >> 8) >= 255, 0xFFFF << 8, (a << 8) + (mag & 0xFF) * (b - a))
    r = np.where(x >= 0, r - (1 << 23) + (1 << 7), -r + (1 << 23) + (1 << 7) - 1)
    return (r >> 8).astype(np.int16)


def activation(x: np.ndarray, left_shift: int, kind: str) -> np.ndarray:
    """arm_nn_activation_s16: int16 x with scale 2^(left_shift - 12) through "sigmoid" or "tanh"
    (output scale 2^-15): x * 3 * 2^left_shift, or (x * 3 + round) >> -left_shift."""
    x = np.asarray(x, dtype=np.int64)
    if left_shift >= 0:
        scaled = x * (3 << left_shift)
    else:
        right = -left_shift
        scaled = (x * 3 + (1 << (right - 1))) >> right
    return tanh(scaled) if kind == "tanh" else sigmoid(scaled)

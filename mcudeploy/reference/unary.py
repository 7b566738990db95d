"""Element-wise int8 operators in TFLite(-Micro) semantics: LOGISTIC, TANH, HARD_SWISH,
LEAKY_RELU, RELU, PRELU, RSQRT and QUANTIZE."""

from __future__ import annotations

import numpy as np

from mcudeploy.arith import requantize, rounding_divide_by_pot
from mcudeploy.arith.fixedpoint import inv_sqrt_multiplier_exp
from mcudeploy.arith.fixedpoint import logistic as fixed_logistic
from mcudeploy.arith.fixedpoint import tanh as fixed_tanh
from mcudeploy.arith.params import (
    LOGISTIC_INPUT_INTEGER_BITS,
    RSQRT_SHIFT,
    HardSwishParams,
    LeakyReluParams,
    LogisticParams,
    PReluParams,
    QuantizeParams,
    ReluParams,
    RsqrtParams,
)


def logistic(x: np.ndarray, p: LogisticParams) -> np.ndarray:
    """TFLM's int8 logistic: saturate beyond the input radius, else gemmlowp's logistic in Q4.27."""
    value = x.astype(np.int64) - p.input_zero_point
    in_q4 = requantize(value, p.input_multiplier, p.input_left_shift)
    out_q0 = fixed_logistic(in_q4, LOGISTIC_INPUT_INTEGER_BITS)
    out = np.clip(rounding_divide_by_pot(out_q0, 31 - 8) - 128, -128, 127)
    out = np.where(value <= -p.input_range_radius, -128, out)
    out = np.where(value >= p.input_range_radius, 127, out)
    return out.astype(np.int8)


def tanh(x: np.ndarray, p: LogisticParams) -> np.ndarray:
    """TFLM's int8 tanh: saturate beyond the input radius, else gemmlowp's tanh in Q4.27, out in
    steps of 1/128."""
    value = x.astype(np.int64) - p.input_zero_point
    in_q4 = requantize(value, p.input_multiplier, p.input_left_shift)
    out_q0 = fixed_tanh(in_q4, LOGISTIC_INPUT_INTEGER_BITS)
    out = np.clip(rounding_divide_by_pot(out_q0, 31 - 7), -128, 127)
    out = np.where(value <= -p.input_range_radius, -128, out)
    out = np.where(value >= p.input_range_radius, 127, out)
    return out.astype(np.int8)


def _srdhm16(a: np.ndarray, b: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int16 values."""
    ab = a.astype(np.int64) * b
    q = ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    out = np.where(q >= 0, q >> 15, -((-q) >> 15))
    return np.where((a == -32768) & (b == -32768), 32767, out)


def _sdhm16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """TFLite SaturatingDoublingHighMul on int16 values (truncating)."""
    ab = a.astype(np.int64) * b
    out = np.where(ab >= 0, ab >> 15, -((-ab) >> 15))
    return np.where((a == -32768) & (b == -32768), 32767, out)


def _saturating_left_shift16(a: np.ndarray, amount: int) -> np.ndarray:
    return np.clip(a.astype(np.int64) << amount, -32768, 32767)


def hard_swish(x: np.ndarray, p: HardSwishParams) -> np.ndarray:
    """TFLM's int8 hard swish: int16 fixed point, the input 128 times finer."""
    hires = (x.astype(np.int64) - p.input_zero_point) * 128
    preshift_output = _srdhm16(hires, p.output_multiplier)
    reluish = hires
    if p.reluish_exponent > 0:
        reluish = _saturating_left_shift16(reluish, p.reluish_exponent - 1)
    reluish = _srdhm16(reluish, p.reluish_multiplier)
    if p.reluish_exponent > 0:
        reluish = _saturating_left_shift16(reluish, 1)
    if p.reluish_exponent < 0:
        reluish = rounding_divide_by_pot(reluish, -p.reluish_exponent)
    reluish = (reluish + (1 << 15)) >> 1
    out = rounding_divide_by_pot(_sdhm16(reluish, preshift_output), -p.output_exponent)
    return np.clip(out + p.output_zero_point, -128, 127).astype(np.int8)


def leaky_relu(x: np.ndarray, p: LeakyReluParams) -> np.ndarray:
    """TFLM's int8 leaky ReLU: each side requantized with its own multiplier."""
    value = x.astype(np.int64) - p.input_zero_point
    identity = requantize(value, p.identity_multiplier, p.identity_shift)
    scaled = requantize(value, p.alpha_multiplier, p.alpha_shift)
    out = np.where(value >= 0, identity, scaled) + p.output_zero_point
    return np.clip(out, -128, 127).astype(np.int8)


def relu(x: np.ndarray, p: ReluParams) -> np.ndarray:
    """TFLM's int8 RELU: requantized to the output, then clamped to the quantized bounds."""
    value = requantize(x.astype(np.int64) - p.input_zero_point, p.multiplier, p.shift) + p.output_zero_point
    return np.clip(value, p.act_min, p.act_max).astype(np.int8)


def prelu(x: np.ndarray, alpha: np.ndarray, p: PReluParams) -> np.ndarray:
    """TFLM's int8 PRELU: x >= 0 requantized by s_in / s_out, below the product with the offset
    alpha (broadcast) by s_in * s_alpha / s_out."""
    value = x.astype(np.int64) + p.input_offset
    product = value * (alpha.astype(np.int64) + p.alpha_offset)
    out = np.where(value >= 0, requantize(value, p.positive_multiplier, p.positive_shift),
                   requantize(product, p.negative_multiplier, p.negative_shift))
    return np.clip(out + p.output_offset, -128, 127).astype(np.int8)


def quantize(x: np.ndarray, p: QuantizeParams, dtype: str) -> np.ndarray:
    """Requantize to another scale, zero point and integer type."""
    out = requantize(x.astype(np.int64) - p.input_zero_point, p.multiplier, p.shift) + p.output_zero_point
    return np.clip(out, p.out_min, p.out_max).astype(dtype)


def lookup_table(kernel, dtype_in: str = "int8") -> np.ndarray:
    """The kernel's output for every int8 input, indexed by input + 128 (for generated C)."""
    return kernel(np.arange(-128, 128, dtype=np.int64).astype(dtype_in))


def rsqrt(x: np.ndarray, p: RsqrtParams) -> np.ndarray:
    """TFLM's int8 RSQRT: 1 / sqrt(x - zero point) as an integer scaled by 2^20 (gemmlowp's inverse
    square root applied to 1), requantized by the output multiplier with 20 bits less of shift;
    an input at the zero point (real 0) gives 127. TFLM stops at inputs below the zero point
    (mcudeploy refuses a zero point that admits them); computed here as TFLite's arithmetic does."""
    value = x.astype(np.int64) - p.input_zero_point
    multiplier, shift = inv_sqrt_multiplier_exp(value)
    scaled = requantize(np.ones_like(value), multiplier, shift + RSQRT_SHIFT)
    out = requantize(scaled, p.multiplier, p.shift - RSQRT_SHIFT) + p.output_zero_point
    return np.where(value == 0, 127, np.clip(out, -128, 127)).astype(np.int8)

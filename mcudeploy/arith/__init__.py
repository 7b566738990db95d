"""TFLite's integer arithmetic, bit for bit: multipliers, requantization, rounding.

Every function here reproduces a formula of the TFLite int8 specification (which CMSIS-NN
implements); the numpy versions emulate 32-bit two's-complement wrap-around where C does. Used
everywhere: by the quantizer, the support checks, the host reference and the code generator.
`fixedpoint` holds gemmlowp's fixed-point functions, `params` each operator's kernel parameters.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def round_half_away(x: float | np.ndarray) -> np.ndarray:
    """std::round: halves go away from zero (numpy's round goes to even)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real = multiplier * 2**(shift - 31), multiplier in [2**30, 2**31)."""
    if real == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(real)
    q = int(round_half_away(mantissa * (1 << 31)))
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return INT32_MAX, 30
    return q, shift


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap of int64 values to int32 range (kept as int64)."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + 2**31) & 0xFFFFFFFF) - 2**31


def srdhm(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values (as int64 arrays)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    ab = a * b
    # (ab + nudge) / 2**31 truncated toward zero equals floor((ab + 2**30) / 2**31).
    result = (ab + (1 << 30)) >> 31
    return np.where(overflow, INT32_MAX, result)


def rounding_divide_by_pot(x: np.ndarray | int, exponent: np.ndarray | int) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: x / 2**exponent, halves away from zero."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def requantize(acc: np.ndarray, multiplier: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier (double rounding), broadcast over the last axis."""
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    scaled = wrap_int32(np.asarray(acc, dtype=np.int64) << left)
    return rounding_divide_by_pot(srdhm(scaled, multiplier), right)


def quantize_value(value: float, scale: float, zero_point: int) -> int:
    """TFLite's quantize of one real value with float32 division (activation bounds)."""
    q = np.float32(value) / np.float32(scale)
    return zero_point + int(round_half_away(float(q)))

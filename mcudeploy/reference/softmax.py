"""TFLite int8 softmax: gemmlowp fixed-point exp and reciprocal, output scale 1/256, zero point -128.

Fixed-point values are int32 raws held in int64 arrays; a value with I integer bits has 31 - I
fractional bits. Products of fixed-point values are `srdhm` of their raws; sums wrap like int32.
"""

from __future__ import annotations

import numpy as np

from mcudeploy.quantize.arith import (
    INT32_MAX,
    INT32_MIN,
    rounding_divide_by_pot,
    srdhm,
    wrap_int32,
)
from mcudeploy.quantize.params import SOFTMAX_DIFF_INTEGER_BITS, SoftmaxParams

ACCUM_INTEGER_BITS = 12
EXP_MINUS_ONE_EIGHTH = 1895147668
ONE_THIRD = 715827883
# exp(-2**k) in Q0.31 for k = -2 .. 4, applied for each set bit of the remainder.
BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535),
          (3, 720401), (4, 242))


def _mul_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT."""
    if exponent <= 0:
        return rounding_divide_by_pot(x, -exponent)
    return np.clip(np.asarray(x, dtype=np.int64) << exponent, INT32_MIN, INT32_MAX)


def _exp_quarter(a: np.ndarray) -> np.ndarray:
    """exp(a) for a in [-1/4, 0), Q0.31 in and out (Taylor series around -1/8)."""
    x = wrap_int32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = _mul_pot(x4, -2)
    poly = _mul_pot(wrap_int32(srdhm(wrap_int32(x4_over_4 + x3), ONE_THIRD) + x2), -1)
    return wrap_int32(EXP_MINUS_ONE_EIGHTH + srdhm(EXP_MINUS_ONE_EIGHTH, wrap_int32(x + poly)))


def exp_on_negative_values(a: np.ndarray) -> np.ndarray:
    """exp(a) for a <= 0 given in Q5.26; result in Q0.31."""
    frac_bits = 31 - SOFTMAX_DIFF_INTEGER_BITS
    quarter = 1 << (frac_bits - 2)
    a_mod = wrap_int32((a & (quarter - 1)) - quarter)
    result = _exp_quarter(_mul_pot(a_mod, SOFTMAX_DIFF_INTEGER_BITS))
    remainder = wrap_int32(a_mod - a)
    for k, factor in BARREL:
        if k < SOFTMAX_DIFF_INTEGER_BITS:
            hit = (remainder & (1 << (frac_bits + k))) != 0
            result = np.where(hit, srdhm(result, factor), result)
    return np.where(a == 0, INT32_MAX, result)


def _one_over_one_plus_x(a: np.ndarray) -> np.ndarray:
    """1 / (1 + a) for a in [0, 1) in Q0.31, by Newton-Raphson in Q2.29."""
    # gemmlowp RoundingHalfSum(a, One): (a + b + sign) / 2, truncating toward zero.
    total = a + INT32_MAX
    total = total + np.where(total >= 0, 1, -1)
    half_den = np.where(total >= 0, total // 2, -((-total) // 2))
    x = wrap_int32(1515870810 + srdhm(half_den, -1010580540))
    for _ in range(3):
        one_minus = wrap_int32((1 << 29) - srdhm(half_den, x))
        x = wrap_int32(x + _mul_pot(srdhm(x, one_minus), 2))
    # ExactMulByPot<-1> relabels Q2.29 as Q1.30 (same raw); Rescale<0> then doubles it.
    return _mul_pot(x, 1)


def _clz32(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64) & 0xFFFFFFFF
    bits = np.zeros_like(x)
    nz = x > 0
    bits[nz] = np.floor(np.log2(x[nz].astype(np.float64))).astype(np.int64) + 1
    # log2 of values just below a power of two can round up: correct by checking.
    too_big = nz & ((np.int64(1) << np.maximum(bits - 1, 0)) > x)
    bits = bits - too_big
    return 32 - bits


def softmax(x: np.ndarray, p: SoftmaxParams) -> np.ndarray:
    """Softmax over the last axis of an int8 tensor, TFLite/CMSIS-NN bit-exact."""
    rows = x.reshape(-1, x.shape[-1]).astype(np.int64)
    diff = rows - rows.max(axis=1, keepdims=True)
    valid = diff >= p.diff_min
    scaled = srdhm(wrap_int32(diff << p.left_shift), p.multiplier)
    exps = exp_on_negative_values(scaled)
    sums = np.where(valid, rounding_divide_by_pot(exps, ACCUM_INTEGER_BITS), 0)
    total = wrap_int32(sums.sum(axis=1, keepdims=True))
    headroom = _clz32(total)
    bits_over_unit = ACCUM_INTEGER_BITS - headroom
    shifted = wrap_int32(((total << headroom) & 0xFFFFFFFF) - (1 << 31))
    recip = _one_over_one_plus_x(shifted)
    out = rounding_divide_by_pot(srdhm(recip, exps), bits_over_unit + 31 - 8) - 128
    out = np.where(valid, np.clip(out, -128, 127), -128)
    return out.reshape(x.shape).astype(np.int8)

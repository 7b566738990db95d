"""gemmlowp's fixed-point arithmetic, as TFLite's softmax and logistic kernels use it.

Fixed-point values are int32 raws held in int64 arrays; a value with I integer bits has 31 - I
fractional bits. Products of fixed-point values are `srdhm` of their raws; sums wrap like int32.
"""

from __future__ import annotations

import numpy as np

from mcudeploy.arith import INT32_MAX, INT32_MIN, rounding_divide_by_pot, srdhm, wrap_int32

EXP_MINUS_ONE_EIGHTH = 1895147668
ONE_THIRD = 715827883
# exp(-2**k) in Q0.31 for k = -2 .. 4, applied for each set bit of the remainder.
BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535),
          (3, 720401), (4, 242))


def mul_pot(x: np.ndarray, exponent: int) -> np.ndarray:
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
    x4_over_4 = mul_pot(x4, -2)
    poly = mul_pot(wrap_int32(srdhm(wrap_int32(x4_over_4 + x3), ONE_THIRD) + x2), -1)
    return wrap_int32(EXP_MINUS_ONE_EIGHTH + srdhm(EXP_MINUS_ONE_EIGHTH, wrap_int32(x + poly)))


def exp_on_negative_values(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """exp(a) for a <= 0 given with `integer_bits` integer bits; result in Q0.31."""
    frac_bits = 31 - integer_bits
    quarter = 1 << (frac_bits - 2)
    a_mod = wrap_int32((a & (quarter - 1)) - quarter)
    result = _exp_quarter(mul_pot(a_mod, integer_bits))
    remainder = wrap_int32(a_mod - a)
    for k, factor in BARREL:
        if k < integer_bits:
            hit = (remainder & (1 << (frac_bits + k))) != 0
            result = np.where(hit, srdhm(result, factor), result)
    return np.where(a == 0, INT32_MAX, result)


def _reciprocal_of_one_plus(a: np.ndarray) -> np.ndarray:
    """1 / (1 + a) for a in [0, 1] in Q0.31 in, Q2.29 out: Newton-Raphson on half the denominator,
    as gemmlowp's one_over_one_plus_x_for_x_in_0_1 and one_minus_x_over_one_plus_x_for_x_in_0_1."""
    # gemmlowp RoundingHalfSum(a, One): (a + b + sign) / 2, truncating toward zero.
    total = a + INT32_MAX
    total = total + np.where(total >= 0, 1, -1)
    half_den = np.where(total >= 0, total // 2, -((-total) // 2))
    x = wrap_int32(1515870810 + srdhm(half_den, -1010580540))
    for _ in range(3):
        one_minus = wrap_int32((1 << 29) - srdhm(half_den, x))
        x = wrap_int32(x + mul_pot(srdhm(x, one_minus), 2))
    return x


def one_over_one_plus_x(a: np.ndarray) -> np.ndarray:
    """1 / (1 + a) for a in [0, 1) in Q0.31."""
    # ExactMulByPot<-1> relabels Q2.29 as Q1.30 (same raw); Rescale<0> then doubles it.
    return mul_pot(_reciprocal_of_one_plus(a), 1)


def one_minus_x_over_one_plus_x(a: np.ndarray) -> np.ndarray:
    """(1 - a) / (1 + a) for a in [0, 1] in Q0.31: 2 / (1 + a) - 1, rescaled from Q2.29."""
    return mul_pot(wrap_int32(_reciprocal_of_one_plus(a) - (1 << 29)), 2)


def tanh(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp tanh for a with `integer_bits` integer bits; Q0.31 out. For a < 0,
    -tanh(a) = (1 - e) / (1 + e) with e = exp(2a), 2a read exactly with one more integer bit."""
    a = np.asarray(a, dtype=np.int64)
    negative = np.where(a < 0, a, -a)
    t = one_minus_x_over_one_plus_x(exp_on_negative_values(negative, integer_bits + 1))
    result = np.where(a < 0, -t, t)
    return np.where(a == 0, 0, result)


def logistic(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp logistic: 1 / (1 + exp(-a)) for a with `integer_bits` integer bits; Q0.31 out."""
    a = np.asarray(a, dtype=np.int64)
    positive = np.where(a > 0, a, -a)
    result_positive = one_over_one_plus_x(exp_on_negative_values(wrap_int32(-positive), integer_bits))
    result_negative = wrap_int32(INT32_MAX - result_positive)
    result = np.where(a > 0, result_positive, result_negative)
    return np.where(a == 0, 1 << 30, result)


HALF_THREE_Q3 = (1 << 28) + (1 << 27)  # 1.5 with 3 integer bits
HALF_SQRT_2_Q0 = 1518500250  # sqrt(2) / 2 in Q0.31


def inv_sqrt_multiplier_exp(value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TFLite's GetInvSqrtQuantizedMultiplierExp (with kReverseShift): 1 / sqrt(value) for int32
    values as a Q31 multiplier and a left shift. Values of at most 1 (0 included, as TFLite treats
    it) give INT32_MAX and shift 0; larger ones are normalised into [2^27, 2^29) by pairs of bits
    and refined by five Newton-Raphson steps in Q3.28, from the guess 1."""
    value = np.asarray(value, dtype=np.int64)
    v = np.where(value > 1, value, 2)  # the small ones are answered at the end
    shift = np.full(v.shape, 11, dtype=np.int64)
    while (big := v >= 1 << 29).any():
        v = np.where(big, v // 4, v)
        shift += big
    leading_zeros = 32 - np.vectorize(int.bit_length, otypes=[np.int64])(v)
    pairs = (leading_zeros - 1) // 2 - 1
    shift -= pairs
    v = v << (2 * pairs)
    half_input = mul_pot(v >> 1, -1)
    x = np.full(v.shape, 1 << 28, dtype=np.int64)  # 1.0 in Q3.28
    for _ in range(5):
        x3 = mul_pot(srdhm(srdhm(x, x), x), 6)  # Q9 product rescaled to Q3
        x = mul_pot(wrap_int32(srdhm(HALF_THREE_Q3, x) - srdhm(half_input, x3)), 3)
    x = srdhm(x, HALF_SQRT_2_Q0)
    x = np.where(shift < 0, wrap_int32(x << np.maximum(-shift, 0)), x)
    shift = np.maximum(shift, 0)
    small = value <= 1
    return np.where(small, INT32_MAX, x), np.where(small, 0, -shift)

"""TFLite integer arithmetic: checked against straightforward integer models of the C code."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcudeploy.arith import (
    INT32_MAX,
    INT32_MIN,
    quantize_multiplier,
    requantize,
    rounding_divide_by_pot,
    srdhm,
)


def c_srdhm(a: int, b: int) -> int:
    """gemmlowp's definition: nudge by +-2**30 and divide truncating toward zero."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _trunc_div(ab + nudge)


def _trunc_div(x: int) -> int:
    q = abs(x) // (1 << 31)
    return q if x >= 0 else -q


def c_rdbpot(x: int, e: int) -> int:
    mask = (1 << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if remainder > threshold else 0)


def test_srdhm_matches_the_truncating_definition() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(INT32_MIN, INT32_MAX, size=20000, endpoint=True)
    b = rng.integers(INT32_MIN, INT32_MAX, size=20000, endpoint=True)
    edges = [INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX, 1 << 30, -(1 << 30)]
    a = np.concatenate([a, np.repeat(edges, len(edges))])
    b = np.concatenate([b, np.tile(edges, len(edges))])
    got = srdhm(a, b)
    want = [c_srdhm(int(x), int(y)) for x, y in zip(a, b, strict=True)]
    np.testing.assert_array_equal(got, want)


def test_srdhm_saturates_only_int32_min_squared() -> None:
    assert int(srdhm(INT32_MIN, INT32_MIN)) == INT32_MAX
    assert int(srdhm(INT32_MIN, INT32_MAX)) == -INT32_MAX


@pytest.mark.parametrize("exponent", [0, 1, 2, 7, 31])
def test_rounding_divide_rounds_halves_away_from_zero(exponent: int) -> None:
    values = np.arange(-300, 301, dtype=np.int64) * 7 + (1 << exponent) // 2
    got = rounding_divide_by_pot(values, exponent)
    np.testing.assert_array_equal(got, [c_rdbpot(int(v), exponent) for v in values])
    assert int(rounding_divide_by_pot(-5, 1)) == -3 and int(rounding_divide_by_pot(5, 1)) == 3


@pytest.mark.parametrize("real", [0.5, 0.75, 1.0, 1.9999999, 3e-5, 0.0072, 123.4, 2.0 ** -31])
def test_quantize_multiplier_represents_the_real_value(real: float) -> None:
    m, shift = quantize_multiplier(real)
    assert (1 << 30) <= m < (1 << 31)
    assert math.isclose(m * 2.0 ** (shift - 31), real, rel_tol=2 ** -30)


def test_quantize_multiplier_rounds_up_to_the_next_power() -> None:
    # a mantissa that rounds to 2**31 becomes 2**30 with the exponent raised
    assert quantize_multiplier(1.0 - 2.0 ** -40) == (1 << 30, 1)
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(2.0 ** -40) == (0, 0)


def test_requantize_both_shift_signs_match_the_c_formula() -> None:
    rng = np.random.default_rng(1)
    acc = rng.integers(-(1 << 20), 1 << 20, size=2000)
    for shift in (-12, -1, 0, 1, 5):
        mult = int(rng.integers(1 << 30, (1 << 31) - 1))
        got = requantize(acc, mult, shift)
        left, right = max(shift, 0), max(-shift, 0)
        want = [c_rdbpot(c_srdhm(int(x) << left, mult), right) for x in acc]
        np.testing.assert_array_equal(got, want)

"""TFLite int8 softmax: gemmlowp fixed-point exp and reciprocal, output scale 1/256, zero point -128."""

from __future__ import annotations

import numpy as np

from mcudeploy.arith import rounding_divide_by_pot, srdhm, wrap_int32
from mcudeploy.arith.fixedpoint import exp_on_negative_values, one_over_one_plus_x
from mcudeploy.arith.params import SOFTMAX_DIFF_INTEGER_BITS, SoftmaxParams

ACCUM_INTEGER_BITS = 12


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
    exps = exp_on_negative_values(scaled, SOFTMAX_DIFF_INTEGER_BITS)
    sums = np.where(valid, rounding_divide_by_pot(exps, ACCUM_INTEGER_BITS), 0)
    total = wrap_int32(sums.sum(axis=1, keepdims=True))
    headroom = _clz32(total)
    bits_over_unit = ACCUM_INTEGER_BITS - headroom
    shifted = wrap_int32(((total << headroom) & 0xFFFFFFFF) - (1 << 31))
    recip = one_over_one_plus_x(shifted)
    out = rounding_divide_by_pot(srdhm(recip, exps), bits_over_unit + 31 - 8) - 128
    out = np.where(valid, np.clip(out, -128, 127), -128)
    return out.reshape(x.shape).astype(np.int8)

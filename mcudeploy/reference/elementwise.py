"""Element-wise ADD, SUB, SQUARED_DIFFERENCE and MUL in TFLite int8 semantics, with numpy broadcasting."""

from __future__ import annotations

import numpy as np

from mcudeploy.arith import requantize, wrap_int32
from mcudeploy.arith.params import AddParams, MulParams


def add(a: np.ndarray, b: np.ndarray, p: AddParams) -> np.ndarray:
    """Both inputs shifted left, rescaled to a common scale, summed and requantized."""
    va = wrap_int32((a.astype(np.int64) + p.input1_offset) << p.left_shift)
    vb = wrap_int32((b.astype(np.int64) + p.input2_offset) << p.left_shift)
    total = requantize(va, p.input1_multiplier, p.input1_shift) + requantize(
        vb, p.input2_multiplier, p.input2_shift
    )
    out = requantize(wrap_int32(total), p.output_multiplier, p.output_shift) + p.output_offset
    return np.clip(out, p.act_min, p.act_max).astype(np.int8)


def sub(a: np.ndarray, b: np.ndarray, p: AddParams) -> np.ndarray:
    """TFLite SUB: as ADD, the second rescaled input subtracted from the first."""
    va = wrap_int32((a.astype(np.int64) + p.input1_offset) << p.left_shift)
    vb = wrap_int32((b.astype(np.int64) + p.input2_offset) << p.left_shift)
    difference = requantize(va, p.input1_multiplier, p.input1_shift) - requantize(
        vb, p.input2_multiplier, p.input2_shift
    )
    out = requantize(wrap_int32(difference), p.output_multiplier, p.output_shift) + p.output_offset
    return np.clip(out, p.act_min, p.act_max).astype(np.int8)


def squared_difference(a: np.ndarray, b: np.ndarray, p: AddParams) -> np.ndarray:
    """TFLite SQUARED_DIFFERENCE: the inputs rescaled as ADD's (left shift 7), the difference
    squared, requantized."""
    va = wrap_int32((a.astype(np.int64) + p.input1_offset) << p.left_shift)
    vb = wrap_int32((b.astype(np.int64) + p.input2_offset) << p.left_shift)
    difference = requantize(va, p.input1_multiplier, p.input1_shift) - requantize(
        vb, p.input2_multiplier, p.input2_shift
    )
    squared = wrap_int32(difference * difference)
    out = requantize(squared, p.output_multiplier, p.output_shift) + p.output_offset
    return np.clip(out, p.act_min, p.act_max).astype(np.int8)


def mul(a: np.ndarray, b: np.ndarray, p: MulParams) -> np.ndarray:
    """The product of the offset inputs, requantized."""
    product = wrap_int32((a.astype(np.int64) + p.input1_offset) * (b.astype(np.int64) + p.input2_offset))
    out = requantize(product, p.output_multiplier, p.output_shift) + p.output_offset
    return np.clip(out, p.act_min, p.act_max).astype(np.int8)

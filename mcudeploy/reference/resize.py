"""TFLite int8 RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR, as TFLM computes them.

Both work per axis (H, then W) from a table of source positions that depends only on the sizes and
the two flags; the generated C reads the same tables, computed here.

- Nearest: scale = in / out (align_corners: (in - 1) / (out - 1)) in float32, the source
  floor((i + offset) * scale) (align_corners: rounded half away from zero), offset 0.5 with
  half_pixel_centers, clamped to [0, in - 1] (below only with half_pixel_centers).
- Bilinear (int8: TFLM's integer kernel, no float): the scale in 1/1024 units,
  round(1024 * in / out) in integers (align_corners: (in - 1) / (out - 1)); the source position
  p = i * scale (half_pixel_centers: + scale / 2 - 512), low = max(p / 1024, 0) and
  high = min((p + 1023) / 1024, in - 1) with C's division, the weight of `high` p - 1024 * low.
  The four neighbours' weighted sum (in 1/2^20) is rounded half away from zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcudeploy.ir import Resize

ONE = 1 << 10  # TFLM's bilinear fixed point: 10 fractional bits per axis


def _c_div(a: np.ndarray, b: int) -> np.ndarray:
    """C's integer division (truncating toward zero) of int64 `a` by positive `b`."""
    return np.sign(a) * (np.abs(a) // b)


def nearest_sources(in_size: int, out_size: int, attrs: Resize) -> np.ndarray:
    """The source index of every output index along one axis (TFLite's GetNearestNeighbor)."""
    if attrs.align_corners and out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    offset = np.float32(0.5 if attrs.half_pixel_centers else 0.0)
    position = (np.arange(out_size, dtype=np.float32) + offset) * np.float32(scale)
    # align_corners: std::round of a position >= 0, exact in float64
    source = np.floor(position.astype(np.float64) + 0.5) if attrs.align_corners else np.floor(position)
    source = np.minimum(source.astype(np.int64), in_size - 1)
    return np.maximum(source, 0) if attrs.half_pixel_centers else source


@dataclass(frozen=True)
class BilinearAxis:
    """Along one axis, per output index: the two source indices and the weight (in 1/1024) of
    `high`; `low` gets 1024 - weight."""

    low: np.ndarray
    high: np.ndarray
    weight: np.ndarray


def bilinear_axis(in_size: int, out_size: int, attrs: Resize) -> BilinearAxis:
    """TFLM's ComputeInterpolationValuesInteger for every output index along one axis."""
    if attrs.align_corners and out_size > 1:
        scale = (ONE * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    else:
        scale = (ONE * in_size + out_size // 2) // out_size
    position = np.arange(out_size, dtype=np.int64) * scale
    if attrs.half_pixel_centers:
        position += scale // 2 - ONE // 2
    low = np.maximum(_c_div(position, ONE), 0)
    high = np.minimum(_c_div(position + ONE - 1, ONE), in_size - 1)
    return BilinearAxis(low, high, position - ONE * low)


def bilinear_fault(in_hw: tuple[int, int], out_hw: tuple[int, int], attrs: Resize) -> str | None:
    """Why TFLM's integer bilinear kernel cannot be reproduced for these sizes (a source index
    outside the input, which TFLM would read out of bounds, or a weighted sum that would not fit
    int32, which the generated C uses), or None."""
    for axis, (n_in, n_out) in zip("HW", zip(in_hw, out_hw, strict=True), strict=True):
        a = bilinear_axis(n_in, n_out, attrs)
        if a.low.max() > n_in - 1:
            return f"{axis} {n_in} -> {n_out}: TFLM's integer kernel reads index {int(a.low.max())}"
    ay, ax = (bilinear_axis(i, o, attrs) for i, o in zip(in_hw, out_hw, strict=True))
    wy = np.abs(ONE - ay.weight) + np.abs(ay.weight)
    wx = np.abs(ONE - ax.weight) + np.abs(ax.weight)
    if 128 * int(wy.max()) * int(wx.max()) + (1 << 19) >= 2**31:
        return f"{list(in_hw)} -> {list(out_hw)}: weights beyond the int32 sums of the generated kernel"
    return None


def resize(x: np.ndarray, out_hw: tuple[int, int], attrs: Resize) -> np.ndarray:
    """Resize H and W of the int8 NHWC `x` to `out_hw`, as TFLM's int8 kernels do."""
    (in_h, in_w), (out_h, out_w) = x.shape[1:3], out_hw
    if attrs.mode == "nearest":
        rows, cols = nearest_sources(in_h, out_h, attrs), nearest_sources(in_w, out_w, attrs)
        return np.ascontiguousarray(x[:, rows][:, :, cols])
    ay, ax = bilinear_axis(in_h, out_h, attrs), bilinear_axis(in_w, out_w, attrs)
    v = x.astype(np.int64)
    wy = ay.weight[None, :, None, None]
    wx = ax.weight[None, None, :, None]
    top = v[:, ay.low][:, :, ax.low] * (ONE - wx) + v[:, ay.low][:, :, ax.high] * wx
    bottom = v[:, ay.high][:, :, ax.low] * (ONE - wx) + v[:, ay.high][:, :, ax.high] * wx
    total = top * (ONE - wy) + bottom * wy
    rounded = _c_div(total + np.where(total > 0, 1 << 19, -(1 << 19)), 1 << 20)
    return rounded.astype(np.int8)

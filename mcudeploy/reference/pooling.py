"""Average and max pooling in TFLite int8 semantics (the window is clipped to the input)."""

from __future__ import annotations

import numpy as np

from mcudeploy.arith import requantize
from mcudeploy.arith.params import MeanParams, PoolParams
from mcudeploy.ir import Pool2D


def pool2d(x: np.ndarray, attrs: Pool2D, p: PoolParams, out_shape: tuple[int, ...]) -> np.ndarray:
    """Pooling over x [N,H,W,C] into out_shape; padded positions are not counted."""
    _, h, w, _ = x.shape
    _, oh, ow, _ = out_shape
    (kh, kw), (sh, sw), pad = attrs.window, attrs.stride, attrs.padding
    out = np.empty(out_shape, dtype=np.int64)
    xs = x.astype(np.int64)
    for oy in range(oh):
        y0 = oy * sh - pad.top
        ys = slice(max(y0, 0), min(y0 + kh, h))
        for ox in range(ow):
            x0 = ox * sw - pad.left
            window = xs[:, ys, max(x0, 0) : min(x0 + kw, w), :]
            if attrs.mode == "max":
                out[:, oy, ox, :] = window.max(axis=(1, 2))
            else:
                count = window.shape[1] * window.shape[2]
                total = window.sum(axis=(1, 2))
                # C division truncates toward zero; rounding is half away from zero.
                num = np.where(total > 0, total + count // 2, total - count // 2)
                out[:, oy, ox, :] = np.sign(num) * (np.abs(num) // count)
    return np.clip(out, p.act_min, p.act_max).astype(np.int8)


def mean(x: np.ndarray, p: MeanParams) -> np.ndarray:
    """TFLite int8 MEAN over H and W: the offset sum requantized by s_in / (s_out * count)."""
    total = x.astype(np.int64).sum(axis=(1, 2)) - p.input_zero_point * p.count
    return np.clip(requantize(total, p.multiplier, p.shift) + p.output_zero_point, -128, 127).astype(np.int8)

"""Convolution, depthwise convolution and fully connected layers in TFLite int8 semantics."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mcudeploy.arith import requantize
from mcudeploy.arith.params import ConvParams
from mcudeploy.ir import Padding


def _windows(
    x: np.ndarray, offset: int, kernel: tuple[int, int], stride: tuple[int, int],
    dilation: tuple[int, int], padding: Padding, out_hw: tuple[int, int],
) -> np.ndarray:
    """[N, OH, OW, C, KH, KW] views of (x + offset), with padding contributing zero."""
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_hw
    need_h = (oh - 1) * sh + (kh - 1) * dh + 1
    need_w = (ow - 1) * sw + (kw - 1) * dw + 1
    xo = np.zeros((n, padding.top + max(h, need_h) + 1, padding.left + max(w, need_w) + 1, c))
    xo[:, padding.top : padding.top + h, padding.left : padding.left + w, :] = x.astype(np.float64) + offset
    xo = xo[:, :need_h, :need_w, :]
    win = sliding_window_view(xo, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(1, 2))
    return win[:, ::sh, ::sw, :, ::dh, ::dw][:, :oh, :ow]


def _finish(acc: np.ndarray, p: ConvParams) -> np.ndarray:
    acc = np.rint(acc).astype(np.int64) + p.bias.astype(np.int64)
    out = requantize(acc, p.multiplier.astype(np.int64), p.shift.astype(np.int64))
    return np.clip(out + p.output_offset, p.act_min, p.act_max).astype(np.int8)


def conv2d(
    x: np.ndarray, w: np.ndarray, p: ConvParams, stride: tuple[int, int],
    dilation: tuple[int, int], padding: Padding, out_shape: tuple[int, ...],
) -> np.ndarray:
    """Grouped 2-D convolution: x [N,H,W,C_in], w OHWI [C_out,KH,KW,C_in/groups]."""
    c_out, kh, kw, c_f = w.shape
    groups = x.shape[3] // c_f
    win = _windows(x, p.input_offset, (kh, kw), stride, dilation, padding, out_shape[1:3])
    per_group = c_out // groups
    parts = []
    for g in range(groups):
        wg = w[g * per_group : (g + 1) * per_group].astype(np.float64)  # [O, KH, KW, C_f]
        xg = win[:, :, :, g * c_f : (g + 1) * c_f]  # [N, OH, OW, C_f, KH, KW]
        parts.append(np.einsum("nhwcij,oijc->nhwo", xg, wg, optimize=True))
    return _finish(np.concatenate(parts, axis=-1), p)


def depthwise_conv2d(
    x: np.ndarray, w: np.ndarray, p: ConvParams, stride: tuple[int, int],
    dilation: tuple[int, int], padding: Padding, multiplier: int, out_shape: tuple[int, ...],
) -> np.ndarray:
    """Depthwise convolution: w [1,KH,KW,C_out], output channel o reads input channel o // m."""
    _, kh, kw, _ = w.shape
    win = _windows(x, p.input_offset, (kh, kw), stride, dilation, padding, out_shape[1:3])
    win = np.repeat(win, multiplier, axis=3)  # [N, OH, OW, C_out, KH, KW]
    acc = np.einsum("nhwoij,ijo->nhwo", win, w[0].astype(np.float64), optimize=True)
    return _finish(acc, p)


def fully_connected(x: np.ndarray, w: np.ndarray, p: ConvParams) -> np.ndarray:
    """N rows of K inputs times the transposed filter [C_out, K]."""
    rows = x.reshape(-1, w.shape[1]).astype(np.float64) + p.input_offset
    return _finish(rows @ w.astype(np.float64).T, p)

"""Padding and output-size arithmetic shared by the frontends and the support checks."""

from __future__ import annotations

from mcudeploy.ir import Padding


def same_padding(
    in_hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
    dilation: tuple[int, int],
) -> Padding:
    """TFLite SAME padding: output = ceil(in / stride), the odd extra row/column at the end."""
    pads = []
    for size, k, s, d in zip(in_hw, kernel, stride, dilation, strict=True):
        out = -(-size // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    return Padding(top=top, bottom=bottom, left=left, right=right)


def output_size(size: int, kernel: int, stride: int, dilation: int, before: int, after: int) -> int:
    """Output length of a window sliding over `size` elements with explicit padding."""
    effective = (kernel - 1) * dilation + 1
    return (size + before + after - effective) // stride + 1

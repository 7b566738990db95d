"""The overlap a walk allows (mcudeploy.codegen.access_order): the formula against a byte-by-byte
simulation of the walk, and the figures derived by hand for the common layers."""

from __future__ import annotations

import numpy as np
import pytest

from mcudeploy.codegen.access_order import (
    NO_READ,
    Walk,
    Window,
    band_shift,
    lowest_reads,
    overlap_shift,
    ring_gap,
    ring_shift,
)
from mcudeploy.codegen.lower import Dims


def random_window(rng: np.random.Generator) -> Window:
    h, w, c = (int(v) for v in rng.integers(1, 9, size=3))
    kernel = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    padding = (int(rng.integers(0, kernel[0])), int(rng.integers(0, kernel[1])))
    out_h = max(1, (h + 2 * padding[0] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1)
    out_w = max(1, (w + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1)
    return Window(Dims(1, h, w, c), Dims(1, out_h, out_w, int(rng.integers(1, 9))), kernel, stride,
                  dilation, padding)


def reads_of(w: Window, pixel: int) -> list[int]:
    """Every input byte output pixel `pixel`'s window reads, from the geometry alone."""
    oy, ox = divmod(pixel, w.output.w)
    out = []
    for ky in range(w.kernel[0]):
        for kx in range(w.kernel[1]):
            y = oy * w.stride[0] - w.padding[0] + ky * w.dilation[0]
            x = ox * w.stride[1] - w.padding[1] + kx * w.dilation[1]
            if 0 <= y < w.input.h and 0 <= x < w.input.w:
                out += range((y * w.input.w + x) * w.input.c, (y * w.input.w + x + 1) * w.input.c)
    return out


def clobbers(w: Window, walk: Walk, shift: int) -> bool:
    """Run the walk on bytes, the output `shift` bytes below the input: does a read find a byte
    that a write replaced? Within a group, all writes come first unless `reads_first`, but for the
    last `last_bytes` of the group's output, after its reads (the worst order the walk allows)."""
    written = set()
    pixels = w.output.h * w.output.w
    for start in range(0, pixels, walk.group):
        group = range(start, min(start + walk.group, pixels))
        reads = {r for p in group for r in reads_of(w, p)}
        end = (group[-1] + 1) * w.output.c
        writes = set(range(group[0] * w.output.c - shift, end - shift))
        if not walk.reads_first:
            written |= writes - set(range(end - walk.last_bytes - shift, end - shift))
        if reads & written:
            return True
        written |= writes
    return False


@pytest.mark.parametrize("seed", range(120))
def test_the_shift_is_the_least_the_walk_allows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = random_window(rng)
    first = bool(rng.integers(2))
    group = int(rng.choice([1, 2, 4, w.output.w]))
    walk = Walk(group, first, 0 if first else int(rng.integers(0, w.output.c + 1)))
    shift = overlap_shift(w, walk)
    assert not clobbers(w, walk, shift)
    if shift > 0:
        assert clobbers(w, walk, shift - 1)


def test_lowest_reads_follow_the_window() -> None:
    w = Window(Dims(1, 5, 4, 2), Dims(1, 3, 2, 1), (3, 3), (2, 2), (1, 1), (1, 1))
    np.testing.assert_array_equal(lowest_reads(w), [min(reads_of(w, p)) for p in range(6)])


def test_shifts_of_the_common_layers() -> None:
    # A 3x3 depthwise, stride 1, padding 1, pixel by pixel: output pixel (y, x) reads input (y - 1, x - 1)
    # onwards and writes up to the end of (y, x): the input must stay W + 2 pixels ahead.
    dw = Window(Dims(1, 24, 24, 32), Dims(1, 24, 24, 32), (3, 3), (1, 1), (1, 1), (1, 1))
    assert overlap_shift(dw, Walk(1, False)) == 26 * 32
    # A 1x1 convolution doubling the channels: the output overtakes the input by 16 bytes a pixel,
    # so the input sits in the output's upper half, 16 * (P - 1) + 32 bytes up.
    pw = Window(Dims(1, 24, 24, 16), Dims(1, 24, 24, 32), (1, 1), (1, 1), (1, 1), (0, 0))
    assert overlap_shift(pw, Walk(1, False)) == 16 * (24 * 24 - 1) + 32
    # Four pixels at a time, read before written: the first group's 4 outputs may overwrite the
    # 4 input pixels it read (equal channels), nothing more.
    same = Window(Dims(1, 8, 8, 16), Dims(1, 8, 8, 16), (1, 1), (1, 1), (1, 1), (0, 0))
    assert overlap_shift(same, Walk(4, True)) == 0 and overlap_shift(same, Walk(4, False)) == 4 * 16
    # A stride-2 3x3 convolution from 3 to 8 channels (MobileNet's first layer): 102 bytes.
    first = Window(Dims(1, 96, 96, 3), Dims(1, 48, 48, 8), (3, 3), (2, 2), (1, 1), (0, 0))
    assert overlap_shift(first, Walk(1, False)) == 8 * 48 - 6 * 47


def test_band_shift() -> None:
    # Band i writes rows up to writes_end[i] after its own reads; later bands read from reads_low.
    assert band_shift([10, 20, 30], [0, 5, 12]) == 20 - 12
    assert band_shift([10, 20, 30], [0, 10, 20]) == 0
    assert band_shift([4], [100]) == 0


def ring_clobbers(w: Window, shift: int) -> bool:
    """Run a ring kernel (mcd_depthwise_*) on bytes, the output `shift` bytes below the input: each
    output row first copies whole the input rows its window reads that are not in the ring yet (a
    ring of KH rows: a row read must still be there), then writes the row. Does a copy find a byte
    that a write replaced?"""
    written: set[int] = set()
    ring: set[int] = set()
    row_bytes, out_row = w.input.w * w.input.c, w.output.w * w.output.c
    for oy in range(w.output.h):
        top = oy * w.stride[0] - w.padding[0]
        rows = {y for y in range(top, top + w.kernel[0]) if 0 <= y < w.input.h}
        for y in sorted(rows - ring):
            if written & set(range(y * row_bytes, (y + 1) * row_bytes)):
                return True
        ring = rows | {y for y in ring if y > max(rows, default=-1) - w.kernel[0]}
        written |= set(range(oy * out_row - shift, (oy + 1) * out_row - shift))
    return False


@pytest.mark.parametrize("seed", range(60))
def test_the_ring_shift_is_the_least_a_ring_of_rows_allows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = random_window(rng)
    w = Window(w.input, Dims(1, w.output.h, w.output.w, w.input.c), w.kernel, w.stride, (1, 1), w.padding)
    gap = ring_gap(w)
    assert ring_shift(w) == max(0, gap) and not ring_clobbers(w, ring_shift(w))
    if gap > -NO_READ // 2:  # some row is copied after another is written: one byte less clobbers it
        assert not ring_clobbers(w, gap) and ring_clobbers(w, gap - 1)


def test_a_ring_of_rows_lets_a_depthwise_layer_write_over_its_input() -> None:
    # 3x3, stride 1, padding 1: row oy is written after rows up to oy + 1 were copied, over row oy.
    # Even one row above it: output row oy over input row oy + 1, copied before row oy is written.
    dw = Window(Dims(1, 24, 24, 32), Dims(1, 24, 24, 32), (3, 3), (1, 1), (1, 1), (1, 1))
    assert ring_shift(dw) == 0 and ring_gap(dw) == -24 * 32
    # No padding on top: output row oy (of H - 2) lies over input row oy, rows oy..oy+2 copied.
    valid = Window(Dims(1, 10, 6, 8), Dims(1, 8, 4, 8), (3, 3), (1, 1), (1, 1), (0, 0))
    assert ring_shift(valid) == 0
    # A 1x3 window over a one-pixel-wide input padded 2 each side: output rows of 12 B over input
    # rows of 4 B. Row oy writes up to 12 (oy + 1) before row oy + 1 copies input from 4 (oy + 1):
    # 8 (oy + 1) bytes, the most for the last row a later copy follows (oy = 2): 24.
    assert ring_shift(Window(Dims(1, 4, 1, 4), Dims(1, 4, 3, 4), (1, 3), (1, 1), (1, 1), (0, 2))) == 24

"""How far a layer's output may overlap its input: from the order in which the library's kernel
reads the input and writes the output, never assumed.

vMCU's observation: a kernel that walks its output in raster order reads, at any moment, only the
input from some row onwards, so its output may start a little below its input and grow over the
input's bytes that nothing will read again. How little is a property of the kernel's code:

- A `Walk` describes one kernel, as read from its source: it computes the output `group` pixels
  at a time in raster order (batch, row, column), all output channels of a pixel together; a group
  reads only the input pixels of its windows and writes only its own output pixels; groups run one
  after the other. `reads_first`: each group copies all its input (im2col) before it writes.
  Otherwise reads and writes of a group may interleave, except that the last `last_bytes` bytes of
  its output are written after its last read (a kernel that reads a pixel again for each block of
  output channels writes the last block after the last read).
  A kernel that reads the input again after writing part of the output in another order (output
  channels outermost, say) has no walk: its output may not overlap its input at all.
- `overlap_shift` turns a walk and a layer's geometry into bytes: the output may be placed that
  many bytes below the input's start, or lower. For every group g, the last byte g writes must lie
  below the lowest input byte that group g (g + 1 with `reads_first`) or any later group reads;
  with `last_bytes`, the bytes before them below group g's, and all below group g + 1's.

- A kernel that keeps a ring of input rows (`ring_shift`) walks the output a row at a time:
  before each output row it copies, whole, the input rows its windows reach that it has not
  copied yet, then computes the row from its copies only.

Which walk each library's kernels (and mcudeploy's generated ones) have is in
mcudeploy.codegen.walks, read from their code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcudeploy.codegen.lower import Dims, Layer

NO_READ = 2**62


@dataclass(frozen=True)
class Walk:
    """A kernel's order: `group` output pixels at a time, in raster order (see the module)."""

    group: int
    reads_first: bool
    last_bytes: int = 0


@dataclass(frozen=True)
class Window:
    """A layer's geometry, as the kernel sees it (batch 1)."""

    input: Dims
    output: Dims
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: tuple[int, int]  # top, left

    @staticmethod
    def of(layer: Layer) -> Window:
        v = layer.values
        f = v["filter_dims"]
        return Window(v["input_dims"], v["output_dims"], (f.h, f.w), tuple(v["stride"]),
                      tuple(v["dilation"]), tuple(v["padding"]))


def _first_read(out_size: int, in_size: int, k: int, s: int, d: int, p: int) -> np.ndarray:
    """For each output index along one axis, the first input index its window reads (in_size when
    the window reads none)."""
    origin = np.arange(out_size) * s - p
    skip = np.where(origin < 0, (-origin + d - 1) // d, 0)
    first = origin + skip * d
    return np.where((skip < k) & (first < in_size), first, in_size)


def lowest_reads(w: Window) -> np.ndarray:
    """For each output pixel in raster order, the lowest input byte (offset in the input) its window
    reads; `NO_READ` for a pixel whose window lies in the padding."""
    i, o = w.input, w.output
    rows = _first_read(o.h, i.h, w.kernel[0], w.stride[0], w.dilation[0], w.padding[0])
    cols = _first_read(o.w, i.w, w.kernel[1], w.stride[1], w.dilation[1], w.padding[1])
    low = (rows[:, None] * i.w + cols[None, :]) * i.c
    none = (rows[:, None] >= i.h) | (cols[None, :] >= i.w)
    return np.where(none, NO_READ, low).reshape(-1)


def overlap_shift(w: Window, walk: Walk) -> int:
    """Bytes the output must start below the input, at least, for `walk` over `w` (batch 1)."""
    low = lowest_reads(w)
    pixels = low.size
    starts = np.arange(0, pixels, walk.group)
    ends = np.minimum(starts + walk.group, pixels)
    # The lowest byte read from each pixel on: suffix minima.
    later = np.minimum.accumulate(low[::-1])[::-1]
    future = np.append(later, NO_READ)
    written_end = ends * w.output.c
    gaps = written_end - future[ends]
    if not walk.reads_first:
        gaps = np.maximum(gaps, written_end - walk.last_bytes - future[starts])
    return int(max(0, np.max(gaps, initial=0)))


def band_shift(writes_end: list[int], reads_low: list[int]) -> int:
    """The same rule for a schedule of steps: step i writes output bytes below `writes_end[i]` after
    all its input reads, and steps after it read input bytes from `reads_low[j]` (j > i) up."""
    return max(0, band_gap(writes_end, reads_low))


def band_gap(writes_end: list[int], reads_low: list[int]) -> int:
    """`band_shift` before it is bounded below by 0: negative when the output could even start
    above the input (near -NO_READ when no step reads after another writes)."""
    later = np.minimum.accumulate(np.asarray([NO_READ, *reads_low[::-1]]))[::-1]
    gaps = np.asarray(writes_end) - later[1:]
    return int(np.max(gaps, initial=-NO_READ))


def ring_shift(w: Window) -> int:
    """`ring_gap`, at least 0 (the output starts at or below the input)."""
    return max(0, ring_gap(w))


def ring_gap(w: Window) -> int:
    """The least shift for a kernel with a ring of input rows (see the module), batch 1, undilated: before
    output row oy it copies input rows from the next not yet copied (or the window's first,
    iy0 = oy * stride - pad_top, if that is further) to min(iy0 + KH - 1, H - 1), then writes the
    row's outputs."""
    i, o = w.input, w.output
    row_bytes, next_row = i.w * i.c, 0
    writes_end, reads_low = [], []
    for oy in range(o.h):
        iy0 = oy * w.stride[0] - w.padding[0]
        last = min(iy0 + w.kernel[0] - 1, i.h - 1)
        next_row = max(next_row, iy0)
        reads_low.append(next_row * row_bytes if next_row <= last else NO_READ)
        next_row = max(next_row, last + 1)
        writes_end.append((oy + 1) * o.w * o.c)
    return band_gap(writes_end, reads_low)

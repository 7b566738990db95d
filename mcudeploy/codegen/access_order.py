"""How far a layer's output may overlap its input: from the order in which the library's kernel
reads the input and writes the output, never assumed.

vMCU's observation: a kernel that walks its output in raster order reads, at any moment, only the
input from some row onwards, so its output may start a little below its input and grow over the
input's bytes that nothing will read again. How little is a property of the kernel's code:

- A `Walk` describes one kernel, as read from its source: it computes the output `group` pixels
  at a time in raster order (batch, row, column), all output channels of a pixel together; a group
  reads only the input pixels of its windows and writes only its own output pixels; groups run one
  after the other. `reads_first`: each group copies all its input (im2col) before it writes.
  A kernel that reads the input again after writing part of the output in another order (output
  channels outermost, say) has no walk: its output may not overlap its input at all.
- `overlap_shift` turns a walk and a layer's geometry into bytes: the output may be placed that
  many bytes below the input's start, or lower. For every group g, the last byte g writes must lie
  below the lowest input byte that group g (g + 1 with `reads_first`) or any later group reads.
- A `Release` is a library whose kernels were read: the files read (by SHA-256), the wrapper's
  dispatch (which kernel runs a layer, for a CPU class) and each kernel's walk. A library is taken
  for a release only when every one of those files is byte-identical to what was read; anything
  else (another release, a patched file) gets no overlap.

The table below is what the code says; tests/test_overlap.py runs overlapped layers on QEMU,
bit-exact with the host reference and TFLM, for nnref and for Arm's kernels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from mcudeploy.build import NNLibrary
from mcudeploy.codegen.lower import Dims, Layer


@dataclass(frozen=True)
class Walk:
    """A kernel's order: `group` output pixels at a time, in raster order (see the module)."""

    group: int
    reads_first: bool


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
    """For each output pixel in raster order, the lowest input byte (offset in the input) any of
    its windows reads; the input's size for a pixel that reads nothing."""
    i, o = w.input, w.output
    rows = _first_read(o.h, i.h, w.kernel[0], w.stride[0], w.dilation[0], w.padding[0])
    cols = _first_read(o.w, i.w, w.kernel[1], w.stride[1], w.dilation[1], w.padding[1])
    low = (rows[:, None] * i.w + cols[None, :]) * i.c
    none = (rows[:, None] >= i.h) | (cols[None, :] >= i.w)
    return np.where(none, i.h * i.w * i.c, low).reshape(-1)


def overlap_shift(w: Window, walk: Walk) -> int:
    """Bytes the output must start below the input, at least, for `walk` over `w` (batch 1)."""
    low = lowest_reads(w)
    pixels = low.size
    starts = np.arange(0, pixels, walk.group)
    ends = np.minimum(starts + walk.group, pixels)
    # The lowest byte read from each pixel on: suffix minima.
    later = np.minimum.accumulate(low[::-1])[::-1]
    first_reader = ends if walk.reads_first else starts
    future = np.append(later, np.iinfo(np.int64).max)[first_reader]
    written_end = ends * w.output.c
    return int(max(0, np.max(written_end - future, initial=0)))


def band_shift(writes_end: list[int], reads_low: list[int]) -> int:
    """The same rule for a schedule of steps: step i writes output bytes below `writes_end[i]` after
    all its input reads, and steps after it read input bytes from `reads_low[j]` (j > i) up."""
    later = np.minimum.accumulate(np.asarray([*reads_low[::-1], np.iinfo(np.int64).max]))[::-1]
    gaps = np.asarray(writes_end) - later[1:]
    return int(max(0, np.max(gaps, initial=0)))


# ---- The releases whose kernels were read ----

Dispatch = Callable[[Layer, str], Walk | None]


@dataclass(frozen=True)
class Release:
    """A library whose kernels' access order was read from its code: `files` maps each file read
    (by name) to the SHA-256 digests of the versions read; `conv` and `depthwise` give the walk of
    the kernel that the wrapper calls for a layer on a CPU class (None: no overlap)."""

    name: str
    files: dict[str, frozenset[str]]
    conv: Dispatch
    depthwise: Dispatch


PER_PIXEL = Walk(1, reads_first=False)

# nnref: arm_convolve_wrapper_s8 and arm_depthwise_conv_wrapper_s8 are the kernels. Both loop over
# batch, output row, output column; for each pixel they read the rows and columns of its window
# that lie inside the input (arm_nn_kernel_range), of the channel group (convolution) or channel
# block (depthwise) being computed, and write that pixel's output channels before the next pixel.
NNREF = Release(
    "nnref",
    {"arm_convolve_wrapper_s8.c": frozenset({
        "aaf4e9ec1e5a9d944bb58459f99c525b748e54af3bebb609a4aea22f945070d0"}),
     "arm_depthwise_conv_wrapper_s8.c": frozenset({
         "406438a461bec7d9b59e28c27576394d002e57ea32f2c12ca92070680b3fba59"})},
    conv=lambda layer, cpu: PER_PIXEL,
    depthwise=lambda layer, cpu: PER_PIXEL,
)

RELEASES: tuple[Release, ...] = (NNREF,)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@cache
def release_of(library: NNLibrary) -> Release | None:
    """The release whose every file read is in `library`, byte for byte; None if there is none."""
    by_name: dict[str, Path] = {}
    for path in library.sources:
        by_name.setdefault(path.name, path)
    for folder in library.include_dirs:
        for header in sorted(Path(folder).glob("*.h")):
            by_name.setdefault(header.name, header)
    for release in RELEASES:
        if all(name in by_name and _sha256(by_name[name]) in digests
               for name, digests in release.files.items()):
            return release
    return None


OVERLAP_TEMPLATES = {"conv2d.c.j2": "conv", "depthwise_conv2d.c.j2": "depthwise"}


def layer_shift(layer: Layer, library: NNLibrary, cpu_class: str) -> int | None:
    """How many bytes below its input `layer`'s output may start, proved from the library's code;
    None when the library, the kernel or the layer (batch > 1) is not covered."""
    kind = OVERLAP_TEMPLATES.get(layer.template)
    if kind is None or layer.values["input_dims"].n != 1:
        return None
    release = release_of(library)
    if release is None:
        return None
    walk = getattr(release, kind)(layer, cpu_class)
    if walk is None:
        return None
    return overlap_shift(Window.of(layer), walk)

"""How an ONNX tensor (channels first) maps onto its IR tensor (channels last).

This is the one place where NCHW becomes NHWC: every ONNX tensor the importer creates gets a
`Layout`, which converts data both ways (for inputs, calibration data and comparisons with
onnxruntime) and tells the importer how to re-lay weights that read the tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Layout:
    """`kind` is one of:
    - "plain": the same shape and order in both;
    - "nchw": ONNX [N, C, H, W] is IR [N, H, W, C];
    - "ncl": ONNX [N, C, L] (1-D convolutions) is IR [N, 1, L, C];
    - "flat": ONNX [N, C*H*W] (a flattened NCHW tensor) is IR [N, H*W*C]; `spatial` is (C, H, W).
    """

    kind: str
    onnx_shape: tuple[int, ...]
    spatial: tuple[int, int, int] = (0, 0, 0)

    @property
    def ir_shape(self) -> tuple[int, ...]:
        s = self.onnx_shape
        if self.kind == "nchw":
            return (s[0], s[2], s[3], s[1])
        if self.kind == "ncl":
            return (s[0], 1, s[2], s[1])
        return s

    def axis_to_ir(self, axis: int) -> int:
        """The IR axis of ONNX axis `axis` (negative allowed)."""
        rank = len(self.onnx_shape)
        axis = axis + rank if axis < 0 else axis
        if self.kind == "nchw":
            return (0, 3, 1, 2)[axis]
        if self.kind == "ncl":
            return (0, 3, 2)[axis]
        return axis

    def to_ir(self, value: np.ndarray) -> np.ndarray:
        """ONNX-ordered data (with the batch dimension) to IR order."""
        if self.kind == "nchw":
            return np.ascontiguousarray(value.transpose(0, 2, 3, 1))
        if self.kind == "ncl":
            return np.ascontiguousarray(value.transpose(0, 2, 1)[:, None])
        if self.kind == "flat":
            c, h, w = self.spatial
            n = value.shape[0]
            return np.ascontiguousarray(value.reshape(n, c, h, w).transpose(0, 2, 3, 1).reshape(n, -1))
        return value

    def to_onnx(self, value: np.ndarray) -> np.ndarray:
        """IR-ordered data back to ONNX order."""
        if self.kind == "nchw":
            return np.ascontiguousarray(value.transpose(0, 3, 1, 2))
        if self.kind == "ncl":
            return np.ascontiguousarray(value[:, 0].transpose(0, 2, 1))
        if self.kind == "flat":
            c, h, w = self.spatial
            n = value.shape[0]
            return np.ascontiguousarray(value.reshape(n, h, w, c).transpose(0, 3, 1, 2).reshape(n, -1))
        return value

    def column_order(self) -> np.ndarray:
        """For "flat": which ONNX column each IR column is (to permute a consumer's weights)."""
        c, h, w = self.spatial
        return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)

    @property
    def trivial_flat(self) -> bool:
        """A flattened tensor whose order does not change (H*W == 1 or C == 1)."""
        c, h, w = self.spatial
        return self.kind == "flat" and (h * w == 1 or c == 1)


def onnx_positions(layout: Layout) -> np.ndarray:
    """For each element of the IR tensor, in IR order, its flat index in ONNX order."""
    count = int(np.prod(layout.onnx_shape, dtype=np.int64))
    return layout.to_ir(np.arange(count).reshape(layout.onnx_shape)).reshape(-1)


def candidates(source: Layout, onnx_shape: tuple[int, ...]) -> list[Layout]:
    """The layouts a tensor of `onnx_shape` computed from a tensor of `source` layout may take, in
    order of preference: the source's own kind, plain, channels-first, flattened channels-first."""
    shape = tuple(onnx_shape)
    found = []
    if source.kind == "flat" and shape == source.onnx_shape:
        found.append(source)
    if source.kind in ("nchw", "ncl") and len(shape) == len(source.onnx_shape):
        found.append(Layout(source.kind, shape))
    found.append(Layout("plain", shape))
    if len(shape) == 4:
        found.append(Layout("nchw", shape))
    if len(shape) == 3:
        found.append(Layout("ncl", shape))
    if len(shape) == 2 and source.kind in ("nchw", "ncl", "flat"):
        s = source.onnx_shape
        spatial = source.spatial if source.kind == "flat" else \
            (s[1], s[2], s[3]) if source.kind == "nchw" else (s[1], 1, s[2])
        if shape == (s[0], spatial[0] * spatial[1] * spatial[2]):
            found.append(Layout("flat", shape, spatial))
    unique = []
    for layout in found:
        if layout not in unique:
            unique.append(layout)
    return unique

"""ONNX Resize (opset 10+) and Upsample (opset 7-9) on H and W of an NCHW tensor, as TFLite's
RESIZE_NEAREST_NEIGHBOR or RESIZE_BILINEAR where the arithmetic is the same.

- nearest: ONNX's source index of every output row and column (its coordinate transformation,
  then its nearest_mode, clamped) is worked out exactly, and compared with the indices TFLite's
  kernel takes for each of its flag pairs (mcudeploy.reference.resize); the first pair that
  picks the same source everywhere is used. None: refused, naming the attributes.
- linear: half_pixel (pytorch_half_pixel when no output axis has size 1) is TFLite's
  half_pixel_centers, align_corners its align_corners, asymmetric neither; the scale must be the
  output/input size ratio (TFLite has no other). The int8 kernel interpolates with 10-bit weights.
Upsample and opset 10's Resize have no such attributes: onnxruntime computes them as asymmetric,
nearest rounding down along an axis that grows and up along one that shrinks.
"""

from __future__ import annotations

from fractions import Fraction
from math import ceil, floor
from typing import TYPE_CHECKING

import numpy as np
import onnx

from mcudeploy import ir
from mcudeploy.frontends.layout import Layout
from mcudeploy.reference.resize import nearest_sources

if TYPE_CHECKING:
    from mcudeploy.frontends.onnx import _Converter

_TFLITE_FLAGS = ((False, False), (True, False), (False, True))  # (align_corners, half_pixel_centers)
_LINEAR_FLAGS = {"half_pixel": (False, True), "pytorch_half_pixel": (False, True),
                 "align_corners": (True, False), "asymmetric": (False, False)}
_RATIO_TOLERANCE = 1e-6


def _text(attrs: dict, name: str, default: str) -> str:
    value = attrs.get(name, default)
    return value.decode() if isinstance(value, bytes) else str(value)


def _source(x: int, n_in: int, n_out: int, scale: Fraction, transform: str, rounding: str) -> int:
    """ONNX's nearest source index of output index x along one axis, computed exactly."""
    if transform == "align_corners":
        position = Fraction(0) if n_out == 1 else Fraction(x * (n_in - 1), n_out - 1)
    elif transform == "asymmetric":
        position = x / scale
    elif transform == "tf_half_pixel_for_nn":
        position = (x + Fraction(1, 2)) / scale
    elif transform == "pytorch_half_pixel" and n_out == 1:
        position = Fraction(0)
    else:  # half_pixel, pytorch_half_pixel
        position = (x + Fraction(1, 2)) / scale - Fraction(1, 2)
    if rounding == "floor":
        index = floor(position)
    elif rounding == "ceil":
        index = ceil(position)
    else:
        tie = position - floor(position) == Fraction(1, 2)
        index = (floor(position) if rounding == "round_prefer_floor" else ceil(position)) if tie \
            else floor(position + Fraction(1, 2))
    return min(max(index, 0), n_in - 1)


def _legacy(c: _Converter, node: onnx.NodeProto) -> bool:
    """Upsample, or opset 10's Resize (inputs X and scales, no coordinate attributes)."""
    opset = max((o.version for o in c.og.model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return node.op_type == "Upsample" or opset <= 10


def _scales(c: _Converter, node: onnx.NodeProto, attrs: dict, x: Layout, out: tuple[int, ...]) -> list:
    """Per ONNX axis, the scale ONNX computes with (a Fraction): the `scales` input or attribute,
    else output / input size."""
    rank = len(x.onnx_shape)
    given = None
    if _legacy(c, node):  # X, scales
        given = attrs.get("scales")
        if len(node.input) > 1 and node.input[1]:
            given = c.need_const(node.input[1], "scales").reshape(-1)
    elif len(node.input) > 2 and node.input[2]:
        value = c.need_const(node.input[2], "scales").reshape(-1)
        given = value if value.size else None
    if given is None:
        return [Fraction(o, i) for o, i in zip(out, x.onnx_shape, strict=True)]
    given = [float(np.float32(v)) for v in given]
    axes = [int(a) % rank for a in attrs.get("axes", range(rank))]
    if len(given) != len(axes):
        raise c.refuse(f"scales {given} for {len(axes)} axes")
    scales = [Fraction(o, i) for o, i in zip(out, x.onnx_shape, strict=True)]
    for axis, value in zip(axes, given, strict=True):
        if value <= 0:
            raise c.refuse(f"scales {given} must be positive")
        scales[axis] = Fraction(value)
    return scales


def convert_resize(c: _Converter, node: onnx.NodeProto, attrs: dict) -> None:
    """Resize / Upsample → IR Resize (see the module docstring)."""
    x = c.layout(node.input[0])
    out = tuple(c.og.shapes[node.output[0]])
    if x.kind != "nchw" or len(out) != 4:
        raise c.refuse(f"resizing a {len(x.onnx_shape)}-D tensor is not supported (only H and W of NCHW)")
    if out[:2] != x.onnx_shape[:2]:
        raise c.refuse(f"resizing {list(x.onnx_shape)} to {out} changes N or C (only H and W)")
    mode = _text(attrs, "mode", "nearest")
    legacy = _legacy(c, node)
    transform = "asymmetric" if legacy else _text(attrs, "coordinate_transformation_mode", "half_pixel")
    rounding = "legacy" if legacy else _text(attrs, "nearest_mode", "round_prefer_floor")
    if int(attrs.get("antialias", 0)):
        raise c.refuse("attribute antialias=1 is not supported")
    if _text(attrs, "keep_aspect_ratio_policy", "stretch") != "stretch":
        raise c.refuse(f"attribute keep_aspect_ratio_policy={_text(attrs, 'keep_aspect_ratio_policy', '')} "
                       "is not supported (only stretch)")
    scales = _scales(c, node, attrs, x, out)
    if scales[:2] != [1, 1]:
        raise c.refuse(f"scales {[f'{float(s):g}' for s in scales]} resize N or C (only H and W)")
    sizes = [(x.onnx_shape[a], out[a], scales[a]) for a in (2, 3)]
    if mode == "nearest":
        if rounding not in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil", "legacy"):
            raise c.refuse(f"attribute nearest_mode={rounding} is not supported")
        if transform not in ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                             "tf_half_pixel_for_nn"):
            raise c.refuse(f"attribute coordinate_transformation_mode={transform} is not supported")
        wanted = [np.array([_source(i, n_in, n_out, s, transform,
                                    ("ceil" if s < 1 else "floor") if rounding == "legacy" else rounding)
                            for i in range(n_out)]) for n_in, n_out, s in sizes]
        for align, half in _TFLITE_FLAGS:
            attrs_ir = ir.Resize("nearest", align, half)
            if all(np.array_equal(nearest_sources(n_in, n_out, attrs_ir), w)
                   for (n_in, n_out, _), w in zip(sizes, wanted, strict=True)):
                break
        else:
            how = ("asymmetric coordinates rounded down along an axis that grows, up along one that "
                   "shrinks (Upsample, opset 10)") if legacy else \
                f"coordinate_transformation_mode={transform} and nearest_mode={rounding}"
            raise c.refuse(f"mode nearest with {how} picks source pixels no TFLite nearest-neighbour "
                           f"resize of {list(x.onnx_shape[2:])} to {list(out[2:])} picks")
    elif mode == "linear":
        if transform not in _LINEAR_FLAGS or (transform == "pytorch_half_pixel" and 1 in out[2:]):
            raise c.refuse(f"mode linear with coordinate_transformation_mode={transform} is not supported "
                           "(half_pixel, pytorch_half_pixel to sizes above 1, align_corners, asymmetric)")
        for n_in, n_out, s in sizes:
            if abs(float(s) * n_in / n_out - 1) > _RATIO_TOLERANCE:
                raise c.refuse(f"mode linear with scale {float(s):g} from {n_in} to {n_out}: TFLite scales "
                               "by the output/input size ratio only")
        attrs_ir = ir.Resize("bilinear", *_LINEAR_FLAGS[transform])
    else:
        raise c.refuse(f"attribute mode={mode} is not supported (only nearest and linear)")
    c.emit(attrs_ir, (c.ir_name(node.input[0]),), node.output[0], Layout("nchw", out))

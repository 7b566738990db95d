"""Grouped convolutions for a CMSIS-NN older than grouped support (6.0.0, January 2024).

Such a library's `arm_convolve_wrapper_s8` takes only `C_f == C_in`; handed a grouped filter it
would compute something else. This pass, run after lowering when the library lacks grouped
support, rewrites every grouped CONV_2D (1 < groups) into calls the old library gets right:

- groups == C_in (one input channel per group, `C_out = C_in * m`): output channel o reads input
  channel o // m, which is a depthwise convolution with channel multiplier m. The OHWI filter
  [C_out, KH, KW, 1] is transposed once, at generation time, to the depthwise layout
  [1, KH, KW, C_out]; one `arm_depthwise_conv_wrapper_s8` call.
- otherwise, one `arm_convolve_wrapper_s8` call per group. CMSIS-NN reads contiguous NHWC input,
  so each group's C_f channels are first gathered into scratch; the call writes the group's C_out /
  groups channels to a second scratch buffer, which is then interleaved into the output at the
  group's channel offset. The group's filter rows, bias, multipliers and shifts are contiguous
  slices of the layer's constants (OHWI puts a group's output channels together).

Both are bit-exact with the grouped convolution: each output channel sums the same products of
the same input channels and weights, and is requantized with its own multiplier and shift.

Scratch of a per-group layer: the library's own scratch for one group's call (its query asked with
the group's dims, rounded up to 4 bytes), then the gathered input, then one group's output. The
generated model checks at start-up that the library asks for no more than planned, through a
layer-local query function that adds the fixed part.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from mcudeploy.codegen.lower import Const, Dims, Layer, LoweredModel, ScratchQuery


@dataclass(frozen=True)
class GroupedScratch(ScratchQuery):
    """Scratch of a per-group convolution: `library_function` (asked with one group's dims),
    rounded up to 4 bytes, plus `fixed_bytes` for the gathered input and one group's output.
    `function` is the layer's own query (emitted by the template), called at start-up."""

    library_function: str = "arm_convolve_wrapper_s8_get_buffer_size"
    fixed_bytes: int = 0


def align4(size: int) -> int:
    return (size + 3) & ~3


def split_grouped_convs(lowered: LoweredModel) -> LoweredModel:
    """`lowered` with every grouped convolution rewritten as depthwise or per-group calls."""
    layers = []
    for layer in lowered.layers:
        if layer.op.kind == "conv2d" and _groups(layer) > 1:
            layer = _as_depthwise(layer) if layer.values["filter_dims"].c == 1 else _per_group(layer)
        layers.append(layer)
    return LoweredModel(tuple(layers), lowered.aliases)


def _groups(layer: Layer) -> int:
    return layer.values["input_dims"].c // layer.values["filter_dims"].c


def _as_depthwise(layer: Layer) -> Layer:
    v = layer.values
    f = v["filter_dims"]
    c_out, kh, kw = f.n, f.h, f.w
    constants = tuple(
        Const(c.name, c.ctype, np.ascontiguousarray(c.values.reshape(c_out, kh * kw).T).reshape(-1))
        if c.name == f"{layer.name}_weights" else c
        for c in layer.constants
    )
    values = {**v, "filter_dims": Dims(1, kh, kw, c_out), "ch_mult": c_out // v["input_dims"].c}
    return replace(
        layer, template="depthwise_conv2d.c.j2", values=values, constants=constants,
        scratch=ScratchQuery("arm_depthwise_conv_wrapper_s8_get_buffer_size", "dw_conv"),
    )


def _per_group(layer: Layer) -> Layer:
    v = layer.values
    groups = _groups(layer)
    x, f, y = v["input_dims"], v["filter_dims"], v["output_dims"]
    per_group = y.c // groups
    in_pixels, out_pixels = x.n * x.h * x.w, y.n * y.h * y.w
    gather_bytes = align4(in_pixels * f.c)
    fixed = gather_bytes + align4(out_pixels * per_group)
    values = {
        **v,
        "input_dims": Dims(x.n, x.h, x.w, f.c),
        "filter_dims": Dims(per_group, f.h, f.w, f.c),
        "bias_dims": Dims(1, 1, 1, per_group),
        "output_dims": Dims(y.n, y.h, y.w, per_group),
        "groups": groups, "c_in": x.c, "c_out": y.c, "per_group": per_group,
        "in_pixels": in_pixels, "out_pixels": out_pixels, "gather_bytes": gather_bytes,
        "fixed_bytes": fixed, "group_weights": per_group * f.h * f.w * f.c,
    }
    return replace(layer, template="grouped_conv2d.c.j2", values=values,
                   scratch=GroupedScratch(f"{layer.name}_get_buffer_size", "conv", fixed_bytes=fixed))

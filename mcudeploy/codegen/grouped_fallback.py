"""Grouped convolutions as calls that need no grouped support from the library.

CMSIS-NN took grouped convolutions in 6.0.0 (January 2024); an older `arm_convolve_wrapper_s8`
takes only `C_f == C_in`, and handed a grouped filter it would compute something else. These two
rewrites of a lowered grouped CONV_2D (1 < groups) are lowering candidates
(mcudeploy.codegen.candidates): with an old library they are the only ones, and with a new one
they compete with the wrapper call when tuning.

- `as_depthwise`, for groups == C_in (one input channel per group, `C_out = C_in * m`): output
  channel o reads input channel o // m, which is a depthwise convolution with channel multiplier m.
  The OHWI filter [C_out, KH, KW, 1] is transposed once, at generation time, to the depthwise
  layout [1, KH, KW, C_out]; one `arm_depthwise_conv_wrapper_s8` call.
- `per_group`: one `arm_convolve_wrapper_s8` call per group. CMSIS-NN reads contiguous NHWC
  input, so each group's C_f channels are first gathered into scratch; the call writes the group's
  C_out / groups channels to a second scratch buffer, which is then interleaved into the output at
  the group's channel offset. The group's filter rows, bias, multipliers and shifts are contiguous
  slices of the layer's constants (OHWI puts a group's output channels together).

Both are bit-exact with the grouped convolution: each output channel sums the same products of
the same input channels and weights, and is requantized with its own multiplier and shift.

Scratch of a layer made of several library calls (`CompositeScratch`): the library's own scratch
for one call (its query asked with that call's dims, rounded up to 4 bytes), then fixed bytes of
the layer's own (here the gathered input and one group's output). The generated model checks at
start-up that the library asks for no more than planned, through a layer-local query function that
adds the fixed part.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from mcudeploy.codegen.lower import Const, Dims, Layer, ScratchQuery


@dataclass(frozen=True)
class CompositeScratch(ScratchQuery):
    """Scratch of a layer of several library calls: `library_function` (asked with one call's
    dims, of argument kind `args`), rounded up to 4 bytes, plus `fixed_bytes` of the layer's own.
    `function` is the layer's own query (emitted by its template), called at start-up."""

    library_function: str = "arm_convolve_wrapper_s8_get_buffer_size"
    fixed_bytes: int = 0



def align4(size: int) -> int:
    return (size + 3) & ~3


def groups(layer: Layer) -> int:
    """Groups of a lowered CONV_2D: C_in / C_f."""
    return layer.values["input_dims"].c // layer.values["filter_dims"].c


def replace_constants(layer: Layer, arrays: dict[str, np.ndarray]) -> tuple[Const, ...]:
    """The layer's constants with `{layer.name}_{suffix}` holding `arrays[suffix]` instead."""
    new = {f"{layer.name}_{suffix}": values for suffix, values in arrays.items()}
    assert set(new) <= {c.name for c in layer.constants}, sorted(new)
    return tuple(Const(c.name, c.ctype, np.ascontiguousarray(new[c.name]).reshape(-1)) if c.name in new else c
                 for c in layer.constants)


def constant(layer: Layer, suffix: str) -> np.ndarray:
    """The values of the layer's constant `{layer.name}_{suffix}`."""
    return next(c for c in layer.constants if c.name == f"{layer.name}_{suffix}").values


def as_depthwise(layer: Layer) -> Layer:
    """One depthwise call with multiplier C_out / C_in (filter transposed to [1, KH, KW, C_out])."""
    v = layer.values
    f = v["filter_dims"]
    c_out, kh, kw = f.n, f.h, f.w
    values = {**v, "filter_dims": Dims(1, kh, kw, c_out), "ch_mult": c_out // v["input_dims"].c}
    return replace(
        layer, template="depthwise_conv2d.c.j2", values=values,
        constants=replace_constants(layer, {"weights": constant(layer, "weights").reshape(c_out, kh * kw).T}),
        scratch=ScratchQuery("arm_depthwise_conv_wrapper_s8_get_buffer_size", "dw_conv"),
    )


def per_group(layer: Layer) -> Layer:
    """One convolution call per group, over input channels gathered in scratch, interleaved back."""
    v = layer.values
    count = groups(layer)
    x, f, y = v["input_dims"], v["filter_dims"], v["output_dims"]
    size = y.c // count
    in_pixels, out_pixels = x.n * x.h * x.w, y.n * y.h * y.w
    gather_bytes = align4(in_pixels * f.c)
    fixed = gather_bytes + align4(out_pixels * size)
    values = {
        **v,
        "input_dims": Dims(x.n, x.h, x.w, f.c),
        "filter_dims": Dims(size, f.h, f.w, f.c),
        "bias_dims": Dims(1, 1, 1, size),
        "output_dims": Dims(y.n, y.h, y.w, size),
        "groups": count, "c_in": x.c, "c_out": y.c, "per_group": size,
        "in_pixels": in_pixels, "out_pixels": out_pixels, "gather_bytes": gather_bytes,
        "fixed_bytes": fixed, "group_weights": size * f.h * f.w * f.c,
    }
    return replace(layer, template="grouped_conv2d.c.j2", values=values,
                   scratch=CompositeScratch(f"{layer.name}_get_buffer_size", "conv", fixed_bytes=fixed))

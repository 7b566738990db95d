"""Depthwise convolutions as other calls: lowering candidates (mcudeploy.codegen.candidates).

CMSIS-NN's depthwise wrapper has fast paths only for channel multiplier 1, batch 1 and no
dilation; anything else falls to its generic scalar kernel. Each rewrite here computes the same
layer through calls that may be faster, and is bit-exact by construction: every output channel
sums the same products of the same input channel and weights, with its own bias, multiplier and
shift; only the order of calls and the place of the results change.

- `split_multiplier` (ch_mult M > 1): M depthwise calls with multiplier 1. Output channel
  o = c * M + m reads input channel c, so call m takes the weights, bias, multipliers and shifts of
  the channels o = c * M + m (permuted once, at generation time, so that each call's constants are
  contiguous) and writes its C_in channels to scratch; those are then interleaved into the output:
  element (p, c) of call m goes to (p * C_in + c) * M + m.
- `as_grouped` (any depthwise, with a library that has grouped convolution): one convolution call
  with groups = C_in, the filter [1, KH, KW, C_out] transposed to OHWI [C_out, KH, KW, 1].
- `per_batch` (batch N > 1): one depthwise call per batch item, on that item's input and output.
"""

from __future__ import annotations

from dataclasses import replace

from mcudeploy.codegen.grouped_fallback import CompositeScratch, align4, constant, replace_constants
from mcudeploy.codegen.lower import Dims, Layer, ScratchQuery

DW_QUERY = "arm_depthwise_conv_wrapper_s8_get_buffer_size"


def split_multiplier(layer: Layer) -> Layer:
    """M depthwise calls with multiplier 1, each writing C_in channels interleaved into the output."""
    v = layer.values
    x, f, y, m = v["input_dims"], v["filter_dims"], v["output_dims"], v["ch_mult"]
    c_in, taps = x.c, f.h * f.w
    arrays = {name: constant(layer, name).reshape(c_in, m).T for name in ("bias", "multiplier", "shift")}
    arrays["weights"] = constant(layer, "weights").reshape(taps, c_in, m).transpose(2, 0, 1)
    part = y.n * y.h * y.w * c_in
    values = {
        **v, "ch_mult": 1, "filter_dims": Dims(1, f.h, f.w, c_in), "bias_dims": Dims(1, 1, 1, c_in),
        "output_dims": Dims(y.n, y.h, y.w, c_in), "multiplier_count": m, "part_elements": part,
        "call_weights": taps * c_in, "fixed_bytes": align4(part),
    }
    scratch = CompositeScratch(f"{layer.name}_get_buffer_size", "dw_conv", library_function=DW_QUERY,
                               fixed_bytes=align4(part))
    return replace(layer, template="depthwise_split.c.j2", values=values,
                   constants=replace_constants(layer, arrays), scratch=scratch)


def as_grouped(layer: Layer) -> Layer:
    """One grouped convolution call, groups = C_in (filter transposed to [C_out, KH, KW, 1])."""
    v = layer.values
    f = v["filter_dims"]
    taps, c_out = f.h * f.w, f.c
    weights = constant(layer, "weights").reshape(taps, c_out).T
    values = {k: x for k, x in v.items() if k != "ch_mult"} | {"filter_dims": Dims(c_out, f.h, f.w, 1)}
    return replace(layer, template="conv2d.c.j2", values=values,
                   constants=replace_constants(layer, {"weights": weights}),
                   scratch=ScratchQuery("arm_convolve_wrapper_s8_get_buffer_size", "conv"))


def per_batch(layer: Layer) -> Layer:
    """One depthwise call per batch item."""
    v = layer.values
    x, y = v["input_dims"], v["output_dims"]
    values = {
        **v, "input_dims": Dims(1, x.h, x.w, x.c), "output_dims": Dims(1, y.h, y.w, y.c),
        "batches": x.n, "input_stride": x.h * x.w * x.c, "output_stride": y.h * y.w * y.c,
    }
    return replace(layer, template="depthwise_per_batch.c.j2", values=values,
                   scratch=ScratchQuery(DW_QUERY, "dw_conv"))

"""16x8 operators (int16 activations, int8 weights) → calls of CMSIS-NN's `_s16` functions, and a
QUANTIZE to or from int16 → a generated requantization loop.

Kept apart from mcudeploy.codegen.lower, whose `Layer` they build with their own templates
(`s16_*.c.j2`): `lower` asks `lowering_s16` first. The parameters come from
mcudeploy.arith.params_s16, as the host reference's do. A per-channel fully connected layer (what
TensorFlow's converter writes for a 16x8 Dense) is one 1x1 `arm_convolve_wrapper_s16` call over
[1, 1, rows, depth]: CMSIS-NN's `arm_fully_connected_s16` is per tensor only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mcudeploy.arith import params as qp
from mcudeploy.arith import params_s16 as p16
from mcudeploy.codegen.lower import Const, Dims, Layer, ScratchQuery, elementwise_layer
from mcudeploy.ir import Graph, Op
from mcudeploy.reference.s16 import ADD_LEFT_SHIFT_S16
from mcudeploy.reference.s16_graph import softmax_tables

CTYPES = {"int8": "int8_t", "int16": "int16_t", "uint8": "uint8_t"}


def _weighted(op: Op, g: Graph, prefix: str) -> tuple[dict, tuple[Const, ...]]:
    """Weights, bias (int64, or int32 for a convolution that has it so), multipliers and shifts."""
    p = p16.conv_params(op, g)
    c_out = g.tensor(op.outputs[0]).shape[-1]
    consts = [Const(f"{prefix}_weights", "int8_t", g.tensor(op.inputs[1]).data.reshape(-1)),
              Const(f"{prefix}_multiplier", "int32_t", p.multiplier.astype(np.int32)),
              Const(f"{prefix}_shift", "int32_t", p.shift.astype(np.int32))]
    if p.bias is not None:
        consts.append(Const(f"{prefix}_bias", "int32_t" if p.bias.dtype == np.int32 else "int64_t", p.bias))
    values = {"s16": True, "act_min": p.act_min, "act_max": p.act_max, "has_bias": p.bias is not None,
              "bias_int32": p.int32_accumulation, "bias_dims": Dims(1, 1, 1, c_out),
              "input_offset": 0, "output_offset": 0,
              "input_dims": Dims.nhwc(g.tensor(op.inputs[0]).shape),
              "output_dims": Dims.nhwc(g.tensor(op.outputs[0]).shape)}
    return values, tuple(consts)


def _window(attrs) -> dict:
    return {"stride": attrs.stride, "dilation": getattr(attrs, "dilation", (1, 1)),
            "padding": (attrs.padding.top, attrs.padding.left)}


def lower_conv2d(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    values, consts = _weighted(op, g, prefix)
    c_out, kh, kw, c_in = g.tensor(op.inputs[1]).shape
    values.update(_window(op.attrs), filter_dims=Dims(c_out, kh, kw, c_in))
    out = values["output_dims"]
    return Layer(index, prefix, op, "s16_conv2d.c.j2", op.inputs[:1], op.outputs[0], values, consts,
                 ScratchQuery("arm_convolve_wrapper_s16_get_buffer_size", "conv"),
                 macs=out.n * out.h * out.w * c_out * kh * kw * c_in)


def lower_depthwise(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    values, consts = _weighted(op, g, prefix)
    _, kh, kw, c_out = g.tensor(op.inputs[1]).shape
    values.update(_window(op.attrs), filter_dims=Dims(1, kh, kw, c_out), ch_mult=op.attrs.depth_multiplier)
    out = values["output_dims"]
    return Layer(index, prefix, op, "s16_depthwise_conv2d.c.j2", op.inputs[:1], op.outputs[0], values,
                 consts, ScratchQuery("arm_depthwise_conv_wrapper_s16_get_buffer_size", "dw_conv"),
                 macs=out.n * out.h * out.w * c_out * kh * kw)


def lower_fully_connected(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    """Per tensor: arm_fully_connected_s16; per channel: a 1x1 arm_convolve_wrapper_s16."""
    values, consts = _weighted(op, g, prefix)
    c_out, depth = g.tensor(op.inputs[1]).shape
    rows = g.tensor(op.inputs[0]).size // depth
    macs = rows * depth * c_out
    if len(consts[1].values) > 1:
        values.update(input_dims=Dims(1, 1, rows, depth), filter_dims=Dims(c_out, 1, 1, depth),
                      output_dims=Dims(1, 1, rows, c_out), stride=(1, 1), dilation=(1, 1), padding=(0, 0),
                      lowering="as_1x1_convolution")
        return Layer(index, prefix, op, "s16_conv2d.c.j2", op.inputs[:1], op.outputs[0], values, consts,
                     ScratchQuery("arm_convolve_wrapper_s16_get_buffer_size", "conv"), macs=macs)
    values.update(input_dims=Dims(rows, 1, 1, depth), filter_dims=Dims(depth, 1, 1, c_out),
                  output_dims=Dims(rows, 1, 1, c_out), multiplier=int(consts[1].values[0]),
                  shift=int(consts[2].values[0]))
    consts = (consts[0], *consts[3:])
    return Layer(index, prefix, op, "s16_fully_connected.c.j2", op.inputs[:1], op.outputs[0], values, consts,
                 ScratchQuery("arm_fully_connected_s16_get_buffer_size", "fc"), macs=macs)


def lower_pool2d(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    a = op.attrs
    act_min, act_max = p16.pool_range(op, g)
    values = {**_window(a), "s16": True, "act_min": act_min, "act_max": act_max, "mode": a.mode,
              "input_dims": Dims.nhwc(g.tensor(op.inputs[0]).shape), "filter_dims": Dims(1, *a.window, 1),
              "output_dims": Dims.nhwc(g.tensor(op.outputs[0]).shape)}
    scratch = ScratchQuery("arm_avgpool_s16_get_buffer_size", "avgpool") if a.mode == "avg" else None
    return Layer(index, prefix, op, "s16_pool2d.c.j2", op.inputs[:1], op.outputs[0], values, scratch=scratch)


def lower_add(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    p = p16.add_params(op, g)
    values = {**vars(p), "s16": True}
    assert p.left_shift == ADD_LEFT_SHIFT_S16
    return elementwise_layer(op, g, index, prefix, "s16_add.c.j2", values, "int16_t")


def lower_mul(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    values = {**vars(p16.mul_params(op, g)), "s16": True}
    return elementwise_layer(op, g, index, prefix, "s16_mul.c.j2", values, "int16_t")


def lower_softmax(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    multiplier, shift = p16.softmax_params(op, g)
    shape = g.tensor(op.inputs[0]).shape
    exp_lut, recip_lut = softmax_tables()
    values = {"s16": True, "multiplier": multiplier, "shift": shift, "row_size": shape[-1],
              "num_rows": int(np.prod(shape[:-1]))}
    consts = (Const(f"{prefix}_exp_lut", "int16_t", exp_lut),
              Const(f"{prefix}_one_by_one_lut", "int16_t", recip_lut))
    return Layer(index, prefix, op, "s16_softmax.c.j2", op.inputs[:1], op.outputs[0], values, consts)


def lower_requantize(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    """QUANTIZE to or from int16: (x - zp_in) requantized by s_in / s_out, plus zp_out, clamped."""
    p = qp.quantize_params(op, g)
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    values = {**vars(p), "size": y.size, "in_ctype": CTYPES[x.dtype], "out_ctype": CTYPES[y.dtype]}
    return Layer(index, prefix, op, "s16_requantize.c.j2", op.inputs[:1], op.outputs[0], values)


LOWERINGS_S16: dict[str, Callable[[Op, Graph, int, str], Layer]] = {
    "conv2d": lower_conv2d,
    "depthwise_conv2d": lower_depthwise,
    "fully_connected": lower_fully_connected,
    "pool2d": lower_pool2d,
    "add": lower_add,
    "mul": lower_mul,
    "softmax": lower_softmax,
}


def lowering_s16(op: Op, g: Graph) -> Callable[[Op, Graph, int, str], Layer] | None:
    """The lowering of a 16x8 operator or of a QUANTIZE to or from int16; None for the others."""
    if op.kind == "quantize":
        types = {g.tensor(op.inputs[0]).dtype, g.tensor(op.outputs[0]).dtype}
        return lower_requantize if "int16" in types else None
    return LOWERINGS_S16[op.kind] if p16.is_s16(op, g) else None

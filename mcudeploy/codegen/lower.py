"""IR → a list of CMSIS-NN calls: one `Layer` per operator, with every number its call needs.

Each lowering is a plain function of (op, graph) returning a `Layer`; emission renders the layer's
template, so nothing here builds C text. RESHAPE lowers to nothing: its output aliases its input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mcudeploy.ir import Graph, Op
from mcudeploy.quantize import params as qp


@dataclass(frozen=True)
class Dims:
    """cmsis_nn_dims."""

    n: int
    h: int
    w: int
    c: int

    @staticmethod
    def nhwc(shape: tuple[int, ...]) -> Dims:
        shape = (1,) * (4 - len(shape)) + tuple(shape)
        return Dims(*shape)


@dataclass(frozen=True, eq=False)
class Const:
    """A constant array placed in flash."""

    name: str
    ctype: str  # "int8_t" | "int32_t"
    values: np.ndarray


@dataclass(frozen=True)
class ScratchQuery:
    """A `*_get_buffer_size` call: the function's base name and its arguments' kind."""

    function: str  # e.g. "arm_convolve_wrapper_s8_get_buffer_size"
    args: str  # "conv" | "dw_conv" | "fc" | "avgpool"


@dataclass(frozen=True, eq=False)
class Layer:
    """One call to emit: its template, the values the template needs and the tensors it touches."""

    index: int
    name: str
    op: Op
    template: str
    inputs: tuple[str, ...]
    output: str
    values: dict = field(default_factory=dict)
    constants: tuple[Const, ...] = ()
    scratch: ScratchQuery | None = None
    persistent_scratch: bool = False
    macs: int = 0


def _conv_common(op: Op, g: Graph, prefix: str) -> tuple[dict, tuple[Const, ...]]:
    p = qp.conv_params(op, g)
    w = g.tensor(op.inputs[1])
    consts = (
        Const(f"{prefix}_weights", "int8_t", w.data.reshape(-1)),
        Const(f"{prefix}_bias", "int32_t", p.bias),
        Const(f"{prefix}_multiplier", "int32_t", p.multiplier),
        Const(f"{prefix}_shift", "int32_t", p.shift),
    )
    values = {
        "input_offset": p.input_offset, "output_offset": p.output_offset,
        "act_min": p.act_min, "act_max": p.act_max,
        "input_dims": Dims.nhwc(g.tensor(op.inputs[0]).shape),
        "output_dims": Dims.nhwc(g.tensor(op.outputs[0]).shape),
    }
    return values, consts


def _window_values(attrs) -> dict:
    return {
        "stride": attrs.stride, "dilation": getattr(attrs, "dilation", (1, 1)),
        "padding": (attrs.padding.top, attrs.padding.left),
    }


def lower_conv2d(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    values, consts = _conv_common(op, g, prefix)
    c_out, kh, kw, c_f = g.tensor(op.inputs[1]).shape
    values.update(_window_values(op.attrs), filter_dims=Dims(c_out, kh, kw, c_f),
                  bias_dims=Dims(1, 1, 1, c_out))
    out = values["output_dims"]
    return Layer(index, prefix, op, "conv2d.c.j2", op.inputs[:1], op.outputs[0], values, consts,
                 ScratchQuery("arm_convolve_wrapper_s8_get_buffer_size", "conv"),
                 macs=out.n * out.h * out.w * c_out * kh * kw * c_f)


def lower_depthwise(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    values, consts = _conv_common(op, g, prefix)
    _, kh, kw, c_out = g.tensor(op.inputs[1]).shape
    values.update(_window_values(op.attrs), filter_dims=Dims(1, kh, kw, c_out),
                  bias_dims=Dims(1, 1, 1, c_out), ch_mult=op.attrs.depth_multiplier)
    out = values["output_dims"]
    return Layer(index, prefix, op, "depthwise_conv2d.c.j2", op.inputs[:1], op.outputs[0], values,
                 consts, ScratchQuery("arm_depthwise_conv_wrapper_s8_get_buffer_size", "dw_conv"),
                 macs=out.n * out.h * out.w * c_out * kh * kw)


def lower_fully_connected(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    values, consts = _conv_common(op, g, prefix)
    c_out, depth = g.tensor(op.inputs[1]).shape
    rows = g.tensor(op.inputs[0]).size // depth
    per_channel = len(consts[2].values) > 1
    values.update(input_dims=Dims(rows, 1, 1, depth), filter_dims=Dims(depth, 1, 1, c_out),
                  bias_dims=Dims(1, 1, 1, c_out), output_dims=Dims(rows, 1, 1, c_out),
                  per_channel=per_channel, multiplier=int(consts[2].values[0]),
                  shift=int(consts[3].values[0]))
    if not per_channel:
        consts = consts[:2]
    return Layer(index, prefix, op, "fully_connected.c.j2", op.inputs[:1], op.outputs[0], values,
                 consts, ScratchQuery("arm_fully_connected_s8_get_buffer_size", "fc"),
                 persistent_scratch=True, macs=rows * depth * c_out)


def lower_pool2d(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    p = qp.pool_params(op, g)
    a = op.attrs
    values = {
        **_window_values(a), "act_min": p.act_min, "act_max": p.act_max,
        "input_dims": Dims.nhwc(g.tensor(op.inputs[0]).shape),
        "filter_dims": Dims(1, a.window[0], a.window[1], 1),
        "output_dims": Dims.nhwc(g.tensor(op.outputs[0]).shape), "mode": a.mode,
    }
    scratch = ScratchQuery("arm_avgpool_s8_get_buffer_size", "avgpool") if a.mode == "avg" else None
    return Layer(index, prefix, op, "pool2d.c.j2", op.inputs[:1], op.outputs[0], values,
                 scratch=scratch)


def lower_add(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    p = qp.add_params(op, g)
    values = {**vars(p), "block_size": g.tensor(op.outputs[0]).size}
    return Layer(index, prefix, op, "add.c.j2", op.inputs[:2], op.outputs[0], values)


def lower_softmax(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    p = qp.softmax_params(op, g)
    shape = g.tensor(op.inputs[0]).shape
    values = {**vars(p), "row_size": shape[-1], "num_rows": int(np.prod(shape[:-1]))}
    return Layer(index, prefix, op, "softmax.c.j2", op.inputs[:1], op.outputs[0], values)


LOWERINGS: dict[str, Callable[[Op, Graph, int, str], Layer]] = {
    "conv2d": lower_conv2d,
    "depthwise_conv2d": lower_depthwise,
    "fully_connected": lower_fully_connected,
    "pool2d": lower_pool2d,
    "add": lower_add,
    "softmax": lower_softmax,
}


@dataclass(frozen=True)
class LoweredModel:
    """The calls in order, and which tensor names share storage (RESHAPE outputs)."""

    layers: tuple[Layer, ...]
    aliases: dict[str, str]  # tensor name -> the tensor whose storage it uses

    def storage(self, name: str) -> str:
        while name in self.aliases:
            name = self.aliases[name]
        return name


def lower(graph: Graph) -> LoweredModel:
    """One Layer per computing operator; reshapes become aliases."""
    layers: list[Layer] = []
    aliases: dict[str, str] = {}
    for op in graph.ops:
        if op.kind == "reshape":
            aliases[op.outputs[0]] = op.inputs[0]
            continue
        index = len(layers)
        prefix = f"l{index}_{op.kind}"
        layers.append(LOWERINGS[op.kind](op, graph, index, prefix))
    return LoweredModel(tuple(layers), aliases)

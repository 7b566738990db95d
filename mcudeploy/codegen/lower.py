"""IR → a list of CMSIS-NN calls: one `Layer` per operator, with every number its call needs.

Each lowering is a plain function of (op, graph) returning a `Layer`; emission renders the layer's
template, so nothing here builds C text. RESHAPE lowers to nothing: its output aliases its input.
Every C name (a layer's `l<index>_<kind>` and its suffixes, a variable's `state<i>`) is made here
from positions and mcudeploy's own op kinds, never from a name in the model file (codegen/ctext.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mcudeploy.arith import params as qp
from mcudeploy.ir import Graph, Op
from mcudeploy.reference import KERNELS
from mcudeploy.reference.resize import bilinear_axis, nearest_sources
from mcudeploy.support import broadcast_block


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
    ctype: str  # "int8_t" | "int16_t" | "int32_t" | "int64_t" | "uint8_t"
    values: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.values.size * CTYPE_BYTES[self.ctype]


CTYPE_BYTES = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "int32_t": 4, "int64_t": 8}


@dataclass(frozen=True)
class ScratchQuery:
    """A `*_get_buffer_size` call: the function's base name and its arguments' kind."""

    function: str  # e.g. "arm_convolve_wrapper_s8_get_buffer_size"
    args: str  # "conv" | "dw_conv" | "fc" | "avgpool"


@dataclass(frozen=True)
class FixedScratch(ScratchQuery):
    """Scratch of a size known on the host, for a call the library has no query for (a generated
    kernel's buffers, the LSTM's int16 buffers): `function` is the layer's own query, which its
    template emits."""

    size: int = 0


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
    const_inputs: dict[str, str] = field(default_factory=dict)  # constant input -> its C array


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


def _constant_operands(op: Op, g: Graph, prefix: str, ctype: str = "int8_t"
                       ) -> tuple[list[Const], dict[str, str]]:
    """The constant operands of a two-input layer as arrays in flash, and their C names."""
    consts, const_inputs = [], {}
    for i, name in enumerate(op.inputs[:2]):
        t = g.tensor(name)
        if t.is_constant:
            const_inputs[name] = f"{prefix}_operand{i}"
            consts.append(Const(const_inputs[name], ctype, t.data.reshape(-1)))
    return consts, const_inputs


def elementwise_layer(op: Op, g: Graph, index: int, prefix: str, template: str, values: dict,
                      ctype: str = "int8_t") -> Layer:
    """ADD/MUL: one call, or one call per repetition of the operand that broadcasts; constant
    operands are `ctype` arrays."""
    out = g.tensor(op.outputs[0])
    sizes = [g.tensor(n).size for n in op.inputs[:2]]
    block = min(sizes)
    if block != out.size:
        block = broadcast_block(g.tensor(op.inputs[sizes.index(block)]).shape, out.shape) or 1
    strides = [block if size == out.size else 0 for size in sizes]
    consts, const_inputs = _constant_operands(op, g, prefix, ctype)
    values = {**values, "block_size": block, "repeats": out.size // block, "strides": strides}
    return Layer(index, prefix, op, template, op.inputs[:2], op.outputs[0], values, tuple(consts),
                 const_inputs=const_inputs)


def lower_add(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    return elementwise_layer(op, g, index, prefix, "add.c.j2", vars(qp.add_params(op, g)))


def lower_sub(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    """SUB as a generated loop (CMSIS-NN has no subtraction)."""
    return _binary_loop(op, g, index, prefix, {**vars(qp.add_params(op, g)), "operation": "sub"})


def lower_squared_difference(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    """SQUARED_DIFFERENCE as SUB's generated loop, the difference squared before requantizing."""
    return _binary_loop(op, g, index, prefix,
                        {**vars(qp.squared_difference_params(op, g)), "operation": "squared_difference"})


def _binary_loop(op: Op, g: Graph, index: int, prefix: str, params: dict) -> Layer:
    """A two-input layer as a generated loop over the output seen as 4-D, each input read with
    stride 0 along the axes it repeats on (any broadcast of up to 4 dimensions)."""
    out = Dims.nhwc(g.tensor(op.outputs[0]).shape)

    def strides(name: str) -> list[int]:
        shape = g.tensor(name).shape
        dims = (1,) * (4 - len(shape)) + tuple(shape)
        steps = [int(np.prod(dims[axis + 1:], dtype=np.int64)) for axis in range(4)]
        return [step if dim > 1 else 0 for dim, step in zip(dims, steps, strict=True)]

    full = [g.tensor(n).size == g.tensor(op.outputs[0]).size for n in op.inputs[:2]]
    consts, const_inputs = _constant_operands(op, g, prefix)
    values = {**params, "dims": out, "broadcast": not all(full),
              "strides": [strides(n) for n in op.inputs[:2]], "size": g.tensor(op.outputs[0]).size}
    return Layer(index, prefix, op, "binary_loop.c.j2", op.inputs[:2], op.outputs[0], values, tuple(consts),
                 const_inputs=const_inputs)


def lower_mul(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    """MUL through CMSIS-NN when one input has the output's shape and the other repeats along its
    leading axes; any other broadcast (both inputs repeating: a per-row scale times a per-channel
    one) as a generated loop."""
    params = vars(qp.mul_params(op, g))
    out = g.tensor(op.outputs[0])
    a, b = (g.tensor(n) for n in op.inputs[:2])
    if any(big.size == out.size and (small.size == out.size
                                     or broadcast_block(small.shape, out.shape) is not None)
           for big, small in ((a, b), (b, a))):
        return elementwise_layer(op, g, index, prefix, "mul.c.j2", params)
    return _binary_loop(op, g, index, prefix, {**params, "operation": "mul"})


def lower_extremum(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    """MAXIMUM/MINIMUM: one arm_maximum_s8/arm_minimum_s8 call, broadcasting by its dims."""
    rank = len(g.tensor(op.outputs[0]).shape)

    def dims(name: str) -> Dims:
        shape = g.tensor(name).shape
        return Dims.nhwc((1,) * (rank - len(shape)) + tuple(shape))

    values = {"function": f"arm_{'maximum' if op.attrs.mode == 'max' else 'minimum'}_s8",
              "input1_dims": dims(op.inputs[0]), "input2_dims": dims(op.inputs[1]),
              "output_dims": dims(op.outputs[0])}
    consts, const_inputs = _constant_operands(op, g, prefix)
    return Layer(index, prefix, op, "extremum.c.j2", op.inputs[:2], op.outputs[0], values, tuple(consts),
                 const_inputs=const_inputs)


def lower_concat(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    """Concatenation as copies: for each outer index, each input's contiguous slab in turn."""
    out = g.tensor(op.outputs[0])
    axis = op.attrs.axis
    outer = int(np.prod(out.shape[:axis], dtype=np.int64))
    slabs = [g.tensor(n).size // outer for n in op.inputs]
    offsets = [sum(slabs[:i]) for i in range(len(slabs))]
    values = {"outer": outer, "out_slab": sum(slabs), "slabs": slabs, "offsets": offsets}
    return Layer(index, prefix, op, "concat.c.j2", op.inputs, op.outputs[0], values)


def lower_pad(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    """Fill with the zero point, then copy the input's rows into place (shapes as 4-D)."""
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    lead = 4 - len(x.shape)
    pads = ((0, 0),) * lead + tuple(op.attrs.pads)
    values = {"in_dims": Dims.nhwc(x.shape), "out_dims": Dims.nhwc(y.shape),
              "before": [a for a, _ in pads], "zero_point": y.zero_point, "out_size": y.size}
    return Layer(index, prefix, op, "pad.c.j2", op.inputs[:1], op.outputs[0], values)


def lower_softmax(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    p = qp.softmax_params(op, g)
    shape = g.tensor(op.inputs[0]).shape
    values = {**vars(p), "row_size": shape[-1], "num_rows": int(np.prod(shape[:-1]))}
    return Layer(index, prefix, op, "softmax.c.j2", op.inputs[:1], op.outputs[0], values)


def lower_slice(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    """A strided slice as copies, shapes seen as 4-D; contiguous rows copied with memcpy."""
    x = g.tensor(op.inputs[0])
    a = op.attrs
    lead = 4 - len(x.shape)
    begin, end, strides = ((0,) * lead + a.begin, (1,) * lead + a.end, (1,) * lead + a.strides)
    counts = [len(range(b, e, s)) for b, e, s in zip(begin, end, strides, strict=True)]
    values = {"in_dims": Dims.nhwc(x.shape), "begin": begin, "strides": strides, "counts": counts}
    return Layer(index, prefix, op, "slice.c.j2", op.inputs[:1], op.outputs[0], values)


def lower_mean(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    """MEAN over H and W as a generated loop (CMSIS-NN has no kernel for it)."""
    x = g.tensor(op.inputs[0])
    values = {**vars(qp.mean_params(op, g)), "batches": x.shape[0], "channels": x.shape[3]}
    return Layer(index, prefix, op, "mean.c.j2", op.inputs[:1], op.outputs[0], values)


def lower_prelu(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    """PRELU as a generated loop over the flat tensor, alpha repeating along the leading axes."""
    out, alpha = g.tensor(op.outputs[0]), g.tensor(op.inputs[1])
    values = {**vars(qp.prelu_params(op, g)), "size": out.size,
              "block": broadcast_block(alpha.shape, out.shape) or out.size}
    return Layer(index, prefix, op, "prelu.c.j2", op.inputs[:1], op.outputs[0], values,
                 (Const(f"{prefix}_alpha", "int8_t", alpha.data.reshape(-1)),))


def lower_transpose(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    """TRANSPOSE as one arm_transpose_s8 call, the shapes and permutation seen as 4-D."""
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    lead = 4 - len(x.shape)
    perm = [*range(lead), *(p + lead for p in op.attrs.perm)]
    values = {"input_dims": Dims.nhwc(x.shape), "output_dims": Dims.nhwc(y.shape), "perm": perm}
    return Layer(index, prefix, op, "transpose.c.j2", op.inputs[:1], op.outputs[0], values)


def lower_resize(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    """RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR as generated loops (CMSIS-NN has no resize) over
    tables of source offsets and weights computed here as TFLite computes them
    (mcudeploy.reference.resize): no float arithmetic on the device."""
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    (n, in_h, in_w, c), (out_h, out_w) = x.shape, y.shape[1:3]
    a = op.attrs
    values = {"mode": a.mode, "batches": n, "image_size": in_h * in_w * c, "channels": c,
              "out_h": out_h, "out_w": out_w}
    if a.mode == "nearest":
        rows, cols = nearest_sources(in_h, out_h, a), nearest_sources(in_w, out_w, a)
        consts = (Const(f"{prefix}_rows", "int32_t", (rows * in_w * c).astype(np.int32)),
                  Const(f"{prefix}_cols", "int32_t", (cols * c).astype(np.int32)))
    else:
        ay, ax = bilinear_axis(in_h, out_h, a), bilinear_axis(in_w, out_w, a)
        consts = (Const(f"{prefix}_rows", "int32_t", (np.stack([ay.low, ay.high], 1) * in_w * c).reshape(-1)
                        .astype(np.int32)),
                  Const(f"{prefix}_row_weights", "int16_t", ay.weight.astype(np.int16)),
                  Const(f"{prefix}_cols", "int32_t", (np.stack([ax.low, ax.high], 1) * c).reshape(-1)
                        .astype(np.int32)),
                  Const(f"{prefix}_col_weights", "int16_t", ax.weight.astype(np.int16)))
    return Layer(index, prefix, op, "resize.c.j2", op.inputs[:1], op.outputs[0], values, consts)


def lower_lookup(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    """LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU, RSQRT, RELU and QUANTIZE as a 256-entry table from the host
    reference, indexed by input + 128: exact by construction, and faster than the fixed-point
    arithmetic on every CPU."""
    probe = np.arange(-128, 128, dtype=np.int8)
    table = KERNELS[op.kind](op, g, [probe])
    out = g.tensor(op.outputs[0])
    ctype = "uint8_t" if out.dtype == "uint8" else "int8_t"
    values = {"size": out.size, "ctype": ctype}
    return Layer(index, prefix, op, "lookup.c.j2", op.inputs[:1], op.outputs[0], values,
                 (Const(f"{prefix}_table", ctype, table.reshape(-1)),))


def lower_copy(op: Op, g: Graph, index: int, prefix: str) -> Layer:
    """READ_VARIABLE (when it cannot alias) and ASSIGN_VARIABLE: a copy of the whole tensor."""
    values = {"size": g.tensor(op.outputs[0]).nbytes}
    return Layer(index, prefix, op, "copy.c.j2", op.inputs[:1], op.outputs[0], values)


LOWERINGS: dict[str, Callable[[Op, Graph, int, str], Layer]] = {
    "conv2d": lower_conv2d,
    "depthwise_conv2d": lower_depthwise,
    "fully_connected": lower_fully_connected,
    "pool2d": lower_pool2d,
    "add": lower_add,
    "sub": lower_sub,
    "squared_difference": lower_squared_difference,
    "mul": lower_mul,
    "concat": lower_concat,
    "pad": lower_pad,
    "extremum": lower_extremum,
    "slice": lower_slice,
    "mean": lower_mean,
    "logistic": lower_lookup,
    "tanh": lower_lookup,
    "leaky_relu": lower_lookup,
    "hard_swish": lower_lookup,
    "rsqrt": lower_lookup,
    "relu": lower_lookup,
    "quantize": lower_lookup,
    "prelu": lower_prelu,
    "transpose": lower_transpose,
    "resize": lower_resize,
    "read_variable": lower_copy,
    "assign_variable": lower_copy,
    "softmax": lower_softmax,
}


@dataclass(frozen=True)
class LoweredModel:
    """The calls in order; which tensor names share storage (RESHAPE outputs, variable reads);
    the C array of each persistent variable; the tensors computed inside a streamed stage, never
    stored whole (mcudeploy.codegen.stages)."""

    layers: tuple[Layer, ...]
    aliases: dict[str, str]  # tensor name -> the tensor whose storage it uses
    variables: dict[str, str] = field(default_factory=dict)  # variable tensor -> C symbol
    variable_bytes: dict[str, int] = field(default_factory=dict)  # variable tensor -> bytes
    internal: frozenset[str] = frozenset()  # storage names with no storage

    def storage(self, name: str) -> str:
        while name in self.aliases:
            name = self.aliases[name]
        return name


def _read_can_alias(graph: Graph, position: int) -> bool:
    """A variable read may alias the variable's storage if nothing assigns the variable before
    the read value (or a reshape of it) is last used."""
    op = graph.ops[position]
    names = {op.outputs[0]}
    last = position
    for i in range(position + 1, len(graph.ops)):
        later = graph.ops[i]
        if names & set(later.inputs):
            last = i
            if later.kind == "reshape":
                names.add(later.outputs[0])
    if names & set(graph.outputs):
        last = len(graph.ops)
    return not any(
        later.kind == "assign_variable" and later.outputs[0] == op.inputs[0] and position < i < last
        for i, later in enumerate(graph.ops)
    )


def lower(graph: Graph) -> LoweredModel:
    """One Layer per computing operator; reshapes and safe variable reads become aliases. 16x8
    operators, and QUANTIZE to or from int16, are lowered by mcudeploy.codegen.lower_s16."""
    from mcudeploy.codegen.lower_lstm import lower_lstm  # they build on this module's Layer
    from mcudeploy.codegen.lower_s16 import lowering_s16

    layers: list[Layer] = []
    aliases: dict[str, str] = {}
    for position, op in enumerate(graph.ops):
        if op.kind == "reshape" or (op.kind == "read_variable" and _read_can_alias(graph, position)):
            aliases[op.outputs[0]] = op.inputs[0]
            continue
        index = len(layers)
        prefix = f"l{index}_{op.kind}"
        lowering = lower_lstm if op.kind == "lstm" else lowering_s16(op, graph) or LOWERINGS[op.kind]
        layers.append(lowering(op, graph, index, prefix))
    variables = {name: f"state{i}" for i, name in enumerate(graph.variables)}
    sizes = {name: graph.tensor(name).nbytes for name in graph.variables}
    return LoweredModel(tuple(layers), aliases, variables, sizes)

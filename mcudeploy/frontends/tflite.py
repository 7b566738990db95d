"""int8 (and 16x8: int16 activations, int8 weights) TFLite files → IR, through the flatbuffer schema
module that ships with tflite-micro.

The file keeps its own quantization. Layouts are already the IR's (NHWC, OHWI, [1,KH,KW,C_out]);
SAME/VALID padding becomes explicit padding here.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from mcudeploy import ir
from mcudeploy.errors import MCUDeployError, ModelFormatError, UnsupportedError
from mcudeploy.frontends.padding import same_padding
from mcudeploy.frontends.tflite_checks import builtin_name, check_model
from mcudeploy.frontends.tflite_fold import fold_constant

_DTYPES = {
    fb.TensorType.FLOAT32: "float32", fb.TensorType.INT32: "int32", fb.TensorType.UINT8: "uint8",
    fb.TensorType.INT64: "int64", fb.TensorType.INT16: "int16", fb.TensorType.INT8: "int8",
    fb.TensorType.BOOL: "bool", fb.TensorType.RESOURCE: "resource",
}
_TYPE_NAMES = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
_ACTIVATIONS = {
    fb.ActivationFunctionType.NONE: ir.NO_CLIP,
    fb.ActivationFunctionType.RELU: ir.Clip(0.0, None),
    fb.ActivationFunctionType.RELU6: ir.Clip(0.0, 6.0),
    fb.ActivationFunctionType.RELU_N1_TO_1: ir.Clip(-1.0, 1.0),
}
_VARIABLE = "variable:"  # the IR names of resource variables start so


@dataclass
class _State:
    """Resource variables met so far: handle tensor -> variable tensor name, initial values, and
    the variable tensors themselves."""

    model: fb.ModelT
    data: bytes
    where: str
    handles: dict[str, str]
    initial: dict[str, np.ndarray]
    variables: dict[str, ir.Tensor]
    keep_lstm_state: bool = False


@dataclass(frozen=True)
class _Operator:
    """One TFLite operator with its tensors resolved, for the converters below."""

    index: int
    type_name: str
    options: object
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    graph_tensors: dict[str, ir.Tensor]
    state: _State

    @property
    def origin(self) -> str:
        return f"operator {self.index} ({self.type_name})"

    def shape(self, position: int, output: bool = False) -> tuple[int, ...]:
        names = self.outputs if output else self.inputs
        return self.graph_tensors[names[position]].shape

    def activation(self) -> ir.Clip:
        code = self.options.fusedActivationFunction
        if code not in _ACTIVATIONS:
            raise UnsupportedError(
                f"{self.origin}: fused activation {code} is not supported "
                "(only NONE, RELU, RELU6, RELU_N1_TO_1)"
            )
        return _ACTIVATIONS[code]

    def padding(self, kernel: tuple[int, int], stride: tuple[int, int],
                dilation: tuple[int, int]) -> ir.Padding:
        if min(*kernel, *stride, *dilation) < 1:
            raise ModelFormatError(
                f"{self.origin}: kernel {kernel}, stride {stride} and dilation {dilation} "
                "must be positive"
            )
        if self.options.padding == fb.Padding.VALID:
            return ir.Padding()
        _, h, w, _ = self.shape(0)
        return same_padding((h, w), kernel, stride, dilation)


def _conv(op: _Operator) -> ir.Op:
    o = op.options
    stride, dilation = (o.strideH, o.strideW), (o.dilationHFactor, o.dilationWFactor)
    kernel = op.shape(1)[1:3]
    attrs = ir.Conv2D(stride, dilation, op.padding(kernel, stride, dilation), op.activation())
    return _make(op, attrs, op.inputs[:3])


def _depthwise(op: _Operator) -> ir.Op:
    o = op.options
    stride, dilation = (o.strideH, o.strideW), (o.dilationHFactor, o.dilationWFactor)
    kernel = op.shape(1)[1:3]
    multiplier = op.shape(1)[3] // max(op.shape(0)[3], 1)
    attrs = ir.DepthwiseConv2D(
        stride, dilation, op.padding(kernel, stride, dilation), multiplier, op.activation()
    )
    return _make(op, attrs, op.inputs[:3])


def _fully_connected(op: _Operator) -> ir.Op:
    if op.options is None:
        return _make(op, ir.FullyConnected(ir.NO_CLIP), op.inputs[:3])
    if op.options.weightsFormat != 0:
        raise UnsupportedError(f"{op.origin}: shuffled weights formats are not supported")
    return _make(op, ir.FullyConnected(op.activation()), op.inputs[:3])


def _pool(mode: str) -> Callable[[_Operator], ir.Op]:
    def convert(op: _Operator) -> ir.Op:
        o = op.options
        window, stride = (o.filterHeight, o.filterWidth), (o.strideH, o.strideW)
        attrs = ir.Pool2D(mode, window, stride, op.padding(window, stride, (1, 1)), op.activation())
        return _make(op, attrs, op.inputs[:1])

    return convert


def _add(op: _Operator) -> ir.Op:
    return _make(op, ir.Add(op.activation()), op.inputs[:2])


def _sub(op: _Operator) -> ir.Op:
    """SUB; a file may leave out its options table (no fused activation)."""
    return _make(op, ir.Sub(ir.NO_CLIP if op.options is None else op.activation()), op.inputs[:2])


def _squared_difference(op: _Operator) -> ir.Op:
    return _make(op, ir.SquaredDifference(), op.inputs[:2])


def _neg(op: _Operator) -> ir.Op:
    """NEG of a float tensor as SUB from a constant 0 (the float model the quantizer takes; in an
    int8 file, `_fold_negations` makes it an int8 SUB). TFLM's NEG computes float32 only."""
    x = op.graph_tensors[op.inputs[0]]
    if x.dtype != "float32":
        raise UnsupportedError(f"{op.origin}: NEG of {x.dtype} tensor {x.name!r} is not supported (TFLM's "
                               "NEG computes float32 only)")
    zero = f"{op.outputs[0]} (NEG's zero)"
    op.graph_tensors[zero] = ir.Tensor(zero, (), "float32", data=np.zeros((), np.float32))
    return _make(op, ir.Sub(ir.NO_CLIP), (zero, op.inputs[0]))


def _rsqrt(op: _Operator) -> ir.Op:
    return _make(op, ir.Rsqrt(), op.inputs[:1])


def _mul(op: _Operator) -> ir.Op:
    return _make(op, ir.Mul(op.activation()), op.inputs[:2])


def _concat(op: _Operator) -> ir.Op:
    if op.activation() != ir.NO_CLIP:
        raise UnsupportedError(f"{op.origin}: a fused activation on CONCATENATION is not supported")
    inputs = tuple(n for n in op.inputs if n)
    rank = len(op.shape(0, output=True))
    axis = op.options.axis + rank if op.options.axis < 0 else op.options.axis
    return _make(op, ir.Concat(axis), inputs)


def _pad(op: _Operator) -> ir.Op:
    paddings = op.graph_tensors[op.inputs[1]]
    rank = len(op.shape(0))
    if paddings.data is None or paddings.data.shape != (rank, 2):
        raise UnsupportedError(f"{op.origin}: paddings must be a constant [{rank}, 2] tensor")
    pads = tuple((int(a), int(b)) for a, b in paddings.data.astype(np.int64))
    return _make(op, ir.Pad(pads), op.inputs[:1])


def _constant(op: _Operator, position: int, what: str) -> np.ndarray:
    t = op.graph_tensors[op.inputs[position]]
    if t.data is None:
        raise UnsupportedError(f"{op.origin}: {what} ({t.name}) must be a constant")
    return t.data.astype(np.int64)


def _axis_bounds(begin: int, end: int, dim: int, begin_masked: bool, end_masked: bool) -> tuple[int, int]:
    """TFLite's StartForAxis/StopForAxis for a positive stride: masks, negatives, clamping."""
    begin = 0 if begin_masked else (begin + dim if begin < 0 else begin)
    end = dim if end_masked else (end + dim if end < 0 else end)
    return min(max(begin, 0), dim), min(max(end, 0), dim)


def _strided_slice(op: _Operator) -> ir.Op:
    o = op.options
    if o.ellipsisMask or o.newAxisMask:
        raise UnsupportedError(f"{op.origin}: ellipsis and new-axis masks are not supported")
    begin, end, strides = (_constant(op, i, what) for i, what in
                           ((1, "begin"), (2, "end"), (3, "strides")))
    shape = op.shape(0)
    if not len(begin) == len(end) == len(strides) == len(shape) or (strides <= 0).any():
        raise UnsupportedError(f"{op.origin}: begin/end/strides must cover every axis with positive strides")
    if o.offset:
        end = begin + end
    bounds = []
    for i, dim in enumerate(shape):
        shrink = bool(o.shrinkAxisMask & (1 << i))
        b, e = _axis_bounds(int(begin[i]), int(end[i]), dim, bool(o.beginMask & (1 << i)),
                            bool(o.endMask & (1 << i)) and not shrink)
        bounds.append((b, b + 1 if shrink else e))
    extents = [len(range(b, e, int(step))) for (b, e), step in zip(bounds, strides, strict=True)]
    _check_output_shape(op, 0, [n for i, n in enumerate(extents) if not o.shrinkAxisMask & (1 << i)])
    attrs = ir.Slice(tuple(b for b, _ in bounds), tuple(e for _, e in bounds), tuple(int(x) for x in strides))
    return _make(op, attrs, op.inputs[:1])


def _check_output_shape(op: _Operator, position: int, expected: list[int]) -> None:
    """TFLite requires a slice's output to have the slice's own shape (TFLM refuses others)."""
    found = list(op.shape(position, output=True))
    if found != expected:
        raise ModelFormatError(f"{op.state.where}: {op.origin}: output {position} "
                               f"({op.outputs[position]}) has shape {found}, the slice gives {expected}")


def _split_v(op: _Operator) -> list[ir.Op]:
    sizes = [int(v) for v in _constant(op, 1, "size_splits").reshape(-1)]
    axis = int(_constant(op, 2, "axis").reshape(-1)[0])
    return _split(op, op.inputs[0], sizes, axis)


def _split_equal(op: _Operator) -> list[ir.Op]:
    axis = int(_constant(op, 0, "axis").reshape(-1)[0])
    shape = op.graph_tensors[op.inputs[1]].shape
    axis = axis + len(shape) if axis < 0 else axis
    count = len(op.outputs)
    return _split(op, op.inputs[1], [shape[axis] // count] * count, axis)


def _split(op: _Operator, x: str, sizes: list[int], axis: int) -> list[ir.Op]:
    """A split as one slice per output."""
    shape = op.graph_tensors[x].shape
    axis = axis + len(shape) if axis < 0 else axis
    if sizes.count(-1) == 1:
        sizes[sizes.index(-1)] = shape[axis] - (sum(sizes) + 1)
    if sum(sizes) != shape[axis] or len(sizes) != len(op.outputs):
        raise ModelFormatError(f"{op.state.where}: {op.origin}: splits {sizes} of an axis of {shape[axis]}")
    ops, start = [], 0
    for k, (size, out) in enumerate(zip(sizes, op.outputs, strict=True)):
        begin = [0] * len(shape)
        end = list(shape)
        begin[axis], end[axis] = start, start + size
        _check_output_shape(op, k, [e - b for b, e in zip(begin, end, strict=True)])
        attrs = ir.Slice(tuple(begin), tuple(end), (1,) * len(shape))
        ops.append(ir.Op(f"op{op.index}_{op.type_name.lower()}_{k}", attrs, (x,), (out,), op.origin))
        start += size
    return ops


def _reduce(mode: str) -> Callable[[_Operator], ir.Op | list[ir.Op]]:
    """MEAN and REDUCE_MAX over axes that are neighbours (the time axis of [N, T, C], H and W of
    NHWC): the input seen as [outer, reduced, 1, inner], averaged as TFLite's MEAN over H and W
    (whose integer arithmetic depends only on the sum and the count) or max-pooled."""

    def convert(op: _Operator) -> ir.Op | list[ir.Op]:
        shape = op.shape(0)
        rank = max(len(shape), 1)
        axes = sorted({int(a) % rank for a in _constant(op, 1, "axis").reshape(-1)})
        keep = bool(op.options.keepDims)
        if len(shape) == 4 and axes == [1, 2]:
            if mode == "mean":
                return _make(op, ir.Mean(keep), op.inputs[:1])
            return _reduced(op, op.inputs[0], shape, (shape[0], 1, 1, shape[3]), mode)
        if not axes or any(shape[a] != 1 for a in range(axes[0], axes[-1] + 1) if a not in axes):
            raise UnsupportedError(f"{op.origin}: {op.type_name} over axes {axes} of a {len(shape)}-D "
                                   "tensor is not supported (only over neighbouring axes)")
        outer = int(np.prod(shape[: axes[0]], dtype=np.int64))
        inner = int(np.prod(shape[axes[-1] + 1 :], dtype=np.int64))
        view = (outer, int(np.prod([shape[a] for a in axes], dtype=np.int64)), 1, inner)
        x = op.graph_tensors[op.inputs[0]]
        seen = _intermediate(op, f"{op.inputs[0]}_as_{view[0]}x{view[1]}x1x{view[3]}", replace(x, shape=view))
        reshape = ir.Op(f"op{op.index}_view", ir.Reshape(), (op.inputs[0],), (seen,), op.origin)
        return [reshape, *_reduced(op, seen, view, (outer, 1, 1, inner), mode)]

    return convert


def _reduced(op: _Operator, source: str, view: tuple[int, ...], reduced: tuple[int, ...],
             mode: str) -> list[ir.Op]:
    """The reduction of `source` (4-D `view`) into op's output, through a [outer, 1, 1, inner]
    tensor when the output's shape differs."""
    y = op.graph_tensors[op.outputs[0]]
    attrs: ir.Attrs = ir.Mean(True) if mode == "mean" else \
        ir.Pool2D("max", (view[1], view[2]), (1, 1), ir.Padding(), ir.NO_CLIP)
    name = f"op{op.index}_{op.type_name.lower()}"
    if tuple(y.shape) == reduced:
        return [ir.Op(name, attrs, (source,), op.outputs[:1], op.origin)]
    target = _intermediate(op, f"{op.outputs[0]}_kept_dims", replace(y, shape=reduced))
    return [ir.Op(name, attrs, (source,), (target,), op.origin),
            ir.Op(f"{name}_reshape", ir.Reshape(), (target,), op.outputs[:1], op.origin)]


def _intermediate(op: _Operator, base: str, like: ir.Tensor) -> str:
    """A tensor the import adds between two IR operators (not in the file)."""
    name = base
    while name in op.graph_tensors:
        name += "#"
    op.graph_tensors[name] = replace(like, name=name, data=None)
    return name


def _prelu(op: _Operator) -> ir.Op:
    return _make(op, ir.PRelu(), op.inputs[:2])


def _relu(low: float | None, high: float | None) -> Callable[[_Operator], ir.Op]:
    def convert(op: _Operator) -> ir.Op:
        return _make(op, ir.Relu(low, high), op.inputs[:1])

    return convert


def _transpose(op: _Operator) -> ir.Op:
    perm = tuple(int(p) for p in _constant(op, 1, "perm").reshape(-1))
    return _make(op, ir.Transpose(perm), op.inputs[:1])


def _logistic(op: _Operator) -> ir.Op:
    return _make(op, ir.Logistic(), op.inputs[:1])


def _extremum(mode: str) -> Callable[[_Operator], ir.Op]:
    def convert(op: _Operator) -> ir.Op:
        return _make(op, ir.Extremum(mode), op.inputs[:2])

    return convert


def _tanh(op: _Operator) -> ir.Op:
    return _make(op, ir.Tanh(), op.inputs[:1])


def _hard_swish(op: _Operator) -> ir.Op:
    return _make(op, ir.HardSwish(), op.inputs[:1])


def _leaky_relu(op: _Operator) -> ir.Op:
    return _make(op, ir.LeakyRelu(float(op.options.alpha)), op.inputs[:1])


def _quantize(op: _Operator) -> ir.Op:
    return _make(op, ir.Quantize(), op.inputs[:1])


def _variable(op: _Operator, handle: str, like: ir.Tensor) -> str:
    """The variable tensor behind a resource handle, created with `like`'s shape and quantization."""
    if handle not in op.state.handles:
        raise ModelFormatError(f"{op.state.where}: {op.origin} uses resource {handle!r}, which no "
                               "VAR_HANDLE created")
    name = op.state.handles[handle]
    known = op.state.variables.get(name)
    if known is None:
        op.state.variables[name] = ir.Tensor(name, like.shape, like.dtype, like.quant)
    elif (known.shape, known.dtype, known.quant) != (like.shape, like.dtype, like.quant):
        raise UnsupportedError(f"{op.origin}: variable {name!r} is used with different shapes or "
                               "quantizations")
    return name


def _var_handle(op: _Operator) -> list[ir.Op]:
    shared = op.options.sharedName.decode("utf-8", "replace") if op.options.sharedName else op.outputs[0]
    container = op.options.container.decode("utf-8", "replace") if op.options.container else ""
    op.state.handles[op.outputs[0]] = _VARIABLE + (f"{container}/{shared}" if container else shared)
    return []


def _read_variable(op: _Operator) -> ir.Op:
    var = _variable(op, op.inputs[0], op.graph_tensors[op.outputs[0]])
    return _make(op, ir.ReadVariable(), (var,))


def _assign_variable(op: _Operator) -> ir.Op:
    var = _variable(op, op.inputs[0], op.graph_tensors[op.inputs[1]])
    return ir.Op(f"op{op.index}_assign_variable", ir.AssignVariable(), (op.inputs[1],), (var,), op.origin)


def _call_once(op: _Operator) -> list[ir.Op]:
    """Run the init subgraph now: it may only assign constants to variables."""
    index = op.options.initSubgraphIndex
    state = op.state
    subs = state.model.subgraphs
    if not 0 < index < len(subs):
        raise ModelFormatError(f"{state.where}: {op.origin} calls subgraph {index}, which does not exist")
    tensors, names = _tensors(state.model, subs[index], state.data, state.where)
    handles: dict[str, str] = {}
    for k, top in enumerate(subs[index].operators or []):
        type_name = _type_name(state.model, top)
        ins = [_name(names, i, state.where, f"init operator {k} input") for i in _indices(top.inputs)]
        outs = [_name(names, i, state.where, f"init operator {k} output") for i in _indices(top.outputs)]
        inner = _Operator(k, type_name, top.builtinOptions, tuple(ins), tuple(outs), tensors, state)
        if type_name == "VAR_HANDLE":
            saved = state.handles
            state.handles = handles
            _var_handle(inner)
            state.handles = saved
        elif type_name == "ASSIGN_VARIABLE" and ins[0] in handles and tensors[ins[1]].data is not None:
            state.initial[handles[ins[0]]] = tensors[ins[1]].data
        else:
            raise UnsupportedError(f"{state.where}: init subgraph {index}, operator {k} ({type_name}): "
                                   "an init subgraph may only assign constants to variables")
    return []


def _resize(mode: str) -> Callable[[_Operator], ir.Op]:
    def convert(op: _Operator) -> ir.Op:
        """The `size` input a constant [2] that is the output's H and W (TFLM requires a constant)."""
        size = [int(v) for v in _constant(op, 1, "size")]
        found = list(op.shape(0, output=True))
        if len(found) != 4 or size != found[1:3]:
            raise ModelFormatError(f"{op.state.where}: {op.origin}: size {size} does not match output 0 "
                                   f"({op.outputs[0]}) of shape {found}")
        o = op.options
        return _make(op, ir.Resize(mode, bool(o.alignCorners), bool(o.halfPixelCenters)), op.inputs[:1])
    return convert


def _softmax(op: _Operator) -> ir.Op:
    return _make(op, ir.Softmax(float(op.options.beta)), op.inputs[:1])


def _reshape(op: _Operator) -> ir.Op:
    return _make(op, ir.Reshape(), op.inputs[:1])


# UNIDIRECTIONAL_SEQUENCE_LSTM's inputs by position (TFLite's lstm_shared.h).
_LSTM_INPUT_WEIGHTS = (1, 2, 3, 4)  # input, forget, cell, output gates
_LSTM_RECURRENT_WEIGHTS = (5, 6, 7, 8)
_LSTM_PEEPHOLES = (9, 10, 11)
_LSTM_BIASES = (12, 13, 14, 15)
_LSTM_PROJECTION = (16, 17)
_LSTM_HIDDEN_STATE, _LSTM_CELL_STATE = 18, 19
_LSTM_LAYER_NORM = (20, 21, 22, 23)


def _lstm(op: _Operator) -> ir.Op:
    """UNIDIRECTIONAL_SEQUENCE_LSTM with four gates, tanh, no peephole, projection or layer
    normalisation; its hidden and cell state tensors give their quantization to the IR op."""
    ins = op.inputs + ("",) * (24 - len(op.inputs))
    o = op.options
    forms = (("coupled input and forget gates (CIFG: no input gate weights)",
              not (ins[1] and ins[5] and ins[12])),
             ("peephole connections", any(ins[i] for i in _LSTM_PEEPHOLES)),
             ("a projection layer", any(ins[i] for i in _LSTM_PROJECTION)),
             ("layer normalisation", any(ins[i] for i in _LSTM_LAYER_NORM)),
             ("diagonal recurrent weights", bool(getattr(o, "diagonalRecurrentTensors", False))),
             ("asymmetrically quantized inputs (a hybrid float LSTM)", bool(o.asymmetricQuantizeInputs)))
    for what, present in forms:
        if present:
            raise UnsupportedError(f"{op.origin}: an LSTM with {what} is not supported (mcudeploy deploys "
                                   "the integer LSTM with four gates, as Keras' LSTM layer converts)")
    if o.fusedActivationFunction != fb.ActivationFunctionType.TANH:
        raise UnsupportedError(f"{op.origin}: an LSTM whose cell activation is not tanh (fused activation "
                               f"{o.fusedActivationFunction}) is not supported")
    needed = (*_LSTM_INPUT_WEIGHTS, *_LSTM_RECURRENT_WEIGHTS, *_LSTM_BIASES, _LSTM_HIDDEN_STATE,
              _LSTM_CELL_STATE)
    missing = [i for i in needed if not ins[i]]
    if missing:
        raise ModelFormatError(f"{op.origin}: LSTM input(s) {missing} are missing")
    x, y = op.graph_tensors[ins[0]], op.graph_tensors[op.outputs[0]]
    hidden, cell = op.graph_tensors[ins[_LSTM_HIDDEN_STATE]], op.graph_tensors[ins[_LSTM_CELL_STATE]]
    if len(x.shape) != 3 or len(y.shape) != 3:
        raise ModelFormatError(f"{op.origin}: the LSTM's input {list(x.shape)} and output {list(y.shape)} "
                               "must have 3 dimensions")
    sub = op.state.model.subgraphs[0]
    names = tensor_names(sub)
    for state in (hidden, cell):
        if state.is_constant or not sub.tensors[names.index(state.name)].isVariable:
            raise UnsupportedError(f"{op.origin}: the LSTM's state tensor {state.name!r} is not a variable "
                                   "tensor; mcudeploy deploys an LSTM whose state starts at zero at each "
                                   "inference, not one whose state comes from the graph")
    if hidden.quant != y.quant or hidden.dtype != y.dtype:
        raise UnsupportedError(f"{op.origin}: the LSTM's hidden state {hidden.name!r} and its output "
                               f"{y.name!r} differ in type or quantization")
    if cell.quant is None or len(cell.quant.scale) != 1 or cell.dtype != "int16":
        raise UnsupportedError(f"{op.origin}: the LSTM's cell state {cell.name!r} is not int16 quantized "
                               "per tensor")
    attrs = ir.Lstm(bool(o.timeMajor), float(o.cellClip), cell.quant.scale[0], op.state.keep_lstm_state)
    inputs = tuple(ins[i] for i in (0, *_LSTM_INPUT_WEIGHTS, *_LSTM_RECURRENT_WEIGHTS, *_LSTM_BIASES))
    if not attrs.keeps_state:
        return _make(op, attrs, inputs)
    variables = []
    for state, initial in ((hidden, hidden.zero_point), (cell, 0)):  # TFLM's reset of its variables
        name = _VARIABLE + state.name
        op.state.variables[name] = ir.Tensor(name, state.shape, state.dtype, state.quant)
        op.state.initial[name] = np.full(state.shape, initial, state.dtype)
        variables.append(name)
    return _make(op, attrs, (*inputs, *variables))


def _make(op: _Operator, attrs: ir.Attrs, inputs: tuple[str, ...]) -> ir.Op:
    name = f"op{op.index}_{op.type_name.lower()}"
    return ir.Op(name, attrs, inputs, op.outputs[:1], op.origin)


@dataclass(frozen=True)
class Converter:
    """How one TFLite operator becomes IR: the IR attributes class, the inputs it must have
    (with their ranks), and the function."""

    attrs: type
    input_ranks: tuple[int | None, ...]
    convert: Callable[[_Operator], ir.Op | list[ir.Op]]


CONVERTERS: dict[str, Converter] = {
    "CONV_2D": Converter(ir.Conv2D, (4, 4), _conv),
    "DEPTHWISE_CONV_2D": Converter(ir.DepthwiseConv2D, (4, 4), _depthwise),
    "FULLY_CONNECTED": Converter(ir.FullyConnected, (None, 2), _fully_connected),
    "AVERAGE_POOL_2D": Converter(ir.Pool2D, (4,), _pool("avg")),
    "MAX_POOL_2D": Converter(ir.Pool2D, (4,), _pool("max")),
    "ADD": Converter(ir.Add, (None, None), _add),
    "SUB": Converter(ir.Sub, (None, None), _sub),
    "SQUARED_DIFFERENCE": Converter(ir.SquaredDifference, (None, None), _squared_difference),
    "NEG": Converter(ir.Sub, (None,), _neg),
    "MUL": Converter(ir.Mul, (None, None), _mul),
    "CONCATENATION": Converter(ir.Concat, (None,), _concat),
    "PAD": Converter(ir.Pad, (None, 2), _pad),
    "SOFTMAX": Converter(ir.Softmax, (None,), _softmax),
    "RESHAPE": Converter(ir.Reshape, (None,), _reshape),
    "SQUEEZE": Converter(ir.Reshape, (None,), _reshape),  # Keras Conv1D: EXPAND_DIMS, CONV_2D, SQUEEZE
    "EXPAND_DIMS": Converter(ir.Reshape, (None, None), _reshape),
    "STRIDED_SLICE": Converter(ir.Slice, (None, 1, 1, 1), _strided_slice),
    "SPLIT_V": Converter(ir.Slice, (None, 1, None), _split_v),
    "SPLIT": Converter(ir.Slice, (None, None), _split_equal),
    "MEAN": Converter(ir.Mean, (None, None), _reduce("mean")),
    "REDUCE_MAX": Converter(ir.Pool2D, (None, None), _reduce("max")),
    "PRELU": Converter(ir.PRelu, (None, None), _prelu),
    "RELU": Converter(ir.Relu, (None,), _relu(0.0, None)),
    "RELU6": Converter(ir.Relu, (None,), _relu(0.0, 6.0)),
    "RELU_N1_TO_1": Converter(ir.Relu, (None,), _relu(-1.0, 1.0)),
    "TRANSPOSE": Converter(ir.Transpose, (None, 1), _transpose),
    "LOGISTIC": Converter(ir.Logistic, (None,), _logistic),
    "TANH": Converter(ir.Tanh, (None,), _tanh),
    "HARD_SWISH": Converter(ir.HardSwish, (None,), _hard_swish),
    "RSQRT": Converter(ir.Rsqrt, (None,), _rsqrt),
    "MAXIMUM": Converter(ir.Extremum, (None, None), _extremum("max")),
    "MINIMUM": Converter(ir.Extremum, (None, None), _extremum("min")),
    "LEAKY_RELU": Converter(ir.LeakyRelu, (None,), _leaky_relu),
    "QUANTIZE": Converter(ir.Quantize, (None,), _quantize),
    "DEQUANTIZE": Converter(ir.Quantize, (None,), _quantize),
    "VAR_HANDLE": Converter(ir.ReadVariable, (), _var_handle),
    "READ_VARIABLE": Converter(ir.ReadVariable, (None,), _read_variable),
    "ASSIGN_VARIABLE": Converter(ir.AssignVariable, (None, None), _assign_variable),
    "CALL_ONCE": Converter(ir.AssignVariable, (), _call_once),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": Converter(ir.Lstm, (3,), _lstm),
    "RESIZE_BILINEAR": Converter(ir.Resize, (4, 1), _resize("bilinear")),
    "RESIZE_NEAREST_NEIGHBOR": Converter(ir.Resize, (4, 1), _resize("nearest")),
}
"""TFLite builtin operators mcudeploy imports, by schema name."""


def _check_structure(op: _Operator, converter: Converter, where: str) -> None:
    """The operator has the inputs, ranks, output and options its converter reads."""
    need = len(converter.input_ranks)
    needs_output = converter.convert not in (_assign_variable, _call_once)
    if len(op.inputs) < need or not all(op.inputs[:need]) or (needs_output and len(op.outputs) < 1):
        raise ModelFormatError(
            f"{where}: {op.origin} has inputs {list(op.inputs)} and outputs {list(op.outputs)}; "
            f"it needs {need} input(s) and an output"
        )
    for position, rank in enumerate(converter.input_ranks):
        shape = op.shape(position)
        if rank is not None and len(shape) != rank:
            raise ModelFormatError(
                f"{where}: {op.origin} input {position} ({op.inputs[position]}) has shape "
                f"{list(shape)}, expected {rank} dimensions"
            )
    takes_options = converter.attrs not in (ir.Reshape, ir.Pad, ir.Logistic, ir.Tanh, ir.HardSwish,
                                            ir.Extremum, ir.Quantize, ir.PRelu, ir.Relu,
                                            ir.Transpose, ir.Rsqrt, ir.Sub, ir.SquaredDifference) and \
        converter.convert not in (_read_variable, _assign_variable)
    if takes_options and op.options is None and op.type_name != "FULLY_CONNECTED":
        raise ModelFormatError(f"{where}: {op.origin} has no options table")


def load_tflite(path: Path) -> ir.Graph:
    """Read an int8 TFLite file into the IR; malformed files raise ModelFormatError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse_tflite(data, path.name, str(path))


def read_model(data: bytes, where: str) -> fb.ModelT:
    """The flatbuffer as objects, checked as a whole (`tflite_checks`): a file that is not TFLite or
    is damaged raises ModelFormatError naming what is wrong."""
    if len(data) < 8 or not fb.Model.ModelBufferHasIdentifier(data, 0):
        ident = data[4:8] if len(data) >= 8 else data
        raise ModelFormatError(
            f"{where}: not a TFLite flatbuffer (file identifier at bytes 4-7 is {bytes(ident)!r},"
            " expected b'TFL3')"
        )
    try:
        model = fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))
    except Exception as exc:  # flatbuffers raises IndexError/struct.error/... on damage
        raise ModelFormatError(f"{where}: corrupt TFLite flatbuffer ({exc!r})") from exc
    check_model(model, data, where)
    return model


def parse_tflite(data: bytes, name: str, where: str = "model", keep_lstm_state: bool = False) -> ir.Graph:
    """Parse TFLite flatbuffer bytes; `where` names the file in error messages. With
    `keep_lstm_state` an LSTM keeps its state from one inference to the next (TFLite's variable
    tensors), else it starts from the zero state at each."""
    model = read_model(data, where)
    try:
        return _to_graph(model, data, name, where, keep_lstm_state)
    except MCUDeployError as exc:  # the converters name the operator; the file goes first
        if str(exc).startswith(where):
            raise
        raise type(exc)(f"{where}: {exc}") from None
    except (IndexError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFormatError(f"{where}: inconsistent TFLite model ({exc})") from exc


def _type_name(model: fb.ModelT, top: fb.OperatorT) -> str:
    return builtin_name(model.operatorCodes[top.opcodeIndex])


def _to_graph(model: fb.ModelT, data: bytes, name: str, where: str, keep_lstm_state: bool) -> ir.Graph:
    sub = model.subgraphs[0]
    tensors, names = _tensors(model, sub, data, where)
    state = _State(model, data, where, {}, {}, {}, keep_lstm_state)
    ops: list[ir.Op] = []
    called = set()
    folded: list[str] = []
    refusals: list[tuple[str, str, str]] = []
    poisoned: set[str] = set()  # outputs of refused operators: what reads them is not checked
    for index, top in enumerate(sub.operators or []):
        type_name = _type_name(model, top)
        ins = tuple(_name(names, i, where, f"operator {index} input", optional=True)
                    for i in _indices(top.inputs))
        outs = tuple(_name(names, i, where, f"operator {index} output") for i in _indices(top.outputs))
        op = _Operator(index, type_name, top.builtinOptions, ins, outs, tensors, state)
        if poisoned & set(ins):  # its inputs are unknown: only its type can be checked
            poisoned.update(outs)
            if type_name not in CONVERTERS:
                refusals.append((str(index), type_name, f"is not supported{_HINTS.get(type_name, '')}"))
            continue
        if len(outs) == 1 and all(ins):
            value = fold_constant(type_name, op.options, [tensors[n] for n in ins], tensors[outs[0]])
            if value is not None:
                tensors[outs[0]] = replace(tensors[outs[0]], data=value, shape=value.shape)
                folded.append(type_name)
                continue
        try:
            if type_name not in CONVERTERS:
                raise UnsupportedError(f"is not supported{_HINTS.get(type_name, '')}")
            converter = CONVERTERS[type_name]
            _check_structure(op, converter, where)
            if type_name == "CALL_ONCE":
                called.add(op.options.initSubgraphIndex)
            made = converter.convert(op)
        except UnsupportedError as exc:
            text = str(exc).removeprefix(f"{where}: ").removeprefix(op.origin).lstrip(": ")
            refusals.append((str(index), type_name, text))
            poisoned.update(outs)
            continue
        ops += made if isinstance(made, list) else [made]
    if refusals:
        message = _refusal_message(where, refusals)
        if len(refusals) == 1 and refusals[0][2].startswith("is not supported"):  # name its tensors
            top = sub.operators[int(refusals[0][0])]
            ins = [_name(names, i, where, "input", optional=True) for i in _indices(top.inputs)]
            outs = [_name(names, i, where, "output") for i in _indices(top.outputs)]
            message += f" (inputs: {', '.join(filter(None, ins))}; outputs: {', '.join(outs)})"
        raise UnsupportedError(message)
    extra = set(range(1, len(model.subgraphs))) - called
    if extra:
        raise UnsupportedError(f"{where}: subgraph(s) {sorted(extra)} are not init subgraphs called "
                               "once; control flow between subgraphs is not supported")
    variables = {
        var: np.asarray(state.initial[var] if var in state.initial else np.zeros(t.shape, t.dtype),
                        dtype=t.dtype).reshape(t.shape)
        for var, t in state.variables.items()
    }
    for var, value in variables.items():
        if value.size != state.variables[var].size:
            raise ModelFormatError(f"{where}: variable {var!r} is initialised with {value.size} values, "
                                   f"it holds {state.variables[var].size}")
    inputs = [_name(names, i, where, "model input") for i in _indices(sub.inputs)]
    outputs = [_name(names, i, where, "model output") for i in _indices(sub.outputs)]
    float_io: dict[str, str] = {}
    uint8_io: dict[str, str] = {}
    ops, negated = _fold_negations(ops, tensors, where)
    ops = _strip_float_boundaries(ops, inputs, outputs, tensors, float_io)
    ops = _strip_uint8_boundaries(ops, inputs, outputs, tensors, uint8_io)
    notes: tuple[str, ...] = ()
    if folded:
        counts = {t: folded.count(t) for t in dict.fromkeys(folded)}
        shown = ", ".join(f"{t} x{n}" if n > 1 else t for t, n in counts.items())
        notes = (f"{name}: shape computations folded to constants for batch 1 ({shown})",)
    if negated:
        notes += (f"{name}: float NEG between DEQUANTIZE and QUANTIZE of one scale computed as an int8 SUB "
                  f"from 0, exactly ({', '.join(negated)})",)
    return ir.Graph(
        name=name.removesuffix(".tflite"),
        tensors={**tensors, **state.variables},
        ops=tuple(ops),
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        variables=variables,
        float_io=float_io,
        uint8_io=uint8_io,
        notes=notes,
    )


_HINTS = {
    "SHAPE": ": the shape of its input is computed at run time; export the model with "
             "`keras.Input(..., batch_size=1)` so that the converter writes constant shapes",
}
_SUPPORTED_LIST = "docs/SUPPORTED_OPS.md lists the operators mcudeploy imports"
_MAX_LISTED = 12


def _refusal_message(where: str, refusals: list[tuple[str, str, str]]) -> str:
    """One line naming every refused operator; operators of one type refused for the same reason
    are named together. `refusals` holds (operator index, type, reason)."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for index, kind, reason in refusals:
        grouped.setdefault((kind, reason), []).append(index)
    parts = []
    for (kind, reason), indices in grouped.items():
        numbers = ", ".join(indices[:_MAX_LISTED])
        if len(indices) > _MAX_LISTED:
            numbers += f" and {len(indices) - _MAX_LISTED} more"
        many = len(indices) > 1
        if reason.startswith("is not supported"):
            verb = "are not supported" if many else "is not supported"
            parts.append(f"operator{'s' if many else ''} {numbers} ({kind}) {verb}{reason[16:]}")
        else:
            parts.append(f"operator{'s' if many else ''} {numbers} ({kind}): {reason}")
    count = f"{len(refusals)} operators cannot be imported: " if len(refusals) > 1 else ""
    text = f"{where}: {count}" + "; ".join(parts)
    if any(reason.startswith("is not supported") for _, _, reason in refusals):
        text += f" ({_SUPPORTED_LIST})"
    return text


def _fold_negations(ops: list[ir.Op], tensors: dict[str, ir.Tensor], where: str
                    ) -> tuple[list[ir.Op], list[str]]:
    """An int8 file's float island DEQUANTIZE, NEG, QUANTIZE (Keras' LayerNormalization converted to
    full int8 negates its mean so) becomes one int8 SUB from a constant 0. With one scale on both
    sides the float path computes z_out - (q - z_in), clamped, which that SUB computes exactly;
    other scales are refused. Returns the operators and the NEG operators so computed."""
    producers = {out: op for op in ops for out in op.outputs}
    readers: dict[str, list[ir.Op]] = {}
    for op in ops:
        for name in op.inputs:
            readers.setdefault(name, []).append(op)
    replaced: dict[int, ir.Op | None] = {}
    negated = []
    for neg in ops:
        if neg.kind != "sub" or not neg.name.endswith("_neg"):
            continue
        dequantize, after = producers.get(neg.inputs[1]), readers.get(neg.outputs[0], [])
        if dequantize is None or dequantize.kind != "quantize" or len(readers[neg.inputs[1]]) != 1 \
                or len(after) != 1 or after[0].kind != "quantize":
            continue
        x, y = tensors[dequantize.inputs[0]], tensors[after[0].outputs[0]]
        if x.dtype != "int8" or y.dtype != "int8":
            continue
        if x.quant is None or y.quant is None or len(x.quant.scale) != 1 or x.scale != y.scale:
            raise UnsupportedError(f"{where}: {neg.origin}: a float NEG between DEQUANTIZE of {x.name!r} "
                                   f"and QUANTIZE to {y.name!r} is supported only with one scale on both "
                                   f"sides (here {x.quant and x.quant.scale} and "
                                   f"{y.quant and y.quant.scale})")
        zero = neg.inputs[0]
        tensors[zero] = ir.Tensor(zero, (), "int8", ir.QuantParams((x.scale,), (0,)), np.zeros((), np.int8))
        replaced[id(dequantize)] = None
        replaced[id(after[0])] = None
        replaced[id(neg)] = replace(neg, inputs=(zero, x.name), outputs=after[0].outputs)
        negated.append(neg.origin)
    kept = (replaced.get(id(op), op) for op in ops)
    return [op for op in kept if op is not None], negated


def _strip_float_boundaries(ops: list[ir.Op], inputs: list[str], outputs: list[str],
                            tensors: dict[str, ir.Tensor], float_io: dict[str, str]) -> list[ir.Op]:
    """An int8 (or int16) body with float I/O wrappers (QUANTIZE of a float input, DEQUANTIZE to a
    float output): the device takes and gives the integers, the host quantizes and dequantizes.
    `inputs` and `outputs` are updated in place to the integer tensors, and `float_io` records each
    integer tensor's float one."""
    for k, name in enumerate(inputs):
        users = [op for op in ops if name in op.inputs]
        if tensors[name].dtype == "float32" and len(users) == 1 and users[0].kind == "quantize" \
                and tensors[users[0].outputs[0]].dtype in ("int8", "int16") \
                and tensors[users[0].outputs[0]].shape == tensors[name].shape:
            inputs[k] = users[0].outputs[0]
            float_io[inputs[k]] = name
            ops = [op for op in ops if op is not users[0]]
    for k, name in enumerate(outputs):
        producer = next((op for op in ops if name in op.outputs), None)
        if tensors[name].dtype == "float32" and producer is not None and producer.kind == "quantize" \
                and tensors[producer.inputs[0]].dtype in ("int8", "int16") \
                and producer.inputs[0] not in inputs \
                and tensors[producer.inputs[0]].shape == tensors[name].shape:
            outputs[k] = producer.inputs[0]
            float_io[producer.inputs[0]] = name
            ops = [op for op in ops if op is not producer]
    return ops


def _strip_uint8_boundaries(ops: list[ir.Op], inputs: list[str], outputs: list[str],
                            tensors: dict[str, ir.Tensor], uint8_io: dict[str, str]) -> list[ir.Op]:
    """uint8 inputs QUANTIZEd to int8 and int8 outputs QUANTIZEd to uint8 by the shift TFLite's
    converter writes (`inference_input_type=tf.uint8`: the same scale, zero points 128 apart): the
    host adds or subtracts 128 and the device runs the int8 graph. `inputs` and `outputs` are
    updated in place to the int8 tensors, and `uint8_io` records each int8 tensor's uint8 one.
    Other uint8 QUANTIZEs stay operators."""
    for k, name in enumerate(inputs):
        users = [op for op in ops if name in op.inputs]
        if len(users) == 1 and users[0].kind == "quantize" \
                and _shift(tensors[name], tensors[users[0].outputs[0]]):
            inputs[k] = users[0].outputs[0]
            uint8_io[inputs[k]] = name
            ops = [op for op in ops if op is not users[0]]
    for k, name in enumerate(outputs):
        producer = next((op for op in ops if name in op.outputs), None)
        if producer is not None and producer.kind == "quantize" and producer.inputs[0] not in inputs \
                and _shift(tensors[name], tensors[producer.inputs[0]]):
            outputs[k] = producer.inputs[0]
            uint8_io[outputs[k]] = name
            ops = [op for op in ops if op is not producer]
    return ops


def _shift(uint8: ir.Tensor, int8: ir.Tensor) -> bool:
    """The uint8 tensor holds the int8 one's values plus 128 (same shape and scale, zero points 128
    apart)."""
    return uint8.dtype == "uint8" and int8.dtype == "int8" and uint8.shape == int8.shape \
        and uint8.quant is not None and int8.quant is not None \
        and len(uint8.quant.scale) == len(int8.quant.scale) == 1 \
        and uint8.scale == int8.scale and uint8.zero_point - 128 == int8.zero_point


def _indices(vector: object) -> list[int]:
    """A flatbuffer int vector (None, list or numpy array) as a list."""
    return [] if vector is None else [int(i) for i in vector]


def _name(names: list[str], index: int, where: str, what: str, optional: bool = False) -> str:
    """The tensor name for a tensor index, refusing indices outside the tensor list."""
    if optional and index == -1:
        return ""
    if not 0 <= index < len(names):
        raise ModelFormatError(f"{where}: {what} refers to tensor {index}, "
                               f"but the subgraph has {len(names)} tensors")
    return names[index]


def tensor_names(sub: fb.SubGraphT) -> list[str]:
    """The IR name of each tensor of a subgraph, by index: its name in the file, made unique."""
    taken: dict[str, int] = {}
    for index, t in enumerate(sub.tensors or []):
        base = t.name.decode("utf-8", "replace") if t.name else f"tensor{index}"
        taken[_unique_name(base, index, taken)] = index
    return list(taken)


def _tensors(
    model: fb.ModelT, sub: fb.SubGraphT, data: bytes, where: str
) -> tuple[dict[str, ir.Tensor], list[str]]:
    tensors: dict[str, ir.Tensor] = {}
    names = tensor_names(sub)
    for index, (t, unique) in enumerate(zip(sub.tensors or [], names, strict=True)):
        dtype = _DTYPES.get(t.type)
        if dtype is None:
            type_name = _TYPE_NAMES.get(t.type, str(t.type))
            base = t.name.decode("utf-8", "replace") if t.name else f"tensor{index}"
            raise UnsupportedError(f"{where}: tensor {index} ({base}) is {type_name}; mcudeploy reads int8 "
                                   "TFLite files and float ones (float32 activations; float32, float16 or "
                                   "int8 weights)")
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
        tensors[unique] = ir.Tensor(
            name=unique, shape=shape, dtype=dtype, quant=_quant(t.quantization),
            data=_buffer(model, t, data, dtype, shape, index, where),
        )
    return tensors, names


def _unique_name(base: str, index: int, taken: Container[str]) -> str:
    """Tensor `index`'s name in the IR: its name in the file, unless an earlier tensor has it
    (then `name#index`, or more `#` while that is taken too) or it starts as the names of resource
    variables do (`variable:`; then `tensor<index> name`)."""
    unique = base if base not in taken else f"{base}#{index}"
    if unique.startswith(_VARIABLE):
        unique = f"tensor{index} {unique}"
    while unique in taken:
        unique += "#"
    return unique


def _quant(q: fb.QuantizationParametersT | None) -> ir.QuantParams | None:
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    zero = [int(z) for z in q.zeroPoint] if q.zeroPoint is not None else [0] * len(q.scale)
    axis = int(q.quantizedDimension) if len(q.scale) > 1 else None
    return ir.QuantParams(tuple(float(np.float32(s)) for s in q.scale), tuple(zero), axis)


def _buffer(model: fb.ModelT, t: fb.TensorT, data: bytes, dtype: str, shape: tuple[int, ...],
            index: int, where: str) -> np.ndarray | None:
    if t.buffer <= 0 or t.buffer >= len(model.buffers or []):
        return None
    buf = model.buffers[t.buffer]
    if dtype == "resource" and ((buf.data is not None and len(buf.data) > 0) or buf.offset > 1):
        raise ModelFormatError(f"{where}: tensor {index} is a RESOURCE handle but holds data "
                               f"(buffer {t.buffer})")
    if buf.data is not None and len(buf.data) > 0:
        raw = np.asarray(buf.data, dtype=np.uint8).tobytes()
    elif buf.offset > 1:
        raw = data[buf.offset : buf.offset + buf.size]
    else:
        return None
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if len(raw) != expected:
        raise ModelFormatError(
            f"{where}: tensor {index} has {len(raw)} bytes of data, its shape {list(shape)} "
            f"of {dtype} needs {expected}"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()

"""IR → int8 TFLite flatbuffer, so that TFLM can run exactly the graph mcudeploy deploys.

Written with the object API of the schema module shipped in tflite-micro; the flatbuffers
library does the serialisation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from mcudeploy import ir
from mcudeploy.arith.params import activation_range
from mcudeploy.errors import UnsupportedError
from mcudeploy.frontends.padding import same_padding
from mcudeploy.ir import Tensor

_TYPES = {"float32": fb.TensorType.FLOAT32, "int32": fb.TensorType.INT32, "uint8": fb.TensorType.UINT8,
          "int8": fb.TensorType.INT8, "int64": fb.TensorType.INT64, "int16": fb.TensorType.INT16}
Writer = Callable[["_Writer", ir.Op], None]
_ACTIVATIONS = {
    ir.NO_CLIP: fb.ActivationFunctionType.NONE,
    ir.Clip(0.0, None): fb.ActivationFunctionType.RELU,
    ir.Clip(0.0, 6.0): fb.ActivationFunctionType.RELU6,
    ir.Clip(-1.0, 1.0): fb.ActivationFunctionType.RELU_N1_TO_1,
}


class _Writer:
    """The TFLite model being written: its tensors, buffers, operator codes and operators."""

    def __init__(self, graph: ir.Graph) -> None:
        self.graph = graph
        self.model = fb.ModelT()
        self.model.version = 3
        self.model.description = "mcudeploy"
        self.model.operatorCodes = []
        self.model.buffers = [fb.BufferT()]
        self.sub = fb.SubGraphT()
        self.sub.tensors, self.sub.operators = [], []
        self.index: dict[str, int] = {}
        self.deferred: list = []  # ops to write after the current one (a split clamp)

    def tensor(self, name: str) -> int:
        if name in self.index:
            return self.index[name]
        t = self.graph.tensor(name)
        tt = fb.TensorT()
        tt.name = name.encode()
        tt.shape = list(t.shape)
        tt.type = _TYPES[t.dtype]
        tt.buffer = 0
        if t.data is not None:
            buf = fb.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(t.data).tobytes(), dtype=np.uint8)
            self.model.buffers.append(buf)
            tt.buffer = len(self.model.buffers) - 1
        if t.quant is not None:
            q = fb.QuantizationParametersT()
            q.scale = list(t.quant.scale)
            q.zeroPoint = list(t.quant.zero_point)
            q.quantizedDimension = t.quant.axis or 0
            tt.quantization = q
        self.sub.tensors.append(tt)
        self.index[name] = len(self.sub.tensors) - 1
        return self.index[name]

    def add_tensor(self, tensor: Tensor) -> str:
        """An extra tensor that only the TFLite file needs, under a name no tensor has yet (its own,
        with `_` appended while taken: the model's names are anything its file says); returns it."""
        name = tensor.name
        while name in self.graph.tensors:
            name += "_"
        self.graph = replace(self.graph, tensors={**self.graph.tensors, name: replace(tensor, name=name)})
        return name

    def constant(self, name: str, value: np.ndarray) -> str:
        """An extra constant tensor that only the TFLite file needs (e.g. PAD's paddings)."""
        return self.add_tensor(Tensor(name, tuple(value.shape), str(value.dtype), None, value))

    def opcode(self, builtin: int) -> int:
        for i, code in enumerate(self.model.operatorCodes):
            if code.builtinCode == builtin:
                return i
        code = fb.OperatorCodeT()
        code.builtinCode = builtin
        code.deprecatedBuiltinCode = min(builtin, 127)
        code.version = 1
        self.model.operatorCodes.append(code)
        return len(self.model.operatorCodes) - 1

    def add_op(self, op: ir.Op, builtin: int, options_type: int, options: object,
               inputs: tuple[str, ...]) -> None:
        o = fb.OperatorT()
        o.opcodeIndex = self.opcode(builtin)
        o.inputs = [self.tensor(n) if n else -1 for n in inputs]
        o.outputs = [self.tensor(n) for n in op.outputs]
        o.builtinOptionsType = options_type
        o.builtinOptions = options
        self.sub.operators.append(o)

    def finish(self) -> bytes:
        self.sub.inputs = [self.tensor(n) for n in self.graph.inputs]
        self.sub.outputs = [self.tensor(n) for n in self.graph.outputs]
        self.sub.name = b"main"
        self.model.subgraphs = [self.sub]
        builder = flatbuffers.Builder(1024)
        builder.Finish(self.model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def _activation(op: ir.Op) -> int:
    clip = op.attrs.activation
    if clip not in _ACTIVATIONS:
        raise UnsupportedError(f"{op.origin}: activation {clip} has no TFLite fused equivalent")
    return _ACTIVATIONS[clip]


def _clamp(w: _Writer, op: ir.Op, x: str, low: int | None, high: int | None) -> None:
    """MAXIMUM with `low` then MINIMUM with `high` (quantized values in x's quantization), from x
    into op's output: a clamp TFLite has no fused or standalone form for."""
    t = w.graph.tensor(x)
    steps = [(code, bound) for code, bound in ((fb.BuiltinOperator.MAXIMUM, low),
                                                (fb.BuiltinOperator.MINIMUM, high)) if bound is not None]
    source = x
    for k, (code, bound) in enumerate(steps):
        operand = w.add_tensor(Tensor(f"{op.name}_bound{k}", (1,), "int8", t.quant,
                                      np.array([bound], dtype=np.int8)))
        target = op.outputs[0] if k == len(steps) - 1 else w.add_tensor(replace(t, name=f"{x}_clamped"))
        w.add_op(replace(op, outputs=(target,)), code, fb.BuiltinOptions.MaximumMinimumOptions,
                 fb.MaximumMinimumOptionsT(), (source, operand))
        source = target


def _split_clip(w: _Writer, op: ir.Op) -> ir.Op:
    """An op whose fused clamp TFLite cannot fuse (Clip(0, 5)): the op without it into a new
    tensor, then MAXIMUM/MINIMUM with the quantized bounds; returns the op to write first. When the
    bounds cover the whole int8 range the clamp does nothing and is dropped."""
    if op.attrs.activation in _ACTIVATIONS:
        return op
    y = w.graph.tensor(op.outputs[0])
    low, high = activation_range(op.attrs.activation, y)
    bare = replace(op, attrs=replace(op.attrs, activation=ir.NO_CLIP))
    if (low, high) == (-128, 127):
        return bare
    inner = w.add_tensor(replace(y, name=f"{op.outputs[0]}_unclamped"))
    w.deferred.append(lambda: _clamp(w, op, inner, low if low > -128 else None, high if high < 127 else None))
    return replace(bare, outputs=(inner,))


def _tflite_padding(op: ir.Op, graph: ir.Graph, kernel: tuple[int, int],
                    dilation: tuple[int, int]) -> int | None:
    """SAME or VALID if the explicit padding is one of them, else None."""
    pad = op.attrs.padding
    if pad == ir.Padding():
        return fb.Padding.VALID
    h, w = graph.tensor(op.inputs[0]).shape[1:3]
    if pad == same_padding((h, w), kernel, op.attrs.stride, dilation):
        return fb.Padding.SAME
    return None


def _explicit_pad(w: _Writer, op: ir.Op, *, lowest: bool = False) -> ir.Op:
    """Write a PAD before a window op whose padding TFLite cannot express; returns the op reading
    the padded tensor with VALID padding. The same arithmetic: a convolution's padding is the zero
    point (real zero); max pooling's (`lowest`) is -128 through PADV2, which never wins a window that
    also covers the input, as CMSIS-NN's pooling clamps its window to the input."""
    x = w.graph.tensor(op.inputs[0])
    p = op.attrs.padding
    pads = ((0, 0), (p.top, p.bottom), (p.left, p.right), (0, 0))
    shape = tuple(d + a + b for d, (a, b) in zip(x.shape, pads, strict=True))
    padded = w.add_tensor(replace(x, name=f"{op.inputs[0]}_padded_for_{op.name}", shape=shape))
    pad_op = ir.Op(f"{op.name}_pad", ir.Pad(pads), (op.inputs[0],), (padded,), op.origin)
    if lowest:
        paddings = w.constant(f"{pad_op.name}_paddings", np.array(pads, dtype=np.int32))
        value = w.add_tensor(Tensor(f"{pad_op.name}_value", (1,), "int8", x.quant,
                                    np.array([-128], dtype=np.int8)))
        w.add_op(pad_op, fb.BuiltinOperator.PADV2, fb.BuiltinOptions.PadV2Options, fb.PadV2OptionsT(),
                 (op.inputs[0], paddings, value))
    else:
        _write_op(w, pad_op)
    return replace(op, attrs=replace(op.attrs, padding=ir.Padding()), inputs=(padded, *op.inputs[1:]))


def _window(w: _Writer, op: ir.Op) -> None:
    """CONV_2D or DEPTHWISE_CONV_2D; a padding that is neither SAME nor VALID becomes a PAD first."""
    a, g = op.attrs, w.graph
    depthwise = isinstance(a, ir.DepthwiseConv2D)
    o = fb.DepthwiseConv2DOptionsT() if depthwise else fb.Conv2DOptionsT()
    o.strideH, o.strideW = a.stride
    o.dilationHFactor, o.dilationWFactor = a.dilation
    padding = _tflite_padding(op, g, g.tensor(op.inputs[1]).shape[1:3], a.dilation)
    if padding is None:
        op = _explicit_pad(w, op)
        padding = fb.Padding.VALID
    o.padding = padding
    o.fusedActivationFunction = _activation(op)
    if depthwise:
        o.depthMultiplier = a.depth_multiplier
        w.add_op(op, fb.BuiltinOperator.DEPTHWISE_CONV_2D, fb.BuiltinOptions.DepthwiseConv2DOptions, o,
                 op.inputs)
    else:
        w.add_op(op, fb.BuiltinOperator.CONV_2D, fb.BuiltinOptions.Conv2DOptions, o, op.inputs)


def _fully_connected(w: _Writer, op: ir.Op) -> None:
    o = fb.FullyConnectedOptionsT()
    o.fusedActivationFunction = _activation(op)
    o.keepNumDims = len(w.graph.tensor(op.outputs[0]).shape) > 2
    w.add_op(op, fb.BuiltinOperator.FULLY_CONNECTED, fb.BuiltinOptions.FullyConnectedOptions, o, op.inputs)


def _pool(w: _Writer, op: ir.Op) -> None:
    """AVERAGE_POOL_2D or MAX_POOL_2D; max pooling with other padding becomes PADV2 with -128 first."""
    a = op.attrs
    o = fb.Pool2DOptionsT()
    o.strideH, o.strideW = a.stride
    o.filterHeight, o.filterWidth = a.window
    padding = _tflite_padding(op, w.graph, a.window, (1, 1))
    if padding is None and a.mode == "max":
        op = _explicit_pad(w, op, lowest=True)
        padding = fb.Padding.VALID
    elif padding is None:
        raise UnsupportedError(f"{op.origin}: average pooling padding {a.padding} has no TFLite "
                               "form (it is neither SAME nor VALID)")
    o.padding = padding
    o.fusedActivationFunction = _activation(op)
    code = fb.BuiltinOperator.AVERAGE_POOL_2D if a.mode == "avg" else fb.BuiltinOperator.MAX_POOL_2D
    w.add_op(op, code, fb.BuiltinOptions.Pool2DOptions, o, op.inputs)


def _elementwise(code: int, options_type: int, options: type) -> Writer:
    """ADD, SUB or MUL: the fused activation is their only option (and an int16 ADD's general scaling,
    not the power-of-two form TFLite's option defaults to)."""
    def write(w: _Writer, op: ir.Op) -> None:
        o = options()
        o.fusedActivationFunction = _activation(op)
        if hasattr(o, "potScaleInt16"):
            o.potScaleInt16 = False
        w.add_op(op, code, options_type, o, op.inputs)
    return write


def _concat(w: _Writer, op: ir.Op) -> None:
    o = fb.ConcatenationOptionsT()
    o.axis = op.attrs.axis
    o.fusedActivationFunction = fb.ActivationFunctionType.NONE
    w.add_op(op, fb.BuiltinOperator.CONCATENATION, fb.BuiltinOptions.ConcatenationOptions, o, op.inputs)


def _pad(w: _Writer, op: ir.Op) -> None:
    paddings = w.constant(f"{op.name}_paddings", np.array(op.attrs.pads, dtype=np.int32))
    w.add_op(op, fb.BuiltinOperator.PAD, fb.BuiltinOptions.PadOptions, fb.PadOptionsT(),
             (op.inputs[0], paddings))


def _slice(w: _Writer, op: ir.Op) -> None:
    a = op.attrs
    consts = [w.constant(f"{op.name}_{k}", np.array(v, dtype=np.int32))
              for k, v in (("begin", a.begin), ("end", a.end), ("strides", a.strides))]
    w.add_op(op, fb.BuiltinOperator.STRIDED_SLICE, fb.BuiltinOptions.StridedSliceOptions,
             fb.StridedSliceOptionsT(), (op.inputs[0], *consts))


def _mean(w: _Writer, op: ir.Op) -> None:
    o = fb.ReducerOptionsT()
    o.keepDims = op.attrs.keep_dims
    axis = w.constant(f"{op.name}_axis", np.array([1, 2], dtype=np.int32))
    w.add_op(op, fb.BuiltinOperator.MEAN, fb.BuiltinOptions.ReducerOptions, o, (op.inputs[0], axis))


def _without_options(code: int) -> Writer:
    def write(w: _Writer, op: ir.Op) -> None:
        w.add_op(op, code, 0, None, op.inputs)
    return write


def _extremum(w: _Writer, op: ir.Op) -> None:
    code = fb.BuiltinOperator.MAXIMUM if op.attrs.mode == "max" else fb.BuiltinOperator.MINIMUM
    w.add_op(op, code, fb.BuiltinOptions.MaximumMinimumOptions, fb.MaximumMinimumOptionsT(), op.inputs)


def _leaky_relu(w: _Writer, op: ir.Op) -> None:
    o = fb.LeakyReluOptionsT()
    o.alpha = op.attrs.alpha
    w.add_op(op, fb.BuiltinOperator.LEAKY_RELU, fb.BuiltinOptions.LeakyReluOptions, o, op.inputs)


def _quantize(w: _Writer, op: ir.Op) -> None:
    """QUANTIZE, or DEQUANTIZE when the output is float."""
    to_float = w.graph.tensor(op.outputs[0]).dtype == "float32"
    w.add_op(op, fb.BuiltinOperator.DEQUANTIZE if to_float else fb.BuiltinOperator.QUANTIZE, 0, None,
             op.inputs)


def _softmax(w: _Writer, op: ir.Op) -> None:
    o = fb.SoftmaxOptionsT()
    o.beta = op.attrs.beta
    w.add_op(op, fb.BuiltinOperator.SOFTMAX, fb.BuiltinOptions.SoftmaxOptions, o, op.inputs)


def _reshape(w: _Writer, op: ir.Op) -> None:
    o = fb.ReshapeOptionsT()
    o.newShape = list(w.graph.tensor(op.outputs[0]).shape)
    w.add_op(op, fb.BuiltinOperator.RESHAPE, fb.BuiltinOptions.ReshapeOptions, o, op.inputs)


def _relu(w: _Writer, op: ir.Op) -> None:
    """RELU, RELU6 (same quantization on both sides), else a clamp as MAXIMUM/MINIMUM."""
    a, x, y = op.attrs, w.graph.tensor(op.inputs[0]), w.graph.tensor(op.outputs[0])
    if (a.low, a.high) == (0.0, None):
        w.add_op(op, fb.BuiltinOperator.RELU, 0, None, op.inputs)
    elif (a.low, a.high) == (0.0, 6.0) and x.quant == y.quant:
        w.add_op(op, fb.BuiltinOperator.RELU6, 0, None, op.inputs)
    else:
        low, high = activation_range(ir.Clip(a.low, a.high), y)
        _clamp(w, op, op.inputs[0], low if a.low is not None else None, high if a.high is not None else None)


def _transpose(w: _Writer, op: ir.Op) -> None:
    perm = w.constant(f"{op.name}_perm", np.array(op.attrs.perm, dtype=np.int32))
    w.add_op(op, fb.BuiltinOperator.TRANSPOSE, fb.BuiltinOptions.TransposeOptions,
             fb.TransposeOptionsT(), (op.inputs[0], perm))


def _resize(w: _Writer, op: ir.Op) -> None:
    """RESIZE_BILINEAR or RESIZE_NEAREST_NEIGHBOR with the output's H and W as the constant size."""
    a = op.attrs
    size = w.constant(f"{op.name}_size", np.array(w.graph.tensor(op.outputs[0]).shape[1:3], dtype=np.int32))
    ops, opts = fb.BuiltinOperator, fb.BuiltinOptions
    if a.mode == "bilinear":
        o = fb.ResizeBilinearOptionsT()
        code, options = ops.RESIZE_BILINEAR, opts.ResizeBilinearOptions
    else:
        o = fb.ResizeNearestNeighborOptionsT()
        code, options = ops.RESIZE_NEAREST_NEIGHBOR, opts.ResizeNearestNeighborOptions
    o.alignCorners, o.halfPixelCenters = a.align_corners, a.half_pixel_centers
    w.add_op(op, code, options, o, (op.inputs[0], size))


def _lstm(w: _Writer, op: ir.Op) -> None:
    """UNIDIRECTIONAL_SEQUENCE_LSTM: the IR's sequence, weights and biases at TFLite's positions, no
    peepholes, projection or layer normalisation, and the hidden and cell state as variable tensors
    (the output's quantization; int16 at the cell scale), which TFLM's reset sets to zero."""
    if op.attrs.keeps_state:
        raise UnsupportedError(f"{op.origin}: an LSTM that keeps its state cannot be written to TFLite")
    x, y = w.graph.tensor(op.inputs[0]), w.graph.tensor(op.outputs[0])
    batch = x.shape[1] if op.attrs.time_major else x.shape[0]
    state = (batch, y.shape[2])
    hidden = w.add_tensor(Tensor(f"{op.name}_hidden_state", state, y.dtype, y.quant))
    cell = w.add_tensor(Tensor(f"{op.name}_cell_state", state, "int16",
                               ir.QuantParams((op.attrs.cell_scale,), (0,))))
    for name in (hidden, cell):
        w.sub.tensors[w.tensor(name)].isVariable = True
    o = fb.UnidirectionalSequenceLSTMOptionsT()
    o.fusedActivationFunction = fb.ActivationFunctionType.TANH
    o.cellClip = op.attrs.cell_clip
    o.timeMajor = op.attrs.time_major
    ins = op.inputs
    inputs = (ins[0], *ins[1:9], "", "", "", *ins[9:13], "", "", hidden, cell, "", "", "", "")
    w.add_op(op, fb.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM,
             fb.BuiltinOptions.UnidirectionalSequenceLSTMOptions, o, inputs)


# IR attribute class -> the function writing its operator (the reader's table, CONVERTERS, reversed).
WRITERS: dict[type, Writer] = {
    ir.Conv2D: _window,
    ir.DepthwiseConv2D: _window,
    ir.FullyConnected: _fully_connected,
    ir.Pool2D: _pool,
    ir.Add: _elementwise(fb.BuiltinOperator.ADD, fb.BuiltinOptions.AddOptions, fb.AddOptionsT),
    ir.Sub: _elementwise(fb.BuiltinOperator.SUB, fb.BuiltinOptions.SubOptions, fb.SubOptionsT),
    ir.Mul: _elementwise(fb.BuiltinOperator.MUL, fb.BuiltinOptions.MulOptions, fb.MulOptionsT),
    ir.Concat: _concat,
    ir.Pad: _pad,
    ir.Slice: _slice,
    ir.Mean: _mean,
    ir.Logistic: _without_options(fb.BuiltinOperator.LOGISTIC),
    ir.Extremum: _extremum,
    ir.Tanh: _without_options(fb.BuiltinOperator.TANH),
    ir.HardSwish: _without_options(fb.BuiltinOperator.HARD_SWISH),
    ir.Rsqrt: _without_options(fb.BuiltinOperator.RSQRT),
    ir.SquaredDifference: _without_options(fb.BuiltinOperator.SQUARED_DIFFERENCE),
    ir.LeakyRelu: _leaky_relu,
    ir.Quantize: _quantize,
    ir.Softmax: _softmax,
    ir.Reshape: _reshape,
    ir.Relu: _relu,
    ir.PRelu: _without_options(fb.BuiltinOperator.PRELU),
    ir.Transpose: _transpose,
    ir.Lstm: _lstm,
    ir.Resize: _resize,
}


def _write_op(w: _Writer, op: ir.Op) -> None:
    writer = WRITERS.get(type(op.attrs))
    if writer is None:
        raise UnsupportedError(f"{op.origin}: {op.kind} cannot be written to TFLite")
    if hasattr(op.attrs, "activation"):
        op = _split_clip(w, op)
    writer(w, op)
    while w.deferred:
        w.deferred.pop(0)()


def graph_to_tflite(graph: ir.Graph) -> bytes:
    """Serialise an int8 graph as a TFLite flatbuffer that TFLM accepts."""
    writer = _Writer(graph)
    for op in graph.ops:
        _write_op(writer, op)
    return writer.finish()

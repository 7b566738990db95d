"""int8 TFLite files → IR, through the flatbuffer schema module that ships with tflite-micro.

The file keeps its own quantization. Layouts are already the IR's (NHWC, OHWI, [1,KH,KW,C_out]);
SAME/VALID padding becomes explicit padding here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from mcudeploy import ir
from mcudeploy.errors import ModelFormatError, UnsupportedError
from mcudeploy.frontends.padding import same_padding

_DTYPES = {
    fb.TensorType.FLOAT32: "float32", fb.TensorType.INT32: "int32", fb.TensorType.UINT8: "uint8",
    fb.TensorType.INT64: "int64", fb.TensorType.INT16: "int16", fb.TensorType.INT8: "int8",
    fb.TensorType.BOOL: "bool",
}
_OP_NAMES = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
_ACTIVATIONS = {
    fb.ActivationFunctionType.NONE: ir.NO_CLIP,
    fb.ActivationFunctionType.RELU: ir.Clip(0.0, None),
    fb.ActivationFunctionType.RELU6: ir.Clip(0.0, 6.0),
    fb.ActivationFunctionType.RELU_N1_TO_1: ir.Clip(-1.0, 1.0),
}


@dataclass(frozen=True)
class _Operator:
    """One TFLite operator with its tensors resolved, for the converters below."""

    index: int
    type_name: str
    options: object
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    graph_tensors: dict[str, ir.Tensor]

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


def _softmax(op: _Operator) -> ir.Op:
    return _make(op, ir.Softmax(float(op.options.beta)), op.inputs[:1])


def _reshape(op: _Operator) -> ir.Op:
    return _make(op, ir.Reshape(), op.inputs[:1])


def _make(op: _Operator, attrs: ir.Attrs, inputs: tuple[str, ...]) -> ir.Op:
    name = f"op{op.index}_{op.type_name.lower()}"
    return ir.Op(name, attrs, inputs, op.outputs[:1], op.origin)


@dataclass(frozen=True)
class Converter:
    """How one TFLite operator becomes IR: the IR attributes class, the inputs it must have
    (with their ranks), and the function."""

    attrs: type
    input_ranks: tuple[int | None, ...]
    convert: Callable[[_Operator], ir.Op]


CONVERTERS: dict[str, Converter] = {
    "CONV_2D": Converter(ir.Conv2D, (4, 4), _conv),
    "DEPTHWISE_CONV_2D": Converter(ir.DepthwiseConv2D, (4, 4), _depthwise),
    "FULLY_CONNECTED": Converter(ir.FullyConnected, (None, 2), _fully_connected),
    "AVERAGE_POOL_2D": Converter(ir.Pool2D, (4,), _pool("avg")),
    "MAX_POOL_2D": Converter(ir.Pool2D, (4,), _pool("max")),
    "ADD": Converter(ir.Add, (None, None), _add),
    "SOFTMAX": Converter(ir.Softmax, (None,), _softmax),
    "RESHAPE": Converter(ir.Reshape, (None,), _reshape),
}
"""TFLite builtin operators mcudeploy imports, by schema name."""


def _check_structure(op: _Operator, converter: Converter, where: str) -> None:
    """The operator has the inputs, ranks, output and options its converter reads."""
    need = len(converter.input_ranks)
    if len(op.inputs) < need or not all(op.inputs[:need]) or len(op.outputs) < 1:
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
    takes_options = converter.attrs not in (ir.Reshape,)
    if takes_options and op.options is None and op.type_name != "FULLY_CONNECTED":
        raise ModelFormatError(f"{where}: {op.origin} has no options table")


def load_tflite(path: Path) -> ir.Graph:
    """Read an int8 TFLite file into the IR; malformed files raise ModelFormatError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse_tflite(data, path.name, str(path))


def parse_tflite(data: bytes, name: str, where: str = "model") -> ir.Graph:
    """Parse TFLite flatbuffer bytes; `where` names the file in error messages."""
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
    try:
        return _to_graph(model, data, name, where)
    except (IndexError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFormatError(f"{where}: inconsistent TFLite model ({exc})") from exc


def _to_graph(model: fb.ModelT, data: bytes, name: str, where: str) -> ir.Graph:
    if not model.subgraphs:
        raise ModelFormatError(f"{where}: the model has no subgraph")
    if len(model.subgraphs) > 1:
        raise UnsupportedError(
            f"{where}: {len(model.subgraphs)} subgraphs; only single-subgraph models are supported"
        )
    sub = model.subgraphs[0]
    tensors, names = _tensors(model, sub, data, where)
    ops = []
    for index, top in enumerate(sub.operators or []):
        code = model.operatorCodes[top.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        type_name = _OP_NAMES.get(builtin, f"builtin {builtin}")
        if builtin == fb.BuiltinOperator.CUSTOM:
            type_name = f"CUSTOM {code.customCode.decode() if code.customCode else '?'}"
        ins = tuple(_name(names, i, where, f"operator {index} input", optional=True)
                    for i in _indices(top.inputs))
        outs = tuple(_name(names, i, where, f"operator {index} output") for i in _indices(top.outputs))
        op = _Operator(index, type_name, top.builtinOptions, ins, outs, tensors)
        if type_name not in CONVERTERS:
            raise UnsupportedError(
                f"{where}: {op.origin} is not supported (inputs: {', '.join(filter(None, ins))}; "
                f"outputs: {', '.join(outs)}). Supported: {', '.join(CONVERTERS)}"
            )
        converter = CONVERTERS[type_name]
        _check_structure(op, converter, where)
        ops.append(converter.convert(op))
    return ir.Graph(
        name=name.removesuffix(".tflite"),
        tensors=tensors,
        ops=tuple(ops),
        inputs=tuple(_name(names, i, where, "model input") for i in _indices(sub.inputs)),
        outputs=tuple(_name(names, i, where, "model output") for i in _indices(sub.outputs)),
    )


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


def _tensors(
    model: fb.ModelT, sub: fb.SubGraphT, data: bytes, where: str
) -> tuple[dict[str, ir.Tensor], list[str]]:
    tensors: dict[str, ir.Tensor] = {}
    names: list[str] = []
    for index, t in enumerate(sub.tensors or []):
        base = t.name.decode("utf-8", "replace") if t.name else f"tensor{index}"
        unique = base if base not in tensors else f"{base}#{index}"
        names.append(unique)
        dtype = _DTYPES.get(t.type)
        if dtype is None:
            raise UnsupportedError(f"{where}: tensor {index} ({base}) has unsupported type {t.type}")
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
        tensors[unique] = ir.Tensor(
            name=unique, shape=shape, dtype=dtype, quant=_quant(t.quantization),
            data=_buffer(model, t, data, dtype, shape, index, where),
        )
    return tensors, names


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

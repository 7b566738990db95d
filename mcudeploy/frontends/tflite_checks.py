"""The TFLite flatbuffer checked as a whole before anything reads it: every index points inside its
table, every quantization can be used, every operator carries the options its type needs.

A file that breaks one of these rules is one TFLM would read out of bounds (a crash), abort on, or
refuse; mcudeploy refuses it first, naming the tensor, operator or field.
"""

from __future__ import annotations

import math

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from mcudeploy.errors import ModelFormatError, UnsupportedError

SCHEMA_VERSION = 3
MAX_RANK = 6  # TFLite's RuntimeShape keeps up to 6 dimensions inline; TFLM's kernels take fewer
MAX_TENSOR_BYTES = 1 << 31

_OPTIONS = {v: k for k, v in vars(fb.BuiltinOptions).items() if not k.startswith("_")}
_OP_NAMES = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
_ITEMSIZE = {fb.TensorType.FLOAT32: 4, fb.TensorType.INT32: 4, fb.TensorType.UINT8: 1,
             fb.TensorType.INT64: 8, fb.TensorType.INT16: 2, fb.TensorType.INT8: 1,
             fb.TensorType.BOOL: 1, fb.TensorType.RESOURCE: 1}
_ZERO_POINT_RANGE = {fb.TensorType.INT8: (-128, 127), fb.TensorType.UINT8: (0, 255),
                     fb.TensorType.INT16: (0, 0), fb.TensorType.INT32: (-(2**31), 2**31 - 1),
                     fb.TensorType.INT64: (-(2**63), 2**63 - 1)}

OPTIONS: dict[str, tuple[str, ...]] = {
    "CONV_2D": ("Conv2DOptions",),
    "DEPTHWISE_CONV_2D": ("DepthwiseConv2DOptions",),
    "FULLY_CONNECTED": ("FullyConnectedOptions", "NONE"),
    "AVERAGE_POOL_2D": ("Pool2DOptions",),
    "MAX_POOL_2D": ("Pool2DOptions",),
    "ADD": ("AddOptions", "NONE"),
    "MUL": ("MulOptions", "NONE"),
    "CONCATENATION": ("ConcatenationOptions",),
    "PAD": ("PadOptions", "NONE"),
    "SOFTMAX": ("SoftmaxOptions",),
    "RESHAPE": ("ReshapeOptions", "NONE"),
    "SQUEEZE": ("SqueezeOptions", "NONE"),
    "EXPAND_DIMS": ("ExpandDimsOptions", "NONE"),
    "STRIDED_SLICE": ("StridedSliceOptions",),
    "SPLIT_V": ("SplitVOptions",),
    "SPLIT": ("SplitOptions",),
    "MEAN": ("ReducerOptions",),
    "REDUCE_MAX": ("ReducerOptions",),
    "LOGISTIC": ("NONE",),
    "TANH": ("NONE",),
    "HARD_SWISH": ("HardSwishOptions", "NONE"),
    "MAXIMUM": ("MaximumMinimumOptions", "NONE"),
    "MINIMUM": ("MaximumMinimumOptions", "NONE"),
    "LEAKY_RELU": ("LeakyReluOptions",),
    "QUANTIZE": ("QuantizeOptions", "NONE"),
    "DEQUANTIZE": ("DequantizeOptions", "NONE"),
    "VAR_HANDLE": ("VarHandleOptions",),
    "READ_VARIABLE": ("ReadVariableOptions", "NONE"),
    "ASSIGN_VARIABLE": ("AssignVariableOptions", "NONE"),
    "CALL_ONCE": ("CallOnceOptions",),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ("UnidirectionalSequenceLSTMOptions",),
    "RESIZE_BILINEAR": ("ResizeBilinearOptions",),
    "RESIZE_NEAREST_NEIGHBOR": ("ResizeNearestNeighborOptions",),
}
"""The builtin options table each imported operator may carry (NONE: none at all)."""


def builtin_name(code: fb.OperatorCodeT) -> str:
    """An operator code's builtin name (TFLite: the larger of the new and the deprecated field)."""
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == fb.BuiltinOperator.CUSTOM:
        return f"CUSTOM {code.customCode.decode('utf-8', 'replace') if code.customCode else '?'}"
    return _OP_NAMES.get(builtin, f"builtin {builtin}")


def check_model(model: fb.ModelT, data: bytes, where: str) -> None:
    """Raise ModelFormatError (UnsupportedError for valid but unsupported encodings) for the first
    index, shape, quantization or options table that TFLite could not use as it is."""
    if not model.subgraphs:
        raise ModelFormatError(f"{where}: the model has no subgraph")
    if model.version != SCHEMA_VERSION:
        raise ModelFormatError(f"{where}: schema version {model.version}; TFLite files are version "
                               f"{SCHEMA_VERSION}")
    buffers = model.buffers or []
    for index, buf in enumerate(buffers):
        if buf.offset > 1 and buf.offset + buf.size > len(data):
            raise ModelFormatError(f"{where}: buffer {index} lies at bytes {buf.offset} to "
                                   f"{buf.offset + buf.size}, past the end of the file ({len(data)} bytes)")
    for entry in model.metadata or []:
        if not 0 <= entry.buffer < len(buffers):
            name = entry.name.decode("utf-8", "replace") if entry.name else ""
            raise ModelFormatError(f"{where}: metadata {name!r} refers to buffer {entry.buffer}, but the "
                                   f"model has {len(buffers)} buffers")
    codes = model.operatorCodes or []
    for s, sub in enumerate(model.subgraphs):
        graph = where if s == 0 else f"{where}: subgraph {s}"
        tensors = sub.tensors or []
        for index, tensor in enumerate(tensors):
            _check_tensor(tensor, index, len(buffers), graph)
        for what, vector in (("input", sub.inputs), ("output", sub.outputs)):
            for i in _ints(vector):
                if not 0 <= i < len(tensors):
                    raise ModelFormatError(f"{graph}: model {what} refers to tensor {i}, but the "
                                           f"subgraph has {len(tensors)} tensors")
        for index, op in enumerate(sub.operators or []):
            if not 0 <= op.opcodeIndex < len(codes):
                raise ModelFormatError(f"{graph}: operator {index} has opcode index {op.opcodeIndex}, "
                                       f"but the model has {len(codes)} operator codes")
            name = builtin_name(codes[op.opcodeIndex])
            _check_operator(op, f"{graph}: operator {index} ({name})", name, len(tensors))
            for i in _ints(op.outputs):
                if _holds_data(buffers, tensors[i].buffer):
                    raise ModelFormatError(f"{graph}: operator {index} ({name}) computes "
                                           f"{_tensor_name(tensors[i], i)}, which holds constant data "
                                           f"(buffer {tensors[i].buffer})")


def _holds_data(buffers: list[fb.BufferT], index: int) -> bool:
    buf = buffers[index] if 0 < index < len(buffers) else None
    return buf is not None and ((buf.data is not None and len(buf.data) > 0) or buf.offset > 1)


def _ints(vector: object) -> list[int]:
    return [] if vector is None else [int(i) for i in vector]


def _tensor_name(tensor: fb.TensorT, index: int) -> str:
    name = tensor.name.decode("utf-8", "replace") if tensor.name else ""
    return f"tensor {index} ({name})" if name else f"tensor {index}"


def _check_tensor(tensor: fb.TensorT, index: int, buffers: int, where: str) -> None:
    what = f"{where}: {_tensor_name(tensor, index)}"
    if not 0 <= tensor.buffer < buffers:  # buffer 0, TFLite's empty sentinel, exists too
        raise ModelFormatError(f"{what} refers to buffer {tensor.buffer}, but the model has "
                               f"{buffers} buffers")
    shape = _ints(tensor.shape)
    if len(shape) > MAX_RANK:
        raise ModelFormatError(f"{what} has {len(shape)} dimensions; TFLite tensors have at most "
                               f"{MAX_RANK}")
    if any(d < 0 for d in shape):
        raise ModelFormatError(f"{what} has shape {shape}: a dimension is negative")
    if tensor.type in _ITEMSIZE and math.prod(shape) * _ITEMSIZE[tensor.type] > MAX_TENSOR_BYTES:
        raise ModelFormatError(f"{what} has shape {shape}: more than 2 GiB")
    if tensor.sparsity is not None:
        raise UnsupportedError(f"{what} is sparse; mcudeploy reads dense tensors only")
    _check_quantization(tensor, shape, what)


def _check_quantization(tensor: fb.TensorT, shape: list[int], what: str) -> None:
    q = tensor.quantization
    if q is None:
        return
    if q.detailsType != fb.QuantizationDetails.NONE:
        raise UnsupportedError(f"{what} uses custom quantization details (type {q.detailsType}); "
                               "mcudeploy reads affine quantization only")
    scales = [] if q.scale is None else [float(s) for s in q.scale]
    zeros = _ints(q.zeroPoint)
    if not scales and not zeros:
        return
    if len(zeros) != len(scales):
        raise ModelFormatError(f"{what} has {len(scales)} quantization scales and {len(zeros)} zero "
                               "points; they must be as many")
    bad = next((s for s in scales if not (math.isfinite(s) and s > 0)), None)
    if bad is not None:
        raise ModelFormatError(f"{what} has quantization scale {bad}; scales must be finite and "
                               "positive")
    low, high = _ZERO_POINT_RANGE.get(tensor.type, (-(2**63), 2**63 - 1))
    wrong = next((z for z in zeros if not low <= z <= high), None)
    if wrong is not None:
        kind = _TYPE_NAMES.get(tensor.type, str(tensor.type))
        raise ModelFormatError(f"{what} has zero point {wrong}, outside [{low}, {high}] for {kind}")
    if len(scales) > 1:
        axis = q.quantizedDimension
        if not 0 <= axis < len(shape):
            raise ModelFormatError(f"{what} is quantized per channel along axis {axis}, but has "
                                   f"{len(shape)} dimensions")
        if shape[axis] != len(scales):
            raise ModelFormatError(f"{what} has {len(scales)} quantization scales for the "
                                   f"{shape[axis]} channels of axis {axis}")


_TYPE_NAMES = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}


def _check_operator(op: fb.OperatorT, what: str, name: str, tensors: int) -> None:
    for kind, vector, optional in (("input", op.inputs, True), ("output", op.outputs, False),
                                   ("intermediate", op.intermediates, False)):
        for position, i in enumerate(_ints(vector)):
            if not (0 <= i < tensors or (optional and i == -1)):
                raise ModelFormatError(f"{what}: {kind} {position} refers to tensor {i}, but the "
                                       f"subgraph has {tensors} tensors")
    allowed = OPTIONS.get(name)
    if allowed is None:
        return  # refused by the importer, naming the operator
    found = _OPTIONS.get(op.builtinOptionsType, f"unknown options type {op.builtinOptionsType}")
    if found not in allowed or (found != "NONE" and op.builtinOptions is None):
        raise ModelFormatError(f"{what} carries {found}; it takes {' or '.join(allowed)}")
    _check_option_values(op.builtinOptions, what)


_ENUMS = {"padding": fb.Padding, "fusedActivationFunction": fb.ActivationFunctionType}


def _check_option_values(options: object, what: str) -> None:
    """Float options (softmax beta, leaky ReLU alpha, an LSTM's clips) are finite; enumerations
    (padding, fused activation) hold one of their values."""
    for field in ("beta", "alpha", "cellClip", "projClip"):
        value = getattr(options, field, None)
        if value is not None and not np.isfinite(value):
            raise ModelFormatError(f"{what}: option {field} is {value}; it must be finite")
    for field, enum in _ENUMS.items():
        value = getattr(options, field, None)
        known = {v: k for k, v in vars(enum).items() if not k.startswith("_")}
        if value is not None and value not in known:
            raise ModelFormatError(f"{what}: option {field} is {value}; it must be one of "
                                   f"{', '.join(known.values())}")

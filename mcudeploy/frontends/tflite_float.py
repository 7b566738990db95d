"""Float TFLite files as the float model mcudeploy quantizes, as it does ONNX models.

What the TFLite converter writes without full-integer quantization: float32 files, float16 files
(float16 weights DEQUANTIZEd to float32 when the model starts) and dynamic-range files (int8
weights read by float operators, which TFLite's hybrid kernels compute with). A file is float when
an operator computes a float tensor other than the float output wrappers (DEQUANTIZE) of an int8
body.

Such a file is rewritten once into a float32 file with the same operators, tensors and options:
every float16 constant and every quantized integer constant (the weights) becomes float32, and the
DEQUANTIZE operators of constants are folded away. That file is the float model: mcudeploy imports
it into the float IR the quantizer takes, and TFLM runs it with its float kernels for calibration
and as the float oracle. For a dynamic-range file it is the model with its weights dequantized
and its activations in float, which TFLite's hybrid kernels approximate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from mcudeploy import ir
from mcudeploy.errors import UnsupportedError
from mcudeploy.frontends.tflite import parse_tflite, read_model, tensor_names
from mcudeploy.frontends.tflite_checks import builtin_name

_FLOATS = (fb.TensorType.FLOAT32, fb.TensorType.FLOAT16)
_QUANTIZED = {fb.TensorType.INT8: np.int8, fb.TensorType.UINT8: np.uint8, fb.TensorType.INT16: np.int16}
_WEIGHTED = ("conv2d", "depthwise_conv2d", "fully_connected")


@dataclass(frozen=True)
class TfliteFloatImport:
    """A float TFLite model: the float IR graph, the float32 file TFLM runs, and where each IR
    tensor is in that file."""

    graph: ir.Graph
    model: bytes
    indices: dict[str, int]  # IR tensor name -> tensor index in `model` (subgraph 0)
    where: str  # the file, as refusals name it


def float_operator(model: fb.ModelT) -> str | None:
    """The first operator of subgraph 0 that computes float values, other than a DEQUANTIZE of a
    computed tensor to a model output (an int8 body's float output) and a float NEG between a
    DEQUANTIZE and a QUANTIZE (`_negation_islands`); None for an int8 file."""
    sub = model.subgraphs[0]
    tensors = sub.tensors or []
    outputs = {int(i) for i in _ints(sub.outputs)}
    islands = _negation_islands(model)
    for index, op in enumerate(sub.operators or []):
        name = builtin_name(model.operatorCodes[op.opcodeIndex])
        if index in islands:
            continue
        written = [int(i) for i in _ints(op.outputs)]
        wrapper = name == "DEQUANTIZE" and set(written) <= outputs and \
            not any(_constant(model, tensors[i]) for i in _ints(op.inputs) if i >= 0)
        if not wrapper and any(tensors[i].type in _FLOATS for i in written):
            return f"operator {index} ({name})"
    return None


def _negation_islands(model: fb.ModelT) -> set[int]:
    """The operators of each DEQUANTIZE (of an int8 tensor), NEG, QUANTIZE (to int8) chain, each
    float tensor read once: what TensorFlow's converter writes for Keras' LayerNormalization in a
    full-int8 file, and the int8 importer computes as an int8 SUB."""
    sub = model.subgraphs[0]
    tensors = sub.tensors or []
    ops = sub.operators or []
    names = [builtin_name(model.operatorCodes[op.opcodeIndex]) for op in ops]
    readers: dict[int, list[int]] = {}
    for index, op in enumerate(ops):
        for i in _ints(op.inputs):
            readers.setdefault(i, []).append(index)
    producers = {i: index for index, op in enumerate(ops) for i in _ints(op.outputs)}
    found: set[int] = set()
    for index, op in enumerate(ops):
        ins, outs = _ints(op.inputs), _ints(op.outputs)
        if names[index] != "NEG" or len(ins) != 1 or len(outs) != 1 or ins[0] not in producers:
            continue
        before, after = producers[ins[0]], readers.get(outs[0], [])
        if names[before] != "DEQUANTIZE" or readers.get(ins[0]) != [index] or len(after) != 1 \
                or names[after[0]] != "QUANTIZE":
            continue
        source, target = _ints(ops[before].inputs), _ints(ops[after[0]].outputs)
        int8 = fb.TensorType.INT8
        if len(source) == 1 and len(target) == 1 and tensors[source[0]].type == int8 \
                and tensors[target[0]].type == int8 and not _constant(model, tensors[source[0]]):
            found.update((before, index, after[0]))
    return found


def load_float_tflite(data: bytes, name: str, where: str) -> TfliteFloatImport | None:
    """The float model of a float TFLite file (None for an int8 file); what mcudeploy cannot
    quantize is refused naming the operator or tensor."""
    model = read_model(data, where)
    if float_operator(model) is None:
        return None
    if len(model.subgraphs) > 1:
        raise UnsupportedError(f"{where}: a float model with {len(model.subgraphs)} subgraphs (control "
                               "flow or variables) cannot be quantized here")
    copy = float32_file(model, data, where)
    graph = own_weights(parse_tflite(copy, name, where), where)
    names = tensor_names(read_model(copy, where).subgraphs[0])
    return TfliteFloatImport(graph, copy, {n: i for i, n in enumerate(names)}, where)


def float32_file(model: fb.ModelT, data: bytes, where: str) -> bytes:
    """The float file with float32 weights: float16 and quantized integer constants converted,
    DEQUANTIZEs of constants folded. Changes `model`."""
    sub = model.subgraphs[0]
    tensors = sub.tensors or []
    for buf in model.buffers or []:  # data stored past the flatbuffer moves into it
        if buf.offset > 1:
            stored = data[buf.offset:buf.offset + buf.size]
            buf.data, buf.offset, buf.size = np.frombuffer(stored, np.uint8), 0, 0
    for index, t in enumerate(tensors):
        if _constant(model, t) and (t.type == fb.TensorType.FLOAT16 or
                                   (t.type in _QUANTIZED and _scales(t) is not None)):
            _set_float(model, t, _dequantized(model, t, index, where))
    kept = []
    for index, op in enumerate(sub.operators or []):
        name = builtin_name(model.operatorCodes[op.opcodeIndex])
        ins, outs = _ints(op.inputs), _ints(op.outputs)
        if name == "DEQUANTIZE" and len(ins) == 1 and len(outs) == 1 and _constant(model, tensors[ins[0]]):
            source, target = tensors[ins[0]], tensors[outs[0]]
            if source.type != fb.TensorType.FLOAT32 or list(_ints(source.shape)) != list(_ints(target.shape)):
                raise UnsupportedError(f"{where}: operator {index} (DEQUANTIZE) of constant tensor "
                                       f"{ins[0]}: cannot be folded (type {source.type}, shape "
                                       f"{list(_ints(source.shape))} into {list(_ints(target.shape))})")
            target.buffer, target.type, target.quantization = source.buffer, fb.TensorType.FLOAT32, None
            continue
        for i in outs:
            if tensors[i].type in _QUANTIZED:
                raise UnsupportedError(
                    f"{where}: operator {index} ({name}) computes {_label(tensors[i], i)} as "
                    f"{_type_name(tensors[i].type)} in a float model: files that mix quantized and float "
                    "activations are not supported (convert to full int8, or leave the model float)")
        kept.append(op)
    sub.operators = kept
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def own_weights(graph: ir.Graph, where: str) -> ir.Graph:
    """Each convolution and fully connected layer with weights and a bias of its own (TFLite files
    share a bias, or leave it out), which the quantizer scales per layer; weights must be constant."""
    tensors = dict(graph.tensors)
    used: set[str] = set()
    ops = []
    for op in graph.ops:
        if op.kind not in _WEIGHTED:
            ops.append(op)
            continue
        w = graph.tensor(op.inputs[1])
        if w.data is None:
            raise UnsupportedError(f"{where}: {op.origin}: weights {w.name!r} are computed, not constant: "
                                   "not supported")
        channels = w.shape[3] if op.kind == "depthwise_conv2d" else w.shape[0]
        bias = op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] else None
        if bias is None:
            bias = _unique(tensors, f"{op.name}_bias")
            tensors[bias] = ir.Tensor(bias, (channels,), "float32", data=np.zeros(channels, np.float32))
        inputs = [op.inputs[0], op.inputs[1], bias]
        for k in (1, 2):
            if inputs[k] in used:
                copy = _unique(tensors, f"{inputs[k]} ({op.name})")
                tensors[copy] = replace(tensors[inputs[k]], name=copy)
                inputs[k] = copy
            used.add(inputs[k])
        ops.append(replace(op, inputs=tuple(inputs)))
    return replace(graph, tensors=tensors, ops=tuple(ops))


def _unique(taken: dict[str, ir.Tensor], base: str) -> str:
    name = base
    while name in taken:
        name += "#"
    return name


def _ints(vector: object) -> list[int]:
    return [] if vector is None else [int(i) for i in vector]


def _constant(model: fb.ModelT, t: fb.TensorT) -> bool:
    buffers = model.buffers or []
    buf = buffers[t.buffer] if 0 < t.buffer < len(buffers) else None
    return buf is not None and buf.data is not None and len(buf.data) > 0


def _scales(t: fb.TensorT) -> np.ndarray | None:
    q = t.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    return np.asarray(q.scale, dtype=np.float64)


def _dequantized(model: fb.ModelT, t: fb.TensorT, index: int, where: str) -> np.ndarray:
    """A float16 or quantized integer constant's real values, as float32."""
    raw = np.asarray(model.buffers[t.buffer].data, dtype=np.uint8).tobytes()
    dtype = np.float16 if t.type == fb.TensorType.FLOAT16 else _QUANTIZED[t.type]
    shape = tuple(_ints(t.shape))
    if len(raw) != int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize:
        raise UnsupportedError(f"{where}: {_label(t, index)} holds {len(raw)} bytes, its shape {list(shape)} "
                               f"of {np.dtype(dtype).name} needs another size")
    values = np.frombuffer(raw, dtype=dtype).reshape(shape)
    if t.type == fb.TensorType.FLOAT16:
        return values.astype(np.float32)
    scales = _scales(t)
    zeros = np.asarray(_ints(t.quantization.zeroPoint) or [0] * len(scales), dtype=np.float64)
    if len(scales) > 1:  # per channel: tflite_checks made sure the axis and the counts agree
        axis = int(t.quantization.quantizedDimension)
        view = [1] * len(shape)
        view[axis] = -1
        scales, zeros = scales.reshape(view), zeros.reshape(view)
    return ((values.astype(np.float64) - zeros) * scales).astype(np.float32)


def _set_float(model: fb.ModelT, t: fb.TensorT, values: np.ndarray) -> None:
    """Tensor `t` holds `values` (float32) in a buffer of its own."""
    buf = fb.BufferT()
    buf.data = np.frombuffer(np.ascontiguousarray(values, dtype="<f4").tobytes(), dtype=np.uint8)
    model.buffers.append(buf)
    t.buffer, t.type, t.quantization = len(model.buffers) - 1, fb.TensorType.FLOAT32, None


def _type_name(code: int) -> str:
    return next((k for k, v in vars(fb.TensorType).items() if v == code and not k.startswith("_")), str(code))


def _label(t: fb.TensorT, index: int) -> str:
    name = t.name.decode("utf-8", "replace") if t.name else ""
    return f"tensor {index} ({name})" if name else f"tensor {index}"

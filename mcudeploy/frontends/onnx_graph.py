"""Reading an ONNX file into a static graph: batch dimension fixed, shapes inferred, constant
sub-graphs (Constant, Shape, and nodes whose inputs are all constant) folded away.

Folding uses onnx's own reference evaluator, one node at a time, so shape arithmetic that
exporters emit (Shape → Gather → Concat → Reshape) becomes plain constants. The file is checked
first (mcudeploy/frontends/onnx_check.py); a folded constant that is not finite, and a tensor that
is empty or too large for a microcontroller's int32 sizes, are refused naming the node or tensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference
from onnx.reference import ReferenceEvaluator

from mcudeploy.errors import ModelFormatError, UnsupportedError
from mcudeploy.finite import nonfinite
from mcudeploy.frontends.onnx_check import (
    check_model,
    check_outputs,
    check_text,
    check_values,
    initializer_array,
    node_label,
)

_NEVER_FOLD = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial"}
_MAX_PASSES = 8
_MAX_ELEMENTS = 2**31 - 1  # sizes and offsets are int32 in the generated C


@dataclass
class OnnxGraph:
    """A static ONNX graph: nodes in order, constants by name, every tensor's shape."""

    model: onnx.ModelProto
    nodes: list[onnx.NodeProto]
    constants: dict[str, np.ndarray]
    shapes: dict[str, tuple[int, ...]]
    inputs: list[str]
    outputs: list[str]
    where: str

    def node_label(self, node: onnx.NodeProto, index: int) -> str:
        return node_label(node, index)


def load_onnx_graph(path: Path, batch: int = 1) -> OnnxGraph:
    """Load, validate and simplify an ONNX file; symbolic batch dimensions become `batch`."""
    where = str(path)
    try:
        model = onnx.load(str(path), load_external_data=True)
    except FileNotFoundError as exc:
        raise ModelFormatError(f"{where}: cannot read: no such file") from exc
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelFormatError(f"{where}: not a valid ONNX file ({type(exc).__name__}: {exc})") from exc
    check_text(model, where)
    _upgrade_ir3(model)
    check_outputs(model, where)
    check_model(model, where)
    check_values(model, where)
    _check_input_types(model, where)
    _fix_input_dims(model, batch, where)
    for _ in range(_MAX_PASSES):
        model = _infer(model, where)
        folded = _fold_constants(model, where)
        if folded is None:
            break
        model = folded
    return _as_graph(model, where)


def _upgrade_ir3(model: onnx.ModelProto) -> None:
    """IR version 3 lists initializers among the graph inputs (and some exporters forgot to):
    normalise to IR 4, where an initializer is a constant and not an input."""
    if model.ir_version >= 4:
        return
    initializers = {i.name for i in model.graph.initializer}
    kept = [i for i in model.graph.input if i.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    model.ir_version = 4


def _check_size(name: str, shape: tuple[int, ...], where: str) -> None:
    if 0 in shape:
        raise UnsupportedError(f"{where}: tensor {name!r} of shape {list(shape)} is empty")
    if int(np.prod(shape, dtype=object)) > _MAX_ELEMENTS:
        raise UnsupportedError(f"{where}: tensor {name!r} of shape {list(shape)} has more than "
                               f"{_MAX_ELEMENTS} elements")


def _check_input_types(model: onnx.ModelProto, where: str) -> None:
    initializers = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        kind = inp.type.WhichOneof("value")
        elem = inp.type.tensor_type.elem_type if kind == "tensor_type" else None
        if inp.name not in initializers and elem != onnx.TensorProto.FLOAT:
            what = _dtype_name(elem) if elem is not None else kind or "untyped"
            raise UnsupportedError(f"{where}: input {inp.name!r} is {what}; mcudeploy quantizes models "
                                   "with float32 inputs")


def _dtype_name(elem: int) -> str:
    try:
        return f"tensor({onnx.TensorProto.DataType.Name(elem).lower()})"
    except ValueError:
        return f"of unknown element type {elem}"


def _fix_input_dims(model: onnx.ModelProto, batch: int, where: str) -> None:
    initializers = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in initializers:
            continue
        dims = inp.type.tensor_type.shape.dim
        for axis, dim in enumerate(dims):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                continue
            if dim.HasField("dim_value"):
                raise UnsupportedError(f"{where}: input {inp.name!r} has dimension {axis} of size "
                                       f"{dim.dim_value}")
            if axis != 0:
                raise UnsupportedError(
                    f"{where}: input {inp.name!r} has a dynamic dimension {axis} "
                    f"({dim.dim_param or '?'}); only the batch dimension may be dynamic"
                )
            dim.Clear()
            dim.dim_value = batch


def _infer(model: onnx.ModelProto, where: str) -> onnx.ModelProto:
    try:
        return shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:  # InferenceError: shapes that contradict each other
        first = str(exc).strip().splitlines()[0]
        raise ModelFormatError(f"{where}: shape inference failed: {first}") from exc


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    shapes = {}
    g = model.graph
    for vi in (*g.input, *g.value_info, *g.output):
        dims = vi.type.tensor_type.shape.dim
        if vi.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = tuple(int(d.dim_value) for d in dims)
    for init in g.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def _fold_constants(model: onnx.ModelProto, where: str) -> onnx.ModelProto | None:
    """One pass of folding; None when nothing changed."""
    g = model.graph
    constants = {i.name: initializer_array(i, where) for i in g.initializer}
    shapes = _shapes(model)
    kept, changed = [], False
    for index, node in enumerate(g.node):
        value = _evaluate(node, constants, shapes, list(model.opset_import), where)
        if value is None:
            kept.append(node)
            continue
        changed = True
        for name, array in zip(node.output, value, strict=False):
            constants[name] = np.asarray(array)
            bad = nonfinite(constants[name])
            if bad is not None:
                raise ModelFormatError(f"{where}: {node_label(node, index)}: the constant it computes, "
                                       f"{name!r}, holds {bad}")
    if not changed:
        return None
    used = {n for node in kept for n in node.input} | {o.name for o in g.output}
    graph = helper.make_graph(
        kept, g.name,
        [i for i in g.input if i.name not in constants],
        list(g.output),
        [numpy_helper.from_array(v, k) for k, v in constants.items() if k in used],
    )
    folded = helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)
    return folded


def _evaluate(node: onnx.NodeProto, constants: dict[str, np.ndarray],
              shapes: dict[str, tuple[int, ...]], opsets: list, where: str) -> list[np.ndarray] | None:
    if node.op_type in _NEVER_FOLD or node.domain not in ("", "ai.onnx"):
        return None
    if node.op_type == "Shape" and node.input[0] in shapes:
        shape = np.array(shapes[node.input[0]], dtype=np.int64)
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        return [shape[attrs.get("start", 0) : attrs.get("end", len(shape))]]
    if node.op_type != "Constant" and not all(n == "" or n in constants for n in node.input):
        return None
    feeds = {n: constants[n] for n in node.input if n}
    inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(constants[n].dtype), None)
              for n in feeds]
    outputs = [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in node.output]
    single = helper.make_model(helper.make_graph([node], "fold", inputs, outputs),
                               opset_imports=opsets)
    try:
        with np.errstate(all="ignore"):  # a non-finite result is refused by the caller, naming it
            return list(ReferenceEvaluator(single).run(None, feeds))
    except Exception as exc:  # the evaluator's errors are as varied as the operators it runs
        raise ModelFormatError(f"{where}: cannot evaluate constant node {node.name or node.op_type!r}: "
                               f"{exc}") from exc


def _as_graph(model: onnx.ModelProto, where: str) -> OnnxGraph:
    g = model.graph
    constants = {i.name: initializer_array(i, where) for i in g.initializer}
    shapes = _shapes(model)
    used = [o.name for o in g.output] + [n for node in g.node for n in node.input]
    for name in used + [node.output[0] for node in g.node if node.output]:
        if name and name not in shapes and name not in constants:
            raise UnsupportedError(f"{where}: the shape of tensor {name!r} is not static")
        if name in shapes and name not in constants:
            _check_size(name, shapes[name], where)
    return OnnxGraph(
        model=model, nodes=list(g.node), constants=constants, shapes=shapes,
        inputs=[i.name for i in g.input if i.name not in constants],
        outputs=[o.name for o in g.output], where=where,
    )

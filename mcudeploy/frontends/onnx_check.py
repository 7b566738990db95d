"""An ONNX file checked where it enters, before anything computes with it: text that is UTF-8,
onnx's own checker (its complaint tied to the node or tensor at fault), graph outputs that a node
computes, initializers whose data fills their dims, and weights and attributes that are finite
numbers. Each refusal names the file and the field, initializer, attribute or node.
"""

from __future__ import annotations

import numpy as np
import onnx
from google.protobuf.message import Message
from onnx import checker, helper, numpy_helper

from mcudeploy.errors import ModelFormatError
from mcudeploy.finite import nonfinite


def check_text(model: onnx.ModelProto, where: str) -> None:
    """Every string field (names, types, doc strings) must be UTF-8: protobuf hands back the bytes
    of one that is not, and everything downstream expects text."""
    found = _non_utf8(model, "model")
    if found is not None:
        path, raw = found
        raise ModelFormatError(f"{where}: {path} is not UTF-8 text ({raw[:40]!r})")


def _non_utf8(message: Message, path: str) -> tuple[str, bytes] | None:
    for field, value in message.ListFields():
        if field.type not in (field.TYPE_MESSAGE, field.TYPE_STRING):
            continue
        items = list(enumerate(value)) if field.is_repeated else [(None, value)]
        for index, item in items:
            here = f"{path}.{field.name}" + ("" if index is None else f"[{index}]")
            if field.type == field.TYPE_STRING:
                if isinstance(item, bytes):
                    return here, item
                continue
            found = _non_utf8(item, here)
            if found is not None:
                return found
    return None


def check_model(model: onnx.ModelProto, where: str) -> None:
    """onnx's checker; when its message does not say where, the first input, output, initializer or
    node that fails on its own is named."""
    try:
        checker.check_model(model)
    except checker.ValidationError as exc:
        first = " ".join(str(exc).split(" ==> Context:")[0].split())  # its messages span lines
        culprit = _culprit(model)
        at = f"{culprit}: " if culprit and culprit.split(" ", 1)[1] not in first else ""
        raise ModelFormatError(f"{where}: invalid ONNX model: {at}{first}") from exc


def _culprit(model: onnx.ModelProto) -> str | None:
    ctx = checker.C.CheckerContext()
    ctx.ir_version = model.ir_version
    ctx.opset_imports = {o.domain: o.version for o in model.opset_import}
    g = model.graph
    parts = (("input", g.input, checker.check_value_info), ("output", g.output, checker.check_value_info),
             ("initializer", g.initializer, checker.check_tensor))
    for kind, items, check in parts:
        for item in items:
            try:
                check(item, ctx)
            except checker.ValidationError:
                return f"{kind} {item.name!r}"
    for index, node in enumerate(g.node):
        try:
            checker.check_node(node, ctx)
        except checker.ValidationError:
            return node_label(node, index)
    return None


def node_label(node: onnx.NodeProto, index: int) -> str:
    """How refusals name a node: "node 'conv1' (Conv)", or by its position when it has no name."""
    return f"node {node.name or f'#{index}'!r} ({node.op_type})"


def check_outputs(model: onnx.ModelProto, where: str) -> None:
    """Every graph output must be computed by a node (not be an input, a constant, or nothing)."""
    g = model.graph
    produced = {name for node in g.node for name in node.output}
    inputs, constants = {i.name for i in g.input}, {i.name for i in g.initializer}
    for output in g.output:
        if output.name in produced:
            continue
        what = ("a model input" if output.name in inputs else "a constant (initializer)"
                if output.name in constants else "not computed by any node")
        raise ModelFormatError(f"{where}: graph output {output.name!r} is {what}")


def check_values(model: onnx.ModelProto, where: str) -> None:
    """Initializers that nodes read must hold data that fills their dims, and finite numbers; so must
    float attributes (alpha, epsilon, a Constant's value)."""
    g = model.graph
    used = {name for node in g.node for name in node.input} | {o.name for o in g.output}
    for init in g.initializer:
        if init.name in used:
            _finite(initializer_array(init, where), f"{where}: initializer {init.name!r}")
    for index, node in enumerate(g.node):
        for attr in node.attribute:
            for value in _attribute_arrays(attr, where, node_label(node, index)):
                _finite(value, f"{where}: {node_label(node, index)}: attribute {attr.name}")


def initializer_array(init: onnx.TensorProto, where: str) -> np.ndarray:
    """An initializer's data as an array; one whose data does not match its dims or type is refused."""
    try:
        return numpy_helper.to_array(init)
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelFormatError(f"{where}: initializer {init.name!r} (dims {list(init.dims)}): its data "
                               f"cannot be read ({exc})") from exc


def _attribute_arrays(attr: onnx.AttributeProto, where: str, label: str) -> list[np.ndarray]:
    kind = onnx.AttributeProto
    if attr.type in (kind.FLOAT, kind.FLOATS):
        return [np.asarray(helper.get_attribute_value(attr), dtype=np.float64)]
    if attr.type == kind.TENSOR:
        return [initializer_array(attr.t, f"{where}: {label}: attribute {attr.name}")]
    if attr.type == kind.TENSORS:
        return [initializer_array(t, f"{where}: {label}: attribute {attr.name}") for t in attr.tensors]
    return []


def _finite(value: np.ndarray, what: str) -> None:
    bad = nonfinite(value)
    if bad is not None:
        raise ModelFormatError(f"{what} holds {bad}; weights and attributes must be finite numbers")

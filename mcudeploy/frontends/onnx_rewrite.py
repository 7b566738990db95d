"""Element-wise ONNX forms rewritten as the operators mcudeploy quantizes, in the static model
itself, so that calibration and the float oracle (onnxruntime) see every new tensor:

- HardSigmoid(x) = clip(alpha x + beta, 0, 1) becomes Add(x, beta / alpha), Clip(0, 1 / alpha),
  Mul(alpha): for MobileNetV3's alpha = 1/6 that is Keras' relu6(x + 3) / 6;
- Div(x, c) by a constant becomes Mul(x, 1 / c); Sub(x, c) becomes Add(x, -c) (Sub(c, x) and
  Sub(x, y) stay, imported as TFLite SUB); Neg(x) becomes Mul(x, -1); Pow(x, 2) becomes Mul(x, x);
- Div(x, Sqrt(v)), the normalisation of a layer norm, becomes Mul(x, Pow(v, -0.5)) (imported as
  RSQRT) when the Sqrt's output is only ever a divisor.

The new nodes keep the original node's name with a suffix, so refusals still name it. The float
results differ from the original model's only by float rounding (x * (1/c) against x / c).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


class _Rewriter:
    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        g = model.graph
        self.constants = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.taken = {n for node in g.node for n in (*node.input, *node.output)} | set(self.constants)
        self.new_inits: list[onnx.TensorProto] = []
        self.inverted: dict[str, str] = {}  # Sqrt output -> its reciprocal (Pow(v, -0.5)) output
        self.divisor_roots = _divisor_roots(model.graph)

    def name(self, base: str) -> str:
        name = base
        while name in self.taken:
            name += "_"
        self.taken.add(name)
        return name

    def scalar(self, base: str, value: float) -> str:
        name = self.name(base)
        self.new_inits.append(numpy_helper.from_array(np.array(value, dtype=np.float32), name))
        return name

    def const(self, base: str, value: np.ndarray) -> str:
        name = self.name(base)
        self.new_inits.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def float_constant(self, name: str) -> np.ndarray | None:
        value = self.constants.get(name)
        return value if value is not None and value.dtype.kind == "f" else None

    def rewrite(self, node: onnx.NodeProto) -> list[onnx.NodeProto] | None:
        """The nodes replacing `node`, or None to keep it."""
        if node.domain not in ("", "ai.onnx") or not node.output:
            return None
        out, label = node.output[0], node.name or node.op_type
        if node.op_type == "HardSigmoid":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            alpha, beta = float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))
            if not (np.isfinite(alpha) and np.isfinite(beta) and alpha > 0):
                return None
            shifted, clipped = self.name(f"{out}_shifted"), self.name(f"{out}_clipped")
            return [
                helper.make_node("Add", [node.input[0], self.scalar(f"{out}_offset", beta / alpha)],
                                 [shifted], name=f"{label}/add"),
                self.clip(shifted, 0.0, 1.0 / alpha, clipped, f"{label}/clip"),
                helper.make_node("Mul", [clipped, self.scalar(f"{out}_slope", alpha)], [out],
                                 name=f"{label}/mul"),
            ]
        if node.op_type == "Sqrt" and node.output[0] in self.divisor_roots:
            self.inverted[out] = self.name(f"{out}_reciprocal")
            return [helper.make_node("Pow", [node.input[0], self.scalar(f"{out}_exponent", -0.5)],
                                     [self.inverted[out]], name=label)]
        if node.op_type == "Div" and len(node.input) == 2 and node.input[1] in self.inverted:
            return [helper.make_node("Mul", [node.input[0], self.inverted[node.input[1]]], [out], name=label)]
        if node.op_type == "Div" and len(node.input) == 2:
            divisor = self.float_constant(node.input[1])
            if divisor is None or self.float_constant(node.input[0]) is not None or not np.all(divisor != 0):
                return None
            with np.errstate(over="ignore"):
                inverse = (1.0 / divisor.astype(np.float64)).astype(np.float32)
            if not np.all(np.isfinite(inverse)):
                return None
            return [helper.make_node("Mul", [node.input[0], self.const(f"{out}_reciprocal", inverse)],
                                     [out], name=label)]
        if node.op_type == "Sub" and len(node.input) == 2:
            a, b = (self.float_constant(n) for n in node.input)
            if b is not None and a is None:
                return [helper.make_node("Add", [node.input[0], self.const(f"{out}_negated", -b)], [out],
                                         name=label)]
            return None  # c - x and x - y stay Sub (TFLite SUB)
        if node.op_type == "Pow" and len(node.input) == 2:
            exponent = self.constants.get(node.input[1])
            if exponent is None or exponent.dtype.kind not in "fiu" or exponent.size != 1 \
                    or float(exponent.reshape(-1)[0]) != 2.0 or node.input[0] in self.constants:
                return None
            return [helper.make_node("Mul", [node.input[0], node.input[0]], [out], name=label)]
        if node.op_type == "Neg":
            return [helper.make_node("Mul", [node.input[0], self.scalar(f"{out}_minus_one", -1.0)], [out],
                                     name=label)]
        return None

    def clip(self, x: str, low: float, high: float, out: str, name: str) -> onnx.NodeProto:
        if self.opset >= 11:
            bounds = [self.scalar(f"{out}_min", low), self.scalar(f"{out}_max", high)]
            return helper.make_node("Clip", [x, *bounds], [out], name=name)
        return helper.make_node("Clip", [x], [out], name=name, min=low, max=high)


def _divisor_roots(graph: onnx.GraphProto) -> set[str]:
    """The outputs of Sqrt nodes that every reader divides by (no model output, and not read
    inside an If or Loop body)."""
    roots = {node.output[0] for node in graph.node
             if node.op_type == "Sqrt" and node.domain in ("", "ai.onnx") and node.output}
    roots -= {o.name for o in graph.output}
    for node in graph.node:
        divides = node.op_type == "Div" and len(node.input) == 2
        roots -= {name for i, name in enumerate(node.input) if not (divides and i == 1)}
        roots -= {name for body in _bodies(node) for name in _names_read(body)}
    return roots


def _bodies(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    """The graphs a node holds (If branches, Loop and Scan bodies)."""
    return [body for attr in node.attribute
            for body in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs))]


def _names_read(graph: onnx.GraphProto) -> set[str]:
    """Every name the nodes of `graph` and of the graphs inside them read."""
    return {name for node in graph.node for name in node.input} | \
        {name for node in graph.node for body in _bodies(node) for name in _names_read(body)}


def rewrite_elementwise(model: onnx.ModelProto) -> bool:
    """Rewrite the forms above in `model`, in place; True if anything changed."""
    rewriter = _Rewriter(model)
    nodes: list[onnx.NodeProto] = []
    changed = False
    for node in model.graph.node:
        replaced = rewriter.rewrite(node)
        changed |= replaced is not None
        nodes.extend(replaced if replaced is not None else [node])
    if changed:
        del model.graph.node[:]
        model.graph.node.extend(nodes)
        model.graph.initializer.extend(rewriter.new_inits)
    return changed

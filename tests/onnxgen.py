"""Builders of small float ONNX models for tests (onnx.helper), with seeded random weights."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


@dataclass
class OnnxBuilder:
    """Appends ONNX nodes; shapes are left to onnx's shape inference."""

    seed: int = 0
    opset: int = 17
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    inits: list[onnx.TensorProto] = field(default_factory=list)
    inputs: list[onnx.ValueInfoProto] = field(default_factory=list)
    counter: int = 0

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def _name(self, base: str) -> str:
        self.counter += 1
        return f"{base}{self.counter}"

    def const(self, value: np.ndarray, base: str = "c") -> str:
        name = self._name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def input(self, shape: tuple[int, ...]) -> str:
        name = f"x{len(self.inputs)}"
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{self.counter}", **attrs))
        return out

    def conv(self, x: str, c_in: int, c_out: int, kernel=(3, 3), group: int = 1, bias: bool = True,
             **attrs) -> str:
        fan_in = (c_in // group) * int(np.prod(kernel))
        w = self.rng.normal(0, 1.0 / np.sqrt(fan_in), size=(c_out, c_in // group, *kernel))
        ins = [x, self.const(w.astype(np.float32), "w")]
        if bias:
            ins.append(self.const(self.rng.normal(0, 0.1, size=c_out).astype(np.float32), "b"))
        return self.node("Conv", ins, group=group, kernel_shape=list(kernel), **attrs)

    def batch_norm(self, x: str, c: int) -> str:
        params = [self.rng.uniform(0.5, 1.5, c), self.rng.normal(0, 0.1, c),
                  self.rng.normal(0, 0.1, c), self.rng.uniform(0.5, 1.5, c)]
        return self.node("BatchNormalization", [x, *(self.const(p.astype(np.float32)) for p in params)])

    def gemm(self, x: str, k: int, n: int, trans_b: int = 1) -> str:
        w = self.rng.normal(0, 1.0 / np.sqrt(k), size=(n, k) if trans_b else (k, n))
        b = self.rng.normal(0, 0.1, size=n)
        return self.node("Gemm", [x, self.const(w.astype(np.float32)), self.const(b.astype(np.float32))],
                         transB=trans_b)

    def model(self, outputs: list[str]) -> onnx.ModelProto:
        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
        graph = helper.make_graph(self.nodes, "test", self.inputs, outs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = 8
        return onnx.shape_inference.infer_shapes(model)

    def save(self, outputs: list[str], path: Path) -> Path:
        onnx.save(self.model(outputs), str(path))
        return path

    def calibration(self, path: Path, count: int = 32) -> Path:
        """Random normal calibration samples for every input, as a .npz."""
        arrays = {}
        for vi in self.inputs:
            shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            arrays[vi.name] = self.rng.normal(0, 1, size=(count, *shape)).astype(np.float32)
        np.savez(path, **arrays)
        return path


GATES = {"LSTM": 4, "GRU": 3}  # ONNX's gate order: LSTM i, o, f, c; GRU z, r, h


def rnn_weights(rng: np.random.Generator, inputs: int, hidden: int, directions: int = 1, op_type: str = "LSTM"
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX LSTM's or GRU's W [D, gH, I], R [D, gH, H] and B [D, 2gH] for its g gates, as torch
    initialises them."""
    rows, bound = GATES[op_type] * hidden, 1.0 / np.sqrt(hidden)
    w = rng.uniform(-bound, bound, (directions, rows, inputs)).astype(np.float32)
    r = rng.uniform(-bound, bound, (directions, rows, hidden)).astype(np.float32)
    b = rng.uniform(-bound, bound, (directions, 2 * rows)).astype(np.float32)
    return w, r, b


def keyword_rnn(path: Path, op_type: str = "LSTM", steps: int = 12, features: int = 10, hidden: int = 16,
                classes: int = 4, use_sequence: bool = False, seed: int = 0, direction: str = "forward",
                **rnn_attrs) -> Path:
    """A keyword-style LSTM or GRU as torch.onnx exports `nn.LSTM(batch_first=True)` or `nn.GRU`
    (pass linear_before_reset=1 for torch's GRU; 0 is ONNX's default) followed by a linear layer:
    x [1, T, F] transposed to [T, 1, F], the recurrent node, then the last hidden state (Y_h
    squeezed) or, with `use_sequence`, Y squeezed, transposed back to [1, T, H] and its last step
    sliced, into Gemm and Softmax. Bidirectional: Y_h or Y's last step reshaped to [1, 2H]. Random
    normal calibration samples are written beside it (.npz)."""
    b = OnnxBuilder(seed=seed, opset=14)
    x = b.input((1, steps, features))
    seq = b.node("Transpose", [x], perm=[1, 0, 2])
    directions = 2 if direction == "bidirectional" else 1
    w, r, bias = rnn_weights(b.rng, features, hidden, directions, op_type)
    ins = [seq, b.const(w, "W"), b.const(r, "R"), b.const(bias, "B")]
    b.counter += 1
    prefix = op_type.lower()
    outs = [f"{prefix}_{o}{b.counter}" for o in ("y", "yh", "yc")[: 3 if op_type == "LSTM" else 2]]
    b.nodes.append(helper.make_node(op_type, ins, outs, name=f"{op_type}_{b.counter}", hidden_size=hidden,
                                    direction=direction, **rnn_attrs))
    width = directions * hidden
    if use_sequence and directions == 1:
        y = b.node("Squeeze", [outs[0], b.const(np.array([1], np.int64), "axes")])
        y = b.node("Transpose", [y], perm=[1, 0, 2])
        last = b.node("Slice", [y, *(b.const(np.array([v], np.int64)) for v in (steps - 1, steps, 1))])
        last = b.node("Reshape", [last, b.const(np.array([1, hidden], np.int64))])
    elif use_sequence:
        y = b.node("Reshape", [outs[0], b.const(np.array([steps, width], np.int64))])
        last = b.node("Slice", [y, *(b.const(np.array([v], np.int64)) for v in (steps - 1, steps, 0))])
    elif directions == 1:
        last = b.node("Squeeze", [outs[1], b.const(np.array([0], np.int64), "axes")])
    else:
        last = b.node("Reshape", [outs[1], b.const(np.array([1, width], np.int64))])
    logits = b.gemm(last, width, classes)
    b.save([b.node("Softmax", [logits], axis=-1)], path)
    b.calibration(path.with_suffix(".npz"))
    return path

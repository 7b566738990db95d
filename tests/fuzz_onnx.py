"""Seeded bad inputs for the float ONNX path, and the check each must pass.

`cases(seed, count)` yields `Case`s: a small valid model (tests/onnxgen.py builders) with one
fault in the model (non-finite or huge values, bad attributes, missing or dangling tensors, cycles,
wrong types, bad opsets, corrupt bytes) or in its calibration data (empty, /dev/null, NaN/Inf,
wrong shape or type, pickled objects, truncated archives). `check(case, directory)` imports it the
way `mcudeploy build` does and says what happened: refused with exit status 2 and one line naming
the file and the culprit, or imported (then optionally built, and run on QEMU with a true
verdict). Anything else (a traceback, another exit status, a message that names nothing, a
directory left behind, a pass with a non-finite oracle) is a problem. tests/test_fuzz_onnx.py and
scripts/fuzz_onnx.py use both.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import traceback
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxgen import OnnxBuilder

from mcudeploy.cli import main
from mcudeploy.errors import MCUDeployError
from mcudeploy.model import ImportOptions, import_model

MODEL = "model.onnx"


@dataclass(frozen=True)
class Case:
    """One bad input. `files` are written under the case's directory (relative path → bytes);
    `calibration` is the --calibration argument (relative to it, or absolute like /dev/null).
    A refusal must name one of the files in `blame` ("model", "calibration") and one of
    `culprits` (any name in the model when empty and `named`); `must_refuse` cases may not import."""

    name: str
    files: dict[str, bytes]
    calibration: str
    blame: tuple[str, ...]
    culprits: tuple[str, ...] = ()
    must_refuse: bool = False
    named: bool = True
    model_names: tuple[str, ...] = ()


@dataclass
class Outcome:
    """What `check` saw: `kind` is "refused", "imported", "built" or "run <verdict>"."""

    case: Case
    kind: str
    message: str = ""
    problems: list[str] = field(default_factory=list)


# ---- valid base models ----------------------------------------------------------------------------
def _conv_pool_gemm(b: OnnxBuilder) -> list[str]:
    x = b.node("Relu", [b.conv(b.input((1, 3, 8, 8)), 3, 4, pads=[1, 1, 1, 1])])
    x = b.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    return [b.node("Softmax", [b.gemm(b.node("Flatten", [x]), 64, 5)])]


def _depthwise_bn(b: OnnxBuilder) -> list[str]:
    x = b.conv(b.input((1, 4, 6, 6)), 4, 8, group=4, pads=[1, 1, 1, 1])
    x = b.node("Clip", [b.batch_norm(x, 8), b.const(np.float32(0)), b.const(np.float32(6))])
    return [b.node("GlobalAveragePool", [x])]


def _conv1d(b: OnnxBuilder) -> list[str]:
    x = b.conv(b.input((1, 3, 10)), 3, 4, kernel=(3,), strides=[2], pads=[1, 1])
    return [b.node("LeakyRelu", [x], alpha=0.1)]


def _matmul_add(b: OnnxBuilder) -> list[str]:
    y = b.node("MatMul", [b.input((2, 6)), b.const(b.rng.normal(0, 0.4, (6, 4)).astype(np.float32))])
    return [b.node("Tanh", [b.node("Add", [y, b.const(b.rng.normal(0, 0.1, 4).astype(np.float32))])])]


def _two_inputs(b: OnnxBuilder) -> list[str]:
    x0, x1 = b.input((1, 2, 4, 4)), b.input((1, 2, 4, 4))
    scale = b.const(b.rng.uniform(0.5, 2, (1, 2, 1, 1)).astype(np.float32))
    y = b.node("Mul", [b.node("Add", [x0, x1]), scale])
    cat = b.node("Concat", [y, x1], axis=1)
    return [b.node("Pad", [cat, b.const(np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64))])]


def _gemm_sigmoid(b: OnnxBuilder) -> list[str]:
    w = b.const(b.rng.normal(0, 0.3, (10, 3)).astype(np.float32))
    c = b.const(b.rng.normal(0, 0.1, 3).astype(np.float32))
    return [b.node("Sigmoid", [b.node("Gemm", [b.input((1, 10)), w, c], alpha=0.5, beta=2.0)])]


BASES: dict[str, Callable[[OnnxBuilder], list[str]]] = {
    f.__name__.lstrip("_"): f for f in (_conv_pool_gemm, _depthwise_bn, _conv1d, _matmul_add,
                                         _two_inputs, _gemm_sigmoid)}


@dataclass
class _Base:
    """A valid model being broken: its proto, input shapes, and seeded calibration arrays."""

    name: str
    model: onnx.ModelProto
    shapes: dict[str, tuple[int, ...]]
    rng: np.random.Generator

    def calibration(self, count: int = 6) -> dict[str, np.ndarray]:
        return {n: self.rng.normal(0, 1, (count, *s)).astype(np.float32) for n, s in self.shapes.items()}

    def names(self) -> tuple[str, ...]:
        return _names(self.model)


def _names(model: onnx.ModelProto) -> tuple[str, ...]:
    """Every node, tensor, input, output and initializer name of a model."""
    g = model.graph
    found = {i.name for i in g.initializer} | {i.name for i in g.input} | {o.name for o in g.output}
    for node in g.node:
        found |= {node.name, *node.input, *node.output}
    return tuple(sorted(n for n in found if isinstance(n, str) and n))


def _base(seed: int, name: str) -> _Base:
    b = OnnxBuilder(seed=seed)
    model = b.model(BASES[name](b))
    shapes = {vi.name: tuple(d.dim_value for d in vi.type.tensor_type.shape.dim) for vi in b.inputs}
    return _Base(name, model, shapes, np.random.default_rng(seed))


def _npy(array: np.ndarray, pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=pickle)
    return buf.getvalue()


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _calibration_files(base: _Base, arrays: dict[str, np.ndarray] | None = None) -> dict[str, bytes]:
    return {"cal.npz": _npz(arrays if arrays is not None else base.calibration())}


def _model_case(base: _Base, fault: str, model: onnx.ModelProto | bytes, culprits: tuple[str, ...] = (),
                must_refuse: bool = False, named: bool = True,
                blame: tuple[str, ...] = ("model",)) -> Case:
    data = model if isinstance(model, bytes) else model.SerializeToString()
    names = base.names() if isinstance(model, bytes) else _names(model)
    return Case(f"{fault}:{base.name}", {MODEL: data, **_calibration_files(base)}, "cal.npz", blame,
                culprits, must_refuse, named, names)


def _calibration_case(base: _Base, fault: str, files: dict[str, bytes], calibration: str,
                      culprits: tuple[str, ...] = (), must_refuse: bool = True) -> Case:
    return Case(f"{fault}:{base.name}", {MODEL: base.model.SerializeToString(), **files}, calibration,
                ("calibration",), culprits, must_refuse, bool(culprits), base.names())


# ---- faults in the model --------------------------------------------------------------------------
def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def _float_initializers(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    return [i for i in model.graph.initializer if i.data_type == TensorProto.FLOAT and i.dims]


def _set_initializer(model: onnx.ModelProto, name: str, value: np.ndarray) -> None:
    for i, init in enumerate(model.graph.initializer):
        if init.name == name:
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(value, name))


def _bad_values(rng: np.random.Generator, base: _Base, finite: bool) -> Case:
    model = _copy(base.model)
    inits = _float_initializers(model)
    init = inits[rng.integers(len(inits))]
    value = numpy_helper.to_array(init).copy()
    choices = [1e38, -1e38, 3.4e38, 1e30, 1e-45, 1e-40, 1e-30] if finite else [np.nan, np.inf, -np.inf]
    bad = np.float32(choices[rng.integers(len(choices))])
    if rng.random() < 0.3:
        value[...] = bad
    else:
        value.reshape(-1)[rng.integers(value.size)] = bad
    _set_initializer(model, init.name, value)
    kind = "huge-or-tiny-initializer" if finite else "nonfinite-initializer"
    return _model_case(base, kind, model, () if finite else (init.name,), must_refuse=not finite)


_FLOAT_ATTRS = {"Gemm": ("alpha", "beta"), "BatchNormalization": ("epsilon",), "LeakyRelu": ("alpha",)}


def _bad_attribute(rng: np.random.Generator, base: _Base) -> Case:
    model = _copy(base.model)
    nodes = [n for n in model.graph.node if n.op_type in _FLOAT_ATTRS]
    if not nodes:
        node = model.graph.node[rng.integers(len(model.graph.node))]
        node.attribute.append(helper.make_attribute("alpha", float("nan")))
        return _model_case(base, "unknown-nan-attribute", model, (node.name,))
    node = nodes[rng.integers(len(nodes))]
    attr = _FLOAT_ATTRS[node.op_type][rng.integers(len(_FLOAT_ATTRS[node.op_type]))]
    value = [np.nan, np.inf, -np.inf, 1e38, -1e38, 0.0, -1.0][rng.integers(7)]
    kept = [a for a in node.attribute if a.name != attr]
    del node.attribute[:]
    node.attribute.extend([*kept, helper.make_attribute(attr, float(value))])
    finite = bool(np.isfinite(value))
    return _model_case(base, f"{'' if finite else 'nonfinite-'}attribute-{attr}", model,
                       () if finite else (node.name,), must_refuse=not finite)


def _bad_window(rng: np.random.Generator, base: _Base) -> Case:
    model = _copy(base.model)
    nodes = [n for n in model.graph.node if n.op_type in ("Conv", "MaxPool")]
    if not nodes:
        return _bad_values(rng, base, finite=False)
    node = nodes[rng.integers(len(nodes))]
    spatial = 1 if base.name == "conv1d" else 2
    name, value = [
        ("pads", [-1] * (2 * spatial)), ("pads", [1] * (2 * spatial + 1)), ("pads", [40] * (2 * spatial)),
        ("pads", [2**40] * (2 * spatial)), ("strides", [0] * spatial), ("strides", [-2] * spatial),
        ("strides", [2**31] * spatial), ("dilations", [0] * spatial), ("kernel_shape", [0] * spatial),
        ("kernel_shape", [99] * spatial), ("group", 0), ("group", -1), ("group", 3), ("group", 2**40),
        ("auto_pad", "BOGUS"), ("pads", "one"), ("group", 1.5),
    ][rng.integers(17)]
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend([*kept, helper.make_attribute(name, value)])
    return _model_case(base, f"bad-{name}", model, (node.name,))


def _bad_dims(rng: np.random.Generator, base: _Base) -> Case:
    model = _copy(base.model)
    if rng.random() < 0.5:
        vi = model.graph.input[rng.integers(len(model.graph.input))]
        dims = vi.type.tensor_type.shape.dim
        dims[int(rng.integers(len(dims)))].dim_value = int([0, 2**31, 10**6, 2**62][rng.integers(4)])
        return _model_case(base, "input-dim", model, blame=("model", "calibration"))
    inits = _float_initializers(model)
    init = inits[rng.integers(len(inits))]
    init.dims[int(rng.integers(len(init.dims)))] = int([0, 2**31, 7][rng.integers(3)])
    return _model_case(base, "initializer-dims", model, (init.name,), must_refuse=True)


def _missing_tensor(rng: np.random.Generator, base: _Base) -> Case:
    model = _copy(base.model)
    g = model.graph
    choice = rng.integers(4)
    if choice == 0:  # an initializer removed
        init = g.initializer[rng.integers(len(g.initializer))]
        g.initializer.remove(init)
        return _model_case(base, "missing-initializer", model, (init.name,), must_refuse=True)
    node = g.node[rng.integers(len(g.node))]
    if choice == 1:  # a node reads a tensor nothing defines
        slot = int(rng.integers(len(node.input)))
        node.input[slot] = "nowhere"
        return _model_case(base, "undefined-input", model, ("nowhere",), must_refuse=True)
    if choice == 2:  # an output no node produces
        g.output.append(helper.make_tensor_value_info("ghost", TensorProto.FLOAT, [1, 4]))
        return _model_case(base, "unproduced-output", model, ("ghost",), must_refuse=True)
    g.input.append(helper.make_tensor_value_info("unread", TensorProto.FLOAT, [1, 4]))  # dangling input
    return _model_case(base, "dangling-input", model, ("unread",), blame=("model", "calibration"))


def _bad_structure(rng: np.random.Generator, base: _Base) -> Case:
    model = _copy(base.model)
    g = model.graph
    choice = rng.integers(5)
    if choice == 0:  # a cycle: the first node reads the last node's output
        g.node[0].input.append(g.node[len(g.node) - 1].output[0])
        return _model_case(base, "cycle", model, must_refuse=True)
    if choice == 1:  # two nodes write one tensor
        g.node[len(g.node) - 1].output[0] = g.node[0].output[0]
        return _model_case(base, "duplicate-output", model, must_refuse=True)
    node = g.node[rng.integers(len(g.node))]
    if choice == 2:
        node.op_type = ["Foo", "Erf", "LSTM", "Loop", ""][rng.integers(5)]
        return _model_case(base, "unknown-op", model, (node.name,), must_refuse=True)
    if choice == 3:
        node.domain = "com.example"
        return _model_case(base, "unknown-domain", model, (node.name,), must_refuse=True)
    g.output[0].name = [g.input[0].name, g.initializer[0].name][rng.integers(2)]  # output = input/constant
    return _model_case(base, "output-not-computed", model, (g.output[0].name,), must_refuse=True)


def _computed_values(rng: np.random.Generator, base: _Base) -> Case:
    """Values that come from nodes rather than initializers: a Constant node's NaN, a constant
    division by zero that folding computes, a node's second output made a graph output."""
    model = _copy(base.model)
    g = model.graph
    x = g.input[0].name
    reader = next(i for i, n in enumerate(g.node) if x in n.input)
    choice = rng.integers(3)
    if choice == 2:  # Dropout's mask as a graph output
        g.node.insert(reader, helper.make_node("Dropout", [x], ["dropped", "mask"], name="drop"))
        g.node[reader + 1].input[list(g.node[reader + 1].input).index(x)] = "dropped"
        shape = [d.dim_value for d in g.input[0].type.tensor_type.shape.dim]
        g.output.append(helper.make_tensor_value_info("mask", TensorProto.BOOL, shape))
        return _model_case(base, "second-output", model, must_refuse=True)
    if choice == 0:
        value = np.float32([np.nan, np.inf, -np.inf][rng.integers(3)])
        g.node.insert(reader, helper.make_node("Constant", [], ["k"], name="konst",
                                               value=numpy_helper.from_array(value, "k")))
        culprit = "konst"
    else:
        g.initializer.extend([numpy_helper.from_array(np.float32(1), "one"),
                              numpy_helper.from_array(np.float32(0), "zero")])
        g.node.insert(reader, helper.make_node("Div", ["one", "zero"], ["k"], name="divide"))
        culprit = "divide"
    g.node.insert(reader + 1, helper.make_node("Mul", [x, "k"], ["scaled"], name="scale"))
    g.node[reader + 2].input[list(g.node[reader + 2].input).index(x)] = "scaled"
    return _model_case(base, "computed-nonfinite", model, (culprit,), must_refuse=True)


def _wrong_dtype(rng: np.random.Generator, base: _Base) -> Case:
    model = _copy(base.model)
    g = model.graph
    types = [TensorProto.INT32, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.STRING,
             TensorProto.UINT8, TensorProto.BOOL, TensorProto.COMPLEX64]
    kind = types[rng.integers(len(types))]
    if rng.random() < 0.5:
        vi = g.input[rng.integers(len(g.input))]
        vi.type.tensor_type.elem_type = kind
        return _model_case(base, f"input-type-{TensorProto.DataType.Name(kind)}", model, (vi.name,))
    init = _float_initializers(model)[0]
    value = numpy_helper.to_array(init)
    if kind == TensorProto.STRING:
        new = numpy_helper.from_array(np.array([str(v) for v in value.reshape(-1)], dtype=object)
                                      .reshape(value.shape), init.name)
    else:
        new = numpy_helper.from_array(value.astype(helper.tensor_dtype_to_np_dtype(kind)), init.name)
    for i, old in enumerate(g.initializer):
        if old.name == init.name:
            g.initializer[i].CopyFrom(new)
    return _model_case(base, f"initializer-type-{TensorProto.DataType.Name(kind)}", model)


def _bad_opset(rng: np.random.Generator, base: _Base) -> Case:
    model = _copy(base.model)
    choice = rng.integers(6)
    if choice < 3:
        model.opset_import[0].version = [0, 1, 10**6][choice]
    elif choice == 3:
        del model.opset_import[:]
    elif choice == 4:
        model.ir_version = [0, 2, 99][rng.integers(3)]
    else:
        model.opset_import.append(helper.make_opsetid("com.example", 1))
        return _model_case(base, "extra-opset", model)
    return _model_case(base, "bad-opset", model, named=False)


def _bias_shape(rng: np.random.Generator, base: _Base) -> Case:
    model = _copy(base.model)
    g = model.graph
    nodes = [n for n in g.node if n.op_type in ("Conv", "Gemm") and len(n.input) > 2]
    if not nodes:
        return _bad_values(rng, base, finite=True)
    node = nodes[rng.integers(len(nodes))]
    bias = next(i for i in g.initializer if i.name == node.input[2])
    value = numpy_helper.to_array(bias)
    shape = [(1, value.size, 1), (value.size, 1), (1, 1, value.size), (value.size + 1,), ()][rng.integers(5)]
    new = np.resize(value, shape).astype(np.float32)
    _set_initializer(model, bias.name, new)
    return _model_case(base, "bias-shape", model, (node.name, bias.name))


def _corrupt_bytes(rng: np.random.Generator, base: _Base) -> Case:
    data = base.model.SerializeToString()
    choice = rng.integers(5)
    if choice == 0:
        data = data[: int(rng.integers(len(data)))]
    elif choice == 1:
        raw = bytearray(data)
        for _ in range(int(rng.integers(1, 8))):
            raw[int(rng.integers(len(raw)))] = int(rng.integers(256))
        data = bytes(raw)
    elif choice == 2:
        data = b""
    elif choice == 3:
        data = rng.integers(0, 256, int(rng.integers(1, 300)), dtype=np.uint8).tobytes()
    else:
        data = zlib.compress(data)
    return _model_case(base, "corrupt-bytes", data, named=False)


def _non_utf8(rng: np.random.Generator, base: _Base) -> Case:
    """A name, doc string or string attribute whose bytes are not UTF-8 (same length, so the
    protobuf stays well-formed)."""
    model = _copy(base.model)
    node = model.graph.node[rng.integers(len(model.graph.node))]
    choice = rng.integers(3)
    if choice == 0:
        target = node.name
    elif choice == 1:
        target = node.output[0]
    else:
        node.doc_string = "docstring"
        target = "docstring"
    data = model.SerializeToString()
    broken = target[:-2].encode() + b"\xff\xfe"
    return _model_case(base, "non-utf8", data.replace(target.encode(), broken), named=False)


# ---- faults in the calibration data ---------------------------------------------------------------
def _calibration_values(rng: np.random.Generator, base: _Base) -> Case:
    arrays = base.calibration()
    name = list(arrays)[rng.integers(len(arrays))]
    choice = rng.integers(7)
    value = arrays[name]
    if choice == 0:
        value[...] = np.nan
        fault = "all-nan"
    elif choice in (1, 2, 3):
        value.reshape(-1)[rng.integers(value.size)] = [np.nan, np.inf, -np.inf][choice - 1]
        fault = "nonfinite"
    else:
        value[...] = [0.0, 1e38, 3.0e38, 7.0][choice - 3] if choice < 7 else 0.0
        case = _calibration_case(base, "calibration-extreme", _calibration_files(base, arrays), "cal.npz",
                                 must_refuse=False)
        return replace(case, blame=("model", "calibration"), named=True)  # the float model overflows
    return _calibration_case(base, f"calibration-{fault}", _calibration_files(base, arrays), "cal.npz",
                             (name,))


def _calibration_shape(rng: np.random.Generator, base: _Base) -> Case:
    arrays = base.calibration()
    name = list(arrays)[rng.integers(len(arrays))]
    value = arrays[name]
    choice = rng.integers(10)
    bad = [
        value[:, ..., :1], value.reshape(-1), np.float32(1.0), value[:0], value.astype(np.int64),
        value.astype(np.complex64), value > 0, value.astype(str), value.astype(np.float16),
        value.astype(np.float64),
    ][choice]
    arrays[name] = bad
    ok = choice in (8, 9)  # float16 and float64 are float data
    return _calibration_case(base, "calibration-shape-or-type", _calibration_files(base, arrays),
                             "cal.npz", () if ok else (name,), must_refuse=not ok)


def _calibration_file(rng: np.random.Generator, base: _Base) -> Case:
    arrays = base.calibration()
    first = next(iter(arrays))
    choice = rng.integers(10)
    whole = _npz(arrays)
    if choice == 0:
        return _calibration_case(base, "calibration-empty-npy", {"cal.npy": b""}, "cal.npy")
    if choice == 1:
        return _calibration_case(base, "calibration-empty-npz", {"cal.npz": b""}, "cal.npz")
    if choice == 2:
        return _calibration_case(base, "calibration-dev-null", {}, "/dev/null")
    if choice == 3:
        cut = whole[: int(rng.integers(1, len(whole)))]
        return _calibration_case(base, "calibration-truncated-npz", {"cal.npz": cut}, "cal.npz")
    if choice == 4:
        raw = _npy(arrays[first])
        cut = raw[: int(rng.integers(1, len(raw)))]
        return _calibration_case(base, "calibration-truncated-npy", {"cal.npy": cut}, "cal.npy")
    if choice == 5:
        objects = np.empty(3, dtype=object)
        objects[:] = [arrays[first][0], "text", {"a": 1}]
        return _calibration_case(base, "calibration-pickled-objects", {"cal.npy": _npy(objects, True)},
                                 "cal.npy")
    if choice == 6:
        return _calibration_case(base, "calibration-empty-folder", {"cal/README": b"nothing"}, "cal")
    if choice == 7:
        files = {"cal/a.npz": whole, "cal/b.npy": b"\x93NUMPY garbage"}
        return _calibration_case(base, "calibration-bad-file-in-folder", files, "cal")
    if choice == 8:
        del arrays[first]
        arrays["other"] = np.zeros(3, np.float32)
        return _calibration_case(base, "calibration-missing-input", {"cal.npz": _npz(arrays)}, "cal.npz",
                                 (first,))
    return _calibration_case(base, "calibration-missing-file", {}, "absent.npz")


_MODEL_FAULTS: list[Callable[[np.random.Generator, _Base], Case]] = [
    lambda rng, base: _bad_values(rng, base, finite=False),
    lambda rng, base: _bad_values(rng, base, finite=True),
    _bad_attribute, _bad_window, _bad_dims, _missing_tensor, _bad_structure, _computed_values, _wrong_dtype,
    _bad_opset,
    _bias_shape, _corrupt_bytes, _non_utf8,
]
_CALIBRATION_FAULTS = [_calibration_values, _calibration_shape, _calibration_file]


def cases(seed: int, count: int) -> Iterator[Case]:
    """`count` cases from `seed`: each a base model with one fault in it or in its calibration, the
    kinds of fault taken in turn."""
    rng = np.random.default_rng(seed)
    faults = _MODEL_FAULTS + _CALIBRATION_FAULTS
    for index in range(count):
        base = _base(seed * 100003 + index, list(BASES)[rng.integers(len(BASES))])
        yield faults[index % len(faults)](rng, base)


# ---- the check --------------------------------------------------------------------------------------
def write(case: Case, directory: Path) -> tuple[Path, Path]:
    """The case's files under `directory`; returns the model and calibration paths."""
    directory.mkdir(parents=True, exist_ok=True)
    for rel, data in case.files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    calibration = Path(case.calibration) if case.calibration.startswith("/") else directory / case.calibration
    return directory / MODEL, calibration


def _cli(args: list[str]) -> tuple[int | None, str, str]:
    """main(args) in-process: exit status, stderr, and a traceback if it raised."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = main(args)
    except Exception:
        return None, err.getvalue(), traceback.format_exc()
    return status, err.getvalue(), ""


def _check_refusal(case: Case, exc: MCUDeployError, model: Path, calibration: Path, out: Path,
                   problems: list[str]) -> None:
    message = str(exc)
    if exc.exit_code != 2:
        problems.append(f"refused with exit status {exc.exit_code}, not 2")
    if "\n" in message.strip():
        problems.append("message is not one line")
    files = {"model": model, "calibration": calibration}
    blamed = [str(path) for key, path in files.items() if key in case.blame]
    if not any(path in message for path in blamed):
        problems.append(f"message names none of {', '.join(blamed)}")
    if case.culprits and not any(c in message for c in case.culprits):
        problems.append(f"message names none of {', '.join(case.culprits)}")
    elif case.named and not case.culprits and not any(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", message)
                                                      for n in case.model_names):
        problems.append("message names no node, tensor or initializer of the model")
    status, err, trace = _cli(["build", str(model), "--calibration", str(calibration), "--out", str(out),
                               "-q"])
    if trace:
        problems.append(f"mcudeploy build raised: {trace}")
    elif status != exc.exit_code or f"error: {' '.join(message.split())}" not in " ".join(err.split()):
        problems.append(f"mcudeploy build said {status}: {err.strip()!r}")
    if out.exists():
        problems.append(f"{out} was left behind")


def _strict_json(text: str) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def _check_run(model: Path, calibration: Path, out: Path, problems: list[str]) -> str:
    status, err, trace = _cli(["run", str(model), "--calibration", str(calibration), "--out", str(out),
                               "--vectors", "2", "-q"])
    if trace:
        problems.append(f"mcudeploy run raised: {trace}")
        return "run raised"
    expected = {0: "pass", 1: "fail", 4: "error"}
    if status not in expected:
        problems.append(f"mcudeploy run exited {status}: {err.strip()!r}")
        return f"run exit {status}"
    try:
        report = _strict_json((out / "report.json").read_text())
    except (OSError, ValueError) as exc:
        problems.append(f"report.json: {exc}")
        return "run no report"
    verdict = report["verdict"]
    if report["mismatched_vectors"]:
        problems.append(f"the device, the host reference and TFLM disagree: {report['mismatches'][:2]}")
    if verdict != expected[status]:
        problems.append(f"exit status {status} with verdict {verdict}")
    oracle = report.get("float_oracle", {})
    if verdict == "pass" and (not oracle.get("passed") or "error" in oracle):
        problems.append(f"pass with float oracle {report['float_oracle']}")
    if status == 4 and report.get("error_kind") != "oracle":
        problems.append(f"exit 4 with error_kind {report.get('error_kind')}")
    return f"run {verdict}"


def _warned(seen: list[warnings.WarningMessage]) -> list[str]:
    """numpy's warnings (overflow, invalid cast) reaching the user's terminal."""
    return [f"warning: {w.category.__name__}: {w.message} ({Path(w.filename).name}:{w.lineno})"
            for w in seen if issubclass(w.category, RuntimeWarning | np.exceptions.ComplexWarning)]


def check(case: Case, directory: Path, build: bool = False, run: bool = False) -> Outcome:
    """Import the case as `mcudeploy build` does; with `build`/`run`, go on when it imports."""
    model, calibration = write(case, directory)
    out = directory / "out"
    problems: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            import_model(model, ImportOptions(calibration=calibration))
    except MCUDeployError as exc:
        _check_refusal(case, exc, model, calibration, out, problems)
        return Outcome(case, "refused", str(exc), problems + _warned(seen))
    except Exception:
        return Outcome(case, "traceback", "", [traceback.format_exc()])
    problems += _warned(seen)
    if case.must_refuse:
        problems.append("imported, but must be refused")
    kind = "imported"
    if run:
        kind = _check_run(model, calibration, out, problems)
    elif build:
        status, err, trace = _cli(["build", str(model), "--calibration", str(calibration), "--out",
                                   str(out), "-q"])
        kind = "built" if status == 0 else f"build exit {status}"
        if status != 0:
            problems.append(f"imported but mcudeploy build said {status}: {err.strip()!r} {trace}")
    return Outcome(case, kind, "", problems)

"""TFLite import: the bundled model's structure, malformed files, unsupported operators."""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from cases import build_case
from modelgen import GraphBuilder
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from mcudeploy import ir
from mcudeploy.errors import ModelFormatError, UnsupportedError
from mcudeploy.frontends.tflite import load_tflite, parse_tflite
from mcudeploy.oracles import Tflm
from mcudeploy.reference import run_graph
from mcudeploy.vectors import random_vectors

BUNDLED = Path(__file__).resolve().parent.parent / "models" / "tiny_cnn.tflite"


def test_bundled_model_imports_with_every_required_op() -> None:
    graph = load_tflite(BUNDLED)
    kinds = [op.kind for op in graph.ops]
    for kind in ("conv2d", "depthwise_conv2d", "pool2d", "add", "fully_connected", "softmax"):
        assert kind in kinds
    assert {op.attrs.mode for op in graph.ops if op.kind == "pool2d"} == {"avg", "max"}


def _retype_first_op(data: bytes, builtin: int, count: int = 1) -> bytes:
    """The model with its first `count` operators given the type `builtin`."""
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))
    code = fb.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = builtin
    code.version = 1
    model.operatorCodes.append(code)
    for op in model.subgraphs[0].operators[:count]:
        op.opcodeIndex = len(model.operatorCodes) - 1
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_unsupported_operator_is_named_with_index_and_type() -> None:
    _, data = build_case("conv1x1")
    with pytest.raises(UnsupportedError) as err:
        parse_tflite(_retype_first_op(data, fb.BuiltinOperator.L2_NORMALIZATION), "m",
                     "m.tflite")
    assert str(err.value) == ("m.tflite: operator 0 (L2_NORMALIZATION) is not supported "
                              "(docs/SUPPORTED_OPS.md lists the operators mcudeploy imports) "
                              "(inputs: input, w0, b0; outputs: t0_conv2d)")


def test_every_unsupported_operator_is_named_in_one_message() -> None:
    """Item 7 of issue 18: all of them at once, operators of one type together, no list of the
    supported operators repeated, and the Keras hint for SHAPE (here of a computed tensor)."""
    _, data = build_case("pool_add_fc_softmax")
    retyped = _retype_first_op(_retype_first_op(data, fb.BuiltinOperator.SHAPE),
                               fb.BuiltinOperator.L2_NORMALIZATION, 0)
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAs(retyped, 0))
    cumsum = len(model.operatorCodes) - 1
    for op in model.subgraphs[0].operators[1:]:
        op.opcodeIndex = cumsum
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    with pytest.raises(UnsupportedError) as err:
        parse_tflite(bytes(builder.Output()), "m", "m.tflite")
    message = str(err.value)
    count = len(model.subgraphs[0].operators)
    others = ", ".join(str(i) for i in range(1, count))
    assert message.startswith(f"m.tflite: {count} operators cannot be imported: operator 0 (SHAPE) is "
                              "not supported: the shape of its input is computed at run time; export the "
                              "model with `keras.Input(..., batch_size=1)`"), message
    assert f"; operators {others} (L2_NORMALIZATION) are not supported" in message, message
    assert message.count("SUPPORTED_OPS.md") == 1 and "\n" not in message


@pytest.mark.parametrize(
    ("mangle", "expected"),
    [
        (lambda d: b"", "not a TFLite flatbuffer"),
        (lambda d: d[:3], "not a TFLite flatbuffer"),
        (lambda d: d[:4] + b"ONNX" + d[8:], "file identifier at bytes 4-7 is b'ONNX'"),
        (lambda d: d[: len(d) // 3], "corrupt TFLite flatbuffer"),
        (lambda d: d[:8] + bytes(200), "the model has no subgraph"),
    ],
    ids=["empty", "three_bytes", "wrong_identifier", "truncated", "zeroed"],
)
def test_malformed_files_name_the_file(tmp_path: Path, mangle, expected: str) -> None:
    _, data = build_case("conv1x1")
    path = tmp_path / "bad.tflite"
    path.write_bytes(mangle(data))
    with pytest.raises((ModelFormatError, UnsupportedError)) as err:
        load_tflite(path)
    assert str(err.value).startswith(str(path))
    assert expected in str(err.value)


def test_missing_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match=r"nope\.tflite: cannot read"):
        load_tflite(tmp_path / "nope.tflite")


def test_random_corruption_gives_a_clear_error_or_a_model() -> None:
    """Flipped bytes anywhere: the importer either reads a model or names the file; no crash."""
    from mcudeploy.support import check_graph

    _, data = build_case("pool_add_fc_softmax")
    rng = np.random.default_rng(5)
    outcomes = {"ok": 0, "refused": 0}
    for _ in range(300):
        damaged = bytearray(data)
        for pos in rng.integers(8, len(data), size=int(rng.integers(1, 6))):
            damaged[pos] = int(rng.integers(0, 256))
        try:
            check_graph(parse_tflite(bytes(damaged), "m", "m.tflite"))
            outcomes["ok"] += 1
        except (ModelFormatError, UnsupportedError) as exc:
            assert str(exc).startswith(("m.tflite", "operator", "m:")), exc
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0


def _as_expand_dims_and_squeeze(data: bytes) -> bytes:
    """The file's first RESHAPE as EXPAND_DIMS (axis 1, a constant input) and its last as SQUEEZE
    (squeeze_dims [1]): what the TFLite converter writes around a Keras Conv1D."""
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))
    sub = model.subgraphs[0]

    def opcode(builtin: int) -> int:
        code = fb.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = builtin
        code.version = 1
        model.operatorCodes.append(code)
        return len(model.operatorCodes) - 1

    reshapes = [op for op in sub.operators
                if model.operatorCodes[op.opcodeIndex].builtinCode == fb.BuiltinOperator.RESHAPE]
    first, last = reshapes[0], reshapes[-1]
    axis_buffer = fb.BufferT()
    axis_buffer.data = list(np.array([1], dtype=np.int32).tobytes())
    model.buffers.append(axis_buffer)
    axis = fb.TensorT()
    axis.shape, axis.type, axis.buffer, axis.name = [1], fb.TensorType.INT32, len(model.buffers) - 1, b"axis"
    sub.tensors.append(axis)
    first.opcodeIndex = opcode(fb.BuiltinOperator.EXPAND_DIMS)
    first.inputs = [first.inputs[0], len(sub.tensors) - 1]
    first.builtinOptionsType = fb.BuiltinOptions.ExpandDimsOptions
    first.builtinOptions = fb.ExpandDimsOptionsT()
    squeeze = fb.SqueezeOptionsT()
    squeeze.squeezeDims = [1]
    last.opcodeIndex = opcode(fb.BuiltinOperator.SQUEEZE)
    last.inputs = [last.inputs[0]]
    last.builtinOptionsType, last.builtinOptions = fb.BuiltinOptions.SqueezeOptions, squeeze
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_expand_dims_and_squeeze_around_a_conv1d_are_reshapes_bit_exact_with_tflm() -> None:
    b = GraphBuilder(seed=3)
    rows = b.reshape(b.input((2, 17, 6)), (2, 1, 17, 6))
    conv = b.conv(rows, 5, kernel=(1, 3), stride=(1, 2), activation=ir.Clip(0.0, None))
    _, data = b.build([b.reshape(conv, (2, 9, 5))], name="conv1d_keras")
    data = _as_expand_dims_and_squeeze(data)
    graph = parse_tflite(data, "conv1d_keras")
    assert [op.origin.split(" ")[2] for op in graph.ops] == ["(EXPAND_DIMS)", "(CONV_2D)", "(SQUEEZE)"]
    assert [op.kind for op in graph.ops] == ["reshape", "conv2d", "reshape"]
    oracle = Tflm(data, graph)
    for vector in random_vectors(graph, 4, seed=1):
        ours = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))[graph.outputs[0]]
        np.testing.assert_array_equal(ours, oracle.invoke(vector)[0].reshape(ours.shape))

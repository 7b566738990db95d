"""TFLite import: the bundled model's structure, malformed files, unsupported operators."""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from cases import build_case
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from mcudeploy.errors import ModelFormatError, UnsupportedError
from mcudeploy.frontends.tflite import load_tflite, parse_tflite

BUNDLED = Path(__file__).resolve().parent.parent / "models" / "tiny_cnn.tflite"


def test_bundled_model_imports_with_every_required_op() -> None:
    graph = load_tflite(BUNDLED)
    kinds = [op.kind for op in graph.ops]
    for kind in ("conv2d", "depthwise_conv2d", "pool2d", "add", "fully_connected", "softmax"):
        assert kind in kinds
    assert {op.attrs.mode for op in graph.ops if op.kind == "pool2d"} == {"avg", "max"}


def _retype_first_op(data: bytes, builtin: int) -> bytes:
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))
    code = fb.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = builtin
    code.version = 1
    model.operatorCodes.append(code)
    model.subgraphs[0].operators[0].opcodeIndex = len(model.operatorCodes) - 1
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_unsupported_operator_is_named_with_index_type_and_tensors() -> None:
    _, data = build_case("conv1x1")
    with pytest.raises(UnsupportedError) as err:
        parse_tflite(_retype_first_op(data, fb.BuiltinOperator.TANH), "m", "m.tflite")
    message = str(err.value)
    assert "m.tflite: operator 0 (TANH) is not supported" in message
    assert "inputs: input, w0, b0" in message and "outputs: t0_conv2d" in message


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

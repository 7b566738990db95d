"""Bad float ONNX models and calibration data: each refused at conversion in one line naming the
file and the initializer, attribute, node, tensor or field; huge-but-finite values handled exactly
or refused; an oracle that cannot answer is an error, never a pass; reports are strict JSON."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnxgen import OnnxBuilder

from mcudeploy.cli import main
from mcudeploy.errors import InputError, MCUDeployError, ModelFormatError, UnsupportedError
from mcudeploy.model import ImportOptions, import_model
from mcudeploy.oracles import Tflm, dequantize, snr_db
from mcudeploy.reference import run_graph
from mcudeploy.report import RunReport


def _strict(text: str) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def _gemm_model(tmp_path: Path, w: np.ndarray, bias: np.ndarray | None = None, **attrs) -> tuple[Path, Path]:
    b = OnnxBuilder()
    x = b.input((1, w.shape[1]))
    ins = [x, b.const(w.astype(np.float32))]
    if bias is not None:
        ins.append(b.const(bias.astype(np.float32)))
    y = b.node("Gemm", ins, transB=1, **attrs)
    return b.save([y], tmp_path / "m.onnx"), b.calibration(tmp_path / "cal.npz", 8)


def _build(model: Path, calibration: Path | str, tmp_path: Path, capsys) -> tuple[int, str]:
    out = tmp_path / "out"
    status = main(["build", str(model), "--calibration", str(calibration), "--out", str(out), "-q"])
    err = " ".join(capsys.readouterr().err.split())
    assert not out.exists(), "a refused model left its output directory"
    return status, err


# ---- non-finite values: refused at conversion, naming them --------------------------------------------
def test_nan_weight_is_refused_naming_the_initializer(tmp_path: Path, capsys) -> None:
    """It used to build, run, and pass 3 of 3 bit-exact against an all-NaN onnxruntime output."""
    w = np.random.default_rng(0).normal(0, 0.3, (3, 8))
    w[1, 2] = np.nan
    model, cal = _gemm_model(tmp_path, w, np.zeros(3))
    status, err = _build(model, cal, tmp_path, capsys)
    assert status == 2
    assert f"error: {model}: initializer 'c1' holds NaN at index [1, 2]" in err, err


def test_gemm_alpha_nan_is_refused_naming_the_attribute(tmp_path: Path, capsys) -> None:
    model, cal = _gemm_model(tmp_path, np.ones((3, 8)), np.zeros(3), alpha=float("nan"))
    status, err = _build(model, cal, tmp_path, capsys)
    assert status == 2
    assert f"error: {model}: node 'Gemm_3' (Gemm): attribute alpha holds NaN" in err, err


def test_infinite_constant_computed_by_folding_names_the_node(tmp_path: Path) -> None:
    b = OnnxBuilder()
    scale = b.node("Div", [b.const(np.ones(4, np.float32)), b.const(np.zeros(4, np.float32))])
    model = b.save([b.node("Mul", [b.input((1, 4)), scale])], tmp_path / "m.onnx")
    with pytest.raises(ModelFormatError, match=r"node 'Div_3' \(Div\): the constant it computes, "
                                               r"'div3', holds inf at index \[0\]"):
        import_model(model, ImportOptions(calibration=b.calibration(tmp_path / "cal.npz", 2)))


def test_all_nan_calibration_is_a_user_error(tmp_path: Path, capsys) -> None:
    model, _ = _gemm_model(tmp_path, np.ones((3, 8)), np.zeros(3))
    cal = tmp_path / "nan.npy"
    np.save(cal, np.full((4, 1, 8), np.nan, np.float32))
    status, err = _build(model, cal, tmp_path, capsys)
    assert status == InputError.exit_code == 2
    assert f"error: {cal}: input 'x0' holds NaN at index [0, 0, 0] (and 31 more non-finite values)" in err


def test_minus_inf_in_calibration_names_the_file_and_input(tmp_path: Path) -> None:
    model, _ = _gemm_model(tmp_path, np.ones((3, 8)), np.zeros(3))
    cal = tmp_path / "cal.npz"
    data = np.zeros((4, 1, 8), np.float32)
    data[2, 0, 5] = -np.inf
    np.savez(cal, x0=data)
    with pytest.raises(InputError, match=rf"^{cal}: input 'x0' holds -inf at index \[2, 0, 5\]"):
        import_model(model, ImportOptions(calibration=cal))


def test_calibration_beyond_float32_is_refused(tmp_path: Path) -> None:
    model, _ = _gemm_model(tmp_path, np.ones((3, 8)), np.zeros(3))
    cal = tmp_path / "cal.npy"
    np.save(cal, np.full((2, 1, 8), 1e300))
    with pytest.raises(InputError, match="input 'x0' is beyond the float32 range"):
        import_model(model, ImportOptions(calibration=cal))


# ---- strict JSON and the float oracle ---------------------------------------------------------------
def test_report_json_is_strict_and_an_infinite_snr_is_null() -> None:
    report = RunReport(model="m.onnx", board="b", runner="qemu", library="nnref", oracles=[],
                       float_oracle={"snr_db": {"y": float("inf")}, "passed": True},
                       quantization={"layer_snr_db": {"y": float("inf"), "z": 31.5}})
    parsed = _strict(report.to_json())
    assert parsed["float_oracle"]["snr_db"] == {"y": None}
    assert parsed["quantization"]["layer_snr_db"] == {"y": None, "z": 31.5}


@pytest.mark.device
def test_float_oracle_that_overflows_is_an_error_not_a_pass(tmp_path: Path, capsys) -> None:
    """y = x0 + x1 in float32: calibrated on samples whose sums stay finite, then run on a vector
    whose sum overflows in onnxruntime while the int8 graph saturates, bit-exact everywhere."""
    model, _ = _gemm_model(tmp_path, np.ones((1, 2)))
    cal, inputs = tmp_path / "cal.npy", tmp_path / "inputs.npy"
    np.save(cal, np.array([[[3e38, -3e38]], [[1e38, 0.0]], [[-1e38, 0.0]]], np.float32))
    np.save(inputs, np.array([[[3e38, 3e38]]], np.float32))
    out = tmp_path / "out"
    status = main(["run", str(model), "--calibration", str(cal), "--inputs", str(inputs),
                   "--out", str(out), "-q"])
    assert status == 4, capsys.readouterr()
    report = _strict((out / "report.json").read_text())
    assert report["verdict"] == "error" and report["error_kind"] == "oracle"
    assert report["mismatched_vectors"] == 0 and report["vectors"] == 1
    assert report["error"] == f"vector 0: {model}: onnxruntime's output 'gemm2' holds inf at index [0, 0]"
    assert report["float_oracle"]["passed"] is False


# ---- library exceptions and unreadable files: one line, naming the file -------------------------------
def _double_mul(b: OnnxBuilder) -> list[str]:
    return [b.node("Mul", [b.input((1, 4)), b.const(np.ones(4))])]


def _int_conv(b: OnnxBuilder) -> list[str]:
    return [b.node("Conv", [b.input((1, 2, 4, 4)), b.const(np.ones((3, 2, 1, 1), np.int32))])]


def _opset_6_add(b: OnnxBuilder) -> list[str]:
    b.opset = 6
    x = b.input((1, 4))
    return [b.node("Add", [x, x])]


@pytest.mark.parametrize(("build", "expected"), [
    (_double_mul, "onnxruntime cannot load the model: Type Error: Type parameter (T) of Optype (Mul) "
                  "bound to different types (tensor(float) and tensor(double) in node (Mul_2)."),
    (_int_conv, "onnxruntime cannot load the model: This is an invalid model. Type Error: Type "
                "'tensor(int32)' of input parameter (c1) of operator (Conv) in node (Conv_2) is invalid."),
    (_opset_6_add, "onnxruntime cannot load the model: Could not find an implementation for Add(6) node "
                   "with name 'Add_1'"),
], ids=["Fail", "InvalidGraph", "NotImplemented"])
def test_onnxruntime_errors_are_one_line_naming_the_file(build, expected: str, tmp_path: Path,
                                                         capsys) -> None:
    b = OnnxBuilder()
    model = b.save(build(b), tmp_path / "m.onnx")
    status, err = _build(model, b.calibration(tmp_path / "cal.npz", 2), tmp_path, capsys)
    assert status == 2
    assert err == f"error: {model}: {expected}"


@pytest.mark.parametrize("content", [b"", None], ids=["empty-npy", "dev-null"])
def test_empty_calibration_file_names_the_file(content: bytes | None, tmp_path: Path, capsys) -> None:
    model, _ = _gemm_model(tmp_path, np.ones((3, 8)))
    cal = Path("/dev/null") if content is None else tmp_path / "empty.npy"
    if content is not None:
        cal.write_bytes(content)
    status, err = _build(model, cal, tmp_path, capsys)
    assert status == 2 and err == f"error: {cal}: cannot read calibration data: No data left in file"


def test_truncated_npz_names_the_file(tmp_path: Path) -> None:
    model, cal = _gemm_model(tmp_path, np.ones((3, 8)))
    cal.write_bytes(cal.read_bytes()[:100])
    with pytest.raises(InputError, match=rf"^{cal}: cannot read calibration data: File is not a zip file"):
        import_model(model, ImportOptions(calibration=cal))


def _ghost_output(b: OnnxBuilder) -> onnx.ModelProto:
    proto = b.model([b.gemm(b.input((1, 4)), 4, 3)])
    proto.graph.output.append(helper.make_tensor_value_info("ghost", TensorProto.FLOAT, [1, 3]))
    return proto


def _dropout_mask_output(b: OnnxBuilder) -> onnx.ModelProto:
    b.nodes.append(helper.make_node("Dropout", [b.gemm(b.input((1, 4)), 4, 3)], ["out", "mask"], name="drop"))
    outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3]),
               helper.make_tensor_value_info("mask", TensorProto.BOOL, [1, 3])]
    graph = helper.make_graph(b.nodes, "test", b.inputs, outputs, b.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _constant_output(b: OnnxBuilder) -> onnx.ModelProto:
    y = b.gemm(b.input((1, 4)), 4, 3)
    return b.model([y, b.node("Add", [b.const(np.ones(3, np.float32)), b.const(np.ones(3, np.float32))])])


@pytest.mark.parametrize(("build", "expected"), [
    (_ghost_output, "graph output 'ghost' is not computed by any node"),
    (_dropout_mask_output, "node 'drop' (Dropout): its output 'mask' is a graph output that mcudeploy "
                           "does not compute (only a node's first output is imported)"),
    (_constant_output, "output 'add6' is a constant: it depends on no input"),
], ids=["no-node", "second-output", "folded-constant"])
def test_graph_output_that_is_not_computed_is_refused(build, expected: str, tmp_path: Path) -> None:
    b = OnnxBuilder()
    model = tmp_path / "m.onnx"
    onnx.save(build(b), str(model))
    with pytest.raises(MCUDeployError) as err:
        import_model(model, ImportOptions(calibration=b.calibration(tmp_path / "cal.npz", 2)))
    assert str(err.value) == f"{model}: {expected}"


def test_name_that_is_not_utf8_is_refused_naming_the_field(tmp_path: Path) -> None:
    b = OnnxBuilder()
    data = b.model([b.gemm(b.input((1, 4)), 4, 3)]).SerializeToString()
    model = tmp_path / "m.onnx"
    model.write_bytes(data.replace(b"Gemm_3", b"Gemm\xff\xfe"))
    with pytest.raises(ModelFormatError, match=rf"^{model}: model.graph.node\[0\].name is not UTF-8 text "
                                               r"\(b'Gemm\\xff\\xfe'\)$"):
        import_model(model, ImportOptions(calibration=b.calibration(tmp_path / "cal.npz", 2)))


@pytest.mark.parametrize("shape", [(3, 1), (1, 1, 3), (4,)])
def test_gemm_bias_of_another_shape_names_the_node(shape: tuple[int, ...], tmp_path: Path) -> None:
    model, cal = _gemm_model(tmp_path, np.ones((3, 8)), np.zeros(shape))
    with pytest.raises(UnsupportedError, match=rf"node 'Gemm_3' \(Gemm\): C \('c2'\) of shape "
                                               rf"\[{', '.join(map(str, shape))}\] does not broadcast"):
        import_model(model, ImportOptions(calibration=cal))


def test_conv_bias_with_extra_dimensions_names_the_node(tmp_path: Path) -> None:
    b = OnnxBuilder()
    x = b.input((1, 2, 5, 5))
    y = b.node("Conv", [x, b.const(np.ones((3, 2, 1, 1), np.float32)), b.const(np.zeros((3, 1), np.float32))])
    model = b.save([y], tmp_path / "m.onnx")
    with pytest.raises(UnsupportedError, match=r"node 'Conv_3' \(Conv\): the bias \('c2'\) has shape "
                                               r"\[3, 1\]; it must be \[3\]"):
        import_model(model, ImportOptions(calibration=b.calibration(tmp_path / "cal.npz", 2)))


# ---- huge and tiny finite values: exact, or refused naming the tensor ----------------------------------
def _float_vs_int8(model) -> float:
    """SNR (dB) of the int8 host reference against onnxruntime over the calibration vectors; also
    checks the reference is bit-exact with TFLM."""
    graph = model.graph
    tflm = Tflm(model.tflite, graph)
    floats, ours = [], []
    for vector in model.float_model.calibration_vectors:
        out = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))[graph.outputs[0]]
        np.testing.assert_array_equal(out, tflm.invoke(list(vector))[0].reshape(out.shape))
        t = graph.tensor(graph.outputs[0])
        ours.append(dequantize(out, t.scale, t.zero_point))
        floats.append(model.float_model.invoke(vector)[0])
    return snr_db(np.concatenate(floats), np.concatenate(ours))


def test_weight_scale_overflowing_the_q31_multiplier_is_refused_naming_the_tensors(tmp_path: Path) -> None:
    """A 1e38 weight whose product the Relu6 after it clips: s_in * s_w / s_out is ~1e35."""
    b = OnnxBuilder()
    w = np.full((2, 3, 1, 1), 0.5, np.float32)
    w[0, 0] = 1e38
    x = b.node("Conv", [b.input((1, 3, 4, 4)), b.const(w)])
    y = b.node("Clip", [x, b.const(np.float32(0)), b.const(np.float32(6))])
    model = b.save([y], tmp_path / "m.onnx")
    cal = tmp_path / "cal.npy"
    np.save(cal, np.abs(np.random.default_rng(0).normal(0, 1e-30, (4, 1, 3, 4, 4))).astype(np.float32))
    with pytest.raises(UnsupportedError, match=r"node 'Conv_2' \(Conv\): output 'clip5' \(calibrated range "
                                               r"\[.*, 6\]\) needs a rescale factor of .* x weight scale "
                                               r"7.87402e\+35 \('conv2_weights'\) .*beyond what a Q31 "
                                               r"multiplier holds"):
        import_model(model, ImportOptions(calibration=cal))


def test_float_overflow_during_calibration_names_the_tensor_and_node(tmp_path: Path) -> None:
    model, cal = _gemm_model(tmp_path, np.full((3, 8), 3e38), np.zeros(3))
    with pytest.raises(InputError, match=rf"^{model}: tensor 'gemm3', computed by node 'Gemm_3' \(Gemm\), "
                                         rf"holds -?inf .* on calibration sample 0 of {cal}"):
        import_model(model, ImportOptions(calibration=cal))


def test_zero_range_activation_is_exact(tmp_path: Path) -> None:
    """Calibration data that is all zeros: the output is the bias, exactly."""
    model, _ = _gemm_model(tmp_path, np.random.default_rng(1).normal(0, 0.3, (3, 8)), np.array([0.5, -2, 3]))
    cal = tmp_path / "zeros.npy"
    np.save(cal, np.zeros((4, 1, 8), np.float32))
    imported = import_model(model, ImportOptions(calibration=cal))
    assert _float_vs_int8(imported) > 40.0


def test_bias_too_large_for_int32_widens_the_weight_scale(tmp_path: Path) -> None:
    """Weights of 1e-7 with a bias of 3: at s_in * max|w| / 127 the bias needs ~2**40."""
    rng = np.random.default_rng(2)
    model, cal = _gemm_model(tmp_path, rng.normal(0, 1e-7, (3, 8)), np.array([3.0, -1.0, 0.25]))
    imported = import_model(model, ImportOptions(calibration=cal))
    bias = imported.graph.tensor(imported.graph.ops[0].inputs[2])
    assert np.abs(bias.data.astype(np.int64)).max() <= 2**31 - 1
    assert _float_vs_int8(imported) > 40.0


def test_weights_too_small_for_a_float32_scale_are_zero(tmp_path: Path) -> None:
    w = np.ones((3, 8), np.float32)
    w[1] = 1e-44
    model, cal = _gemm_model(tmp_path, w, np.zeros(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by a zero scale, no invalid cast
        imported = import_model(model, ImportOptions(calibration=cal))
    weights = imported.graph.tensor(imported.graph.ops[0].inputs[1])
    assert (weights.data[1] == 0).all() and weights.quant.scale[1] == pytest.approx(1 / 127)
    assert _float_vs_int8(imported) > 30.0


def test_logistic_input_scale_beyond_tflite_is_refused(tmp_path: Path) -> None:
    b = OnnxBuilder()
    y = b.node("Sigmoid", [b.gemm(b.input((1, 4)), 4, 3)])
    model = b.save([y], tmp_path / "m.onnx")
    cal = tmp_path / "cal.npy"
    np.save(cal, np.random.default_rng(0).normal(0, 1e30, (4, 1, 4)).astype(np.float32))
    with pytest.raises(UnsupportedError, match=r"node 'Sigmoid_4' \(Sigmoid\): input 'gemm3' has scale .*; "
                                               r"TFLite's logistic needs a scale between"):
        import_model(model, ImportOptions(calibration=cal))

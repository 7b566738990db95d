"""Float ONNX import and quantization: every op kind's re-layout proven against onnxruntime (a
wrong layout cannot reach the SNR floor), the int8 graph bit-exact with TFLM, clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnxgen import OnnxBuilder

from mcudeploy.cli import main
from mcudeploy.errors import InputError, ModelFormatError, UnsupportedError
from mcudeploy.frontends.onnx import load_onnx
from mcudeploy.model import ImportOptions, import_model
from mcudeploy.oracles import Tflm, dequantize, snr_db
from mcudeploy.quantize.calibrate import calibrate, load_samples
from mcudeploy.reference import run_graph

FLOOR_DB = 30.0


def _conv_std(b: OnnxBuilder) -> list[str]:
    return [b.conv(b.input((1, 5, 9, 7)), 5, 6, pads=[1, 1, 1, 1])]


def _conv_grouped(b: OnnxBuilder) -> list[str]:
    return [b.conv(b.input((1, 8, 7, 7)), 8, 6, group=2, strides=[2, 1], pads=[2, 0, 0, 1])]


def _depthwise_m3(b: OnnxBuilder) -> list[str]:
    return [b.conv(b.input((2, 4, 8, 9)), 4, 12, group=4, dilations=[2, 2], pads=[2, 2, 2, 2])]


def _conv1d(b: OnnxBuilder) -> list[str]:
    return [b.conv(b.input((1, 6, 15)), 6, 4, kernel=(3,), strides=[2], pads=[1, 2])]


def _bn_relu6_flatten_gemm(b: OnnxBuilder) -> list[str]:
    x = b.conv(b.input((1, 3, 6, 6)), 3, 4, bias=False, pads=[1, 1, 1, 1])
    x = b.node("Clip", [b.batch_norm(x, 4), b.const(np.float32(0)), b.const(np.float32(6))])
    return [b.gemm(b.node("Flatten", [x]), 4 * 6 * 6, 5)]


def _standalone_bn(b: OnnxBuilder) -> list[str]:
    return [b.batch_norm(b.input((1, 6, 5, 5)), 6)]


def _matmul_add(b: OnnxBuilder) -> list[str]:
    x = b.input((3, 16))
    w = b.const(b.rng.normal(0, 0.25, size=(16, 7)).astype(np.float32))
    y = b.node("MatMul", [x, w])
    return [b.node("Add", [y, b.const(b.rng.normal(0, 0.1, 7).astype(np.float32))])]


def _pools(b: OnnxBuilder) -> list[str]:
    # pooling keeps its input's quantization: after a ReLU the global average is well above
    # the quantization step (on zero-mean noise it would not be: a property of int8, not a bug)
    x = b.node("Relu", [b.conv(b.input((1, 3, 9, 9)), 3, 4, pads=[1, 1, 1, 1])])
    avg = b.node("AveragePool", [x], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")
    mx = b.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    return [avg, mx, b.node("GlobalAveragePool", [x])]


def _explicit_pool_padding(b: OnnxBuilder) -> list[str]:
    # A ResNet stem's max pooling (3x3, stride 2, pads 1 on an even size: not TFLite's SAME) over
    # signed values, where padding with zero instead of the lowest value would change the result;
    # average pooling that counts its padding (count_include_pad=1); SAME_LOWER (extra row on top).
    x = b.conv(b.input((1, 3, 10, 10)), 3, 4, pads=[1, 1, 1, 1])
    stem = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    counted = b.node("AveragePool", [x], kernel_shape=[3, 3], pads=[1, 2, 0, 1], count_include_pad=1)
    lower = b.node("MaxPool", [x], kernel_shape=[2, 2], strides=[3, 3], auto_pad="SAME_LOWER")
    return [stem, counted, lower]


def _unary_and_extremum(b: OnnxBuilder) -> list[str]:
    x = b.conv(b.input((1, 3, 6, 6)), 3, 4, pads=[1, 1, 1, 1])
    y = b.conv(x, 4, 4, kernel=(1, 1))
    return [b.node("Tanh", [x]), b.node("LeakyRelu", [x], alpha=0.2), b.node("LeakyRelu", [x]),
            b.node("Max", [x, y]), b.node("Min", [y, x]), b.node("HardSwish", [y])]


def _add_mul_broadcast(b: OnnxBuilder) -> list[str]:
    x = b.input((1, 6, 4, 5))
    y = b.node("Mul", [x, b.const(b.rng.uniform(0.5, 2, size=(1, 6, 1, 1)).astype(np.float32))])
    z = b.node("Relu", [b.node("Add", [y, b.const(b.rng.normal(0, 1, size=(6, 1, 1)).astype(np.float32))])])
    return [b.node("Add", [z, x]), b.node("Sum", [x, z])]


def _concat_pad_softmax(b: OnnxBuilder) -> list[str]:
    x = b.input((1, 3, 5, 5))
    a = b.conv(x, 3, 4, kernel=(1, 1))
    c = b.conv(x, 3, 2, kernel=(1, 1))
    cat = b.node("Concat", [a, c], axis=1)
    pad = b.node("Pad", [cat, b.const(np.array([0, 0, 1, 0, 0, 0, 2, 1], dtype=np.int64))])
    return [pad, b.node("Softmax", [cat], axis=1)]


CASES = {f.__name__.lstrip("_"): f for f in (
    _conv_std, _conv_grouped, _depthwise_m3, _conv1d, _bn_relu6_flatten_gemm, _standalone_bn,
    _matmul_add, _pools, _explicit_pool_padding, _unary_and_extremum,
    _add_mul_broadcast, _concat_pad_softmax)}


def make(tmp_path: Path, build, seed: int = 0) -> tuple[Path, Path]:
    b = OnnxBuilder(seed=seed)
    outputs = build(b)
    return b.save(outputs, tmp_path / "m.onnx"), b.calibration(tmp_path / "cal.npz", count=24)


@pytest.mark.parametrize("case", sorted(CASES))
def test_int8_graph_tracks_onnxruntime_and_matches_tflm(case: str, tmp_path: Path) -> None:
    path, cal = make(tmp_path, CASES[case])
    model = import_model(path, ImportOptions(calibration=cal))
    graph = model.graph
    tflm = Tflm(model.tflite, graph)
    vectors = model.float_model.calibration_vectors[:6]
    floats: dict[str, list] = {n: [] for n in graph.outputs}
    ours: dict[str, list] = {n: [] for n in graph.outputs}
    for vector in vectors:
        values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
        for k, (name, theirs) in enumerate(zip(graph.outputs, tflm.invoke(list(vector)), strict=True)):
            np.testing.assert_array_equal(values[name], theirs.reshape(values[name].shape))
            t = graph.tensor(name)
            ours[name].append(dequantize(values[name], t.scale, t.zero_point))
            floats[name].append(model.float_model.invoke(vector)[k])
    for name in graph.outputs:
        snr = snr_db(np.concatenate(floats[name]), np.concatenate(ours[name]))
        assert snr >= FLOOR_DB, f"{case}: output {name} SNR {snr:.1f} dB"
    assert all(s >= FLOOR_DB for s in model.quality.output_snr_db.values())


def test_a_wrong_weight_layout_cannot_reach_the_floor(tmp_path: Path) -> None:
    """The floor means something: the same model with its depthwise filter taps transposed."""
    path, cal = make(tmp_path, _depthwise_m3)
    model = import_model(path, ImportOptions(calibration=cal))
    graph = model.graph
    op = graph.ops[0]
    w = graph.tensor(op.inputs[1])
    broken = dict(graph.tensors)
    swapped = np.ascontiguousarray(w.data.transpose(0, 2, 1, 3))
    broken[w.name] = type(w)(w.name, w.shape, w.dtype, w.quant, swapped)
    graph_bad = type(graph)(graph.name, broken, graph.ops, graph.inputs, graph.outputs)
    vector = model.float_model.calibration_vectors[0]
    out = run_graph(graph_bad, dict(zip(graph.inputs, vector, strict=True)))[graph.outputs[0]]
    t = graph.tensor(graph.outputs[0])
    snr = snr_db(model.float_model.invoke(vector)[0], dequantize(out, t.scale, t.zero_point))
    assert snr < 10.0


def test_batch_norm_folds_into_the_convolution(tmp_path: Path) -> None:
    path, _ = make(tmp_path, _bn_relu6_flatten_gemm)
    graph = load_onnx(path).graph
    assert [op.kind for op in graph.ops] == ["conv2d", "reshape", "fully_connected"]
    assert graph.ops[0].attrs.activation.high == 6.0


def test_standalone_batch_norm_becomes_a_1x1_depthwise(tmp_path: Path) -> None:
    path, _ = make(tmp_path, _standalone_bn)
    (op,) = load_onnx(path).graph.ops
    assert op.kind == "depthwise_conv2d" and op.attrs.depth_multiplier == 1


def _refused(tmp_path: Path, build, expected: str, error=UnsupportedError) -> None:
    b = OnnxBuilder()
    path = b.save(build(b), tmp_path / "bad.onnx")
    cal = b.calibration(tmp_path / "cal.npz", 4)
    with pytest.raises(error) as err:
        import_model(path, ImportOptions(calibration=cal))
    assert str(err.value).startswith(str(path)), err.value
    assert expected in str(err.value), err.value


def test_unsupported_operator_names_node_and_type(tmp_path: Path) -> None:
    _refused(tmp_path, lambda b: [b.node("Erf", [b.input((1, 4))])],
             "node 'Erf_1' (Erf): operator type Erf is not supported")


def test_unsupported_attribute_names_attribute_and_reason(tmp_path: Path) -> None:
    _refused(tmp_path, lambda b: [b.node("AveragePool", [b.input((1, 2, 6, 6))], kernel_shape=[2, 2],
                                         ceil_mode=1)],
             "(AveragePool): attribute ceil_mode=1 is not supported")
    _refused(tmp_path, lambda b: [b.node("Pad", [b.input((1, 2, 6, 6)),
                                                 b.const(np.zeros(8, dtype=np.int64))], mode="reflect")],
             "attribute mode=reflect is not supported")
    _refused(tmp_path, lambda b: [b.node("Sum", [b.input((1, 4))] * 3)],
             "(Sum): a Sum of 3 inputs is not supported (only 2, as an Add)")
    _refused(tmp_path, lambda b: [b.node("AveragePool", [b.input((1, 2, 6, 6))], kernel_shape=[3, 3],
                                         pads=[1, 0, 0, 0])],
             "(AveragePool): padding Padding(top=1, bottom=0, left=0, right=0) (neither SAME nor "
             "VALID) with count_include_pad=0 is not supported")


def test_activation_that_cannot_be_fused_is_refused(tmp_path: Path) -> None:
    def build(b: OnnxBuilder) -> list[str]:
        x = b.input((1, 2, 4, 4))
        return [b.node("Relu", [b.node("Concat", [x, x], axis=1)])]

    _refused(tmp_path, build, "a standalone Relu after concat is not supported")


def test_onnx_needs_calibration_and_tflite_refuses_it(tmp_path: Path) -> None:
    path, cal = make(tmp_path, _conv_std)
    with pytest.raises(InputError, match="needs --calibration"):
        import_model(path)
    tflite = tmp_path / "m.tflite"
    tflite.write_bytes(import_model(path, ImportOptions(calibration=cal)).tflite)
    with pytest.raises(InputError, match="keeps its own quantization"):
        import_model(tflite, ImportOptions(calibration=cal))


def test_malformed_onnx_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(ModelFormatError, match=r"junk\.onnx"):
        load_onnx(path)


def test_calibration_file_of_the_wrong_shape(tmp_path: Path) -> None:
    path, _ = make(tmp_path, _conv_std)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 3, 3), dtype=np.float32))
    with pytest.raises(InputError, match=r"expects shape \[1, 5, 9, 7\]"):
        load_samples(load_onnx(path), bad)


def test_percentile_calibration_ignores_outliers(tmp_path: Path) -> None:
    path, _ = make(tmp_path, _standalone_bn)
    imp = load_onnx(path)
    rng = np.random.default_rng(0)
    data = rng.normal(0, 1, size=(200, 1, 6, 5, 5)).astype(np.float32)
    data[0, 0, 0, 0, 0] = 500.0
    minmax = calibrate(imp, [{"x0": d} for d in data], "minmax").ranges["x0"]
    pct = calibrate(imp, [{"x0": d} for d in data], "percentile").ranges["x0"]
    assert minmax[1] == 500.0 and pct[1] < 10.0


@pytest.mark.device
def test_explicit_pool_padding_is_bit_exact_on_the_device(tmp_path: Path) -> None:
    path, cal = make(tmp_path, _explicit_pool_padding)
    out = tmp_path / "out"
    assert main(["run", str(path), "--calibration", str(cal), "--out", str(out), "--vectors", "4",
                 "-q"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["mismatched_vectors"] == 0 and report["vectors"] == 4
    assert report["oracles"] == ["host-reference", "tflm", "onnxruntime-float"]


@pytest.mark.parametrize(("count", "measured"), [(24, "the first 16"), (5, "all of them")])
def test_the_quality_line_tells_the_true_sample_counts(count: int, measured: str, tmp_path: Path,
                                                      capsys) -> None:
    """All the samples set the ranges; the quality is measured on the first 16 (they used to be
    printed as "quantized on 16 calibration samples" whatever was given)."""
    b = OnnxBuilder(seed=0)
    path = b.save(_conv_std(b), tmp_path / "m.onnx")
    cal = b.calibration(tmp_path / "cal.npz", count=count)
    assert main(["build", str(path), "--calibration", str(cal), "--out", str(tmp_path / "out")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert (f"quantized: ranges from {count} calibration samples, quality measured on {measured}: "
            "output SNR") in err, err
    quality = import_model(path, ImportOptions(calibration=cal)).quality
    assert quality is not None and (quality.calibration_samples, quality.samples) == (count, min(count, 16))

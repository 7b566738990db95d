"""Float ONNX import and quantization: every op kind's re-layout proven against onnxruntime (a
wrong layout cannot reach the SNR floor), the int8 graph bit-exact with TFLM, clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnxgen import OnnxBuilder

from mcudeploy.cli import main
from mcudeploy.errors import InputError, ModelFormatError, UnsupportedError
from mcudeploy.frontends.onnx import load_onnx
from mcudeploy.model import ImportOptions, import_model
from mcudeploy.oracles import Tflm, dequantize, snr_db
from mcudeploy.quantize.calibrate import calibrate, load_samples
from mcudeploy.quantize.float_models import float_model
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


def _elementwise_forms(b: OnnxBuilder) -> list[str]:
    # issue 18 item 5: (x - mean) / std, HardSigmoid (PaddlePaddle's 0.2, 0.5: Clip(0, 5), which
    # TFLite cannot fuse), Max/Min with a constant, PRelu per channel, Sub from a constant and of
    # two computed tensors, Pow(x, 2), Neg, a
    # standalone Relu and a Clip that cannot fuse (a concatenation before them), and a Clip(0.5, 1)
    # fused into a convolution that TFLite writes as MAXIMUM after it
    x = b.input((1, 4, 6, 5))
    x = b.node("Div", [b.node("Sub", [x, b.const(np.float32([0.1, 0.2, -0.1, 0.0]).reshape(4, 1, 1))]),
                       b.const(np.float32(1.7))])
    y = b.conv(x, 4, 6, pads=[1, 1, 1, 1])
    cat = b.node("Concat", [y, x], axis=1)
    slope = b.const(b.rng.uniform(0.05, 0.3, size=(6, 1, 1)).astype(np.float32))
    return [b.node("HardSigmoid", [y], alpha=0.2, beta=0.5),
            b.node("Max", [y, b.const(np.float32(-0.25))]), b.node("Min", [b.const(np.float32(0.5)), y]),
            b.node("PRelu", [y, slope]), b.node("Sub", [b.const(np.float32(1.0)), y]), b.node("Neg", [x]),
            b.node("Sub", [y, b.conv(x, 4, 6, kernel=(1, 1))]), b.node("Pow", [y, b.const(np.float32(2))]),
            b.node("Relu", [cat]),
            b.node("Clip", [cat, b.const(np.float32(-0.5)), b.const(np.float32(0.75))]),
            b.node("Clip", [b.conv(x, 4, 3, kernel=(1, 1)), b.const(np.float32(0.5)),
                            b.const(np.float32(1))])]


def _reductions_and_moves(b: OnnxBuilder) -> list[str]:
    # issue 18 items 2 and 4: means and maxima over the time axis of a Conv1d (x.mean(-1)), over
    # the channels, over H and W; Unsqueeze then ReduceMean (dynamo's AdaptiveAvgPool1d);
    # Transpose of H and W (computed), of NCHW to NHWC before a Flatten (free); Slice
    s = b.conv(b.input((1, 5, 20)), 5, 8, kernel=(3,))
    img = b.conv(b.input((1, 3, 6, 7)), 3, 4, pads=[1, 1, 1, 1])
    unsq = b.node("Unsqueeze", [s, b.const(np.array([2], dtype=np.int64))])
    return [b.node("ReduceMean", [s], axes=[-1], keepdims=0),
            b.node("ReduceMax", [s], axes=[2], keepdims=1),
            b.node("ReduceMean", [unsq], axes=[2, 3], keepdims=0),
            b.node("ReduceMean", [img], axes=[1], keepdims=1),
            b.node("ReduceMax", [img], axes=[2, 3], keepdims=0),
            b.node("Transpose", [img], perm=[0, 1, 3, 2]),
            # YOLOv5's focus: every other row and column; a slice of the channels
            b.node("Slice", [img, b.const(np.array([0, 1], dtype=np.int64)), b.const(np.array([99, 99],
                   dtype=np.int64)), b.const(np.array([2, 3], dtype=np.int64)),
                   b.const(np.array([2, 2], dtype=np.int64))]),
            b.node("Slice", [img, *(b.const(np.array([v], dtype=np.int64)) for v in (1, -1, 1))]),
            b.gemm(b.node("Flatten", [b.node("Transpose", [img], perm=[0, 2, 3, 1])]), 6 * 7 * 4, 3)]


def _channel_shuffle(b: OnnxBuilder) -> list[str]:
    # ShuffleNet's Reshape to 5-D, Transpose, Reshape back: three transposes of the NHWC form
    x = b.conv(b.input((1, 3, 4, 5)), 3, 6, pads=[1, 1, 1, 1])
    y = b.node("Reshape", [x, b.const(np.array([1, 2, 3, 4, 5], np.int64))])
    z = b.node("Reshape", [b.node("Transpose", [y], perm=[0, 2, 1, 3, 4]),
                           b.const(np.array([1, 6, 4, 5], np.int64))])
    return [b.conv(z, 6, 4, kernel=(1, 1))]


def _layer_norm(b: OnnxBuilder) -> list[str]:
    # openWakeWord's exported heads (hey_marvin): a layer norm over the last axis written out as
    # ReduceMean, Sub, Pow 2, ReduceMean, Add eps, Sqrt, Div (which becomes RSQRT then Mul)
    x = b.gemm(b.node("Flatten", [b.input((1, 4, 6))]), 24, 16)
    centred = b.node("Sub", [x, b.node("ReduceMean", [x], axes=[-1])])
    variance = b.node("ReduceMean", [b.node("Pow", [centred, b.const(np.float32(2))])], axes=[-1])
    root = b.node("Sqrt", [b.node("Add", [variance, b.const(np.float32(1e-5))])])
    gamma = b.const(b.rng.uniform(0.5, 1.5, 16).astype(np.float32))
    scaled = b.node("Mul", [b.node("Div", [centred, root]), gamma])
    y = b.node("Relu", [b.node("Add", [scaled, b.const(b.rng.normal(0, 0.1, 16).astype(np.float32))])])
    return [b.node("Sigmoid", [b.gemm(y, 16, 1)])]


CASES = {f.__name__.lstrip("_"): f for f in (
    _conv_std, _conv_grouped, _depthwise_m3, _conv1d, _bn_relu6_flatten_gemm, _standalone_bn,
    _matmul_add, _pools, _explicit_pool_padding, _unary_and_extremum,
    _add_mul_broadcast, _concat_pad_softmax, _elementwise_forms, _reductions_and_moves,
    _channel_shuffle, _layer_norm)}


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


def test_every_refused_node_is_named_in_one_line(tmp_path: Path) -> None:
    """Issue 18 item 7: all of them, nodes refused for one reason together, the list of supported
    operators pointed to once, and the nodes reading their outputs counted, not refused."""
    def build(b: OnnxBuilder) -> list[str]:
        x = b.input((1, 2, 6, 6))
        a = b.node("Erf", [x])
        c = b.node("Erf", [b.node("LRN", [x], size=3)])
        d = b.node("AveragePool", [x], kernel_shape=[2, 2], ceil_mode=1)
        return [b.node("Add", [a, c]), b.node("Relu", [d])]

    b = OnnxBuilder()
    path = b.save(build(b), tmp_path / "bad.onnx")
    with pytest.raises(UnsupportedError) as err:
        load_onnx(path)
    assert str(err.value) == (
        f"{path}: 4 nodes cannot be imported: node 'Erf_1' (Erf), node 'Erf_3' (Erf): operator type Erf "
        "is not supported; node 'LRN_2' (LRN): operator type LRN is not supported; node 'AveragePool_4' "
        "(AveragePool): attribute ceil_mode=1 is not supported (2 node(s) after them not checked) "
        "(docs/SUPPORTED_OPS.md lists the operators mcudeploy imports)")


def test_calibration_of_single_samples_for_a_batched_model(tmp_path: Path) -> None:
    """Issue 18 item 8: a [K, C, H, W] stack for a batch-3 model is K samples grouped in threes (the
    last batch completed from the first samples); other shapes are refused saying which ones work."""
    b = OnnxBuilder()
    path = b.save([b.conv(b.input((3, 6, 8, 8)), 6, 4)], tmp_path / "b3.onnx")
    imp = load_onnx(path)
    samples = np.random.default_rng(0).normal(0, 1, (16, 6, 8, 8)).astype(np.float32)
    np.save(tmp_path / "single.npy", samples)
    batches = load_samples(float_model(imp), tmp_path / "single.npy")
    assert len(batches) == 6
    np.testing.assert_array_equal(batches[0]["x0"], samples[:3])
    np.testing.assert_array_equal(batches[5]["x0"], samples[[15, 0, 1]])
    np.save(tmp_path / "batches.npy", samples[:15].reshape(5, 3, 6, 8, 8))
    assert len(load_samples(float_model(imp), tmp_path / "batches.npy")) == 5
    np.save(tmp_path / "bad.npy", samples[:, :5])
    with pytest.raises(InputError) as err:
        load_samples(float_model(imp), tmp_path / "bad.npy")
    assert str(err.value) == (f"{tmp_path / 'bad.npy'}: input 'x0' expects shape [3, 6, 8, 8], a stack of "
                              "them [K, 3, 6, 8, 8] or single samples [K, 6, 8, 8]; the file has "
                              "[16, 5, 8, 8]")
    model = import_model(path, ImportOptions(calibration=tmp_path / "single.npy"))
    assert model.quality is not None and model.quality.calibration_samples == 6


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
        load_samples(float_model(load_onnx(path)), bad)


def test_percentile_calibration_ignores_outliers(tmp_path: Path) -> None:
    path, _ = make(tmp_path, _standalone_bn)
    imp = load_onnx(path)
    rng = np.random.default_rng(0)
    data = rng.normal(0, 1, size=(200, 1, 6, 5, 5)).astype(np.float32)
    data[0, 0, 0, 0, 0] = 500.0
    minmax = calibrate(float_model(imp), [{"x0": d} for d in data], "minmax").ranges["x0"]
    pct = calibrate(float_model(imp), [{"x0": d} for d in data], "percentile").ranges["x0"]
    assert minmax[1] == 500.0 and pct[1] < 10.0


@pytest.mark.device
@pytest.mark.parametrize("case", ["explicit_pool_padding", "elementwise_forms", "reductions_and_moves",
                                  "layer_norm"])
def test_case_is_bit_exact_on_the_device(case: str, tmp_path: Path) -> None:
    path, cal = make(tmp_path, CASES[case])
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


def test_onnx_shape_computation_folds_once_the_batch_is_fixed(tmp_path: Path) -> None:
    """Issue 18 item 1 for ONNX: a flatten written as Shape, Gather, Unsqueeze, Concat feeding
    Reshape (tf2onnx's form of Keras' Flatten with an unknown batch) folds to a constant shape once
    the batch is 1, and the import says so."""
    b = OnnxBuilder()
    x = b.input((1, 3, 4, 4))
    b.inputs[0] = helper.make_tensor_value_info("x0", TensorProto.FLOAT, ["N", 3, 4, 4])
    y = b.conv(x, 3, 2, pads=[1, 1, 1, 1])
    batch = b.node("Unsqueeze", [b.node("Gather", [b.node("Shape", [y]), b.const(np.int64(0))]),
                                 b.const(np.array([0], dtype=np.int64))])
    shape = b.node("Concat", [batch, b.const(np.array([-1], dtype=np.int64))], axis=0)
    path = b.save([b.gemm(b.node("Reshape", [y, shape]), 32, 3)], tmp_path / "m.onnx")
    graph = load_onnx(path).graph
    assert [op.kind for op in graph.ops] == ["conv2d", "reshape", "fully_connected"]
    assert graph.notes == ("m.onnx: shape computations folded to constants once the input shapes were "
                           "fixed (Concat, Gather, Shape, Unsqueeze)",)


def test_dimensions_stored_as_minus_one_are_dynamic(tmp_path: Path) -> None:
    """Paddle2ONNX (PP-OCR's classifier) stores the batch as dim_value -1, on the input and on the
    intermediate tensors: the batch becomes 1, the others are inferred, an H of -1 asks to be pinned."""
    b = OnnxBuilder()
    y = b.conv(b.input((1, 3, 6, 6)), 3, 4)
    model = b.model([b.node("Relu", [y])])
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -1
    for vi in (*model.graph.value_info, *model.graph.output):
        vi.type.tensor_type.shape.dim[0].dim_value = -1
    onnx.save(model, str(tmp_path / "m.onnx"))
    assert load_onnx(tmp_path / "m.onnx").graph.tensor("x0").shape == (1, 6, 6, 3)
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_value = -1
    onnx.save(model, str(tmp_path / "h.onnx"))
    with pytest.raises(UnsupportedError, match=r"dynamic dimension 2 \(-1\); .* --input-shape x0=1,3,N,6"):
        load_onnx(tmp_path / "h.onnx")
    graph = load_onnx(tmp_path / "h.onnx", input_shapes={"x0": (1, 3, 6, 6)}).graph
    assert graph.notes == ("input 'x0' pinned to [1, 3, 6, 6] (declared [-1, 3, -1, 6])",)


def test_forms_that_cannot_be_rewritten_say_what_works(tmp_path: Path) -> None:
    def build(b: OnnxBuilder) -> list[str]:
        x = b.input((1, 4))
        return [b.node("Div", [x, b.node("Relu", [x])]), b.node("Pow", [x, b.const(np.float32(3))])]

    _refused(tmp_path, build, "node 'Div_2' (Div): Div is supported only by a constant whose reciprocal "
             "is a finite float32 (no zero); node 'Pow_4' "
             "(Pow): Pow is supported only with the constant exponent 2")


def test_a_division_by_a_square_root_becomes_rsqrt_and_other_square_roots_are_refused(tmp_path: Path) -> None:
    path, _ = make(tmp_path, _layer_norm)
    kinds = [op.kind for op in load_onnx(path).graph.ops]
    assert "rsqrt" in kinds and kinds[kinds.index("rsqrt") + 1] == "mul"

    def build(b: OnnxBuilder) -> list[str]:
        x = b.node("Relu", [b.input((1, 4))])
        root = b.node("Sqrt", [x])  # divided by, and read by an Add: no RSQRT can replace it
        half = b.const(np.float32(0.5))
        return [b.node("Div", [x, root]), b.node("Add", [root, x]), b.node("Pow", [x, half])]

    _refused(tmp_path, build, "node 'Sqrt_2' (Sqrt): Sqrt is supported only as the divisor of Div (x / "
             "sqrt(v)), where it becomes RSQRT")
    _refused(tmp_path, build, "(Pow): Pow is supported only with the constant exponent 2 (Mul) or -0.5 "
             "(RSQRT)")


def test_an_if_reading_computed_tensors_is_refused_as_such(tmp_path: Path) -> None:
    """silero-vad's If on a constant condition reads the outer graph's computed tensors: it cannot
    be folded, and is refused for what it is (it used to be "cannot evaluate constant node")."""
    b = OnnxBuilder()
    x = b.input((1, 4))
    y = b.node("Relu", [x])
    branch = helper.make_graph([helper.make_node("Identity", [y], ["out"])], "branch", [],
                               [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])])
    b.nodes.append(helper.make_node("If", [b.const(np.array(True))], ["z"], name="if",
                                    then_branch=branch, else_branch=branch))
    path = b.save(["z"], tmp_path / "if.onnx")
    with pytest.raises(UnsupportedError) as err:
        load_onnx(path)
    assert str(err.value) == (f"{path}: node 'if' (If): operator type If is not supported "
                              "(docs/SUPPORTED_OPS.md lists the operators mcudeploy imports)")

"""Float TFLite files (issue 18, item 3), what Keras users get by default: Keras 3 models converted by
TensorFlow's converter without full-integer quantization (float32, dynamic range, float16) are
quantized on calibration data as ONNX models are. The int8 graph is bit-exact with TFLM running the
int8 file mcudeploy writes, and within the SNR floor of TFLM running the float file. Files with
uint8 input and output deploy as their int8 graph. The files are made by
scripts/make_keras_models.py (committed in tests/data/keras).
"""

from __future__ import annotations

import json
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from cases import build_case
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from mcudeploy.cli import main
from mcudeploy.errors import InputError, UnsupportedError
from mcudeploy.frontends.tflite import load_tflite, read_model, tensor_names
from mcudeploy.frontends.tflite_float import load_float_tflite
from mcudeploy.model import ImportOptions, import_model
from mcudeploy.oracles import Tflm, dequantize, snr_db
from mcudeploy.reference import run_graph
from mcudeploy.vectors import load_vectors, random_vectors

DATA = Path(__file__).resolve().parent / "data" / "keras"
SHAPES = {"small_cnn": (1, 12, 12, 3), "wake_head": (1, 16, 48)}
INPUTS = {"small_cnn": "serving_default_keras_tensor_112:0",
          "wake_head": "serving_default_keras_tensor_126:0"}
OUTPUT = "StatefulPartitionedCall_1:0"  # the files' names (Keras numbers its tensors)
FORMS = ("float32", "dynamic", "float16")
FLOOR_DB = 18.0  # measured 20.1 (small_cnn, its softmax) to 38.2 dB (wake_head) on random-normal samples


def _calibration(name: str, tmp_path: Path, count: int = 16) -> Path:
    """Random-normal samples in the file's layout (NHWC), a stack of single samples."""
    file = tmp_path / f"{name}.npy"
    np.save(file, np.random.default_rng(1).normal(0, 1, (count, *SHAPES[name][1:])).astype(np.float32))
    return file


def _edited(path: Path, target: Path, edit) -> Path:
    """A copy of a TFLite file with `edit(model)` applied to its objects."""
    model = read_model(path.read_bytes(), str(path))
    edit(model)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    target.write_bytes(bytes(builder.Output()))
    return target


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", list(SHAPES))
def test_float_file_is_quantized_bit_exact_with_tflm_and_near_the_float_file(name: str, form: str,
                                                                            tmp_path: Path) -> None:
    cal = _calibration(name, tmp_path)
    model = import_model(DATA / f"{name}.{form}.tflite", ImportOptions(calibration=cal))
    graph = model.graph
    assert model.float_model.name == "tflm"
    assert {t.dtype for t in graph.activations} == {"int8"}
    ours: dict[str, list] = {n: [] for n in graph.outputs}
    floats: dict[str, list] = {n: [] for n in graph.outputs}
    with Tflm(model.tflite, graph) as tflm:
        for vector in model.float_model.calibration_vectors[:6]:
            values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
            expected = model.float_model.invoke(vector)
            for k, (out, theirs) in enumerate(zip(graph.outputs, tflm.invoke(list(vector)), strict=True)):
                np.testing.assert_array_equal(values[out], theirs.reshape(values[out].shape))
                t = graph.tensor(out)
                ours[out].append(dequantize(values[out], t.scale, t.zero_point).reshape(-1))
                floats[out].append(expected[k].reshape(-1))
    model.float_model.close()
    for out in graph.outputs:
        snr = snr_db(np.concatenate(floats[out]), np.concatenate(ours[out]))
        assert snr >= FLOOR_DB, f"{name}.{form}: output {out} SNR {snr:.1f} dB"
        assert model.quality.output_snr_db[out] >= FLOOR_DB


def _weights(path: Path, shape: tuple[int, ...]) -> tuple[fb.TensorT, np.ndarray, str]:
    """The constant tensor of `shape` in a file: its object, its stored values and its IR name."""
    model = read_model(path.read_bytes(), str(path))
    sub = model.subgraphs[0]
    index = next(i for i, t in enumerate(sub.tensors) if tuple(t.shape) == shape and t.buffer > 0
                 and model.buffers[t.buffer].data is not None)
    t = sub.tensors[index]
    dtype = {fb.TensorType.INT8: np.int8, fb.TensorType.FLOAT16: np.float16}[t.type]
    raw = np.asarray(model.buffers[t.buffer].data, dtype=np.uint8).tobytes()
    return t, np.frombuffer(raw, dtype=dtype).reshape(shape), tensor_names(sub)[index]


def test_dynamic_range_weights_are_dequantized_per_channel_and_float16_ones_widened() -> None:
    """The float model of a dynamic-range file has its int8 weights times their scales (per output
    channel for a convolution); that of a float16 file has its float16 weights as float32, the
    DEQUANTIZE operators folded away."""
    path = DATA / "small_cnn.dynamic.tflite"
    t, stored, _ = _weights(path, (32, 3, 3, 24))
    scales = np.asarray(t.quantization.scale)
    assert len(scales) == 32 and int(t.quantization.quantizedDimension) == 0
    imp = load_float_tflite(path.read_bytes(), path.name, str(path))
    conv = [op for op in imp.graph.ops if op.kind == "conv2d"][-1]
    weights = imp.graph.tensor(conv.inputs[1])
    assert weights.dtype == "float32" and weights.quant is None
    np.testing.assert_array_equal(weights.data, (stored * scales.reshape(32, 1, 1, 1)).astype(np.float32))

    path = DATA / "small_cnn.float16.tflite"
    _, stored, _ = _weights(path, (32, 3, 3, 24))
    imp = load_float_tflite(path.read_bytes(), path.name, str(path))
    assert "quantize" not in [op.kind for op in imp.graph.ops]
    conv = [op for op in imp.graph.ops if op.kind == "conv2d"][-1]
    np.testing.assert_array_equal(imp.graph.tensor(conv.inputs[1]).data, stored.astype(np.float32))


def test_calibration_of_a_float_tflite_file_is_in_its_layout(tmp_path: Path) -> None:
    path = DATA / "small_cnn.float32.tflite"
    nchw = tmp_path / "nchw.npy"
    np.save(nchw, np.zeros((4, 3, 12, 12), np.float32))
    with pytest.raises(InputError) as err:
        import_model(path, ImportOptions(calibration=nchw))
    assert str(err.value) == (f"{nchw}: input '{INPUTS['small_cnn']}' expects shape [1, 12, 12, 3], a "
                              "stack of them [K, 1, 12, 12, 3]; the file has [4, 3, 12, 12]")


def test_float_file_needs_calibration_and_int8_file_refuses_it(tmp_path: Path) -> None:
    path = DATA / "wake_head.dynamic.tflite"
    with pytest.raises(InputError) as err:
        import_model(path)
    assert str(err.value) == (f"{path}: a float TFLite model needs --calibration data (.npy, .npz or a "
                              "folder of them, in the file's layout, NHWC) to be quantized")
    path = DATA / "flatten.tflite"
    with pytest.raises(InputError) as err:
        import_model(path, ImportOptions(calibration=_calibration("wake_head", tmp_path)))
    assert str(err.value) == (f"{path}: an int8 TFLite file keeps its own quantization; --calibration is "
                              "for float models (ONNX, float TFLite)")


def test_a_file_mixing_int8_and_float_activations_is_refused_by_operator(tmp_path: Path) -> None:
    def int8_output(model: fb.ModelT) -> None:
        sub = model.subgraphs[0]
        out = sub.tensors[int(sub.operators[1].outputs[0])]
        out.type, out.name = fb.TensorType.INT8, b"dw_out"
        out.quantization = fb.QuantizationParametersT()
        out.quantization.scale, out.quantization.zeroPoint = [0.1], [0]

    path = _edited(DATA / "small_cnn.float32.tflite", tmp_path / "mixed.tflite", int8_output)
    with pytest.raises(UnsupportedError) as err:
        import_model(path, ImportOptions(calibration=_calibration("small_cnn", tmp_path)))
    assert str(err.value) == (
        f"{path}: operator 1 (DEPTHWISE_CONV_2D) computes tensor 17 (dw_out) as INT8 in a float model: files "
        "that mix quantized and float activations are not supported (convert to full int8, or leave the "
        "model float)")


@pytest.mark.parametrize("name", list(SHAPES))
def test_uint8_input_and_output_are_the_int8_graph_shifted_by_128(name: str, tmp_path: Path) -> None:
    path = DATA / f"{name}.uint8.tflite"
    graph = load_tflite(path)
    assert {graph.tensor(n).dtype for n in (*graph.inputs, *graph.outputs)} == {"int8"}
    assert graph.uint8_io == {graph.inputs[0]: INPUTS[name], graph.outputs[0]: OUTPUT}
    vectors = random_vectors(graph, 4, seed=3)
    with Tflm(path.read_bytes(), graph) as tflm:  # the original file, uint8 in and out
        for vector in vectors:
            values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
            for out, theirs in zip(graph.outputs, tflm.invoke(list(vector)), strict=True):
                np.testing.assert_array_equal(values[out], theirs.reshape(values[out].shape))
    stack = tmp_path / "inputs.npy"
    np.save(stack, np.stack([(v[0].astype(np.int16) + 128).astype(np.uint8) for v in vectors]))
    loaded = load_vectors(graph, stack)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(loaded, vectors, strict=True))


def test_a_uint8_input_that_is_not_the_shift_stays_refused(tmp_path: Path) -> None:
    """A uint8 input QUANTIZEd to int8 by anything but the shift by 128 is not taken apart: the
    device would have to take uint8."""
    def moved_zero_point(model: fb.ModelT) -> None:
        sub = model.subgraphs[0]
        sub.tensors[int(sub.inputs[0])].quantization.zeroPoint = [100]

    path = _edited(DATA / "wake_head.uint8.tflite", tmp_path / "u8.tflite", moved_zero_point)
    with pytest.raises(UnsupportedError) as err:
        import_model(path)
    message = str(err.value)
    assert message.startswith(f"{path}: operator 0 (QUANTIZE) (op0_quantize): not supported: Activations are "
                              "int8 (a QUANTIZE may output uint8)")
    assert message.endswith(f"Here: tensor '{INPUTS['wake_head']}' is uint8.")


def test_a_uint8_output_the_graph_computes_stays_uint8_for_tflm(tmp_path: Path) -> None:
    """A QUANTIZE to uint8 that is not the shift by 128 is an operator of the graph: TFLM's uint8
    output is compared as it is, not shifted (the host reference computes the same uint8)."""
    path = tmp_path / "slice_logistic_quantize.tflite"
    path.write_bytes(build_case("slice_logistic_quantize", seed=1)[1])
    graph = load_tflite(path)
    assert graph.uint8_io == {}
    assert [graph.tensor(n).dtype for n in graph.outputs].count("uint8") == 1
    with Tflm(path.read_bytes(), graph) as tflm:
        for vector in random_vectors(graph, 4, seed=5):
            values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
            for out, theirs in zip(graph.outputs, tflm.invoke(list(vector)), strict=True):
                assert theirs.dtype == values[out].dtype
                np.testing.assert_array_equal(values[out], theirs.reshape(values[out].shape))


@pytest.mark.device
@pytest.mark.parametrize("file", ["small_cnn.float32", "small_cnn.dynamic", "small_cnn.float16",
                                  "wake_head.dynamic"])
def test_float_tflite_is_bit_exact_on_qemu_and_near_the_float_file(file: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cal = _calibration(file.split(".")[0], tmp_path)
    assert main(["run", str(DATA / f"{file}.tflite"), "--calibration", str(cal), "--out", str(out),
                 "--vectors", "3", "-q"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "pass" and report["bit_exact_vectors"] == 3
    assert report["oracles"] == ["host-reference", "tflm", "tflm-float"]
    assert report["float_oracle"]["name"] == "tflm" and report["float_oracle"]["passed"]
    assert min(report["float_oracle"]["snr_db"].values()) >= FLOOR_DB
    text = " ".join((out / "report.txt").read_text().replace("│", " ").split())
    assert "3 of 3 bit-exact with host-reference, tflm " in text and "QUANTIZATION" not in text
    assert f"quantization output SNR {OUTPUT} " in text and "device outputs against tflm: " in text


@pytest.mark.device
@pytest.mark.parametrize("name", list(SHAPES))
def test_uint8_io_file_is_bit_exact_on_qemu(name: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["run", str(DATA / f"{name}.uint8.tflite"), "--out", str(out), "--vectors", "3", "-q"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "pass" and report["bit_exact_vectors"] == 3
    assert sorted(report["model_info"]["uint8_io"].values()) == [OUTPUT, INPUTS[name]]

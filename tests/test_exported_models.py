"""Models as people export them (issue 18): Keras 3 through TensorFlow's converter, PyTorch through
both of torch's ONNX exporters. The files are made by scripts/make_keras_models.py and
scripts/make_torch_models.py (committed in tests/data/keras and tests/data/torch, so CI needs
neither TensorFlow nor torch). Every one is bit-exact with TFLM, on the host and on QEMU, and the
ONNX ones stay within the SNR floor of onnxruntime's float output. On QEMU run the Keras models
and the dynamo exports (which hold every form of the classic ones, and more).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from mcudeploy import ir
from mcudeploy.cli import main
from mcudeploy.errors import InputError, UnsupportedError
from mcudeploy.frontends.onnx import load_onnx
from mcudeploy.frontends.tflite import load_tflite
from mcudeploy.model import ImportOptions, import_model
from mcudeploy.oracles import Tflm, dequantize, snr_db
from mcudeploy.reference import run_graph

DATA = Path(__file__).resolve().parent / "data"
KERAS = sorted(p for p in (DATA / "keras").glob("*.tflite") if p.suffixes == [".tflite"])  # full int8
TORCH = sorted((DATA / "torch").glob("*.onnx"))
FLOOR_DB = 30.0  # measured 32.8 (squeeze_excite) to 55.4 dB on these models
PINNED = (1, 3, 16, 16)  # dynamic_image's H and W, pinned with --input-shape


def _calibration(path: Path, tmp_path: Path, count: int = 24) -> tuple[Path, tuple]:
    """Random-normal samples in the model's input shape (dynamic dimensions pinned)."""
    dims = [d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim]
    shape = PINNED if 0 in dims else tuple(dims)
    file = tmp_path / f"{path.stem}.npy"
    np.save(file, np.random.default_rng(0).normal(0, 1, (count, *shape)).astype(np.float32))
    return file, ((("x", shape),) if 0 in dims else ())


def test_the_committed_models_are_all_there() -> None:
    assert [p.stem for p in KERAS] == ["flatten", "keras_layer_norm", "keras_layer_norm_conv1d",
                                       "layer_norm", "layout_and_prelu", "max_pool_1d", "mobilenet_025",
                                       "reshape_1d"]
    assert len(TORCH) == 10 and all(p.with_name(p.stem + "_dynamo.onnx").exists()
                                    for p in TORCH if not p.stem.endswith("_dynamo"))


@pytest.mark.parametrize("path", TORCH, ids=lambda p: p.stem)
def test_torch_exports_track_onnxruntime_and_match_tflm(path: Path, tmp_path: Path) -> None:
    cal, shapes = _calibration(path, tmp_path)
    model = import_model(path, ImportOptions(calibration=cal, input_shapes=shapes))
    graph = model.graph
    floats: dict[str, list] = {n: [] for n in graph.outputs}
    ours: dict[str, list] = {n: [] for n in graph.outputs}
    with Tflm(model.tflite, graph) as tflm:
        for vector in model.float_model.calibration_vectors[:6]:
            values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
            expected = model.float_model.invoke(vector)
            for k, (name, theirs) in enumerate(zip(graph.outputs, tflm.invoke(list(vector)), strict=True)):
                np.testing.assert_array_equal(values[name], theirs.reshape(values[name].shape))
                t = graph.tensor(name)
                ours[name].append(dequantize(values[name], t.scale, t.zero_point).reshape(-1))
                floats[name].append(expected[k].reshape(-1))
    for name in graph.outputs:
        snr = snr_db(np.concatenate(floats[name]), np.concatenate(ours[name]))
        assert snr >= FLOOR_DB, f"{path.name}: output {name} SNR {snr:.1f} dB"


@pytest.mark.parametrize(("name", "kinds"), [
    # x.mean(-1) over a Conv1d's [1, 16, 62]: a mean over the length of the NHWC [1, 1, 62, 16]
    ("head_1d", ["conv2d", "reshape", "mean", "fully_connected"]),
    # AdaptiveAvgPool1d(1) through dynamo: Unsqueeze [1, 16, 40] -> [1, 16, 1, 40] is free
    ("pool_1d_dynamo", ["conv2d", "reshape", "mean", "reshape", "pool2d", "reshape", "concat", "reshape",
                        "fully_connected"]),
    # NHWC input permuted to NCHW: free; permute(0, 2, 3, 1) before flatten: free; transpose(2, 3): computed
    ("nhwc_input", ["reshape", "conv2d", "prelu", "pool2d", "conv2d", "reshape", "reshape", "fully_connected",
                    "reshape", "transpose", "reshape", "conv2d"]),
    # (x - mean) / std, hard swish by hand, Hardsigmoid, PReLU, clamp, maximum with a constant, a
    # ReLU after a concatenation
    ("squeeze_excite", ["add", "mul", "conv2d", "add", "mul", "mul", "mean", "conv2d", "conv2d", "mul", "mul",
                        "prelu", "conv2d", "extremum", "concat", "relu", "conv2d"]),
])
def test_torch_forms_become_these_operators(name: str, kinds: list[str]) -> None:
    graph = load_onnx(DATA / "torch" / f"{name}.onnx").graph
    assert [op.kind for op in graph.ops] == kinds


def test_hard_sigmoid_becomes_keras_relu6_form() -> None:
    """Hardsigmoid (alpha 1/6, beta 1/2) is relu6(x + 3) / 6, as Keras writes it: here the + 3 folds
    into the bias of the excite convolution before it, RELU6 fuses into it, then a Mul by 1/6; the
    hand-written hard swish is an Add with RELU6 and two Muls; clamp(-1.5, 2) fuses into its
    convolution."""
    graph = load_onnx(DATA / "torch" / "squeeze_excite.onnx").graph
    relu6 = [op.kind for op in graph.ops if getattr(op.attrs, "activation", None) == ir.Clip(0.0, 6.0)]
    assert relu6 == ["add", "conv2d"]
    clamped = [op for op in graph.ops if op.kind == "conv2d" and op.attrs.activation.low == -1.5]
    assert len(clamped) == 1 and clamped[0].attrs.activation.high == 2.0


def test_keras_shape_subgraphs_fold_and_say_so() -> None:
    for name in ("flatten", "mobilenet_025"):
        graph = load_tflite(DATA / "keras" / f"{name}.tflite")
        assert graph.notes == (f"{name}.tflite: shape computations folded to constants for batch 1 "
                               "(SHAPE, STRIDED_SLICE, PACK)",)
    assert load_tflite(DATA / "keras" / "max_pool_1d.tflite").notes == ()


@pytest.mark.device
@pytest.mark.parametrize("path", KERAS, ids=lambda p: p.stem)
def test_keras_models_are_bit_exact_on_the_device(path: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--vectors", "3"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "pass" and report["vectors"] == 3 and report["mismatched_vectors"] == 0
    assert report["oracles"] == ["host-reference", "tflm"]
    if path.stem in ("flatten", "mobilenet_025", "reshape_1d"):
        err = " ".join(capsys.readouterr().err.split())
        assert "shape computations folded to constants for batch 1" in err, err


@pytest.mark.device
@pytest.mark.parametrize("path", [p for p in TORCH if p.stem.endswith("_dynamo")], ids=lambda p: p.stem)
def test_torch_exports_are_bit_exact_on_the_device(path: Path, tmp_path: Path) -> None:
    cal, shapes = _calibration(path, tmp_path, count=8)
    out = tmp_path / "out"
    pins = [arg for name, shape in shapes for arg in ("--input-shape", f"{name}={','.join(map(str, shape))}")]
    assert main(["run", str(path), "--calibration", str(cal), "--out", str(out), "--vectors", "3", "-q",
                 *pins]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "pass" and report["mismatched_vectors"] == 0
    assert report["oracles"] == ["host-reference", "tflm", "onnxruntime-float"]
    assert report["float_oracle"]["passed"] and min(report["float_oracle"]["snr_db"].values()) >= FLOOR_DB


def test_a_dynamic_dimension_asks_for_input_shape(tmp_path: Path) -> None:
    path = DATA / "torch" / "dynamic_image.onnx"
    with pytest.raises(UnsupportedError) as err:
        load_onnx(path)
    assert str(err.value) == (f"{path}: input 'x' has a dynamic dimension 2 (h); only the batch dimension "
                              "may be dynamic: pin the others with --input-shape x=1,3,N,N (N the size you "
                              "deploy)")
    graph = load_onnx(path, input_shapes={"x": (1, 3, 24, 40)}).graph
    assert graph.tensor("x").shape == (1, 24, 40, 3)
    assert graph.notes == ("input 'x' pinned to [1, 3, 24, 40] (declared [1, 3, 'h', 'w'])",)


@pytest.mark.parametrize(("shapes", "message"), [
    ({"y": (1, 3, 8, 8)}, "--input-shape names 'y', which is not an input of the model (its inputs: 'x')"),
    ({"x": (1, 3, 8)}, "--input-shape x=1,3,8: the input has 4 dimensions [1, 3, 'h', 'w']; give 4 "
                       "positive sizes"),
    ({"x": (1, 4, 8, 8)}, "--input-shape x=1,4,8,8: dimension 1 of the input is 3, not 4"),
])
def test_input_shape_mistakes_are_named(shapes: dict, message: str) -> None:
    path = DATA / "torch" / "dynamic_image.onnx"
    with pytest.raises(InputError) as err:
        load_onnx(path, input_shapes=shapes)
    assert str(err.value) == f"{path}: {message}"


@pytest.mark.parametrize(("args", "message"), [
    (["--input-shape", "x=1,3,a"], "'x=1,3,a': expected NAME=D0,D1,... with positive sizes"),
    (["--input-shape", "1,3,8,8"], "'1,3,8,8': expected NAME=D0,D1,..."),
    (["--input-shape", "x=1,3,8,8", "--input-shape", "x=1,3,9,9"], "--input-shape names 'x' more than once"),
])
def test_input_shape_option_is_checked(args: list[str], message: str, tmp_path: Path, capsys) -> None:
    path = DATA / "torch" / "dynamic_image.onnx"
    cal, _ = _calibration(path, tmp_path, count=2)
    try:
        status = main(["build", str(path), "--calibration", str(cal), "--out", str(tmp_path / "o"), *args])
    except SystemExit as exit_:  # argparse's own refusal of the value
        status = exit_.code
    assert status == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_input_shape_is_refused_for_tflite() -> None:
    path = DATA / "keras" / "flatten.tflite"
    with pytest.raises(InputError, match="--input-shape is for ONNX models"):
        import_model(path, ImportOptions(input_shapes=(("x", (1, 8, 8, 3)),)))

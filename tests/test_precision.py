"""`--precision int8|int16|auto` for float ONNX models (mcudeploy.quantize.precision): a model that
int8 breaks (an un-normalised input channel 1000 times wider than the others, which a depthwise
layer scales back) is fixed by `auto` moving that one layer to 16x8, bit-exact on QEMU with the
host reference and TFLM and within the SNR floor of onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnxgen import OnnxBuilder

from mcudeploy.cli import main
from mcudeploy.errors import InputError
from mcudeploy.manifest import code_path
from mcudeploy.model import ImportOptions, import_model
from mcudeploy.oracles import Tflm
from mcudeploy.reference import run_graph
from mcudeploy.vectors import random_vectors

DATA = Path(__file__).parent / "data" / "s16"


@pytest.fixture(scope="module")
def wide_input(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Depthwise 3x3 (channel 0's weights 1000 times smaller), conv, ReLU, conv; calibration data
    whose channel 0 is 1000 times wider than channels 1-3."""
    folder = tmp_path_factory.mktemp("wide")
    b = OnnxBuilder(seed=4)
    x = b.input((1, 4, 8, 8))
    w = b.rng.normal(0, 1 / 3, size=(4, 1, 3, 3))
    w[0] *= 1e-3
    h = b.node("Conv", [x, b.const(w.astype(np.float32), "w"), b.const(np.zeros(4, np.float32), "b")],
               kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=4)
    h = b.node("Relu", [b.conv(h, 4, 8, pads=[1, 1, 1, 1])])
    h = b.conv(h, 8, 8, pads=[1, 1, 1, 1])
    model = b.save([h], folder / "wide.onnx")
    calibration = np.random.default_rng(0).normal(0, 1, size=(32, 1, 4, 8, 8)).astype(np.float32)
    calibration[:, :, 0] *= 1000
    np.save(folder / "wide.npy", calibration)
    return model, folder / "wide.npy"


def _import(paths: tuple[Path, Path], precision: str):
    return import_model(paths[0], ImportOptions(calibration=paths[1], precision=precision))


def test_int8_breaks_the_model(wide_input) -> None:
    quality = _import(wide_input, "int8").quality
    assert max(quality.output_snr_db.values()) < 5.0
    assert quality.warning is not None and "below 20 dB" in quality.warning
    assert quality.precision == {"mode": "int8", "int16_layers": [], "moves": []}


def test_int16_makes_every_layer_16x8_and_tflm_agrees(wide_input) -> None:
    model = _import(wide_input, "int16")
    graph = model.graph
    weighted = [op for op in graph.ops if op.kind in ("conv2d", "depthwise_conv2d")]
    assert len(weighted) == 3 and model.quality.precision["int16_layers"] == [op.name for op in weighted]
    for op in weighted:
        assert graph.tensor(op.inputs[0]).dtype == graph.tensor(op.outputs[0]).dtype == "int16"
        assert graph.tensor(op.inputs[2]).dtype == "int64"
    assert min(model.quality.output_snr_db.values()) > 25.0
    with Tflm(model.tflite, graph) as tflm:
        for vector in random_vectors(graph, 3, seed=1):
            expected = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))[graph.outputs[0]]
            np.testing.assert_array_equal(tflm.invoke(vector)[0], expected)


@pytest.mark.device
def test_auto_moves_the_worst_layer_and_passes_on_qemu(wide_input, tmp_path: Path) -> None:
    out = tmp_path / "out"
    status = main(["run", str(wide_input[0]), "--calibration", str(wide_input[1]), "--precision", "auto",
                   "--out", str(out), "--vectors", "4", "-q"])
    report = json.loads((out / "report.json").read_text())
    assert status == 0, report.get("mismatches") or report.get("error")
    assert report["verdict"] == "pass" and report["bit_exact_vectors"] == 4
    assert report["oracles"] == ["host-reference", "tflm", "onnxruntime-float"]
    precision = report["quantization"]["precision"]
    (move,) = precision["moves"]
    assert move["kept"] and move["origin"] == "node 'Conv_3' (Conv)"
    assert move["output_snr_db_before"] < 5.0 and move["output_snr_db_after"] >= 20.0
    assert move["arena_bytes"] >= 0 and move["constant_bytes"] == 16  # 4 int64 biases for 4 int32
    assert precision["int16_layers"] == [move["layer"]]
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    assert [io["dtype"] for io in manifest["inputs"]] == ["int16"]
    assert [io["dtype"] for io in manifest["outputs"]] == ["int8"]
    assert "QUANTIZE to int8 before" in code_path(out / "model").read_text()


def test_precision_is_refused_for_a_tflite_file() -> None:
    with pytest.raises(InputError, match=r"conv_1x1\.tflite: an int8 TFLite file keeps its own quantization; "
                                         r"--precision is for float models \(ONNX, float TFLite\)"):
        import_model(DATA / "conv_1x1.tflite", ImportOptions(precision="int16"))


def test_int16_through_a_reshape_is_bit_exact_with_tflm(tmp_path: Path) -> None:
    """A RESHAPE (ONNX Flatten) after a 16x8 convolution computes in int16 too, as its input does:
    the host reference and TFLM agree on the written file."""
    b = OnnxBuilder(seed=6)
    x = b.input((1, 3, 6, 6))
    h = b.node("Relu", [b.conv(x, 3, 4, pads=[1, 1, 1, 1])])
    h = b.gemm(b.node("Flatten", [h], axis=1), 4 * 6 * 6, 5)
    model = b.save([h], tmp_path / "flat.onnx")
    model = import_model(model, ImportOptions(calibration=b.calibration(tmp_path / "flat.npz"),
                                              precision="int16"))
    graph = model.graph
    reshape = next(op for op in graph.ops if op.kind == "reshape")
    assert graph.tensor(reshape.inputs[0]).dtype == graph.tensor(reshape.outputs[0]).dtype == "int16"
    with Tflm(model.tflite, graph) as tflm:
        for vector in random_vectors(graph, 3, seed=2):
            expected = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))[graph.outputs[0]]
            np.testing.assert_array_equal(tflm.invoke(vector)[0], expected)

"""RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR in int8, bit-exact with TFLM; ONNX Resize and Upsample
mapped onto them.

- Single-operator graphs of every flag pair, up and down by integer and non-integer ratios,
  written to TFLite and run by TFLM: the host reference and the generated C (compiled for the
  host) are bit-exact with it.
- Models made by TensorFlow's converter (scripts/make_resize_models.py, committed in
  tests/data/resize): bit-exact with TFLM on the host, and on QEMU; the float file, quantized on
  calibration data, bit-exact with TFLM on the written int8 file and near the float file.
- ONNX graphs written with the onnx helper: within the SNR floor of onnxruntime and bit-exact with
  TFLM; what does not map is refused naming the node and the attribute.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hostlib import HostModel
from onnxgen import OnnxBuilder

from mcudeploy import ir
from mcudeploy.boards import load_board
from mcudeploy.cli import main
from mcudeploy.codegen import generate
from mcudeploy.errors import ModelFormatError, UnsupportedError
from mcudeploy.export_tflite import graph_to_tflite
from mcudeploy.frontends.onnx import load_onnx
from mcudeploy.model import ImportOptions, import_model
from mcudeploy.nnlib import nnref_library
from mcudeploy.oracles import Tflm, dequantize, snr_db
from mcudeploy.reference import run_graph
from mcudeploy.support import check_graph
from mcudeploy.vectors import random_vectors

DATA = Path(__file__).resolve().parent / "data" / "resize"
CONVERTED = ("plain", "align_corners", "half_pixel", "keras_layers")
FLAGS = ((False, False), (True, False), (False, True))  # (align_corners, half_pixel_centers)
SIZES = (((6, 6), (12, 12)), ((5, 7), (9, 12)), ((12, 10), (5, 7)), ((5, 6), (13, 11)),
         ((1, 3), (4, 1)), ((7, 4), (2, 16)))
QUANT = ir.QuantParams((0.05,), (3,))
FLOOR_DB = 25.0  # measured 33.8 (linear, pytorch_half_pixel, down) to 36.8 dB (nearest) on these graphs


def _single(mode: str, flags: tuple[bool, bool], in_hw: tuple[int, int], out_hw: tuple[int, int],
            out_quant: ir.QuantParams = QUANT) -> ir.Graph:
    return _resizes(mode, flags, [(in_hw, out_hw)], out_quant)


def _resizes(mode: str, flags: tuple[bool, bool], sizes, out_quant: ir.QuantParams = QUANT) -> ir.Graph:
    """One resize of a [2, H, W, 3] input per entry of `sizes`, each its own input and output."""
    tensors, ops = {}, []
    for k, (in_hw, out_hw) in enumerate(sizes):
        tensors[f"x{k}"] = ir.Tensor(f"x{k}", (2, *in_hw, 3), "int8", QUANT)
        tensors[f"y{k}"] = ir.Tensor(f"y{k}", (2, *out_hw, 3), "int8", out_quant)
        ops.append(ir.Op(f"resize{k}", ir.Resize(mode, *flags), (f"x{k}",), (f"y{k}",),
                         f"operator {k} (RESIZE)"))
    return ir.Graph("resize", tensors, tuple(ops), tuple(f"x{k}" for k in range(len(sizes))),
                    tuple(f"y{k}" for k in range(len(sizes))))


@pytest.mark.parametrize("flags", FLAGS, ids=("neither", "align_corners", "half_pixel"))
@pytest.mark.parametrize("mode", ("nearest", "bilinear"))
def test_reference_and_generated_c_match_tflm(mode: str, flags: tuple[bool, bool], tmp_path: Path) -> None:
    graph = _resizes(mode, flags, SIZES)
    check_graph(graph)
    library = nnref_library()
    manifest = generate(graph, load_board("mps2-an386"), library, tmp_path, source="resize")
    host = HostModel(tmp_path, library, manifest)
    with Tflm(graph_to_tflite(graph), graph) as tflm:
        for vector in random_vectors(graph, 4, seed=3):
            values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
            for k, (theirs, c_out) in enumerate(zip(tflm.invoke(vector), host.invoke(vector), strict=True)):
                ours = values[f"y{k}"]
                np.testing.assert_array_equal(theirs.reshape(ours.shape), ours, err_msg=str(SIZES[k]))
                np.testing.assert_array_equal(c_out, ours, err_msg=str(SIZES[k]))


@pytest.mark.parametrize("name", CONVERTED)
def test_converted_models_are_bit_exact_with_tflm(name: str) -> None:
    path = DATA / f"{name}.tflite"
    graph = import_model(path).graph
    assert sum(op.kind == "resize" for op in graph.ops) == 2
    with Tflm(path.read_bytes(), graph) as tflm:
        for vector in random_vectors(graph, 4, seed=5):
            values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
            out = graph.outputs[0]
            np.testing.assert_array_equal(tflm.invoke(vector)[0].reshape(values[out].shape), values[out])


@pytest.mark.device
@pytest.mark.parametrize("name, board", [("align_corners", "mps3-an547"), ("half_pixel", "mps2-an386")])
def test_converted_models_are_bit_exact_on_the_device(name: str, board: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["run", str(DATA / f"{name}.tflite"), "--board", board, "--out", str(out), "--vectors", "3",
                 "-q"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "pass" and report["vectors"] == 3 and report["mismatched_vectors"] == 0
    assert report["oracles"] == ["host-reference", "tflm"]


def test_float_file_is_quantized_with_resize_sharing_its_input_quantization(tmp_path: Path) -> None:
    cal = tmp_path / "cal.npy"
    np.save(cal, np.random.default_rng(1).normal(0, 1, (16, 5, 6, 3)).astype(np.float32))
    model = import_model(DATA / "keras_layers.float32.tflite", ImportOptions(calibration=cal))
    graph = model.graph
    resizes = [op for op in graph.ops if op.kind == "resize"]
    assert [op.attrs for op in resizes] == [ir.Resize("bilinear", False, True),
                                            ir.Resize("nearest", False, True)]
    assert all(graph.tensor(op.inputs[0]).quant == graph.tensor(op.outputs[0]).quant for op in resizes)
    _assert_tflm_and_float(model, FLOOR_DB)  # measured 35.8 dB


def _assert_tflm_and_float(model, floor_db: float) -> float:
    """Bit-exact with TFLM on the written int8 file; the SNR to the float model above `floor_db`."""
    graph, out = model.graph, model.graph.outputs[0]
    ours, floats = [], []
    with Tflm(model.tflite, graph) as tflm:
        for vector in model.float_model.calibration_vectors[:6]:
            values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
            theirs = tflm.invoke(list(vector))[0]
            np.testing.assert_array_equal(theirs.reshape(values[out].shape), values[out])
            t = graph.tensor(out)
            ours.append(dequantize(values[out], t.scale, t.zero_point).reshape(-1))
            floats.append(model.float_model.invoke(vector)[0].reshape(-1))
    model.float_model.close()
    snr = snr_db(np.concatenate(floats), np.concatenate(ours))
    assert snr >= floor_db, f"SNR {snr:.1f} dB"
    return snr


def _onnx_resize(tmp_path: Path, shape: tuple[int, int, int, int], opset: int = 13,
                 scales: list[float] | None = None, sizes: list[int] | None = None,
                 op: str = "Resize", **attrs) -> tuple[Path, Path]:
    b = OnnxBuilder(seed=4, opset=opset)
    x = b.input(shape)
    y = b.conv(x, shape[1], 4, pads=[1, 1, 1, 1])
    if op in ("Upsample", "Upsample10"):  # X and scales: Upsample, and Resize in opset 10
        kind = "Upsample" if op == "Upsample" else "Resize"
        y = b.node(kind, [y, b.const(np.array(scales, dtype=np.float32))], **attrs)
    else:
        inputs = [y, "", b.const(np.array(scales, dtype=np.float32)) if scales else ""]
        if sizes:
            inputs.append(b.const(np.array(sizes, dtype=np.int64)))
        y = b.node("Resize", inputs, **attrs)
    y = b.conv(y, 4, 3, pads=[1, 1, 1, 1])
    path = b.save([y], tmp_path / "resize.onnx")
    return path, b.calibration(tmp_path / "cal.npz", count=16)


def _attrs(mode: str, transform: str | None = None, rounding: str | None = None) -> dict:
    attrs = {"mode": mode}
    if transform:
        attrs["coordinate_transformation_mode"] = transform
    if rounding:
        attrs["nearest_mode"] = rounding
    return attrs


ONNX_CASES = {  # the scales or sizes, the attributes, the TFLite resize expected
    "nearest_asymmetric_floor_x2": ({"scales": [1, 1, 2, 2]}, _attrs("nearest", "asymmetric", "floor"),
                                    ir.Resize("nearest", False, False)),
    "nearest_half_pixel_default": ({"sizes": [1, 4, 9, 12]}, _attrs("nearest"),
                                   ir.Resize("nearest", False, False)),
    "nearest_align_corners_ceil": ({"sizes": [1, 4, 11, 9]},
                                   _attrs("nearest", "align_corners", "round_prefer_ceil"),
                                   ir.Resize("nearest", True, False)),
    "nearest_tf_half_pixel_down": ({"sizes": [1, 4, 3, 5]},
                                   _attrs("nearest", "tf_half_pixel_for_nn", "floor"),
                                   ir.Resize("nearest", False, True)),
    "linear_half_pixel_x2": ({"scales": [1, 1, 2, 2]}, _attrs("linear"), ir.Resize("bilinear", False, True)),
    "linear_pytorch_half_pixel_down": ({"sizes": [1, 4, 4, 3]}, _attrs("linear", "pytorch_half_pixel"),
                                       ir.Resize("bilinear", False, True)),
    "linear_align_corners": ({"sizes": [1, 4, 13, 9]}, _attrs("linear", "align_corners"),
                             ir.Resize("bilinear", True, False)),
    "linear_asymmetric": ({"scales": [1, 1, 1.5, 2]}, _attrs("linear", "asymmetric"),
                          ir.Resize("bilinear", False, False)),
}


@pytest.mark.parametrize("case", list(ONNX_CASES))
def test_onnx_resize_tracks_onnxruntime_and_matches_tflm(case: str, tmp_path: Path) -> None:
    given, attrs, expected = ONNX_CASES[case]
    path, cal = _onnx_resize(tmp_path, (1, 2, 6, 8), **given, **attrs)
    model = import_model(path, ImportOptions(calibration=cal))
    assert [op.attrs for op in model.graph.ops if op.kind == "resize"] == [expected]
    _assert_tflm_and_float(model, FLOOR_DB)


@pytest.mark.parametrize("op, opset", [("Upsample", 9), ("Upsample10", 10)])  # Upsample10: Resize-10
def test_onnx_upsample_and_opset_10_resize_are_asymmetric_floor(op: str, opset: int, tmp_path: Path) -> None:
    path, cal = _onnx_resize(tmp_path, (1, 2, 5, 6), opset=opset, op=op, scales=[1, 1, 2, 1.5],
                             mode="nearest")
    model = import_model(path, ImportOptions(calibration=cal))
    assert [op.attrs for op in model.graph.ops if op.kind == "resize"] == [ir.Resize("nearest", False, False)]
    _assert_tflm_and_float(model, FLOOR_DB)


def test_opset_10_nearest_downscale_rounds_up_and_is_refused(tmp_path: Path) -> None:
    """onnxruntime rounds the source position up where opset 10's Resize shrinks an axis (measured:
    6 -> 4 rows by 0.75 reads rows 0, 2, 3, 4); no TFLite resize reads those."""
    path, _ = _onnx_resize(tmp_path, (1, 2, 6, 8), opset=10, op="Upsample10", scales=[1, 1, 0.75, 1],
                           mode="nearest")
    with pytest.raises(UnsupportedError) as err:
        load_onnx(path)
    assert str(err.value) == (
        f"{path}: node 'Resize_5' (Resize): mode nearest with asymmetric coordinates rounded down along "
        "an axis that grows, up along one that shrinks (Upsample, opset 10) picks source pixels no TFLite "
        "nearest-neighbour resize of [6, 8] to [4, 8] picks (1 node(s) after them not checked)")


@pytest.mark.parametrize("given, attrs, reason", [
    ({"scales": [1, 1, 2, 2]}, {"mode": "cubic"},
     "attribute mode=cubic is not supported (only nearest and linear)"),
    ({"scales": [1, 1, 1.3, 1.5]}, {"mode": "linear"},
     "mode linear with scale 1.3 from 6 to 7: TFLite scales by the output/input size ratio only"),
    ({"scales": [1, 1, 2, 2]}, {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize"},
     "mode linear with coordinate_transformation_mode=tf_crop_and_resize is not supported (half_pixel, "
     "pytorch_half_pixel to sizes above 1, align_corners, asymmetric)"),
    ({"sizes": [1, 4, 12, 16]}, {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                                 "nearest_mode": "ceil"},
     "mode nearest with coordinate_transformation_mode=asymmetric and nearest_mode=ceil picks "
     "source pixels no TFLite nearest-neighbour resize of [6, 8] to [12, 16] picks"),
    ({"scales": [1, 2, 2, 2]}, {"mode": "nearest"}, "resizing [1, 4, 6, 8] to (1, 8, 12, 16) changes N or C "
     "(only H and W)"),
])
def test_onnx_resize_that_does_not_map_is_refused(given: dict, attrs: dict, reason: str,
                                                  tmp_path: Path) -> None:
    path, _ = _onnx_resize(tmp_path, (1, 2, 6, 8), **given, **attrs)
    with pytest.raises(UnsupportedError) as err:
        load_onnx(path)
    assert str(err.value) == f"{path}: node 'Resize_5' (Resize): {reason} (1 node(s) after them not checked)"


def test_resize_rules_are_checked() -> None:
    other = ir.QuantParams((0.1,), (3,))
    with pytest.raises(UnsupportedError, match=r"resize.*output 'y0' is quantized unlike input 'x0'"):
        check_graph(_single("nearest", (False, False), (4, 4), (8, 8), other))
    with pytest.raises(UnsupportedError, match="both align_corners and half_pixel_centers"):
        check_graph(_single("bilinear", (True, True), (4, 4), (8, 8)))
    with pytest.raises(UnsupportedError, match=r"H 1 -> 2048: TFLM's integer kernel reads index 1"):
        check_graph(_single("bilinear", (False, False), (1, 4), (2048, 8)))  # scale 1/1024: rows 1024 on


def test_a_size_unlike_the_output_is_refused(tmp_path: Path) -> None:
    from test_float_tflite import _edited

    def edit(model) -> None:
        sub = model.subgraphs[0]
        for op in sub.operators:
            if model.operatorCodes[op.opcodeIndex].builtinCode == 23:  # RESIZE_BILINEAR
                size = sub.tensors[op.inputs[1]]
                model.buffers[size.buffer].data = np.array([7, 7], np.int32).view(np.uint8)
                return

    path = _edited(DATA / "plain.tflite", tmp_path / "bad.tflite", edit)
    with pytest.raises(ModelFormatError,
                       match=r"size \[7, 7\] does not match output 0 .* of shape \[1, 12, 12, 4\]"):
        import_model(path)

"""16x8 TFLite files (int16 activations, int8 weights, int64 or int32 bias) made by TensorFlow's
converter (tests/data/s16) deployed as they are: imported, checked, lowered to CMSIS-NN's `_s16`
calls and run on QEMU (M55 and M4), bit-exact with the host reference and with TFLM; operators
without a 16x8 form, and int16 tensors that break the 16x8 scheme, refused naming the layer."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mcudeploy import ir
from mcudeploy.cli import main
from mcudeploy.errors import UnsupportedError
from mcudeploy.export_tflite import graph_to_tflite
from mcudeploy.frontends.tflite import load_tflite
from mcudeploy.manifest import code_path
from mcudeploy.support import check_graph
from mcudeploy.vectors import random_vectors

DATA = Path(__file__).parent / "data" / "s16"
SINGLE_OPS = sorted(p for p in DATA.glob("*.tflite") if not p.stem.startswith("lstm"))


def _merged(paths: list[Path]) -> ir.Graph:
    """The files' graphs side by side in one graph (names prefixed by the file's), so that one
    firmware image runs every layer TensorFlow converted, with its own tensors and numbers."""
    tensors, ops, inputs, outputs = {}, [], [], []
    for path in paths:
        g = load_tflite(path)
        rename = {name: f"{path.stem}/{name}" for name in g.tensors}
        tensors.update({rename[n]: replace(t, name=rename[n]) for n, t in g.tensors.items()})
        ops += [replace(op, name=f"{path.stem}_{op.name}", inputs=tuple(rename.get(n, n) for n in op.inputs),
                        outputs=tuple(rename[n] for n in op.outputs)) for op in g.ops]
        inputs += [rename[n] for n in g.inputs]
        outputs += [rename[n] for n in g.outputs]
    return ir.Graph("s16_layers", tensors, tuple(ops), tuple(inputs), tuple(outputs))


def _run(model: Path, out: Path, board: str, vectors: int) -> dict:
    status = main(["run", str(model), "--board", board, "--out", str(out), "--vectors", str(vectors), "-q"])
    report = json.loads((out / "report.json").read_text())
    assert status == 0, report.get("mismatches") or report.get("error")
    assert report["verdict"] == "pass" and report["bit_exact_vectors"] == vectors
    assert report["oracles"] == ["host-reference", "tflm"]
    return report


@pytest.mark.device
@pytest.mark.parametrize("board", ["mps3-an547", "mps2-an386"])
def test_every_tensorflow_16x8_layer_in_one_image_passes_on_qemu(board: str, tmp_path: Path) -> None:
    """The 18 one-layer files side by side (18 int16 inputs and outputs over the protocol)."""
    graph = _merged(SINGLE_OPS)
    model = tmp_path / "s16_layers.tflite"
    model.write_bytes(graph_to_tflite(graph))
    report = _run(model, tmp_path / "out", board, 3)
    manifest = json.loads((tmp_path / "out" / "model" / "manifest.json").read_text())
    assert {io["dtype"] for io in manifest["inputs"] + manifest["outputs"]} == {"int16"}
    model_c = code_path(tmp_path / "out" / "model").read_text()
    for function in ("arm_convolve_wrapper_s16", "arm_depthwise_conv_wrapper_s16", "arm_fully_connected_s16",
                     "arm_avgpool_s16", "arm_max_pool_s16", "arm_elementwise_add_s16",
                     "arm_elementwise_mul_s16", "arm_softmax_s16"):
        assert f"{function}(" in model_c, function
    assert "_s8(" not in model_c
    assert report["instructions"]["per_inference"] > 10_000


@pytest.mark.device
def test_a_tensorflow_file_runs_as_it_is(tmp_path: Path) -> None:
    """TFLM runs the converter's own bytes (an int32-bias convolution: int32 accumulation)."""
    _run(DATA / "conv_bias_int32.tflite", tmp_path / "out", "mps3-an547", 4)


def test_random_vectors_cover_the_int16_range() -> None:
    graph = load_tflite(DATA / "softmax_wide.tflite")
    (vector,) = random_vectors(graph, 1, seed=3)
    assert vector[0].dtype == np.int16 and vector[0].min() < -16384 and vector[0].max() > 16384


def _graph(op_attrs: ir.Attrs, kind_inputs: int, x_dtype: str = "int16", y_dtype: str = "int16",
           zero_point: int = 0) -> ir.Graph:
    q = ir.QuantParams((0.01,), (zero_point,))
    tensors = {"x": ir.Tensor("x", (1, 4, 4, 2), x_dtype, q), "y": ir.Tensor("y", (1, 4, 4, 2), y_dtype, q)}
    inputs = ("x",) * kind_inputs
    op = ir.Op("op0_thing", op_attrs, inputs, ("y",), "operator 0 (THING)")
    return ir.Graph("g", tensors, (op,), ("x",), ("y",))


def test_an_int16_operator_without_a_16x8_form_is_refused_naming_it() -> None:
    graph = _graph(ir.Extremum("max"), 2)
    with pytest.raises(UnsupportedError, match=r"m\.tflite: operator 0 \(THING\) \(op0_thing\): "
                                               r"not supported: extremum has no 16x8 form"):
        check_graph(graph, "m.tflite")


def test_int16_tensors_outside_the_16x8_scheme_are_refused() -> None:
    pool = ir.Pool2D("max", (1, 1), (1, 1), ir.Padding(), ir.NO_CLIP)
    with pytest.raises(UnsupportedError, match=r"int16 tensor 'x' has zero point 3"):
        check_graph(_graph(pool, 1, zero_point=3))
    with pytest.raises(UnsupportedError, match=r"16x8: activations are int16.*tensor 'x' is int8"):
        check_graph(_graph(pool, 1, x_dtype="int8"))


def test_a_softmax_whose_output_is_not_q15_is_refused() -> None:
    graph = load_tflite(DATA / "softmax.tflite")
    out = graph.outputs[0]
    bad = replace(graph.tensors[out], quant=ir.QuantParams((1 / 256,), (0,)))
    with pytest.raises(UnsupportedError, match=r"op0_softmax.*16x8 SOFTMAX: the output has scale 1/32768.*"
                                               r"Here: output scale 0\.00390625"):
        check_graph(replace(graph, tensors={**graph.tensors, out: bad}))

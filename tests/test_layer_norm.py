"""Layer normalisation in int8 (issue 18): TFLite SUB, RSQRT and SQUARED_DIFFERENCE, bit-exact with TFLM.

SUB (broadcasting, a constant operand, a fused ReLU, saturation, inputs of different scales) and
RSQRT (every one of the 256 inputs) are compared with the tflite-micro interpreter running the int8
file mcudeploy writes; a Keras head with layer normalisation (tests/data/keras/layer_norm*.tflite,
made by TensorFlow's converter) runs on QEMU as a full-int8 file and as a float file quantized on
calibration data; so do Keras' own LayerNormalization layers (tests/data/keras/keras_layer_norm*.tflite:
SQUARED_DIFFERENCE, and in full int8 a float NEG between DEQUANTIZE and QUANTIZE). The ONNX form
(Div by Sqrt) is in tests/test_onnx.py.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import flatbuffers
import numpy as np
import pytest

from mcudeploy import ir
from mcudeploy.arith import params as qp
from mcudeploy.arith import quantize_multiplier
from mcudeploy.cli import main
from mcudeploy.errors import UnsupportedError
from mcudeploy.export_tflite import graph_to_tflite
from mcudeploy.frontends.tflite import load_tflite, parse_tflite, read_model
from mcudeploy.frontends.tflite_checks import builtin_name
from mcudeploy.oracles import Tflm
from mcudeploy.quantize.quantizer import quantize_graph
from mcudeploy.reference import run_graph
from mcudeploy.reference.elementwise import sub
from mcudeploy.support import check_graph
from mcudeploy.vectors import random_vectors

DATA = Path(__file__).resolve().parent / "data" / "keras"
EVERY_INT8 = np.arange(-128, 128, dtype=np.int8)


def _quant(scale: float, zero_point: int) -> ir.QuantParams:
    return ir.QuantParams((float(np.float32(scale)),), (zero_point,))


def _one_op(attrs: ir.Attrs, inputs: dict[str, tuple[tuple[int, ...], ir.QuantParams, np.ndarray | None]],
            out_shape: tuple[int, ...], out_quant: ir.QuantParams) -> ir.Graph:
    """A graph of one operator, as written to TFLite and read back (what TFLM runs)."""
    tensors = {name: ir.Tensor(name, shape, "int8", q, data) for name, (shape, q, data) in inputs.items()}
    tensors["y"] = ir.Tensor("y", out_shape, "int8", out_quant)
    graph = ir.Graph("g", tensors, (ir.Op("op0", attrs, tuple(inputs), ("y",), "operator 0"),),
                     tuple(n for n, (_, _, data) in inputs.items() if data is None), ("y",))
    return parse_tflite(graph_to_tflite(graph), "g")


def _assert_tflm_agrees(graph: ir.Graph, vectors: list[list[np.ndarray]]) -> np.ndarray:
    """Every vector through TFLM and the host reference, bit for bit; the reference's outputs."""
    outputs = []
    with Tflm(graph_to_tflite(graph), graph) as tflm:
        for vector in vectors:
            ours = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))[graph.outputs[0]]
            (theirs,) = tflm.invoke(list(vector))
            np.testing.assert_array_equal(ours, theirs.reshape(ours.shape))
            outputs.append(ours)
    return np.concatenate([o.reshape(-1) for o in outputs])


@pytest.mark.parametrize(("s_in", "s_out", "zero_point"), [
    (0.43281037, 0.00066428375, -128),  # the Keras head's RSQRT (tests/data/keras/layer_norm.tflite)
    (0.05, 0.01, 10),
    (1e-4, 0.5, 0),  # large inputs' square roots are small: most outputs are the zero point
    (2.0, 0.001, -128),
    (16.0, 1000.0, -60),  # a multiplier just above 2^-12, the smallest the shifts allow (all -60)
    (1e-6, 1.5e-6, 0),  # one just below 2^30, the largest (all 127)
    (1e-3, 1e-3, 127),  # most outputs saturate at 127
])
def test_rsqrt_matches_tflm_on_every_input(s_in: float, s_out: float, zero_point: int) -> None:
    graph = _one_op(ir.Rsqrt(), {"x": ((1, 256), _quant(s_in, -128), None)}, (1, 256),
                    _quant(s_out, zero_point))
    check_graph(graph)
    out = _assert_tflm_agrees(graph, [[EVERY_INT8.reshape(1, 256)]])
    assert out[0] == 127  # real 0
    # and it is 1 / sqrt(x): within a step of the float result where that is in range
    x = (EVERY_INT8[1:].astype(np.float64) + 128) * np.float32(s_in)
    expected = np.clip(np.round(1.0 / np.sqrt(x) / np.float32(s_out)) + zero_point, -128, 127)
    assert np.abs(out[1:].astype(np.int64) - expected).max() <= 1


@pytest.mark.parametrize(("a", "b", "constant_b", "activation"), [
    ((2, 3, 4, 5), (2, 3, 4, 5), False, ir.NO_CLIP),
    ((1, 128), (1, 1), False, ir.NO_CLIP),  # a tensor minus its mean (openWakeWord's layer norm)
    ((1, 1), (1, 128), False, ir.NO_CLIP),
    ((2, 1, 4, 5), (1, 3, 1, 5), False, ir.Clip(0.0, None)),  # both inputs broadcast
    ((3, 1, 5), (4, 1), False, ir.NO_CLIP),
    ((4, 6), (6,), True, ir.Clip(0.0, 6.0)),  # minus a constant per channel
    ((1, 4, 4, 3), (), True, ir.NO_CLIP),  # minus a constant scalar
])
def test_sub_matches_tflm_with_broadcasting(a: tuple[int, ...], b: tuple[int, ...], constant_b: bool,
                                            activation: ir.Clip) -> None:
    rng = np.random.default_rng(len(a) + len(b))
    data = rng.integers(-128, 128, b).astype(np.int8) if constant_b else None
    graph = _one_op(ir.Sub(activation), {"a": (a, _quant(0.05, 3), None), "b": (b, _quant(0.02, -40), data)},
                    tuple(np.broadcast_shapes(a, b)), _quant(0.04, -5))
    check_graph(graph)
    _assert_tflm_agrees(graph, random_vectors(graph, 4, seed=2))


def test_sub_saturates_as_tflm_does() -> None:
    """Every pair of int8 values, an output scale a tenth of the inputs': most results saturate."""
    graph = _one_op(ir.Sub(ir.NO_CLIP), {"a": ((256, 256), _quant(0.1, 20), None),
                                         "b": ((256, 256), _quant(0.07, -9), None)},
                    (256, 256), _quant(0.01, 0))
    a, b = np.meshgrid(EVERY_INT8, EVERY_INT8, indexing="ij")
    out = _assert_tflm_agrees(graph, [[a, b]])
    assert (out == -128).sum() > 20000 and (out == 127).sum() > 20000 and ((out > -128) & (out < 127)).any()


def test_sub_divides_its_scales_in_double_as_the_interpreter_does() -> None:
    """The tflite-micro interpreter (0.dev20261023) prepares SUB as ADD, dividing the scales in
    double, although TFLM's source at 90b983c2 (sub_common.cc) divides them in float32: with these
    scales the float32 multipliers give one of the 65,536 pairs differently, and TFLM agrees with
    double."""
    scales = (0.48567384481430054, 0.41360560059547424, 0.001136453473009169)
    graph = _one_op(ir.Sub(ir.NO_CLIP), {"a": ((256, 256), _quant(scales[0], 0), None),
                                         "b": ((256, 256), _quant(scales[1], 0), None)},
                    (256, 256), _quant(scales[2], 0))
    a, b = np.meshgrid(EVERY_INT8, EVERY_INT8, indexing="ij")
    out = _assert_tflm_agrees(graph, [[a, b]])
    s1, s2, sy = (np.float32(s) for s in scales)
    twice_max = np.float32(2) * max(s1, s2)
    single = replace(qp.add_params(graph.ops[0], graph),
                     input2_multiplier=quantize_multiplier(float(s2 / twice_max))[0],
                     output_multiplier=quantize_multiplier(float(twice_max / (np.float32(1 << 20) * sy)))[0])
    assert (sub(a, b, single).reshape(-1) != out).sum() == 1


def _sub(a: tuple[int, ...], b: tuple[int, ...], out_scale: float) -> ir.Graph:
    return _one_op(ir.Sub(ir.NO_CLIP), {"a": (a, _quant(0.1, 0), None), "b": (b, _quant(0.1, 0), None)},
                   a, _quant(out_scale, 0))


def test_refusals_name_the_operator_and_the_rule() -> None:
    negative = _one_op(ir.Rsqrt(), {"x": ((1, 8), _quant(0.1, -100), None)}, (1, 8), _quant(0.01, -128))
    with pytest.raises(UnsupportedError, match=r"operator 0 \(RSQRT\) \(op0_rsqrt\): not supported: The "
                       r"input zero point is -128.*Here: input 'x' has zero point -100"):
        check_graph(negative)
    tiny = _one_op(ir.Rsqrt(), {"x": ((1, 8), _quant(100.0, -128), None)}, (1, 8), _quant(1000.0, 0))
    with pytest.raises(UnsupportedError, match=r"\(RSQRT\).*is at least 2\^-12 and below 2\^30"):
        check_graph(tiny)
    with pytest.raises(UnsupportedError, match=r"\(SUB\).*SUB, prepared as ADD.*output 'y' has scale 1e-08"):
        check_graph(_sub((1, 8), (1, 8), 1e-8))
    with pytest.raises(UnsupportedError, match=r"\(SUB\).*input 'b' of shape \[3, 2\] does not broadcast"):
        check_graph(_sub((2, 3), (3, 2), 0.1))


def test_keras_layer_norm_file_matches_tflm() -> None:
    graph = load_tflite(DATA / "layer_norm.tflite")
    kinds = [op.kind for op in graph.ops]
    assert kinds.count("sub") == 1 and kinds.count("rsqrt") == 1
    check_graph(graph)
    _assert_tflm_agrees(graph, random_vectors(graph, 8, seed=4))


def run_on_qemu(file: str, board: str, calibration_shape: tuple[int, ...], tmp_path: Path) -> dict:
    """`mcudeploy run` of DATA/file.tflite on `board`, 4 vectors (a float32 file calibrated on 16
    normal samples of `calibration_shape`); checks it passes bit-exact and returns its report."""
    out = tmp_path / "out"
    args = ["run", str(DATA / f"{file}.tflite"), "--board", board, "--out", str(out), "--vectors", "4", "-q"]
    if file.endswith("float32"):
        samples = np.random.default_rng(1).normal(0, 1, calibration_shape).astype(np.float32)
        np.save(tmp_path / "cal.npy", samples)
        args += ["--calibration", str(tmp_path / "cal.npy")]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "pass" and report["bit_exact_vectors"] == 4
    return report


@pytest.mark.device
@pytest.mark.parametrize("file", ["layer_norm", "layer_norm.float32"])
def test_keras_layer_norm_is_bit_exact_on_qemu(file: str, tmp_path: Path) -> None:
    report = run_on_qemu(file, "mps3-an547", (16, 16, 48), tmp_path)
    if file.endswith("float32"):
        assert report["oracles"] == ["host-reference", "tflm", "tflm-float"]
        assert min(report["float_oracle"]["snr_db"].values()) >= 30.0  # measured 4x.x dB


def test_a_constant_operand_of_sub_gets_its_own_int8_range() -> None:
    """The quantizer takes a float SUB of a constant (tensor minus constant) as it takes ADD's."""
    values = np.float32([0.5, -1.0, 2.0, 0.0])
    tensors = {"x": ir.Tensor("x", (1, 4), "float32"), "c": ir.Tensor("c", (4,), "float32", data=values),
               "y": ir.Tensor("y", (1, 4), "float32")}
    op = ir.Op("s", ir.Sub(ir.NO_CLIP), ("x", "c"), ("y",), "node 's'")
    q = quantize_graph(ir.Graph("g", tensors, (op,), ("x",), ("y",)), {"x": (-1.0, 1.0), "y": (-3.0, 2.0)})
    c = q.tensor("c")
    assert c.dtype == "int8" and c.zero_point == round(-128 + 1.0 / c.scale)
    np.testing.assert_allclose((c.data.astype(np.float64) - c.zero_point) * c.scale, values, atol=c.scale)
    check_graph(q)


# Keras' own LayerNormalization: SQUARED_DIFFERENCE, the mean negated by a float NEG in full int8,
# and (over channels) a MUL whose inputs both broadcast.

@pytest.mark.parametrize(("q1", "q2", "q_out"), [
    ((0.2012147158384323, 7), (0.01779000833630562, 8), (2.8014020919799805, -128)),  # keras_layer_norm
    ((0.04629147797822952, 1), (0.008812722750008106, 5), (0.12600216269493103, -128)),  # its conv1d form
    ((0.05, 3), (0.05, -7), (0.01, -128)),  # most outputs saturate at 127
    ((0.1, 20), (0.003, -9), (0.5, 10)),  # an output zero point that is not the lowest value
    ((1e-3, -128), (2e-3, 127), (1e-9, -128)),  # output multiplier 0.977, just below 1 (the most allowed)
])
def test_squared_difference_matches_tflm_on_every_pair(q1: tuple[float, int], q2: tuple[float, int],
                                                        q_out: tuple[float, int]) -> None:
    graph = _one_op(ir.SquaredDifference(), {"a": ((256, 256), _quant(*q1), None),
                                             "b": ((256, 256), _quant(*q2), None)},
                    (256, 256), _quant(*q_out))
    check_graph(graph)
    a, b = np.meshgrid(EVERY_INT8, EVERY_INT8, indexing="ij")
    out = _assert_tflm_agrees(graph, [[a, b]]).reshape(256, 256)
    # and it is (a - b)^2: within a step of the float result where that is in range
    real_a = (a.astype(np.float64) - q1[1]) * np.float32(q1[0])
    real = (real_a - (b.astype(np.float64) - q2[1]) * np.float32(q2[0])) ** 2
    expected = np.round(real / np.float32(q_out[0])) + q_out[1]
    inside = expected <= 127
    assert inside.any() and np.abs(out[inside].astype(np.int64) - expected[inside]).max() <= 1
    assert (out[~inside] == 127).all()


@pytest.mark.parametrize(("a", "b", "constant_b"), [
    ((1, 24, 16), (1, 24, 1), False),  # a tensor and its mean over the channels
    ((1, 1), (1, 32), False),
    ((2, 1, 4, 5), (1, 3, 1, 5), False),  # both inputs broadcast
    ((4, 6), (6,), True),
])
def test_squared_difference_matches_tflm_with_broadcasting(a: tuple[int, ...], b: tuple[int, ...],
                                                           constant_b: bool) -> None:
    rng = np.random.default_rng(len(a) * 10 + len(b))
    data = rng.integers(-128, 128, b).astype(np.int8) if constant_b else None
    graph = _one_op(ir.SquaredDifference(), {"a": (a, _quant(0.05, 3), None),
                                             "b": (b, _quant(0.02, -40), data)},
                    tuple(np.broadcast_shapes(a, b)), _quant(0.1, -128))
    check_graph(graph)
    _assert_tflm_agrees(graph, random_vectors(graph, 4, seed=3))


@pytest.mark.parametrize(("a", "b"), [((1, 24, 1), (1, 1, 16)), ((2, 1, 4, 1), (1, 3, 1, 5))])
def test_mul_with_both_inputs_broadcasting_matches_tflm(a: tuple[int, ...], b: tuple[int, ...]) -> None:
    graph = _one_op(ir.Mul(ir.NO_CLIP), {"a": (a, _quant(0.006, -128), None),
                                         "b": (b, _quant(0.004, 7), None)},
                    tuple(np.broadcast_shapes(a, b)), _quant(0.006, 7))
    check_graph(graph)
    _assert_tflm_agrees(graph, random_vectors(graph, 4, seed=5))


def test_squared_difference_refuses_an_output_scale_that_would_overflow() -> None:
    graph = _one_op(ir.SquaredDifference(), {"a": ((1, 8), _quant(0.1, 0), None),
                                             "b": ((1, 8), _quant(0.1, 0), None)}, (1, 8), _quant(1e-7, 0))
    with pytest.raises(UnsupportedError, match=r"operator 0 \(SQUARED_DIFFERENCE\).*not supported: The "
                       r"output multiplier \(2 x max\(input scales\)\)\^2 / \(2\^14 x output scale\) is "
                       r"below 1.*output 'y' has scale 1e-07"):
        check_graph(graph)


KERAS_LAYER_NORMS = ["keras_layer_norm", "keras_layer_norm_conv1d"]


@pytest.mark.parametrize("name", KERAS_LAYER_NORMS)
def test_keras_layer_normalization_file_matches_tflm(name: str) -> None:
    """The converter's own file (its float DEQUANTIZE, NEG, QUANTIZE included) and the int8 file
    mcudeploy writes (an int8 SUB from 0 instead) both agree with the host reference bit for bit."""
    path = DATA / f"{name}.tflite"
    graph = load_tflite(path)
    kinds = [op.kind for op in graph.ops]
    assert kinds.count("squared_difference") == 1 and kinds.count("rsqrt") == 1 and kinds.count("sub") == 1
    assert any("float NEG between DEQUANTIZE and QUANTIZE of one scale computed as an int8 SUB" in note
               for note in graph.notes)
    check_graph(graph)
    vectors = random_vectors(graph, 16, seed=6)
    written = _assert_tflm_agrees(graph, vectors)
    with Tflm(path.read_bytes(), graph) as tflm:
        original = np.concatenate([tflm.invoke(list(v))[0].reshape(-1) for v in vectors])
    np.testing.assert_array_equal(original, written)


def _edited_keras_layer_norm(tmp_path: Path, edit) -> Path:
    """tests/data/keras/keras_layer_norm.tflite with `edit(model, operators by type name)` applied."""
    model = read_model((DATA / "keras_layer_norm.tflite").read_bytes(), "model")
    by_type = {builtin_name(model.operatorCodes[op.opcodeIndex]): op for op in model.subgraphs[0].operators}
    edit(model, by_type)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "edited.tflite"
    path.write_bytes(bytes(builder.Output()))
    return path


def test_a_negation_between_two_scales_is_refused(tmp_path: Path) -> None:
    """The float NEG is computed as an int8 SUB only where its DEQUANTIZE and QUANTIZE share one
    scale (as TensorFlow's converter writes them); otherwise it is refused by name."""
    def rescale(model, ops) -> None:
        model.subgraphs[0].tensors[ops["QUANTIZE"].outputs[0]].quantization.scale = [0.5]

    with pytest.raises(UnsupportedError, match=r"edited.tflite: operator 7 \(NEG\): a float NEG between "
                       r"DEQUANTIZE of '.*' and QUANTIZE to 'tfl.quantize' is supported only with one scale "
                       r"on both sides \(here \(0.0177.*,\) and \(0.5,\)\)"):
        load_tflite(_edited_keras_layer_norm(tmp_path, rescale))


def test_an_int8_negation_is_refused(tmp_path: Path) -> None:
    """NEG of an int8 tensor (TFLite has it, TFLM does not): the DEQUANTIZE taken out, NEG reading
    the int8 mean and writing int8."""
    def int8_neg(model, ops) -> None:
        sub = model.subgraphs[0]
        dequantize, neg = ops["DEQUANTIZE"], ops["NEG"]
        neg.inputs = dequantize.inputs
        out, mean = sub.tensors[neg.outputs[0]], sub.tensors[dequantize.inputs[0]]
        out.type, out.quantization = mean.type, mean.quantization
        sub.operators = [op for op in sub.operators if op is not dequantize]

    with pytest.raises(UnsupportedError, match=r"edited.tflite: operator 6 \(NEG\): NEG of int8 tensor '.*' "
                       r"is not supported \(TFLM's NEG computes float32 only\)"):
        load_tflite(_edited_keras_layer_norm(tmp_path, int8_neg))


@pytest.mark.device
@pytest.mark.parametrize(("file", "board"), [
    ("keras_layer_norm", "mps3-an547"), ("keras_layer_norm", "mps2-an386"),
    ("keras_layer_norm_conv1d", "mps3-an547"), ("keras_layer_norm_conv1d", "mps2-an386"),
    ("keras_layer_norm.float32", "mps3-an547"), ("keras_layer_norm_conv1d.float32", "mps2-an386"),
])
def test_keras_layer_normalization_is_bit_exact_on_qemu(file: str, board: str, tmp_path: Path) -> None:
    shape = (16, 16, 48) if file.startswith("keras_layer_norm.") else (16, 24, 8)
    report = run_on_qemu(file, board, shape, tmp_path)
    if file.endswith("float32"):
        assert report["oracles"] == ["host-reference", "tflm", "tflm-float"]
        assert min(report["float_oracle"]["snr_db"].values()) >= 30.0  # measured 39.6 and 35.2 dB

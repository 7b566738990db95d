"""ONNX GRU imported as ordinary int8 operators unrolled over the sequence (fully connected, add,
sub, mul, logistic, tanh, slice, concatenation, reshape), as TensorFlow's converter deploys a GRU:
the float import gives onnxruntime's Y and Y_h (both linear_before_reset values, every direction),
the quantized graph (int8, and 16x8 with --precision int16) is bit-exact with TFLM on the written file
and within the SNR floor of onnxruntime, and QEMU runs it bit-exact with both. The refusals are in
tests/test_onnx_lstm.py.

The models are written with onnx.helper in the form torch.onnx exports `nn.GRU(batch_first=True)`
(torch is not installed here): Transpose to [seq, batch, input], GRU, Squeeze of Y_h or Y."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnxgen import keyword_rnn
from test_onnx_lstm import assert_tflm_exact_and_near_float

from mcudeploy.cli import main
from mcudeploy.frontends.onnx import load_onnx
from mcudeploy.model import ImportOptions, import_model
from mcudeploy.quantize.float_models import float_model
from mcudeploy.quantize.lstm_float import lstm_values

FLOOR_DB = 30.0
STEPS, FEATURES, HIDDEN = 12, 10, 16
KINDS = {"reshape", "fully_connected", "slice", "logistic", "tanh", "add", "sub", "mul", "concat"}


def _float_matches_onnxruntime(path: Path, direction: str, steps: int) -> list:
    """Y and Y_h (Y made an output too) of the imported float graph against onnxruntime's; the IR
    operators it became."""
    m = onnx.load(str(path))
    node = next(n for n in m.graph.node if n.op_type == "GRU")
    directions = 2 if direction == "bidirectional" else 1
    m.graph.output.append(onnx.helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT,
                                                             [steps, directions, 1, HIDDEN]))
    onnx.save(m, str(path))
    imp = load_onnx(path)
    x, y, y_h = node.input[0], node.output[0], node.output[1]
    runner = float_model(imp).runner([x, y, y_h])
    x_value = np.random.default_rng(3).normal(size=(1, steps, FEATURES)).astype(np.float32)
    values = runner.run({imp.onnx_inputs[0]: x_value})
    ours = lstm_values(imp.graph, {x: values[x]})
    assert ours[y].shape == values[y].shape == (steps, directions, 1, HIDDEN)
    assert ours[y_h].shape == values[y_h].shape == (directions, 1, HIDDEN)
    np.testing.assert_allclose(ours[y], values[y], atol=2e-6)
    np.testing.assert_allclose(ours[y_h], values[y_h], atol=2e-6)
    assert np.abs(values[y]).max() > 0.1  # a state that moves
    return imp.graph.ops


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("before_reset", [0, 1])
def test_the_float_gru_computes_what_onnxruntime_does(direction: str, before_reset: int,
                                                      tmp_path: Path) -> None:
    """The unrolled operators in float give onnxruntime's Y and Y_h: gate order, biases, the reset
    gate's place and the directions are right before anything is quantized."""
    path = keyword_rnn(tmp_path / "m.onnx", "GRU", direction=direction, linear_before_reset=before_reset)
    ops = _float_matches_onnxruntime(path, direction, STEPS)
    assert {op.kind for op in ops} == KINDS | {"softmax"}


@pytest.mark.parametrize(("steps", "direction"), [(1, "bidirectional"), (25, "reverse")])
def test_one_step_and_long_sequences(steps: int, direction: str, tmp_path: Path) -> None:
    """One step is the zero-state step alone; 25 steps are concatenated at most 10 at a time (TFLM's
    CONCATENATION limit)."""
    path = keyword_rnn(tmp_path / "m.onnx", "GRU", steps=steps, direction=direction, linear_before_reset=1)
    ops = _float_matches_onnxruntime(path, direction, steps)
    assert max(len(op.inputs) for op in ops if op.kind == "concat") == (2 if steps == 1 else 10)
    assert sum(op.kind == "tanh" for op in ops) == steps * (2 if direction == "bidirectional" else 1)


@pytest.mark.parametrize(("direction", "before_reset", "use_sequence", "precision"),
                         [("forward", 0, False, "int8"), ("forward", 1, True, "int8"),
                          ("bidirectional", 1, False, "int8"), ("forward", 1, False, "int16")])
def test_quantized_gru_matches_tflm_and_tracks_onnxruntime(direction: str, before_reset: int,
                                                           use_sequence: bool, precision: str,
                                                           tmp_path: Path) -> None:
    path = keyword_rnn(tmp_path / "m.onnx", "GRU", direction=direction, use_sequence=use_sequence,
                       linear_before_reset=before_reset)
    model = import_model(path, ImportOptions(calibration=path.with_suffix(".npz"), precision=precision))
    graph = model.graph
    kinds = {op.kind for op in graph.ops}
    assert kinds <= KINDS | {"softmax", "quantize"} and ("quantize" in kinds) == (precision == "int16")
    fcs = [op.outputs[0] for op in graph.ops if op.kind == "fully_connected"]
    assert {graph.tensor(n).dtype for n in fcs} == {precision}  # the GRU's and the Gemm's
    directions = 2 if direction == "bidirectional" else 1
    fcs = sum(op.kind == "fully_connected" for op in graph.ops)
    assert fcs == directions * (3 + 3 * (STEPS - 1)) + 1  # each gate's input part, the steps', the Gemm
    assert_tflm_exact_and_near_float(model)


def test_calibration_measures_every_step_of_the_unrolled_gru(tmp_path: Path) -> None:
    """Each step's hidden state gets the range its float value spans over the calibration data:
    the hidden states share the quantization of Y's concatenation, which covers every step."""
    path = keyword_rnn(tmp_path / "m.onnx", "GRU", use_sequence=True)
    imp = load_onnx(path)
    node = next(n for n in imp.model.graph.node if n.op_type == "GRU")
    samples = np.load(path.with_suffix(".npz"))[imp.onnx_inputs[0]]
    steps = [lstm_values(imp.graph, {node.input[0]: s.transpose(1, 0, 2)})[node.output[0]] for s in samples]
    low, high = float(np.min(steps)), float(np.max(steps))
    model = import_model(path, ImportOptions(calibration=path.with_suffix(".npz")))
    y = model.graph.tensor(node.output[0])
    assert y.scale == pytest.approx((high - low) / 255, rel=1e-5)


@pytest.mark.device
def test_onnx_gru_runs_bit_exact_on_qemu(tmp_path: Path) -> None:
    path = keyword_rnn(tmp_path / "m.onnx", "GRU", linear_before_reset=1)
    out = tmp_path / "out"
    status = main(["run", str(path), "--calibration", str(path.with_suffix(".npz")), "--out", str(out),
                   "--vectors", "4", "-q"])
    report = json.loads((out / "report.json").read_text())
    assert status == 0, report.get("mismatches") or report.get("error")
    assert report["verdict"] == "pass" and report["bit_exact_vectors"] == 4
    assert report["oracles"] == ["host-reference", "tflm", "onnxruntime-float"]
    assert report["float_oracle"]["passed"]

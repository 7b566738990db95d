"""ONNX LSTM imported as the IR's integer LSTM (TFLite UNIDIRECTIONAL_SEQUENCE_LSTM): the gate order
and summed biases proven against onnxruntime in float, the quantized graph (int8 and 16x8) bit-exact
with TFLM on the written file and within the SNR floor of onnxruntime, QEMU bit-exact with both, and
the forms mcudeploy does not deploy (peepholes, clip, a non-zero or computed initial state, Y_c,
and a GRU's clip, activations, initial state, short sequence or batch) refused naming the node and why.

The models are written with onnx.helper in the form torch.onnx exports `nn.LSTM(batch_first=True)`
(torch is not installed here): Transpose to [seq, batch, input], LSTM, Squeeze of Y_h or Y."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxgen import keyword_rnn, rnn_weights

from mcudeploy.cli import main
from mcudeploy.errors import UnsupportedError
from mcudeploy.frontends.onnx import load_onnx
from mcudeploy.manifest import code_path
from mcudeploy.model import ImportOptions, Model, import_model
from mcudeploy.oracles import Tflm, dequantize, snr_db
from mcudeploy.quantize.float_models import float_model
from mcudeploy.quantize.lstm_float import cell_state_name, lstm_values
from mcudeploy.reference import run_graph

FLOOR_DB = 30.0
STEPS, FEATURES, HIDDEN = 12, 10, 16


def test_onnx_gates_become_the_ir_gates_with_summed_biases(tmp_path: Path) -> None:
    path = keyword_rnn(tmp_path / "kw.onnx")
    graph = load_onnx(path).graph
    assert [op.kind for op in graph.ops] == ["reshape", "lstm", "slice", "reshape", "fully_connected",
                                             "softmax"]
    lstm = graph.ops[1]
    assert lstm.attrs.time_major and lstm.attrs.cell_clip == 0.0
    m = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    node = next(n for n in m.graph.node if n.op_type == "LSTM")
    w, r, b = (inits[n][0] for n in node.input[1:4])
    h = HIDDEN
    onnx_block = {"input": 0, "output": 1, "forget": 2, "cell": 3}  # ONNX's i, o, f, c
    for k, gate in enumerate(("input", "forget", "cell", "output")):  # the IR's (TFLite's) order
        rows = slice(onnx_block[gate] * h, (onnx_block[gate] + 1) * h)
        np.testing.assert_array_equal(graph.tensor(lstm.inputs[1 + k]).data, w[rows])
        np.testing.assert_array_equal(graph.tensor(lstm.inputs[5 + k]).data, r[rows])
        np.testing.assert_allclose(graph.tensor(lstm.inputs[9 + k]).data,
                                   b[rows] + b[4 * h + onnx_block[gate] * h:][:h], rtol=1e-6)


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_the_float_lstm_computes_what_onnxruntime_does(direction: str, tmp_path: Path) -> None:
    """The import's LSTMs (and reversals) in float give onnxruntime's Y: gate order, biases and
    directions are right before anything is quantized."""
    path = keyword_rnn(tmp_path / "m.onnx", direction=direction, use_sequence=True)
    imp = load_onnx(path)
    node = next(n for n in imp.model.graph.node if n.op_type == "LSTM")
    x, y = node.input[0], node.output[0]
    runner = float_model(imp).runner([x, y])
    x_value = np.random.default_rng(3).normal(size=(1, STEPS, FEATURES)).astype(np.float32)
    sample = {imp.onnx_inputs[0]: x_value}
    values = runner.run(sample)
    ours = lstm_values(imp.graph, {x: values[x]})
    assert ours[y].shape == values[y].shape == (STEPS, 2 if direction == "bidirectional" else 1, 1, HIDDEN)
    np.testing.assert_allclose(ours[y], values[y], atol=2e-6)
    assert sum(op.kind == "lstm" for op in imp.graph.ops) == (2 if direction == "bidirectional" else 1)


@pytest.mark.parametrize(("direction", "precision", "use_sequence"),
                         [("forward", "int8", False), ("forward", "int16", True),
                          ("bidirectional", "int8", False)])
def test_quantized_lstm_matches_tflm_and_tracks_onnxruntime(direction: str, precision: str,
                                                            use_sequence: bool, tmp_path: Path) -> None:
    path = keyword_rnn(tmp_path / "m.onnx", direction=direction, use_sequence=use_sequence)
    model = import_model(path, ImportOptions(calibration=path.with_suffix(".npz"), precision=precision))
    graph = model.graph
    lstms = [op for op in graph.ops if op.kind == "lstm"]
    bias_type = "int64" if precision == "int16" else "int32"
    for op in lstms:
        assert graph.tensor(op.inputs[0]).dtype == ("int16" if precision == "int16" else "int8")
        assert [graph.tensor(n).dtype for n in op.inputs[1:]] == ["int8"] * 8 + [bias_type] * 4
        assert all(len(graph.tensor(n).quant.scale) == 1 for n in op.inputs[1:])  # per tensor
        power = np.log2(op.attrs.cell_scale)
        assert power == round(power)  # TFLite's power-of-two cell scale
    assert_tflm_exact_and_near_float(model)


def assert_tflm_exact_and_near_float(model: Model) -> None:
    """On six calibration vectors, the imported graph's reference equals TFLM on the model's int8
    TFLite bit for bit, and its dequantized output is within FLOOR_DB of the float model's."""
    graph = model.graph
    tflm = Tflm(model.tflite, graph)
    (out,) = graph.outputs
    t = graph.tensor(out)
    floats, ours = [], []
    for vector in model.float_model.calibration_vectors[:6]:
        values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
        (theirs,) = tflm.invoke(list(vector))
        np.testing.assert_array_equal(values[out], theirs.reshape(values[out].shape))
        ours.append(dequantize(values[out], t.scale, t.zero_point))
        floats.append(model.float_model.invoke(vector)[0])
    assert snr_db(np.concatenate(floats), np.concatenate(ours)) >= FLOOR_DB


def test_the_cell_scale_covers_the_calibrated_cell_state(tmp_path: Path) -> None:
    """2^ceil(log2(max |c|)) / 2^15 over every step of every calibration sample, as TFLite's
    converter quantizes the cell state."""
    path = keyword_rnn(tmp_path / "m.onnx")
    cal = path.with_suffix(".npz")
    imp = load_onnx(path)
    op = next(op for op in imp.graph.ops if op.kind == "lstm")
    samples = np.load(cal)[imp.onnx_inputs[0]]
    peak = max(float(np.abs(lstm_values(imp.graph, {op.inputs[0]: s.transpose(1, 0, 2)})
                            [cell_state_name(op)]).max()) for s in samples)
    model = import_model(path, ImportOptions(calibration=cal))
    (lstm,) = [o for o in model.graph.ops if o.kind == "lstm"]
    assert lstm.attrs.cell_scale == 2.0 ** (int(np.ceil(np.log2(peak))) - 15)


def _report(path: Path, out: Path, *options: str) -> dict:
    status = main(["run", str(path), "--calibration", str(path.with_suffix(".npz")), "--out", str(out),
                   "--vectors", "4", "-q", *options])
    report = json.loads((out / "report.json").read_text())
    assert status == 0, report.get("mismatches") or report.get("error")
    assert report["verdict"] == "pass" and report["bit_exact_vectors"] == 4
    assert report["oracles"] == ["host-reference", "tflm", "onnxruntime-float"]
    assert report["float_oracle"]["passed"]
    return report


@pytest.mark.device
@pytest.mark.parametrize(("direction", "precision", "function"),
                         [("forward", "int8", "arm_lstm_unidirectional_s8("),
                          ("forward", "int16", "arm_lstm_unidirectional_s16("),
                          ("bidirectional", "int8", "arm_lstm_unidirectional_s8(")])
def test_onnx_lstm_runs_bit_exact_on_qemu(direction: str, precision: str, function: str,
                                          tmp_path: Path) -> None:
    path = keyword_rnn(tmp_path / "m.onnx", direction=direction)
    _report(path, tmp_path / "out", "--precision", precision)
    model_c = code_path(tmp_path / "out" / "model").read_text()
    assert model_c.count(function) == (2 if direction == "bidirectional" else 1)



@pytest.mark.device
@pytest.mark.parametrize(("board", "precision"), [("mps3-an547", "int8"), ("mps3-an547", "int16"),
                                                  ("mps2-an386", "int8"), ("mps2-an386", "int16")])
def test_arm_cmsis_nn_release_runs_the_onnx_lstm_bit_exact(board: str, precision: str,
                                                          tmp_path: Path) -> None:
    """The imported LSTM through Arm's own arm_lstm_unidirectional_s8/_s16 (a release brought in
    locally: its tree or .pack in MCD_ARM_CMSIS_NN), bit-exact with TFLM and the host reference."""
    release = os.environ.get("MCD_ARM_CMSIS_NN")
    if not release:
        pytest.skip("Arm's CMSIS-NN is not downloadable here: set MCD_ARM_CMSIS_NN to a release to run this")
    path = keyword_rnn(tmp_path / "m.onnx", direction="forward")
    _report(path, tmp_path / "out", "--precision", precision, "--board", board, "--cmsis-nn", release)
    function = "arm_lstm_unidirectional_s16(" if precision == "int16" else "arm_lstm_unidirectional_s8("
    assert function in code_path(tmp_path / "out" / "model").read_text()

def _lstm_model(path: Path, *, extra_inputs: dict[int, np.ndarray | str] | None = None,
                outputs: tuple[int, ...] = (1,), op_type: str = "LSTM", batch: int = 1, **attrs) -> Path:
    """X [T, batch, F] → one LSTM (or GRU: 3 gates) → its outputs at `outputs`; `extra_inputs` puts a
    constant (an array) or a model input (a shape string "T,B,H") at an input position."""
    gates = 3 if op_type == "GRU" else 4
    rng = np.random.default_rng(0)
    w, r, b = rnn_weights(rng, FEATURES, HIDDEN)
    inits = [numpy_helper.from_array(w[:, : gates * HIDDEN], "W"),
             numpy_helper.from_array(r[:, : gates * HIDDEN], "R"),
             numpy_helper.from_array(b[:, : 2 * gates * HIDDEN], "B")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [STEPS, batch, FEATURES])]
    names = ["x", "W", "R", "B"]
    for position, value in sorted((extra_inputs or {}).items()):
        names += [""] * (position - len(names)) + [f"in{position}"]
        if isinstance(value, str):
            inputs.append(helper.make_tensor_value_info(f"in{position}", TensorProto.FLOAT,
                                                        [int(d) for d in value.split(",")]))
        else:
            inits.append(numpy_helper.from_array(value, f"in{position}"))
    outs = ["y", "y_h", "y_c"][: max(outputs) + 1]
    if op_type == "GRU":
        outs = outs[:2]
    node = helper.make_node(op_type, names, outs, name="rnn", hidden_size=HIDDEN, **attrs)
    returned = [helper.make_tensor_value_info(outs[i], TensorProto.FLOAT, None) for i in outputs]
    graph = helper.make_graph([node], "t", inputs, returned, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.save(onnx.shape_inference.infer_shapes(model), str(path))
    return path


_ZEROS = np.zeros((1, 1, HIDDEN), np.float32)
REFUSALS = {
    "peephole": ({"extra_inputs": {7: np.zeros((1, 3 * HIDDEN), np.float32)}},
                 r"peephole weights P \('in7'\) are not supported"),
    "clip": ({"clip": 3.0}, r"attribute clip=3 \(a clip of the gates' inputs\) is not supported"),
    "input_forget": ({"input_forget": 1}, r"attribute input_forget=1 .* is not supported"),
    "activations": ({"activations": ["Sigmoid", "Relu", "Tanh"]},
                    r"activations \['Sigmoid', 'Relu', 'Tanh'\] are not supported"),
    "nonzero_state": ({"extra_inputs": {5: _ZEROS + 0.5}}, r"initial_h \('in5'\) is not zero"),
    "state_input": ({"extra_inputs": {6: f"1,1,{HIDDEN}"}},
                    r"initial_c \('in6'\) is computed or a model input: mcudeploy deploys an LSTM whose "
                    r"state starts at zero"),
    "short_sequence": ({"extra_inputs": {4: np.array([STEPS - 2], np.int32)}},
                       rf"sequence_lens \[{STEPS - 2}\] must be the whole sequence \({STEPS} steps\)"),
    "cell_output": ({"outputs": (1, 2)}, r"its output Y_c \('y_c'\) is used: the integer LSTM does not "
                                         r"output its cell state"),
    "gru_clip": ({"op_type": "GRU", "clip": 3.0},
                 r"attribute clip=3 \(a clip of the gates' inputs\) is not supported"),
    "gru_activations": ({"op_type": "GRU", "activations": ["Sigmoid", "Relu"]},
                        r"activations \['Sigmoid', 'Relu'\] are not supported \(only Sigmoid, Tanh"),
    "gru_layout": ({"op_type": "GRU", "layout": 1}, r"attribute layout=1 is not supported"),
    "gru_nonzero_state": ({"op_type": "GRU", "extra_inputs": {5: _ZEROS + 0.5}},
                          r"initial_h \('in5'\) is not zero: mcudeploy deploys a GRU whose state starts at "
                          r"zero"),
    "gru_state_input": ({"op_type": "GRU", "extra_inputs": {5: f"1,1,{HIDDEN}"}},
                        r"initial_h \('in5'\) is computed or a model input: mcudeploy deploys a GRU whose "
                        r"state starts at zero"),
    "gru_short_sequence": ({"op_type": "GRU", "extra_inputs": {4: np.array([STEPS - 2], np.int32)}},
                           rf"sequence_lens \[{STEPS - 2}\] must be the whole sequence \({STEPS} steps\)"),
    "gru_batch": ({"op_type": "GRU", "batch": 2}, r"a batch of 2 is not supported \(only 1\)"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_forms_not_deployed_are_refused_naming_the_node(case: str, tmp_path: Path) -> None:
    kwargs, message = REFUSALS[case]
    path = _lstm_model(tmp_path / "m.onnx", **kwargs)
    kind = "GRU" if case.startswith("gru") else "LSTM"
    with pytest.raises(UnsupportedError, match=rf"^{re.escape(str(path))}: node 'rnn' \({kind}\): {message}"):
        load_onnx(path)


def test_a_plain_model_of_the_refusal_builder_imports(tmp_path: Path) -> None:
    """The refusals above come from what each case changes: the same model without it imports,
    with a zero constant initial state and Y_c unused."""
    path = _lstm_model(tmp_path / "m.onnx", extra_inputs={5: _ZEROS, 6: _ZEROS}, outputs=(0, 1))
    graph = load_onnx(path).graph
    assert [op.kind for op in graph.ops] == ["lstm", "reshape", "slice"]


def test_a_plain_gru_of_the_refusal_builder_imports(tmp_path: Path) -> None:
    """The GRU refusals above too: the same GRU with a zero constant initial state and the whole
    sequence as sequence_lens imports, unrolled into ordinary operators (tests/test_onnx_gru.py)."""
    path = _lstm_model(tmp_path / "m.onnx", op_type="GRU", outputs=(0, 1),
                       extra_inputs={4: np.array([STEPS], np.int32), 5: _ZEROS})
    kinds = {op.kind for op in load_onnx(path).graph.ops}
    assert kinds == {"reshape", "fully_connected", "slice", "logistic", "tanh", "add", "sub", "mul", "concat"}

"""UNIDIRECTIONAL_SEQUENCE_LSTM deployed end to end: Keras keyword-style models converted to full
int8 by TensorFlow (tests/data/lstm, scripts/make_lstm_models.py) and the one-layer int8 and 16x8
files of tests/data/s16, imported, checked, computed by the host reference bit-exact with TFLM,
lowered to arm_lstm_unidirectional_s8/_s16 and run on QEMU bit-exact with both; the LSTM forms
mcudeploy does not deploy refused at conversion, naming the operator and why.

Each inference starts from the zero state (Keras' stateful=False): TFLM, which keeps an LSTM's
state in variable tensors from invoke to invoke, is reset before each. With `--lstm-state keep`
the state carries from inference to inference (persistent variables on the device, Arm's step
function), as TFLM's variable tensors carry it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fuzz_tflite import model_of, serialise
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from mcudeploy import ir
from mcudeploy.cli import main
from mcudeploy.errors import UnsupportedError
from mcudeploy.frontends.tflite import load_tflite
from mcudeploy.manifest import code_path
from mcudeploy.model import ImportOptions, import_model
from mcudeploy.oracles import Tflm
from mcudeploy.support import check_graph
from mcudeploy.vectors import random_vectors
from mcudeploy.verify.expected import expected_outputs

TESTS = Path(__file__).parent
KEYWORD = TESTS / "data" / "lstm" / "keyword_lstm.tflite"
SEQUENCE = TESTS / "data" / "lstm" / "sequence_lstm.tflite"
ONE_LAYER = sorted((TESTS / "data" / "s16").glob("lstm_*.tflite"))
MODELS = [KEYWORD, SEQUENCE, *ONE_LAYER]
LSTM_OP = 0  # the LSTM is operator 0 of every test model
PEEPHOLE, PROJECTION, HIDDEN_STATE, LAYER_NORM = 9, 16, 18, 20  # LSTM input positions


def test_the_keyword_model_is_what_keras_converts() -> None:
    graph = load_tflite(KEYWORD)
    assert [op.kind for op in graph.ops] == ["lstm", "slice", "fully_connected", "softmax"]
    lstm = graph.ops[0]
    assert lstm.attrs == ir.Lstm(time_major=False, cell_clip=10.0, cell_scale=2.0**-13)
    assert graph.tensor(graph.inputs[0]).shape == (1, 10, 8)
    assert graph.tensor(lstm.outputs[0]).shape == (1, 10, 16)
    assert [graph.tensor(n).dtype for n in lstm.inputs] == ["int8"] * 9 + ["int32"] * 4
    assert not graph.variables  # the state tensors are the operator's, not resource variables


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_host_reference_matches_tflm_bit_for_bit(path: Path) -> None:
    model = import_model(path)
    vectors = random_vectors(model.graph, 6, seed=len(path.stem))
    expected = expected_outputs(model, vectors)
    for i, (ours, tflm) in enumerate(zip(expected["host-reference"], expected["tflm"], strict=True)):
        for a, b in zip(ours, tflm, strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b, err_msg=f"{path.stem} vector {i}")
    outputs = [v[0].tobytes() for v in expected["tflm"]]
    assert len(set(outputs)) == len(outputs), "random inputs gave equal outputs"


def test_each_inference_starts_from_the_zero_state() -> None:
    """The same vector twice gives the same output: TFLM is reset before each inference (without
    the reset, its variable tensors carry the state and the second output differs)."""
    model = import_model(SEQUENCE)
    first, second = random_vectors(model.graph, 2, seed=5)
    with Tflm(model.tflite, model.graph) as oracle:
        outputs = [oracle.invoke(list(v))[0] for v in (first, second, first)]
    np.testing.assert_array_equal(outputs[0], outputs[2])
    assert not np.array_equal(outputs[0], outputs[1])


KEEP = ImportOptions(lstm_state="keep")


@pytest.mark.parametrize("path", [KEYWORD, *(p for p in ONE_LAYER if "time_major" in p.stem)],
                         ids=lambda p: p.stem)
def test_kept_state_matches_tflm_carrying_its_variables(path: Path) -> None:
    """The reference carries the state through the graph's variables as TFLM (not reset) carries
    its variable tensors; the outputs after the first differ from those of a fresh state."""
    kept, fresh = import_model(path, KEEP), import_model(path)
    assert len(kept.graph.variables) == 2 and not fresh.graph.variables
    hidden, cell = (kept.graph.tensor(v) for v in kept.graph.variables)
    assert (hidden.dtype, cell.dtype) == (kept.graph.tensor(kept.graph.ops[0].outputs[0]).dtype, "int16")
    vectors = random_vectors(kept.graph, 4, seed=9)
    carried, reset = expected_outputs(kept, vectors), expected_outputs(fresh, vectors)
    for i, (ours, tflm) in enumerate(zip(carried["host-reference"], carried["tflm"], strict=True)):
        np.testing.assert_array_equal(ours[0], tflm[0], err_msg=f"{path.stem} vector {i}")
    np.testing.assert_array_equal(carried["tflm"][0][0], reset["tflm"][0][0])  # both start from zero
    changed = [i for i in range(1, 4) if not np.array_equal(carried["tflm"][i][0], reset["tflm"][i][0])]
    assert len(changed) >= 2, f"{path.stem}: the state changed only vectors {changed}"


def test_keep_is_refused_where_it_means_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = TESTS.parent / "models" / "tiny_cnn.tflite"
    code = main(["build", str(model), "--lstm-state", "keep", "--out", str(tmp_path / "out"), "-q"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (f"error: {model}: --lstm-state keep is for a model with an "
                                               "LSTM; this one has none")
    float_model = TESTS / "data" / "keras" / "small_cnn.float32.tflite"
    code = main(["build", str(float_model), "--lstm-state", "keep", "--out", str(tmp_path / "out"), "-q"])
    assert code == 2
    expected = f"error: {float_model}: --lstm-state is for an integer TFLite file's LSTM"
    assert capsys.readouterr().err.strip() == expected
    assert not (tmp_path / "out").exists()


def test_a_batch_major_batch_cannot_keep_its_state() -> None:
    with pytest.raises(UnsupportedError) as info:
        import_model(TESTS / "data" / "s16" / "lstm_int8_b2.tflite", KEEP)
    assert str(info.value).endswith(
        "operator 0 (UNIDIRECTIONAL_SEQUENCE_LSTM) (op0_unidirectional_sequence_lstm): not supported: LSTM: "
        "one that keeps its state from inference to inference (--lstm-state keep) has batch 1 or is time "
        "major (Arm's step reads the state of a batch-major batch with the sequence's stride), and its "
        "state variables are [batch, hidden] (the cell state int16). Here: batch-major input [2, 4, 5] of "
        "batch 2.")


def _mutated(path: Path, change: Callable[[fb.ModelT, fb.OperatorT], None]) -> bytes:
    model = model_of(path.read_bytes())
    op = model.subgraphs[0].operators[LSTM_OP]
    op.inputs = np.array(op.inputs)  # writable
    change(model, op)
    return serialise(model)


def _set_input(position: int, tensor_position: int) -> Callable[[fb.ModelT, fb.OperatorT], None]:
    """Input `position` of the LSTM set to the tensor of its input `tensor_position`."""
    def change(model: fb.ModelT, op: fb.OperatorT) -> None:
        op.inputs[position] = op.inputs[tensor_position]
    return change


def _no_input_gate(model: fb.ModelT, op: fb.OperatorT) -> None:
    op.inputs[1] = op.inputs[5] = op.inputs[12] = -1


def _relu_cell(model: fb.ModelT, op: fb.OperatorT) -> None:
    op.builtinOptions.fusedActivationFunction = fb.ActivationFunctionType.RELU


def _hidden_state_rescaled(model: fb.ModelT, op: fb.OperatorT) -> None:
    q = model.subgraphs[0].tensors[op.inputs[HIDDEN_STATE]].quantization
    q.scale = [float(q.scale[0]) * 2]


def _state_from_input(model: fb.ModelT, op: fb.OperatorT) -> None:
    model.subgraphs[0].tensors[op.inputs[HIDDEN_STATE]].isVariable = False
    model.subgraphs[0].inputs = np.array([op.inputs[0], op.inputs[HIDDEN_STATE]])


def _other_options(model: fb.ModelT, op: fb.OperatorT) -> None:
    op.builtinOptionsType, op.builtinOptions = fb.BuiltinOptions.IfOptions, fb.IfOptionsT()


def _nan_cell_clip(model: fb.ModelT, op: fb.OperatorT) -> None:
    op.builtinOptions.cellClip = float("nan")


ORIGIN = "operator 0 (UNIDIRECTIONAL_SEQUENCE_LSTM)"
SUPPORTED = "(mcudeploy deploys the integer LSTM with four gates, as Keras' LSTM layer converts)"
REFUSALS = {
    "peephole": (_set_input(PEEPHOLE, 12), f"{ORIGIN}: an LSTM with peephole connections is not supported "
                 + SUPPORTED),
    "projection": (_set_input(PROJECTION, 5), f"{ORIGIN}: an LSTM with a projection layer is not supported "
                   + SUPPORTED),
    "layer_norm": (_set_input(LAYER_NORM, 12), f"{ORIGIN}: an LSTM with layer normalisation is not supported "
                   + SUPPORTED),
    "cifg": (_no_input_gate, f"{ORIGIN}: an LSTM with coupled input and forget gates (CIFG: no input gate "
             f"weights) is not supported {SUPPORTED}"),
    "relu_cell": (_relu_cell, f"{ORIGIN}: an LSTM whose cell activation is not tanh (fused activation 1) is "
                  "not supported"),
    "state_from_input": (_state_from_input, f"{ORIGIN}: the LSTM's state tensor 'tfl.pseudo_qconst' is not a "
                         "variable tensor; mcudeploy deploys an LSTM whose state starts at zero at each "
                         "inference, not one whose state comes from the graph"),
    "other_options": (_other_options,
                      f"{ORIGIN} carries IfOptions; it takes UnidirectionalSequenceLSTMOptions"),
    "nan_cell_clip": (_nan_cell_clip, f"{ORIGIN}: option cellClip is nan; it must be finite"),
    "hidden_state_scale": (_hidden_state_rescaled,
                           f"{ORIGIN}: the LSTM's hidden state 'tfl.pseudo_qconst' and its output "
                           "'tfl.unidirectional_sequence_lstm' differ in type or quantization"),
}


@pytest.mark.parametrize("form", REFUSALS)
def test_lstm_forms_mcudeploy_does_not_deploy_are_refused_naming_the_operator(
        form: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    change, message = REFUSALS[form]
    path = tmp_path / "bad.tflite"
    path.write_bytes(_mutated(KEYWORD, change))
    code = main(["build", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert err == f"error: {path}: {message}"
    assert not (tmp_path / "out").exists()


def _with_lstm_attrs(graph: ir.Graph, **changes: object) -> ir.Graph:
    op = graph.ops[0]
    return replace(graph, ops=(replace(op, attrs=replace(op.attrs, **changes)), *graph.ops[1:]))


def test_a_cell_scale_that_is_not_a_power_of_two_is_refused() -> None:
    graph = _with_lstm_attrs(load_tflite(KEYWORD), cell_scale=1e-4)
    with pytest.raises(UnsupportedError) as info:
        check_graph(graph, "k.tflite")
    assert str(info.value) == (
        "k.tflite: operator 0 (UNIDIRECTIONAL_SEQUENCE_LSTM) (op0_unidirectional_sequence_lstm): not "
        "supported: LSTM: the cell state's scale is a power of two 2^p (TFLite's CheckedLog2), p from -40 "
        "to 2, and the cell clip is 0 (none) or at least the cell scale (a smaller one quantizes to 0, for "
        "which TFLM holds the cell state at 0 and Arm's API, where 0 means no clip, does not). Here: cell "
        "scale 0.0001.")


def test_a_cell_clip_below_one_step_of_the_cell_scale_is_refused() -> None:
    """TFLM clips the cell state to +-0 when the clip quantizes to 0; Arm's API reads 0 as no clip."""
    graph = _with_lstm_attrs(load_tflite(KEYWORD), cell_clip=1e-12)
    with pytest.raises(UnsupportedError, match=r"the cell clip is 0 \(none\) or at least the cell scale .* "
                                               r"Here: cell clip 1e-12, cell scale 0\.00012207\.$"):
        check_graph(graph)
    check_graph(_with_lstm_attrs(load_tflite(KEYWORD), cell_clip=0.0))  # no clip at all is deployed


def test_an_lstm_beside_resource_variables_is_refused() -> None:
    graph = load_tflite(KEYWORD)
    x = graph.tensor(graph.inputs[0])
    stateful = replace(graph, variables={"variable:0": np.zeros(x.shape, np.int8)},
                       tensors={**graph.tensors, "variable:0": replace(x, name="variable:0")})
    with pytest.raises(UnsupportedError, match=r"op0_unidirectional_sequence_lstm\): not supported: LSTM: "
                                               r"one that starts each inference from the zero state .* is "
                                               r"in a model without resource variables\. Here: the model has "
                                               r"resource variables \('variable:0'\)\.$"):
        check_graph(stateful)


def test_recurrent_weights_of_the_wrong_shape_are_refused() -> None:
    graph = load_tflite(SEQUENCE)
    op = graph.ops[0]
    name = op.inputs[5]  # the input gate's recurrent weights [7, 7]
    w = graph.tensor(name)
    bad = replace(graph, tensors={**graph.tensors, name: replace(w, shape=(7, 5), data=w.data[:, :5].copy())})
    with pytest.raises(UnsupportedError, match=rf"Here: {name!r} is int8 \[7, 5\], expected a constant "
                                               r"int8 \[7, 7\]\.$"):
        check_graph(bad)


def _run(model: Path, out: Path, board: str, vectors: int, *options: str) -> dict:
    status = main(["run", str(model), "--board", board, "--out", str(out), "--vectors", str(vectors), "-q",
                   *options])
    report = json.loads((out / "report.json").read_text())
    assert status == 0, report.get("mismatches") or report.get("error")
    assert report["verdict"] == "pass" and report["bit_exact_vectors"] == vectors
    assert report["oracles"] == ["host-reference", "tflm"]
    return report


@pytest.mark.device
@pytest.mark.parametrize("board", ["mps3-an547", "mps2-an386"])
def test_the_keyword_model_runs_bit_exact_on_qemu(board: str, tmp_path: Path) -> None:
    report = _run(KEYWORD, tmp_path / "out", board, 6)
    model_c = code_path(tmp_path / "out" / "model").read_text()
    assert "arm_lstm_unidirectional_s8(" in model_c and "cmsis_nn_lstm_params" in model_c
    assert report["instructions"]["per_inference"] > 50_000


@pytest.mark.device
@pytest.mark.parametrize("path", [SEQUENCE, *(p for p in ONE_LAYER if "b2" in p.stem)], ids=lambda p: p.stem)
def test_sequences_batches_time_major_and_16x8_run_bit_exact_on_qemu(path: Path, tmp_path: Path) -> None:
    _run(path, tmp_path / "out", "mps3-an547", 4)
    model_c = code_path(tmp_path / "out" / "model").read_text()
    function = "arm_lstm_unidirectional_s16(" if "16x8" in path.stem else "arm_lstm_unidirectional_s8("
    assert function in model_c


@pytest.mark.device
@pytest.mark.parametrize("path", [KEYWORD, TESTS / "data" / "s16" / "lstm_16x8_b2.tflite"],
                         ids=lambda p: p.stem)
def test_arm_cmsis_nn_release_runs_the_lstm_bit_exact(path: Path, tmp_path: Path) -> None:
    """The same models linked with Arm's CMSIS-NN (a release brought in locally, 6.0.0 or later:
    its tree or .pack in MCD_ARM_CMSIS_NN), bit-exact with TFLM: nnref's and Arm's LSTM mean the
    same thing."""
    release = os.environ.get("MCD_ARM_CMSIS_NN")
    if not release:
        pytest.skip("Arm's CMSIS-NN is not downloadable here: set MCD_ARM_CMSIS_NN to a release to run this")
    _run(path, tmp_path / "out", "mps3-an547", 4, "--cmsis-nn", release)


@pytest.mark.device
@pytest.mark.parametrize("path", [KEYWORD, TESTS / "data" / "s16" / "lstm_16x8_time_major_b2.tflite"],
                         ids=lambda p: p.stem)
def test_kept_state_runs_bit_exact_on_qemu(path: Path, tmp_path: Path) -> None:
    """Six inferences in a row, the state carried by the device and by TFLM."""
    report = _run(path, tmp_path / "out", "mps3-an547", 6, "--lstm-state", "keep")
    model_c = code_path(tmp_path / "out" / "model").read_text()
    step = "arm_nn_lstm_step_s16(" if "16x8" in path.stem else "arm_nn_lstm_step_s8("
    assert step in model_c and "arm_lstm_unidirectional" not in model_c
    manifest = json.loads((tmp_path / "out" / "model" / "manifest.json").read_text())
    assert len(manifest["variables"]) == 2
    assert report["verdict"] == "pass"

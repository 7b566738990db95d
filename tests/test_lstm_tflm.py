"""UNIDIRECTIONAL_SEQUENCE_LSTM, int8 (converted by TensorFlow) and 16x8 (the same layers
requantized, TensorFlow 2.21 refuses to), batch-major and time-major, batch 1 and 2: TFLM, the
numpy reference (mcudeploy/reference/lstm.py) and nnref agree bit for bit.

TFLM keeps the hidden and cell state in variable tensors from one invoke to the next; the
reference and nnref's arm_nn_lstm_step_* carry the same state. arm_lstm_unidirectional_* starts
from a zero state at every call (as Arm's and TFLM's CMSIS-NN kernel do): it matches TFLM right
after a reset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from nnreflib import NnrefHost, build
from nnreflib_s16 import NnrefS16
from s16_models import Tflm, load, lstm_layer_params, random_input

from mcudeploy.reference.lstm import initial_state, lstm

LSTMS = sorted(p.stem for p in (Path(__file__).parent / "data" / "s16").glob("lstm_*.tflite"))
CALLS = 3


@pytest.fixture(scope="module")
def nnref(tmp_path_factory: pytest.TempPathFactory) -> NnrefS16:
    return NnrefS16(NnrefHost(build(tmp_path_factory.mktemp("nnref"))).dll)


def _time_major(x: np.ndarray, time_major: bool) -> np.ndarray:
    return x if time_major else x.transpose(1, 0, 2)


def test_the_models_cover_int8_16x8_both_layouts_and_batches() -> None:
    layers = [load(n) for n in LSTMS]
    assert {layer.inputs[0].dtype for layer in layers} == {np.int8, np.int16}
    assert {bool(layer.options.timeMajor) for layer in layers} == {True, False}
    assert {layer.inputs[18].shape[0] for layer in layers} == {1, 2}
    assert all(layer.kind == "UNIDIRECTIONAL_SEQUENCE_LSTM" for layer in layers)
    assert {layer.inputs[12].dtype for layer in layers} == {np.int32, np.int64}


@pytest.mark.parametrize("name", LSTMS)
def test_state_carried_between_calls_matches_tflm(name: str, nnref: NnrefS16) -> None:
    layer = load(name)
    p = lstm_layer_params(layer)
    tflm = Tflm(layer)
    rng = np.random.default_rng(len(name))
    state = None
    batch = layer.inputs[18].shape[0]
    hidden, cell = initial_state(p, batch)
    for call in range(CALLS):
        x = random_input(layer.inputs[0], rng)
        oracle = tflm(x)
        expected, state = lstm(x, p, state)
        np.testing.assert_array_equal(expected, oracle, err_msg=f"{name} call {call}: reference vs TFLM")
        steps, hidden, cell = nnref.lstm_steps(_time_major(x, p.time_major), p, hidden, cell)
        np.testing.assert_array_equal(_time_major(steps, p.time_major), oracle,
                                      err_msg=f"{name} call {call}: nnref steps vs TFLM")
        if call > 0:
            assert not np.array_equal(lstm(x, p)[0], oracle), "the carried state made no difference"


@pytest.mark.parametrize("name", LSTMS)
def test_one_call_from_zero_state_matches_tflm_after_reset(name: str, nnref: NnrefS16) -> None:
    layer = load(name)
    p = lstm_layer_params(layer)
    tflm = Tflm(layer)
    rng = np.random.default_rng(7 + len(name))
    for call in range(CALLS):
        x = random_input(layer.inputs[0], rng)
        tflm.reset()
        oracle = tflm(x)
        status, got = nnref.lstm(x, p)
        assert status == 0
        np.testing.assert_array_equal(got, oracle, err_msg=f"{name} call {call}: nnref vs TFLM")
        np.testing.assert_array_equal(lstm(x, p)[0], oracle, err_msg=f"{name} call {call}: reference vs TFLM")

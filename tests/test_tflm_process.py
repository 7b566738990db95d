"""TFLM, the independent oracle, runs in a worker process (mcudeploy/tflm_process.py): when it
crashes, aborts or refuses a file, mcudeploy reports an oracle error (exit 4, verdict "error",
error_kind "oracle") and goes on; it never dies with it."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
from fuzz_tflite import BUNDLED, model_of, serialise
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from mcudeploy.cli import main
from mcudeploy.errors import OracleError
from mcudeploy.frontends.tflite import load_tflite
from mcudeploy.memory import measure_tflm_arena
from mcudeploy.model import Model
from mcudeploy.oracles import Tflm
from mcudeploy.tflm_process import TflmProcess
from mcudeploy.vectors import random_vectors
from mcudeploy.verify.expected import expected_outputs

TINY = BUNDLED.read_bytes()


def _tiny_softmax_scale() -> bytes:
    """The softmax input scale 7.8e-9 (mcudeploy refuses it at import; TFLM aborts on it)."""
    model = model_of(TINY)
    model.subgraphs[0].tensors[20].quantization.scale = [7.8e-9]
    return serialise(model)


def _offline_plan(offset: int) -> bytes:
    """The bundled model with TFLM's "OfflineMemoryAllocation" metadata placing every tensor at
    `offset` in the arena. mcudeploy plans its own arena and reads no metadata; TFLM follows it."""
    model = model_of(TINY)
    count = len(model.subgraphs[0].tensors)
    plan = fb.BufferT()
    plan.data = list(np.array([1, 0, count, *[offset] * count], dtype=np.int32).tobytes())
    model.buffers.append(plan)
    entry = fb.MetadataT()
    entry.name, entry.buffer = b"OfflineMemoryAllocation", len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    return serialise(model)


def test_a_tflm_abort_is_an_oracle_error_naming_the_signal() -> None:
    """TFLM aborts (QuantizeMultiplierGreaterThanOne's check) while preparing the softmax: the
    worker dies with SIGABRT, this process does not."""
    graph = load_tflite(BUNDLED)
    with pytest.raises(OracleError, match=r"^TFLM crashed \(SIGABRT\) while loading the model"):
        Tflm(_tiny_softmax_scale(), graph)


def test_a_worker_killed_by_a_signal_is_an_oracle_error(tmp_path) -> None:
    with TflmProcess(TINY, 1 << 20) as tflm:
        first = tflm.invoke([np.zeros((1, 12, 12, 1), np.int8)], 1)
        assert first[0].shape == (1, 10)
        os.kill(tflm.pid, signal.SIGSEGV)
        # Reported when the request is sent or, if the parent has already seen the worker die,
        # before: both name the signal.
        with pytest.raises(OracleError, match=r"^TFLM (crashed \(SIGSEGV\) while|is not running \(crashed "
                                              r"\(SIGSEGV\)\) before) invoking the model"):
            tflm.invoke([np.zeros((1, 12, 12, 1), np.int8)], 1)


def test_tflm_refusing_a_file_is_an_oracle_error_with_its_message() -> None:
    graph = load_tflite(BUNDLED)
    model = Model(BUNDLED, graph, _offline_plan(1 << 30))
    with pytest.raises(OracleError) as err:
        expected_outputs(model, random_vectors(graph, 2, 0))
    assert str(err.value).startswith("TFLM refused the model while loading the model: TFLM failed to "
                                     "allocate tensors")


def test_tflm_arena_of_a_file_tflm_refuses_is_an_oracle_error() -> None:
    with pytest.raises(OracleError, match="TFLM refused the model while loading the model"):
        measure_tflm_arena(_offline_plan(1 << 30))


def test_oracle_failure_in_run_gives_exit_4_and_a_report(tmp_path, capsys) -> None:
    """A file mcudeploy deploys but TFLM refuses: the device runs, the report is written with
    verdict "error" and error_kind "oracle", `run` exits 4, no staging folder is left."""
    path = tmp_path / "offline_plan.tflite"
    path.write_bytes(_offline_plan(1 << 30))
    out = tmp_path / "out"
    code = main(["run", str(path), "--out", str(out), "--vectors", "2", "--quiet"])
    printed = capsys.readouterr()
    assert code == 4, printed
    assert "Traceback" not in printed.err
    report = json.loads((out / "report.json").read_text())
    assert (report["verdict"], report["error_kind"]) == ("error", "oracle")
    assert report["error"].startswith("TFLM refused the model while loading the model")
    assert (report["vectors"], report["bit_exact_vectors"]) == (2, 0)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

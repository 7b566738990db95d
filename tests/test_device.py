"""The whole path on QEMU mps3-an547: `mcudeploy run` as a user runs it, and the test plan's
cases in one firmware image, bit-exact with the host reference and with TFLM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cases import CASES, build_cases

from mcudeploy.cli import main

pytestmark = pytest.mark.device
ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "models" / "tiny_cnn.tflite"


def test_run_bundled_model_passes_with_both_oracles(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    status = main(["run", str(BUNDLED), "--out", str(out), "--vectors", "20", "-q"])
    report = json.loads((out / "report.json").read_text())
    assert status == 0, report
    assert report["verdict"] == "pass"
    assert report["vectors"] == 20 and report["bit_exact_vectors"] == 20
    assert report["mismatched_vectors"] == 0 and report["mismatches"] == []
    assert report["board"] == "mps3-an547" and report["runner"] == "qemu"
    assert report["oracles"] == ["host-reference", "tflm"]
    assert report["instructions"]["per_inference"] > 1000
    assert (out / "report.txt").read_text().count("PASS") == 1
    assert (out / "build" / "firmware.elf").is_file()
    assert "20 of 20 bit-exact" in capsys.readouterr().out


def test_run_with_user_inputs_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    inputs = BUNDLED.with_name("tiny_cnn_inputs.npy")
    assert main(["run", str(BUNDLED), "--out", str(out), "--inputs", str(inputs), "-q"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["vectors"] == 32 and report["verdict"] == "pass"


def test_every_case_of_the_plan_in_one_image(tmp_path: Path) -> None:
    _, data = build_cases(sorted(CASES), seed=5)
    model = tmp_path / "matrix.tflite"
    model.write_bytes(data)
    out = tmp_path / "out"
    status = main(["run", str(model), "--out", str(out), "--vectors", "5", "-q"])
    report = json.loads((out / "report.json").read_text())
    assert status == 0, report["mismatches"]
    assert report["vectors"] == 5 and report["mismatched_vectors"] == 0

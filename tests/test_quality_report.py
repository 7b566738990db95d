"""Quantization quality where people look (issue 18, item 9): a quantized model that lost its
accuracy is named in the terminal (even with -q), in report.txt and in report.html's banner, with
its output SNR, top-1 agreement and worst layers; the float model's SNR against the device is shown
as an SNR, never as a bit-exact difference of 0.

The lossy model is a real failure users meet: calibration data with a few samples 200 times too
large (a unit mistake) stretch every range, so the int8 classifier answers one class whatever the
input while the float model still separates them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnxgen import OnnxBuilder

from mcudeploy.cli import main
from mcudeploy.model import ImportOptions, import_model
from mcudeploy.quantize.quality import TOP1_WARN_BELOW


def _classifier(tmp_path: Path, outliers: int) -> tuple[Path, Path]:
    """Gemm, Relu, Gemm to 10 classes; 24 calibration samples of which the last `outliers` are
    200 times too large (the quality is measured on the first 16, all of normal size)."""
    b = OnnxBuilder(seed=4)
    logits = b.gemm(b.node("Relu", [b.gemm(b.input((1, 64)), 64, 32)]), 32, 10)
    path = b.save([logits], tmp_path / "classifier.onnx")
    samples = np.random.default_rng(5).normal(0, 1, (24, 1, 64)).astype(np.float32)
    samples[24 - outliers:] *= 200
    cal = tmp_path / "cal.npz"
    np.savez(cal, x0=samples)
    return path, cal


def test_a_classifier_that_lost_its_top1_is_warned_about(tmp_path: Path) -> None:
    path, cal = _classifier(tmp_path, outliers=4)
    quality = import_model(path, ImportOptions(calibration=cal)).quality
    assert quality is not None and quality.samples == 16
    (output, agreement), = quality.top1_agreement.items()
    assert agreement < 0.5  # the float model's class, kept on fewer than half the samples
    assert quality.warning is not None
    assert (f"int8 top-1 class differs from the float model's (agreement {output} {100 * agreement:.0f} % "
            "of 16 samples)") in quality.warning
    assert "int8 output SNR below 20 dB" in quality.warning and "worst layers: " in quality.warning

    path, cal = _classifier(tmp_path, outliers=0)
    quality = import_model(path, ImportOptions(calibration=cal)).quality
    assert quality is not None and quality.warning is None
    assert min(quality.top1_agreement.values()) >= TOP1_WARN_BELOW


def test_quiet_build_still_prints_the_quality_and_the_warning(tmp_path: Path, capsys) -> None:
    path, cal = _classifier(tmp_path, outliers=4)
    assert main(["build", str(path), "--calibration", str(cal), "--out", str(tmp_path / "out"), "-q"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert ("quantized: ranges from 24 calibration samples, quality measured on the first 16: "
            "output SNR ") in err
    assert ", top-1 agreement " in err
    assert "warning: int8 output SNR below 20 dB" in err and "int8 top-1 class differs" in err


def _words(table: str) -> str:
    """A printed table's text, its borders dropped and its lines joined (cells wrap)."""
    return " ".join(table.replace("│", " ").split())


@pytest.mark.device
def test_every_report_of_a_run_shows_the_lost_accuracy(tmp_path: Path, capsys) -> None:
    path, cal = _classifier(tmp_path, outliers=4)
    out = tmp_path / "out"
    # bit-exact with both int8 oracles, but far from the float model: the run fails on the SNR floor
    assert main(["run", str(path), "--calibration", str(cal), "--out", str(out), "--vectors", "4", "-q"]) == 1
    terminal = _words(capsys.readouterr().out)
    report = json.loads((out / "report.json").read_text())
    assert report["bit_exact_vectors"] == 4 and report["verdict"] == "fail"
    assert report["float_oracle"]["passed"] is False
    warning = report["quantization"]["warning"]
    text = _words((out / "report.txt").read_text())
    for shown in (terminal, text):
        assert "4 of 4 bit-exact with host-reference, tflm " in shown
        assert "QUANTIZATION" in shown and "lost accuracy: int8 output SNR below 20 dB" in shown
        assert "top-1 agreement" in shown and "worst layers" in shown
        assert "device outputs against onnxruntime:" in shown and "(BELOW the 15.0 dB floor)" in shown
    page = (out / "report.html").read_text()
    banner = page[page.index('<header id="verdict"'):page.index("</header>")]
    assert f'<p id="quality-warning" class="quality-warning">QUANTIZATION LOST ACCURACY: {warning}</p>' \
        in banner.replace("&#39;", "'")
    assert "bit-exact with host-reference, tflm " in " ".join(banner.split())  # not the float model
    assert '<h2 id="quantization">Quantization</h2>' in page
    assert 'aria-label="SNR against the float model (dB)"' in page
    assert "onnxruntime-float 0" not in page  # the old chart's false "no difference" bars
    snr = report["float_oracle"]["snr_db"]
    (name, value), = snr.items()
    assert f"{name} {value:.1f} dB" in page

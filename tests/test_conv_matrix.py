"""The convolution matrix on QEMU, from float ONNX: every grouping (standard, grouped 2 and C/4,
depthwise with channel multiplier 1-3) x stride 1-2 x dilation 1-2 x batch 1 and 3 x Conv1D and
Conv2D x SAME / VALID / asymmetric padding, with odd sizes and channel counts.

All 576 layers run on the device, four firmware images (one per batch size and dimensionality),
each layer its own output: bit-exact with the host reference and TFLM, and within the float-noise
floor of onnxruntime. Nothing in the matrix is refused.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from onnxgen import OnnxBuilder

from mcudeploy.cli import main

pytestmark = pytest.mark.device

C_IN = 20  # C/4 = 5: groups 1, 2, 5 and 20 (depthwise)
GROUPS = (1, 2, C_IN // 4, C_IN)
MULTIPLIERS = (1, 2, 3)
STRIDES, DILATIONS = (1, 2), (1, 2)
PADDINGS = ("same", "valid", "asymmetric")
FLOOR_DB = 30.0


def matrix_model(tmp_path: Path, batch: int, dims: int) -> tuple[Path, Path, int]:
    """One model: one input, one conv output per matrix point of this batch and dimensionality."""
    b = OnnxBuilder(seed=batch * 10 + dims)
    shape = (batch, C_IN, 9, 7) if dims == 2 else (batch, C_IN, 11)
    x = b.input(shape)
    outputs = []
    for group, mult, stride, dilation, padding in itertools.product(
            GROUPS, MULTIPLIERS, STRIDES, DILATIONS, PADDINGS):
        c_out = C_IN * mult if group == C_IN else 10 * mult
        kernel = (3, 3) if dims == 2 else (3,)
        effective = 2 * dilation + 1
        attrs = {"strides": [stride] * dims, "dilations": [dilation] * dims}
        if padding == "same":
            pads = [effective // 2] * (2 * dims)
        elif padding == "valid":
            pads = [0] * (2 * dims)
        else:
            pads = [2, 0, 0, 1] if dims == 2 else [2, 1]
        outputs.append(b.conv(x, C_IN, c_out, kernel=kernel, group=group, pads=pads, **attrs))
    model = b.save(outputs, tmp_path / f"matrix_b{batch}_{dims}d.onnx")
    return model, b.calibration(tmp_path / "cal.npz", count=16), len(outputs)


@pytest.mark.parametrize(("batch", "dims"), [(1, 2), (3, 2), (1, 1), (3, 1)])
def test_conv_matrix_on_qemu(tmp_path: Path, batch: int, dims: int) -> None:
    model, calibration, layers = matrix_model(tmp_path, batch, dims)
    assert layers == len(GROUPS) * len(MULTIPLIERS) * 2 * 2 * len(PADDINGS)
    out = tmp_path / "out"
    status = main(["run", str(model), "--calibration", str(calibration), "--vectors", "3",
                   "--out", str(out), "-q"])
    report = json.loads((out / "report.json").read_text())
    assert report["mismatched_vectors"] == 0, report["mismatches"][:5]
    assert report["oracles"] == ["host-reference", "tflm", "onnxruntime-float"]
    snr = report["float_oracle"]["snr_db"]
    assert len(snr) == layers
    worst = min(snr, key=snr.get)
    assert snr[worst] >= FLOOR_DB, f"{worst}: {snr[worst]} dB"
    assert status == 0 and report["verdict"] == "pass"
    print(f"batch {batch}, {dims}-D: {layers} layers bit-exact; float SNR "
          f"{min(snr.values()):.1f}..{max(snr.values()):.1f} dB")

"""The reports a person reads: report.json's stable names, the terminal summary (colour only on a
terminal), and report.html rendered by headless Chromium (Debian's `chromium`) to check that a
person sees the verdict."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from cases import build_case

from mcudeploy import terminal
from mcudeploy.boards import load_board
from mcudeploy.codegen import generate
from mcudeploy.nnlib import nnref_library
from mcudeploy.reference import run_graph
from mcudeploy.report import RunReport
from mcudeploy.report.html import render_html
from mcudeploy.report.text import print_report, render_text
from mcudeploy.vectors import random_vectors
from mcudeploy.verify.compare import Mismatch
from mcudeploy.verify.localise import localise

BANNER = {"pass": (0x1A, 0x7F, 0x37), "fail": (0xCF, 0x22, 0x2E), "error": (0xBC, 0x4C, 0x00)}
STABLE = ("verdict", "vectors", "mismatched_vectors", "board", "runner", "oracles")


def _report(verdict: str, tmp_path: Path) -> RunReport:
    """A report as a run of each verdict writes it; the fail one carries a real localisation."""
    report = RunReport(model="tiny_cnn.tflite", board="mps3-an547", runner="qemu", library="nnref",
                       oracles=["host-reference", "tflm"], verdict=verdict, vectors=20,
                       bit_exact_vectors=20, model_info={"hash": "70d25a5a591483fc", "layers": 9,
                                                         "arena_bytes": 1440, "lower_bound": 1440,
                                                         "weight_bytes": 2120},
                       firmware={"flash_bytes": 9860, "weights_bytes": 2160, "ram_bytes": 19048,
                                 "code": 7700, "weights": 2160, "data": 0, "bss": 1224,
                                 "arena": 1440, "stack": 16384},
                       timing={"build_seconds": 0.6, "run_seconds": 0.7},
                       instructions={"per_inference": 546770, "method": "QEMU -icount shift=0",
                                     "per_layer": [{"layer": 0, "name": "l0_conv2d",
                                                    "instructions": 415938}]})
    if verdict == "fail":
        graph, _ = build_case("depthwise_m1")
        manifest = generate(graph, load_board("mps3-an547"), nnref_library(), tmp_path, source="dw")
        vector = random_vectors(graph, 1, seed=1)[0]
        values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
        got = values[manifest.tensors[0].name].copy()
        got[..., 3] = np.clip(got[..., 3].astype(int) + 3, -128, 127)
        report.localisation = localise(manifest, graph, 2, vector, {0: got.tobytes()})
        report.mismatches = [Mismatch(2, 0, o, 5, 3, [0, 1, 2, 3]) for o in report.oracles]
        report.bit_exact_vectors, report.mismatched_vectors = 19, 1
    if verdict == "error":
        report.vectors = report.bit_exact_vectors = 5
        report.error = "vector 5: no answer to INVOKE within 2.0 s: the device hangs"
        report.error_kind = "hang"
    return report


def test_report_json_keeps_its_stable_names(tmp_path: Path) -> None:
    report = _report("fail", tmp_path)
    report.write(tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    assert all(name in data for name in STABLE)
    assert data["verdict"] == "fail" and data["mismatched_vectors"] == 1
    assert data["localisation"]["first_divergent"] == 0
    assert data["localisation"]["layers"][0]["pattern"]["channels"] == [3]
    assert {p.name for p in tmp_path.glob("report.*")} == {"report.json", "report.txt", "report.html"}


def test_terminal_colour_only_on_a_terminal(tmp_path: Path) -> None:
    report = _report("fail", tmp_path)
    tty = io.StringIO()
    print_report(report, terminal.console(file=tty, force_terminal=True, width=120))
    assert "\x1b[" in tty.getvalue()
    text = render_text(report)
    assert "\x1b[" not in text
    assert "FAIL" in text and "19 of 20 bit-exact" in text
    assert "channels 3 (of 8)" in " ".join(text.split())


def test_html_is_self_contained(tmp_path: Path) -> None:
    page = render_html(_report("fail", tmp_path))
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page and page.count("<svg") >= 5  # outputs, 2 layer plots, 2 heatmaps


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: scripts/setup.sh installs it")
        pytest.skip("chromium is not installed (scripts/setup.sh installs it); cannot render HTML")
    return found


def _chromium_args(tmp_path: Path) -> list[str]:
    return [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'chrome'}"]


def _png_rows(path: Path, rows: int) -> np.ndarray:
    """The first `rows` rows of an 8-bit RGB/RGBA PNG, as an array (enough PNG for a test)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, _, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    out = np.zeros((rows, stride), dtype=np.int32)
    previous = np.zeros(stride, dtype=np.int32)
    for r in range(rows):
        line = raw[r * (stride + 1) : (r + 1) * (stride + 1)]
        kind, row = line[0], np.frombuffer(line[1:], dtype=np.uint8).astype(np.int32)
        if kind == 2:
            row = (row + previous) & 0xFF
        elif kind in (1, 3, 4):
            row = row.copy()
            for i in range(stride):
                a = row[i - channels] if i >= channels else 0
                b, c = previous[i], previous[i - channels] if i >= channels else 0
                if kind == 1:
                    row[i] = (row[i] + a) & 0xFF
                elif kind == 3:
                    row[i] = (row[i] + (a + b) // 2) & 0xFF
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    row[i] = (row[i] + pred) & 0xFF
        out[r] = previous = row
    return out.reshape(rows, width, channels)[..., :3]


@pytest.mark.parametrize("verdict", ["pass", "fail", "error"])
def test_chromium_shows_the_verdict(verdict: str, tmp_path: Path) -> None:
    report = _report(verdict, tmp_path)
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    shot = tmp_path / "report.png"
    run = subprocess.run([*_chromium_args(tmp_path), f"--screenshot={shot}", "--window-size=1000,700",
                          page.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.is_file(), run.stderr
    pixels = _png_rows(shot, 40)
    banner = pixels[30, 960]  # right of the verdict word, inside the banner
    assert np.abs(banner - np.array(BANNER[verdict])).max() <= 8, banner
    dom = subprocess.run([*_chromium_args(tmp_path), "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert f'<header id="verdict" class="verdict {verdict}">' in dom
    assert f"<h1>{verdict.upper()}</h1>" in dom
    if verdict == "fail":
        assert "is the first to diverge" in dom
    if verdict == "error":
        assert "the device hangs" in dom

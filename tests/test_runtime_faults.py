"""Faults and failures around the runtime on QEMU (mps3-an547): a CPU fault reported with its PC
and the function it hit, QEMU killed mid-run, a closed port, QEMU reaped on Ctrl-C, QEMU that stops
early or fails to start. Uses tests/firmware/{echo,fault}_model (no CMSIS-NN)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from runtime_firmware import BOARD, SIZE, device, symbol_range

from mcudeploy.boards import Qemu
from mcudeploy.device.protocol import INPUT, CpuFault, Link
from mcudeploy.device.runners.qemu import QemuRunner
from mcudeploy.errors import LinkError

pytestmark = pytest.mark.device


@pytest.mark.parametrize(
    ("case", "words", "function"),
    [
        (0, "BusFault (PRECISERR at BFAR 0xF0000000)", "fault_layer"),
        (1, "UsageFault (UNDEFINSTR)", "fault_layer"),
        (2, "UsageFault (STKOF)", "recurse"),
    ],
    ids=["bus", "undefined", "stack overflow"],
)
def test_fault_is_reported_with_its_pc(fault_elf: Path, case: int, words: str,
                                       function: str) -> None:
    with device(fault_elf) as (runner, link):
        link.write(INPUT, 0, bytes([case, 0, 0, 0]))
        with pytest.raises(CpuFault) as exc:
            link.invoke()
        assert str(exc.value).startswith(f"device fault: {words} at PC")
        assert exc.value.report.pc in symbol_range(fault_elf, function)
        assert runner.exit_status() == 3


def test_qemu_killed_mid_run_is_a_prompt_link_error(echo_elf: Path) -> None:
    with device(echo_elf) as (runner, link):
        link.hello()
        assert runner.process is not None
        runner.process.kill()
        start = time.monotonic()
        with pytest.raises(LinkError, match="closed"):
            link.read(INPUT, 0, SIZE)
        assert time.monotonic() - start < 1.0


def test_closed_port_is_a_link_error(echo_elf: Path) -> None:
    with device(echo_elf) as (_, link):
        link.port.close()
        with pytest.raises(LinkError, match="closed"):
            link.hello()


def test_runner_reaps_qemu_on_interrupt(echo_elf: Path) -> None:
    runner = QemuRunner(BOARD, echo_elf)
    with pytest.raises(KeyboardInterrupt), runner:
        raise KeyboardInterrupt
    assert runner.process is not None and runner.process.returncode is not None


def test_qemu_stopping_early_is_reported_with_its_log(tmp_path: Path) -> None:
    with pytest.raises(LinkError, match=r"QEMU exited with status 1: .*missing\.elf"), \
            QemuRunner(BOARD, tmp_path / "missing.elf") as port:
        Link(port).hello()


def test_qemu_failing_to_start_is_reported_with_its_log(echo_elf: Path) -> None:
    board = BOARD.model_copy(update={"qemu": Qemu(machine="no-such-board", instructions_per_tick=1)})
    with pytest.raises(LinkError, match=r"before serving its UART: .*unsupported machine type"), \
            QemuRunner(board, echo_elf):
        pass



"""The UART's receive interrupt on QEMU: an idle device sleeps (WFI) and wakes for each byte, a
board without `rx_irq` polls, and on each QEMU board file's emulator the line a received byte
raises is the board's `rx_irq` (tests/firmware/uart_irq_probe.c)."""

from __future__ import annotations

import os
import random
import subprocess
import time
from pathlib import Path

import pytest
import serial
from runtime_firmware import BOARD, FIRMWARE, NO_LIBRARY, SIZE, device, echo, symbol_range

from mcudeploy.boards import Board, available_boards, load_board
from mcudeploy.build import board_defines, build_firmware, render_linker_script
from mcudeploy.device.protocol import INPUT, OUTPUT, Link
from mcudeploy.device.runners.qemu import QemuRunner
from mcudeploy.toolchain import TOOLCHAIN_PREFIX, cpu_flags

pytestmark = pytest.mark.device


def _cpu_seconds(process: subprocess.Popen) -> float:
    """User plus system CPU time of a running process (Linux /proc)."""
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_share(process: subprocess.Popen, seconds: float) -> float:
    start_cpu, start = _cpu_seconds(process), time.monotonic()
    time.sleep(seconds)
    return (_cpu_seconds(process) - start_cpu) / (time.monotonic() - start)


def test_idle_device_sleeps_and_wakes_for_each_byte(echo_elf: Path) -> None:
    """Waiting for a request, the core sleeps in WFI until the UART's receive interrupt: QEMU
    uses a few per cent of a core instead of a whole one (polling measured 60-125 %)."""
    with device(echo_elf) as (runner, link):
        assert runner.process is not None
        link.hello()
        idle = _cpu_share(runner.process, 1.0)
        data = random.Random(5).randbytes(SIZE)
        for _ in range(20):  # ~16 KB each way, one wake-up per byte received
            link.write(INPUT, 0, data)
            assert link.read(INPUT, 0, SIZE) == data
        assert link.stats.retries == 0
    assert idle < 0.2, f"QEMU used {idle:.0%} of a core while the device waited for a byte"


def test_board_without_rx_irq_polls(tmp_path: Path) -> None:
    """uart.rx_irq is optional: without it the vector table stops at SysTick and getc polls."""
    board = BOARD.model_copy(update={"uart": BOARD.uart.model_copy(update={"rx_irq": None})})
    elf = build_firmware(board, FIRMWARE / "echo_model", tmp_path, NO_LIBRARY)
    assert len(symbol_range(elf, "mcd_vectors")) == 16 * 4
    data = random.Random(6).randbytes(SIZE)
    with QemuRunner(board, elf) as port:
        link = Link(port)
        link.write(INPUT, 0, data)
        assert link.invoke().status == 0
        assert link.read(OUTPUT, 0, SIZE) == echo(data)[1]


def _build_probe(board: Board, out: Path) -> Path:
    """tests/firmware/uart_irq_probe.c linked for `board` by the board's own linker script."""
    out.mkdir(parents=True, exist_ok=True)
    script = out / "probe.ld"
    script.write_text(render_linker_script(board))
    elf = out / "probe.elf"
    defines = [f"-D{k}={v}" for k, v in board_defines(board).items()]
    subprocess.run([f"{TOOLCHAIN_PREFIX}gcc", *cpu_flags(board), "-std=c11", "-Os", "-Wall", "-Wextra",
                    "-Werror", "-nostdlib", *defines, "-T", str(script),
                    str(FIRMWARE / "uart_irq_probe.c"), "-o", str(elf)], check=True)
    return elf


def _pending_lines(port: serial.SerialBase, tag: bytes) -> set[int]:
    """The NVIC lines in the probe's next `tag` report."""
    line = port.read_until(b"\n")
    words = line.split()
    assert words[0] == tag, line
    return {32 * i + bit for i, word in enumerate(words[1:]) for bit in range(32)
            if int(word, 16) >> bit & 1}


QEMU_BOARDS = [name for name in available_boards() if "qemu" in load_board(name).runners]


@pytest.mark.parametrize("name", QEMU_BOARDS)
def test_board_rx_irq_is_the_line_a_received_byte_raises(name: str, tmp_path: Path) -> None:
    """The emulator, not a manual, says which NVIC line is the UART's receive interrupt: it pends
    when a byte arrives (RX interrupt enabled) and not for the transmit interrupt, which rules out
    the UART's combined line on the MPS2+/MPS3 images."""
    board = load_board(name)
    elf = _build_probe(board, tmp_path)
    runner = QemuRunner(board, elf)
    with runner as port:
        port.timeout = 5.0
        tx = _pending_lines(port, b"tx")
        assert port.read_until(b"\n") == b"send\n"
        port.write(b"x")
        rx = _pending_lines(port, b"rx")
        assert runner.exit_status() == 0
    assert rx - tx == {board.uart.rx_irq}, (f"{name}: rx_irq = {board.uart.rx_irq}, but a byte "
                                            f"raised {sorted(rx)}, the transmit interrupt {sorted(tx)}")

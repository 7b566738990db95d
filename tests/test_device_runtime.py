"""The firmware runtime on QEMU (mps3-an547): protocol engine, model calls, timing, faults, sleep
while idle, and the host's Link and QemuRunner around it. Uses tests/firmware/{echo,fault}_model
(no CMSIS-NN). The other QEMU boards run the same firmware in test_device_boards.py; here, each
QEMU board file's UART receive interrupt is checked on its emulator (tests/firmware/uart_irq_probe.c)."""

from __future__ import annotations

import os
import random
import struct
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import serial
from elftools.elf.elffile import ELFFile

from mcudeploy.boards import Board, Qemu, available_boards, load_board
from mcudeploy.build import NNLibrary, board_defines, build_firmware, firmware_sizes, render_linker_script
from mcudeploy.device.protocol import (
    INPUT,
    OUTPUT,
    TENSOR,
    CpuFault,
    Link,
    Message,
    Packet,
    decode_frame,
    encode_frame,
)
from mcudeploy.device.runners.qemu import QemuRunner
from mcudeploy.errors import LinkError
from mcudeploy.toolchain import TOOLCHAIN_PREFIX, cpu_flags

pytestmark = pytest.mark.device

BOARD = load_board("mps3-an547")
FIRMWARE = Path(__file__).parent / "firmware"
NO_LIBRARY = NNLibrary("none", (), ())
SIZE = 300
MASK = 0x5A


def echo(data: bytes) -> tuple[bytes, bytes]:
    """The echo model's layer-0 tensor and output for `data` (see its model.c)."""
    t = bytes((data[i] + i % 16 + 1) & 0xFF for i in range(SIZE))
    return t, bytes(b ^ MASK for b in reversed(t))


def invocations(link: Link) -> int:
    return struct.unpack("<I", link.read(OUTPUT, 1, 4))[0]


@pytest.fixture(scope="module")
def echo_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_firmware(BOARD, FIRMWARE / "echo_model", tmp_path_factory.mktemp("echo"),
                          NO_LIBRARY)


@pytest.fixture(scope="module")
def fault_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_firmware(BOARD, FIRMWARE / "fault_model", tmp_path_factory.mktemp("fault"),
                          NO_LIBRARY)


@contextmanager
def device(elf: Path, *, icount: bool = False, timeout: float = 2.0,
           retries: int = 3) -> Iterator[tuple[QemuRunner, Link]]:
    """QEMU running `elf` on the an547, and a Link to it."""
    runner = QemuRunner(BOARD, elf, icount=icount)
    with runner as port:
        yield runner, Link(port, timeout=timeout, retries=retries)


def test_hello_describes_the_model(echo_elf: Path) -> None:
    with device(echo_elf) as (_, link):
        info = link.hello()
    assert info.protocol_version == 1
    assert info.max_chunk == 256
    assert info.model_hash == b"echomdl1"
    assert (info.init_status, info.arena_bytes) == (0, 900)
    assert (info.num_layers, info.num_tensors, info.num_inputs, info.num_outputs) == (2, 2, 1, 2)
    assert info.systick_hz == BOARD.clock_hz


PATTERNS = {
    "zeros": bytes(SIZE),
    "ones": b"\xff" * SIZE,
    "run of 253": b"\x07" * 253 + bytes(SIZE - 253),
    "run of 254": b"\x07" * 254 + bytes(SIZE - 254),
    "run of 255": b"\x07" * 255 + bytes(SIZE - 255),
    "sparse zeros": bytes(0 if i % 7 == 0 else i & 0xFF or 1 for i in range(SIZE)),
}


def test_inputs_round_trip_bit_exactly_through_the_device_cobs(echo_elf: Path) -> None:
    with device(echo_elf) as (_, link):
        for data in PATTERNS.values():
            link.write(INPUT, 0, data)
            assert link.read(INPUT, 0, SIZE) == data
        assert link.stats.retries == 0


def test_invoke_computes_the_outputs_bit_exactly(echo_elf: Path) -> None:
    rng = random.Random(7)
    vectors = [rng.randbytes(SIZE) for _ in range(4)] + list(PATTERNS.values())
    with device(echo_elf) as (_, link):
        for n, data in enumerate(vectors, start=1):
            link.write(INPUT, 0, data[:100])
            link.write(INPUT, 0, data[100:], offset=100)
            done = link.invoke()
            assert (done.status, done.layer) == (0, 1)
            assert link.read(OUTPUT, 0, SIZE) == echo(data)[1]
            assert invocations(link) == n


def test_stop_after_layer_0_dumps_its_tensor(echo_elf: Path) -> None:
    data = random.Random(1).randbytes(SIZE)
    with device(echo_elf) as (_, link):
        link.write(INPUT, 0, data)
        done = link.invoke(stop_after=0)
        assert (done.status, done.layer) == (0, 0)
        assert link.read(TENSOR, 0, SIZE) == echo(data)[0]
        assert invocations(link) == 0
        assert link.layer_ticks(2)[1] == 0


def test_layers_are_timed_and_repeatable_under_icount(echo_elf: Path) -> None:
    data = random.Random(2).randbytes(SIZE)
    runs = []
    for _ in range(2):
        with device(echo_elf, icount=True) as (_, link):
            link.write(INPUT, 0, data)
            done = link.invoke()
            runs.append((done.ticks, link.layer_ticks(2)))
    (total, ticks), (total_again, ticks_again) = runs
    assert all(t > 0 for t in ticks)
    assert sum(ticks) <= total
    # Instruction counts are equal; only the SysTick phase at the start differs (+-1 tick).
    assert abs(total - total_again) <= 1
    assert all(abs(a - b) <= 1 for a, b in zip(ticks, ticks_again, strict=True))


def test_failing_layer_stops_the_run(echo_elf: Path) -> None:
    with device(echo_elf) as (_, link):
        link.write(INPUT, 0, b"FAIL")
        done = link.invoke()
        assert (done.status, done.layer) == (-1, 0)
        assert invocations(link) == 0


def test_reset_restores_the_model_state(echo_elf: Path) -> None:
    with device(echo_elf) as (_, link):
        link.invoke()
        link.invoke()
        assert invocations(link) == 2
        link.reset()
        assert invocations(link) == 0


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (lambda link: link.write(OUTPUT, 0, b"x"), "write not allowed"),
        (lambda link: link.read(INPUT, 0, 2, offset=SIZE - 1), "range outside the buffer"),
        (lambda link: link.read(INPUT, 1, 1), "bad index"),
        (lambda link: link.read(7, 0, 1), "bad space"),
        (lambda link: link.invoke(stop_after=2), "bad index"),
    ],
    ids=["write output", "read past end", "input index", "space", "stop index"],
)
def test_device_refuses_bad_requests(echo_elf: Path, request_, message: str) -> None:
    with device(echo_elf) as (_, link):
        with pytest.raises(LinkError, match=message):
            request_(link)
        assert link.hello().model_hash == b"echomdl1"


def test_exit_code_becomes_qemu_exit_status(echo_elf: Path) -> None:
    with device(echo_elf) as (runner, link):
        link.exit(7)
        assert runner.exit_status() == 7


def _frames(port: serial.SerialBase, count: int, timeout: float = 2.0) -> list[Packet]:
    """The next `count` packets from the device."""
    data = bytearray()
    deadline = time.monotonic() + timeout
    while data.count(0) < count and time.monotonic() < deadline:
        data += port.read(max(1, port.in_waiting))
    return [decode_frame(bytes(f)) for f in data.split(b"\0")[:count]]


def test_repeated_request_is_answered_from_the_cache(echo_elf: Path) -> None:
    with device(echo_elf) as (_, link):
        frame = b"\0" + encode_frame(Packet(Message.INVOKE, 0x4242, struct.pack("<H", 0xFFFF)))
        link.port.write(frame + frame)
        first, second = _frames(link.port, 2)
        assert first == second
        assert (first.type, first.seq) == (Message.INVOKE | 0x80, 0x4242)
        assert invocations(link) == 1


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (encode_frame(Packet(Message.HELLO, 1))[:-2] + b"\x55\0", 1),
        (b"\x05\x01\0", 2),
        (b"\x01" * 2000 + b"\0", 3),
        (b"\x04\x01\x02\x03\0", 4),
    ],
    ids=["crc", "cobs", "too long", "too short"],
)
def test_device_naks_bad_frames(echo_elf: Path, frame: bytes, reason: int) -> None:
    with device(echo_elf) as (_, link):
        link.port.write(frame)
        (nak,) = _frames(link.port, 1)
        assert (nak.type, nak.seq, nak.body) == (Message.NAK, 0xFFFF, bytes([reason]))
        assert link.hello().num_layers == 2


def test_link_recovers_from_line_noise(echo_elf: Path) -> None:
    with device(echo_elf) as (_, link):
        link.port.write(b"\x13\x37 noise")
        link.hello()
        assert (link.stats.naks, link.stats.retries) == (1, 1)
        link.write(INPUT, 0, bytes(SIZE))
        assert link.stats.stale == 1
        assert link.read(INPUT, 0, SIZE) == bytes(SIZE)


def test_slow_invoke_is_retried_but_runs_once(echo_elf: Path) -> None:
    with device(echo_elf, timeout=0.1, retries=3) as (_, link):
        link.write(INPUT, 0, b"SLOW" + struct.pack("<I", 100_000_000))
        done = link.invoke(timeout=30.0)  # resent every 0.1 s meanwhile, beyond the 3 retries
        assert (done.status, done.layer) == (0, 1)
        assert link.stats.timeouts >= 1
        assert invocations(link) == 1


def _symbol_range(elf: Path, name: str) -> range:
    with open(elf, "rb") as f:
        (symbol,) = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)
        start = symbol["st_value"] & ~1
        return range(start, start + symbol["st_size"])


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
        assert exc.value.report.pc in _symbol_range(fault_elf, function)
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


def test_image_is_placed_as_the_board_says(echo_elf: Path) -> None:
    with open(echo_elf, "rb") as f:
        elf = ELFFile(f)
        symbols = elf.get_section_by_name(".symtab")
        assert symbols.get_symbol_by_name("mcd_vectors")[0]["st_value"] == 0x00000000
        assert elf.get_section_by_name(".weights")["sh_addr"] == 0x01000000
        assert symbols.get_symbol_by_name("__stack_top__")[0]["st_value"] == 0x20080000
    sizes = firmware_sizes(echo_elf)
    assert (sizes["weights"], sizes["data"], sizes["arena"], sizes["stack"]) == (16, 4, 900, 16384)
    assert 0 < sizes["code"] < 8192


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
    assert len(_symbol_range(elf, "mcd_vectors")) == 16 * 4
    data = random.Random(6).randbytes(SIZE)
    with QemuRunner(board, elf) as port:
        link = Link(port)
        link.write(INPUT, 0, data)
        assert link.invoke().status == 0
        assert link.read(OUTPUT, 0, SIZE) == echo(data)[1]


def test_vector_table_reaches_the_rx_irq(echo_elf: Path) -> None:
    assert BOARD.uart.rx_irq == 33
    vectors = _symbol_range(echo_elf, "mcd_vectors")
    assert len(vectors) == (16 + 33 + 1) * 4
    with open(echo_elf, "rb") as f:
        elf = ELFFile(f)
        (handler,) = elf.get_section_by_name(".symtab").get_symbol_by_name("mcd_uart_rx_irq")
        section = elf.get_section_by_name(".vectors")
        table = section.data()[vectors.start - section["sh_addr"]:][:len(vectors)]
    words = struct.unpack(f"<{len(vectors) // 4}I", table)
    assert words[16 + 33] == handler["st_value"]


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

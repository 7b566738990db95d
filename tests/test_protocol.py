"""The serial protocol: packets, CRC-32, COBS frames and fault decoding on the host; the Link's
adaptive chunks and deadlines against the real runtime on QEMU."""

from __future__ import annotations

import os
import random
import signal
import struct
import time
from pathlib import Path

import pytest
from fault_proxy import Counts, Faults, ProxiedQemuRunner

from mcudeploy.boards import load_board
from mcudeploy.build import build_firmware
from mcudeploy.device.protocol import (
    INPUT,
    DeviceHang,
    FaultReport,
    FrameError,
    Link,
    Packet,
    decode_frame,
    decode_packet,
    encode_frame,
    encode_packet,
)
from mcudeploy.device.runners.qemu import QemuRunner
from mcudeploy.nnlib import NNLibrary

BODIES = {
    "empty": b"",
    "zeros": bytes(10),
    "all byte values": bytes(range(256)),
    "run of 253": b"\x11" * 253 + b"\0" + b"\x22",
    "run of 254": b"\x11" * 254 + b"\0" + b"\x22",
    "run of 255": b"\x11" * 255 + b"\0",
    "run of 508": b"\x33" * 508,
    "trailing zero": b"\x44" * 20 + b"\0",
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_frame_round_trip_has_a_single_zero_at_the_end(body: bytes) -> None:
    packet = Packet(type=0x02, seq=0x1234, body=body)
    frame = encode_frame(packet)
    assert frame.index(0) == len(frame) - 1
    assert decode_frame(frame[:-1]) == packet


def test_packet_layout_is_header_body_crc() -> None:
    data = encode_packet(Packet(type=0x84, seq=0xBEEF, body=b"\x01\x02"))
    assert data[:6] == bytes([0x84, 0x00, 0xEF, 0xBE, 0x01, 0x02])
    assert len(data) == 10


def test_crc_is_crc32_ieee() -> None:
    # The CRC-32 check value: "123456789" -> 0xCBF43926.
    packet = decode_packet(b"123456789" + struct.pack("<I", 0xCBF43926))
    assert packet == Packet(type=ord("1"), seq=0x3433, body=b"56789")


def test_every_single_byte_corruption_is_detected() -> None:
    data = encode_packet(Packet(type=0x03, seq=7, body=b"\xff\xff"))
    for i in range(len(data)):
        for flip in (0x01, 0x80):
            corrupt = bytearray(data)
            corrupt[i] ^= flip
            with pytest.raises(FrameError):
                decode_packet(bytes(corrupt))


def test_short_packet_is_rejected() -> None:
    with pytest.raises(FrameError, match="shorter"):
        decode_packet(b"\x01\x00\x00\x00\x00\x00\x00")


def test_bad_cobs_is_rejected() -> None:
    with pytest.raises(FrameError, match="COBS"):
        decode_frame(b"\x05\x01")


def _report(**registers: int) -> FaultReport:
    fields = dict.fromkeys(("cfsr", "hfsr", "mmfar", "bfar", "lr", "xpsr"), 0)
    return FaultReport(**(fields | {"pc": 0x1234, "exception": 3} | registers))


@pytest.mark.parametrize(
    ("registers", "words"),
    [
        ({"exception": 5, "cfsr": 0x8200, "bfar": 0xF0000000},
         "BusFault (PRECISERR at BFAR 0xF0000000)"),
        ({"exception": 6, "cfsr": 0x10000}, "UsageFault (UNDEFINSTR)"),
        ({"exception": 6, "cfsr": 0x100000}, "UsageFault (STKOF)"),
        ({"exception": 4, "cfsr": 0x82, "mmfar": 0x10}, "MemManage (DACCVIOL at MMFAR 0x00000010)"),
        ({"exception": 3, "cfsr": 0x80000, "hfsr": 0x40000000}, "HardFault (NOCP, FORCED)"),
        ({"exception": 3, "cfsr": 0x400}, "HardFault (IMPRECISERR)"),
    ],
)
def test_fault_registers_are_decoded_into_words(registers: dict[str, int], words: str) -> None:
    message = _report(**registers).describe()
    assert message.startswith(f"device fault: {words} at PC 0x00001234")
    assert "\n" not in message


def test_fault_words_name_the_function_and_the_meaning() -> None:
    report = _report(exception=6, cfsr=0x100000, pc=0x2000)
    assert report.describe("recurse+0x8") == (
        "device fault: UsageFault (STKOF) at PC 0x00002000 in recurse+0x8, LR 0x00000000, "
        "xPSR 0x00000000: stack overflow (the stack limit was crossed)")
    assert report.causes() == [("STKOF", "stack overflow (the stack limit was crossed)")]
    bus = _report(exception=5, cfsr=0x200, bfar=0x1234)  # BFARVALID clear: no address given
    assert bus.describe().endswith("(PRECISERR) at PC 0x00001234, LR 0x00000000, xPSR 0x00000000: "
                                   "a load or store that no memory answered")


# ---- The Link against the real runtime on QEMU (tests/firmware/echo_model) ------------------

ECHO = Path(__file__).parent / "firmware" / "echo_model"
BOARD = load_board("mps3-an547")


@pytest.fixture(scope="module")
def echo_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_firmware(BOARD, ECHO, tmp_path_factory.mktemp("echo"), NNLibrary("none", (), ()))


@pytest.mark.device
def test_chunk_halves_on_a_damaged_line_and_grows_back_on_a_clean_one(echo_elf: Path) -> None:
    data = random.Random(5).randbytes(300)
    runner = ProxiedQemuRunner(BOARD, echo_elf, False, Faults(corrupt=0.01), seed=3, counts=Counts())
    with runner as port:
        link = Link(port)
        link.hello()
        for _ in range(3):
            link.write(INPUT, 0, data)
            assert link.read(INPUT, 0, 300) == data
        assert link.stats.chunk_halvings >= 2 and link.chunk < 256
        assert link.stats.smallest_chunk == min(link.stats.smallest_chunk, link.chunk)
        assert runner.proxy is not None
        runner.proxy.faults = Faults()
        for _ in range(40):
            assert link.read(INPUT, 0, 300) == data
        assert link.chunk == 256


@pytest.mark.device
def test_an_answer_still_arriving_at_the_deadline_is_waited_for_not_asked_again(echo_elf: Path) -> None:
    """A slow line to the host (every byte held up to 4 ms: a 270-byte answer takes about half a
    second) with a 0.2 s answer timeout: each answer is still arriving when the timeout passes, and is read
    whole instead of being asked for again (a request resent to a device that stopped after its
    answer, a fault report, made the port drop the answer's unread bytes)."""
    data = random.Random(7).randbytes(256)
    counts = Counts()
    slow = Faults(delay=1.0, max_delay=0.004, to_device=False)
    runner = ProxiedQemuRunner(BOARD, echo_elf, False, slow, seed=5, counts=counts)
    with runner as port:
        link = Link(port, timeout=0.2)
        link.hello()
        link.write(INPUT, 0, data)
        started = time.monotonic()
        assert link.read(INPUT, 0, 256) == data
        assert time.monotonic() - started > 0.2  # the answer did outlast the timeout
        assert (link.stats.retries, link.stats.timeouts, link.stats.frames_sent) == (0, 0, 3)


@pytest.mark.device
def test_invoke_past_its_deadline_is_a_hang(echo_elf: Path) -> None:
    runner = QemuRunner(BOARD, echo_elf)
    with runner as port:
        link = Link(port, timeout=0.2)
        link.write(INPUT, 0, b"SLOW" + struct.pack("<I", 4_000_000_000))
        started = time.monotonic()
        with pytest.raises(DeviceHang, match=r"no answer to INVOKE within 1\.\d s: the device hangs"):
            link.invoke(timeout=1.0)
        assert time.monotonic() - started < 1.5


@pytest.mark.device
def test_silent_device_is_a_hang_after_bounded_retries(echo_elf: Path) -> None:
    runner = QemuRunner(BOARD, echo_elf)
    with runner as port:
        link = Link(port, timeout=0.2, retries=3)
        link.hello()
        assert runner.process is not None
        os.kill(runner.process.pid, signal.SIGSTOP)  # QEMU frozen, its socket still open
        try:
            started = time.monotonic()
            with pytest.raises(DeviceHang, match=r"no answer to READ in 4 tries over 0\.\d s: the "
                                                 r"device does not respond"):
                link.read(INPUT, 0, 4)
            assert time.monotonic() - started < 1.5
        finally:
            os.kill(runner.process.pid, signal.SIGCONT)

"""The firmware runtime's protocol engine on QEMU (mps3-an547), with the host's Link: HELLO,
WRITE and READ through COBS, INVOKE (whole and up to a layer), layer timing, a layer's error status,
RESET, EXIT, the answer cache, NAKs, line noise, a slow INVOKE. Uses tests/firmware/echo_model (no
CMSIS-NN); the other QEMU boards run the same firmware in test_device_boards.py."""

from __future__ import annotations

import random
import struct
import time
from pathlib import Path

import pytest
import serial
from runtime_firmware import BOARD, SIZE, device, echo, invocations

from mcudeploy.device.protocol import INPUT, OUTPUT, TENSOR, Message, Packet, decode_frame, encode_frame
from mcudeploy.errors import LinkError

pytestmark = pytest.mark.device


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
    """Also across a damaged frame (NAKed) received in between into the frame buffer, which held
    the answer: the INVOKE's answer is kept apart."""
    with device(echo_elf) as (_, link):
        frame = b"\0" + encode_frame(Packet(Message.INVOKE, 0x4242, struct.pack("<H", 0xFFFF)))
        link.port.write(frame + frame + b"\x05\x01\0" + frame)
        first, second, nak, third = _frames(link.port, 4)
        assert first == second == third
        assert (first.type, first.seq) == (Message.INVOKE | 0x80, 0x4242)
        assert (nak.type, nak.body) == (Message.NAK, b"\x02")
        assert invocations(link) == 1


def _read(space: int, index: int, offset: int, length: int) -> bytes:
    return struct.pack("<BHIH", space, index, offset, length)


@pytest.mark.parametrize(
    ("kind", "body", "answer"),
    [
        (Message.READ, _read(0, 0, 20, 256), bytes(range(20, 256)) + bytes(range(20))),
        (Message.READ, _read(2, 7, 0, 4), b"\x03"),  # an ERROR: bad index
        (Message.WRITE, struct.pack("<BHI", 0, 0, 0) + bytes(range(256)), b""),
        (Message.HELLO, b"", None),
        (Message.STACK, b"", None),
    ],
    ids=["read 256 B", "error", "write 256 B", "hello", "stack"],
)
def test_each_answer_to_a_repeated_request_is_the_same_bytes(echo_elf: Path, kind: Message, body: bytes,
                                                            answer: bytes | None) -> None:
    """The answer is built over the request in the one frame buffer, so a repeat of a request with
    no side effects is executed again: its answer must be the same, byte for byte, up to the longest
    (a READ of max_chunk bytes)."""
    data = bytes(range(256)) + bytes(range(SIZE - 256))
    with device(echo_elf) as (_, link):
        link.write(INPUT, 0, data)
        frame = b"\0" + encode_frame(Packet(kind, 0x0707, body))
        link.port.write(frame + frame)
        first, second = _frames(link.port, 2)
        assert first == second and first.seq == 0x0707
        assert first.type == (Message.ERROR if kind == Message.READ and len(answer or b"") == 1
                              else kind | 0x80)
        if answer is not None:
            assert first.body == answer
        assert link.read(INPUT, 0, SIZE) == data


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



"""Host-side framing of the serial protocol: packets, CRC-32, COBS frames, fault decoding."""

from __future__ import annotations

import struct

import pytest

from mcudeploy.protocol import (
    FaultReport,
    FrameError,
    Packet,
    decode_frame,
    decode_packet,
    encode_frame,
    encode_packet,
)

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

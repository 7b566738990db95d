"""The host end of the serial protocol (docs/protocol.md): packets, COBS frames and `Link`, which
drives one device over a pyserial port with bounded retries."""

from __future__ import annotations

import random
import struct
import time
import zlib
from dataclasses import dataclass
from enum import IntEnum

import serial
from cobs import cobs

from mcudeploy.errors import DeviceFault, LinkError
from mcudeploy.faults import CpuFault, FaultReport

PROTOCOL_VERSION = 1
UNSOLICITED_SEQ = 0xFFFF
ALL_LAYERS = 0xFFFF
_HEADER = struct.Struct("<BBH")
_INFO = struct.Struct("<HH8siIHHBBI")
_DONE = struct.Struct("<iHI")
_ADDRESS = struct.Struct("<BHI")
_FAULT = struct.Struct("<8I")
_STACK = struct.Struct("<II")
_POLL_SECONDS = 0.05
_LONGEST_FRAME = 4096  # bytes with no delimiter yet that still make a frame (the device sends < 300)
_GROW_AFTER = 16
_HALVE_AFTER = 2
_NO_ANSWER = "no answer"


class Message(IntEnum):
    HELLO = 0x01
    WRITE = 0x02
    INVOKE = 0x03
    READ = 0x04
    RESET = 0x05
    EXIT = 0x06
    STACK = 0x07
    ERROR = 0xEE
    NAK = 0xEF
    FAULT = 0xF0
    OVERFLOW = 0xF1


class Space(IntEnum):
    """The device memories READ and WRITE address."""

    INPUT = 0
    OUTPUT = 1
    TENSOR = 2
    TICKS = 3


INPUT, OUTPUT, TENSOR, TICKS = Space

_ERRORS = {
    1: "unknown request type", 2: "bad space", 3: "bad index", 4: "range outside the buffer",
    5: "length above max_chunk", 6: "body too short", 7: "write not allowed",
    8: "more layers than the runtime's MCD_MAX_LAYERS",
}
_NAKS = {1: "CRC mismatch", 2: "bad COBS", 3: "frame too long", 4: "frame too short"}


class FrameError(LinkError):
    """A frame that is not a valid packet (COBS, length or CRC)."""


@dataclass(frozen=True)
class Packet:
    type: int
    seq: int
    body: bytes = b""


def encode_packet(packet: Packet) -> bytes:
    """Header, body and CRC-32: the bytes a frame carries."""
    data = _HEADER.pack(packet.type, 0, packet.seq) + packet.body
    return data + struct.pack("<I", zlib.crc32(data))


def decode_packet(data: bytes) -> Packet:
    """The packet in `data` (a decoded frame); FrameError if it is too short or its CRC is wrong."""
    if len(data) < _HEADER.size + 4:
        raise FrameError(f"packet of {len(data)} bytes is shorter than header and CRC")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if zlib.crc32(data[:-4]) != crc:
        raise FrameError("packet CRC mismatch")
    type_, _flags, seq = _HEADER.unpack_from(data)
    return Packet(type_, seq, bytes(data[_HEADER.size : -4]))


def encode_frame(packet: Packet) -> bytes:
    """The packet as a COBS frame with its 0x00 delimiter."""
    return cobs.encode(encode_packet(packet)) + b"\0"


def decode_frame(frame: bytes) -> Packet:
    """The packet in a frame given without its delimiter."""
    try:
        return decode_packet(cobs.decode(frame))
    except cobs.DecodeError as exc:
        raise FrameError(f"bad COBS frame: {exc}") from exc


@dataclass(frozen=True)
class DeviceInfo:
    """The device's answer to HELLO."""

    protocol_version: int
    max_chunk: int
    model_hash: bytes
    init_status: int
    arena_bytes: int
    num_layers: int
    num_tensors: int
    num_inputs: int
    num_outputs: int
    systick_hz: int


@dataclass(frozen=True)
class InvokeResult:
    """The outcome of INVOKE: status 0, or the non-zero status of `layer`; total SysTick ticks."""

    status: int
    layer: int
    ticks: int


@dataclass(frozen=True)
class StackUse:
    """The device's stack: its size and its high-water mark since reset (bytes from the top down to
    the lowest word written), both in bytes."""

    size: int
    used: int


class DeviceHang(DeviceFault):
    """The device stopped answering while its port stayed open: an endless loop or a stuck UART."""


class StackOverflow(DeviceFault):
    """The device found the lowest bytes of its stack overwritten (OVERFLOW) and stopped."""

    def __init__(self, use: StackUse) -> None:
        super().__init__(f"device stack overflow: the lowest bytes of its {use.size:,}-byte stack were "
                         f"overwritten (high-water mark {use.used:,} B); the device stopped before "
                         "answering")
        self.use = use


@dataclass
class LinkStats:
    """Counters of one link, for reports and for tuning."""

    requests: int = 0
    frames_sent: int = 0
    frames_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    retries: int = 0
    naks: int = 0
    corrupt: int = 0
    stale: int = 0
    timeouts: int = 0
    chunk_halvings: int = 0
    smallest_chunk: int = 0


class Link:
    """One device behind a pyserial port. Requests are answered in order. A request is sent again
    (same seq) on a NAK, a corrupt answer or no answer within `timeout` seconds, at most `retries`
    times; INVOKE instead waits up to its own deadline, resending every `timeout` seconds.

    READ and WRITE move data in chunks of at most the device's max_chunk. The chunk adapts to the
    line: when a chunk has failed twice on a line that answers (damaged, not silent), it is halved
    (down to `min_chunk`) and the rest of the data goes in smaller requests; after `_GROW_AFTER`
    clean requests in a row it doubles back. Both are idempotent, so a halved chunk may repeat
    what the device already did. The port's own timeout is set to a short poll interval: every
    read loops against a deadline.
    """

    def __init__(self, port: serial.SerialBase, *, timeout: float = 0.5, retries: int = 8,
                 min_chunk: int = 16) -> None:
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.min_chunk = min_chunk
        self.stats = LinkStats()
        self.info: DeviceInfo | None = None
        self.chunk = 0
        self.port.timeout = _POLL_SECONDS
        self._seq = random.randrange(UNSOLICITED_SEQ)
        self._rx = bytearray()
        self._last_byte = 0.0  # when the last byte arrived (time.monotonic())
        self._clean = 0

    def hello(self) -> DeviceInfo:
        """Ask the device who it is; checks the protocol version."""
        body = self._request(Message.HELLO)
        if len(body) < _INFO.size:
            raise LinkError(f"HELLO answer of {len(body)} bytes, expected {_INFO.size}")
        info = DeviceInfo(*_INFO.unpack_from(body))
        if info.protocol_version != PROTOCOL_VERSION:
            raise LinkError(
                f"device speaks protocol version {info.protocol_version}, host {PROTOCOL_VERSION}"
            )
        if self.info is None:
            self.chunk = self.stats.smallest_chunk = info.max_chunk
        self.info = info
        return info

    def write(self, space: Space, index: int, data: bytes, offset: int = 0) -> None:
        """Write `data` at `offset` of a device buffer, in chunks."""
        start = 0
        while start < len(data):
            n = min(self._chunk(), len(data) - start)
            address = _ADDRESS.pack(space, index, offset + start)
            try:
                self._request(Message.WRITE, address + bytes(data[start : start + n]), chunked=True)
            except _Halved:
                continue
            start += n

    def read(self, space: Space, index: int, length: int, offset: int = 0) -> bytes:
        """Read `length` bytes at `offset` of a device buffer, in chunks."""
        out = bytearray()
        while len(out) < length:
            n = min(self._chunk(), length - len(out))
            address = _ADDRESS.pack(space, index, offset + len(out))
            try:
                body = self._request(Message.READ, address + struct.pack("<H", n), chunked=True)
            except _Halved:
                continue
            if len(body) != n:
                raise LinkError(f"READ answered {len(body)} bytes, expected {n}")
            out += body
        return bytes(out)

    def invoke(self, stop_after: int | None = None, timeout: float = 60.0) -> InvokeResult:
        """Run layers 0..stop_after (all by default). DeviceHang if no answer came within
        `timeout` seconds; the request is resent every `self.timeout` seconds meanwhile, which
        the device answers from its cache once the run ends (a lost answer costs one interval)."""
        stop = ALL_LAYERS if stop_after is None else stop_after
        body = self._request(Message.INVOKE, struct.pack("<H", stop),
                             wait_until=time.monotonic() + timeout)
        if len(body) < _DONE.size:
            raise LinkError(f"INVOKE answer of {len(body)} bytes, expected {_DONE.size}")
        return InvokeResult(*_DONE.unpack_from(body))

    def layer_ticks(self, num_layers: int) -> tuple[int, ...]:
        """SysTick ticks of each layer in the last invoke (the TICKS space)."""
        data = self.read(TICKS, 0, 4 * num_layers)
        return struct.unpack(f"<{num_layers}I", data)

    def reset(self) -> None:
        """Restore the model's persistent state to its initial value."""
        self._request(Message.RESET)

    def stack(self) -> StackUse:
        """The stack's size and high-water mark since reset."""
        body = self._request(Message.STACK)
        if len(body) < _STACK.size:
            raise LinkError(f"STACK answer of {len(body)} bytes, expected {_STACK.size}")
        return StackUse(*_STACK.unpack_from(body))

    def exit(self, code: int = 0) -> None:
        """Stop the device; with semihosting, `code` becomes the emulator's exit status."""
        self._request(Message.EXIT, bytes([code]), closing=True)

    def _chunk(self) -> int:
        if self.info is None:
            self.hello()
        return self.chunk

    def _count_clean(self, failures: int) -> None:
        """Double the chunk back after `_GROW_AFTER` requests in a row that needed no retry."""
        self._clean = self._clean + 1 if failures == 0 else 0
        if self.info is not None and self._clean >= _GROW_AFTER and self.chunk < self.info.max_chunk:
            self.chunk = min(self.info.max_chunk, self.chunk * 2)
            self._clean = 0

    def _halve(self) -> bool:
        """Halve the chunk, unless it is at `min_chunk` already."""
        if self.chunk <= self.min_chunk:
            return False
        self.chunk = max(self.min_chunk, self.chunk // 2)
        self.stats.chunk_halvings += 1
        self.stats.smallest_chunk = min(self.stats.smallest_chunk, self.chunk)
        self._clean = 0
        return True

    def _request(
        self, kind: Message, body: bytes = b"", *, wait_until: float | None = None,
        closing: bool = False, chunked: bool = False,
    ) -> bytes:
        """Send one request and return the body of its answer, resending as the protocol says.
        `wait_until`: the device may take until then to answer; timeouts before it are not
        failures. `closing`: the request stops the device, so a port that closes once it is sent
        is fine. `chunked`: the request carries a chunk; _Halved after its second failure if the
        chunk could be halved (the caller sends a smaller one)."""
        self._seq = (self._seq + 1) % UNSOLICITED_SEQ
        seq = self._seq
        frame = b"\0" + encode_frame(Packet(kind, seq, body))
        self.stats.requests += 1
        started, received = time.monotonic(), self.stats.bytes_received
        failures, sent = 0, False
        while True:
            try:
                self._send(frame)
                sent = True
                deadline = time.monotonic() + self.timeout
                answer = self._await(seq, deadline if wait_until is None else min(deadline, wait_until))
            except _PortClosed:
                if closing and sent:
                    return b""  # the device stopped before its answer got through
                raise LinkError(f"serial port closed while waiting for {kind.name}") from None
            if isinstance(answer, Packet):
                self._count_clean(failures)
                return self._accept(kind, answer)
            elapsed = time.monotonic() - started
            if wait_until is not None and answer == _NO_ANSWER:
                if time.monotonic() >= wait_until:
                    raise DeviceHang(f"no answer to {kind.name} within {elapsed:.1f} s: the device "
                                     "hangs (an endless loop, or its UART is stuck)")
            else:
                failures += 1
                damaged = self.stats.bytes_received != received  # not a silent device
                if chunked and damaged and failures == _HALVE_AFTER and self._halve():
                    self.stats.retries += 1
                    raise _Halved
                if failures > self.retries:
                    if self.stats.bytes_received == received:
                        raise DeviceHang(f"no answer to {kind.name} in {failures} tries over "
                                         f"{elapsed:.1f} s: the device does not respond (it hangs, "
                                         "or its UART is stuck)")
                    raise LinkError(f"{kind.name} failed after {failures} tries over {elapsed:.1f} s "
                                    f"(last: {answer})")
            self.stats.retries += 1

    def _accept(self, kind: Message, packet: Packet) -> bytes:
        if packet.type == Message.ERROR:
            code = packet.body[0] if packet.body else 0
            raise LinkError(f"device refused {kind.name}: {_ERRORS.get(code, f'error {code}')}")
        if packet.type != kind | 0x80:
            raise LinkError(f"device answered {kind.name} with type 0x{packet.type:02X}")
        return packet.body

    def _await(self, seq: int, deadline: float) -> Packet | str:
        """The answer to `seq`, or why to resend (a NAK, a corrupt frame, no answer)."""
        while True:
            frame = self._next_frame(deadline)
            if frame is None:
                self.stats.timeouts += 1
                return _NO_ANSWER
            try:
                packet = decode_frame(frame)
            except FrameError as exc:
                self.stats.corrupt += 1
                return f"corrupt answer ({exc})"
            if packet.type == Message.FAULT and len(packet.body) >= _FAULT.size:
                raise CpuFault(FaultReport(*_FAULT.unpack_from(packet.body)))
            if packet.type == Message.OVERFLOW and len(packet.body) >= _STACK.size:
                raise StackOverflow(StackUse(*_STACK.unpack_from(packet.body)))
            if packet.type == Message.NAK:
                self.stats.naks += 1
                reason = packet.body[0] if packet.body else 0
                return f"NAK {reason} ({_NAKS.get(reason, 'unknown reason')})"
            if packet.seq != seq:
                self.stats.stale += 1
                continue
            return packet

    def _next_frame(self, deadline: float) -> bytes | None:
        """The next non-empty frame (without delimiter), or None at the deadline. A frame still
        arriving at the deadline (its bytes less than `timeout` apart) is waited for: a request
        resent meanwhile could meet a device that has stopped after sending it (a fault report),
        and the port then discards what it had not yet read."""
        while True:
            end = self._rx.find(0)
            if end >= 0:
                frame = bytes(self._rx[:end])
                del self._rx[: end + 1]
                if frame:
                    self.stats.frames_received += 1
                    return frame
                continue
            now = time.monotonic()
            if now >= deadline and not self._frame_arriving(now):
                return None
            try:
                data = self.port.read(max(1, self.port.in_waiting))
            except (serial.SerialException, OSError) as exc:
                raise _PortClosed from exc
            if data:
                self._last_byte = time.monotonic()
            self.stats.bytes_received += len(data)
            self._rx += data

    def _frame_arriving(self, now: float) -> bool:
        """Part of a frame is in and its bytes keep coming."""
        return 0 < len(self._rx) <= _LONGEST_FRAME and now - self._last_byte < self.timeout

    def _send(self, frame: bytes) -> None:
        try:
            self.port.write(frame)
            self.port.flush()
        except (serial.SerialException, OSError) as exc:
            raise _PortClosed from exc
        self.stats.frames_sent += 1
        self.stats.bytes_sent += len(frame)


class _Halved(Exception):
    """The chunk was halved: send the data again in smaller requests."""


class _PortClosed(Exception):
    """The port reported an error or end of file: the device side has gone."""

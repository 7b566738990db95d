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

PROTOCOL_VERSION = 1
UNSOLICITED_SEQ = 0xFFFF
ALL_LAYERS = 0xFFFF
_HEADER = struct.Struct("<BBH")
_INFO = struct.Struct("<HH8siIHHBBI")
_DONE = struct.Struct("<iHI")
_ADDRESS = struct.Struct("<BHI")
_FAULT = struct.Struct("<8I")
_POLL_SECONDS = 0.05


class Message(IntEnum):
    HELLO = 0x01
    WRITE = 0x02
    INVOKE = 0x03
    READ = 0x04
    RESET = 0x05
    EXIT = 0x06
    ERROR = 0xEE
    NAK = 0xEF
    FAULT = 0xF0


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
class FaultReport:
    """The registers of a FAULT packet."""

    cfsr: int
    hfsr: int
    mmfar: int
    bfar: int
    pc: int
    lr: int
    xpsr: int
    exception: int

    def describe(self) -> str:
        """One line: the exception, the decoded CFSR/HFSR bits and where it happened."""
        name = _EXCEPTIONS.get(self.exception, f"exception {self.exception}")
        causes = [bit for mask, bit in _CFSR_BITS if self.cfsr & mask]
        if self.cfsr & 0x80:
            causes = [f"{c} at MMFAR 0x{self.mmfar:08X}" if c == "DACCVIOL" else c for c in causes]
        if self.cfsr & 0x8000:
            causes = [f"{c} at BFAR 0x{self.bfar:08X}" if c == "PRECISERR" else c for c in causes]
        causes += [bit for mask, bit in _HFSR_BITS if self.hfsr & mask]
        detail = f" ({', '.join(causes)})" if causes else ""
        return (f"device fault: {name}{detail} at PC 0x{self.pc:08X}, "
                f"LR 0x{self.lr:08X}, xPSR 0x{self.xpsr:08X}")


_EXCEPTIONS = {2: "NMI", 3: "HardFault", 4: "MemManage", 5: "BusFault", 6: "UsageFault",
               7: "SecureFault", 11: "SVCall", 12: "DebugMonitor", 14: "PendSV"}
_CFSR_BITS = (
    (1 << 0, "IACCVIOL"), (1 << 1, "DACCVIOL"), (1 << 3, "MUNSTKERR"), (1 << 4, "MSTKERR"),
    (1 << 5, "MLSPERR"), (1 << 8, "IBUSERR"), (1 << 9, "PRECISERR"), (1 << 10, "IMPRECISERR"),
    (1 << 11, "UNSTKERR"), (1 << 12, "STKERR"), (1 << 13, "LSPERR"), (1 << 16, "UNDEFINSTR"),
    (1 << 17, "INVSTATE"), (1 << 18, "INVPC"), (1 << 19, "NOCP"), (1 << 20, "STKOF"),
    (1 << 24, "UNALIGNED"), (1 << 25, "DIVBYZERO"),
)
_HFSR_BITS = ((1 << 1, "VECTTBL"), (1 << 30, "FORCED"), (1 << 31, "DEBUGEVT"))


class CpuFault(DeviceFault):
    """The device reported a CPU fault; `report` holds its registers."""

    def __init__(self, report: FaultReport) -> None:
        super().__init__(report.describe())
        self.report = report


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


class Link:
    """One device behind a pyserial port. Requests are answered in order; each is retried (same
    seq) on a NAK, a corrupt answer or a timeout, at most `retries` times.

    The port's own timeout is set to a short poll interval: reads loop against deadlines.
    """

    def __init__(self, port: serial.SerialBase, *, timeout: float = 2.0, retries: int = 3) -> None:
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.stats = LinkStats()
        self.info: DeviceInfo | None = None
        self.port.timeout = _POLL_SECONDS
        self._seq = random.randrange(UNSOLICITED_SEQ)
        self._rx = bytearray()

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
        self.info = info
        return info

    def write(self, space: Space, index: int, data: bytes, offset: int = 0) -> None:
        """Write `data` at `offset` of a device buffer, in chunks of max_chunk."""
        chunk = self._max_chunk()
        for start in range(0, len(data), chunk):
            address = _ADDRESS.pack(space, index, offset + start)
            self._request(Message.WRITE, address + bytes(data[start : start + chunk]))

    def read(self, space: Space, index: int, length: int, offset: int = 0) -> bytes:
        """Read `length` bytes at `offset` of a device buffer, in chunks of max_chunk."""
        chunk = self._max_chunk()
        out = bytearray()
        for start in range(0, length, chunk):
            n = min(chunk, length - start)
            body = self._request(
                Message.READ, _ADDRESS.pack(space, index, offset + start) + struct.pack("<H", n)
            )
            if len(body) != n:
                raise LinkError(f"READ answered {len(body)} bytes, expected {n}")
            out += body
        return bytes(out)

    def invoke(self, stop_after: int | None = None, timeout: float = 60.0) -> InvokeResult:
        """Run layers 0..stop_after (all by default); `timeout` bounds each attempt."""
        stop = ALL_LAYERS if stop_after is None else stop_after
        body = self._request(Message.INVOKE, struct.pack("<H", stop), timeout=timeout)
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

    def exit(self, code: int = 0) -> None:
        """Stop the device; with semihosting, `code` becomes the emulator's exit status."""
        self._request(Message.EXIT, bytes([code]), closing=True)

    def _max_chunk(self) -> int:
        return (self.info or self.hello()).max_chunk

    def _request(
        self, kind: Message, body: bytes = b"", *, timeout: float | None = None,
        closing: bool = False,
    ) -> bytes:
        """Send one request and return the body of its answer, retrying as the protocol says.
        `closing`: the request stops the device, so a port that closes once it is sent is fine."""
        self._seq = (self._seq + 1) % UNSOLICITED_SEQ
        seq = self._seq
        frame = b"\0" + encode_frame(Packet(kind, seq, body))
        self.stats.requests += 1
        problem, sent = "no answer", False
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
            try:
                self._send(frame)
                sent = True
                answer = self._await(seq, time.monotonic() + (timeout or self.timeout))
            except _PortClosed:
                if closing and sent:
                    return b""  # the device stopped before its answer got through
                raise LinkError(f"serial port closed while waiting for {kind.name}") from None
            if isinstance(answer, Packet):
                return self._accept(kind, answer)
            problem = answer
        raise LinkError(f"{kind.name} failed after {self.retries + 1} tries: {problem}")

    def _accept(self, kind: Message, packet: Packet) -> bytes:
        if packet.type == Message.ERROR:
            code = packet.body[0] if packet.body else 0
            raise LinkError(f"device refused {kind.name}: {_ERRORS.get(code, f'error {code}')}")
        if packet.type != kind | 0x80:
            raise LinkError(f"device answered {kind.name} with type 0x{packet.type:02X}")
        return packet.body

    def _await(self, seq: int, deadline: float) -> Packet | str:
        """The answer to `seq`, or why to retransmit (NAK, corrupt frame, timeout)."""
        while True:
            frame = self._next_frame(deadline)
            if frame is None:
                self.stats.timeouts += 1
                return "timeout"
            try:
                packet = decode_frame(frame)
            except FrameError as exc:
                self.stats.corrupt += 1
                return f"corrupt answer ({exc})"
            if packet.type == Message.FAULT:
                raise CpuFault(FaultReport(*_FAULT.unpack_from(packet.body)))
            if packet.type == Message.NAK:
                self.stats.naks += 1
                reason = packet.body[0] if packet.body else 0
                return f"NAK {reason}"
            if packet.seq != seq:
                self.stats.stale += 1
                continue
            return packet

    def _next_frame(self, deadline: float) -> bytes | None:
        """The next non-empty frame (without delimiter), or None at the deadline."""
        while True:
            end = self._rx.find(0)
            if end >= 0:
                frame = bytes(self._rx[:end])
                del self._rx[: end + 1]
                if frame:
                    self.stats.frames_received += 1
                    return frame
                continue
            if time.monotonic() >= deadline:
                return None
            try:
                data = self.port.read(max(1, self.port.in_waiting))
            except (serial.SerialException, OSError) as exc:
                raise _PortClosed from exc
            self.stats.bytes_received += len(data)
            self._rx += data

    def _send(self, frame: bytes) -> None:
        try:
            self.port.write(frame)
            self.port.flush()
        except (serial.SerialException, OSError) as exc:
            raise _PortClosed from exc
        self.stats.frames_sent += 1
        self.stats.bytes_sent += len(frame)


class _PortClosed(Exception):
    """The port reported an error or end of file: the device side has gone."""

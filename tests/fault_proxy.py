"""A fault-injecting proxy between QEMU's UART socket and the host, for tests/test_faults.py.

The host's Link connects to the proxy with pyserial (`socket://127.0.0.1:PORT`), as it would to
QEMU; the proxy forwards the byte stream both ways through seeded random damage: each byte is
dropped, replaced by another value, sent twice, or held back for a moment (with everything after
it), with the probabilities of `Faults`.
"""

from __future__ import annotations

import random
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import serial

from mcudeploy.boards import Board
from mcudeploy.device.runners.qemu import QemuRunner

_POLL_SECONDS = 0.02


@dataclass(frozen=True)
class Faults:
    """Per-byte probabilities, the same both ways (or towards the host only, without
    `to_device`); a delay holds the stream up to `max_delay` s."""

    drop: float = 0.0
    corrupt: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0
    max_delay: float = 0.03
    to_device: bool = True


@dataclass
class Counts:
    """What the proxy did, both ways together."""

    bytes: int = 0
    dropped: int = 0
    corrupted: int = 0
    duplicated: int = 0
    delayed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, other: Counts) -> None:
        with self.lock:
            for name in ("bytes", "dropped", "corrupted", "duplicated", "delayed"):
                setattr(self, name, getattr(self, name) + getattr(other, name))


class FaultProxy:
    """Joins `upstream` (a pyserial port to QEMU) to the first client of a local listening
    socket (`port`), damaging bytes both ways. `close` stops both pumps."""

    def __init__(self, upstream: serial.SerialBase, faults: Faults, seed: int) -> None:
        self.upstream = upstream
        self.faults = faults
        self.counts = Counts()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._client: socket.socket | None = None
        self._closed = threading.Event()
        self._seed = seed
        self._threads: list[threading.Thread] = []

    def accept(self) -> None:
        """Take the host's connection (already made) and start pumping."""
        self._listener.settimeout(5.0)
        self._client, _ = self._listener.accept()
        self._client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._threads = [
            threading.Thread(target=self._to_host, args=(random.Random(2 * self._seed),), daemon=True),
            threading.Thread(target=self._to_device, args=(random.Random(2 * self._seed + 1),),
                             daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        self._closed.set()
        for thread in self._threads:
            thread.join(2.0)
        if self._client is not None:
            self._client.close()
        self._listener.close()
        self.upstream.close()

    def _to_host(self, rng: random.Random) -> None:
        assert self._client is not None
        try:
            while not self._closed.is_set():
                data = self.upstream.read(max(1, self.upstream.in_waiting))
                if data:
                    self._forward(data, rng, self._client.sendall)
        except (serial.SerialException, OSError):
            pass
        self._shut_client()  # the device side closed: so does the host's

    def _to_device(self, rng: random.Random) -> None:
        assert self._client is not None
        try:
            while not self._closed.is_set():
                ready, _, _ = select.select([self._client], [], [], _POLL_SECONDS)
                if not ready:
                    continue
                data = self._client.recv(4096)
                if not data:
                    return
                if self.faults.to_device:
                    self._forward(data, rng, self.upstream.write)
                else:
                    self.upstream.write(data)
        except (serial.SerialException, OSError):
            pass

    def _shut_client(self) -> None:
        try:
            assert self._client is not None
            self._client.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _forward(self, data: bytes, rng: random.Random, send) -> None:
        f, counts, out = self.faults, Counts(), bytearray()
        for byte in data:
            counts.bytes += 1
            r = rng.random()
            if r < f.drop:
                counts.dropped += 1
                continue
            r -= f.drop
            if r < f.corrupt:
                counts.corrupted += 1
                out.append(byte ^ rng.randrange(1, 256))
                continue
            r -= f.corrupt
            if r < f.duplicate:
                counts.duplicated += 1
                out += bytes([byte, byte])
                continue
            r -= f.duplicate
            if r < f.delay:
                counts.delayed += 1
                if out:
                    send(bytes(out))
                    out.clear()
                time.sleep(rng.uniform(0, f.max_delay))
            out.append(byte)
        if out:
            send(bytes(out))
        self.counts.add(counts)


class ProxiedQemuRunner(QemuRunner):
    """QEMU with the host's port going through a FaultProxy; `counts` adds up what it did."""

    def __init__(self, board: Board, elf: Path, icount: bool, faults: Faults, seed: int,
                 counts: Counts) -> None:
        super().__init__(board, elf, icount=icount)
        self.faults = faults
        self.seed = seed
        self.total = counts
        self.proxy: FaultProxy | None = None

    def start(self) -> serial.SerialBase:
        self.proxy = FaultProxy(super().start(), self.faults, self.seed)
        port = serial.serial_for_url(f"socket://127.0.0.1:{self.proxy.port}", timeout=0.05)
        self.proxy.accept()
        return port

    def stop(self) -> None:
        if self.proxy is not None:
            proxy, self.proxy = self.proxy, None
            proxy.close()
            self.total.add(proxy.counts)
        super().stop()

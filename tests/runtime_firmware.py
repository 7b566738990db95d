"""The test firmware of the runtime tests (tests/test_runtime_*.py): tests/firmware/echo_model and
fault_model (no CMSIS-NN) on the an547, what the echo model computes, and a Link to it on QEMU."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from elftools.elf.elffile import ELFFile

from mcudeploy.boards import load_board
from mcudeploy.device.protocol import OUTPUT, Link
from mcudeploy.device.runners.qemu import QemuRunner
from mcudeploy.nnlib import NNLibrary

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
    """How many inferences the echo model ran since its start or its last reset."""
    return struct.unpack("<I", link.read(OUTPUT, 1, 4))[0]


@contextmanager
def device(elf: Path, *, icount: bool = False, timeout: float = 2.0,
           retries: int = 3) -> Iterator[tuple[QemuRunner, Link]]:
    """QEMU running `elf` on the an547, and a Link to it."""
    runner = QemuRunner(BOARD, elf, icount=icount)
    with runner as port:
        yield runner, Link(port, timeout=timeout, retries=retries)


def symbol_range(elf: Path, name: str) -> range:
    """The addresses a symbol of the ELF covers."""
    with open(elf, "rb") as f:
        (symbol,) = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)
        start = symbol["st_value"] & ~1
        return range(start, start + symbol["st_size"])

"""Loading firmware through a GDB server (QEMU's `-gdb`, `pyocd gdbserver`, OpenOCD's GDB port):
gdb-multiarch's own `load`, driven through its machine interface with pygdbmi, then every
loadable segment read back and compared with the ELF, a reset, and a detach that lets it run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile

from mcudeploy.device.runners.base import find_executable
from mcudeploy.errors import RunnerError

GDB = "gdb-multiarch"
_POLL_SECONDS = 0.05


class GdbServerSilent(RunnerError):
    """The GDB server could not be reached: nothing listens, or it does not speak."""


@dataclass(frozen=True)
class GdbServer:
    """A GDB remote-protocol server: `address` is HOST:PORT; `reset` is the `monitor` command that
    resets the target after loading (QEMU: `system_reset`; pyOCD and OpenOCD: `reset halt`)."""

    address: str
    reset: str = "system_reset"


def loadable_segments(elf: Path) -> list[tuple[int, bytes]]:
    """The (load address, bytes) of each PT_LOAD segment of `elf` with bytes in the file."""
    with open(elf, "rb") as f:
        return [(seg["p_paddr"], seg.data()[: seg["p_filesz"]]) for seg in ELFFile(f).iter_segments()
                if seg["p_type"] == "PT_LOAD" and seg["p_filesz"] > 0]


def load_elf(elf: Path, server: GdbServer, timeout: float = 30.0) -> None:
    """Write `elf` through `server`, check that the target reads back every loadable byte, reset
    the target and let it run. GdbServerSilent if the server cannot be reached, RunnerError if the
    load, the read-back or the reset fails."""
    from pygdbmi.constants import GdbTimeoutError
    from pygdbmi.gdbcontroller import GdbController

    gdb = GdbController([find_executable(GDB, "install it (Debian: apt-get install gdb-multiarch)"),
                         "--nx", "--quiet", "--interpreter=mi3"],
                        time_to_check_for_additional_output_sec=_POLL_SECONDS)
    try:
        session = _Session(gdb, timeout)
        session.command("-gdb-set tcp auto-retry off")
        session.command(f"-gdb-set tcp connect-timeout {max(1, round(timeout))}")
        session.command(f"-file-exec-and-symbols {_quote(str(elf))}")
        try:
            session.command(f"-target-select remote {server.address}")
        except RunnerError as exc:
            raise GdbServerSilent(f"GDB server {server.address} does not answer: {exc}") from None
        session.command("-target-download")
        for address, data in loadable_segments(elf):
            _verify(session, address, data)
        session.command(f"-interpreter-exec console {_quote('monitor ' + server.reset)}")
        session.command("-target-detach")
    except GdbTimeoutError:
        raise RunnerError(f"gdb got no answer from GDB server {server.address} within {timeout} s") from None
    finally:
        gdb.exit()


class _Session:
    def __init__(self, gdb, timeout: float) -> None:
        self.gdb = gdb
        self.timeout = timeout

    def command(self, text: str) -> dict | None:
        """Run one MI command; its result's payload, or a RunnerError with gdb's message."""
        for record in self.gdb.write(text, timeout_sec=self.timeout, raise_error_on_timeout=True):
            if record["type"] != "result":
                continue
            if record["message"] == "error":
                raise RunnerError(f"{text.split()[0]}: {record['payload']['msg']}")
            return record["payload"]
        raise RunnerError(f"{text.split()[0]}: gdb gave no result")


def _verify(session: _Session, address: int, data: bytes) -> None:
    """The target holds `data` at `address`, or a RunnerError naming the first byte that differs."""
    payload = session.command(f"-data-read-memory-bytes 0x{address:x} {len(data)}") or {}
    held = bytearray(len(data))
    for block in payload.get("memory", []):
        start = int(block["begin"], 16) - address
        chunk = bytes.fromhex(block["contents"])
        held[start : start + len(chunk)] = chunk
    if held != data:
        first = next(i for i, (a, b) in enumerate(zip(held, data, strict=True)) if a != b)
        raise RunnerError(f"the {len(data)} bytes loaded at 0x{address:08X} read back differently from "
                          f"0x{address + first:08X} on: the target has no writable memory there")


def _quote(text: str) -> str:
    """`text` as one MI c-string argument."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

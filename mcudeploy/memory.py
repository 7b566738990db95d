"""Memory figures of a firmware and of TFLM for the same model.

Flash is the loaded image (code + weights + initialised data), split into weights, model code (the
generated layer calls and the NN library, compiled together with link-time optimisation) and
runtime (start-up, UART, protocol, C library), the split read from the linker map. RAM is the
arena, the stack and the static data (.data + .bss, of which the model's own state, and what the
arena section grew by to hold the fault handler's stack on top of a smaller arena); the stack is
its high-water mark as measured on the device (mcudeploy.stack), beside the stack the firmware
reserves (the measured mark plus the room the call-graph bound and the exception frames keep).

TFLM: its Python interpreter (the x86-64 host build of tflite-micro) allocates the model with the
recording allocator in a worker process (mcudeploy.tflm_process); `print_allocations` writes, from
C, to the worker's stderr, which is captured. Its arena is `head` (the activations and scratch,
planned by TFLM's greedy planner) plus `tail` (persistent: tensor and node structs, per-channel
quantization data, kernel state). The tail holds 64-bit pointers here, so on a 32-bit MCU it would
be smaller; the head does not depend on the pointer width. The same figure is the smallest
`arena_size` with which the interpreter allocates (checked by binary search in the tests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mcudeploy.errors import OracleError
from mcudeploy.tflm_process import TflmProcess

_CODE_SECTIONS = (".vectors", ".text", ".ARM.extab", ".ARM.exidx", ".rodata", ".data")
# Input sections compiled from the model and the NN library: LTO partitions, or their objects.
_MODEL_OBJECT = re.compile(r"ltrans\d*\.ltrans\.o$|(^|/)obj/(model|nn)/")
_TFLM_ARENA = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
TFLM_PROBE_ARENA = 64 * 1024 * 1024


@dataclass(frozen=True)
class TflmArena:
    """What TFLM's recording allocator reports for the same .tflite (x86-64 host build)."""

    total: int
    head: int
    tail: int
    method: str = ("tflite_micro Interpreter (x86-64 host build), kAllocationRecording, "
                   "print_allocations() captured from the subprocess's stderr")


def ram_figures(sizes: dict[str, int], state_bytes: int, stack_measured: int | None) -> dict[str, int]:
    """RAM by part: arena, stack (the high-water mark measured on the device; the reserved stack
    when it was not measured), static (.data + .bss, and the arena section's growth to the fault
    handler's stack when the arena is smaller), of which the model's own state; `total` is their
    sum, `reserved` what the image sets aside (the whole reserved stack)."""
    static = sizes["data"] + sizes["bss"] + sizes.get("fault_stack", 0)
    stack = sizes["stack"] if stack_measured is None else stack_measured
    return {"arena": sizes["arena"], "stack": stack, "stack_reserved": sizes["stack"], "static": static,
            "model_state": state_bytes, "total": sizes["arena"] + stack + static,
            "reserved": sizes["arena"] + sizes["stack"] + static}


def flash_figures(sizes: dict[str, int], elf: Path) -> dict[str, int]:
    """Flash by part: weights, model code (layer calls + NN library), runtime; the split read from
    the linker map beside `elf`."""
    code = sizes["image"] - sizes["weights"]
    model_code = model_code_bytes(elf.with_suffix(".map"))
    return {"weights": sizes["weights"], "model_code": model_code, "runtime": code - model_code,
            "code": code, "total": sizes["image"]}


def model_code_bytes(map_file: Path) -> int:
    """Bytes of flash, outside .weights, that come from the model and the NN library, read from
    the GNU ld map: the input sections of their objects (or of the LTO partitions they were
    compiled into) inside the output sections that are loaded into flash."""
    total = 0
    output = ""
    pending: str | None = None
    text = map_file.read_text(encoding="utf-8", errors="replace")
    body = text.split("Linker script and memory map", 1)[-1]
    for line in body.splitlines():
        if line and not line[0].isspace():
            output = line.split()[0]
            pending = None
            continue
        fields = line.split()
        if line.startswith(" ") and not line.startswith("  ") and fields:
            if len(fields) == 1:  # a long input-section name: address, size, file follow
                pending = fields[0]
                continue
            pending = None
            if len(fields) < 4 or not fields[1].startswith("0x"):
                continue
            size, source = fields[2], " ".join(fields[3:])
        elif pending is not None and len(fields) >= 3 and fields[0].startswith("0x"):
            size, source = fields[1], " ".join(fields[2:])
            pending = None
        else:
            continue
        if output in _CODE_SECTIONS and _MODEL_OBJECT.search(source):
            total += int(size, 16)
    return total


def measure_tflm_arena(tflite: bytes, arena_size: int = TFLM_PROBE_ARENA) -> TflmArena:
    """TFLM's arena for the model, from its recording allocator (see the module's docstring); a
    TFLM that crashes or refuses the file raises OracleError."""
    with TflmProcess(tflite, arena_size, config="kAllocationRecording") as tflm:
        tflm.print_allocations()
        printed = tflm.printed()
    found = {k: int(v) for k, v in _TFLM_ARENA.findall(printed)}
    if len(found) != 3:
        raise OracleError(f"TFLM's recording allocator did not report the arena: {printed.strip()[-200:]!r}")
    return TflmArena(found["total"], found["head"], found["tail"])

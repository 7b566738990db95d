"""Benchmarks: a model's per-layer and total instructions counted on QEMU, its MACs, its RAM and
flash read from the ELF, and TFLM's arena for the same .tflite, side by side.

Instructions: the firmware times each layer with SysTick on the CPU clock; under QEMU's
`-icount shift=0` one instruction takes one virtual nanosecond, so ticks x the board's
`instructions_per_tick` is an exact count of instructions (to one tick). The inference measured is
also checked bit for bit against the host reference and TFLM: a figure of a miscomputing build is
reported as such.

Memory: flash is the loaded image (code + weights + initialised data), split into weights, model
code (the generated layer calls and the NN library, compiled together with link-time
optimisation) and runtime (start-up, UART, protocol, C library), the split read from the linker
map. RAM is the arena, the stack and the static data (.data + .bss, of which the model's own state).

TFLM: its Python interpreter (the x86-64 host build of tflite-micro) allocates the model with the
recording allocator in a worker process (mcudeploy.tflm_process); `print_allocations` writes, from
C, to the worker's stderr, which is captured. Its arena is `head` (the activations and scratch,
planned by TFLM's greedy planner) plus `tail` (persistent: tensor and node structs, per-channel
quantization data, kernel state). The tail holds 64-bit pointers here, so on a 32-bit MCU it would
be smaller; the head does not depend on the pointer width. The same figure is the smallest
`arena_size` with which the interpreter allocates (checked by binary search in the tests).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mcudeploy.boards import load_board
from mcudeploy.device.runners import make_runner
from mcudeploy.device.session import open_session
from mcudeploy.errors import BoardError, OracleError
from mcudeploy.outdir import staged_directory
from mcudeploy.packs import nn_library
from mcudeploy.pipeline import (
    Built,
    ImportOptions,
    Model,
    build_model,
    expected_outputs,
    import_model,
    tuning_report,
)
from mcudeploy.progress import Progress
from mcudeploy.tflm_process import TflmProcess
from mcudeploy.tune import TuneOptions, build_tuning
from mcudeploy.vectors import random_vectors
from mcudeploy.verify import compare

_CODE_SECTIONS = (".vectors", ".text", ".ARM.extab", ".ARM.exidx", ".rodata", ".data")
# Input sections compiled from the model and the NN library: LTO partitions, or their objects.
_MODEL_OBJECT = re.compile(r"ltrans\d*\.ltrans\.o$|(^|/)obj/(model|nn)/")
_TFLM_ARENA = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
TFLM_PROBE_ARENA = 64 * 1024 * 1024


@dataclass(frozen=True)
class LayerFigures:
    """One layer: what it computes and what it cost."""

    index: int
    name: str
    op: str
    origin: str
    macs: int
    instructions: int

    @property
    def instructions_per_mac(self) -> float | None:
        return self.instructions / self.macs if self.macs else None


@dataclass(frozen=True)
class TflmArena:
    """What TFLM's recording allocator reports for the same .tflite (x86-64 host build)."""

    total: int
    head: int
    tail: int
    method: str = ("tflite_micro Interpreter (x86-64 host build), kAllocationRecording, "
                   "print_allocations() captured from the subprocess's stderr")


@dataclass(frozen=True)
class BenchResult:
    """A model on a board: per-layer instructions, memory, and TFLM's arena beside ours."""

    model: str
    board: str
    cpu: str
    cpu_class: str
    library: str
    bit_exact: bool
    layers: list[LayerFigures]
    instructions: int
    macs: int
    arena_bytes: int
    lower_bound: int
    ram: dict[str, int]
    flash: dict[str, int]
    tflm: TflmArena | None
    method: str
    startup_instructions: int | None = None  # mcd_model_init, once after reset
    tuning: dict = field(default_factory=dict)  # per-layer lowerings and candidates (tuning_report)

    @property
    def instructions_per_mac(self) -> float | None:
        return self.instructions / self.macs if self.macs else None

    @property
    def model_ram(self) -> int:
        """What the model needs in RAM beyond the runtime: the arena and the model's state."""
        return self.arena_bytes + self.ram["model_state"]

    def to_dict(self) -> dict:
        out = asdict(self)
        out["instructions_per_mac"] = _round(self.instructions_per_mac)
        out["model_ram"] = self.model_ram
        for row, layer in zip(out["layers"], self.layers, strict=True):
            row["instructions_per_mac"] = _round(layer.instructions_per_mac)
        return out

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")

    @staticmethod
    def load(path: Path) -> BenchResult:
        """A bench.json as `save` wrote it."""
        raw = json.loads(path.read_text(encoding="utf-8"))
        derived = ("instructions_per_mac", "model_ram")
        layers = [LayerFigures(**{k: v for k, v in x.items() if k not in derived})
                  for x in raw["layers"]]
        tflm = TflmArena(**raw["tflm"]) if raw["tflm"] else None
        fields = {k: v for k, v in raw.items() if k not in (*derived, "layers", "tflm")}
        return BenchResult(**fields, layers=layers, tflm=tflm)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def bench_model(model_path: Path, board_name: str, out: Path, progress: Progress, *,
                seed: int = 0, tflm: bool = True, import_options: ImportOptions | None = None,
                cmsis_nn: str | None = None, tune: TuneOptions | None = None) -> BenchResult:
    """`mcudeploy bench`: build `model_path` for the board (with nnref, or the CMSIS-NN pack
    `cmsis_nn`; its layers lowered as `tune` measures or its tuning file says) into `out`, count its
    instructions on QEMU, measure its memory, ask TFLM for its arena; writes out/bench.json (and
    out/model.tflite, the int8 file TFLM ran)."""
    model = import_model(model_path, import_options or ImportOptions())
    board = load_board(board_name)
    if board.qemu is None:
        raise BoardError(f"board {board.name} has no [qemu] table: bench counts instructions on QEMU")
    library = nn_library(cmsis_nn)
    with staged_directory(out) as work:
        (work / "model.tflite").write_bytes(model.tflite)
        tuning = build_tuning(model.graph, board, library, out, work, tune or TuneOptions(seed=seed),
                              progress, source=model_path.name)
        built = build_model(model, board, work, progress, library=library, tuning=tuning)
        progress.step(f"counting instructions on QEMU {board.qemu.machine} (-icount shift=0)")
        ticks, layer_ticks, startup_ticks, bit_exact = _measure(model, built, seed)
        per_tick = board.qemu.instructions_per_tick
        layers = [
            LayerFigures(layer.index, layer.name, layer.op, layer.origin, layer.macs,
                         round(t * per_tick))
            for layer, t in zip(built.manifest.layers, layer_ticks, strict=True)
        ]
        tflm_arena = None
        if tflm:
            progress.step("asking TFLM for its arena (recording allocator)")
            tflm_arena = measure_tflm_arena(model.tflite)
        m, sizes = built.manifest, built.sizes
        result = BenchResult(
            model=model_path.name, board=board.name, cpu=board.cpu, cpu_class=board.cpu_class,
            library=built.library.name, bit_exact=bit_exact, layers=layers,
            instructions=round(ticks * per_tick), macs=sum(layer.macs for layer in layers),
            arena_bytes=m.arena_bytes, lower_bound=m.lower_bound,
            ram=ram_figures(sizes, m.state_bytes), flash=flash_figures(built),
            tflm=tflm_arena, method=f"QEMU -icount shift=0, SysTick ticks x {per_tick}",
            startup_instructions=round(startup_ticks * per_tick), tuning=tuning_report(model, built),
        )
        result.save(work / "bench.json")
    return result


def _measure(model: Model, built: Built, seed: int) -> tuple[int, list[int], int, bool]:
    """One inference of a seeded random vector: its ticks, each layer's ticks, the ticks of the
    model's start-up, and whether its outputs are bit-exact with the host reference and TFLM."""
    vectors = random_vectors(model.graph, 1, seed)
    with open_session(make_runner("qemu", built.board, built.elf, icount=True), built.manifest) as device:
        inference = device.infer(vectors[0])
        layer_ticks = list(device.layer_ticks())
        startup_ticks = device.startup_ticks()
    expected = expected_outputs(model, vectors)
    bit_exact = not any(compare(0, inference.outputs, values[0], oracle)
                        for oracle, values in expected.items())
    return inference.ticks, layer_ticks, startup_ticks, bit_exact


def ram_figures(sizes: dict[str, int], state_bytes: int) -> dict[str, int]:
    """RAM by part: arena, stack, static (.data + .bss), of which the model's own state."""
    static = sizes["data"] + sizes["bss"]
    return {"arena": sizes["arena"], "stack": sizes["stack"], "static": static,
            "model_state": state_bytes, "total": sizes["arena"] + sizes["stack"] + static}


def flash_figures(built: Built) -> dict[str, int]:
    """Flash by part: weights, model code (layer calls + NN library), runtime."""
    sizes = built.sizes
    code = sizes["image"] - sizes["weights"]
    model_code = model_code_bytes(built.elf.with_suffix(".map"))
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

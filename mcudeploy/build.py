"""Firmware builds: the linker script and build.json from a Board, then SCons (the SConstruct at
the repository root) compiles the runtime, the NN library and the model into one ELF, whose stack
is sized from the call graph of its code (mcudeploy.stack), and which objcopy also writes as .hex
(and as .bin when the image is one block of one memory region).

A generated model is its C library (NAME.c, mcudeploy.codegen.emit) unchanged: the build places
its arena and its constants in the linker script's .arena and .weights sections, on the board's
arena and weights regions, through the library's own section macros (NAME_ARENA_SECTION,
NAME_WEIGHTS_SECTION), as a user of the library would. Its code is compiled with the rest, so the
call graph the stack is sized from covers it.

The stack sits below the data in its region, so its size moves the data: the firmware is linked
with a guess, and linked again (only the link: the code does not change) when the call graph asks
for another size. The guess is the size an earlier build of the same sources got (a few bytes per
build in the cache's stack-sizes/), so a repeated build links once.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from mcudeploy.boards import Board
from mcudeploy.codegen.cname import macro_prefix
from mcudeploy.errors import BuildError
from mcudeploy.manifest import Manifest
from mcudeploy.nnlib import NNLibrary, used_identifiers
from mcudeploy.resources import cache_dir, firmware_dir, project_root
from mcudeploy.stack import FAULT_STACK_BYTES, GUARD_BYTES, StackPlan, plan_stack
from mcudeploy.toolchain import TOOLCHAIN_PREFIX, cpu_flags, find_compiler

_ERROR_LINE = re.compile(r": (fatal )?error: |: internal compiler error: |(^|/)ld: ")
_FAILED_LOGS_KEPT = 20
STALE_LOCK_SECONDS = 30  # SCons holds its cache lock for an instant: older is left by a killed build
_BIN_GAP = 64 * 1024  # a larger gap between loaded bytes: no .bin

# Flags of some NN library kernels, chosen by measurement on QEMU (the SConstruct's comment says
# why): (pattern of the source file's name, extra flags). Measured with Arm's CMSIS-NN 7.0.0, in
# instructions per inference, M55 / M4: ds_cnn 1,895,469 -> 1,808,875 / 7,639,680 -> 7,618,800,
# mobilenet_v1_025_vww 6,879,219 -> 6,532,500 / 24,513,440 -> 23,969,560, tiny_cnn 92,562 ->
# 92,469 / 205,880 -> 203,840; with nnref no model got slower (tiny_cnn 546,688 -> 545,125 /
# 482,000 -> 474,920). Building the whole library without link-time optimisation instead, as TFLM
# does, gains on the depthwise layers but loses more on ADD, pooling and the M4's convolutions.
KERNEL_FLAGS: tuple[tuple[re.Pattern, tuple[str, ...]], ...] = (
    (re.compile(r"depthwise"), ("-fno-inline-functions-called-once",)),
)


def kernel_flags(source: Path) -> tuple[str, ...]:
    """The extra compiler flags of one NN library source (KERNEL_FLAGS)."""
    name = Path(source).name
    return tuple(flag for pattern, flags in KERNEL_FLAGS if pattern.search(name) for flag in flags)


def render_linker_script(board: Board, stack_bytes: int | None = None,
                         fault_stack_bytes: int = FAULT_STACK_BYTES) -> str:
    """The GNU ld script placing vectors, code, weights, stack, data and arena as the board says
    (the first of its choices for the weights and the arena unless `board` is Board.placed),
    with a stack of `stack_bytes` (default: the board's maximum, `placement.stack_bytes`) and the
    fault handler's stack of `fault_stack_bytes` over the arena's top."""
    board = board.placed()
    size = board.placement.stack_bytes if stack_bytes is None else stack_bytes
    if size % 8 or not 0 <= size <= board.placement.stack_bytes:
        raise BuildError(f"board {board.name}: a stack of {size} bytes is not a multiple of 8 within "
                         f"0..stack_bytes ({board.placement.stack_bytes})")
    from mcudeploy.codegen.emit import template_environment  # codegen imports this module

    return template_environment().get_template("linker.ld.j2").render(
        board=board, p=board.placement, stack_bytes=size, fault_stack_bytes=fault_stack_bytes)


def board_defines(board: Board) -> dict[str, str]:
    """The -D values the runtime needs (firmware/runtime/runtime.h and the UART driver's file)."""
    uart = board.uart
    defines = {
        "MCD_UART_BASE": f"0x{uart.base:08X}u",
        "MCD_SEMIHOSTING": "1" if board.semihosting else "0",
        "MCD_HAS_FPU": "1" if board.fpu or board.mve != "none" else "0",
        "MCD_SYSTICK_HZ": f"{board.clock_hz}u",
        "MCD_STACK_GUARD_BYTES": f"{GUARD_BYTES}u",
    }
    if uart.rx_irq is not None:
        defines["MCD_UART_RX_IRQ"] = str(uart.rx_irq)
    if uart.kind == "cmsdk":
        return defines | {"MCD_UART_CMSDK": "1", "MCD_UART_BAUDDIV": str(uart.bauddiv)}
    return defines | {
        "MCD_UART_STM32": "1",
        "MCD_UART_BRR": f"0x{uart.brr:X}u",
        "MCD_UART_ENABLES": ",".join(f"0x{e.reg:08X}u,{e.bit}u" for e in uart.enable),
        "MCD_UART_GPIO": f"0x{uart.gpio:08X}u",
        "MCD_UART_TX_PIN": f"{uart.tx_pin}u",
        "MCD_UART_RX_PIN": f"{uart.rx_pin}u",
        "MCD_UART_AF": f"{uart.af}u",
    }


def model_placement(model_dir: Path) -> dict[str, str]:
    """For a generated model (its manifest.json in `model_dir`): the regions code generation chose
    for its weights and arena (mcudeploy.codegen.fit.choose_placement); else none."""
    manifest = Path(model_dir) / "manifest.json"
    return Manifest.load(manifest).placement if manifest.is_file() else {}


def placement_defines(model_dir: Path) -> dict[str, str]:
    """For a generated model (its manifest.json in `model_dir`): the section macros that put its
    arena in .arena and its constants in .weights (C strings, escaped for SCons's shell)."""
    manifest = Path(model_dir) / "manifest.json"
    if not manifest.is_file():
        return {}
    macro = macro_prefix(Manifest.load(manifest).name)
    return {f"{macro}_ARENA_SECTION": '\\".arena\\"', f"{macro}_WEIGHTS_SECTION": '\\".weights\\"'}


def build_firmware(
    board: Board,
    model_dir: Path,
    build_dir: Path,
    library: NNLibrary,
    *,
    extra_sources: tuple[Path, ...] = (),
    extra_defines: dict[str, str] | None = None,
) -> Path:
    """Build the firmware for `board` from the model in `model_dir`; returns the ELF path. Its
    stack plan is beside it (`stack_plan(elf)`).

    `extra_defines` (e.g. MCD_MAX_CHUNK, MCD_MAX_LAYERS) reach the runtime, the model and the
    extra sources, not the NN library. Of the library, only the sources behind the functions the
    model and the extra sources call are compiled (NNLibrary.sources_for_files). Objects are cached
    across builds (SCons CacheDir).
    """
    find_compiler()
    model_dir = Path(model_dir).resolve()
    build_dir = Path(build_dir).resolve()
    if not any(model_dir.glob("*.c")):
        raise BuildError(f"no C sources in the model directory {model_dir}")
    build_dir.mkdir(parents=True, exist_ok=True)
    board = board.placed(**model_placement(model_dir))
    linker_script = build_dir / "linker.ld"
    callgraph_dir = build_dir / "callgraph"
    runtime = firmware_dir() / "runtime"
    elf = build_dir / "firmware.elf"
    nn_sources = library.sources_for_files([*model_dir.glob("*.c"), *extra_sources])
    config = {
        "toolchain_prefix": TOOLCHAIN_PREFIX,
        "cpu_flags": list(cpu_flags(board)),
        "defines": board_defines(board) | placement_defines(model_dir) | (extra_defines or {}),
        "runtime_sources": [str(s) for s in sorted(runtime.glob("*.c"))],
        "runtime_include_dirs": [str(firmware_dir() / "include"), str(runtime)],
        "include_dirs": [str(firmware_dir() / "include")],
        "nn_include_dirs": [str(Path(d).resolve()) for d in library.include_dirs],
        "nn_sources": [str(Path(s).resolve()) for s in nn_sources],
        "nn_flags": list(library.cflags),
        "nn_source_flags": {str(Path(s).resolve()): list(kernel_flags(s)) for s in nn_sources
                            if kernel_flags(s)},
        "model_dir": str(model_dir),
        "extra_sources": [str(Path(s).resolve()) for s in extra_sources],
        "linker_script": str(linker_script),
        "elf": str(elf),
        "callgraph_dir": str(callgraph_dir),
        "variant_dir": str(build_dir / "obj"),
        "cache_dir": str(cache_dir() / "scons"),
    }
    config_path = build_dir / "build.json"
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    clear_stale_cache_lock(Path(config["cache_dir"]))
    sources = [*model_dir.glob("*.c"), *extra_sources]
    remembered = cache_dir() / "stack-sizes" / _sources_key(config, sources)
    guess = _remembered_sizes(remembered)
    log = build_dir / "build.log"
    log.write_text("", encoding="utf-8")
    for _ in range(2):
        linker_script.write_text(render_linker_script(board, *guess), encoding="utf-8")
        elf.unlink(missing_ok=True)  # linked again: the link writes the call graph of what it compiles
        shutil.rmtree(callgraph_dir, ignore_errors=True)
        callgraph_dir.mkdir()
        _scons(config_path, model_dir, build_dir, library, sources, log)
        plan = plan_stack(board, sorted([*callgraph_dir.glob("*.ci"), *(build_dir / "obj").rglob("*.ci")]),
                          elf)
        if (plan.bytes, plan.fault_stack) == guess:
            break
        guess = (plan.bytes, plan.fault_stack)
    else:
        raise BuildError(f"the stack plan of {elf} changed when it was linked again ({guess[0]} B, then "
                         f"{plan.bytes} B): the code depends on the stack's size")
    plan.save(stack_plan_path(elf))
    remembered.parent.mkdir(exist_ok=True)
    remembered.write_text(f"{plan.bytes} {plan.fault_stack}", encoding="utf-8")
    write_images(elf)
    return elf


def _remembered_sizes(path: Path) -> tuple[int, int]:
    """The stack and fault stack sizes the last build of the same sources got (a guess that
    usually saves the second link); (0, FAULT_STACK_BYTES) when none is remembered."""
    fields = path.read_text(encoding="utf-8").split() if path.is_file() else []
    if len(fields) == 2 and all(f.isdigit() for f in fields):
        return int(fields[0]), int(fields[1])
    return 0, FAULT_STACK_BYTES


def clear_stale_cache_lock(scons_cache: Path) -> None:
    """SCons guards its cache's `config` file with a lock file that each build holds for an instant
    (and for 5 s at most waits on). One left behind by a build killed at that instant would fail every
    later build; a lock older than STALE_LOCK_SECONDS is such a one, and is removed."""
    lock = scons_cache / "config.lock"
    try:
        if time.time() - lock.stat().st_mtime > STALE_LOCK_SECONDS:
            lock.unlink(missing_ok=True)
    except FileNotFoundError:
        pass


def stack_plan_path(elf: Path) -> Path:
    """Where build_firmware keeps the stack plan of `elf`."""
    return elf.with_name("stack.json")


def stack_plan(elf: Path) -> StackPlan:
    """The stack plan build_firmware made for `elf`."""
    return StackPlan.load(stack_plan_path(elf))


def _sources_key(config: dict, sources: list[Path]) -> str:
    """A name for what decides the code: the build's settings (but where its files go) and the
    model's and extra sources' contents."""
    digest = hashlib.sha256()
    placed = ("model_dir", "extra_sources", "linker_script", "elf", "callgraph_dir", "variant_dir")
    settings = {k: v for k, v in config.items() if k not in placed}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for source in sorted(sources):
        digest.update(Path(source).read_bytes())
    return digest.hexdigest()[:32]


def _scons(config_path: Path, model_dir: Path, build_dir: Path, library: NNLibrary, sources: list[Path],
           log: Path) -> None:
    """Run SCons on build.json, adding its output to `log`; a failure is a BuildError naming the
    first error and a copy of the log kept in the cache."""
    command = [
        sys.executable, "-m", "SCons", "-Q", "-s", "-j2",
        "-f", str(project_root() / "SConstruct"), f"BUILD_CONFIG={config_path}",
    ]
    # in the directory holding both, below which the SConstruct names paths relative to it
    result = subprocess.run(command, cwd=os.path.commonpath([model_dir, build_dir]), capture_output=True,
                            text=True)
    output = result.stdout + result.stderr
    with log.open("a", encoding="utf-8") as f:
        f.write(output)
    if result.returncode != 0:
        first = _first_error(result.stderr)
        kept = _keep_failed_log(output)
        raise BuildError(f"firmware build failed (log: {kept}): {first}"
                         f"{_library_part(first, library, sources)}")


def write_images(elf: Path) -> list[Path]:
    """The ELF's loadable image beside it as Intel HEX (`.hex`) and, when it is one contiguous
    block, as a raw binary (`.bin`) starting at its lowest address; returns the files written.
    An image spread over several memory regions (the M55 boards' code in ITCM and weights in SRAM)
    has no .bin: objcopy would fill the gap between them."""
    objcopy = find_compiler().with_name(f"{TOOLCHAIN_PREFIX}objcopy")
    written = [elf.with_suffix(".hex")]
    if _contiguous(elf):
        written.append(elf.with_suffix(".bin"))
    elf.with_suffix(".bin").unlink(missing_ok=True)
    for image in written:
        kind = "ihex" if image.suffix == ".hex" else "binary"
        result = subprocess.run([str(objcopy), "-O", kind, str(elf), str(image)], capture_output=True,
                                text=True)
        if result.returncode != 0:
            raise BuildError(f"objcopy could not write {image.name}: {result.stderr.strip()}")
    return written


def _contiguous(elf: Path) -> bool:
    """Whether the loadable bytes (by load address) leave no gap larger than _BIN_GAP."""
    with open(elf, "rb") as f:
        spans = sorted((s["p_paddr"], s["p_paddr"] + s["p_filesz"]) for s in ELFFile(f).iter_segments()
                       if s["p_type"] == "PT_LOAD" and s["p_filesz"] > 0)
    return all(start - end <= _BIN_GAP for (_, end), (start, _) in itertools.pairwise(spans))


def _keep_failed_log(output: str) -> Path:
    """The compiler's output of a failed build, kept where it survives the build directory (which is
    usually a staging directory, removed on the error): the user cache's build-logs/, the newest
    `_FAILED_LOGS_KEPT` only."""
    folder = cache_dir() / "build-logs"
    folder.mkdir(exist_ok=True)
    log = folder / f"failed-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{secrets.token_hex(2)}.log"
    log.write_text(output, encoding="utf-8")
    for old in sorted(folder.glob("failed-*.log"))[:-_FAILED_LOGS_KEPT]:  # named oldest first
        old.unlink(missing_ok=True)
    return log


def _library_part(error: str, library: NNLibrary, files: list[Path]) -> str:
    """When the error is in a library source: which of the functions the model calls need it. When
    it is a function the library declares but none of its sources defines: say so."""
    missing = re.search(r"undefined reference to `(\w+)'", error)
    if missing and library.prototype(missing.group(1)) is not None:
        return (f" ({library.name} declares {missing.group(1)}() but none of the sources its "
                "description lists defines it)")
    source = next((s for s in library.sources if str(Path(s).resolve()) in error or str(s) in error), None)
    if source is None:
        return ""
    functions = sorted(f for f in used_identifiers(files) if source in library.sources_for([f]))
    return f" ({library.name}'s {Path(source).name}, which the model needs for {', '.join(functions)})"


def _first_error(output: str) -> str:
    """The compiler's or linker's first error line (a compiler crash first; the linker's path
    shortened to `ld:`)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "internal compiler error" in line]  # the compiler crashed
    errors = errors or [line for line in lines if "undefined reference to" in line]
    errors = errors or [line for line in lines if _ERROR_LINE.search(line)]
    first = (errors or lines or ["no output"])[0]
    return re.sub(r"^\S*/ld: ", "ld: ", first)


def firmware_sizes(elf: Path) -> dict[str, int]:
    """Bytes per part of the image: code (vectors, text, rodata), weights, data, bss, arena,
    fault_stack (what the .arena section grew by to hold the fault handler's stack when the arena
    is smaller: static RAM, else 0), stack, plus image (what gets loaded: code + weights + data)
    and ram (data + bss + arena + fault_stack + stack)."""
    sizes = dict.fromkeys(("code", "weights", "data", "bss", "arena", "fault_stack", "stack"), 0)
    with open(elf, "rb") as f:
        image = ELFFile(f)
        for section in image.iter_sections():
            if not section["sh_flags"] & SH_FLAGS.SHF_ALLOC:
                continue
            part = section.name.lstrip(".")
            sizes[part if part in sizes else "code"] += section["sh_size"]
        symbols = image.get_section_by_name(".symtab")
        ends = symbols.get_symbol_by_name("__arena_end__") if symbols else None
        starts = symbols.get_symbol_by_name("__arena_start__") if symbols else None
        if ends and starts:
            arena = ends[0]["st_value"] - starts[0]["st_value"]
            sizes["fault_stack"], sizes["arena"] = sizes["arena"] - arena, arena
    sizes["image"] = sizes["code"] + sizes["weights"] + sizes["data"]
    sizes["ram"] = sizes["data"] + sizes["bss"] + sizes["arena"] + sizes["fault_stack"] + sizes["stack"]
    return sizes

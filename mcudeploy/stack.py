"""The firmware's stack: sized at build time from GCC's call graph, measured on the device.

The bound. GCC writes, for every function it compiles with `-fcallgraph-info=su` (the runtime at
compile time, the model and the NN library at link time, after link-time optimisation), the
function's frame in bytes and every call its final code makes: calls of inlined functions, calls
the compiler inserts (memcpy, memset, library helpers) and each indirect call, as one placeholder.
The deepest path from `Reset_Handler` is the thread bound; an indirect call may reach any function
whose address the image stores outside the vector table (the model's layer table, the UART's
`putc` handed to the COBS encoder). A function without a frame figure (assembly, a library
compiled without the option), a frame of dynamic size or recursion leave no bound.

Exceptions come on top. The interrupts (SysTick and the UART's receive interrupt) share one
priority, so at most one preempts the thread: its exception frame, 4 bytes of alignment padding and
its handler's own path. A fault can come on top of that, and its handler switches to its own stack
(firmware/runtime/fault.c) once the CPU has pushed the fault's frame: one more frame and padding.
That fault stack lies over the top of the arena, dead once a fault is reported (linker.ld.j2): the
deepest path of `mcd_fault_report` plus one more exception frame (a fault inside the handler, which
escalates to HardFault, or an NMI pushes it before the entry moves the stack pointer back to the
top), rounded up to 8 bytes; FAULT_STACK_BYTES when the call graph gives no bound for it.
A frame is 32 bytes, or 104 bytes on a CPU with an FPU or MVE (the extended frame: lazy stacking
reserves room for s0-s15, FPSCR and VPR).

The stack is the thread bound plus both exception allowances, rounded up to 8 bytes; the board's
`stack_bytes` is its maximum, used as it is when there is no bound. Its lowest `GUARD_BYTES` lie in
the fault's allowance, which nothing but a fault reaches: the device checks after each request that
they still hold the paint it put there at reset (firmware/runtime/stack.c), and the host checks that
the high-water mark the device measures stays within the thread and interrupt bound.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection

from mcudeploy.boards import Board
from mcudeploy.errors import DeviceFault

GUARD_BYTES = 32
FRAME_BYTES = 32
FP_FRAME_BYTES = 104
ALIGNMENT_PAD = 4
THREAD_ENTRY = "Reset_Handler"
FAULT_HANDLER = "mcd_fault_entry"
FAULT_REPORT = "mcd_fault_report"
FAULT_STACK_BYTES = 512
_INDIRECT = "__indirect_call"
_NODE = re.compile(r'^node: \{ title: "([^"]*)" label: "([^"]*)"(.*)\}$')
_EDGE = re.compile(r'^edge: \{ sourcename: "([^"]*)" targetname: "([^"]*)"')
_FRAME = re.compile(r"\\n(\d+) bytes \(([a-z,]+)\)$")
_R_ARM_ABS32 = 2
# Branch relocations (ARM ELF ABI): R_ARM_CALL, _JUMP24, _THM_CALL, _THM_JUMP24, _THM_JUMP19,
# _THM_JUMP6, _THM_JUMP11, _THM_JUMP8, _PC24, _PLT32, _PREL31 (unwinding)
_BRANCHES = {28, 29, 10, 30, 51, 52, 102, 103, 1, 27, 42}


@dataclass(frozen=True)
class StackPlan:
    """The stack a firmware gets and why. `bytes`: its size; `bound`: the deepest the thread and
    one interrupt can reach (None: no bound, then `note` says why and `bytes` is the board's
    maximum); `thread`, `interrupt`, `fault`: its parts; `path`: the deepest thread path;
    `fault_stack`: the fault handler's own stack (over the arena's top)."""

    bytes: int
    maximum: int
    bound: int | None = None
    thread: int | None = None
    interrupt: int | None = None
    fault: int = 0
    path: tuple[str, ...] = ()
    note: str = ""
    fault_stack: int = FAULT_STACK_BYTES

    def describe(self) -> str:
        """One line: the size and where it comes from."""
        if self.bound is None:
            return f"{self.bytes:,} B (the board's stack_bytes: {self.note})"
        capped = f"; {self.note}" if self.note else ""
        return (f"{self.bytes:,} B = call-graph bound {self.thread:,} + interrupt {self.interrupt:,} "
                f"+ fault frame {self.fault:,}{capped}")

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")

    @staticmethod
    def load(path: Path) -> StackPlan:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return StackPlan(**{**raw, "path": tuple(raw["path"])})


@dataclass(frozen=True)
class _Function:
    name: str
    frame: int | None  # None: GCC gave no figure (an external it did not compile)
    dynamic: bool = False


class CallGraph:
    """Functions and calls from GCC's .ci files (VCG). A function is named by its title: global
    functions by their symbol, file-local ones as `file:symbol`."""

    def __init__(self) -> None:
        self.functions: dict[str, _Function] = {}
        self.calls: dict[str, list[str]] = {}

    @staticmethod
    def read(files: Iterable[Path]) -> CallGraph:
        graph = CallGraph()
        for file in files:
            for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
                if node := _NODE.match(line):
                    graph._add(node.group(1), node.group(2))
                elif edge := _EDGE.match(line):
                    graph.calls.setdefault(edge.group(1), []).append(edge.group(2))
        return graph

    def _add(self, title: str, label: str) -> None:
        frame = _FRAME.search(label)
        name = label.split("\\n", 1)[0]
        if frame is None:
            self.functions.setdefault(title, _Function(name, None))
            return
        kind = frame.group(2)
        self.functions[title] = _Function(name, int(frame.group(1)), kind == "dynamic")

    def add_folded(self, aliases: dict[str, set[str]]) -> None:
        """Give each called function without a node of its own the node of the functions at its
        address: GCC's identical code folding (`-fipa-icf`) keeps one body for several identical
        functions (generated kernels whose texts differ only in code the compiler removes) and
        writes a node for that body only. The folded name gets the largest frame and every call of
        those (one body: the same)."""
        called = {t for calls in self.calls.values() for t in calls if t != _INDIRECT}
        for title in sorted(called - set(self.functions)):
            prefix, sep, symbol = title.rpartition(":")
            titles = [f"{prefix}{sep}{other}" for other in sorted(aliases.get(symbol, ()))
                      if f"{prefix}{sep}{other}" in self.functions]
            bodies = [self.functions[t] for t in titles]
            if not bodies or any(b.frame is None for b in bodies):
                continue
            self.functions[title] = _Function(symbol, max(b.frame or 0 for b in bodies),
                                              any(b.dynamic for b in bodies))
            self.calls[title] = [c for t in titles for c in self.calls.get(t, ())]

    def titles_of(self, symbol: str) -> list[str]:
        """The functions an ELF symbol may be (a file-local name can exist in several files)."""
        return [t for t in self.functions if t == symbol or t.rpartition(":")[2] == symbol]


class _NoBound(Exception):
    """The call graph gives no bound: the message says why."""


class _Depths:
    """The deepest stack use below each function: its frame plus its deepest callee's."""

    def __init__(self, graph: CallGraph, indirect: list[str]) -> None:
        self.graph, self.indirect = graph, indirect
        self.memo: dict[str, tuple[int, tuple[str, ...]]] = {}
        self.active: set[str] = set()

    def of(self, title: str, caller: str = "") -> tuple[int, tuple[str, ...]]:
        if title in self.memo:
            return self.memo[title]
        function = self.graph.functions.get(title)
        name = function.name if function else title
        if title in self.active:
            raise _NoBound(f"{name} calls itself (recursion)")
        if function is None or function.frame is None:
            called = f", which {caller} calls" if caller else ""
            raise _NoBound(f"GCC gave no stack figure for {name}{called}")
        if function.dynamic:
            raise _NoBound(f"{name} has a frame of dynamic size")
        self.active.add(title)
        deepest: tuple[int, tuple[str, ...]] = (0, ())
        for callee in dict.fromkeys(self.graph.calls.get(title, ())):
            targets = self.indirect if callee == _INDIRECT else [callee]
            for target in targets:
                depth = self.of(target, name)
                deepest = max(deepest, depth, key=lambda d: d[0])
        self.active.discard(title)
        self.memo[title] = (function.frame + deepest[0], (function.name, *deepest[1]))
        return self.memo[title]


def exception_frame(board: Board) -> int:
    """Bytes one exception entry may push: its frame (extended with an FPU or MVE) and padding."""
    fp = board.fpu or board.mve != "none"
    return (FP_FRAME_BYTES if fp else FRAME_BYTES) + ALIGNMENT_PAD


def plan_stack(board: Board, callgraph_files: list[Path], elf: Path) -> StackPlan:
    """The stack for the firmware `elf` (linked with any stack size: the code does not depend on
    it) on `board`, from the call graph GCC wrote for its code."""
    maximum = board.placement.stack_bytes
    fault = exception_frame(board)
    if not callgraph_files:
        return StackPlan(maximum, maximum, fault=fault, note="the compiler wrote no call graph")
    graph = CallGraph.read(callgraph_files)
    addresses = code_addresses(elf)
    if addresses is None:
        return StackPlan(maximum, maximum, fault=fault, note="the image keeps no relocations (--emit-relocs)")
    handlers, stored = addresses
    aliases = folded_functions(elf)
    graph.add_folded(aliases)
    indirect = [t for name in sorted(stored)
                for t in graph.titles_of(name) or [t for alias in sorted(aliases.get(name, ()))
                                                   for t in graph.titles_of(alias)]]
    fault_stack = fault_stack_bytes(board, graph, indirect)
    depths = _Depths(graph, indirect)
    try:
        thread, path = depths.of(THREAD_ENTRY)
        interrupts = [depths.of(t)[0] for name in handlers if name not in (THREAD_ENTRY, FAULT_HANDLER)
                      for t in graph.titles_of(name) or [name]]
    except _NoBound as exc:
        return StackPlan(maximum, maximum, fault=fault, note=str(exc), fault_stack=fault_stack)
    interrupt = max(interrupts, default=0) + exception_frame(board)
    bound = thread + interrupt
    size = -(-(bound + fault) // 8) * 8
    note = ""
    if size > maximum:
        note = f"capped at the board's stack_bytes {maximum:,} B"
        size = maximum
    return StackPlan(size, maximum, bound, thread, interrupt, fault, path, note, fault_stack)


def fault_stack_bytes(board: Board, graph: CallGraph, indirect: list[str]) -> int:
    """The fault handler's own stack: its deepest path and one more exception frame, rounded up to
    8 bytes; FAULT_STACK_BYTES when the call graph gives no bound for the handler."""
    depths = _Depths(graph, indirect)
    try:
        deepest = max((depths.of(t)[0] for t in graph.titles_of(FAULT_REPORT)), default=None)
    except _NoBound:
        return FAULT_STACK_BYTES
    if deepest is None:
        return FAULT_STACK_BYTES
    return -(-(deepest + exception_frame(board)) // 8) * 8


def folded_functions(elf: Path) -> dict[str, set[str]]:
    """For each function symbol, the other function symbols at its address (identical functions
    GCC folded into one body)."""
    with open(elf, "rb") as f:
        at: dict[int, set[str]] = {}
        for symbol in ELFFile(f).get_section_by_name(".symtab").iter_symbols():
            if symbol["st_info"]["type"] == "STT_FUNC" and symbol["st_value"]:
                at.setdefault(symbol["st_value"], set()).add(symbol.name)
    return {name: names - {name} for names in at.values() if len(names) > 1 for name in names}


def code_addresses(elf: Path) -> tuple[list[str], set[str]] | None:
    """The functions the vector table names, and those whose address the code or data stores
    (function pointers: the model's layer table, a callback passed as an argument), from the
    relocations the link keeps (`--emit-relocs`): a 32-bit word the linker filled with a
    function's address, or an address-forming instruction naming a function. Branches and the
    unwinding tables are not addresses taken. None: the image carries no relocations."""
    with open(elf, "rb") as f:
        image = ELFFile(f)
        symbols = image.get_section_by_name(".symtab")
        functions: dict[int, list[str]] = {}
        for symbol in symbols.iter_symbols():
            if symbol["st_info"]["type"] == "STT_FUNC" and symbol["st_value"]:
                functions.setdefault(symbol["st_value"] | 1, []).append(symbol.name)
        handlers: list[str] = []
        stored: list[str] = []
        relocated = False
        for relocations in image.iter_sections():
            if not isinstance(relocations, RelocationSection):
                continue
            target = image.get_section(relocations["sh_info"])
            if not target["sh_flags"] & SH_FLAGS.SHF_ALLOC or target.name.startswith(".ARM.ex"):
                continue
            relocated = True
            data, base = target.data(), target["sh_addr"]
            found = handlers if target.name == ".vectors" else stored
            for r in relocations.iter_relocations():
                kind = r["r_info_type"]
                if kind == _R_ARM_ABS32:
                    (word,) = struct.unpack_from("<I", data, r["r_offset"] - base)
                    found.extend(functions.get(word, ()))
                elif kind not in _BRANCHES:
                    symbol = symbols.get_symbol(r["r_info_sym"])
                    if symbol["st_info"]["type"] == "STT_FUNC":
                        found.append(symbol.name)
    return (list(dict.fromkeys(handlers)), set(stored)) if relocated else None


class StackBeyondBound(DeviceFault):
    """The device's stack high-water mark is above the bound its stack was sized from."""


def check_within_bound(plan: StackPlan, used: int) -> None:
    """A high-water mark of `used` bytes above the plan's bound is a StackBeyondBound error: the
    code took a path the call graph does not show (no bound: nothing to check)."""
    if plan.bound is not None and used > plan.bound:
        raise StackBeyondBound(f"the device's stack high-water mark is {used:,} B, above the "
                               f"{plan.bound:,} B bound its stack was sized from (stack {plan.describe()}): "
                               "a path the call graph does not show")


@dataclass(frozen=True)
class StackMarks:
    """High-water marks the device measured (bytes from the top of the stack): after the handshake
    (start-up, the protocol, interrupts taken while waiting) and with everything the sessions ran.
    None: not read (the run stopped before)."""

    handshake: int | None = None
    peak: int | None = None

    def with_session(self, handshake: int | None, end: int | None) -> StackMarks:
        """These marks and one more session's."""
        return StackMarks(_highest(self.handshake, handshake), _highest(self.peak, end, handshake))


def _highest(*values: int | None) -> int | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def stack_figures(plan: StackPlan, marks: StackMarks) -> dict:
    """The stack as reports show it: the plan (and the fault handler's stack over the arena) and
    what the device measured."""
    return {"bytes": plan.bytes, "measured": marks.peak, "handshake": marks.handshake, "bound": plan.bound,
            "thread": plan.thread, "interrupt": plan.interrupt, "fault": plan.fault, "maximum": plan.maximum,
            "path": list(plan.path), "note": plan.note, "fault_stack": plan.fault_stack}

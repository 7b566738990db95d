"""Boards as data: one TOML file per board in `boards/`, validated against a schema.

A typo in a field name, a missing field, a wrong type, an impossible CPU feature, overlapping
memory regions or one past 4 GiB, a register address no peripheral can have (0, unaligned, the
core's own, inside a memory region) is a `BoardError` naming the file, the line and the field
(mcudeploy/tomlerrors.py).
"""

from __future__ import annotations

import itertools
import tomllib
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mcudeploy.errors import BoardError
from mcudeploy.resources import boards_dir
from mcudeploy.tomlerrors import FieldError, describe, locate

CpuName = Literal[
    "cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m23", "cortex-m33",
    "cortex-m35p", "cortex-m55",
]
Address = Annotated[int, Field(ge=0, lt=2**32)]
# The NVIC line a UART's receive interrupt raises (v8-M has at most 480 lines). Optional: with it
# the device sleeps (WFI) while it waits for a byte, without it, it polls the UART at full speed.
RxIrq = Annotated[int | None, Field(ge=0, lt=480)]


@dataclass(frozen=True)
class CpuFeatures:
    """What a CPU can have: an FPU, the DSP extension (never, always, or an option), Helium."""

    fpu: bool
    dsp: Literal["never", "always", "optional"]
    mve: bool = False


CPUS: dict[str, CpuFeatures] = {
    "cortex-m0plus": CpuFeatures(fpu=False, dsp="never"),
    "cortex-m3": CpuFeatures(fpu=False, dsp="never"),
    "cortex-m4": CpuFeatures(fpu=True, dsp="always"),
    "cortex-m7": CpuFeatures(fpu=True, dsp="always"),
    "cortex-m23": CpuFeatures(fpu=False, dsp="never"),
    "cortex-m33": CpuFeatures(fpu=True, dsp="optional"),
    "cortex-m35p": CpuFeatures(fpu=True, dsp="optional"),
    "cortex-m55": CpuFeatures(fpu=True, dsp="optional", mve=True),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


_PPB = (0xE0000000, 0xE0100000)  # the Private Peripheral Bus: the core's own NVIC, SysTick, SCB


def register_problem(address: int) -> str | None:
    """Why a peripheral register cannot be at `address` (the runtime reads and writes every one as
    a 32-bit word), or None."""
    if address < 0x1000:
        return (f"0x{address:08X} is in the first 4 KiB, where the vector table starts; no peripheral "
                "sits there (GCC rejects an access below 0x1000 as a null-pointer dereference)")
    if address % 4:
        return f"0x{address:08X} is not 4-byte aligned: the registers are 32-bit words"
    if _PPB[0] <= address < _PPB[1]:
        return (f"0x{address:08X} is in the Private Peripheral Bus (0x{_PPB[0]:08X}..0x{_PPB[1] - 1:08X}), "
                "which holds the core's own registers (NVIC, SysTick, SCB)")
    return None


class _Registers(_Strict):
    """A peripheral whose fields `registers` names are addresses of 32-bit registers."""

    @abstractmethod
    def registers(self) -> list[tuple[tuple[str | int, ...], int]]:
        """(field, address) of every register address the board file gives for this peripheral."""

    @model_validator(mode="after")
    def _plausible_registers(self) -> _Registers:
        for loc, address in self.registers():
            problem = register_problem(address)
            if problem:
                raise FieldError(loc, problem)
        return self


class CmsdkUart(_Registers):
    """Arm's CMSDK APB UART (the MPS2/MPS3 FPGA images and QEMU's models of them)."""

    kind: Literal["cmsdk"]
    base: Address
    bauddiv: int = Field(ge=16, lt=2**20)
    rx_irq: RxIrq = None

    def registers(self) -> list[tuple[tuple[str | int, ...], int]]:
        return [(("base",), self.base)]


class EnableBit(_Strict):
    """One bit set before the UART is touched: a peripheral clock, an I/O supply."""

    reg: Address
    bit: int = Field(ge=0, le=31)
    what: str = Field(min_length=1)


class Stm32Uart(_Registers):
    """ST's USART or LPUART of the STM32F0/F3/F7/G0/G4/H7/L4/L5/U5 families (registers ISR, ICR,
    RDR, TDR; not the F1/F2/F4 USART), with its two pins on one GPIO port."""

    kind: Literal["stm32-usart", "stm32-lpuart"]
    base: Address
    baud: int = Field(gt=0)
    clock_hz: int = Field(gt=0)
    gpio: Address
    tx_pin: int = Field(ge=0, le=15)
    rx_pin: int = Field(ge=0, le=15)
    af: int = Field(ge=0, le=15)
    enable: list[EnableBit] = Field(min_length=1, max_length=8)
    rx_irq: RxIrq = None  # the UART's global interrupt

    def registers(self) -> list[tuple[tuple[str | int, ...], int]]:
        return [(("base",), self.base), (("gpio",), self.gpio),
                *((("enable", j, "reg"), e.reg) for j, e in enumerate(self.enable))]

    @property
    def brr(self) -> int:
        """The BRR value: clock/baud (USART, oversampling by 16), 256*clock/baud (LPUART)."""
        scale = 256 if self.kind == "stm32-lpuart" else 1
        return (scale * self.clock_hz + self.baud // 2) // self.baud

    @model_validator(mode="after")
    def _reachable(self) -> Stm32Uart:
        low, high = (0x300, 2**20) if self.kind == "stm32-lpuart" else (16, 2**16)
        if not low <= self.brr < high:
            raise FieldError(("baud",), f"{self.baud} baud from a {self.clock_hz} Hz clock needs BRR "
                                      f"{self.brr}, outside {self.kind}'s {low}..{high - 1}")
        return self


Uart = Annotated[CmsdkUart | Stm32Uart, Field(discriminator="kind")]
_UART_KINDS = ("cmsdk", "stm32-usart", "stm32-lpuart")


class MemoryRegion(_Strict):
    """A range of the address space: TCM, SRAM, flash, DDR."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    origin: Address
    length: int = Field(gt=0, le=2**32)

    @property
    def end(self) -> int:
        return self.origin + self.length

    @model_validator(mode="after")
    def _within_4gib(self) -> MemoryRegion:
        if self.end > 2**32:
            raise FieldError(("length",), f"region {self.name} at 0x{self.origin:08X} with length "
                                          f"0x{self.length:X} ends at 0x{self.end:X}, past the 32-bit "
                                          "address space (0xFFFFFFFF)")
        return self


PLACED_BY_SIZE = ("weights", "arena")  # the parts a board may give several regions for


class Placement(_Strict):
    """Which region holds each part of the firmware image. The weights and the arena may name
    several regions, in order of preference: each model takes the first that fits it
    (mcudeploy.codegen.fit.choose_placement). `stack_bytes` is the largest stack a firmware may
    have: the build sizes the stack from the call graph of its code, up to this, and takes this
    when the call graph gives no bound (mcudeploy.stack)."""

    vectors: str
    code: str
    weights: str | list[str]
    data: str
    arena: str | list[str]
    stack: str
    stack_bytes: int = Field(ge=1024, multiple_of=8)

    def choices(self, part: str) -> list[str]:
        """The regions `part` may go to, in order of preference."""
        value = getattr(self, part)
        return [value] if isinstance(value, str) else list(value)

    def resolved(self, **regions: str) -> Placement:
        """This placement with one region for each part placed by size: the ones given, else the
        first choice."""
        picked = {part: regions.get(part, self.choices(part)[0]) for part in PLACED_BY_SIZE}
        for part, region in picked.items():
            if region not in self.choices(part):
                raise ValueError(f"{part} cannot go to region {region!r} (choices: {self.choices(part)})")
        return self.model_copy(update=picked)


class Qemu(_Strict):
    """How QEMU emulates the board. Under `-icount shift=0` one instruction takes 1 ns, so one
    SysTick tick is 1e9 / (the SysTick clock QEMU models) instructions."""

    machine: str
    instructions_per_tick: float = Field(gt=0)


class Fvp(_Strict):
    """How an Arm Fixed Virtual Platform runs the board: the model's executable, the telnet
    terminal wired to the protocol's UART, and any other `-C` parameters."""

    model: str
    terminal: str
    parameters: dict[str, int | str] = Field(default_factory=dict)


class Probe(_Strict):
    """The board's debug probe, which also carries the UART as a USB serial port."""

    name: str
    pyocd_target: str
    usb_vid: int = Field(ge=0, le=0xFFFF)
    usb_pid: int = Field(ge=0, le=0xFFFF)


class Board(_Strict):
    """A board: its CPU, memory map, UART and how to run code on it."""

    name: str
    description: str
    cpu: CpuName
    fpu: bool
    dsp: bool
    mve: Literal["none", "int", "float"]
    clock_hz: int = Field(gt=0)
    semihosting: bool
    runners: list[Literal["qemu", "fvp", "serial", "labgrid"]] = Field(min_length=1)
    uart: Uart
    memory: list[MemoryRegion] = Field(min_length=1)
    placement: Placement
    qemu: Qemu | None = None
    fvp: Fvp | None = None
    probe: Probe | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Board:
        problem = feature_problem(self)
        if problem:
            raise FieldError(*problem)
        by_origin = sorted(enumerate(self.memory), key=lambda item: item[1].origin)
        for (_, a), (j, b) in itertools.pairwise(by_origin):
            if b.origin < a.end:
                raise FieldError(("memory", j, "origin"), f"region {b.name} at 0x{b.origin:08X} "
                               f"overlaps region {a.name} (0x{a.origin:08X}..0x{a.end - 1:08X})")
        names = [r.name for r in self.memory]
        for j, name in enumerate(names):
            if names.index(name) != j:
                raise FieldError(("memory", j, "name"), f"a second region named {name!r}")
        for part in ("vectors", "code", "weights", "data", "arena", "stack"):
            value = getattr(self.placement, part)
            listed = isinstance(value, list)
            if not value:
                raise FieldError(("placement", part), "lists no region")
            for j, region in enumerate(self.placement.choices(part)):
                if region not in names:
                    raise FieldError(("placement", part, *([j] if listed else [])),
                                     f"region {region!r} is not in memory "
                                     f"(regions: {', '.join(sorted(names))})")
                if region in self.placement.choices(part)[:j]:
                    raise FieldError(("placement", part, j), f"region {region!r} is listed twice")
        for runner in ("qemu", "fvp"):
            if runner in self.runners and getattr(self, runner) is None:
                raise FieldError(("runners",), f"runners lists {runner!r} but there is no [{runner}] table")
        stack = self.region(self.placement.stack)
        if self.placement.stack_bytes > stack.length:
            raise FieldError(("placement", "stack_bytes"), f"{self.placement.stack_bytes} bytes do not "
                             f"fit region {stack.name} ({stack.length} bytes)")
        for loc, address in self.uart.registers():
            region = next((r for r in self.memory if r.origin <= address < r.end), None)
            if region is not None:
                raise FieldError(("uart", *loc), f"0x{address:08X} is inside memory region {region.name} "
                                 f"(0x{region.origin:08X}..0x{region.end - 1:08X}), not a peripheral")
        return self

    @property
    def cpu_class(self) -> Literal["mve", "dsp", "plain"]:
        """The CMSIS-NN code path this CPU takes: MVE (Helium), DSP extension, or plain C."""
        if self.mve != "none":
            return "mve"
        return "dsp" if self.dsp else "plain"

    @property
    def baudrate(self) -> int:
        """The UART's bit rate (a CMSDK UART runs at the CPU clock divided by BAUDDIV)."""
        if isinstance(self.uart, CmsdkUart):
            return self.clock_hz // self.uart.bauddiv
        return self.uart.baud

    def region(self, name: str) -> MemoryRegion:
        return next(r for r in self.memory if r.name == name)

    def placed(self, **regions: str) -> Board:
        """This board with one region for the weights and one for the arena (Placement.resolved)."""
        return self.model_copy(update={"placement": self.placement.resolved(**regions)})


def feature_problem(board: Board) -> tuple[tuple[str], str] | None:
    """The first CPU feature the board claims that its CPU cannot have: (field, message)."""
    cpu, where = CPUS[board.cpu], board.cpu
    if board.fpu and not cpu.fpu:
        return ("fpu",), f"{where} has no FPU; set fpu = false"
    if board.dsp and cpu.dsp == "never":
        return ("dsp",), f"{where} has no DSP extension; set dsp = false"
    if not board.dsp and cpu.dsp == "always":
        return ("dsp",), f"{where} always has the DSP extension; set dsp = true"
    if board.mve != "none" and not cpu.mve:
        return ("mve",), f"mve = {board.mve!r} but {where} has no MVE"
    if board.mve == "float" and not board.fpu:
        return ("mve",), f"{where}: mve = 'float' needs the FPU; set fpu = true or mve = 'int'"
    if board.mve != "none" and not board.dsp:
        return ("mve",), f"{where}: MVE needs the DSP extension; set dsp = true or mve = 'none'"
    return None


def available_boards() -> list[str]:
    """Names of the boards shipped in `boards/`."""
    return sorted(p.stem for p in boards_dir().glob("*.toml"))


def load_board(name_or_path: str | Path) -> Board:
    """Load a board by name (a file in `boards/`) or by path to a TOML file."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = boards_dir() / f"{name_or_path}.toml"
        if not path.is_file():
            known = ", ".join(available_boards())
            raise BoardError(f"unknown board {name_or_path!r} (known boards: {known})")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BoardError(f"{path}: cannot read board file: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(f"{path}: not valid TOML: {exc}") from exc
    try:
        board = Board.model_validate(data)
    except ValidationError as exc:
        raise BoardError(describe(path, text, exc, tags=_UART_KINDS)) from exc
    if board.name != path.stem:
        line = locate(text, ["name"])
        raise BoardError(f"{path}:{line}: field 'name' is {board.name!r} but the file is {path.name}")
    return board

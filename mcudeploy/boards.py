"""Boards as data: one TOML file per board in `boards/`, validated against a schema.

A typo in a field name, a missing field, a wrong type or overlapping memory regions is a
`BoardError` naming the file, the field and the line.
"""

from __future__ import annotations

import difflib
import itertools
import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mcudeploy.errors import BoardError
from mcudeploy.resources import boards_dir

CpuName = Literal[
    "cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m23", "cortex-m33",
    "cortex-m35p", "cortex-m55",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Uart(_Strict):
    """The UART the protocol runs on."""

    kind: Literal["cmsdk"]
    base: int = Field(ge=0, lt=2**32)
    bauddiv: int = Field(ge=16, lt=2**20)


class MemoryRegion(_Strict):
    """A range of the address space: TCM, SRAM, flash, DDR."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    origin: int = Field(ge=0, lt=2**32)
    length: int = Field(gt=0, le=2**32)

    @property
    def end(self) -> int:
        return self.origin + self.length


class Placement(_Strict):
    """Which region holds each part of the firmware image."""

    vectors: str
    code: str
    weights: str
    data: str
    arena: str
    stack: str
    stack_bytes: int = Field(ge=1024)


class Qemu(_Strict):
    """How QEMU emulates the board."""

    machine: str
    instructions_per_tick: float = Field(gt=0)


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
    runners: list[Literal["qemu", "fvp", "serial"]] = Field(min_length=1)
    uart: Uart
    memory: list[MemoryRegion] = Field(min_length=1)
    placement: Placement
    qemu: Qemu | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Board:
        regions = sorted(self.memory, key=lambda r: r.origin)
        for a, b in itertools.pairwise(regions):
            if b.origin < a.end:
                raise ValueError(f"memory regions {a.name} and {b.name} overlap")
        names = {r.name for r in self.memory}
        for part in ("vectors", "code", "weights", "data", "arena", "stack"):
            region = getattr(self.placement, part)
            if region not in names:
                raise ValueError(
                    f"placement.{part} names region {region!r}, which is not in memory "
                    f"(regions: {', '.join(sorted(names))})"
                )
        if self.mve != "none" and self.cpu != "cortex-m55":
            raise ValueError(f"mve = {self.mve!r} but {self.cpu} has no MVE")
        if "qemu" in self.runners and self.qemu is None:
            raise ValueError("runners lists 'qemu' but there is no [qemu] table")
        return self

    @property
    def cpu_class(self) -> Literal["mve", "dsp", "plain"]:
        """The CMSIS-NN code path this CPU takes: MVE (Helium), DSP extension, or plain C."""
        if self.mve != "none":
            return "mve"
        return "dsp" if self.dsp else "plain"

    def region(self, name: str) -> MemoryRegion:
        return next(r for r in self.memory if r.name == name)


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
        raise BoardError(_describe(path, text, exc)) from exc
    if board.name != path.stem:
        raise BoardError(f"{path}: field 'name' is {board.name!r} but the file is {path.name}")
    return board


def _describe(path: Path, text: str, exc: ValidationError) -> str:
    """One line for the most useful error: unknown fields first (a typo also makes a field missing)."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    loc = [str(p) for p in err["loc"]]
    line = _locate(text, loc) if loc else None
    where = f"{path}:{line}" if line else str(path)
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        missing = [str(e["loc"][-1]) for e in errors if e["type"] == "missing"
                   and [str(p) for p in e["loc"][:-1]] == loc[:-1]]
        guess = difflib.get_close_matches(loc[-1], missing, n=1)
        message = "unknown field" + (f" (did you mean {guess[0]!r}?)" if guess else "")
    elif err["type"] == "missing":
        message = "missing field"
    subject = f"field {_dotted(loc)!r}: " if loc else ""
    return f"{where}: {subject}{message}"


def _dotted(loc: list[str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def _locate(text: str, loc: list[str]) -> int | None:
    """The 1-based line of the TOML key at `loc` (e.g. ['memory', '2', 'lenght']), if found."""
    tables = [p for p in loc[:-1] if not p.isdigit()]
    want_table = ".".join(tables)
    index = int(loc[1]) if len(loc) > 1 and loc[1].isdigit() else None
    key = loc[-1] if not loc[-1].isdigit() else None
    current, seen, best = "", -1, None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        header = re.fullmatch(r"\[\[?\s*([\w.-]+)\s*\]?\]", line)
        if header:
            current = header.group(1)
            if current == want_table:
                seen += 1
                if key is None or index is None or seen == index:
                    best = best or number
            continue
        in_table = current == want_table and (index is None or seen == index)
        if key and in_table and re.match(rf"{re.escape(key)}\s*=", line):
            return number
    return best

"""An implementation of the CMSIS-NN API that the firmware links: mcudeploy's nnref, or Arm's
CMSIS-NN from a pack (mcudeploy.packs).

What a library can do is read from its headers, never from its version number: the prototypes it
declares and their parameter lists (`prototype`), and the structs it passes (`struct_fields`).
Releases differ in both: `arm_vector_sum_s8` takes 4, 6 or 7 arguments; per-channel fully
connected layers, `arm_maximum_s8` and `arm_minimum_s8` appear in 7.0.0; grouped convolution came
with a `row_address_offset` argument of `arm_nn_mat_mult_nt_t_s8` in 6.0.0.

Which of its sources a build needs is read from the sources: each file's global definitions (at
column 0, as CMSIS-NN and nnref are formatted) and the identifiers it uses give the closure of the
files behind a set of functions (`sources_for`), so kernels a model never calls, such as the
experimental float kernels that Arm's `.pdsc` lists unconditionally since 2026, are never compiled.

Host calls into the library go through ctypes mirrors of the API's structs (`CDims` and its kin);
`check_structs` and `check_call` compare them, and the arguments mcudeploy passes, with the
library's own headers before any call, so that a release that changed either is refused by name
rather than called with arguments it would misread.

`host_compile` is the one place that compiles library pieces for the host (scratch queries, kernel
sums, fault probes, host tests): the closure of the functions asked for, cached by content.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache, cached_property, wraps
from pathlib import Path
from typing import TypeVar

from mcudeploy.errors import BuildError
from mcudeploy.resources import cache_dir, nnref_dir

T = TypeVar("T")
HOST_CFLAGS = ("-std=gnu11", "-O1")
_LINK_FLAGS = ("-shared", "-fPIC", "-Wl,--no-undefined")
_COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_STRINGS = re.compile(r'"(?:\\.|[^"\\\n])*"' + r"|'(?:\\.|[^'\\\n])*'")
_DIRECTIVES = re.compile(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", re.M)
_INCLUDES = re.compile(r"^[ \t]*#[ \t]*include\b[^\n]*", re.M)
_C_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+\.c)"', re.M)
_IDENTIFIER = re.compile(r"\b[A-Za-z_]\w*\b")
_QUOTED_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"\n]+)"', re.M)
# A definition at column 0: a function (head, name, parameters, then its body) or an initialised
# variable (head, name, optional extents, then `=`).
_FUNCTION = re.compile(r"^([A-Za-z_][^;{}()=]*?)\b([A-Za-z_]\w*)\s*\([^;{}]*\)\s*\{", re.M)
_VARIABLE = re.compile(r"^([A-Za-z_][^;{}()=]*?)\b([A-Za-z_]\w*)\s*(?:\[[^\]]*\]\s*)*=", re.M)
# A declaration: after the previous statement, type words, the name, the parameters, `;`.
_DECLARATION = re.compile(r"(?:^|(?<=[;{}]))\s*([A-Za-z_][\w\s*]*?[\s*])([A-Za-z_]\w*)\s*"
                          r"\(([^;{}()]*(?:\([^()]*\)[^;{}()]*)*)\)\s*;")
_NOT_TYPES = {"return", "else", "case", "goto", "sizeof", "do"}
_STRUCT = re.compile(r"typedef\s+struct\s*\w*\s*\{([^{}]*)\}\s*(\w+)\s*;")
_QUALIFIERS = re.compile(r"\b(const|volatile|restrict|__restrict)\b")


_ABI_NAMES = {"int": "int32_t"}  # what the calling convention cannot tell apart


class CTile(ctypes.Structure):
    _fields_ = (("w", ctypes.c_int32), ("h", ctypes.c_int32))


class CDims(ctypes.Structure):
    _fields_ = (("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32))


class CActivation(ctypes.Structure):
    _fields_ = (("min", ctypes.c_int32), ("max", ctypes.c_int32))


class CConvParams(ctypes.Structure):
    _fields_ = (("input_offset", ctypes.c_int32), ("output_offset", ctypes.c_int32), ("stride", CTile),
                ("padding", CTile), ("dilation", CTile), ("activation", CActivation))


class CDwConvParams(ctypes.Structure):
    _fields_ = (("input_offset", ctypes.c_int32), ("output_offset", ctypes.c_int32),
                ("ch_mult", ctypes.c_int32), ("stride", CTile), ("padding", CTile), ("dilation", CTile),
                ("activation", CActivation))


C_STRUCTS = {"cmsis_nn_tile": CTile, "cmsis_nn_dims": CDims, "cmsis_nn_activation": CActivation,
             "cmsis_nn_conv_params": CConvParams, "cmsis_nn_dw_conv_params": CDwConvParams}
_C_NAMES = {ctypes.c_int32: "int32_t", **{mirror: name for name, mirror in C_STRUCTS.items()}}


class HostBuildError(BuildError):
    """Library pieces that do not compile for the host (e.g. kernels that need the target's intrinsics)."""


@dataclass(frozen=True)
class Prototype:
    """A function as a header declares it: its parameters' names and C types (qualifiers dropped,
    which the calling convention ignores)."""

    name: str
    names: tuple[str, ...]
    types: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.name}({', '.join(f'{t} {n}' for t, n in zip(self.types, self.names, strict=True))})"


@dataclass(frozen=True)
class NNLibrary:
    """An implementation of the CMSIS-NN API: its headers and C sources, flags for compiling the
    sources (never the model's), whether `arm_convolve_wrapper_s8` takes grouped convolutions
    (read from a pack's headers; nnref's own contract), and the version, as truthful as the
    library can tell (a pack's release, or a git checkout's description)."""

    name: str
    include_dirs: tuple[Path, ...]
    sources: tuple[Path, ...]
    version: str = ""
    grouped_conv: bool = True
    cflags: tuple[str, ...] = ()

    @cached_property
    def prototypes(self) -> dict[str, Prototype]:
        """Every function its headers declare."""
        return read_prototypes(self.include_dirs)

    def prototype(self, name: str) -> Prototype | None:
        return self.prototypes.get(name)

    def has(self, name: str) -> bool:
        """Whether the headers declare `name` and some source defines it."""
        return name in self.prototypes and name in self._index.definers

    def struct_fields(self, name: str) -> tuple[tuple[str, str], ...] | None:
        """The (type, name) fields of `typedef struct {...} name;` in the headers, or None."""
        return read_structs(self.include_dirs).get(name)

    @cached_property
    def digest(self) -> str:
        """A digest of its sources and headers (16 hex digits)."""
        digest = hashlib.sha256()
        for path in sorted(Path(s) for s in self.sources):
            digest.update(path.read_bytes())
        for folder in self.include_dirs:
            for header in sorted(Path(folder).rglob("*.h")):
                digest.update(header.read_bytes())
        return digest.hexdigest()[:16]

    @cached_property
    def _index(self) -> _SymbolIndex:
        return _SymbolIndex.of(self.sources)

    def sources_for(self, identifiers: Iterable[str]) -> tuple[Path, ...]:
        """The sources that define `identifiers`, and those defining what they use, transitively."""
        return self._index.closure(identifiers)

    def sources_for_files(self, files: Iterable[Path]) -> tuple[Path, ...]:
        """The sources that C files calling the library (the model) need."""
        return self.sources_for(used_identifiers(files))


def per_content(function: Callable[..., T]) -> Callable[..., T]:
    """`function(library, *args)` cached by the library's paths, its content digest and the
    arguments: a pack changed on disk is a new library."""
    cached = cache(lambda library, digest, *args: function(library, *args))

    @wraps(function)
    def wrapper(library: NNLibrary, *args: object) -> T:
        return cached(library, library.digest, *args)

    wrapper.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
    return wrapper


def abi(kind: str) -> str:
    """A C type as the calling convention sees it ('int' and 'int32_t' alike)."""
    return _ABI_NAMES.get(kind, kind)


def check_structs(library: NNLibrary, names: Iterable[str], purpose: str) -> None:
    """The structs mcudeploy passes must be laid out in the library's headers as in their ctypes
    mirrors (C_STRUCTS: field names, types, order); else BuildError naming the struct and library."""
    for name in names:
        fields = library.struct_fields(name)
        want = tuple((_C_NAMES[kind], field) for field, kind in C_STRUCTS[name]._fields_)
        if fields is None or tuple((abi(t), n) for t, n in fields) != want:
            found = "not declared" if fields is None else ", ".join(f"{t} {n}" for t, n in fields)
            expected = ", ".join(f"{t} {n}" for t, n in want)
            raise BuildError(f"{library.name} declares {name} as {{{found}}}, not {{{expected}}} as "
                             f"mcudeploy passes it for {purpose}")


def check_call(library: NNLibrary, function: str, types: Iterable[str], purpose: str) -> None:
    """`function` must be declared taking arguments of `types`; else BuildError naming both."""
    declared = library.prototype(function)
    types = tuple(types)
    if declared is None:
        raise BuildError(f"{library.name} declares no {function}(), which mcudeploy calls for {purpose}")
    if tuple(abi(t) for t in declared.types) != tuple(abi(t) for t in types):
        raise BuildError(f"{library.name} declares {declared.describe()}: mcudeploy would call it with "
                         f"({', '.join(types)}) for {purpose}, so it is not called")


def nnref_library() -> NNLibrary:
    """firmware/nnref, mcudeploy's own C implementation of the CMSIS-NN API."""
    root = nnref_dir()
    return NNLibrary("nnref", (root / "Include",), tuple(sorted(root.glob("Source/**/*.c"))))


def _code(text: str) -> str:
    return _STRINGS.sub('""', _COMMENTS.sub(" ", text))


def _parameter(text: str) -> tuple[str, str]:
    """'const int8_t *vector_data' -> ('int8_t*', 'vector_data'); 'void' -> ('void', '')."""
    text = " ".join(_QUALIFIERS.sub(" ", text).split())
    match = re.match(r"^(.*?)([A-Za-z_]\w*)\s*((?:\[[^\]]*\])*)$", text)
    if match is None or not match.group(1).strip() or text == "void":
        return text.replace(" *", "*").replace("* ", "*"), ""
    kind = (match.group(1) + ("*" if match.group(3) else "")).replace(" ", "")
    return kind, match.group(2)


def _headers(include_dirs: tuple[Path, ...]) -> tuple[tuple[Path, int, int], ...]:
    """The headers under `include_dirs`, with their modification times and sizes (a cache key)."""
    found = []
    for folder in include_dirs:
        for header in sorted(Path(folder).rglob("*.h")):
            stat = header.stat()
            found.append((header, stat.st_mtime_ns, stat.st_size))
    return tuple(found)


def read_prototypes(include_dirs: tuple[Path, ...]) -> dict[str, Prototype]:
    """Every function declaration in the headers under `include_dirs` (the first one wins)."""
    return _prototypes(_headers(include_dirs))


def read_structs(include_dirs: tuple[Path, ...]) -> dict[str, tuple[tuple[str, str], ...]]:
    """Every `typedef struct {...} name;` in the headers: its (type, name) fields in order."""
    return _structs(_headers(include_dirs))


@cache
def _prototypes(headers: tuple[tuple[Path, int, int], ...]) -> dict[str, Prototype]:
    found: dict[str, Prototype] = {}
    for header, _, _ in headers:
        text = _DIRECTIVES.sub(" ", _code(header.read_text(encoding="utf-8", errors="replace")))
        for match in _DECLARATION.finditer(text):
            head, name, params = match.group(1).split(), match.group(2), match.group(3).strip()
            if name in found or _NOT_TYPES & set(head):
                continue
            parts = [_parameter(p) for p in params.split(",")] if params and params != "void" else []
            if all(n for _, n in parts):  # a call's arguments have no types: not a declaration
                found[name] = Prototype(name, tuple(n for _, n in parts), tuple(t for t, _ in parts))
    return found


@cache
def _structs(headers: tuple[tuple[Path, int, int], ...]) -> dict[str, tuple[tuple[str, str], ...]]:
    found: dict[str, tuple[tuple[str, str], ...]] = {}
    for header, _, _ in headers:
        text = _DIRECTIVES.sub(" ", _code(header.read_text(encoding="utf-8", errors="replace")))
        for match in _STRUCT.finditer(text):
            fields = tuple(_parameter(f) for f in match.group(1).split(";") if f.strip())
            found.setdefault(match.group(2), fields)
    return found


def used_identifiers(files: Iterable[Path]) -> set[str]:
    """The identifiers C files use, following `#include "x.c"` of other C files."""
    names: set[str] = set()
    pending, seen = [Path(f) for f in files], set()
    while pending:
        path = pending.pop().resolve()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        raw = path.read_text(encoding="utf-8", errors="replace")
        pending += [path.parent / included for included in _C_INCLUDE.findall(raw)]
        names.update(_IDENTIFIER.findall(_INCLUDES.sub(" ", _code(raw))))
    return names


@dataclass(frozen=True)
class _SymbolIndex:
    """Which source defines which global name, and which names each source uses."""

    definers: dict[str, tuple[Path, ...]]
    uses: dict[Path, frozenset[str]]

    @staticmethod
    def of(sources: Iterable[Path]) -> _SymbolIndex:
        definers: dict[str, list[Path]] = {}
        uses: dict[Path, frozenset[str]] = {}
        for source in sources:
            code = _code(Path(source).read_text(encoding="utf-8", errors="replace"))
            uses[source] = frozenset(_IDENTIFIER.findall(_INCLUDES.sub(" ", code)))
            body = _DIRECTIVES.sub(" ", code)
            for pattern in (_FUNCTION, _VARIABLE):
                for match in pattern.finditer(body):
                    if not re.search(r"\bstatic\b|STATIC|\bextern\b|\btypedef\b", match.group(1)):
                        definers.setdefault(match.group(2), []).append(source)
        return _SymbolIndex({k: tuple(v) for k, v in definers.items()}, uses)

    def closure(self, identifiers: Iterable[str]) -> tuple[Path, ...]:
        files: set[Path] = set()
        pending = list(identifiers)
        seen: set[str] = set()
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            for source in self.definers.get(name, ()):
                if source not in files:
                    files.add(source)
                    pending.extend(self.uses[source])
        return tuple(sorted(files))


def _quoted_includes(sources: Iterable[Path], folders: Iterable[Path]) -> list[Path]:
    """Every file the sources `#include "..."`, transitively, found beside the including file or in
    `folders` as the compiler looks: the host build's cache key covers them (an included .c or .inc
    file, a header beside a source), not only the folders' headers."""
    search = [Path(f).resolve() for f in folders]
    found: dict[Path, None] = {}
    pending = [Path(s).resolve() for s in sources]
    while pending:
        including = pending.pop()
        for name in _QUOTED_INCLUDE.findall(including.read_text(encoding="utf-8", errors="replace")):
            for folder in (including.parent, *search):
                candidate = (folder / name).resolve()
                if candidate.is_file():
                    if candidate not in found:
                        found[candidate] = None
                        pending.append(candidate)
                    break
    return sorted(found)


def host_compile(library: NNLibrary, functions: Iterable[str] = (), *,
                 extra_sources: Iterable[Path] = (), cflags: Iterable[str] = HOST_CFLAGS,
                 include_dirs: Iterable[Path] = (), purpose: str = "") -> Path:
    """The sources behind `functions` (and behind what `extra_sources` use), compiled with the host's
    gcc into a shared library, cached on disk by content and flags; returns its path. Raises
    HostBuildError naming the library and `purpose` with the compiler's first lines when it does not
    build."""
    extra = [Path(s).resolve() for s in extra_sources]
    wanted = set(functions) | (used_identifiers(extra) if extra else set())
    sources = [*library.sources_for(wanted), *extra]
    folders = (*include_dirs, *library.include_dirs)
    flags = [*cflags, *_LINK_FLAGS, *(f"-I{Path(d).resolve()}" for d in folders)]
    key = hashlib.sha256("\0".join(flags).encode())
    for source in sources:
        key.update(source.read_bytes())
    for folder in folders:
        for header in sorted(Path(folder).rglob("*.h")):
            key.update(header.read_bytes())
    for included in _quoted_includes(sources, folders):
        key.update(str(included).encode() + b"\0" + included.read_bytes())
    target = cache_dir() / "host" / f"nnlib-{key.hexdigest()[:20]}.so"
    if target.is_file():
        return target
    if not sources:
        raise HostBuildError(f"{library.name} defines none of {', '.join(sorted(functions))}: cannot "
                             f"build {purpose or 'them'} for the host")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    result = subprocess.run(["gcc", *flags, "-o", str(tmp), *map(str, sources)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        first = "\n".join([line for line in result.stderr.splitlines() if line.strip()][:8])
        raise HostBuildError(f"compiling {library.name}'s {purpose or 'functions'} for the host "
                             f"failed:\n{first}")
    tmp.rename(target)
    return target


def host_build(library: NNLibrary, functions: Iterable[str] = (), **options) -> ctypes.CDLL:
    """`host_compile`'s shared library, loaded (ctypes)."""
    return ctypes.CDLL(str(host_compile(library, functions, **options)))

"""Arm's CMSIS-NN from a CMSIS pack: `--cmsis-nn PATH` as an NNLibrary the firmware links instead of
nnref.

PATH is a `.pack` file (a zip, unpacked once into mcudeploy's cache), an unpacked pack directory
(its `.pdsc` at the top) or that `.pdsc`, or a pack id `VENDOR::NAME[@VERSION]` found in
cmsis-pack-manager's cache (`<data_path>/VENDOR/NAME/VERSION.pack`; the highest version when none
is given). The `.pdsc`
names the sources and headers of the component `Cclass="CMSIS" Cgroup="NN Lib"` and the pack's
release version.

The sources are compiled with the board's CPU flags only: the library picks its plain C, DSP or
MVE kernels itself from the compiler's feature macros. Whether `arm_convolve_wrapper_s8` takes
grouped convolutions (added in January 2024, CMSIS-NN 6.0.0) is probed in the headers: the
grouped kernels came with a `row_address_offset` argument of `arm_nn_mat_mult_nt_t_s8`; a pack
whose headers do not declare that function is judged by its version. Without grouped support,
code generation splits grouped convolutions (mcudeploy.codegen.grouped_fallback).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

from cmsis_pack_manager import Cache

from mcudeploy.build import NNLibrary, nnref_library
from mcudeploy.errors import InputError
from mcudeploy.resources import cache_dir

GROUPED_CONV_VERSION = (6, 0, 0)
PACK_CFLAGS = ("-std=gnu11", "-Wno-error")  # Arm's code, Arm's warnings: reported, never fatal
_PACK_ID = re.compile(r"^(?P<vendor>[\w.-]+)::(?P<name>[\w.-]+)(@(?P<version>[\w.+-]+))?$")
_MAT_MULT_DECL = re.compile(r"^\s*\w+\s+arm_nn_mat_mult_nt_t_s8\s*\(([^;{)]*)\)\s*;", re.MULTILINE)


def nn_library(cmsis_nn: str | None) -> NNLibrary:
    """The library `--cmsis-nn` names, or nnref without it."""
    return nnref_library() if cmsis_nn is None else load_pack(cmsis_nn)


def load_pack(spec: str | Path) -> NNLibrary:
    """The CMSIS-NN library in a .pack file, an unpacked pack directory or cmsis-pack-manager's
    cache (`VENDOR::NAME[@VERSION]`). Raises InputError naming the path or file at fault."""
    path = Path(spec)
    if path.is_dir():
        return _from_directory(path)
    if path.is_file() and path.suffix.lower() == ".pdsc":
        return _from_directory(path.parent)
    if path.is_file():
        return _from_directory(_unpacked(path))
    match = _PACK_ID.match(str(spec))
    if match is None:
        raise InputError(f"--cmsis-nn {spec}: no such file or directory, and not a pack id "
                         "such as ARM::CMSIS-NN or ARM::CMSIS-NN@6.0.0")
    return _from_directory(_unpacked(_cached_pack(match["vendor"], match["name"], match["version"])))


def version_key(version: str) -> tuple[int, ...]:
    """'6.0.0' -> (6, 0, 0); a suffix such as '-dev3' is ignored, an unreadable version is ()."""
    numbers = re.match(r"^\d+(\.\d+)*", version.strip())
    return tuple(int(n) for n in numbers.group(0).split(".")) if numbers else ()


def _cached_pack(vendor: str, name: str, version: str | None) -> Path:
    root = Path(Cache(True, True).data_path) / vendor / name
    packs = sorted(root.glob("*.pack"), key=lambda p: version_key(p.stem))
    if version is not None:
        packs = [p for p in packs if p.stem == version]
    if not packs:
        wanted = f"{vendor}::{name}" + (f"@{version}" if version else "")
        raise InputError(f"--cmsis-nn {wanted}: not in cmsis-pack-manager's cache ({root} has no "
                         f"{version or '<version>'}.pack)")
    return packs[-1]


def _unpacked(pack: Path) -> Path:
    """The pack's contents in mcudeploy's cache, unpacked once per pack content."""
    digest = hashlib.sha256(pack.read_bytes()).hexdigest()[:16]
    target = cache_dir() / "packs" / f"{pack.stem}-{digest}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".unpack-"))
    try:
        with zipfile.ZipFile(pack) as archive:
            for member in archive.namelist():
                if not (staging / member).resolve().is_relative_to(staging.resolve()):
                    raise InputError(f"{pack}: member {member!r} would unpack outside the pack")
            archive.extractall(staging)
        staging.rename(target)
    except zipfile.BadZipFile as exc:
        raise InputError(f"{pack}: not a CMSIS pack (not a zip file)") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _from_directory(root: Path) -> NNLibrary:
    descriptions = sorted(root.glob("*.pdsc"))
    if len(descriptions) != 1:
        found = "no .pdsc file" if not descriptions else f"{len(descriptions)} .pdsc files"
        raise InputError(f"{root}: {found} at the top: not an unpacked CMSIS pack")
    pdsc = descriptions[0]
    try:
        package = ET.parse(pdsc).getroot()
    except ET.ParseError as exc:
        raise InputError(f"{pdsc}:{exc.position[0]}: not valid XML: {exc}") from exc
    component = next((c for c in package.iter("component")
                      if c.get("Cclass") == "CMSIS" and c.get("Cgroup") == "NN Lib"), None)
    if component is None:
        raise InputError(f"{pdsc}: no CMSIS-NN component (Cclass 'CMSIS', Cgroup 'NN Lib')")
    sources, include_dirs = _component_files(root, pdsc, component)
    if not any((d / "arm_nnfunctions.h").is_file() for d in include_dirs):
        raise InputError(f"{pdsc}: the CMSIS-NN component has no arm_nnfunctions.h")
    versions = [r.get("version", "") for r in package.iter("release")]
    version = max(versions, key=version_key, default="") or component.get("Cversion", "")
    grouped = _has_grouped_conv(include_dirs, version)
    name = f"CMSIS-NN {version or '(no version)'}" + ("" if grouped else " (grouped convolutions split)")
    return NNLibrary(name=name, include_dirs=include_dirs, sources=sources, version=version,
                     grouped_conv=grouped, cflags=PACK_CFLAGS)


def _component_files(root: Path, pdsc: Path,
                     component: ET.Element) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """The component's C sources and include directories, each checked to exist."""
    sources: set[Path] = set()
    include_dirs: list[Path] = []
    for entry in component.iter("file"):
        category, name = entry.get("category"), entry.get("name", "")
        if category not in ("source", "sourceC", "header", "include"):
            continue
        path = root / name
        if not path.exists():
            raise InputError(f"{pdsc}: file {name!r} of the CMSIS-NN component is not in the pack")
        if category in ("source", "sourceC") and path.suffix == ".c":
            sources.add(path)
        elif category in ("header", "include"):
            folder = path if path.is_dir() else path.parent
            if folder not in include_dirs:
                include_dirs.append(folder)
    if not sources:
        raise InputError(f"{pdsc}: the CMSIS-NN component lists no C sources")
    return tuple(sorted(sources)), tuple(include_dirs)


def _has_grouped_conv(include_dirs: tuple[Path, ...], version: str) -> bool:
    for folder in include_dirs:
        header = folder / "arm_nnsupportfunctions.h"
        if header.is_file():
            declaration = _MAT_MULT_DECL.search(header.read_text(encoding="utf-8", errors="replace"))
            if declaration is not None:
                return "row_address_offset" in declaration.group(1)
    return version_key(version) >= GROUPED_CONV_VERSION

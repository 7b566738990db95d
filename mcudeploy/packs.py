"""Arm's CMSIS-NN from a CMSIS pack: `--cmsis-nn PATH` as an NNLibrary the firmware links instead of
nnref.

PATH is a `.pack` file (a zip, unpacked once into mcudeploy's cache), an unpacked pack directory
(its `.pdsc` at the top; a git checkout of Arm's repository is one) or that `.pdsc`, or a pack id
`VENDOR::NAME[@VERSION]` found in cmsis-pack-manager's cache (`<data_path>/VENDOR/NAME/VERSION.pack`;
the highest version when none is given). The `.pdsc` names the sources and headers of the component
`Cclass="CMSIS" Cgroup="NN Lib"` and the pack's release version.

- The version shown is the truth: the `.pdsc`'s release, except that Arm's git tree says
  `<release version="0.0.0">` at every tag (its pack script writes the real one): a git checkout
  then reads as its `git describe` (`v7.0.0`, `v7.0.0-43-g99f736a6`), or `unreleased <commit>`.
- A component that requires CMSIS-Core (`<require Cclass="CMSIS" Cgroup="CORE"/>`, CMSIS-NN 4.0.0,
  whose headers include `cmsis_compiler.h`) gets CMSIS-Core's include directory from the ARM::CMSIS
  pack in cmsis-pack-manager's cache, unless the pack carries `cmsis_compiler.h` itself.
- The sources are compiled with the board's CPU flags only: the library picks its plain C, DSP or
  MVE kernels itself from the compiler's feature macros, and only the files behind the functions a
  model calls are compiled (mcudeploy.nnlib).
- Whether `arm_convolve_wrapper_s8` takes grouped convolutions (CMSIS-NN 6.0.0 on) is read from the
  headers: the grouped kernels came with a `row_address_offset` argument of
  `arm_nn_mat_mult_nt_t_s8`. Without it, code generation splits grouped convolutions
  (mcudeploy.codegen.grouped_fallback).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

from cmsis_pack_manager import Cache

from mcudeploy.errors import InputError
from mcudeploy.nnlib import NNLibrary, nnref_library, read_prototypes
from mcudeploy.resources import cache_dir

PACK_CFLAGS = ("-std=gnu11", "-Wno-error")  # Arm's code, Arm's warnings: reported, never fatal
PLACEHOLDER_VERSION = "0.0.0"  # what Arm's git tree says at every tag
_PACK_ID = re.compile(r"^(?P<vendor>[\w.-]+)::(?P<name>[\w.-]+)(@(?P<version>[\w.+-]+))?$")


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


def _cached_packs(vendor: str, name: str) -> tuple[Path, list[Path]]:
    """cmsis-pack-manager's folder for VENDOR::NAME and its .pack files, lowest version first."""
    root = Path(Cache(True, True).data_path) / vendor / name
    return root, sorted(root.glob("*.pack"), key=lambda p: version_key(p.stem))


def _cached_pack(vendor: str, name: str, version: str | None) -> Path:
    root, packs = _cached_packs(vendor, name)
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


def _description(root: Path) -> tuple[Path, ET.Element]:
    descriptions = sorted(root.glob("*.pdsc"))
    if len(descriptions) != 1:
        found = "no .pdsc file" if not descriptions else f"{len(descriptions)} .pdsc files"
        raise InputError(f"{root}: {found} at the top: not an unpacked CMSIS pack")
    try:
        return descriptions[0], ET.parse(descriptions[0]).getroot()
    except ET.ParseError as exc:
        raise InputError(f"{descriptions[0]}:{exc.position[0]}: not valid XML: {exc}") from exc


def _component(package: ET.Element, cclass: str, cgroup: str) -> list[ET.Element]:
    return [c for c in package.iter("component") if c.get("Cclass") == cclass and c.get("Cgroup") == cgroup]


def _from_directory(root: Path) -> NNLibrary:
    pdsc, package = _description(root)
    component = next(iter(_component(package, "CMSIS", "NN Lib")), None)
    if component is None:
        raise InputError(f"{pdsc}: no CMSIS-NN component (Cclass 'CMSIS', Cgroup 'NN Lib')")
    sources, include_dirs = _component_files(root, pdsc, component)
    if not any((d / "arm_nnfunctions.h").is_file() for d in include_dirs):
        raise InputError(f"{pdsc}: the CMSIS-NN component has no arm_nnfunctions.h")
    include_dirs += _required_core(pdsc, package, component, include_dirs)
    version, checkout = _version(root, package, component)
    grouped = _has_grouped_conv(include_dirs)
    name = f"CMSIS-NN {version}" + (" (git checkout)" if checkout else "")
    name += "" if grouped else " (grouped convolutions split)"
    return NNLibrary(name=name, include_dirs=include_dirs, sources=sources, version=version,
                     grouped_conv=grouped, cflags=PACK_CFLAGS)


def _version(root: Path, package: ET.Element, component: ET.Element) -> tuple[str, bool]:
    """The release the .pdsc names; for Arm's git tree (0.0.0) the checkout's description. And
    whether it came from git."""
    versions = [r.get("version", "") for r in package.iter("release")]
    version = max(versions, key=version_key, default="") or component.get("Cversion", "")
    if version and version != PLACEHOLDER_VERSION:
        return version, False
    described = git_description(root)
    if described is not None:
        return described, True
    return f"unreleased (.pdsc version {version or 'missing'})", False


def git_description(root: Path) -> str | None:
    """For the top of a git work tree: `git describe --tags --dirty` (v7.0.0, v7.0.0-43-g99f736a6),
    else `unreleased <commit>`; None when `root` is not the top of a work tree git can read."""
    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                                    check=False, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != root.resolve():
        return None
    described = git("describe", "--tags", "--dirty")
    if described:
        return described
    commit = git("rev-parse", "--short=8", "HEAD")
    return f"unreleased {commit}" if commit else None


def _requires(element: ET.Element, package: ET.Element, cclass: str, cgroup: str) -> bool:
    """Whether the element's condition (or a condition it requires) requires that component."""
    conditions = {c.get("id"): c for c in package.iter("condition")}
    pending, seen = [element.get("condition")], set()
    while pending:
        name = pending.pop()
        if name is None or name in seen or name not in conditions:
            continue
        seen.add(name)
        for require in conditions[name].iter("require"):
            if require.get("Cclass") == cclass and require.get("Cgroup") == cgroup:
                return True
            pending.append(require.get("condition"))
    return False


def _required_core(pdsc: Path, package: ET.Element, component: ET.Element,
                   include_dirs: tuple[Path, ...]) -> tuple[Path, ...]:
    """CMSIS-Core's include directory when the component requires it and does not carry it."""
    if not _requires(component, package, "CMSIS", "CORE"):
        return ()
    if any((d / "cmsis_compiler.h").is_file() for d in include_dirs):
        return ()
    folder, packs = _cached_packs("ARM", "CMSIS")
    for pack in reversed(packs):
        core_root = _unpacked(pack)
        _, core_package = _description(core_root)
        for core in _component(core_package, "CMSIS", "CORE"):
            for entry in core.iter("file"):
                path = core_root / entry.get("name", "")
                if entry.get("category") == "include" and (path / "cmsis_compiler.h").is_file():
                    return (path,)
    raise InputError(f"{pdsc}: the CMSIS-NN component requires CMSIS-Core (Cclass 'CMSIS', Cgroup 'CORE'), "
                     f"whose cmsis_compiler.h comes with the ARM::CMSIS pack: none in cmsis-pack-manager's "
                     f"cache ({folder})")


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


def _has_grouped_conv(include_dirs: tuple[Path, ...]) -> bool:
    """The grouped kernels came with `row_address_offset` in `arm_nn_mat_mult_nt_t_s8`."""
    declaration = read_prototypes(include_dirs).get("arm_nn_mat_mult_nt_t_s8")
    return declaration is not None and "row_address_offset" in declaration.names

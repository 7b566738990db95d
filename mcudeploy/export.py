"""The library folder `mcudeploy export` writes: a generated model (NAME.c, NAME.h) made ready for a
user's own firmware, with the build files of CMake, Zephyr and PlatformIO.

    NAME.c, NAME.h      the model, byte for byte what `mcudeploy run` verifies (manifest.json
                        and the run's report give NAME.c's SHA-256)
    mcdk.h, mcdk_mve_portable.h
                        the primitives of mcudeploy's generated kernels, which NAME.c includes
                        when a layer is lowered as one (every file of the manifest's `files`)
    nn/                 nnref's headers and the sources NAME.c calls (only for nnref; a CMSIS-NN
                        pack is listed in manifest.json, never copied)
    CMakeLists.txt      a static library target NAME, for add_subdirectory; the NN sources that
                        mcudeploy compiles with flags of their own (mcudeploy.build.kernel_flags)
                        get them there and in zephyr/CMakeLists.txt
    zephyr/             module.yml, CMakeLists.txt, Kconfig: a Zephyr module
    library.json        a PlatformIO library
    manifest.json       the model's manifest, plus the NN library's files
    README.md           what is where

Paths from outside mcudeploy (a pack's directory and files) reach the CMake files as quoted
arguments with CMake's escapes, never as code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from mcudeploy import __version__
from mcudeploy.build import kernel_flags
from mcudeploy.codegen.cname import macro_prefix
from mcudeploy.codegen.emit import template_environment
from mcudeploy.manifest import Manifest
from mcudeploy.nnlib import NNLibrary, nnref_library

NN_FOLDER = "nn"
_CMAKE_ESCAPES = {"\\": "\\\\", '"': '\\"', "$": "\\$", ";": "\\;", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def cmake_text(text: str) -> str:
    """`text` as the inside of a CMake quoted argument: no variable reference, list separator or
    end of the argument in it."""
    return "".join(_CMAKE_ESCAPES.get(c, c) for c in text)


@dataclass(frozen=True)
class NNFiles:
    """The NN library's files a build of NAME.c needs: relative to `root`, which is the folder's
    nn/ when they are copied (`vendored`), else the pack's directory; `flags`: the extra compiler
    flags of some of `sources`, as mcudeploy's firmware compiles them (they change the speed, not
    the results)."""

    name: str
    vendored: bool
    root: str
    sources: tuple[str, ...]
    include_dirs: tuple[str, ...]
    flags: dict[str, tuple[str, ...]]


def nn_files(library: NNLibrary, code: Path) -> NNFiles:
    """Which of the library's files NAME.c (`code`) needs, and from where."""
    needed = [Path(s).resolve() for s in library.sources_for_files([code])]
    folders = [Path(d).resolve() for d in library.include_dirs]
    vendored = library == nnref_library()
    root = Path(os.path.commonpath([*needed, *folders])) if (needed or folders) else Path("/")
    if root in folders and needed:  # a root that is an include folder: keep its name visible
        root = root.parent
    return NNFiles(library.name, vendored, str(root),
                   tuple(p.relative_to(root).as_posix() for p in needed),
                   tuple(p.relative_to(root).as_posix() for p in folders),
                   {p.relative_to(root).as_posix(): kernel_flags(p) for p in needed if kernel_flags(p)})


def write_library(folder: Path, generated: Path, manifest: Manifest, library: NNLibrary) -> list[Path]:
    """Fill `folder` with the library of the model generated in `generated` (emit_model's output:
    the files its manifest lists); returns the files written, relative to `folder`."""
    name = manifest.name
    for file in manifest.files:
        shutil.copyfile(generated / file, folder / file)
    nn = nn_files(library, folder / f"{name}.c")
    if nn.vendored:
        for relative in (*nn.sources, *nn.include_dirs):
            source, target = Path(nn.root) / relative, folder / NN_FOLDER / relative
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
        nn = replace(nn, root=NN_FOLDER)
    macro = macro_prefix(name)
    env = template_environment()
    env.filters["cmake"] = cmake_text
    context = {
        "name": name, "macro": macro, "kconfig": f"MCUDEPLOY_{macro}", "nn": nn,
        "nn_root": f"${{{macro}_NN_ROOT}}", "module_dir": f"${{{macro}_DIR}}",
        "ref": lambda variable: f"${{{variable}}}",
        "version": __version__, "source": manifest.source, "board": manifest.board,
        "cpu_class": manifest.cpu_class, "library": manifest.library,
        "headers": [f for f in manifest.files if f not in (f"{name}.c", f"{name}.h")],
    }
    (folder / "zephyr").mkdir()
    for template, target in (("CMakeLists.txt.j2", "CMakeLists.txt"), ("README.md.j2", "README.md"),
                             ("zephyr_CMakeLists.txt.j2", "zephyr/CMakeLists.txt"),
                             ("Kconfig.j2", "zephyr/Kconfig"), ("module.yml.j2", "zephyr/module.yml")):
        (folder / target).write_text(env.get_template(f"export/{template}").render(**context), "utf-8")
    (folder / "library.json").write_text(json.dumps(platformio_library(manifest, nn), indent=2) + "\n",
                                         encoding="utf-8")
    described = asdict(manifest) | {"nn_library": asdict(nn)}
    (folder / "manifest.json").write_text(json.dumps(described, indent=1) + "\n", encoding="utf-8")
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def platformio_library(manifest: Manifest, nn: NNFiles) -> dict:
    """library.json: NAME.c and the copied NN sources built with the NN headers; NAME.h exported.
    A pack's files are outside the folder, where PlatformIO's source filter cannot reach: the
    project adds the pack as a library of its own."""
    name = manifest.name
    sources = [f"{nn.root}/{s}" for s in nn.sources] if nn.vendored else []
    includes = [f"-I {nn.root}/{d}" for d in nn.include_dirs] if nn.vendored else []
    return {
        "name": name,
        "version": __version__,
        "description": f"{_plain(manifest.source)} as a C library generated by mcudeploy for "
                       f"{_plain(manifest.board)} ({manifest.cpu_class} CMSIS-NN path, "
                       f"{_plain(manifest.library)})",
        "keywords": ["mcudeploy", "cmsis-nn", "neural-network"],
        "frameworks": "*",
        "platforms": "*",
        "build": {
            "srcDir": ".",
            "includeDir": ".",
            "srcFilter": ["-<*>", f"+<{name}.c>", *(f"+<{s}>" for s in sources)],
            "flags": [*includes, "-O2"],
        },
    }


def _plain(text: str) -> str:
    """A name from outside mcudeploy for a one-line description: printable ASCII only."""
    return re.sub(r"[^ -~]", "?", text)

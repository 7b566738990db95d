"""TFLM's `cortex_m_generic` library built by its own Makefile, from trees given on the command line.

TFLM's Makefile downloads its third-party trees (flatbuffers, gemmlowp, ruy, kissfft, CMSIS_6,
Cortex_DFP, CMSIS-NN, pigweed) into `tensorflow/lite/micro/tools/make/downloads/` the first time,
and skips each one whose directory is already there. Here nothing is downloaded: each tree is
exported at the commit TFLM pins (read from its own download scripts) from a local git repository,
TFLM's patches are applied as its scripts apply them, and pigweed (only its test helpers are used)
is an empty directory. CMSIS-NN is not laid out: the Makefile takes it from `CMSIS_NN_PATH`, the
checkout being measured.

The library is built once per CPU and per (TFLM commit, CMSIS-NN contents), into a cache directory
(the Makefile's `BASE_GENDIR`), with the compiler flags the Makefile used, so that the harness
compiles with the same defines and include paths.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

MAKE_DIR = Path("tensorflow/lite/micro/tools/make")
MAKEFILE = MAKE_DIR / "Makefile"
LIBRARY = "libtensorflow-microlite.a"
# TFLM's TARGET_ARCH for each CPU a board file names (with an FPU where the CPU may lack one).
TARGET_ARCH = {("cortex-m55", True): "cortex-m55", ("cortex-m4", True): "cortex-m4+fp",
               ("cortex-m4", False): "cortex-m4", ("cortex-m7", True): "cortex-m7+fp",
               ("cortex-m7", False): "cortex-m7", ("cortex-m3", False): "cortex-m3",
               ("cortex-m33", True): "cortex-m33", ("cortex-m0plus", False): "cortex-m0plus"}


class TflmError(Exception):
    """The TFLM tree, a third-party tree or the library build is not what the script needs."""


@dataclass(frozen=True)
class Pin:
    """A third-party tree TFLM pins: its place under downloads/, its GitHub repository, the ref,
    and TFLM's patch for it (relative to the TFLM root), if any."""

    directory: str
    owner: str
    repo: str
    ref: str
    patch: str | None = None


@dataclass(frozen=True)
class Library:
    """A built TFLM library and how it was compiled."""

    path: Path
    target_arch: str
    cxxflags: tuple[str, ...]
    ccflags: tuple[str, ...]
    includes: tuple[str, ...]  # -I flags, absolute
    tflm_commit: str
    cmsis_nn: dict
    build_seconds: float  # how long TFLM's Makefile took to build it
    cached: bool  # taken from the cache by this run


def _read(root: Path, relative: Path | str) -> str:
    path = root / relative
    if not path.is_file():
        raise TflmError(f"{path}: not found; is {root} a tflite-micro source tree?")
    return path.read_text(encoding="utf-8")


def _github(text: str, variable: str, source: str) -> tuple[str, str, str]:
    """(owner, repo, ref) from `variable := "https://github.com/o/r/archive/<ref>.zip"`."""
    match = re.search(rf'^{variable}\s*:?=\s*"https?://github\.com/([^/]+)/([^/]+)/archive/'
                      r'(?:refs/tags/)?([^"/]+)\.zip"', text, re.MULTILINE)
    if not match:
        raise TflmError(f"{source}: no GitHub archive URL in {variable}")
    return match.group(1), match.group(2), match.group(3)


def pinned_trees(tflm_root: Path) -> list[Pin]:
    """The third-party trees and commits that TFLM's own download scripts would fetch."""
    inc = MAKE_DIR / "third_party_downloads.inc"
    text = _read(tflm_root, inc)
    pins = []
    for directory, variable, patch_variable in (
        ("gemmlowp", "GEMMLOWP_URL", None), ("ruy", "RUY_URL", None),
        ("flatbuffers", "FLATBUFFERS_URL", "FLATBUFFERS_PATCH_PATH"),
        ("kissfft", "KISSFFT_URL", "KISSFFT_PATCH_PATH"),
    ):
        owner, repo, ref = _github(text, variable, str(inc))
        patch = None
        if patch_variable:
            found = re.search(rf'^{patch_variable}\s*:?=\s*"([^"]+)"', text, re.MULTILINE)
            if not found:
                raise TflmError(f"{inc}: no {patch_variable}")
            patch = found.group(1)
        pins.append(Pin(directory, owner, repo, ref, patch))
    script = MAKE_DIR / "ext_libs" / "cmsis_download.sh"
    # Each archive: ZIP_PREFIX="<sha>" then <NAME>_URL="http://github.com/<owner>/<repo>/archive/...".
    found = re.findall(r'ZIP_PREFIX="([0-9a-f]{40})"\s*\n\s*\w+_URL="https?://github\.com/([^/]+)/([^/]+)/'
                       r'archive/', _read(tflm_root, script))
    repos = {repo: (owner, sha) for sha, owner, repo in found}
    if set(repos) != {"CMSIS_6", "Cortex_DFP"}:
        raise TflmError(f"{script}: expected the CMSIS_6 and Cortex_DFP archives, found {sorted(repos)}")
    pins.append(Pin("cmsis", repos["CMSIS_6"][0], "CMSIS_6", repos["CMSIS_6"][1]))
    pins.append(Pin("cmsis/Cortex_DFP", repos["Cortex_DFP"][0], "Cortex_DFP", repos["Cortex_DFP"][1]))
    return pins


def pinned_cmsis_nn(tflm_root: Path) -> str:
    """The CMSIS-NN commit TFLM's download script pins."""
    script = MAKE_DIR / "ext_libs" / "cmsis_nn_download.sh"
    found = re.search(r'ZIP_PREFIX_NN="([0-9a-f]{40})"', _read(tflm_root, script))
    if not found:
        raise TflmError(f"{tflm_root / script}: no ZIP_PREFIX_NN")
    return found.group(1)


def git_commit(path: Path) -> str | None:
    """HEAD of the git checkout at `path`, or None if it is not one."""
    result = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


def cmsis_nn_identity(root: Path) -> dict:
    """The CMSIS-NN tree: its git commit (if a checkout) and a digest of its Include/ and Source/
    files, which keys the library cache."""
    if not (root / "Include" / "arm_nnfunctions.h").is_file():
        raise TflmError(f"{root}: not a CMSIS-NN tree (no Include/arm_nnfunctions.h)")
    digest = hashlib.sha256()
    for path in sorted(p for d in ("Include", "Source") for p in (root / d).rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return {"path": str(root), "commit": git_commit(root), "digest": digest.hexdigest()[:16]}


def _repository(third_party: Path, pin: Pin) -> Path:
    for candidate in (third_party / pin.repo, third_party / f"{pin.repo}.git",
                      third_party / f"{pin.owner}+{pin.repo}" / "repo"):
        if candidate.exists():
            return candidate
    raise TflmError(f"no git repository of {pin.owner}/{pin.repo} in {third_party} (looked for "
                    f"{pin.repo}, {pin.repo}.git and {pin.owner}+{pin.repo}/repo)")


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True)
    if result.returncode != 0:
        raise TflmError(f"git {' '.join(args)}: {result.stderr.decode(errors='replace').strip()}")
    return result


def _export(repository: Path, ref: str, destination: Path) -> None:
    """`git archive` of `ref` unpacked into `destination` (what GitHub's archive zip holds)."""
    archive = _git("--git-dir", str(_git_dir(repository)), "archive", "--format=tar", ref).stdout
    destination.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive, check=True)


def _git_dir(repository: Path) -> Path:
    return repository / ".git" if (repository / ".git").exists() else repository


def _apply_patch(tree: Path, patch: Path) -> None:
    """TFLM's scripts: make the tree a git repository, then `git apply` the patch to it."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "TFLM", "GIT_AUTHOR_EMAIL": "tflm@google.com",
           "GIT_COMMITTER_NAME": "TFLM", "GIT_COMMITTER_EMAIL": "tflm@google.com"}
    for args in (["init", "-q", "."], ["add", "-A"], ["commit", "-q", "-m", "unpacked"],
                 ["apply", "--ignore-space-change", "--ignore-whitespace", str(patch)]):
        result = subprocess.run(["git", *args], cwd=tree, capture_output=True, env=env)
        if result.returncode != 0:
            raise TflmError(f"{tree}: git {args[0]} failed: {result.stderr.decode(errors='replace').strip()}")


def lay_out_downloads(tflm_root: Path, third_party: Path | None) -> dict[str, str]:
    """Put every pinned tree TFLM's Makefile needs into its downloads/ directory, exported from
    the repositories in `third_party`; a tree already there is kept (as TFLM's scripts keep it).
    Returns what each directory holds."""
    pins = pinned_trees(tflm_root)
    downloads = tflm_root / MAKE_DIR / "downloads"
    downloads.mkdir(exist_ok=True)
    layout = {}
    for pin in pins:
        target = downloads / pin.directory
        source = f"{pin.owner}/{pin.repo}@{pin.ref}" + (" + TFLM's patch" if pin.patch else "")
        marker = target / ".tflm_device_source"
        if target.exists():
            layout[pin.directory] = (marker.read_text(encoding="utf-8").strip() if marker.exists()
                                     else f"{source} (already present, not checked)")
            continue
        if third_party is None:
            raise TflmError(f"{target} is missing: pass --third-party DIR holding a git repository of "
                            f"{pin.owner}/{pin.repo}")
        repository = _repository(third_party, pin)
        with tempfile.TemporaryDirectory(dir=downloads) as temp:
            staged = Path(temp) / "tree"
            _export(repository, pin.ref, staged)
            if pin.patch:
                _apply_patch(staged, tflm_root / pin.patch)
                shutil.rmtree(staged / ".git")
            for build_file in [*staged.rglob("BUILD"), *staged.rglob("BUILD.bazel")]:
                build_file.unlink()
            marker_text = f"{source} (from {repository})"
            (staged / ".tflm_device_source").write_text(marker_text + "\n", encoding="utf-8")
            staged.rename(target)  # whole or not at all
        layout[pin.directory] = marker_text
    (downloads / "pigweed").mkdir(exist_ok=True)  # only TFLM's tests use it
    layout["pigweed"] = "empty (used by TFLM's tests only)"
    return layout


def target_arch(cpu: str, fpu: bool) -> str:
    """TFLM's TARGET_ARCH for a board's CPU."""
    try:
        return TARGET_ARCH[(cpu, fpu)]
    except KeyError:
        raise TflmError(f"no TFLM cortex_m_generic TARGET_ARCH for {cpu} "
                        f"{'with' if fpu else 'without'} an FPU") from None


def make_command(tflm_root: Path, arch: str, cmsis_nn_root: Path, gendir: Path, jobs: int) -> list[str]:
    """TFLM's documented release build of the library, for `arch`, with CMSIS-NN from
    `cmsis_nn_root` and the objects under `gendir`."""
    compiler = shutil.which("arm-none-eabi-gcc")
    if compiler is None:
        raise TflmError("arm-none-eabi-gcc is not on PATH (Debian: apt-get install gcc-arm-none-eabi "
                        "libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib)")
    return ["make", "-f", str(MAKEFILE), f"-j{jobs}", "TARGET=cortex_m_generic", f"TARGET_ARCH={arch}",
            "OPTIMIZED_KERNEL_DIR=cmsis_nn", "TOOLCHAIN=gcc",
            f"TARGET_TOOLCHAIN_ROOT={Path(compiler).resolve().parent}/", "BUILD_TYPE=release",
            f"CMSIS_NN_PATH={cmsis_nn_root.resolve()}", f"BASE_GENDIR={gendir.resolve()}"]


def make_environment(python: Path, shim_dir: Path) -> dict[str, str]:
    """The environment for TFLM's Makefile: while it reads its example makefiles it runs
    `python3 tensorflow/lite/micro/tools/generate_cc_arrays.py`, which imports numpy and Pillow,
    so `python3` on its PATH is `python` (a directory holding one wrapper script, put first; a
    symlink would lose a virtualenv's site-packages)."""
    check = subprocess.run([str(python), "-c", "import numpy, PIL"], capture_output=True, text=True)
    if check.returncode != 0:
        raise TflmError(f"TFLM's Makefile runs python3 with numpy and Pillow, and {python} lacks them "
                        "(pip install numpy pillow, or pass --make-python PYTHON)")
    shim_dir.mkdir(parents=True, exist_ok=True)
    wrapper = shim_dir / "python3"
    wrapper.unlink(missing_ok=True)  # never write through an old symlink
    wrapper.write_text(f'#!/bin/sh\nexec "{Path(python).absolute()}" "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)
    return {**os.environ, "PATH": f"{shim_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def _make_variables(command: list[str], tflm_root: Path, names: tuple[str, ...],
                    env: dict[str, str]) -> dict[str, list[str]]:
    result = subprocess.run([*command, *(f"print-{n}" for n in names)], cwd=tflm_root,
                            capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise TflmError(f"TFLM's Makefile: {result.stderr.strip()[-400:]}")
    found = dict(line.split("=", 1) for line in result.stdout.splitlines()
                 if line.split("=", 1)[0] in names)
    return {n: shlex.split(found.get(n, "")) for n in names}  # as the shell would pass them


def _absolute_includes(flags: list[str], tflm_root: Path) -> tuple[str, ...]:
    return tuple(f"-I{(tflm_root / f[2:]).resolve()}" for f in flags if f.startswith("-I"))


def build_library(tflm_root: Path, arch: str, cmsis_nn_root: Path, cache: Path, python: Path, *,
                  jobs: int = 2, log=print) -> Library:
    """TFLM's library for `arch` with the CMSIS-NN tree at `cmsis_nn_root`: from the cache, or
    built by TFLM's Makefile (minutes) and cached by TFLM commit, CMSIS-NN contents and arch."""
    tflm_root = tflm_root.resolve()
    tflm_commit = git_commit(tflm_root) or "unknown"
    cmsis_nn = cmsis_nn_identity(cmsis_nn_root.resolve())
    key = cache / f"tflm-{tflm_commit[:12]}-cmsis-nn-{cmsis_nn['digest']}" / arch
    command = make_command(tflm_root, arch, cmsis_nn_root, key / "gen", jobs)
    flags_file = key / "flags.json"
    if (key / LIBRARY).is_file() and flags_file.is_file():
        flags = json.loads(flags_file.read_text(encoding="utf-8"))
        return Library(key / LIBRARY, arch, tuple(flags["cxxflags"]), tuple(flags["ccflags"]),
                       tuple(flags["includes"]), tflm_commit, cmsis_nn, flags["build_seconds"], True)
    env = make_environment(python, cache / "python-shim")
    key.mkdir(parents=True, exist_ok=True)
    log(f"building TFLM's library for {arch} (TFLM {tflm_commit[:8]}, CMSIS-NN "
        f"{(cmsis_nn['commit'] or cmsis_nn['digest'])[:8]}): {' '.join(command)} microlite")
    started = time.monotonic()
    with open(key / "build.log", "w", encoding="utf-8") as out:
        result = subprocess.run([*command, "microlite"], cwd=tflm_root, stdout=out, stderr=subprocess.STDOUT,
                                env=env)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        tail = (key / "build.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        raise TflmError(f"TFLM's library build failed ({key / 'build.log'}): {' | '.join(tail)}")
    variables = _make_variables(command, tflm_root, ("CXXFLAGS", "CCFLAGS", "INCLUDES", "GENDIR"), env)
    built = Path(variables["GENDIR"][0]) / "lib" / LIBRARY
    shutil.copy2(built, key / LIBRARY)
    flags = {"cxxflags": [f for f in variables["CXXFLAGS"] if f != "-MD"],
             "ccflags": [f for f in variables["CCFLAGS"] if f != "-MD"],
             "includes": list(_absolute_includes(variables["INCLUDES"], tflm_root)),
             "make": [*command, "microlite"], "build_seconds": round(seconds, 1)}
    flags_file.write_text(json.dumps(flags, indent=1) + "\n", encoding="utf-8")
    return Library(key / LIBRARY, arch, tuple(flags["cxxflags"]), tuple(flags["ccflags"]),
                   tuple(flags["includes"]), tflm_commit, cmsis_nn, seconds, False)

"""Exact scratch sizes for the target, asked of the NN library itself.

The library's `*_get_buffer_size*` queries (nnref, or a CMSIS-NN pack) are compiled once for the
host as a shared library and called through ctypes: the `_mve` or `_dsp` variant for the board's
CPU class, or the plain query, which, built for the host (no `__ARM_FEATURE_DSP`, no
`__ARM_FEATURE_MVE`), answers for plain C. Only the files holding the queries are compiled (in a
pack, `arm_convolve_get_buffer_sizes_s8.c` and its kin, with the pack's own headers); when those
call into other files of the library, the whole library is compiled for the host instead.
"""

from __future__ import annotations

import ctypes
import hashlib
import subprocess
from functools import cache
from pathlib import Path

from mcudeploy.build import NNLibrary
from mcudeploy.codegen.grouped_fallback import CompositeScratch, align4
from mcudeploy.codegen.lower import Dims, Layer
from mcudeploy.codegen.mcd_kernels import FixedScratch
from mcudeploy.errors import BuildError
from mcudeploy.resources import cache_dir

HOST_CFLAGS = ("-std=gnu11", "-O1", "-fPIC", "-shared", "-Wl,--no-undefined")
SUFFIX = {"mve": "_mve", "dsp": "_dsp", "plain": ""}


class _Tile(ctypes.Structure):
    _fields_ = (("w", ctypes.c_int32), ("h", ctypes.c_int32))


class _Dims(ctypes.Structure):
    _fields_ = (("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32),
                ("c", ctypes.c_int32))


class _Activation(ctypes.Structure):
    _fields_ = (("min", ctypes.c_int32), ("max", ctypes.c_int32))


class _ConvParams(ctypes.Structure):
    _fields_ = (("input_offset", ctypes.c_int32), ("output_offset", ctypes.c_int32),
                ("stride", _Tile), ("padding", _Tile), ("dilation", _Tile),
                ("activation", _Activation))


class _DwConvParams(ctypes.Structure):
    _fields_ = (("input_offset", ctypes.c_int32), ("output_offset", ctypes.c_int32),
                ("ch_mult", ctypes.c_int32), ("stride", _Tile), ("padding", _Tile),
                ("dilation", _Tile), ("activation", _Activation))


def _dims(d: Dims) -> _Dims:
    return _Dims(d.n, d.h, d.w, d.c)


def _window(v: dict) -> dict:
    return {
        "stride": _Tile(v["stride"][1], v["stride"][0]),
        "padding": _Tile(v["padding"][1], v["padding"][0]),
        "dilation": _Tile(v["dilation"][1], v["dilation"][0]),
        "activation": _Activation(v["act_min"], v["act_max"]),
    }


def _digest(library: NNLibrary) -> str:
    digest = hashlib.sha256()
    for path in sorted(library.sources):
        digest.update(path.read_bytes())
    for folder in library.include_dirs:
        for header in sorted(Path(folder).rglob("*.h")):
            digest.update(header.read_bytes())
    return digest.hexdigest()[:16]


def _compile(library: NNLibrary, sources: list[Path], target: Path) -> subprocess.CompletedProcess:
    cmd = ["gcc", *HOST_CFLAGS, "-o", str(target)]
    cmd += [f"-I{folder}" for folder in library.include_dirs]
    cmd += [str(s) for s in sources]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


@cache
def host_queries(library: NNLibrary) -> ctypes.CDLL:
    """The library's scratch queries built for the host (cached on disk by content)."""
    target = cache_dir() / "host" / f"nnlib-{_digest(library)}.so"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp.so")
        queries = [s for s in library.sources if "get_buffer_size" in s.name]
        result = _compile(library, queries, tmp) if queries else None
        if result is None or result.returncode != 0:
            result = _compile(library, list(library.sources), tmp)
        if result.returncode != 0:
            first = "\n".join(result.stderr.splitlines()[:8])
            raise BuildError(f"compiling {library.name}'s scratch queries for the host failed:\n{first}")
        tmp.rename(target)
    return ctypes.CDLL(str(target))


def answers_on_host(library: NNLibrary, cpu_class: str) -> bool:
    """Whether the library's scratch queries for `cpu_class` build and run on the host (else the
    device is asked: mcudeploy.scratch_probe)."""
    try:
        queries = host_queries(library)
    except BuildError:
        return False
    return hasattr(queries, "arm_convolve_wrapper_s8_get_buffer_size" + SUFFIX[cpu_class])


def scratch_bytes(layer: Layer, library: NNLibrary, cpu_class: str) -> int:
    """Bytes of scratch the layer's CMSIS-NN call needs on a CPU of `cpu_class`."""
    query = layer.scratch
    if query is None:
        return 0
    if isinstance(query, FixedScratch):
        return query.fixed_bytes
    base = query.library_function if isinstance(query, CompositeScratch) else query.function
    name = base + SUFFIX[cpu_class]
    try:
        fn = getattr(host_queries(library), name)
    except AttributeError:
        raise BuildError(f"{library.name} has no {name}(): cannot size the scratch of "
                         f"{layer.op.origin} for a {cpu_class} CPU from the host") from None
    fn.restype = ctypes.c_int32
    v = layer.values
    if query.args == "conv":
        params = _ConvParams(v["input_offset"], v["output_offset"], **_window(v))
        args = (ctypes.byref(params), ctypes.byref(_dims(v["input_dims"])),
                ctypes.byref(_dims(v["filter_dims"])), ctypes.byref(_dims(v["output_dims"])))
    elif query.args == "dw_conv":
        params = _DwConvParams(v["input_offset"], v["output_offset"], v["ch_mult"], **_window(v))
        args = (ctypes.byref(params), ctypes.byref(_dims(v["input_dims"])),
                ctypes.byref(_dims(v["filter_dims"])), ctypes.byref(_dims(v["output_dims"])))
    elif query.args == "fc":
        args = (ctypes.byref(_dims(v["filter_dims"])),)
    else:  # avgpool
        args = (ctypes.c_int(v["output_dims"].w), ctypes.c_int(v["input_dims"].c))
    size = int(fn(*args))
    if size < 0:
        raise BuildError(f"{layer.op.origin}: {name} returned {size}")
    if isinstance(query, CompositeScratch):
        return align4(size) + query.fixed_bytes
    return size

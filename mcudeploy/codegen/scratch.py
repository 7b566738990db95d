"""Exact scratch sizes for the target, asked of the NN library itself.

The library's sources (nnref or a CMSIS-NN pack) are compiled once for the host as a shared
library; its `*_get_buffer_size` queries are then called through ctypes with the `_mve` or `_dsp`
variant for the board's CPU class, or the plain one (which, built for the host, answers for plain C).
"""

from __future__ import annotations

import ctypes
import hashlib
import subprocess
from functools import cache
from pathlib import Path

from mcudeploy.build import NNLibrary
from mcudeploy.codegen.lower import Dims, Layer
from mcudeploy.errors import BuildError
from mcudeploy.resources import cache_dir


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


@cache
def _host_library(library: NNLibrary) -> ctypes.CDLL:
    digest = hashlib.sha256()
    for path in sorted(library.sources):
        digest.update(path.read_bytes())
    for inc in library.include_dirs:
        for header in sorted(Path(inc).glob("*.h")):
            digest.update(header.read_bytes())
    target = cache_dir() / "host" / f"nnlib-{digest.hexdigest()[:16]}.so"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp.so")
        cmd = ["gcc", "-std=c11", "-O1", "-shared", "-fPIC", "-o", str(tmp)]
        cmd += [f"-I{inc}" for inc in library.include_dirs]
        cmd += [str(s) for s in library.sources]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            first = "\n".join(result.stderr.splitlines()[:8])
            raise BuildError(f"compiling {library.name} for the host failed:\n{first}")
        tmp.rename(target)
    return ctypes.CDLL(str(target))


def scratch_bytes(layer: Layer, library: NNLibrary, cpu_class: str) -> int:
    """Bytes of scratch the layer's CMSIS-NN call needs on a CPU of `cpu_class`."""
    if layer.scratch is None:
        return 0
    lib = _host_library(library)
    suffix = {"mve": "_mve", "dsp": "_dsp", "plain": ""}[cpu_class]
    fn = getattr(lib, layer.scratch.function + suffix)
    fn.restype = ctypes.c_int32
    v = layer.values
    if layer.scratch.args == "conv":
        params = _ConvParams(v["input_offset"], v["output_offset"], **_window(v))
        args = (ctypes.byref(params), ctypes.byref(_dims(v["input_dims"])),
                ctypes.byref(_dims(v["filter_dims"])), ctypes.byref(_dims(v["output_dims"])))
    elif layer.scratch.args == "dw_conv":
        params = _DwConvParams(v["input_offset"], v["output_offset"], v["ch_mult"], **_window(v))
        args = (ctypes.byref(params), ctypes.byref(_dims(v["input_dims"])),
                ctypes.byref(_dims(v["filter_dims"])), ctypes.byref(_dims(v["output_dims"])))
    elif layer.scratch.args == "fc":
        args = (ctypes.byref(_dims(v["filter_dims"])),)
    else:  # avgpool
        args = (ctypes.c_int(v["output_dims"].w), ctypes.c_int(v["input_dims"].c))
    size = int(fn(*args))
    if size < 0:
        raise BuildError(f"{layer.op.origin}: {layer.scratch.function}{suffix} returned {size}")
    return size

"""Per-row kernel sums of fully connected layers, computed on the host and stored in flash.

On MVE builds CMSIS-NN's fully connected kernels read, from the context buffer, one int32 per
output channel: `input_offset * sum(filter row) + bias`, which `arm_vector_sum_s8` computes. They
depend only on constants, so instead of a RAM array filled at start-up they are computed here, by
the library's own `arm_vector_sum_s8` compiled for the host (the same C, so the same numbers), and
emitted as a const array in .weights that the layer passes as `ctx.buf`. That saves the array's
RAM and the start-up work; the start-up check that the library wants no more than that many bytes
stays. The library only reads the buffer, so a const array is safe behind the API's non-const
`void *`.

Which layers: those lowered with persistent scratch (fully connected) whose library query asks
for scratch on the board's CPU class (nnref and CMSIS-NN: MVE only).
"""

from __future__ import annotations

import ctypes
import hashlib
import subprocess
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np

from mcudeploy.build import NNLibrary
from mcudeploy.codegen.grouped_fallback import constant
from mcudeploy.codegen.lower import Const, Layer, LoweredModel
from mcudeploy.codegen.scratch import HOST_CFLAGS
from mcudeploy.errors import BuildError
from mcudeploy.resources import cache_dir

_I32 = ctypes.POINTER(ctypes.c_int32)
_I8 = ctypes.POINTER(ctypes.c_int8)


def _compile(library: NNLibrary, sources: list[Path], target: Path) -> subprocess.CompletedProcess:
    cmd = ["gcc", *HOST_CFLAGS, "-o", str(target), *(f"-I{d}" for d in library.include_dirs)]
    return subprocess.run(cmd + [str(s) for s in sources], capture_output=True, text=True, check=False)


@cache
def host_vector_sum(library: NNLibrary) -> Callable[..., int]:
    """The library's arm_vector_sum_s8 built for the host: its own file alone when that links,
    else the whole library (cached on disk by content)."""
    sources = sorted(Path(s) for s in library.sources)
    digest = hashlib.sha256(b"".join(s.read_bytes() for s in sources)).hexdigest()[:16]
    target = cache_dir() / "host" / f"vector-sum-{digest}.so"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp.so")
        own = [s for s in sources if s.name == "arm_vector_sum_s8.c"]
        result = _compile(library, own, tmp) if own else None
        if result is None or result.returncode != 0:
            result = _compile(library, sources, tmp)
        if result.returncode != 0:
            first = "\n".join(result.stderr.splitlines()[:8])
            raise BuildError(f"compiling {library.name}'s arm_vector_sum_s8 for the host failed:\n{first}")
        tmp.rename(target)
    try:
        fn = ctypes.CDLL(str(target)).arm_vector_sum_s8
    except AttributeError:
        raise BuildError(f"{library.name} has no arm_vector_sum_s8(): cannot compute the kernel sums "
                         "of its fully connected layers") from None
    fn.restype = ctypes.c_int32
    fn.argtypes = (_I32, ctypes.c_int32, ctypes.c_int32, _I8, ctypes.c_int32, ctypes.c_int32, _I32)
    return fn


def kernel_sums(layer: Layer, library: NNLibrary, words: int) -> np.ndarray:
    """`words` int32: the layer's kernel sums as the library computes them, then zeros."""
    f = layer.values["filter_dims"]  # n: depth (columns), c: output channels (rows)
    weights = np.ascontiguousarray(constant(layer, "weights"), dtype=np.int8)
    bias = np.ascontiguousarray(constant(layer, "bias"), dtype=np.int32)
    sums = np.zeros(max(words, f.c), dtype=np.int32)
    status = host_vector_sum(library)(sums.ctypes.data_as(_I32), f.n, f.c, weights.ctypes.data_as(_I8),
                                      layer.values["input_offset"], 0, bias.ctypes.data_as(_I32))
    if status != 0:
        raise BuildError(f"{layer.op.origin}: {library.name}'s arm_vector_sum_s8 returned {status}")
    return sums[:words]


def precompute_kernel_sums(lowered: LoweredModel, scratch: dict[int, int],
                           library: NNLibrary) -> tuple[LoweredModel, dict[int, int]]:
    """Layers whose persistent scratch holds kernel sums get them as a const array (and no
    scratch); the rest are unchanged."""
    layers, scratch = list(lowered.layers), dict(scratch)
    for i, layer in enumerate(layers):
        size = scratch.get(layer.index, 0)
        if not layer.persistent_scratch or size <= 0:
            continue
        sums = Const(f"{layer.name}_kernel_sums", "int32_t", kernel_sums(layer, library, -(-size // 4)))
        layers[i] = replace(layer, constants=(*layer.constants, sums), scratch=None,
                            values={**layer.values, "kernel_sums_bytes": size})
        scratch[layer.index] = 0
    return replace(lowered, layers=tuple(layers)), scratch

"""Per-row kernel sums of fully connected layers, computed on the host and stored in flash.

On MVE builds CMSIS-NN's fully connected kernels read, from the context buffer, one int32 per
output channel, which `arm_vector_sum_s8` computes. They depend only on constants, so instead of a
RAM array filled at start-up they are computed here, by the library's own `arm_vector_sum_s8`
compiled for the host (the same C, so the same numbers), and emitted as a const array in .weights
that the layer passes as `ctx.buf`. That saves the array's RAM and the start-up work; the start-up
check that the library wants no more than that many bytes stays. The library only reads the
buffer, so a const array is safe behind the API's non-const `void *`.

What the buffer holds depends on the release, and the header's declaration of `arm_vector_sum_s8`
says which release's contract applies; mcudeploy calls it as that release's own unit tests do:
- 4 arguments (CMSIS-NN 5.0.0) `(buf, cols, rows, data)`, and 6 (6.0.0) `(..., lhs_offset,
  bias_data)` called with lhs_offset 1 and no bias: each row's plain sum; the kernel multiplies it
  by the input offset and adds the bias itself;
- 7 arguments (from 7.0.0) `(..., lhs_offset, rhs_offset, bias_data)` called with the input offset,
  0 (the filter offset of int8) and the bias: `input_offset * sum(row) + bias`, which the kernel
  starts its accumulator from.
Any other declaration is refused rather than called. Every answer is compared with the same
arithmetic done in numpy; a difference refuses the build, naming the function and the library.
5.0.0 implements the function for MVE only (built for the host it answers "no implementation"):
its plain row sums are then mcudeploy's own.

Which layers: those lowered with persistent scratch (fully connected) whose library query asks
for scratch on the board's CPU class (nnref and CMSIS-NN from 5.0.0: MVE only).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from mcudeploy.codegen.grouped_fallback import constant
from mcudeploy.codegen.lower import Const, Layer, LoweredModel
from mcudeploy.errors import BuildError
from mcudeploy.nnlib import NNLibrary, host_build, per_content

FUNCTION = "arm_vector_sum_s8"
NO_IMPL = -2  # ARM_CMSIS_NN_NO_IMPL_ERROR
_I32 = ctypes.POINTER(ctypes.c_int32)
_I8 = ctypes.POINTER(ctypes.c_int8)
_HEAD = (("int32_t*", "vector_sum_buf"), ("int32_t", "vector_cols"), ("int32_t", "vector_rows"),
         ("int8_t*", "vector_data"))


@dataclass(frozen=True)
class Form:
    """A declaration of arm_vector_sum_s8 that mcudeploy knows: its parameters, the arguments after
    the first four (from the layer's input offset and bias), and whether the sums then include the
    offset and the bias."""

    params: tuple[tuple[str, str], ...]
    extra: Callable[[int, ctypes.c_void_p], tuple]
    fused: bool


FORMS = (
    Form(_HEAD, lambda offset, bias: (), fused=False),  # 5.0.0
    Form((*_HEAD, ("int32_t", "lhs_offset"), ("int32_t*", "bias_data")),
         lambda offset, bias: (1, None), fused=False),  # 6.0.0
    Form((*_HEAD, ("int32_t", "lhs_offset"), ("int32_t", "rhs_offset"), ("int32_t*", "bias_data")),
         lambda offset, bias: (offset, 0, bias), fused=True),  # 7.0.0 on
)


@per_content
def host_vector_sum(library: NNLibrary) -> tuple[Callable[..., int], Form]:
    """The library's arm_vector_sum_s8 built for the host, and the form its headers declare."""
    declared = library.prototype(FUNCTION)
    if declared is None:
        raise BuildError(f"{library.name} declares no {FUNCTION}(): cannot compute the kernel sums of its "
                         "fully connected layers, which its fully connected query asks for")
    params = tuple(zip(declared.types, declared.names, strict=True))
    form = next((f for f in FORMS if f.params == params), None)
    if form is None:
        raise BuildError(f"{library.name} declares {declared.describe()}: mcudeploy knows the 4-, 6- and "
                         f"7-argument forms of CMSIS-NN 5.0.0, 6.0.0 and 7.0.0, so it is not called")
    fn = getattr(host_build(library, [FUNCTION], purpose=FUNCTION), FUNCTION)
    fn.restype = ctypes.c_int32
    fn.argtypes = [{"int32_t*": _I32, "int8_t*": _I8, "int32_t": ctypes.c_int32}[t] for t, _ in params]
    return fn, form


def expected_sums(weights: np.ndarray, input_offset: int, bias: np.ndarray, fused: bool) -> np.ndarray:
    """mcudeploy's own arithmetic: each row's sum, or `input_offset * sum + bias` (int32 wrap)."""
    sums = weights.astype(np.int64).sum(axis=1)
    if fused:
        sums = input_offset * sums + bias.astype(np.int64)
    return ((sums + 2**31) % 2**32 - 2**31).astype(np.int32)


def _where(layer: Layer) -> str:
    return f"layer {layer.index} {layer.name} ({layer.op.origin})"


def kernel_sums(layer: Layer, library: NNLibrary, words: int) -> np.ndarray:
    """`words` int32: the layer's kernel sums as the library computes them, then zeros. Refuses
    (BuildError) when they differ from mcudeploy's own arithmetic."""
    f = layer.values["filter_dims"]  # n: depth (columns), c: output channels (rows)
    weights = np.ascontiguousarray(constant(layer, "weights"), dtype=np.int8).reshape(f.c, f.n)
    bias = np.ascontiguousarray(constant(layer, "bias"), dtype=np.int32)
    offset = layer.values["input_offset"]
    fn, form = host_vector_sum(library)
    sums = np.zeros(max(words, f.c), dtype=np.int32)
    status = fn(sums.ctypes.data_as(_I32), f.n, f.c, weights.ctypes.data_as(_I8),
                *form.extra(offset, bias.ctypes.data_as(_I32)))
    want = expected_sums(weights, offset, bias, form.fused)
    if status == NO_IMPL and not form.fused:  # 5.0.0 implements it for MVE only: plain sums
        sums[: f.c] = want
        status = 0
    if status != 0:
        raise BuildError(f"{_where(layer)}: {library.name}'s {FUNCTION} returned {status}")
    if not np.array_equal(sums[: f.c], want):
        wrong = int(np.count_nonzero(sums[: f.c] != want))
        raise BuildError(f"{_where(layer)}: {library.name}'s {FUNCTION} ({len(form.params)} arguments) "
                         f"computed {wrong} of {f.c} kernel sums unlike mcudeploy's arithmetic: the build is "
                         "refused rather than store sums the kernel would misuse")
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

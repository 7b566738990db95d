"""Exact scratch sizes for the target, asked of the NN library itself.

The library's `*_get_buffer_size*` queries (nnref, or a CMSIS-NN pack) are compiled for the host
(mcudeploy.nnlib.host_build: only the files behind them) and called through ctypes: the `_mve` or
`_dsp` variant for the board's CPU class, or the plain query, which, built for the host (no
`__ARM_FEATURE_DSP`, no `__ARM_FEATURE_MVE`), answers for plain C. A library whose headers do not
declare the variant, or whose queries do not build for the host, is asked on the device instead
(mcudeploy.scratch_probe).

Every call is checked before it is made: the query's declaration in the library's headers must take
the arguments mcudeploy passes, and the structs it passes (`cmsis_nn_conv_params` and its kin) must
have the fields, in the order, of mcudeploy's ctypes mirrors; a library that differs is refused,
naming the function and the library, rather than called with arguments it would misread. The
answers are checked against mcudeploy's own arithmetic where it has one (the fully connected query
sizes one int32 kernel sum per output channel, or nothing); the rest are confirmed by the firmware
at start-up, which asks the same query on the device and stops naming the layer if it wants more.
"""

from __future__ import annotations

import ctypes

from mcudeploy.codegen.grouped_fallback import CompositeScratch, align4
from mcudeploy.codegen.lower import Dims, FixedScratch, Layer
from mcudeploy.errors import BuildError
from mcudeploy.nnlib import (
    CActivation,
    CConvParams,
    CDims,
    CDwConvParams,
    CTile,
    HostBuildError,
    NNLibrary,
    check_call,
    check_structs,
    host_build,
    per_content,
)

SUFFIX = {"mve": "_mve", "dsp": "_dsp", "plain": ""}
# The queries mcudeploy calls on the host, by argument kind, with the parameter types it passes.
QUERIES = {
    "conv": ("arm_convolve_wrapper_s8_get_buffer_size",
             ("cmsis_nn_conv_params*", "cmsis_nn_dims*", "cmsis_nn_dims*", "cmsis_nn_dims*")),
    "dw_conv": ("arm_depthwise_conv_wrapper_s8_get_buffer_size",
                ("cmsis_nn_dw_conv_params*", "cmsis_nn_dims*", "cmsis_nn_dims*", "cmsis_nn_dims*")),
    "fc": ("arm_fully_connected_s8_get_buffer_size", ("cmsis_nn_dims*",)),
    "avgpool": ("arm_avgpool_s8_get_buffer_size", ("int32_t", "int32_t")),
}
# The queries of the 16x8 (`_s16`) calls: the same arguments as their int8 twins. Built for the host
# only for a model that has 16x8 layers (older packs do not declare them all).
QUERIES_S16 = {
    "conv": ("arm_convolve_wrapper_s16_get_buffer_size", QUERIES["conv"][1]),
    "dw_conv": ("arm_depthwise_conv_wrapper_s16_get_buffer_size", QUERIES["dw_conv"][1]),
    "fc": ("arm_fully_connected_s16_get_buffer_size", QUERIES["fc"][1]),
    "avgpool": ("arm_avgpool_s16_get_buffer_size", QUERIES["avgpool"][1]),
}
_S16_FUNCTIONS = frozenset(function for function, _ in QUERIES_S16.values())


def _dims(d: Dims) -> CDims:
    return CDims(d.n, d.h, d.w, d.c)


def _window(v: dict) -> dict:
    return {
        "stride": CTile(v["stride"][1], v["stride"][0]),
        "padding": CTile(v["padding"][1], v["padding"][0]),
        "dilation": CTile(v["dilation"][1], v["dilation"][0]),
        "activation": CActivation(v["act_min"], v["act_max"]),
    }


@per_content
def host_queries(library: NNLibrary, cpu_class: str, s16: bool = False) -> ctypes.CDLL:
    """The library's scratch queries (of the 16x8 calls with `s16`) for `cpu_class`, checked and
    built for the host. Raises BuildError when they are not declared or differ from what mcudeploy
    passes, HostBuildError when they do not build for the host."""
    queries = QUERIES_S16 if s16 else QUERIES
    purpose = f"its {'16x8 ' if s16 else ''}scratch queries ({cpu_class})"
    check_structs(library, ("cmsis_nn_tile", "cmsis_nn_dims", "cmsis_nn_activation", "cmsis_nn_conv_params",
                            "cmsis_nn_dw_conv_params"), purpose)
    for function, types in queries.values():
        check_call(library, function + SUFFIX[cpu_class], types, purpose)
    names = [function + SUFFIX[cpu_class] for function, _ in queries.values()]
    return host_build(library, names, purpose=purpose.removeprefix("its "))


def answers_on_host(library: NNLibrary, cpu_class: str) -> bool:
    """Whether the library declares and defines its scratch queries for `cpu_class` and they build
    for the host (else the device is asked: mcudeploy.scratch_probe). Queries declared with other
    arguments than mcudeploy passes are refused (BuildError)."""
    if not all(library.has(f + SUFFIX[cpu_class]) for f, _ in QUERIES.values()):
        return False
    try:
        host_queries(library, cpu_class)
    except HostBuildError:
        return False
    return True


def scratch_bytes(layer: Layer, library: NNLibrary, cpu_class: str) -> int:
    """Bytes of scratch the layer's CMSIS-NN call needs on a CPU of `cpu_class`."""
    query = layer.scratch
    if query is None:
        return 0
    if isinstance(query, FixedScratch):
        return query.size
    base = query.library_function if isinstance(query, CompositeScratch) else query.function
    name = base + SUFFIX[cpu_class]
    fn = getattr(host_queries(library, cpu_class, base in _S16_FUNCTIONS), name)
    fn.restype = ctypes.c_int32
    v = layer.values
    if query.args == "conv":
        params = CConvParams(v["input_offset"], v["output_offset"], **_window(v))
        args = (ctypes.byref(params), ctypes.byref(_dims(v["input_dims"])),
                ctypes.byref(_dims(v["filter_dims"])), ctypes.byref(_dims(v["output_dims"])))
    elif query.args == "dw_conv":
        params = CDwConvParams(v["input_offset"], v["output_offset"], v["ch_mult"], **_window(v))
        args = (ctypes.byref(params), ctypes.byref(_dims(v["input_dims"])),
                ctypes.byref(_dims(v["filter_dims"])), ctypes.byref(_dims(v["output_dims"])))
    elif query.args == "fc":
        args = (ctypes.byref(_dims(v["filter_dims"])),)
    else:  # avgpool
        args = (ctypes.c_int32(v["output_dims"].w), ctypes.c_int32(v["input_dims"].c))
    size = int(fn(*args))
    if size < 0:
        raise BuildError(f"{layer.op.origin}: {library.name}'s {name} returned {size}")
    if query.args == "fc" and base not in _S16_FUNCTIONS and size not in (0, 4 * v["filter_dims"].c):
        raise BuildError(f"{layer.op.origin}: {library.name}'s {name} asks for {size} bytes; mcudeploy "
                         f"expects none, or one int32 kernel sum per output channel "
                         f"({4 * v['filter_dims'].c} bytes), which it computes at build time")
    if isinstance(query, CompositeScratch):
        return align4(size) + query.fixed_bytes
    return size

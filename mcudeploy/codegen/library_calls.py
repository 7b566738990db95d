"""Which library calls a lowered layer may make, decided per call from what the library in use
declares and defines (mcudeploy.nnlib), never from its version number, and from the table of known
library faults.

- A per-channel fully connected layer can always be one 1x1 convolution call over
  [1, 1, rows, depth] (`fc_as_conv`): the same sums of the same products, requantized per output
  channel by the same arithmetic, so bit-exact. It is a lowering candidate
  (mcudeploy.codegen.candidates), the only one with a library that has no
  `arm_fully_connected_per_channel_s8` (CMSIS-NN before 7.0.0).
- MAXIMUM/MINIMUM with a library that has no `arm_maximum_s8`/`arm_minimum_s8` (before 7.0.0), or
  whose function has a known fault for the layer's shapes, becomes a generated loop (exact by
  construction: a comparison of int8 values sharing one quantization).
- After emission, every `arm_*` function a layer calls must be declared in the library's headers
  and defined in its sources; a layer calling one that is not is refused, naming the layer, the
  function and the library (`check_calls`).

`KNOWN_FAULTS` lists the faults: the functions, the layers they hit (the condition's docstring),
the releases seen affected, how mcudeploy tells whether the library in use has the fault (the
detection's docstring: by running the library's own code, not by reading its version), and what it
emits instead. A library whose affected functions cannot be tested on the host is taken to have
the fault.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from mcudeploy.codegen.lower import Dims, Layer, LoweredModel, ScratchQuery
from mcudeploy.errors import UnsupportedError
from mcudeploy.nnlib import CDims, HostBuildError, NNLibrary, check_call, host_build, per_content

PER_CHANNEL_FC = "arm_fully_connected_per_channel_s8"
_CALL = re.compile(r"\b(arm_\w+)\s*\(")


def fc_as_conv(layer: Layer) -> Layer:
    """One 1x1 convolution call over [1, 1, rows, depth]."""
    v = layer.values
    rows, depth, c_out = v["input_dims"].n, v["filter_dims"].n, v["filter_dims"].c
    values = {
        "input_offset": v["input_offset"], "output_offset": v["output_offset"],
        "act_min": v["act_min"], "act_max": v["act_max"],
        "input_dims": Dims(1, 1, rows, depth), "filter_dims": Dims(c_out, 1, 1, depth),
        "bias_dims": Dims(1, 1, 1, c_out), "output_dims": Dims(1, 1, rows, c_out),
        "stride": (1, 1), "dilation": (1, 1), "padding": (0, 0),
    }
    return replace(layer, template="conv2d.c.j2", values=values, persistent_scratch=False,
                   scratch=ScratchQuery("arm_convolve_wrapper_s8_get_buffer_size", "conv"))


def _strides(d: Dims, out: Dims) -> list[int]:
    """Element strides of an NHWC operand along N, H, W, C; 0 along an axis it broadcasts."""
    contiguous = (d.h * d.w * d.c, d.w * d.c, d.c, 1)
    return [0 if size == 1 and full > 1 else step
            for size, full, step in zip((d.n, d.h, d.w, d.c), (out.n, out.h, out.w, out.c), contiguous,
                                        strict=True)]


def extremum_as_loop(layer: Layer, reason: str) -> Layer:
    """A generated loop comparing the operands' elements (broadcast axes read at index 0)."""
    v = layer.values
    out = v["output_dims"]
    values = {**v, "take_max": v["function"] == "arm_maximum_s8", "reason": reason, "lowering": "loop",
              "strides": [_strides(v["input1_dims"], out), _strides(v["input2_dims"], out)]}
    return replace(layer, template="extremum_loop.c.j2", values=values)


def per_row_broadcast(layer: Layer) -> bool:
    """One operand is [N, H, 1, 1] with H > 1 (a value per row) against an output with W > 1."""
    v = layer.values
    operands = (v["input1_dims"], v["input2_dims"])
    return v["output_dims"].w > 1 and any(d.w == 1 and d.c == 1 and d.h > 1 for d in operands)


_PROBE_OUT = Dims(2, 5, 4, 6)
_PROBE_ROW = Dims(2, 5, 1, 1)


def _c_dims(d: Dims):
    return ctypes.byref(CDims(d.n, d.h, d.w, d.c))


@per_content
def extremum_row_fault(library: NNLibrary) -> bool:
    """Runs the library's own arm_maximum_s8 and arm_minimum_s8, compiled for the host, on a
    [2, 5, 1, 1] operand against [2, 5, 4, 6] in both orders, and compares with numpy."""
    functions = ("arm_maximum_s8", "arm_minimum_s8")
    types = ("cmsis_nn_context*", "int8_t*", "cmsis_nn_dims*", "int8_t*", "cmsis_nn_dims*", "int8_t*",
             "cmsis_nn_dims*")
    for function in functions:
        check_call(library, function, types, "a test of its broadcasting")
    try:
        dll = host_build(library, functions, purpose="maximum and minimum")
    except HostBuildError:
        return True
    rng = np.random.default_rng(0)
    row = rng.integers(-128, 128, (2, 5, 1, 1), dtype=np.int8)
    full = rng.integers(-128, 128, (2, 5, 4, 6), dtype=np.int8)
    for function, numpy_fn in zip(functions, (np.maximum, np.minimum), strict=True):
        fn = getattr(dll, function)
        fn.restype = ctypes.c_int32
        fn.argtypes = (ctypes.c_void_p,) * 7
        for (a, da), (b, db) in (((row, _PROBE_ROW), (full, _PROBE_OUT)),
                                 ((full, _PROBE_OUT), (row, _PROBE_ROW))):
            out = np.zeros(full.shape, dtype=np.int8)
            status = fn(None, a.ctypes.data, _c_dims(da), b.ctypes.data, _c_dims(db), out.ctypes.data,
                        _c_dims(_PROBE_OUT))
            if status != 0 or not np.array_equal(out, numpy_fn(a, b)):
                return True
    return False


@dataclass(frozen=True)
class LibraryFault:
    """A known fault of a library function: when it strikes (`condition`, its docstring in words),
    the releases seen affected, how mcudeploy tells whether the library in use has it (`detect`,
    its docstring) and what it emits instead (`avoid`, its docstring)."""

    functions: tuple[str, ...]
    condition: Callable[[Layer], bool]
    affected: str
    detect: Callable[[NNLibrary], bool]
    avoid: Callable[[Layer, str], Layer]


KNOWN_FAULTS: tuple[LibraryFault, ...] = (
    LibraryFault(("arm_maximum_s8", "arm_minimum_s8"), per_row_broadcast,
                 "CMSIS-NN 7.0.0 (22080c68) and main (99f736a6): the flat_size == 1 branch of the per-row "
                 "loop advances the pointer and then adds the row step too, skipping a row (110 of 240 "
                 "elements wrong for [2, 5, 1, 1] against [2, 5, 4, 6])",
                 extremum_row_fault, extremum_as_loop),
)


def _fit(layer: Layer, library: NNLibrary) -> Layer:
    if layer.op.kind != "extremum":
        return layer
    function = layer.values["function"]
    if not library.has(function):
        return extremum_as_loop(layer, f"{library.name} has no {function}")
    for fault in KNOWN_FAULTS:
        if function in fault.functions and fault.condition(layer) and fault.detect(library):
            return fault.avoid(layer, f"{library.name}'s {function} has a known fault for these shapes")
    return layer


def fit_to_library(lowered: LoweredModel, library: NNLibrary) -> LoweredModel:
    """Every layer lowered to calls the library has and computes right (see the module docstring)."""
    return replace(lowered, layers=tuple(_fit(layer, library) for layer in lowered.layers))


def check_calls(layer: Layer, body: str, library: NNLibrary) -> None:
    """Refuse a layer whose C calls an `arm_*` function the library does not declare and define."""
    for function in dict.fromkeys(_CALL.findall(body)):
        if not library.has(function):
            where = "its headers declare" if library.prototype(function) is None else "its sources define"
            raise UnsupportedError(f"layer {layer.index} {layer.name} ({layer.op.origin}): {library.name} "
                                   f"has no {function}() (not in what {where}), and mcudeploy has no "
                                   "other lowering for it")

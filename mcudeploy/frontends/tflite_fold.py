"""Shape computations of a TFLite file folded to constants.

Keras 3 converts a Flatten or Reshape with an unknown batch into SHAPE, STRIDED_SLICE and PACK
feeding RESHAPE: the new shape is computed at run time. The file stores every tensor's shape
with the batch as 1 (the signature keeps -1), and mcudeploy deploys batch 1, so such integer
sub-graphs have one answer: it is computed here, with numpy, and the operators go away. Only
operators whose inputs are all constant (or a SHAPE, which reads only a shape) and whose outputs
are integers are folded; the import says which were.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mcudeploy import ir

_INTEGER = ("int32", "int64")


def _strided_slice(values: list[np.ndarray], options: object) -> np.ndarray:
    data, begin, end, strides = values
    index = []
    for axis in range(data.ndim):
        bit = 1 << axis
        if options.shrinkAxisMask & bit:
            index.append(int(begin[axis]))
            continue
        start = None if options.beginMask & bit else int(begin[axis])
        stop = None if options.endMask & bit else int(end[axis])
        index.append(slice(start, stop, int(strides[axis])))
    return np.asarray(data[tuple(index)])


def _reduce(function: Callable) -> Callable[[list[np.ndarray], object], np.ndarray]:
    def fold(values: list[np.ndarray], options: object) -> np.ndarray:
        axes = tuple(int(a) for a in values[1].reshape(-1))
        return function(values[0], axis=axes, keepdims=bool(options and options.keepDims))

    return fold


FOLDERS: dict[str, Callable[[list[np.ndarray], object], np.ndarray]] = {
    "STRIDED_SLICE": _strided_slice,
    "PACK": lambda v, o: np.stack(v, axis=o.axis),
    "CONCATENATION": lambda v, o: np.concatenate([np.atleast_1d(x) for x in v], axis=o.axis),
    "GATHER": lambda v, o: np.take(v[0], v[1], axis=o.axis),
    "CAST": lambda v, o: v[0],
    "ADD": lambda v, o: v[0] + v[1],
    "SUB": lambda v, o: v[0] - v[1],
    "MUL": lambda v, o: v[0] * v[1],
    "FLOOR_DIV": lambda v, o: v[0] // v[1],
    "REDUCE_PROD": _reduce(np.prod),
    "FILL": lambda v, o: np.full(tuple(int(d) for d in v[0].reshape(-1)), v[1]),
    "RESHAPE": lambda v, o: v[0],
    "SQUEEZE": lambda v, o: v[0],
    "EXPAND_DIMS": lambda v, o: v[0],
}
"""Integer operators folded when their inputs are constant (the output's declared shape and type
are then applied)."""


def fold_constant(type_name: str, options: object, inputs: list[ir.Tensor],
                  output: ir.Tensor) -> np.ndarray | None:
    """The constant value of an operator's output, or None if it is not a foldable shape computation."""
    if output.dtype not in _INTEGER:
        return None
    if type_name == "SHAPE":
        shape = inputs[0].shape
        return None if any(d < 1 for d in shape) else np.array(shape, dtype=output.dtype)
    if type_name not in FOLDERS or any(t.data is None for t in inputs):
        return None
    if type_name in ("ADD", "SUB", "MUL") and options is not None \
            and getattr(options, "fusedActivationFunction", 0):
        return None
    with np.errstate(all="ignore"):
        value = np.asarray(FOLDERS[type_name]([t.data for t in inputs], options))
    if value.size != output.size and output.shape:
        return None
    shape = output.shape if output.shape or value.size == 1 else value.shape
    return value.astype(output.dtype).reshape(shape)

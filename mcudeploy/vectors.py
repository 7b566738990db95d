"""Test vectors: random integers of each input's type (int8, or int16 for 16x8 inputs) with a seed,
or loaded from the user's .npy/.npz file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mcudeploy.arith import round_half_away
from mcudeploy.errors import InputError
from mcudeploy.ir import Graph, Tensor

Vector = tuple[np.ndarray, ...]  # one array per model input (int8 or int16), in model order


def random_vectors(graph: Graph, count: int, seed: int) -> list[Vector]:
    """`count` vectors of uniformly random values over each input's integer type, reproducible
    from `seed`."""
    rng = np.random.default_rng(seed)
    tensors = [graph.tensor(n) for n in graph.inputs]
    ranges = [np.iinfo(t.dtype) for t in tensors]
    return [tuple(rng.integers(int(r.min), int(r.max) + 1, size=t.shape, dtype=np.int64).astype(t.dtype)
                  for t, r in zip(tensors, ranges, strict=True))
            for _ in range(count)]


def quantize_input(real: np.ndarray, t: Tensor) -> np.ndarray:
    """Real values as tensor `t` holds them: divided by its scale (float32), rounded half away from
    zero, offset by its zero point and clamped to its integer type."""
    info = np.iinfo(t.dtype)
    q = round_half_away(np.asarray(real, dtype=np.float32) / np.float32(t.scale)) + t.zero_point
    return np.clip(q, info.min, info.max).astype(t.dtype)


def load_vectors(graph: Graph, path: Path) -> list[Vector]:
    """Vectors from a .npy (one input) or .npz (one array per input name) file.

    Each array holds one vector of the input's shape or a stack of them; arrays of the input's
    integer type are used as they are, floating-point arrays are quantized with the input's scale
    and zero point, and uint8 arrays, for a file whose input is uint8, are shifted by 128 as the
    file's QUANTIZE does.
    """
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read test vectors: {exc}") from exc
    if isinstance(loaded, np.ndarray):
        if len(graph.inputs) != 1:
            raise InputError(f"{path}: the model has {len(graph.inputs)} inputs; give a .npz "
                             f"with arrays named {', '.join(graph.inputs)}")
        arrays = [loaded]
    else:
        missing = [n for n in graph.inputs if n not in loaded.files]
        if missing:
            raise InputError(f"{path}: no array for input(s) {', '.join(missing)} "
                             f"(found {', '.join(loaded.files)})")
        arrays = [loaded[n] for n in graph.inputs]
    stacks = [_as_stack(graph, name, a, path) for name, a in zip(graph.inputs, arrays, strict=True)]
    counts = {len(s) for s in stacks}
    if len(counts) != 1:
        raise InputError(f"{path}: inputs hold different numbers of vectors {sorted(counts)}")
    return [tuple(s[i] for s in stacks) for i in range(counts.pop())]


def _as_stack(graph: Graph, name: str, array: np.ndarray, path: Path) -> np.ndarray:
    t = graph.tensor(name)
    shape = tuple(t.shape)
    if array.shape == shape:
        array = array[None]
    elif array.shape[1:] != shape and array.shape[1:] == shape[1:] and shape[0] == 1:
        array = array[:, None]
    if array.shape[1:] != shape:
        raise InputError(f"{path}: input {name!r} expects shape {list(shape)} (or a stack of "
                         f"them), the file has {list(array.shape)}")
    if array.dtype == np.dtype(t.dtype):
        return array
    if array.dtype == np.uint8 and name in graph.uint8_io:
        return (array.astype(np.int16) - 128).astype(np.int8)
    if np.issubdtype(array.dtype, np.floating):
        return quantize_input(array, t)
    also = ", uint8" if name in graph.uint8_io else ""
    raise InputError(f"{path}: input {name!r} is {array.dtype}; give {t.dtype}{also} or floating point")

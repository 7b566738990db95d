"""Test vectors: random int8 with a seed, or loaded from the user's .npy/.npz file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mcudeploy.arith import round_half_away
from mcudeploy.errors import InputError
from mcudeploy.ir import Graph

Vector = tuple[np.ndarray, ...]  # one int8 array per model input, in model order


def random_vectors(graph: Graph, count: int, seed: int) -> list[Vector]:
    """`count` vectors of uniformly random int8 values, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    shapes = [graph.tensor(n).shape for n in graph.inputs]
    return [tuple(rng.integers(-128, 128, size=s, dtype=np.int64).astype(np.int8) for s in shapes)
            for _ in range(count)]


def load_vectors(graph: Graph, path: Path) -> list[Vector]:
    """Vectors from a .npy (one input) or .npz (one array per input name) file.

    Each array holds one vector of the input's shape or a stack of them; int8 arrays are used as
    they are, floating-point arrays are quantized with the input's scale and zero point.
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
    if array.dtype == np.int8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        q = round_half_away(array.astype(np.float32) / np.float32(t.scale)) + t.zero_point
        return np.clip(q, -128, 127).astype(np.int8)
    raise InputError(f"{path}: input {name!r} is {array.dtype}; give int8 or floating point")

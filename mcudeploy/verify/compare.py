"""The bit-exact comparison of the device's outputs with the oracles'."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Mismatch:
    """Where a device output differs from an oracle's."""

    vector: int
    output: int
    oracle: str
    elements: int
    max_abs_diff: int
    first_index: list[int]


def compare(
    vector: int, device: Sequence[np.ndarray], expected: Sequence[np.ndarray], oracle: str
) -> list[Mismatch]:
    """Bit-exact comparison of each output; one Mismatch per differing output."""
    found = []
    for k, (d, e) in enumerate(zip(device, expected, strict=True)):
        e = np.asarray(e).reshape(d.shape)
        if not np.array_equal(d, e):
            diff = abs_diff(d, e)
            first = [int(i) for i in np.unravel_index(int(np.argmax(diff != 0)), d.shape)]
            found.append(Mismatch(vector, k, oracle, int((diff != 0).sum()), int(diff.max()), first))
    return found


def abs_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| element by element, without integer overflow."""
    return np.abs(a.astype(np.int64) - np.asarray(b).reshape(a.shape).astype(np.int64))

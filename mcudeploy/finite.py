"""Where an array stops being a finite number: the first NaN or infinity, in words."""

from __future__ import annotations

import numpy as np


def nonfinite(value: np.ndarray) -> str | None:
    """None when every element is finite, else what the first bad one is and where, e.g.
    "NaN at index [0, 3]" (for float arrays; other dtypes hold no NaN or infinity)."""
    value = np.asarray(value)
    if value.dtype.kind != "f":
        return None
    bad = ~np.isfinite(value)
    if not bad.any():
        return None
    flat = int(np.flatnonzero(bad.reshape(-1))[0])
    first = value.reshape(-1)[flat]
    what = "NaN" if np.isnan(first) else ("-inf" if first < 0 else "inf")
    count = int(bad.sum())
    where = f" at index {list(map(int, np.unravel_index(flat, value.shape)))}" if value.ndim else ""
    more = f" (and {count - 1} more non-finite values)" if count > 1 else ""
    return f"{what}{where}{more}"

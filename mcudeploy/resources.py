"""Where mcudeploy's non-Python parts live: firmware sources, board files, the SConstruct."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from mcudeploy.errors import MCUDeployError


@cache
def project_root() -> Path:
    """The directory holding `SConstruct`, `firmware/` and `boards/` (the source checkout)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "SConstruct").is_file() or not (root / "firmware").is_dir():
        raise MCUDeployError(
            f"mcudeploy's firmware sources are not beside the package ({root}); install it from "
            "a source checkout with `pip install -e .`"
        )
    return root


def boards_dir() -> Path:
    return project_root() / "boards"


def firmware_dir() -> Path:
    return project_root() / "firmware"


def nnref_dir() -> Path:
    return firmware_dir() / "nnref"


def cache_dir() -> Path:
    """A per-user cache (compiled objects, host query libraries); MCUDEPLOY_CACHE overrides."""
    base = os.environ.get("MCUDEPLOY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mcudeploy"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path

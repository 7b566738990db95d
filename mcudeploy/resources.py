"""Where mcudeploy's non-Python parts live: firmware sources, board files, the SConstruct.

In a source checkout they are at the top of the repository, beside the package; an installed wheel
carries a copy of them as `mcudeploy/_data/` (pyproject.toml maps them there). They are read in
place (SCons and the compiler need real files), and nothing is ever written beside them: builds
write to their own directory and caches go to `cache_dir()`.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from mcudeploy.errors import MCUDeployError

_PACKAGE = Path(__file__).resolve().parent


def _complete(root: Path) -> bool:
    return (root / "SConstruct").is_file() and (root / "firmware").is_dir() and (root / "boards").is_dir()


@cache
def project_root() -> Path:
    """The directory holding `SConstruct`, `firmware/` and `boards/`: the source checkout the package
    sits in, else the copy installed with the package."""
    for root in (_PACKAGE.parent, _PACKAGE / "_data"):
        if _complete(root):
            return root
    raise MCUDeployError(
        f"mcudeploy's firmware sources are missing: neither {_PACKAGE.parent} (a source checkout) nor "
        f"{_PACKAGE / '_data'} (an installed wheel) holds SConstruct, firmware/ and boards/; "
        "reinstall mcudeploy"
    )


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

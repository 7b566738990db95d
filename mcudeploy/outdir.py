"""Output directories that appear whole or not at all."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mcudeploy.errors import InputError


@contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    """Yield a fresh directory beside `final`; on success it replaces `final` in one rename.

    On an exception (a user error, a crash or Ctrl-C) the staging directory is removed and
    `final` is left as it was.
    """
    final = final.resolve()
    if final.exists() and not final.is_dir():
        raise InputError(f"{final} exists and is not a directory")
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{work.name.rsplit('-', 1)[-1]}")
        final.rename(old)
    work.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

"""Output directories that appear whole or not at all, written by one command at a time."""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mcudeploy.errors import InputError
from mcudeploy.interrupts import deferred


@contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    """Yield a fresh directory beside `final`; on success it replaces `final` in one rename.

    On an exception (a user error, a crash, Ctrl-C or SIGTERM, also repeated) the staging directory
    is removed and `final` is left as it was. The directories get the mode the umask gives any new
    directory. While the block runs, `final` is locked (`.NAME.lock` beside it): a second command
    writing the same directory is refused instead of one of the two results being lost.
    """
    final = final.resolve()
    if final.exists() and not final.is_dir():
        raise InputError(f"{final} exists and is not a directory")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output directory {final} "
                         f"({exc.filename}: {exc.strerror})") from None
    with _locked(final):
        _remove_leftovers(final)
        work = final.with_name(f".{final.name}.partial-{secrets.token_hex(4)}")
        try:
            work.mkdir()
            yield work
            with deferred():
                _replace(final, work)
        except BaseException:
            with deferred():
                shutil.rmtree(work, ignore_errors=True)
            raise


def _replace(final: Path, work: Path) -> None:
    """Put `work` in the place of `final`, removing the older `final`."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{work.name.rsplit('-', 1)[-1]}")
        final.rename(old)
    try:
        work.rename(final)
    except OSError:
        if old is not None:
            old.rename(final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def _locked(final: Path) -> Iterator[None]:
    """Hold an exclusive lock on `final` (flock on `.NAME.lock` beside it, removed at the end), or
    refuse when another process holds it."""
    path = final.with_name(f".{final.name}.lock")
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise InputError(f"cannot write the output directory {final} ({path}: {exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            raise InputError(
                f"{final} is being written by another mcudeploy command"
                f"{f' (pid {holder})' if holder.isdigit() else ''}; wait for it or choose another --out"
            ) from None
        if _same_file(fd, path):
            break
        os.close(fd)  # its holder removed it between our open and our lock: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with deferred():
            path.unlink(missing_ok=True)
            os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _remove_leftovers(final: Path) -> None:
    """Staging and old directories of `final` that a killed command left (only one command at a
    time holds the lock, so none is in use)."""
    name = glob.escape(final.name)
    for pattern in (f".{name}.partial-*", f".{name}.old-*"):
        for leftover in final.parent.glob(pattern):
            with contextlib.suppress(OSError):
                shutil.rmtree(leftover)

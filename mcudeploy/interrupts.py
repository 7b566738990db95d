"""Ctrl-C and SIGTERM: the first stops the command, none cuts its cleanup short.

`interruptible` (the command's whole run) turns the first SIGINT into KeyboardInterrupt and the first
SIGTERM into `Terminated`, so that every `finally` and `with` on the way out runs: emulators are
reaped, staging directories removed. Signals after the first are ignored while that cleanup runs,
and so is a signal that was ignored when the command started.
`deferred` holds signals for a block that must not stop half-way (removing or renaming a
directory), also when the CLI's handlers are not installed (mcudeploy used as a library).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM: the command stops as on Ctrl-C (exit status 143 instead of 130)."""


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class Interrupt:
    """What `interruptible` saw: the first signal that came (None: none)."""

    signal: int | None = None


@contextmanager
def interruptible() -> Iterator[Interrupt]:
    """For the block, the first SIGINT raises KeyboardInterrupt and the first SIGTERM `Terminated`;
    later ones are ignored, also after the block. Without a signal the previous handlers come back
    at the end. The `Interrupt` yielded tells which signal came: an extension module being imported
    may turn the KeyboardInterrupt into another exception (pybind11: ImportError)."""
    seen = Interrupt()
    if not _in_main_thread():
        yield seen
        return

    def ignore(signum: int, frame: FrameType | None) -> None:  # not SIG_IGN: children inherit that
        del signum, frame

    def stop(signum: int, frame: FrameType | None) -> None:
        del frame
        seen.signal = signum
        for s in _SIGNALS:
            signal.signal(s, ignore)
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    # A signal ignored when the command started (`nohup`, a background job) stays ignored.
    previous = {s: signal.signal(s, stop) for s in _SIGNALS if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield seen
    finally:
        if seen.signal is None:
            _restore(previous)
        else:  # the process is ending: SIG_IGN, unlike a Python handler, outlives its finalisation
            for s in _SIGNALS:
                signal.signal(s, signal.SIG_IGN)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then deliver the first one that came."""
    if not _in_main_thread():
        yield  # Python runs signal handlers in the main thread only: nothing to hold here
        return
    caught: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        del frame
        caught.append(signum)

    previous = {s: signal.signal(s, hold) for s in _SIGNALS if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield
    finally:
        _restore(previous)
        if caught:
            signal.raise_signal(caught[0])


def _restore(previous: dict[int, object]) -> None:
    for s, handler in previous.items():
        signal.signal(s, handler if handler is not None else signal.SIG_DFL)  # type: ignore[arg-type]

"""Progress for long work: rich bars on a terminal, plain lines otherwise."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.text import Text

from mcudeploy import terminal

_LINE_EVERY_SECONDS = 2.0


class Progress:
    """Steps and counted work, shown to a person; quiet=True shows nothing. Messages print as they
    are (they may hold names from the model): give a console from mcudeploy.terminal."""

    def __init__(self, console: Console | None = None, quiet: bool = False) -> None:
        self.console = console or terminal.console(stderr=True)
        self.quiet = quiet
        self._bar: RichProgress | None = None

    def step(self, message: str) -> None:
        if not self.quiet:
            self.console.print(Text("•", style="bold"), message)

    def warn(self, message: str) -> None:
        """A warning a person must not miss (printed even when quiet)."""
        self.console.print(Text("warning:", style="bold yellow"), message)

    @contextmanager
    def working(self, message: str) -> Iterator[None]:
        """One step of uncounted work: a spinner with the time elapsed on a terminal, the step's
        line otherwise."""
        if self.quiet or not self.console.is_terminal:
            self.step(message)
            yield
            return
        started = time.monotonic()
        with self.console.status(Text(message)):
            yield
        self.step(f"{message} ({time.monotonic() - started:.1f} s)")

    def bar(self, total: int, what: str) -> Callable[[], None]:
        """A counter of `total` items; call the result once per finished item (from any thread).
        On a terminal it is a bar; otherwise a line at every tenth and at least every few seconds."""
        lock = threading.Lock()
        done = 0
        started = last = time.monotonic()
        if self.quiet:
            return lambda: None
        if not self.console.is_terminal:
            every = max(1, total // 10)

            def line() -> None:
                nonlocal done, last
                with lock:
                    done += 1
                    now = time.monotonic()
                    if done % every and done != total and now - last < _LINE_EVERY_SECONDS:
                        return
                    last = now
                    rate = done / max(now - started, 1e-9)
                    self.console.print(f"  {what}: {done}/{total} ({rate:.1f}/s)")

            return line
        bar = RichProgress("  " + what, BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                           console=self.console, transient=True)
        task = bar.add_task(what, total=total)
        bar.start()
        self._bar = bar

        def advance() -> None:
            nonlocal done
            with lock:
                done += 1
                bar.update(task, completed=done)
                if done >= total:
                    bar.stop()

        return advance

    def close(self) -> None:
        """Stop a bar left running (after an error)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

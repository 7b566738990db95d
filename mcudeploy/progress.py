"""Progress for long work: rich bars on a terminal, plain lines otherwise."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress


class Progress:
    """Steps and counted work, shown to a person; quiet=True shows nothing."""

    def __init__(self, console: Console | None = None, quiet: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self._bar: RichProgress | None = None

    def step(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"[bold]•[/] {message}", highlight=False)

    def bar(self, total: int, what: str) -> Callable[[int], None]:
        """A counter of `total` items; call the result with each finished item's index."""
        if self.quiet:
            return lambda index: None
        if not self.console.is_terminal:
            every = max(1, total // 10)

            def line(index: int) -> None:
                done = index + 1
                if done % every == 0 or done == total:
                    self.console.print(f"  {what}: {done}/{total}", highlight=False)

            return line
        bar = RichProgress("  " + what, BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                           console=self.console, transient=True)
        task = bar.add_task(what, total=total)
        bar.start()

        def advance(index: int) -> None:
            bar.update(task, completed=index + 1)
            if index + 1 >= total:
                bar.stop()

        self._bar = bar
        return advance

    def close(self) -> None:
        """Stop a bar left running (after an error)."""
        if self._bar is not None:
            self._bar.stop()

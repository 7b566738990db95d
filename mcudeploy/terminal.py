"""Consoles that print every string as it is, and nothing a terminal would act on.

What mcudeploy prints carries text from the user's files: tensor, node and file names, in tables,
progress lines and error messages. A default rich console reads `[bold red]x[/]` in such text as
markup and `:smile:` as an emoji code, and passes escape sequences, carriage returns and
bidirectional controls through to the terminal, which would act on them (clear a line, move the
cursor, reorder what it shows). These consoles read no markup or emoji code and show each such
character as an escape (`\\x1b`, `\\u202e`); styles are given as `Text` spans or `style=`.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from rich.console import Console
from rich.text import Text

_KEPT = frozenset("\n\t")
_ACTED_ON = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})  # controls, formats (bidi), surrogates, separators


def printable(text: str) -> str:
    """`text` with every character a terminal would act on, but newline and tab, as an escape."""
    return "".join(
        c if c in _KEPT or unicodedata.category(c) not in _ACTED_ON else ascii(c)[1:-1] for c in text
    )


class _LiteralConsole(Console):
    def render_str(self, text: str, **options: Any) -> Text:
        return super().render_str(printable(text), **options)


def console(**options: Any) -> Console:
    """A rich console (options as rich's `Console`) that prints strings literally (markup, emoji
    codes and highlighting off) and shows control characters as escapes."""
    return _LiteralConsole(markup=False, emoji=False, highlight=False, **options)

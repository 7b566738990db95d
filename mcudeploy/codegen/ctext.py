"""Text from outside mcudeploy (tensor, node and variable names, file names) as inert C comment text.

Generated C shows such names in comments only; every C identifier is made by mcudeploy from a
layer's index and kind (codegen/lower.py), never from a name. The templates pass every name through
the `comment` filter (`comment_text`), whose result is one line of printable ASCII that can end
neither a `/* */` nor a `//` comment nor start another: `*` (so no `*/` or `/*`), `?` (so no
trigraph such as `??/`, which `-std=c11` turns into a backslash), the backslash itself (so no line
splice), control characters (newlines, NUL) and anything outside ASCII (which GCC may warn about,
e.g. bidirectional controls) are written as escapes: `\\x2a`, `\\x0a`, `\\u00e9`. An escape starts
with a backslash but never ends with one. A long name is cut, saying how long it was.
"""

from __future__ import annotations

COMMENT_LIMIT = 160  # characters of a name shown in a comment
_ESCAPED = frozenset("*?\\")


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def comment_text(text: str) -> str:
    """`text` as it may stand inside any C comment: printable ASCII, escapes for the rest."""
    shown = text[:COMMENT_LIMIT]
    inert = "".join(_escape(c) if c in _ESCAPED or not " " <= c <= "~" else c for c in shown)
    if len(text) > COMMENT_LIMIT:
        inert += f"... ({len(text)} characters)"
    return inert

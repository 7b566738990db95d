"""One line for a pydantic validation error in a TOML file: `FILE:LINE: field 'a.b[2].c': message`.

The line is the key's own, else the nearest enclosing key or table header's (a missing field points
at its table), else 1. Checks across fields raise `FieldError` naming the field they are about.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails


class FieldError(ValueError):
    """A check across fields (in a model validator) that failed, with the field it is about,
    relative to the model that raised it."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


def describe(path: Path, text: str, exc: ValidationError, *, tags: Sequence[str] = ()) -> str:
    """The most useful error of `exc` on one line: unknown fields first (a typo also makes a field
    missing, and the unknown one is the typo). `tags` are the discriminators of tagged unions,
    which pydantic inserts into locations and a TOML file does not have."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    loc = _field_loc(err, tags)
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        missing = [str(e["loc"][-1]) for e in errors if e["type"] == "missing"
                   and _field_loc(e, tags)[:-1] == loc[:-1]]
        guess = difflib.get_close_matches(loc[-1], missing, n=1)
        message = "unknown field" + (f" (did you mean {guess[0]!r}?)" if guess else "")
    elif err["type"] == "missing":
        message = "missing field"
    elif err["type"].startswith("union_tag"):
        message = f"must be one of {', '.join(map(repr, tags))}"
    return f"{path}:{locate(text, loc)}: field {_dotted(loc)!r}: {message}"


def _field_loc(err: ErrorDetails, tags: Sequence[str]) -> list[str]:
    """The error's location as TOML keys: a FieldError adds its field, union tags are dropped,
    and a bad tag is the error of the union's `kind` field."""
    loc = [str(p) for p in err["loc"] if p not in tags]
    problem = (err.get("ctx") or {}).get("error")
    if isinstance(problem, FieldError):
        loc += [str(p) for p in problem.loc]
    if err["type"].startswith("union_tag"):
        loc.append("kind")
    return loc


def _dotted(loc: list[str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def locate(text: str, loc: list[str]) -> int:
    """The 1-based line of the TOML key at `loc` (e.g. ['memory', '2', 'lenght']); else of the
    nearest enclosing key or table header; else the first line."""
    for depth in range(len(loc), 0, -1):
        line = _find_key(text, loc[:depth])
        if line:
            return line
    return 1


def _find_key(text: str, loc: list[str]) -> int | None:
    """The line of the key `loc[-1]` in the table `loc[:-1]` (the n-th of an array of tables when
    an index follows the table's name), or of a table's header (the n-th for an index)."""
    *path, key = loc
    tables = [p for p in path if not p.isdigit()]
    index = next((int(p) for p in path if p.isdigit()), None)
    if key.isdigit():
        index, key = int(key), ""
    want = ".".join(tables)
    current, seen = "", -1
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        header = re.fullmatch(r"\[\[?\s*([\w.-]+)\s*\]?\]", line)
        if header:
            current = header.group(1)
            seen += current == want
            if not key and current == want and seen == index:
                return number
            if key and index is None and current == ".".join([*tables, key]):
                return number
            continue
        if key and current == want and (index is None or seen == index) and re.match(
                rf"\"?{re.escape(key)}\"?\s*=", line):
            return number
    return None

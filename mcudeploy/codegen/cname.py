"""The name of a generated model library (NAME.c, NAME.h, `NAME_invoke`, `NAME_INPUT0_BYTES`).

Every global symbol of the library starts with `NAME_` and every macro with `NAME_` in capitals, so
that several models link into one firmware. A name given by the user (`--name`) must be such a
prefix, or it is refused; the default, made from the model's file name, is cleaned until it is one.
A name is refused (or, from a file name, changed) when it:
- is not a C identifier of letters, digits and underscores starting with a letter;
- is longer than `MAX_LENGTH` characters;
- is a C keyword (`int.c` would be fine, `int_init` too, but the name alone is not);
- is a C standard header's name or starts with `arm_` (NAME.h would shadow `<stdint.h>` or a
  CMSIS-NN header on the include path, `arm_...` symbols are CMSIS's);
- is `mcd` or starts with `mcd` (the test firmware's runtime uses `mcd_`);
- has the form of a name code generation gives its own static symbols inside NAME.c (`l3`,
  `l3_conv2d`, `state0`: codegen/lower.py).
"""

from __future__ import annotations

import re

from mcudeploy.errors import InputError

MAX_LENGTH = 32
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_GENERATED = re.compile(r"^(l|state)\d+(_|$)")
KEYWORDS = frozenset([
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
    "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return",
    "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void",
    "volatile", "while", "_Alignas", "_Alignof", "_Atomic", "_Bool", "_Complex", "_Generic",
    "_Imaginary", "_Noreturn", "_Static_assert", "_Thread_local", "asm", "bool", "true", "false"
])
STANDARD_HEADERS = frozenset([
    "assert", "complex", "ctype", "errno", "fenv", "float", "inttypes", "iso646", "limits", "locale",
    "math", "setjmp", "signal", "stdalign", "stdarg", "stdatomic", "stdbool", "stddef", "stdint",
    "stdio", "stdlib", "stdnoreturn", "string", "tgmath", "threads", "time", "uchar", "wchar", "wctype"
])


def _problem(name: str) -> str | None:
    """Why `name` cannot name a library, or None."""
    if not _IDENTIFIER.match(name):
        return "is not a C identifier (letters, digits and _, starting with a letter)"
    if len(name) > MAX_LENGTH:
        return f"is longer than {MAX_LENGTH} characters"
    if name in KEYWORDS:
        return "is a C keyword"
    if name in STANDARD_HEADERS:
        return f"is the name of a C standard header ({name}.h)"
    if name.lower().startswith(("arm_", "mcd")):
        return "starts with arm_ or mcd, which CMSIS-NN and mcudeploy's runtime use"
    if _GENERATED.match(name):
        return "has the form of the names mcudeploy gives layers and variables (l3_..., state0)"
    return None


def check_name(name: str) -> str:
    """`name` as given with --name; InputError saying why it cannot prefix the library's symbols."""
    problem = _problem(name)
    if problem is not None:
        raise InputError(f"--name {name!r} {problem}")
    return name


def name_from_file(stem: str) -> str:
    """The default name for a model file's stem: characters outside [A-Za-z0-9_] become `_`, a
    long name is cut, and one that is still refused (a keyword, a header's name, `l3`, `mcd_x`)
    gets `_model` behind or else `model_` in front (`model` when nothing is left)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", stem)[:MAX_LENGTH].strip("_")
    if not name:
        return "model"
    short = name[: MAX_LENGTH - len("_model")].rstrip("_")
    for candidate in (name, f"{short}_model", f"model_{short}"):
        if _problem(candidate) is None:
            return candidate
    return "model"


def macro_prefix(name: str) -> str:
    """The prefix of the library's macros: the name in capitals (`tiny_cnn` -> `TINY_CNN`)."""
    return name.upper()

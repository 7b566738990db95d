"""GCC (arm-none-eabi) flags for a board's CPU, as data.

Each CPU has a base `-mcpu` and the `+no...` modifiers that switch off what the board lacks. No
`-mfpu`: GCC's default `-mfpu=auto` takes the FPU from `-mcpu`. The float ABI is `hard` when the
board has an FPU, else `soft`, except on a Cortex-M55 with integer MVE but no FPU, where MVE needs
`softfp` (`soft` silently drops MVE).

Multilib pitfall (Cortex-M55): `-mcpu=cortex-m55 -mfloat-abi=hard` links newlib from
`thumb/v8-m.main+dp/hard`, which is ABI-compatible and correct, only not MVE-optimised. The MVE
multilib `thumb/v8.1-m.main+mve/hard` is chosen only by `-march=armv8.1-m.main+mve`, and that
`-march` turns the scalar FPU *off* (`__SOFTFP__`): never use it to reach the MVE libc.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mcudeploy.boards import CPUS, Board, feature_problem
from mcudeploy.errors import BoardError, BuildError

TOOLCHAIN_PREFIX = "arm-none-eabi-"


def cpu_flags(board: Board) -> tuple[str, ...]:
    """The `-mcpu` (with modifiers) and `-mfloat-abi` flags that match the board's CPU exactly."""
    problem = feature_problem(board)
    if problem:
        raise BoardError(f"board {board.name}: {problem[1]}")
    cpu = CPUS[board.cpu]
    modifiers = ""
    if cpu.mve:
        modifiers += {"float": "", "int": "+nomve.fp", "none": "+nomve"}[board.mve]
    if cpu.fpu and not board.fpu:
        modifiers += "+nofp"
    if cpu.dsp == "optional" and not board.dsp:
        modifiers += "+nodsp"
    abi = "hard" if board.fpu else ("softfp" if board.mve == "int" else "soft")
    return ("-mthumb", f"-mcpu={board.cpu}{modifiers}", f"-mfloat-abi={abi}")


def find_compiler() -> Path:
    """The cross compiler on PATH, or a BuildError saying how to install it."""
    found = shutil.which(f"{TOOLCHAIN_PREFIX}gcc")
    if found is None:
        raise BuildError(
            f"{TOOLCHAIN_PREFIX}gcc is not on PATH; install it (Debian: apt-get install "
            "gcc-arm-none-eabi libnewlib-arm-none-eabi)"
        )
    return Path(found)

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
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mcudeploy.boards import Board
from mcudeploy.errors import BoardError, BuildError

TOOLCHAIN_PREFIX = "arm-none-eabi-"


@dataclass(frozen=True)
class _Cpu:
    fpu: bool                                      # an FPU is available (-mcpu implies it; +nofp)
    dsp: Literal["never", "always", "optional"]    # the DSP extension (+nodsp when optional)
    mve: bool = False                              # Helium (+nomve, +nomve.fp)


_CPUS: dict[str, _Cpu] = {
    "cortex-m0plus": _Cpu(fpu=False, dsp="never"),
    "cortex-m3": _Cpu(fpu=False, dsp="never"),
    "cortex-m4": _Cpu(fpu=True, dsp="always"),
    "cortex-m7": _Cpu(fpu=True, dsp="always"),
    "cortex-m23": _Cpu(fpu=False, dsp="never"),
    "cortex-m33": _Cpu(fpu=True, dsp="optional"),
    "cortex-m35p": _Cpu(fpu=True, dsp="optional"),
    "cortex-m55": _Cpu(fpu=True, dsp="optional", mve=True),
}


def cpu_flags(board: Board) -> tuple[str, ...]:
    """The `-mcpu` (with modifiers) and `-mfloat-abi` flags that match the board's CPU exactly."""
    cpu = _CPUS[board.cpu]
    _check_features(board, cpu)
    modifiers = ""
    if cpu.mve:
        modifiers += {"float": "", "int": "+nomve.fp", "none": "+nomve"}[board.mve]
    if cpu.fpu and not board.fpu:
        modifiers += "+nofp"
    if cpu.dsp == "optional" and not board.dsp:
        modifiers += "+nodsp"
    abi = "hard" if board.fpu else ("softfp" if board.mve == "int" else "soft")
    return ("-mthumb", f"-mcpu={board.cpu}{modifiers}", f"-mfloat-abi={abi}")


def _check_features(board: Board, cpu: _Cpu) -> None:
    where = f"board {board.name}: {board.cpu}"
    if board.fpu and not cpu.fpu:
        raise BoardError(f"{where} has no FPU; set fpu = false")
    if board.dsp and cpu.dsp == "never":
        raise BoardError(f"{where} has no DSP extension; set dsp = false")
    if not board.dsp and cpu.dsp == "always":
        raise BoardError(f"{where} always has the DSP extension; set dsp = true")
    if board.mve == "float" and not board.fpu:
        raise BoardError(f"{where}: mve = 'float' needs the FPU; set fpu = true or mve = 'int'")
    if board.mve != "none" and not board.dsp:
        raise BoardError(f"{where}: MVE needs the DSP extension; set dsp = true or mve = 'none'")


def find_compiler() -> Path:
    """The cross compiler on PATH, or a BuildError saying how to install it."""
    found = shutil.which(f"{TOOLCHAIN_PREFIX}gcc")
    if found is None:
        raise BuildError(
            f"{TOOLCHAIN_PREFIX}gcc is not on PATH; install it (Debian: apt-get install "
            "gcc-arm-none-eabi libnewlib-arm-none-eabi)"
        )
    return Path(found)

"""Scratch sizes asked of the NN library on the device, for libraries that cannot answer on the host.

CMSIS-NN packs from before the host-side `_dsp`/`_mve` queries keep their `*_get_buffer_size`
functions in the kernel files, which choose by the compiler's feature macros and include the CPU's
intrinsics headers: compiled for the host they do not build, and the plain-C answer would not be
the DSP or MVE one anyway. For those, mcudeploy asks the device. It emits the model with no
scratch, builds a probe firmware whose `probe.c` includes that `model.c` (by a relative path: no
directory name reaches the C) with its start-up check (`MCD_SCRATCH_WANTED`) redirected to a
report, runs it on the board's QEMU machine, and reads one `mcd-scratch <layer> <bytes>` line per
layer from the semihosting console. The probe runs the library's own queries, compiled with the
board's flags, on the board's CPU: the exact sizes. The real firmware then plans with them, and its
start-up check stays as the backstop.

`scratch_sizes` is what the pipeline's preparation asks before code generation: nothing to pass
for a library that answers on the host, else this probe.
"""

from __future__ import annotations

import re
import subprocess
from functools import partial
from pathlib import Path

from mcudeploy import __version__
from mcudeploy.boards import Board
from mcudeploy.build import build_firmware
from mcudeploy.codegen import ScratchSizes
from mcudeploy.codegen.arena import plan_arena
from mcudeploy.codegen.emit import emit_model, template_environment
from mcudeploy.codegen.library_calls import check_calls
from mcudeploy.codegen.lower import LoweredModel
from mcudeploy.codegen.scratch import answers_on_host
from mcudeploy.device.runners.base import find_executable
from mcudeploy.device.runners.qemu import QEMU, QemuRunner
from mcudeploy.errors import BuildError
from mcudeploy.ir import Graph
from mcudeploy.nnlib import NNLibrary

PROBE_TIMEOUT_SECONDS = 30.0
_LINE = re.compile(r"^mcd-scratch (\d+) (-?\d+)$", re.MULTILINE)


def scratch_sizes(library: NNLibrary, board: Board, work_dir: Path) -> ScratchSizes | None:
    """How code generation sizes scratch for `library` on `board`: None (the library's queries on
    the host) when it can, else the device probe, which works in `work_dir`."""
    if answers_on_host(library, board.cpu_class):
        return None
    return partial(probe_scratch, library=library, board=board, work_dir=work_dir)


def probe_scratch(graph: Graph, lowered: LoweredModel, library: NNLibrary, board: Board,
                  work_dir: Path) -> dict[int, int]:
    """Each layer's scratch bytes, as the library answers on the board's CPU under QEMU."""
    queried = [layer.index for layer in lowered.layers if layer.scratch is not None]
    if not queried:
        return {}
    if board.qemu is None or not board.semihosting:
        raise BuildError(f"{library.name} cannot size scratch on the host, and board {board.name} has "
                         "no QEMU machine with semihosting to ask: use a CMSIS-NN pack with the "
                         "host-side _dsp/_mve scratch queries (6.0.0 or later)")
    find_executable(QEMU, "install it (Debian: apt-get install qemu-system-arm)")
    zero = {layer.index: 0 for layer in lowered.layers}
    emit_model(graph, lowered, plan_arena(graph, lowered, zero), zero, work_dir / "model",
               source="scratch probe", board=board.name, cpu_class=board.cpu_class, library=library.name,
               check_layer=lambda layer, body: check_calls(layer, body, library))
    probe_dir = work_dir / "probe"
    probe_dir.mkdir(parents=True, exist_ok=True)
    text = template_environment().get_template("scratch_probe.c.j2").render(
        version=__version__, board=board.name, queries=len(queried))
    (probe_dir / "probe.c").write_text(text, encoding="utf-8")
    elf = build_firmware(board, probe_dir, work_dir / "build", library)
    command = QemuRunner(board, elf).command("null")
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_SECONDS,
                                stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise BuildError(f"the scratch probe ({elf}) did not finish on QEMU in {PROBE_TIMEOUT_SECONDS:.0f} "
                         f"s: a query of {library.name} hangs or faults") from None
    console = result.stdout + result.stderr  # QEMU writes the semihosting console to stderr
    answers = {int(layer): int(size) for layer, size in _LINE.findall(console)}
    missing = [i for i in queried if i not in answers]
    if result.returncode != 0 or missing:
        raise BuildError(f"the scratch probe ({elf}) exited with status {result.returncode} without "
                         f"answering for layers {missing}: {console.strip()[-300:]}")
    negative = {i: size for i, size in answers.items() if size < 0}
    if negative:
        raise BuildError(f"{library.name}'s scratch queries answered negative sizes on the device: "
                         f"{negative}")
    return {layer.index: answers.get(layer.index, 0) for layer in lowered.layers}

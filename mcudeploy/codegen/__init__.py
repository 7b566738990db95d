"""Code generation: lower the IR to CMSIS-NN calls, fit them to what the library has and computes
right, choose each layer's lowering, size scratch, precompute what the library would compute at
start-up, plan the arena, check that it fits the board, emit C (refusing calls the library lacks).
Code generation never builds or runs firmware: scratch is sized by the library's queries compiled
for the host, or by the `scratch` function its caller passes (for old packs, the device probe of
mcudeploy.scratch_probe)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mcudeploy.boards import Board
from mcudeploy.codegen.arena import plan_arena
from mcudeploy.codegen.candidates import CANDIDATES, Chooser, Table, choose_lowerings, default_chooser
from mcudeploy.codegen.emit import emit_model
from mcudeploy.codegen.fit import check_fit
from mcudeploy.codegen.kernel_sums import precompute_kernel_sums
from mcudeploy.codegen.library_calls import check_calls, fit_to_library
from mcudeploy.codegen.lower import LoweredModel, lower
from mcudeploy.codegen.scratch import scratch_bytes
from mcudeploy.ir import Graph
from mcudeploy.manifest import Manifest
from mcudeploy.nnlib import NNLibrary

ScratchSizes = Callable[[Graph, LoweredModel], dict[int, int]]  # each layer's scratch bytes


def generate(graph: Graph, board: Board, library: NNLibrary, out_dir: Path, source: str,
             choose: Chooser | None = None, table: Table = CANDIDATES,
             scratch: ScratchSizes | None = None, name: str = "model") -> Manifest:
    """Lower, plan and emit `graph` for `board` into `out_dir`: the C library NAME.c and NAME.h
    (`name`, a C identifier: mcudeploy.codegen.cname), the verification firmware's binding to it
    and manifest.json.

    `choose` picks each layer's lowering among the candidates of `table` that apply (default: the
    CPU class's default; a tuning file gives its own, mcudeploy.codegen.tuning). `scratch` sizes
    each layer's scratch (default: the library's queries compiled for the host).
    Raises PlanError, before writing anything, when the model does not fit the board's memory, and
    UnsupportedError when a layer calls a function the library lacks."""
    lowered = fit_to_library(lower(graph), library)
    lowered = choose_lowerings(lowered, library, choose or default_chooser(board.cpu_class), table,
                               board.cpu_class)
    if scratch is None:
        sizes = {layer.index: scratch_bytes(layer, library, board.cpu_class) for layer in lowered.layers}
    else:
        sizes = scratch(graph, lowered)
    lowered, sizes = precompute_kernel_sums(lowered, sizes, library)
    layout = plan_arena(graph, lowered, sizes)
    check_fit(board, lowered, layout)
    return emit_model(
        graph, lowered, layout, sizes, out_dir, source=source, board=board.name,
        cpu_class=board.cpu_class, library=library.name, name=name,
        check_layer=lambda layer, body: check_calls(layer, body, library),
    )

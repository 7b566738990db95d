"""Code generation: lower the IR to CMSIS-NN calls, size scratch, plan the arena, check that it fits
the board, emit C."""

from __future__ import annotations

from pathlib import Path

from mcudeploy.boards import Board
from mcudeploy.build import NNLibrary
from mcudeploy.codegen.arena import plan_arena
from mcudeploy.codegen.emit import Manifest, emit_model
from mcudeploy.codegen.fit import check_fit
from mcudeploy.codegen.grouped_fallback import split_grouped_convs
from mcudeploy.codegen.lower import lower
from mcudeploy.codegen.scratch import scratch_bytes
from mcudeploy.ir import Graph


def generate(graph: Graph, board: Board, library: NNLibrary, out_dir: Path, source: str) -> Manifest:
    """Lower, plan and emit `graph` for `board` into `out_dir` (model.c, model.h, manifest.json).

    Raises PlanError, before writing anything, when the model does not fit the board's memory."""
    lowered = lower(graph)
    if not library.grouped_conv:
        lowered = split_grouped_convs(lowered)
    scratch = {layer.index: scratch_bytes(layer, library, board.cpu_class) for layer in lowered.layers}
    layout = plan_arena(graph, lowered, scratch)
    check_fit(board, lowered, layout, scratch)
    return emit_model(
        graph, lowered, layout, scratch, out_dir, source=source, board=board.name,
        cpu_class=board.cpu_class, library=library.name,
    )

"""Code generation: lower the IR to CMSIS-NN calls, size scratch, plan the arena, emit C."""

from __future__ import annotations

from pathlib import Path

from mcudeploy.boards import Board
from mcudeploy.build import NNLibrary
from mcudeploy.codegen.arena import plan_arena
from mcudeploy.codegen.emit import Manifest, emit_model
from mcudeploy.codegen.lower import lower
from mcudeploy.codegen.scratch import scratch_bytes
from mcudeploy.ir import Graph


def generate(graph: Graph, board: Board, library: NNLibrary, out_dir: Path, source: str) -> Manifest:
    """Lower, plan and emit `graph` for `board` into `out_dir` (model.c, model.h, manifest.json)."""
    lowered = lower(graph)
    scratch = {layer.index: scratch_bytes(layer, library, board.cpu_class) for layer in lowered.layers}
    layout = plan_arena(graph, lowered, scratch)
    return emit_model(
        graph, lowered, layout, scratch, out_dir, source=source, board=board.name,
        cpu_class=board.cpu_class, library=library.name,
    )

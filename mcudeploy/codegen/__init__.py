"""Code generation: lower the IR to CMSIS-NN calls, choose each layer's lowering, size scratch,
precompute what the library would compute at start-up, plan the arena, check that it fits the
board, emit C."""

from __future__ import annotations

from pathlib import Path

from mcudeploy.boards import Board
from mcudeploy.build import NNLibrary
from mcudeploy.codegen.arena import plan_arena
from mcudeploy.codegen.candidates import CANDIDATES, Chooser, Table, choose_lowerings, default_chooser
from mcudeploy.codegen.emit import Manifest, emit_model
from mcudeploy.codegen.fit import check_fit
from mcudeploy.codegen.kernel_sums import precompute_kernel_sums
from mcudeploy.codegen.lower import LoweredModel, lower
from mcudeploy.codegen.scratch import answers_on_host, scratch_bytes
from mcudeploy.ir import Graph


def _scratch(graph: Graph, lowered: LoweredModel, library: NNLibrary, board: Board,
             out_dir: Path) -> dict[int, int]:
    if answers_on_host(library, board.cpu_class):
        return {layer.index: scratch_bytes(layer, library, board.cpu_class) for layer in lowered.layers}
    from mcudeploy.scratch_probe import probe_scratch  # builds and runs firmware: old packs only

    return probe_scratch(graph, lowered, library, board, out_dir.with_name(f"{out_dir.name}-scratch-probe"))


def generate(graph: Graph, board: Board, library: NNLibrary, out_dir: Path, source: str,
             choose: Chooser | None = None, table: Table = CANDIDATES) -> Manifest:
    """Lower, plan and emit `graph` for `board` into `out_dir` (model.c, model.h, manifest.json).

    `choose` picks each layer's lowering among the candidates of `table` that apply (default: the
    CPU class's default; a tuning file gives its own, mcudeploy.codegen.tuning).
    Raises PlanError, before writing anything, when the model does not fit the board's memory."""
    lowered = choose_lowerings(lower(graph), library, choose or default_chooser(board.cpu_class), table,
                               board.cpu_class)
    scratch = _scratch(graph, lowered, library, board, out_dir)
    lowered, scratch = precompute_kernel_sums(lowered, scratch, library)
    layout = plan_arena(graph, lowered, scratch)
    check_fit(board, lowered, layout)
    return emit_model(
        graph, lowered, layout, scratch, out_dir, source=source, board=board.name,
        cpu_class=board.cpu_class, library=library.name,
    )

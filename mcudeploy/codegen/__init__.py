"""Code generation: lower the IR to CMSIS-NN calls, fit them to what the library has and computes
right, choose each layer's lowering, size scratch, precompute what the library would compute at
start-up, choose the memory lowerings (streamed stages, overlaps) and plan the arena, check that it
fits the board, emit C (refusing calls the library lacks).
Code generation never builds or runs firmware: scratch is sized by the library's queries compiled
for the host, or by the `scratch` function its caller passes (for old packs, the device probe of
mcudeploy.scratch_probe; those get no streamed stages, whose bands would need the library asked
again)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path

from mcudeploy.boards import Board
from mcudeploy.codegen.candidates import CANDIDATES, Chooser, Table, choose_lowerings, default_chooser
from mcudeploy.codegen.emit import emit_model
from mcudeploy.codegen.fit import choose_placement, fits_board
from mcudeploy.codegen.kernel_sums import precompute_kernel_sums
from mcudeploy.codegen.library_calls import check_calls, fit_to_library
from mcudeploy.codegen.lower import LoweredModel, lower
from mcudeploy.codegen.memory import BALANCED, StagePolicy, plan_memory
from mcudeploy.codegen.scratch import scratch_bytes
from mcudeploy.ir import Graph
from mcudeploy.manifest import Manifest
from mcudeploy.nnlib import NNLibrary

ScratchSizes = Callable[[Graph, LoweredModel], dict[int, int]]  # each layer's scratch bytes


def generate(graph: Graph, board: Board, library: NNLibrary, out_dir: Path, source: str,
             choose: Chooser | None = None, table: Table = CANDIDATES,
             scratch: ScratchSizes | None = None, name: str = "model",
             below_bound: bool = True, stage_policy: StagePolicy = BALANCED) -> Manifest:
    """Lower, plan and emit `graph` for `board` into `out_dir`: the C library NAME.c and NAME.h
    (`name`, a C identifier: mcudeploy.codegen.cname), the verification firmware's binding to it
    and manifest.json.

    `choose` picks each layer's lowering among the candidates of `table` that apply (default: the
    CPU class's default; a tuning file gives its own, mcudeploy.codegen.tuning). `scratch` sizes
    each layer's scratch (default: the library's queries compiled for the host). `below_bound`:
    the memory lowerings that go below the tensor bound (mcudeploy.codegen.memory); without them
    every tensor is whole and intact until its last reader has run (what tuning images read);
    `stage_policy`: how many instructions streamed stages may add (manifest.json's `stages` says
    which were taken or declined, and why).
    The weights and the arena go to the first regions of the board's choices that hold them
    (manifest.json's `placement`, which the build reads). Raises PlanError, before writing
    anything, when the model does not fit the board's memory, and
    UnsupportedError when a layer calls a function the library lacks."""
    lowered = fit_to_library(lower(graph), library)
    lowered = choose_lowerings(lowered, library, choose or default_chooser(board.cpu_class), table,
                               board.cpu_class)
    if scratch is None:  # the library's queries on the host size any layer, a stage's bands too
        band_scratch = partial(scratch_bytes, library=library, cpu_class=board.cpu_class)
        sizes = {layer.index: band_scratch(layer) for layer in lowered.layers}
    else:  # sizes of the model's own layers only: no streamed stages
        band_scratch, sizes = None, scratch(graph, lowered)
    lowered, sizes = precompute_kernel_sums(lowered, sizes, library)
    memory = plan_memory(graph, lowered, sizes, library, board.cpu_class, band_scratch, below_bound,
                         stage_policy, partial(fits_board, board))
    lowered, sizes, layout = memory.lowered, memory.scratch, memory.layout
    placement = choose_placement(board, lowered, layout)
    return emit_model(
        graph, lowered, layout, sizes, out_dir, source=source, board=board.name, placement=placement,
        cpu_class=board.cpu_class, library=library.name, name=name,
        check_layer=lambda layer, body: check_calls(layer, body, library),
        stages=[{**asdict(d), "description": d.describe()} for d in memory.stages],
    )

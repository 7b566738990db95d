"""Does the planned model fit the board? Checked before anything is emitted or built.

Each part of the image goes to the memory region the board's placement names; the weights and the
arena to the first of the regions it lists that holds them (choose_placement). The parts the plan
knows exactly (weights, arena, the model's persistent state) are added to budgets for what only the
linker knows (the code of the runtime, the NN library and the layer calls; the runtime's static
data; the stack, which the build sizes from the call graph of the code, mcudeploy.stack). A region
that cannot hold its parts is refused with a `PlanError` naming the region and the bytes over. The
budgets are generous estimates (the bundled model needs under half of them), so the linker stays
the backstop: a region overflow still stops a build whose real sizes do not fit.
"""

from __future__ import annotations

from mcudeploy.boards import Board
from mcudeploy.codegen.arena import ArenaLayout
from mcudeploy.codegen.lower import LoweredModel
from mcudeploy.codegen.planner import align
from mcudeploy.errors import PlanError

CODE_BUDGET = 16 * 1024  # vectors, runtime, NN library
CODE_PER_LAYER = 256  # a layer's call and its constant dims/params structs
STATIC_BUDGET = 4 * 1024  # the runtime's .data and .bss (frame buffer, layer ticks)
STACK_BUDGET = 2 * 1024  # the stack: 600-1,000 B measured on the benchmark models (at most stack_bytes)
WEIGHT_ALIGNMENT = 16  # each constant array in .weights (NAME_WEIGHTS in model/prologue.c.j2)


def weight_bytes(lowered: LoweredModel) -> int:
    """Bytes of .weights: every constant array, each aligned as model.c places it."""
    constants = sum(align(c.nbytes, WEIGHT_ALIGNMENT)
                    for layer in lowered.layers for c in layer.constants)
    initial_values = sum(align(n, WEIGHT_ALIGNMENT) for n in lowered.variable_bytes.values())
    return constants + initial_values


def state_bytes(lowered: LoweredModel) -> int:
    """The model's static RAM outside the arena: the persistent variables of stateful models
    (fully connected kernel sums are precomputed into flash, mcudeploy.codegen.kernel_sums)."""
    return sum(lowered.variable_bytes.values())


def region_demands(board: Board, lowered: LoweredModel,
                   layout: ArenaLayout) -> dict[str, list[tuple[str, int]]]:
    """For each region, the parts placed in it: (description, bytes). The board's placement names
    one region per part (Board.placed)."""
    p = board.placement
    layers = len(lowered.layers)
    parts = [
        (p.code, "code (estimate)", CODE_BUDGET + CODE_PER_LAYER * layers),
        (p.weights, "weights", weight_bytes(lowered)),
        (p.data, "static data (estimate)", STATIC_BUDGET + 4 * layers + state_bytes(lowered)),
        (p.arena, "arena", layout.plan.arena_bytes),
        (p.stack, "stack (estimate)", min(STACK_BUDGET, p.stack_bytes)),
    ]
    demands: dict[str, list[tuple[str, int]]] = {}
    for region, what, size in parts:
        demands.setdefault(region, []).append((what, size))
    return demands


def overflow(board: Board, lowered: LoweredModel, layout: ArenaLayout) -> str | None:
    """Why the model does not fit the board as its placement places it (one region per part): the
    first region it overflows and by how many bytes; None when it fits."""
    for name, parts in region_demands(board, lowered, layout).items():
        region = board.region(name)
        need = sum(size for _, size in parts)
        if need > region.length:
            listed = " + ".join(f"{what} {size:,}" for what, size in parts)
            return (f"region {name} holds {region.length:,} bytes but needs {need:,} ({listed}): "
                    f"{need - region.length:,} bytes over")
    return None


def fits_board(board: Board, lowered: LoweredModel, layout: ArenaLayout) -> bool:
    """Whether some placement the board allows holds the planned model (choose_placement)."""
    try:
        choose_placement(board, lowered, layout)
    except PlanError:
        return False
    return True


def choose_placement(board: Board, lowered: LoweredModel, layout: ArenaLayout) -> dict[str, str]:
    """The regions of the weights and the arena: the first of the board's choices that fits, the
    arena's preference first (activations are read and written most). Raises PlanError naming
    the region the model overflows, in the last placement tried when the board allows several."""
    tries = [{"arena": arena, "weights": weights} for arena in board.placement.choices("arena")
             for weights in board.placement.choices("weights")]
    for regions in tries:
        problem = overflow(board.placed(**regions), lowered, layout)
        if problem is None:
            return regions
    if len(tries) > 1:
        problem = (f"in none of the {len(tries)} placements it allows; with the arena in {regions['arena']} "
                   f"and the weights in {regions['weights']}, {problem}")
    raise PlanError(f"the model does not fit board {board.name}: {problem}")

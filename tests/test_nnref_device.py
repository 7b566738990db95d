"""nnref cross-compiled and run on QEMU, one model per CPU class: the seeded device batch of
tests/nnref_cases.py (every CMSIS-NN function the generated code calls, with random shapes,
offsets, multipliers, shifts, groupings, dilations, batches and activation ranges) as one layer
each, bit-exact with the host reference; the data-movement functions (concatenation, pad,
transpose, maximum, minimum) through a hand-written model against numpy; and nnref's
instructions per MAC on reference layers, counted with QEMU -icount and the per-layer ticks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cases import REFERENCE_LAYER_NAMES, reference_layers
from nnref_cases import combine, describe, device_batch

from mcudeploy.boards import Board, load_board
from mcudeploy.build import build_firmware
from mcudeploy.codegen import generate
from mcudeploy.codegen.tuning import Tuning
from mcudeploy.device.protocol import INPUT, OUTPUT, Link
from mcudeploy.device.runners.qemu import QemuRunner
from mcudeploy.device.session import Session, run_vectors
from mcudeploy.ir import Graph
from mcudeploy.nnlib import nnref_library
from mcudeploy.reference import run_graph
from mcudeploy.vectors import Vector, random_vectors

pytestmark = pytest.mark.device
MOVES = Path(__file__).parent / "firmware" / "nnref_moves"
CPU_CLASSES = {"mve": "mps3-an547", "dsp": "mps2-an386", "plain": "mps2-an385"}


def run_on_qemu(graph: Graph, vectors: list[Vector], board: Board,
                work: Path) -> tuple[list[list[np.ndarray]], tuple[int, ...], list[int]]:
    """Outputs of every vector, the per-layer ticks of the last one, and each layer's MACs."""
    library = nnref_library()
    nnref_only = Tuning(library_only=True).chooser(board.cpu_class, library)  # no generated kernel
    manifest = generate(graph, board, library, work / "model", source=graph.name, choose=nnref_only)
    elf = build_firmware(board, work / "model", work / "build", library,
                         extra_defines={"MCD_MAX_LAYERS": str(len(manifest.layers))})
    with QemuRunner(board, elf, icount=True) as port:
        link = Link(port)
        assert link.hello().init_status == 0
        run = run_vectors(Session(link, manifest, invoke_timeout=60.0), vectors)
        ticks = link.layer_ticks(len(manifest.layers))
        link.exit(0)
    return run.outputs, ticks, [layer.macs for layer in manifest.layers]


@pytest.mark.parametrize("cpu_class", sorted(CPU_CLASSES))
def test_device_batch_is_bit_exact_on_each_cpu_class(tmp_path: Path, cpu_class: str) -> None:
    board = load_board(CPU_CLASSES[cpu_class])
    assert board.cpu_class == cpu_class
    cases = device_batch()
    graph, own_inputs = combine(cases)
    vectors = [own_inputs, *random_vectors(graph, 1, seed=9)]
    outputs, _, _ = run_on_qemu(graph, vectors, board, tmp_path)
    assert len(outputs) == len(vectors)
    for vector, got in zip(vectors, outputs, strict=True):
        expected = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
        for case, name, out in zip(cases, graph.outputs, got, strict=True):
            np.testing.assert_array_equal(out, expected[name], err_msg=f"{cpu_class}: {describe(case)}")


def _expected_moves(x: np.ndarray) -> np.ndarray:
    """What tests/firmware/nnref_moves/model.c computes, by numpy."""
    a = x[:24].reshape(1, 2, 3, 4)
    parts = [
        np.concatenate([a, x[24:48].reshape(1, 2, 3, 4)], axis=3),
        np.concatenate([a, x[24:40].reshape(1, 2, 2, 4)], axis=2),
        np.concatenate([a, x[24:36].reshape(1, 1, 3, 4)], axis=1),
        np.concatenate([a, x[24:48].reshape(1, 2, 3, 4)], axis=0),
        np.pad(a, ((0, 1), (1, 0), (0, 2), (2, 1)), constant_values=-7),
        x[:24].reshape(2, 3, 4).transpose(2, 0, 1),
        np.maximum(a, x[24:28].reshape(1, 1, 1, 4)),
        np.minimum(x[:8].reshape(1, 2, 1, 4), x[8:11].reshape(1, 1, 3, 1)),
    ]
    return np.concatenate([p.reshape(-1) for p in parts])


@pytest.mark.parametrize("cpu_class", sorted(CPU_CLASSES))
def test_data_movement_functions_match_numpy_on_each_cpu_class(tmp_path: Path, cpu_class: str) -> None:
    board = load_board(CPU_CLASSES[cpu_class])
    elf = build_firmware(board, MOVES, tmp_path, nnref_library())
    rng = np.random.default_rng(3)
    with QemuRunner(board, elf) as port:
        link = Link(port)
        assert link.hello().model_hash == b"nnrefmov"
        for _ in range(3):
            x = rng.integers(-128, 128, 64).astype(np.int8)
            link.write(INPUT, 0, x.tobytes())
            done = link.invoke()
            assert (done.status, done.layer) == (0, 7)
            out = np.frombuffer(link.read(OUTPUT, 0, 454), np.int8)
            np.testing.assert_array_equal(out, _expected_moves(x))
        link.exit(0)


@pytest.mark.parametrize("board_name", ["mps3-an547", "mps2-an386", "mps2-an385"])
def test_instructions_per_mac(tmp_path: Path, board_name: str) -> None:
    """Bit-exact, and the figures of the README (printed, and written to ipm.json)."""
    board = load_board(board_name)
    graph = reference_layers()[0]
    vector = random_vectors(graph, 1, seed=2)[0]
    outputs, ticks, macs = run_on_qemu(graph, [vector], board, tmp_path)
    expected = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
    for name, out in zip(graph.outputs, outputs[0], strict=True):
        np.testing.assert_array_equal(out, expected[name])
    per_tick = board.qemu.instructions_per_tick
    figures = {layer: round(t * per_tick / m, 2)
               for layer, t, m in zip(REFERENCE_LAYER_NAMES, ticks, macs, strict=True)}
    (tmp_path / "ipm.json").write_text(json.dumps({board.cpu: figures}, indent=1))
    print(f"\nnnref instructions per MAC on {board.cpu} ({board_name}): {figures}")
    assert all(1.0 < ipm < 40.0 for ipm in figures.values()), figures

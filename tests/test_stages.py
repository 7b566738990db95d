"""Streamed stages (mcudeploy.codegen.stages): the schedule computes every row once from rows that
exist, and the generated C, compiled for the host with nnref, is bit-exact with the reference for
chains of every geometry, whole or cut into stages, band by band."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hostlib import HostModel
from memory_models import mobilenet_head, random_chain, random_chains

from mcudeploy.boards import load_board
from mcudeploy.cli import main
from mcudeploy.codegen import generate
from mcudeploy.codegen.arena import plan_arena
from mcudeploy.codegen.candidates import choose_lowerings, default_chooser, library_only
from mcudeploy.codegen.emit import emit_model
from mcudeploy.codegen.kernel_sums import precompute_kernel_sums
from mcudeploy.codegen.lower import lower
from mcudeploy.codegen.memory import StagePolicy, overlap_shifts
from mcudeploy.codegen.scratch import scratch_bytes
from mcudeploy.codegen.stages import GENERATED_KINDS, MEMBER_TEMPLATE, Member, chains, schedule, stage
from mcudeploy.manifest import code_path
from mcudeploy.nnlib import nnref_library
from mcudeploy.reference import run_graph
from mcudeploy.vectors import random_vectors

LIBRARY = nnref_library()


def assert_bit_exact(graph, out: Path, manifest, vectors: int = 2) -> None:
    model = HostModel(out, LIBRARY, manifest)
    assert model.init_status == 0
    for vector in random_vectors(graph, vectors, seed=7):
        values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
        for name, got in zip(graph.outputs, model.invoke(vector), strict=True):
            np.testing.assert_array_equal(got, values[name], err_msg=name)


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("band", [1, 2, 3])
def test_schedule_computes_each_row_once_from_rows_computed(seed: int, band: int) -> None:
    graph, _ = random_chain(seed)
    layers = lower(graph).layers
    members = [Member.of(layer) for layer in layers if layer.template.startswith(("conv2d", "depthwise"))]
    plan = schedule(members, band)
    made: list[list[int]] = [[] for _ in members]
    for calls in plan.bands:
        for call in calls:
            if call.k > 0:  # its input rows were made earlier, and not dropped below the window
                assert set(range(call.in_first, call.in_end)) <= set(made[call.k - 1])
                assert call.in_first >= made[call.k - 1][-1] + 1 - plan.capacity[call.k - 1]
            assert (call.in_first, call.in_end) == members[call.k].inputs(call.first, call.end)
            made[call.k] += range(call.first, call.end)
    for k, rows in enumerate(made):
        assert rows == sorted(set(rows)), "a row made twice or out of order"
        assert set(rows) <= set(range(members[k].out_rows))
    assert made[-1] == list(range(members[-1].out_rows))


@pytest.mark.parametrize("seed", range(3))
def test_chains_as_stages_are_bit_exact(seed: int, tmp_path: Path) -> None:
    """Eight random chains in one model, each (its longest run that can be) one stage, a band of
    1, 2 or 3 rows; planned with the stage's output over its input where the schedule allows."""
    graph, _ = random_chains(seed, 8)
    lowered = lower(graph)
    scratch = {layer.index: scratch_bytes(layer, LIBRARY, "mve") for layer in lowered.layers}
    lowered, scratch = precompute_kernel_sums(lowered, scratch, LIBRARY)
    stages = {}
    for n, (i, j) in enumerate(_longest_runs(chains(graph, lowered))):
        made = stage(lowered, i, j, 1 + n % 3, lambda layer: scratch_bytes(layer, LIBRARY, "mve"))
        assert made is not None
        lowered, stage_bytes, stages[j] = made
        scratch = {**scratch, **{k: 0 for k in range(i, j)}, j: stage_bytes}
    assert len(stages) >= 6
    layout = plan_arena(graph, lowered, scratch, shifts=overlap_shifts(lowered, LIBRARY, "mve", stages))
    manifest = emit_model(graph, lowered, layout, scratch, tmp_path, source="chains", board="mps3-an547",
                          cpu_class="mve", library="nnref")
    members = [layer.index for layer in lowered.layers if layer.template == MEMBER_TEMPLATE]
    assert {t.producer for t in manifest.tensors}.isdisjoint(members), "inner maps are not stored"
    assert_bit_exact(graph, tmp_path, manifest)


@pytest.mark.parametrize(("seed", "cpu_class"), [(3, "dsp"), (4, "mve"), (5, "dsp"), (6, "mve")])
def test_chains_of_generated_kernels_as_stages_are_bit_exact(seed: int, cpu_class: str,
                                                            tmp_path: Path) -> None:
    """The same with the default lowering: the chains of mcudeploy's generated kernels (each band
    shape a copy of the layer's kernel with its rows and top padding), compiled for the host (the
    DSP and Helium instructions by mcdk's portable versions)."""
    graph, _ = random_chains(seed, 8)
    lowered = choose_lowerings(lower(graph), LIBRARY, default_chooser(cpu_class), cpu_class=cpu_class)
    scratch = {layer.index: scratch_bytes(layer, LIBRARY, cpu_class) for layer in lowered.layers}
    stages, kernels = {}, set()
    for n, (i, j) in enumerate(_longest_runs(chains(graph, lowered))):
        if lowered.layers[i].template not in GENERATED_KINDS:
            continue
        kernels |= {layer.template for layer in lowered.layers[i:j + 1]}
        made = stage(lowered, i, j, 1 + n % 3, lambda layer: scratch_bytes(layer, LIBRARY, cpu_class))
        assert made is not None
        lowered, stage_bytes, stages[j] = made
        scratch = {**scratch, **{k: 0 for k in range(i, j)}, j: stage_bytes}
    assert len(stages) >= 3 and f"mcd_conv_{cpu_class}.c.j2" in kernels
    layout = plan_arena(graph, lowered, scratch, shifts=overlap_shifts(lowered, LIBRARY, cpu_class, stages))
    board = "mps2-an386" if cpu_class == "dsp" else "mps3-an547"
    manifest = emit_model(graph, lowered, layout, scratch, tmp_path, source="chains", board=board,
                          cpu_class=cpu_class, library="nnref")
    assert "_band0_kernel(" in (tmp_path / "model.c").read_text()
    assert_bit_exact(graph, tmp_path, manifest)


@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
def test_mobilenet_head_streams_its_generated_kernels(board: str, tmp_path: Path) -> None:
    """The default lowering (generated kernels) of MobileNet's first blocks: a stage of them, its
    depthwise layer among them, is taken, and the outputs are the reference's, bit for bit."""
    graph, _ = mobilenet_head(size=48)
    manifest = generate(graph, load_board(board), LIBRARY, tmp_path, source="head",
                        stage_policy=StagePolicy(None))
    assert [s["taken"] for s in manifest.stages] == [True]
    text = (tmp_path / "model.c").read_text()
    isa = "dsp" if board == "mps2-an386" else "mve"
    for kind in ("conv2d", "depthwise_conv2d"):  # each member's kernel for its first band shape
        assert re.search(rf"static int32_t l\d+_{kind}_band0_kernel\(", text), kind
    # band copies that are the same code reading their rows at run time: one kernel for all bands,
    # each band's header passed (kernel_sharing, emit._share_bands)
    shared = re.findall(r"return (l\d+_depthwise_conv2d)_band0_kernel\(input, output, arena \+ \d+, "
                        r"(l\d+_depthwise_conv2d)_constants \+ (\d+)\);", text)
    assert shared and all(a == b for a, b, _ in shared) and {int(o) for *_, o in shared} > {0}, shared
    assert not re.search(r"static int32_t l\d+_depthwise_conv2d_band1_kernel\(", text)
    assert f"lowered as mcd_{isa}" in text and "lowered as stage of layers" in text
    assert manifest.arena_bytes < 0.85 * manifest.lower_bound, (manifest.arena_bytes, manifest.lower_bound)
    assert_bit_exact(graph, tmp_path, manifest, vectors=3)


@pytest.mark.device
@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
def test_a_stage_of_generated_kernels_is_bit_exact_on_qemu(board: str, tmp_path: Path) -> None:
    """The same model by `mcudeploy run` (default lowering, --optimization ram) on QEMU: the stage
    in the C, every output bit the host reference's and TFLM's, and the stack still bounded by the
    call graph (each band's kernel called directly)."""
    _, data = mobilenet_head(size=48)
    model = tmp_path / "head.tflite"
    model.write_bytes(data)
    out = tmp_path / "out"
    status = main(["run", str(model), "--board", board, "--out", str(out), "--vectors", "3",
                   "--optimization", "ram", "-q"])
    report = json.loads((out / "report.json").read_text())
    assert status == 0, report.get("mismatches") or report.get("error")
    assert report["oracles"] == ["host-reference", "tflm"] and report["bit_exact_vectors"] == 3
    assert report["firmware"]["stack_use"]["bound"] is not None, report["firmware"]["stack_use"]
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    assert [s["taken"] for s in manifest["stages"]] == [True]
    assert "_band0_kernel(" in code_path(out / "model").read_text()


def _longest_runs(found: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Of the runs that can be stages, the longest from each first layer, not overlapping."""
    runs: dict[int, int] = {}
    for i, j in found:
        runs[i] = max(runs.get(i, j), j)
    out, end = [], -1
    for i in sorted(runs):
        if i > end:
            out.append((i, runs[i]))
            end = runs[i]
    return out


def test_mobilenet_head_streams_its_first_blocks(tmp_path: Path) -> None:
    graph, _ = mobilenet_head(size=48)
    manifest = generate(graph, load_board("mps3-an547"), LIBRARY, tmp_path, source="head",
                        table=library_only())
    text = (tmp_path / "model.c").read_text()
    assert "lowered as stage of layers" in text
    assert manifest.arena_bytes <= 0.6 * manifest.lower_bound, (manifest.arena_bytes, manifest.lower_bound)
    assert_bit_exact(graph, tmp_path, manifest, vectors=3)

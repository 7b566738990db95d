"""Residual streamed stages (mcudeploy.codegen.stages): a chain of convolutions ending in the ADD of
its output and the stage's own input, the sum written over that input band by band. Bit-exact with
the reference on the host (the C compiled natively) and on QEMU (M4 and M55, generated kernels and
nnref's library calls, bands of one row and of several, odd heights); refused, with its reason in
the stage list, when the overwrite would not be safe; ResNet-8's arena below 27,000 bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from modelgen import GraphBuilder
from test_stages import assert_bit_exact

from benchmarks.models import MLPERF_TINY
from mcudeploy import ir
from mcudeploy.boards import load_board
from mcudeploy.cli import main
from mcudeploy.codegen import generate, memory
from mcudeploy.codegen.arena import plan_arena
from mcudeploy.codegen.candidates import choose_lowerings, default_chooser, library_only
from mcudeploy.codegen.emit import emit_model
from mcudeploy.codegen.kernel_sums import precompute_kernel_sums
from mcudeploy.codegen.lower import lower
from mcudeploy.codegen.memory import StagePolicy, overlap_shifts
from mcudeploy.codegen.scratch import scratch_bytes
from mcudeploy.codegen.stages import chains, residual_refusal, stage
from mcudeploy.manifest import code_path
from mcudeploy.nnlib import nnref_library

LIBRARY = nnref_library()
RELU = ir.Clip(0.0, None)
BOARDS = {"dsp": "mps2-an386", "mve": "mps3-an547"}


def residual_block(height: int, width: int = 6, channels: int = 8, skip_first: bool = True, seed: int = 0,
                   pad: ir.Padding | str = "same", convs: int = 2) -> tuple[ir.Graph, bytes]:
    """A ResNet block on a `height` x `width` map: a 3x3 convolution (the block's input, A), then
    `convs` 3x3 convolutions (the first with padding `pad`) and the ADD of their output and A
    (A its first operand if `skip_first`), then a strided convolution and a fully connected layer."""
    b = GraphBuilder(seed=seed)
    return b.build([_block(b, height, width, channels, skip_first, pad, convs)], name=f"block{height}")


def _block(b: GraphBuilder, height: int, width: int, channels: int, skip_first: bool, pad: ir.Padding | str,
           convs: int) -> str:
    a = b.conv(b.input((1, height, width, 3)), channels, activation=RELU)
    x = b.conv(a, channels, padding=pad, activation=RELU)
    for _ in range(convs - 1):
        x = b.conv(x, channels)
    x = b.add(a, x, activation=RELU) if skip_first else b.add(x, a, activation=RELU)
    return b.fully_connected(b.conv(x, 4, stride=(2, 2), activation=RELU), 3)


def explicit_block(height: int, pad: ir.Padding) -> ir.Graph:
    """`residual_block`'s graph as an ONNX import gives it: the first convolution's padding kept as
    it is (TFLite has only SAME and VALID, which a PAD layer before it would make)."""
    b = GraphBuilder(seed=height)
    out = _block(b, height, 6, 8, True, pad, 2)
    return ir.Graph("explicit", dict(b.tensors), tuple(b.ops), tuple(b.inputs), (out,))


def lowered_for(graph: ir.Graph, cpu_class: str, generated: bool):
    """The model lowered by default (generated kernels) or through the library's calls, and its scratch."""
    lowered = lower(graph)
    if generated:
        lowered = choose_lowerings(lowered, LIBRARY, default_chooser(cpu_class), cpu_class=cpu_class)
    scratch = {layer.index: scratch_bytes(layer, LIBRARY, cpu_class) for layer in lowered.layers}
    if not generated:
        lowered, scratch = precompute_kernel_sums(lowered, scratch, LIBRARY)
    return lowered, scratch


CASES = [(height, band, cpu_class, generated, skip_first)
         for height, band in ((9, 1), (11, 2), (13, 3), (7, 4))
         for cpu_class, generated, skip_first in (("dsp", True, True), ("mve", True, False),
                                                  ("dsp", False, False), ("mve", False, True))]


@pytest.mark.parametrize(("height", "band", "cpu_class", "generated", "skip_first"), CASES)
def test_a_residual_stage_is_bit_exact_with_its_add_over_its_input(
        height: int, band: int, cpu_class: str, generated: bool, skip_first: bool, tmp_path: Path) -> None:
    """Layers 1-3 (two 3x3 convolutions and the ADD) as one stage, the ADD's output in place over
    the block's input (the arena's in-place element-wise output), compiled for the host."""
    graph, _ = residual_block(height, skip_first=skip_first, seed=height)
    lowered, scratch = lowered_for(graph, cpu_class, generated)
    assert (1, 3) in chains(graph, lowered)
    assert residual_refusal(lowered, 1, 3, band) is None
    made = stage(lowered, 1, 3, band, lambda layer: scratch_bytes(layer, LIBRARY, cpu_class))
    assert made is not None
    lowered, stage_bytes, shift = made
    assert shift == 0
    scratch = {**scratch, 1: 0, 2: 0, 3: stage_bytes}
    shifts = overlap_shifts(lowered, LIBRARY, cpu_class, {3: shift})
    layout = plan_arena(graph, lowered, scratch, shifts=shifts)
    block_input = lowered.layers[0].output
    assert layout.in_place.get(3) == block_input, "the ADD writes over the stage's input"
    assert layout.tensor_offsets[lowered.layers[3].output] == layout.tensor_offsets[block_input]
    manifest = emit_model(graph, lowered, layout, scratch, tmp_path, source="block", board=BOARDS[cpu_class],
                          cpu_class=cpu_class, library="nnref")
    text = (tmp_path / "model.c").read_text()
    assert ("l3_add_band0_block(" in text) == generated and ("mcd_add_rows(" in text) != generated
    assert_bit_exact(graph, tmp_path, manifest, vectors=3)


def test_a_stage_whose_add_would_overwrite_rows_still_read_is_refused(tmp_path: Path) -> None:
    """With two rows of padding above and none below, the first convolution's row r reads input rows
    r-2..r: the next band reads a row the ADD has just written. Neither any band nor the planner
    forms the stage, and the stage list says why; with the padding the other way round (row r
    reads r..r+2) every later read is below the rows written, and the stage is taken."""
    graph = explicit_block(11, ir.Padding(top=2, bottom=0, left=1, right=1))
    lowered, _ = lowered_for(graph, "dsp", True)
    reason = "a band's ADD would overwrite 1 row of the stage's input that a later band still reads"
    for band in memory.BANDS:
        assert residual_refusal(lowered, 1, 3, band) == reason
        assert stage(lowered, 1, 3, band, lambda layer: scratch_bytes(layer, LIBRARY, "dsp")) is None
    manifest = generate(graph, load_board("mps2-an386"), LIBRARY, tmp_path / "top",
                        source="block", stage_policy=StagePolicy(None))
    refused = [s for s in manifest.stages if not s["taken"] and (s["first"], s["last"]) == (1, 3)]
    assert [s["description"] for s in refused] == [f"layers 1-3 (ending in an ADD) refused: {reason}"]
    assert all(s["last"] != 3 for s in manifest.stages if s["taken"])

    graph = explicit_block(11, ir.Padding(top=0, bottom=2, left=1, right=1))
    manifest = generate(graph, load_board("mps2-an386"), LIBRARY, tmp_path / "bottom",
                        source="block", stage_policy=StagePolicy(None))
    (taken,) = [s for s in manifest.stages if s["taken"]]
    assert (taken["first"], taken["last"]) == (1, 3)
    assert "the last an ADD with the stage's input, written over it) taken" in taken["description"]
    assert_bit_exact(graph, tmp_path / "bottom", manifest, vectors=3)


def test_an_add_of_another_shape_or_operand_is_refused() -> None:
    """The ADD's other operand must be the stage's input, whole: a broadcast ADD (the chain's output
    of one channel), a stage starting after the block's input, or an input that a third layer also
    reads are refused, each with its reason."""
    b = GraphBuilder(seed=1)
    a = b.conv(b.input((1, 9, 5, 3)), 4, activation=RELU)
    x = b.conv(b.conv(a, 4, activation=RELU), 1)
    graph, _ = b.build([b.fully_connected(b.add_b(a, x), 3)], name="broadcast")
    lowered, _ = lowered_for(graph, "dsp", False)
    assert residual_refusal(lowered, 1, 3, 1) == "the ADD's operands differ in shape (9x5x4 and 9x5x1)"
    assert residual_refusal(lowered, 2, 3, 1) == ("the ADD's other operand (t0_conv2d) is not the stage's "
                                                  "input (t1_conv2d)")
    b = GraphBuilder(seed=2)
    a = b.conv(b.input((1, 9, 5, 3)), 4, activation=RELU)
    x = b.add(a, b.conv(b.conv(a, 4, activation=RELU), 4))
    graph, _ = b.build([b.fully_connected(x, 3), b.fully_connected(a, 2)], name="two_readers")
    lowered, _ = lowered_for(graph, "dsp", False)
    assert residual_refusal(lowered, 1, 3, 1) == "the stage's input (t0_conv2d) has another reader"


@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
@pytest.mark.parametrize("library_calls", [False, True])
def test_resnet8_streams_its_first_block_below_27_kb(board: str, library_calls: bool, tmp_path: Path) -> None:
    """ResNet-8 (MLPerf Tiny) as `run` plans it by default: the stage of block 1 (layers 1-3, its ADD
    over conv0's output) is taken within the 3% allowed, and the arena is at most 27,000 bytes; the
    stage of layers 2-3 alone is refused (its ADD's other operand is conv0's output)."""
    table = {"table": library_only()} if library_calls else {}
    manifest = generate(MLPERF_TINY["resnet8_cifar10"](0), load_board(board), LIBRARY, tmp_path,
                        source="resnet8", **table)
    assert manifest.arena_bytes <= 27_000, manifest.arena_bytes
    taken = [s for s in manifest.stages if s["taken"]]
    assert [(s["first"], s["last"], s["residual"], s["reason"]) for s in taken] == [
        (1, 3, True, "within the 3% allowed")]
    assert taken[0]["arena_before"] > 33_000 and taken[0]["arena_after"] == manifest.arena_bytes
    refused = [s["description"] for s in manifest.stages if s.get("refused")]
    assert refused == ["layers 2-3 (ending in an ADD) refused: the ADD's other operand "
                       "(resnet8_cifar10/0_conv2d) is not the stage's input (resnet8_cifar10/1_conv2d)"]


@pytest.mark.device
@pytest.mark.parametrize(("board", "library_calls", "band"), [
    ("mps2-an386", False, 1), ("mps2-an386", True, 3), ("mps3-an547", False, 2), ("mps3-an547", True, 1)])
def test_a_residual_stage_is_bit_exact_on_qemu(board: str, library_calls: bool, band: int, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """`mcudeploy run` of a residual block of 11 rows with the stage forced to `band` rows at a time
    (--optimization ram, the planner offered that band only): the stage is taken, its ADD in place
    over its input, and every output bit is the host reference's and TFLM's."""
    monkeypatch.setattr(memory, "BANDS", (band,))
    _, data = residual_block(11, skip_first=band != 2, seed=band)
    model = tmp_path / "block.tflite"
    model.write_bytes(data)
    out = tmp_path / "out"
    status = main(["run", str(model), "--board", board, "--out", str(out), "--vectors", "3",
                   "--optimization", "ram", "-q", *(["--library-calls"] if library_calls else [])])
    report = json.loads((out / "report.json").read_text())
    assert status == 0, report.get("mismatches") or report.get("error")
    assert report["oracles"] == ["host-reference", "tflm"] and report["bit_exact_vectors"] == 3
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    taken = [(s["first"], s["last"], s["band"], s["residual"]) for s in manifest["stages"] if s["taken"]]
    assert taken == [(1, 3, band, True)]
    text = code_path(out / "model").read_text()
    assert "its ADD written over its input" in text and "in place over" in text
    assert ("mcd_add_rows(" in text) == library_calls

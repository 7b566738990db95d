"""Lowering candidates (mcudeploy.codegen.candidates): which apply to which layer, and each one,
forced on every layer it applies to, compiled for the host with nnref and with an old pack-shaped
library, bit-exact with the host reference. The QEMU side is tests/test_tuning.py, where `--tune`
runs every candidate of the convolution matrix on the device."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hostlib import HostModel
from modelgen import GraphBuilder
from nnpack import make_pack

from mcudeploy import ir
from mcudeploy.boards import load_board
from mcudeploy.codegen import generate
from mcudeploy.codegen.candidates import CANDIDATES, Candidate, candidates_for, default_chooser
from mcudeploy.codegen.kernel_sums import kernel_sums
from mcudeploy.codegen.lower import lower
from mcudeploy.codegen.tuning import Tuning
from mcudeploy.manifest import code_path
from mcudeploy.nnlib import NNLibrary, nnref_library
from mcudeploy.packs import load_pack
from mcudeploy.reference import run_graph
from mcudeploy.vectors import random_vectors


def candidate_graph(copies: int = 1) -> tuple[ir.Graph, dict[str, int]]:
    """Depthwise layers with multipliers 1-3, batch 2, dilation, strides and every padding, grouped
    convolutions (2 groups, C_in groups, 3 groups with dilation and stride), and fully connected
    layers (per-channel, per-tensor), each layer `copies` times over; and for every layer's output,
    which copy it is."""
    b = GraphBuilder(seed=21)
    x, y, z = b.input((2, 9, 7, 6)), b.input((1, 8, 5, 4)), b.input((3, 20))
    layers = [
        lambda: b.depthwise(x, 1),
        lambda: b.depthwise(x, 2, dilation=(2, 2)),
        lambda: b.depthwise(x, 3, stride=(2, 2), padding="valid"),
        lambda: b.depthwise(x, 2, padding=ir.Padding(2, 0, 0, 1)),  # a PAD, then a VALID depthwise
        lambda: b.conv(x, 8, groups=2, activation=ir.Clip(0.0, None)),
        lambda: b.conv(x, 12, groups=6),
        lambda: b.conv(x, 9, groups=3, stride=(2, 2), dilation=(2, 1)),
        lambda: b.depthwise(y, 2, kernel=(1, 3)),
        lambda: b.conv(y, 8, kernel=(1, 1), groups=4),
        lambda: b.fully_connected(z, 7, per_channel=True),
        lambda: b.fully_connected(z, 5),
    ]
    outputs, copy_of = [], {}
    for make in layers:
        for copy in range(copies):
            outputs.append(make())
            copy_of[outputs[-1]] = copy
    return b.build(outputs, "candidates")[0], copy_of


def _names(graph: ir.Graph, library: NNLibrary) -> list[list[str]]:
    return [[c.name for c in candidates_for(layer, library)] for layer in lower(graph).layers]


def test_candidates_apply_as_the_table_says() -> None:
    graph, _ = candidate_graph()
    old = NNLibrary("old", (), (), grouped_conv=False)
    dw_batch2 = ["wrapper", "as_grouped", "per_batch"]
    dw_mult_batch2 = ["wrapper", "split_multiplier", "as_grouped", "per_batch"]
    assert _names(graph, nnref_library()) == [
        dw_batch2, dw_mult_batch2, dw_mult_batch2, [], dw_mult_batch2,  # [] : the asymmetric PAD
        ["wrapper", "per_group"], ["wrapper", "as_depthwise", "per_group"], ["wrapper", "per_group"],
        ["wrapper", "split_multiplier", "as_grouped"], ["wrapper", "as_depthwise", "per_group"],
        ["wrapper", "as_1x1_convolution"], ["wrapper"],
    ]
    # Without grouped convolution: no wrapper call for a grouped conv, no depthwise as grouped; and
    # without arm_fully_connected_per_channel_s8, a per-channel FC only as a 1x1 convolution.
    assert _names(graph, old) == [
        ["wrapper", "per_batch"], ["wrapper", "split_multiplier", "per_batch"],
        ["wrapper", "split_multiplier", "per_batch"], [], ["wrapper", "split_multiplier", "per_batch"],
        ["per_group"], ["as_depthwise", "per_group"], ["per_group"],
        ["wrapper", "split_multiplier"], ["as_depthwise", "per_group"],
        ["as_1x1_convolution"], ["wrapper"],
    ]
    assert CANDIDATES["conv2d"][0].name == CANDIDATES["depthwise_conv2d"][0].name == "wrapper"
    assert all(c.description for cs in CANDIDATES.values() for c in cs)


def test_the_default_falls_back_to_a_candidate_that_applies() -> None:
    graph, _ = candidate_graph()
    old = NNLibrary("old", (), (), grouped_conv=False)
    for cpu_class in ("mve", "dsp", "plain"):
        choose = default_chooser(cpu_class)
        for layer in lower(graph).layers:
            for library in (nnref_library(), old):
                options = candidates_for(layer, library)
                assert not options or choose(layer, options) in options


def _assert_every_candidate_bit_exact(library: NNLibrary, out: Path, board: str) -> None:
    """One model holding every candidate of every layer: copy i of a layer lowered as its i-th."""
    graph, copy_of = candidate_graph(copies=4)

    def choose(layer, options: list[Candidate]) -> Candidate:
        return options[copy_of[layer.output] % len(options)]

    manifest = generate(graph, load_board(board), library, out, source=graph.name, choose=choose)
    text = code_path(out).read_text()
    names = {c.name for layer in lower(graph).layers for c in candidates_for(layer, library)}
    for name in names:
        assert f"lowered as {name} */" in text
    model = HostModel(out, library, manifest)
    assert model.init_status == 0
    for vector in random_vectors(graph, 2, seed=5):
        values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
        for output, got in zip(graph.outputs, model.invoke(vector), strict=True):
            np.testing.assert_array_equal(got, values[output], err_msg=output)


@pytest.mark.parametrize("board", ["mps3-an547", "mps2-an386"])
def test_every_candidate_is_bit_exact_on_the_host(board: str, tmp_path: Path) -> None:
    _assert_every_candidate_bit_exact(nnref_library(), tmp_path, board)


def test_every_candidate_is_bit_exact_with_an_old_pack(tmp_path: Path) -> None:
    library = load_pack(make_pack(tmp_path / "pack", version="5.0.0", api="5"))
    assert not library.grouped_conv
    _assert_every_candidate_bit_exact(library, tmp_path / "model", "mps3-an547")


def test_split_multiplier_gives_each_call_its_channels_contiguously() -> None:
    layer = lower(candidate_graph()[0]).layers[2]  # depthwise, multiplier 3, 6 input channels, 3x3
    split = next(c for c in CANDIDATES["depthwise_conv2d"] if c.name == "split_multiplier").rewrite(layer)
    before = {c.name: c.values for c in layer.constants}
    after = {c.name: c.values for c in split.constants}
    w = before[f"{layer.name}_weights"].reshape(9, 6, 3)  # [taps][C_in][M]: channel c * 3 + m
    calls = after[f"{layer.name}_weights"].reshape(3, 9, 6)  # [M][taps][C_in]
    for m in range(3):
        np.testing.assert_array_equal(calls[m], w[:, :, m])
        for part in ("bias", "multiplier", "shift"):
            np.testing.assert_array_equal(after[f"{layer.name}_{part}"].reshape(3, 6)[m],
                                          before[f"{layer.name}_{part}"][m::3])
    assert split.values["ch_mult"] == 1 and split.values["output_dims"].c == 6
    assert split.scratch.fixed_bytes == 2 * 4 * 3 * 6  # one call's output: batch 2, 4x3, 6 channels


def test_fully_connected_kernel_sums_are_precomputed_into_flash_on_mve(tmp_path: Path) -> None:
    b = GraphBuilder(seed=4)
    graph = b.build([b.fully_connected(b.input((3, 20)), 7)], "fc")[0]
    library = nnref_library()
    layer = lower(graph).layers[0]
    w = graph.tensor(graph.ops[0].inputs[1]).data.astype(np.int64)
    bias = graph.tensor(graph.ops[0].inputs[2]).data.astype(np.int64)
    want = layer.values["input_offset"] * w.sum(axis=1) + bias
    np.testing.assert_array_equal(kernel_sums(layer, library, 7), want)
    for board, sums in (("mps3-an547", True), ("mps2-an386", False)):
        calls = Tuning(library_only=True).chooser(load_board(board).cpu_class, library)
        manifest = generate(graph, load_board(board), library, tmp_path / board, source="fc", choose=calls)
        text = code_path(tmp_path / board).read_text()
        assert ("static const int32_t l0_fully_connected_kernel_sums[7] MODEL_WEIGHTS" in text) is sums
        assert "arm_vector_sum_s8" not in text
        assert manifest.state_bytes == 0 and manifest.layers[0].scratch_bytes == 0

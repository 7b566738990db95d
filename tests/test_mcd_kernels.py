"""mcudeploy's generated kernels (mcudeploy.codegen.mcd_kernels, the templates mcd_*.c.j2 and
firmware/include/mcdk.h): their arithmetic against TFLite's on the host, exhaustively where a
formula could be off by one; every layer of a matrix of shapes bit-exact with the host reference,
compiled for the host (with mcdk.h's portable DSP instructions and Helium intrinsics); and on
QEMU, the DSP kernels on the Cortex-M4 and the M55 and the Helium kernels on the M55, bit-exact
with the host reference and TFLM, each layer forced to the candidate."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hostlib import HostModel
from modelgen import GraphBuilder

from mcudeploy import ir
from mcudeploy.arith import requantize
from mcudeploy.boards import load_board
from mcudeploy.cli import main
from mcudeploy.codegen import generate
from mcudeploy.codegen.candidates import CANDIDATES, candidates_for
from mcudeploy.codegen.lower import lower
from mcudeploy.codegen.mcd_kernels import acc_bounds, plan_requant
from mcudeploy.codegen.tuning import Tuning, TuningEntry, layer_signature, library_id
from mcudeploy.manifest import code_path
from mcudeploy.nnlib import nnref_library
from mcudeploy.reference import run_graph
from mcudeploy.vectors import random_vectors

RELU6 = ir.Clip(0.0, 6.0)


# ---------------------------------------------------------------- the arithmetic


def _smmlar(a: np.ndarray, b: np.ndarray, k: np.ndarray) -> np.ndarray:
    """SMMLAR as the Armv7-M manual defines it, wrapping to 32 bits."""
    r = k + ((a * b + 2**31) >> 32)
    return ((r + 2**31) & 0xFFFFFFFF) - 2**31


def _fast(acc: np.ndarray, m: np.ndarray, k: np.ndarray, right: np.ndarray) -> np.ndarray:
    """mcdk_requantize_fast (mcdk.h) step by step, on twice the accumulator."""
    acc2 = 2 * acc
    return np.clip((_smmlar(acc2, m, k) + (acc2 >> 31)) >> right, -128, 127)


def test_the_fast_requantization_is_tflites_for_every_accumulator_it_is_planned_for() -> None:
    """Random channels, accumulators across their whole planned range, at its ends, and on the
    exact halves where the division's rounding (half away from zero) decides."""
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(300):
        m = np.int64(rng.integers(2**30, 2**31))
        shift = np.int64(rng.integers(-24, 0))
        offset = int(rng.integers(-128, 128))
        k = 2 ** int(-shift - 1) + offset * 2 ** int(-shift)
        limit = min(2**30 - 1, 2**31 - 3 - abs(k))  # beyond, the plan refuses (next test)
        if limit < 1:
            continue
        bound = np.int64(rng.integers(1, limit + 1))
        plan = plan_requant(np.array([bound]), np.array([m]), np.array([shift]), offset)
        assert plan.fast
        acc = np.concatenate([rng.integers(-bound, bound + 1, 2000), [-bound, bound, 0, -1, 1]])
        # accumulators whose high product lands on q = j * 2^right + 2^(right - 1): a tie
        right = int(-shift)
        ties = np.arange(-50, 50) * 2**right + 2 ** (right - 1)
        acc = np.concatenate([acc, (ties * 2**31 + m // 2) // m]).astype(np.int64)
        acc = acc[np.abs(acc) <= bound]
        want = np.clip(requantize(acc, m, shift) + offset, -128, 127)
        got = _fast(acc, m, plan.k, plan.right)
        np.testing.assert_array_equal(got, want)
        checked += acc.size
    assert checked > 500_000


def test_the_fast_requantization_is_refused_where_it_could_overflow_or_shifts_left() -> None:
    m, s = np.array([2**30 + 5]), np.array([-3])
    assert plan_requant(np.array([2**30 - 8]), m, s, 0).fast
    assert not plan_requant(np.array([2**30]), m, s, 0).fast  # twice it reaches 2^31
    assert not plan_requant(np.array([100]), m, np.array([2]), 0).fast  # a left shift
    assert not plan_requant(np.array([100]), m, np.array([0]), 0).fast  # no shift at all
    assert not plan_requant(np.array([100]), np.array([2**29]), s, 0).fast  # not QuantizeMultiplier's


def test_accumulator_bounds_are_the_largest_any_input_reaches() -> None:
    rng = np.random.default_rng(3)
    w = rng.integers(-128, 128, size=(6, 5))
    bias = rng.integers(-10**6, 10**6, size=6)
    corners = np.array(np.meshgrid(*[[-128, 127]] * 5)).reshape(5, -1).T  # every extreme input
    reached = np.abs(bias[:, None] + w @ corners.T).max(axis=1)
    np.testing.assert_array_equal(acc_bounds(w, bias), reached)
    offset = 37  # inputs with the offset added, as the DSP depthwise kernel holds them
    reached = np.abs(bias[:, None] + w @ (corners + offset).T).max(axis=1)
    np.testing.assert_array_equal(acc_bounds(w, bias, -128 + offset, 127 + offset), reached)


# ---------------------------------------------------------------- every layer kind and shape


def kernel_graph(batch: int = 1, seed: int = 11) -> tuple[ir.Graph, bytes]:
    """Each layer a generated kernel applies to, in the shapes that take different paths: 1x1
    convolutions read in place or strided, im2col with every padding, dilation, odd channel and
    pixel counts, input depths not a multiple of 4 or 16; depthwise 3x3, 5x5 and 1x3 with stride
    and asymmetric padding, on 8, 12 and 16 channels; fully connected, per tensor and per channel;
    ADD of equal shapes, in place, and broadcast; a layer whose multipliers exceed one (left
    shifts: the exact paths), and ReLU6; a dead channel (no weights, a bias of 2^30)."""
    b = GraphBuilder(seed=seed)
    x = b.input((batch, 9, 7, 8))
    y = b.input((batch, 6, 5, 3))
    z = b.input((batch, 10, 4, 1))
    outs = [
        b.conv(x, 12, kernel=(1, 1)),
        b.conv(x, 5, kernel=(1, 1), activation=RELU6),
        b.conv(x, 7, kernel=(1, 1), stride=(2, 2)),
        b.conv(x, 16, activation=RELU6),
        b.conv(x, 7, stride=(2, 2), padding="valid"),
        b.conv(x, 8, dilation=(2, 2)),
        b.conv(x, 6, kernel=(5, 3), padding=ir.Padding(2, 0, 0, 1)),
        b.conv(y, 16, stride=(2, 2)),
        b.conv(z, 9, kernel=(10, 4), stride=(2, 2), padding="valid"),
        b.depthwise(x, activation=RELU6),
        b.depthwise(x, stride=(2, 2), padding="valid"),
        b.depthwise(x, kernel=(5, 5), padding=ir.Padding(2, 1, 0, 2)),
        b.depthwise(x, kernel=(1, 3)),
        b.depthwise(b.conv(x, 12, kernel=(1, 1)), stride=(2, 2)),
        b.depthwise(b.conv(x, 16, kernel=(1, 1))),
        b.fully_connected(b.reshape(x, (batch, 9 * 7 * 8)), 10),
        _per_channel_fully_connected(b, b.reshape(x, (batch, 9 * 7 * 8)), 6),
        b.add(b.conv(x, 8, kernel=(1, 1)), b.conv(x, 8, kernel=(1, 1)), activation=ir.Clip(0.0, None)),
        b.add_b(x, b.constant((1, 1, 1, 8))),
        b.add(x, b.depthwise(x)),
    ]
    loud = b.conv(x, 6, kernel=(1, 1))
    scale = b.tensors[x].scale * min(b.tensors[b.ops[-1].inputs[1]].quant.scale) / 3
    b.tensors[loud] = replace(b.tensors[loud], quant=ir.QuantParams((scale,), (3,)))
    # A dead channel as trained models have them: no weights, a bias of 2^30 (the folded bias
    # then needs all of int32, and the DSP kernel the exact requantization)
    dead = b.conv(x, 4, kernel=(1, 1))
    w, bias = b.ops[-1].inputs[1:3]
    b.tensors[w] = replace(b.tensors[w], data=np.concatenate([np.zeros((1, 1, 1, 8), np.int8),
                                                             b.tensors[w].data[1:]]))
    b.tensors[bias] = replace(b.tensors[bias], data=np.concatenate([[2**30], b.tensors[bias].data[1:]])
                              .astype(np.int32))
    return b.build([*outs, loud, b.depthwise(loud), dead], "kernels")


def _per_channel_fully_connected(b: GraphBuilder, x: str, c_out: int) -> str:
    """A fully connected layer with one weight scale per output channel (as ONNX's Gemm gets)."""
    depth, k = b.tensors[x].shape[-1], len(b.ops)
    w = b._weights((c_out, depth), c_out, 0, f"w{k}")
    return b._op(ir.FullyConnected(ir.NO_CLIP), (x, w, b._bias(x, w, c_out, f"b{k}")),
                 (b.tensors[x].shape[0], c_out))


def _choose(name: str):
    def choose(layer, options):
        return next((c for c in options if c.name == name), options[0])
    return choose


@pytest.mark.parametrize(("board", "name", "batch", "layers"), [
    ("mps2-an386", "mcd_dsp", 1, 27), ("mps2-an386", "mcd_dsp", 2, 27), ("mps2-an385", "mcd_dsp", 1, 27),
    ("mps3-an547", "mcd_mve", 1, 26), ("mps3-an547", "mcd_mve", 2, 26), ("mps3-an547", "mcd_mve_x1", 1, 17)])
def test_every_kernel_is_bit_exact_on_the_host(tmp_path: Path, board: str, name: str, batch: int,
                                               layers: int) -> None:
    """The same C as on the device, with mcdk.h's portable DSP instructions and Helium intrinsics
    (mcdk_mve_portable.h): every layer the candidate applies to (the Helium depthwise kernel needs
    8 channels a block, so not the 12-channel layer), fast and exact requantization both."""
    graph, _ = kernel_graph(batch)
    library = nnref_library()
    cpu_class = load_board(board).cpu_class
    manifest = generate(graph, load_board(board), library, tmp_path, source=graph.name, choose=_choose(name))
    text = (tmp_path / "model.c").read_text()
    takes = [layer for layer in lower(graph).layers
             if any(c.name == name for c in candidates_for(layer, library, cpu_class=cpu_class))]
    assert len(takes) == text.count(f"lowered as {name} */") == layers
    if name == "mcd_dsp":
        assert "mcdk_requantize_fast" in text and "mcdk_requantize_exact" in text
    else:
        assert "vshlq_s32(acc, left)" in text  # the layer whose multipliers exceed one
    model = HostModel(tmp_path, library, manifest)
    assert model.init_status == 0
    for vector in random_vectors(graph, 3, seed=batch):
        values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
        for output, got in zip(graph.outputs, model.invoke(vector), strict=True):
            np.testing.assert_array_equal(got, values[output], err_msg=output)


@pytest.mark.parametrize(("board", "name"), [("mps2-an386", "mcd_dsp"), ("mps3-an547", "mcd_mve")])
def test_the_add_kernels_are_exact_for_every_pair_of_inputs(tmp_path: Path, board: str, name: str) -> None:
    """All 65,536 pairs of int8 inputs in one vector, for ADDs whose inputs' scales are equal, in
    either order of size, and whose output's rescaling shifts left."""
    b = GraphBuilder(seed=5)
    x, y = b.input((1, 256, 256, 1)), b.input((1, 256, 256, 1))
    outs = [b.add(x, y), b.add(x, y, activation=RELU6), b.add(y, x)]
    b.tensors[y] = replace(b.tensors[y], quant=b.tensors[x].quant)
    b.tensors[outs[1]] = replace(b.tensors[outs[1]], quant=ir.QuantParams((b.tensors[x].scale / 300,), (-7,)))
    graph, _ = b.build(outs, "adds")
    library = nnref_library()
    manifest = generate(graph, load_board(board), library, tmp_path, source="adds", choose=_choose(name))
    assert (tmp_path / "model.c").read_text().count(f"lowered as {name} */") == 3
    pairs = np.arange(-128, 128, dtype=np.int8)
    vector = (np.repeat(pairs, 256).reshape(1, 256, 256, 1), np.tile(pairs, 256).reshape(1, 256, 256, 1))
    values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
    for output, got in zip(graph.outputs, HostModel(tmp_path, library, manifest).invoke(vector), strict=True):
        np.testing.assert_array_equal(got, values[output], err_msg=output)


# ---------------------------------------------------------------- on the device


def forced_tuning(graph: ir.Graph, board: str, name: str, path: Path) -> int:
    """A tuning file choosing candidate `name` for every layer it applies to (nnref); returns how
    many layer shapes it names."""
    library, cpu_class = nnref_library(), load_board(board).cpu_class
    tuning = Tuning()
    for layer in lower(graph).layers:
        if any(c.name == name for c in candidates_for(layer, library, cpu_class=cpu_class)):
            tuning.add(TuningEntry(layer_signature(layer), cpu_class, library_id(library), name, (),
                                   "forced by the test"))
    tuning.save(path)
    return len(tuning.entries)


def run_forced(tmp_path: Path, graph: ir.Graph, data: bytes, board: str, name: str) -> tuple[Path, int]:
    """`mcudeploy run` of the model with candidate `name` forced (`forced_tuning`), checked
    bit-exact with both oracles on two vectors; its output directory and the layer shapes forced."""
    model = tmp_path / "model.tflite"
    model.write_bytes(data)
    shapes = forced_tuning(graph, board, name, tmp_path / "tuning.json")
    out = tmp_path / "out"
    status = main(["run", str(model), "--board", board, "--tuning", str(tmp_path / "tuning.json"),
                   "--vectors", "2", "--out", str(out), "-q"])
    report = json.loads((out / "report.json").read_text())
    assert report["oracles"] == ["host-reference", "tflm"] and report["mismatches"] == []
    assert status == 0 and report["verdict"] == "pass" and report["bit_exact_vectors"] == 2
    return out, shapes


@pytest.mark.device
@pytest.mark.parametrize(("board", "name", "layers"), [("mps2-an386", "mcd_dsp", 27),
                                                        ("mps3-an547", "mcd_mve", 26),
                                                        ("mps3-an547", "mcd_mve_x1", 17),
                                                        ("mps3-an547", "mcd_dsp", 27)])
def test_every_kernel_is_bit_exact_on_qemu(tmp_path: Path, board: str, name: str, layers: int) -> None:
    out, shapes = run_forced(tmp_path, *kernel_graph(), board, name)
    assert shapes > 10
    assert code_path(out / "model").read_text().count(f"lowered as {name} */") == layers


def test_the_candidates_name_the_cpus_they_run_on() -> None:
    graph, _ = kernel_graph()
    library = nnref_library()
    conv = lower(graph).layers[0]
    names = {cpu: [c.name for c in candidates_for(conv, library, cpu_class=cpu)]
             for cpu in ("mve", "dsp", "plain")}
    assert names == {"mve": ["wrapper", "mcd_dsp", "mcd_mve", "mcd_mve_x1"], "dsp": ["wrapper", "mcd_dsp"],
                     "plain": ["wrapper", "mcd_dsp"]}
    assert [c.name for c in candidates_for(conv, library)] == ["wrapper"]  # no CPU: portable ones only
    assert {kind for kind, cs in CANDIDATES.items() if any(c.name == "mcd_mve" for c in cs)} == {
        "conv2d", "depthwise_conv2d", "fully_connected", "add"}

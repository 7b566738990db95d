"""The memory lowerings end to end with nnref (mcudeploy.codegen.memory, walks): overlaps are taken
only where nnref's code was read, the generated C is bit-exact with them on the host and on QEMU
(with TFLM as the second oracle), and a table claiming more overlap than the code allows is caught."""

from __future__ import annotations

import ctypes
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hostlib import HostModel
from memory_models import mobilenet_head

from mcudeploy.boards import load_board
from mcudeploy.cli import main
from mcudeploy.codegen import generate, memory
from mcudeploy.codegen.candidates import library_only
from mcudeploy.codegen.lower import lower
from mcudeploy.codegen.walks import NNREF, layer_shift, release_of
from mcudeploy.manifest import code_path
from mcudeploy.nnlib import NNLibrary, host_compile, nnref_library
from mcudeploy.reference import run_graph
from mcudeploy.vectors import random_vectors


def host_outputs_match(graph, out: Path, manifest, library: NNLibrary) -> bool:
    model = HostModel(out, library, manifest)
    assert model.init_status == 0
    for vector in random_vectors(graph, 2, seed=9):
        values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
        for name, got in zip(graph.outputs, model.invoke(vector), strict=True):
            if not np.array_equal(got, values[name]):
                return False
    return True


def test_nnref_is_the_code_whose_order_was_read() -> None:
    """nnref's convolution kernels are byte for byte the files walks.NNREF was read from. If this
    fails, nnref's kernels changed: read their new access order, then update NNREF's digests."""
    assert release_of(nnref_library()) is NNREF


def test_a_changed_kernel_gets_no_overlap(tmp_path: Path) -> None:
    root = shutil.copytree(nnref_library().include_dirs[0].parent, tmp_path / "nnref")
    wrapper = next(root.rglob("arm_depthwise_conv_wrapper_s8.c"))
    wrapper.write_text(wrapper.read_text() + "/* changed */\n")
    changed = NNLibrary("nnref (changed)", (root / "Include",), tuple(sorted(root.glob("Source/**/*.c"))))
    assert release_of(changed) is None
    graph, _ = mobilenet_head(size=16, pool=False)
    layers = lower(graph).layers
    assert all(layer_shift(layer, changed, "mve") is None for layer in layers)
    assert any(layer_shift(layer, nnref_library(), "mve") for layer in layers)


def test_overlaps_alone_are_bit_exact_on_the_host(tmp_path: Path, monkeypatch) -> None:
    graph, _ = mobilenet_head(size=32)
    board, library = load_board("mps3-an547"), nnref_library()
    monkeypatch.setattr(memory, "MAX_STAGES", 0)
    manifest = generate(graph, board, library, tmp_path / "ok", source="head", table=library_only())
    assert manifest.arena_bytes < manifest.lower_bound
    assert host_outputs_match(graph, tmp_path / "ok", manifest, library)


def test_an_overlap_beyond_the_walk_is_caught(tmp_path: Path, monkeypatch) -> None:
    """The same model with every layer claimed to write exactly over its input (shift 0): the 3x3
    layers then overwrite rows they still read, and the outputs differ. (The test above can fail.)"""
    graph, _ = mobilenet_head(size=32)
    monkeypatch.setattr(memory, "MAX_STAGES", 0)
    monkeypatch.setattr(memory, "layer_shift", lambda layer, library, cpu: 0)
    manifest = generate(graph, load_board("mps3-an547"), nnref_library(), tmp_path, source="head",
                        table=library_only())
    assert not host_outputs_match(graph, tmp_path, manifest, nnref_library())


@pytest.mark.device
@pytest.mark.parametrize("board", ["mps3-an547", "mps2-an386", "mps2-an385"])
def test_stages_and_overlaps_are_bit_exact_on_qemu(board: str, tmp_path: Path) -> None:
    _, data = mobilenet_head(size=48)
    model = tmp_path / "head.tflite"
    model.write_bytes(data)
    out = tmp_path / "out"
    status = main(["run", str(model), "--board", board, "--out", str(out), "--vectors", "3",
                   "--library-calls", "-q"])
    report = json.loads((out / "report.json").read_text())
    assert status == 0, report.get("mismatches") or report.get("error")
    assert report["oracles"] == ["host-reference", "tflm"] and report["mismatched_vectors"] == 0
    # No layer's address is taken (a switch runs them): the call graph bounds the stack.
    assert report["firmware"]["stack_use"]["bound"] is not None, report["firmware"]["stack_use"]
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    assert manifest["arena_bytes"] <= 0.6 * manifest["lower_bound"]
    assert "lowered as stage of layers" in code_path(out / "model").read_text()


def test_depthwise_layers_keep_their_call_as_data_from_three(tmp_path: Path, monkeypatch) -> None:
    """Three or more depthwise layers keep their calls' arguments as constant structs passed on by
    one function (less code); convolutions (and one or two depthwise layers) call the library
    themselves, where the compiler specialises it to their constant dims."""
    graph, _ = mobilenet_head(size=16, pool=False)  # 5 convolutions, 4 depthwise
    monkeypatch.setattr(memory, "MAX_STAGES", 0)
    generate(graph, load_board("mps2-an386"), nnref_library(), tmp_path / "head", source="head",
             table=library_only())
    text = (tmp_path / "head" / "model.c").read_text()
    assert text.count("return mcd_depthwise(&l") == 4 and text.count("arm_depthwise_conv_wrapper_s8(") == 0
    assert "volatile const mcd_depthwise_kernel = arm_depthwise_conv_wrapper_s8;" in text
    assert text.count("return arm_convolve_wrapper_s8(") == 5 and "mcd_conv(" not in text
    graph, _ = mobilenet_head(size=16, pool=False, blocks=2)  # 2 depthwise
    generate(graph, load_board("mps2-an386"), nnref_library(), tmp_path / "short", source="short",
             table=library_only())
    text = (tmp_path / "short" / "model.c").read_text()
    assert "mcd_depthwise(" not in text and text.count("return arm_depthwise_conv_wrapper_s8(") == 2


def test_the_exported_api_runs_overlaps_and_stages_in_any_arena(tmp_path: Path) -> None:
    """NAME.c with overlaps, a streamed stage and depthwise call structs, its arena given by the
    user (HEAD_USER_ARENA): invoke in one arena of exactly HEAD_ARENA_BYTES, then in another filled
    with garbage, gives the reference's outputs both times (no address of the first arena is kept);
    NAME_tensor() of a layer inside the stage has no storage (NULL, 0 bytes)."""
    graph, _ = mobilenet_head(size=48)
    library = nnref_library()
    manifest = generate(graph, load_board("mps3-an547"), library, tmp_path, source="head", name="head",
                        table=library_only())
    text = code_path(tmp_path).read_text()
    assert "lowered as stage of layers" in text and "B below its input" in text and "mcd_depthwise(&" in text
    assert f"#define HEAD_ARENA_BYTES {manifest.arena_bytes}\n" in (tmp_path / "head.h").read_text()
    shared = host_compile(library, extra_sources=[code_path(tmp_path)], purpose="test",
                          cflags=["-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-DHEAD_USER_ARENA"])
    dll = ctypes.CDLL(str(shared))
    dll.head_tensor.restype = ctypes.c_void_p
    assert dll.head_init() == 0
    (vector,) = random_vectors(graph, 1, seed=4)
    expected = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))[graph.outputs[0]]
    image = np.ascontiguousarray(vector[0], dtype=np.int8)
    got = np.zeros(manifest.outputs[0].size, np.int8)
    inputs, outputs = (ctypes.c_void_p * 1)(image.ctypes.data), (ctypes.c_void_p * 1)(got.ctypes.data)
    for fill in (0, 0x5A):
        arena = (ctypes.c_int8 * (manifest.arena_bytes + 16))()
        ctypes.memset(arena, fill, len(arena))
        aligned = ctypes.addressof(arena) + (-ctypes.addressof(arena) % 16)
        assert dll.head_set_arena(ctypes.c_void_p(aligned), ctypes.c_size_t(manifest.arena_bytes)) == 0
        got[:] = 0
        assert dll.head_invoke(inputs, outputs) == 0
        assert np.array_equal(got.reshape(expected.shape), expected)
        stored = {t.id for t in manifest.tensors}
        for layer in manifest.layers:
            size = ctypes.c_uint32(7)
            place = dll.head_tensor(ctypes.c_uint32(layer.index), ctypes.byref(size))
            if layer.index in stored:
                assert aligned <= place < aligned + manifest.arena_bytes and size.value > 0
            else:
                assert place is None and size.value == 0
        assert len(stored) < len(manifest.layers)

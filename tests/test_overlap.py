"""The memory lowerings end to end with nnref (mcudeploy.codegen.memory, walks): overlaps are taken
only where nnref's code (or a generated kernel's template) was read, the generated C is bit-exact
with them on the host and on QEMU (with TFLM as the second oracle), and a table claiming more
overlap than the code allows is caught, for the generated kernels to the byte."""

from __future__ import annotations

import ctypes
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from hostlib import CFLAGS, HostModel
from memory_models import generated_kernel_shapes, mobilenet_head, same_size_chain
from test_mcd_kernels import kernel_graph

from mcudeploy.boards import load_board
from mcudeploy.cli import main
from mcudeploy.codegen import generate, memory, walks
from mcudeploy.codegen.access_order import Window, ring_gap
from mcudeploy.codegen.candidates import CANDIDATES, choose_lowerings, default_chooser, library_only
from mcudeploy.codegen.library_calls import fit_to_library
from mcudeploy.codegen.lower import lower
from mcudeploy.codegen.walks import GENERATED, NNREF, generated_kernel, layer_shift, release_of
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


# ---------------------------------------------------------------- generated kernels (mcd_*)


def test_the_generated_kernels_are_the_code_whose_order_was_read() -> None:
    """Each generated kernel's template, _mcd.j2 and mcdk's headers are byte for byte the files
    walks.GENERATED was read from. If this fails, one changed: read the kernel's new access order,
    then update its digests."""
    assert all(generated_kernel(template) is not None for template in GENERATED)


def test_a_changed_generated_kernel_gets_no_overlap(tmp_path: Path, monkeypatch) -> None:
    graph, _ = generated_kernel_shapes()
    library = nnref_library()
    lowered = chosen(graph, "mps2-an386")
    # batch 1 (not the fully connected layer, on 4 rows: its kernel's batch of pixels is not walked)
    layers = [layer for layer in lowered.layers
              if layer.template in GENERATED and layer.values["input_dims"].n == 1]
    assert {layer.template for layer in layers} == {"mcd_conv_dsp.c.j2", "mcd_depthwise_dsp.c.j2"}
    assert all(layer_shift(layer, library, "dsp") is not None for layer in layers)
    changed = tmp_path / "mcd_depthwise_dsp.c.j2"
    changed.write_text(walks.generated_file(changed.name).read_text() + "{# changed #}\n")
    real = walks.generated_file
    monkeypatch.setattr(walks, "generated_file", lambda name: changed if name == changed.name else real(name))
    for layer in layers:
        assert (layer_shift(layer, library, "dsp") is None) == (layer.template == changed.name)


def chosen(graph, board: str, choose=None):
    """The model's layers as generate lowers them for `board` (by default, or as `choose` picks)."""
    library = nnref_library()
    cpu_class = load_board(board).cpu_class
    return choose_lowerings(fit_to_library(lower(graph), library), library,
                            choose or default_chooser(cpu_class), CANDIDATES, cpu_class)


class KernelHarness:
    """The generated kernels of a model's NAME.c called one at a time on the host at any addresses
    (a C file that includes NAME.c and exposes each layer `lN_...`'s kernel, its own or the one it
    shares, on its constants)."""

    def __init__(self, out: Path, manifest, names: list[str]) -> None:
        harness = out / "kernel_harness.c"
        text = code_path(out).read_text()
        entry = r"static int32_t {}\(void\)\n\{{\n    return (\w+_kernel)\("
        kernels = {name: re.search(entry.format(name), text).group(1) for name in names}
        include = f'#include "{manifest.code_file}"\n'
        harness.write_text(include + "".join(
            f"int32_t run_{name}(const int8_t *in, int8_t *out, void *scratch)\n"
            f"{{\n    return {kernels[name]}(in, out, scratch, {name}_constants);\n}}\n" for name in names))
        shared = host_compile(nnref_library(), extra_sources=[harness], cflags=CFLAGS, purpose="harness")
        own = out / f"harness-{shared.name}"
        shutil.copyfile(shared, own)
        self.dll = ctypes.CDLL(str(own))

    def run(self, name: str, data: np.ndarray, out_size: int, shift: int | None) -> np.ndarray:
        """Kernel `name` on `data`: the output in a buffer of its own (`shift` None), or starting
        `shift` bytes below the input in one buffer."""
        margin = 64
        memory = np.zeros(margin + max(data.size, out_size) + abs(shift or 0) + out_size + margin, np.int8)
        scratch = np.zeros(1 << 16, np.int8)
        if shift is None:
            source, target = margin, margin + data.size + margin // 2
        else:
            target = margin + max(-shift, 0)
            source = target + shift
        memory[source:source + data.size] = data
        base = memory.ctypes.data
        kernel = getattr(self.dll, f"run_{name}")
        status = kernel(ctypes.c_void_p(base + source), ctypes.c_void_p(base + target),
                        ctypes.c_void_p(scratch.ctypes.data))
        assert status == 0
        return memory[target:target + out_size].copy()


KINDS = {"mps2-an386": ("mcd_conv_dsp.c.j2", "mcd_depthwise_dsp.c.j2"),
         "mps3-an547": ("mcd_conv_mve.c.j2", "mcd_depthwise_mve.c.j2")}


@pytest.mark.parametrize(("board", "kinds"), KINDS.items())
def test_each_generated_kernel_is_exact_at_its_shift_and_not_a_byte_beyond(tmp_path: Path, board: str,
                                                                          kinds: tuple[str, ...]) -> None:
    """Every generated layer of the model run alone on the host, its output starting exactly the
    proved shift below its input (no alignment rounding): the same bytes as with separate buffers.
    One byte further (the output starting shift - 1 below the input), a read finds an output byte:
    the outputs differ, for every convolution whose shift is above 0. The depthwise kernels' shift
    is 0 for these layers; their least (ring_gap, negative: the output may even start above the
    input) is exact too, and one byte beyond it is caught the same way."""
    graph, _ = generated_kernel_shapes()
    beyond = set()
    for layer, least, caught in run_generated_layers(graph, board, tmp_path, None, check_beyond=True):
        assert least == 0 or caught, (layer.name, least)
        if least != 0:
            beyond.add(layer.template)
    assert beyond == set(kinds)


@pytest.mark.parametrize(("board", "name", "layers"), [  # test_mcd_kernels' counts, but the 3 ADDs
    ("mps2-an386", "mcd_dsp", 24), ("mps3-an547", "mcd_mve", 23), ("mps3-an547", "mcd_mve_x1", 17)])
def test_every_generated_layer_shape_is_exact_at_its_shift(tmp_path: Path, board: str, name: str,
                                                           layers: int) -> None:
    """The same at the proved shift (and the ring's least) for every convolution and depthwise shape
    the generated kernels' tests take (test_mcd_kernels.kernel_graph: dilation, asymmetric padding,
    odd channels, 10x4 windows, per-channel fully connected): the same bytes as separate buffers."""
    graph, _ = kernel_graph()
    assert len(run_generated_layers(graph, board, tmp_path, choose_named(name), check_beyond=False)) == layers


def choose_named(name: str):
    def choose(layer, options):
        return next((c for c in options if c.name == name), options[0])
    return choose


def run_generated_layers(graph, board: str, out: Path, choose, check_beyond: bool) -> list:
    """Each generated batch-1 layer of `graph` lowered for `board` run alone on the host (random
    inputs, full-range and small: outputs that do not saturate), its output at its proved shift and
    at its least (the ring's `ring_gap`; the shift for convolutions), both asserted the same bytes as
    with separate buffers. Returns (layer, least, whether one byte beyond the least changed an output)."""
    library, cpu_class = nnref_library(), load_board(board).cpu_class
    # every layer whole (no streamed stage, whose members run as copies for their bands)
    manifest = generate(graph, load_board(board), library, out, source=graph.name, choose=choose,
                        stage_policy=memory.StagePolicy(0.0))
    layers = [layer for layer in chosen(graph, board, choose).layers
              if layer.template in GENERATED and layer.values["input_dims"].n == 1]
    names = [layer.name for layer in layers]
    harness = KernelHarness(out, manifest, names)
    rng = np.random.default_rng(3)
    found = []
    for layer, name in zip(layers, names, strict=True):
        v = layer.values
        in_size, out_size = (v[d].n * v[d].h * v[d].w * v[d].c for d in ("input_dims", "output_dims"))
        shift = layer_shift(layer, library, cpu_class)
        assert shift is not None, name
        least = ring_gap(Window.of(layer)) if "depthwise" in layer.template else shift
        least = max(least, -out_size - in_size)  # no row copied after a write: any shift
        caught = False
        for trial in range(16 if check_beyond else 4):
            bound = 128 if trial % 2 else 24
            data = rng.integers(-bound, bound, in_size, dtype=np.int8)
            alone = harness.run(name, data, out_size, None)
            assert np.array_equal(harness.run(name, data, out_size, shift), alone), (name, shift)
            assert np.array_equal(harness.run(name, data, out_size, least), alone), (name, least)
            if check_beyond and least != 0:
                caught |= not np.array_equal(harness.run(name, data, out_size, least - 1), alone)
        found.append((layer, least, caught))
    return found


@pytest.mark.device
@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
def test_generated_kernels_overlapped_are_bit_exact_on_qemu(board: str, tmp_path: Path) -> None:
    """The default lowering (generated kernels) of a chain whose peak is at same-size layers: its
    convolutions and its depthwise layer write over their inputs (model.c says by how much), the
    arena below the tensor bound, and every output bit for bit the host reference's and TFLM's."""
    _, data = same_size_chain()
    model = tmp_path / "same.tflite"
    model.write_bytes(data)
    out = tmp_path / "out"
    status = main(["run", str(model), "--board", board, "--out", str(out), "--vectors", "3", "-q"])
    report = json.loads((out / "report.json").read_text())
    assert status == 0, report.get("mismatches") or report.get("error")
    assert report["oracles"] == ["host-reference", "tflm"] and report["mismatched_vectors"] == 0
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    assert manifest["arena_bytes"] <= 0.6 * manifest["lower_bound"]
    lowering = "mcd_dsp" if board == "mps2-an386" else "mcd_mve"
    overlapped = {line.split("(operator ")[1].split(")")[0].split("(")[1]
                  for line in code_path(out / "model").read_text().splitlines()
                  if "B below its input" in line and f"lowered as {lowering} */" in line}
    assert overlapped == {"CONV_2D", "DEPTHWISE_CONV_2D"}

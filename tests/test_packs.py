"""`--cmsis-nn PATH`: CMSIS-NN from a .pack file, an unpacked pack or cmsis-pack-manager's cache;
scratch sized by the pack's own queries for the board's CPU class; grouped convolutions split for
packs without grouped support; and the whole path on QEMU with packs made from nnref
(tests/nnpack.py), since Arm's pack cannot be downloaded here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cases import build_cases
from hostlib import HostModel
from nnpack import arm_query_sizes, make_pack, zip_pack
from nnref_cases import combine, conv_case

from mcudeploy.boards import load_board
from mcudeploy.cli import main
from mcudeploy.codegen import generate
from mcudeploy.codegen.tuning import Tuning
from mcudeploy.errors import BuildError, InputError
from mcudeploy.frontends.tflite import load_tflite
from mcudeploy.manifest import code_path
from mcudeploy.nnlib import nnref_library
from mcudeploy.packs import load_pack
from mcudeploy.reference import run_graph
from mcudeploy.scratch_probe import scratch_sizes
from mcudeploy.vectors import random_vectors

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "models" / "tiny_cnn.tflite"
GROUPED = ["conv_grouped2", "conv_grouped_c_over_4", "conv_groups_eq_cin"]


@pytest.fixture(scope="module")
def pack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pack(tmp_path_factory.mktemp("pack") / "ARM.CMSIS-NN.7.0.0")


@pytest.fixture(scope="module")
def old_pack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A release without grouped convolution, with scratch queries that ask for scratch."""
    return make_pack(tmp_path_factory.mktemp("old") / "ARM.CMSIS-NN.5.0.0", "5.0.0", api="5",
                     arm_queries=True)


# ---------------------------------------------------------------- finding and reading packs

def test_unpacked_pack_gives_its_version_sources_and_headers(pack_dir: Path) -> None:
    library = load_pack(pack_dir)
    assert (library.name, library.version, library.grouped_conv) == ("CMSIS-NN 7.0.0", "7.0.0", True)
    assert library.include_dirs == (pack_dir / "Include",)
    assert sorted(s.relative_to(pack_dir) for s in library.sources) == sorted(
        s.relative_to(nnref_library().sources[0].parents[2]) for s in nnref_library().sources)
    assert "-Wno-error" in library.cflags
    assert load_pack(pack_dir / "ARM.CMSIS-NN.pdsc") == library


def test_pack_file_is_unpacked_once(pack_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MCUDEPLOY_CACHE", str(tmp_path / "cache"))
    pack = zip_pack(pack_dir, tmp_path / "ARM.CMSIS-NN.7.0.0.pack")
    first, second = load_pack(pack), load_pack(str(pack))
    assert first == second and first.version == "7.0.0"
    assert first.include_dirs[0].is_relative_to(tmp_path / "cache" / "packs")
    assert len(list((tmp_path / "cache" / "packs").iterdir())) == 1


def test_pack_found_in_cmsis_pack_manager_cache(pack_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # where cmsis-pack-manager keeps packs
    monkeypatch.setenv("MCUDEPLOY_CACHE", str(tmp_path / "cache"))
    vendor_dir = tmp_path / "data" / "cmsis-pack-manager" / "ARM" / "CMSIS-NN"
    vendor_dir.mkdir(parents=True)
    older = make_pack(tmp_path / "older", "6.1.0")
    zip_pack(older, vendor_dir / "6.1.0.pack")
    zip_pack(pack_dir, vendor_dir / "7.0.0.pack")
    assert load_pack("ARM::CMSIS-NN").version == "7.0.0"
    assert load_pack("ARM::CMSIS-NN@6.1.0").version == "6.1.0"
    with pytest.raises(InputError, match=r"ARM::CMSIS-NN@9\.9\.9: not in cmsis-pack-manager's cache"):
        load_pack("ARM::CMSIS-NN@9.9.9")


def _broken(tmp_path: Path, pack_dir: Path, edit) -> Path:
    copy = tmp_path / "broken"
    make_pack(copy)
    pdsc = copy / "ARM.CMSIS-NN.pdsc"
    pdsc.write_text(edit(pdsc.read_text()))
    return copy


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("<releases>", "<releases"), r"ARM\.CMSIS-NN\.pdsc:\d+: not valid XML"),
    (lambda t: t.replace('Cgroup="NN Lib"', 'Cgroup="DSP"'), r"no CMSIS-NN component"),
    (lambda t: t.replace("</files>", '<file category="source" name="Source/gone.c"/></files>'),
     r"file 'Source/gone\.c' of the CMSIS-NN component is not in the pack"),
    (lambda t: t.replace("arm_nnfunctions.h", "arm_nn_gone.h"), r"file 'Include/arm_nn_gone\.h'"),
], ids=["xml", "component", "missing-file", "missing-header"])
def test_broken_pack_descriptions_are_input_errors(tmp_path: Path, pack_dir: Path, edit,
                                                   message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_pack(_broken(tmp_path, pack_dir, edit))


def test_paths_that_are_not_packs_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or directory, and not a pack id"):
        load_pack(tmp_path / "nothing-here")
    with pytest.raises(InputError, match=r"no \.pdsc file at the top: not an unpacked CMSIS pack"):
        load_pack(tmp_path)
    junk = tmp_path / "junk.pack"
    junk.write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"junk\.pack: not a CMSIS pack \(not a zip file\)"):
        load_pack(junk)
    out = tmp_path / "out"
    assert main(["build", str(BUNDLED), "--cmsis-nn", str(junk), "--out", str(out), "-q"]) == 2
    assert not out.exists()


@pytest.mark.parametrize(("api", "version", "declaration", "grouped"), [
    ("5", "7.0.0", None, False),
    ("6", "5.0.0", None, True),
    ("5", "7.0.0", "const int32_t activation_max", False),
    ("5", "5.0.0", "const int32_t activation_max, const int32_t row_address_offset", True),
], ids=["api5-new-version", "api6-old-version", "header-without-groups", "header-with-groups"])
def test_grouped_convolution_support_is_read_from_the_headers_never_the_version(
        tmp_path: Path, api: str, version: str, declaration: str | None, grouped: bool) -> None:
    pack = make_pack(tmp_path / "p", version, api=api)
    if declaration is not None:
        header = pack / "Include" / "arm_nnsupportfunctions.h"
        text = header.read_text().replace(
            "#ifdef __cplusplus\n}\n#endif",
            f"arm_cmsis_nn_status arm_nn_mat_mult_nt_t_s8(const int8_t *lhs,\n"
            f"    const int8_t *rhs, {declaration});\n\n#ifdef __cplusplus\n}}\n#endif")
        header.write_text(text)
    library = load_pack(pack)
    assert library.grouped_conv is grouped
    assert library.name.endswith("(grouped convolutions split)") is not grouped


# ---------------------------------------------------------------- code generation with a pack

def test_generated_c_is_the_same_text_for_nnref_and_for_a_pack(pack_dir: Path, tmp_path: Path) -> None:
    board = load_board("mps3-an547")
    graphs = [load_tflite(BUNDLED), build_cases(["pool_add_fc_softmax", "conv_grouped2", "fc_batch3"])[0]]
    for i, graph in enumerate(graphs):
        generate(graph, board, nnref_library(), tmp_path / f"nnref{i}", source=graph.name)
        generate(graph, board, load_pack(pack_dir), tmp_path / f"pack{i}", source=graph.name)
        nnref_c = code_path(tmp_path / f"nnref{i}").read_text()
        assert nnref_c == code_path(tmp_path / f"pack{i}").read_text()


@pytest.mark.parametrize("board_name", ["mps3-an547", "mps2-an386", "mps2-an385"])
def test_scratch_comes_from_the_packs_own_queries_for_the_cpu_class(tmp_path: Path, board_name: str) -> None:
    """Queries laid out as in Arm's packs, answering differently per class; one of them calls a
    helper in another file, so the whole pack is compiled for the host."""
    board = load_board(board_name)
    library = load_pack(make_pack(tmp_path / "pack", arm_queries=True))
    graph = build_cases(["conv3x3_same_relu", "depthwise_m2_stride2", "pool_add_fc_softmax"])[0]
    calls = Tuning(library_only=True).chooser(board.cpu_class, library)  # the library's own queries
    manifest = generate(graph, board, library, tmp_path / "model", source=graph.name, choose=calls)
    conv, depthwise, avgpool = manifest.layers[:3]
    cls = board.cpu_class
    assert (conv.kind, depthwise.kind, avgpool.kind) == ("conv2d", "depthwise_conv2d", "pool2d")
    assert conv.scratch_bytes == arm_query_sizes(cls, "conv", channels=4, kernel=9)
    # Multiplier 2, lowered by default as two multiplier-1 calls: the query's answer for one call,
    # then one call's output (5 x 4 x 3 channels).
    assert depthwise.scratch_bytes == _align4(arm_query_sizes(cls, "dw_conv", channels=3)) + 5 * 4 * 3
    assert avgpool.scratch_bytes == arm_query_sizes(cls, "avgpool", channels=5, width=4)
    fc = next(layer for layer in manifest.layers if layer.kind == "fully_connected")
    assert fc.scratch_bytes == 0  # nnref's kernel sums on MVE (10 int32) are precomputed, in flash
    sums = f"static const int32_t {fc.name}_kernel_sums[10] MODEL_WEIGHTS"
    assert (sums in code_path(tmp_path / "model").read_text()) is (cls == "mve")


def test_pack_without_host_side_queries_is_sized_on_the_device(tmp_path: Path) -> None:
    # Two packs with Arm's query layout; in the old one the MVE size is no longer a public
    # function, so only the plain query, built for the device, reaches it.
    current = make_pack(tmp_path / "current", arm_queries=True)
    old = make_pack(tmp_path / "old", arm_queries=True)
    sizes_file = old / "Source/ConvolutionFunctions/arm_convolve_get_buffer_sizes_s8.c"
    text = sizes_file.read_text().replace("int32_t arm_convolve_wrapper_s8_get_buffer_size_mve(",
                                          "static int32_t conv_size_mve(")
    sizes_file.write_text(text.replace("return arm_convolve_wrapper_s8_get_buffer_size_mve(",
                                       "return conv_size_mve("))
    graph = build_cases(["conv3x3_same_relu", "depthwise_m1", "pool_add_fc_softmax"])[0]
    board = load_board("mps3-an547")
    old_pack, current_pack = load_pack(old), load_pack(current)
    probed = generate(graph, board, old_pack, tmp_path / "model", source="m",
                      choose=Tuning(library_only=True).chooser("mve", old_pack),
                      scratch=scratch_sizes(old_pack, board, tmp_path / "model-scratch-probe"))
    assert (tmp_path / "model-scratch-probe" / "probe" / "probe.c").is_file()
    planned = generate(graph, board, current_pack, tmp_path / "planned", source="m",
                       choose=Tuning(library_only=True).chooser("mve", current_pack))
    sizes = [layer.scratch_bytes for layer in probed.layers]
    assert sizes == [layer.scratch_bytes for layer in planned.layers]
    conv = next(layer for layer in probed.layers if layer.kind == "conv2d")
    assert conv.scratch_bytes == 16 * 4 * 3 * 3 + 5  # ARM_QUERIES' MVE answer for 4 channels, 3x3


def test_pack_without_host_side_queries_needs_a_simulator_to_be_sized(tmp_path: Path) -> None:
    pack = make_pack(tmp_path / "pack")
    (pack / "Source/ConvolutionFunctions/arm_convolve_wrapper_s8_get_buffer_size_dsp.c").write_text(
        "/* this release predates the host-side queries */\n")
    graph = build_cases(["conv1x1"])[0]
    message = (r"CMSIS-NN 7\.0\.0 cannot size scratch on the host, and board nucleo-l4r5zi has no QEMU "
               r"machine with semihosting to ask")
    board, library = load_board("nucleo-l4r5zi"), load_pack(pack)
    with pytest.raises(BuildError, match=message):
        generate(graph, board, library, tmp_path / "model", source="m",
                 scratch=scratch_sizes(library, board, tmp_path / "model-scratch-probe"))
    assert not (tmp_path / "model").exists()


# ---------------------------------------------------------------- old packs: grouped convolutions

def _grouped_graph():
    """The plan's grouped cases and random grouped ones (batches, dilation, padding, shifts)."""
    plan = build_cases(GROUPED, seed=8)[0]
    randoms = [conv_case(s, n=n, hw=(6, 7), c_f=c_f, groups=groups, per_group=pg, kernel=(3, 2),
                         stride=(1, 2), dilation=(d, 1), pads=(1, 2, 0, 1), zp_in=-9, zp_out=4,
                         shifts=(-10, -6), act=(-120, 110))
               for s, (n, c_f, groups, pg, d) in enumerate([(1, 2, 3, 2, 1), (3, 3, 2, 5, 2), (2, 1, 4, 3, 1),
                                                             (1, 5, 2, 1, 2)])]
    return plan, combine(randoms, "grouped_randoms")[0]


def test_old_pack_splits_grouped_convolutions_bit_exactly(old_pack_dir: Path, tmp_path: Path) -> None:
    library = load_pack(old_pack_dir)
    assert not library.grouped_conv
    board = load_board("mps3-an547")
    for i, graph in enumerate(_grouped_graph()):
        out = tmp_path / f"m{i}"
        manifest = generate(graph, board, library, out, source=graph.name)
        text = code_path(out).read_text()
        assert "for (int32_t g = 0; g <" in text and "arm_depthwise_conv_wrapper_s8(" in text
        model = HostModel(out, library, manifest)
        assert model.init_status == 0
        if i == 0:  # conv_grouped2: [1, 7, 7, 6] -> 4 channels, 2 groups of 3 -> 2, 3x3
            library_part = _align4(arm_query_sizes("mve", "conv", channels=3, kernel=9))
            assert manifest.layers[0].scratch_bytes == library_part + _align4(49 * 3) + _align4(49 * 2)
        for vector in random_vectors(graph, 3, seed=i):
            values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
            for name, got in zip(graph.outputs, model.invoke(vector), strict=True):
                np.testing.assert_array_equal(got, values[name], err_msg=name)


def _align4(size: int) -> int:
    return (size + 3) // 4 * 4


def test_old_pack_would_refuse_the_grouped_calls_it_is_spared(old_pack_dir: Path, tmp_path: Path) -> None:
    """The fixture is meaningful: the calls generated for a grouped-capable library fail on it."""
    graph = _grouped_graph()[0]
    manifest = generate(graph, load_board("mps3-an547"), nnref_library(), tmp_path, source=graph.name)
    model = HostModel(tmp_path, load_pack(old_pack_dir), manifest)
    with pytest.raises(AssertionError, match="returned -1"):
        model.invoke(random_vectors(graph, 1, seed=0)[0])


# ---------------------------------------------------------------- the whole path on QEMU


def _run(args: list[str], out: Path) -> tuple[int, dict]:
    status = main(["run", *args, "--out", str(out), "--vectors", "5", "-q"])
    return status, json.loads((out / "report.json").read_text())


@pytest.mark.device
def test_run_bundled_model_with_a_pack_directory_and_a_pack_file(pack_dir: Path, tmp_path: Path) -> None:
    status, report = _run([str(BUNDLED), "--cmsis-nn", str(pack_dir)], tmp_path / "dir")
    assert status == 0 and report["verdict"] == "pass", report
    assert report["library"] == "CMSIS-NN 7.0.0" and report["bit_exact_vectors"] == 5
    pack = zip_pack(pack_dir, tmp_path / "ARM.CMSIS-NN.7.0.0.pack")
    status, report = _run([str(BUNDLED), "--cmsis-nn", str(pack)], tmp_path / "file")
    assert status == 0 and report["verdict"] == "pass", report
    assert main(["build", str(BUNDLED), "--cmsis-nn", str(pack), "--out", str(tmp_path / "b"), "-q"]) == 0
    assert json.loads((tmp_path / "b" / "model" / "manifest.json").read_text())["library"] == "CMSIS-NN 7.0.0"


@pytest.mark.device
def test_run_with_arm_layout_queries_plans_the_scratch_the_device_asks_for(tmp_path: Path) -> None:
    pack = make_pack(tmp_path / "pack", arm_queries=True)
    _, data = build_cases(["conv3x3_same_relu", "depthwise_m2_stride2", "pool_add_fc_softmax"])
    model = tmp_path / "m.tflite"
    model.write_bytes(data)
    status, report = _run([str(model), "--cmsis-nn", str(pack)], tmp_path / "out")
    assert status == 0 and report["verdict"] == "pass", report


@pytest.mark.device
@pytest.mark.parametrize("board", ["mps3-an547", "mps2-an386"])
def test_run_grouped_convolutions_with_an_old_pack(old_pack_dir: Path, tmp_path: Path, board: str) -> None:
    _, data = build_cases(GROUPED, seed=8)
    model = tmp_path / "grouped.tflite"
    model.write_bytes(data)
    status, report = _run([str(model), "--cmsis-nn", str(old_pack_dir), "--board", board], tmp_path / "out")
    assert status == 0 and report["verdict"] == "pass", report
    assert report["library"] == "CMSIS-NN 5.0.0 (grouped convolutions split)"


@pytest.mark.device
def test_under_planned_scratch_stops_the_run_naming_the_layer(tmp_path: Path) -> None:
    pack = make_pack(tmp_path / "pack", under_planned=True)
    # --library-calls: the convolution goes through the pack's call (not a generated kernel)
    status, report = _run([str(BUNDLED), "--cmsis-nn", str(pack), "--library-calls"], tmp_path / "out")
    assert status == 3 and report["verdict"] == "error"
    assert report["vectors"] == 0
    assert report["error"].startswith("layer 0 (op0_conv_2d, operator 0 (CONV_2D)) needs more scratch "
                                      "than planned"), report["error"]

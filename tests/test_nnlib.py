"""mcudeploy.nnlib and the host-side calls into a library: capabilities read from the headers of
packs made from nnref that reproduce Arm's API generations (tests/nnpack.py), only the sources a
model needs, the truthful version of a git checkout, and every host call checked before and after
it is made (scratch queries, kernel sums)."""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cases import build_cases
from modelgen import GraphBuilder
from nnpack import FLOAT_FILES, GENERATIONS, make_pack

from mcudeploy.boards import load_board
from mcudeploy.codegen import generate
from mcudeploy.codegen.kernel_sums import host_vector_sum, kernel_sums
from mcudeploy.codegen.lower import lower
from mcudeploy.codegen.tuning import Tuning
from mcudeploy.errors import BuildError
from mcudeploy.manifest import code_path
from mcudeploy.nnlib import HostBuildError, host_compile, nnref_library
from mcudeploy.packs import load_pack
from mcudeploy.toolchain import cpu_flags

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def generations(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("generations")
    return {api: make_pack(root / api, f"{api}.0.0", api=api, float_files=api == "7") for api in GENERATIONS}


@pytest.mark.parametrize(("api", "vector_sum", "per_channel", "extremum", "grouped", "host_queries"), [
    ("4", None, False, False, False, False),
    ("5", 4, False, False, False, True),
    ("6", 6, False, False, True, True),
    ("7", 7, True, True, True, True),
])
def test_capabilities_are_read_from_the_headers(generations: dict[str, Path], api: str,
                                                vector_sum: int | None, per_channel: bool, extremum: bool,
                                                grouped: bool, host_queries: bool) -> None:
    library = load_pack(generations[api])
    declared = library.prototype("arm_vector_sum_s8")
    assert (None if declared is None else len(declared.names)) == vector_sum
    assert library.has("arm_fully_connected_per_channel_s8") is per_channel
    assert library.has("arm_maximum_s8") is library.has("arm_minimum_s8") is extremum
    assert library.grouped_conv is grouped
    assert library.has("arm_convolve_wrapper_s8_get_buffer_size_mve") is host_queries
    assert library.prototype("arm_convolve_wrapper_s8").names[:2] == ("ctx", "conv_params")


def test_only_the_sources_a_model_needs_are_compiled(generations: dict[str, Path], tmp_path: Path) -> None:
    """The float files listed without a condition do not compile for the board, and are never
    compiled: neither for the firmware nor for the host-side queries."""
    library = load_pack(generations["7"])
    floats = {generations["7"] / "Source" / path for path in FLOAT_FILES}
    assert floats <= set(library.sources)
    board = load_board("mps2-an386")
    result = subprocess.run(["arm-none-eabi-gcc", *cpu_flags(board), "-c", "-o", str(tmp_path / "f.o"),
                             f"-I{generations['7'] / 'Include'}", str(sorted(floats)[0])],
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "float16_t" in result.stderr
    graph = build_cases(["conv3x3_same_relu", "pool_add_fc_softmax"])[0]
    generate(graph, board, library, tmp_path / "model", source="m",
             choose=Tuning(library_only=True).chooser(board.cpu_class, library))  # the library's calls
    needed = library.sources_for_files([code_path(tmp_path / "model")])
    assert not floats & set(needed)
    assert {p.name for p in needed} >= {"arm_convolve_wrapper_s8.c", "arm_avgpool_s8.c", "arm_softmax_s8.c",
                                        "arm_fully_connected_s8.c", "arm_nn_fully_connected_core_s8.c",
                                        "arm_elementwise_add_s8.c", "arm_max_pool_s8.c"}
    assert "arm_transpose_s8.c" not in {p.name for p in needed}
    with pytest.raises(HostBuildError, match=r"compiling CMSIS-NN 7\.0\.0's f16 query for the host failed"):
        host_compile(library, ["arm_convolve_wrapper_f16_get_buffer_size"], purpose="f16 query")


def _git(folder: Path, *args: str) -> str:
    command = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def test_the_version_of_a_git_checkout_is_its_description(tmp_path: Path) -> None:
    checkout = make_pack(tmp_path / "CMSIS-NN", "0.0.0")  # Arm's tree: 0.0.0 at every tag
    assert load_pack(checkout).name == "CMSIS-NN unreleased (.pdsc version 0.0.0)"
    _git(checkout, "init", "-q")
    _git(checkout, "add", ".")
    _git(checkout, "commit", "-qm", "first")
    commit = _git(checkout, "rev-parse", "--short=8", "HEAD")
    assert load_pack(checkout).name == f"CMSIS-NN unreleased {commit} (git checkout)"
    _git(checkout, "tag", "v7.0.0")
    assert load_pack(checkout).name == "CMSIS-NN v7.0.0 (git checkout)"
    (checkout / "README.txt").write_text("changed\n")
    _git(checkout, "commit", "-qam", "second")
    library = load_pack(checkout)
    head = _git(checkout, "rev-parse", "--short=7", "HEAD")
    assert library.name.startswith(f"CMSIS-NN v7.0.0-1-g{head}") and library.name.endswith("(git checkout)")
    (checkout / "README.txt").write_text("edited, not committed\n")
    assert "-dirty (git checkout)" in load_pack(checkout).name
    # A released pack keeps its own version, also inside someone else's git tree.
    released = make_pack(checkout / "packs" / "ARM.CMSIS-NN.6.0.0", "6.0.0", api="6")
    assert load_pack(released).name == "CMSIS-NN 6.0.0"


def _fc_layer(per_channel: bool = False):
    b = GraphBuilder(seed=3)
    b.fully_connected(b.input((2, 37)), 11, per_channel=per_channel)
    graph, _ = b.build([b.ops[-1].outputs[0]])
    return graph, lower(graph).layers[0]


@pytest.mark.parametrize("api", ["5", "6", "7"])
def test_kernel_sums_follow_the_declared_form_and_mcudeploys_arithmetic(generations: dict[str, Path],
                                                                        api: str) -> None:
    library = load_pack(generations[api])
    _, layer = _fc_layer()
    weights = next(c for c in layer.constants if c.name.endswith("_weights")).values.reshape(11, 37)
    bias = next(c for c in layer.constants if c.name.endswith("_bias")).values
    sums = weights.astype(np.int64).sum(axis=1)
    if api == "7":  # the input offset and the bias folded in, as from 7.0.0
        sums = layer.values["input_offset"] * sums + bias
    assert host_vector_sum(library)[1].fused is (api == "7")
    np.testing.assert_array_equal(kernel_sums(layer, library, 12), np.append(sums, 0).astype(np.int32))


def test_kernel_sums_the_library_gets_wrong_or_an_unknown_form_are_refused(tmp_path: Path) -> None:
    _, layer = _fc_layer()
    wrong = make_pack(tmp_path / "wrong")
    source = wrong / "Source/FullyConnectedFunctions/arm_vector_sum_s8.c"
    source.write_text(source.read_text().replace("sum += rhs_offset * vector_cols;",
                                                 "sum += rhs_offset * vector_cols + (r == 3);"))
    with pytest.raises(BuildError, match=r"layer 0 l0_fully_connected \(operator 0 \(FULLY_CONNECTED\)\): "
                                         r"CMSIS-NN 7\.0\.0's arm_vector_sum_s8 \(7 arguments\) computed "
                                         r"1 of 11 kernel sums unlike mcudeploy's arithmetic"):
        kernel_sums(layer, load_pack(wrong), 11)
    odd = make_pack(tmp_path / "odd")
    header = odd / "Include/arm_nnfunctions.h"
    extra = "const int32_t rhs_offset,\n" + " " * 38 + "const int32_t scale,\n"
    header.write_text(header.read_text().replace("const int32_t rhs_offset,\n", extra))
    with pytest.raises(BuildError, match=r"declares arm_vector_sum_s8\(int32_t\* vector_sum_buf, .*int32_t "
                                         r"scale, int32_t\* bias_data\): mcudeploy knows the 4-, 6- and "
                                         r"7-argument forms"):
        kernel_sums(layer, load_pack(odd), 11)


def test_scratch_queries_are_checked_against_the_headers_before_any_call(tmp_path: Path) -> None:
    graph = build_cases(["conv3x3_same_relu"])[0]
    board = load_board("mps3-an547")
    calls = Tuning(library_only=True).chooser(board.cpu_class, nnref_library())  # the library's calls
    reordered = make_pack(tmp_path / "reordered")
    types = reordered / "Include/arm_nn_types.h"
    text = types.read_text()
    end = text.index("} cmsis_nn_conv_params;")
    start = text.rindex("typedef struct", 0, end)
    fields = "    cmsis_nn_tile stride;\n    cmsis_nn_tile padding; /**< Left (w) and top (h) padding. */\n"
    block = text[start:end].replace(fields, "    cmsis_nn_tile padding;\n    cmsis_nn_tile stride;\n")
    assert block != text[start:end]
    types.write_text(text[:start] + block + text[end:])
    with pytest.raises(BuildError, match=r"CMSIS-NN 7\.0\.0 declares cmsis_nn_conv_params as \{int32_t "
                                         r"input_offset, int32_t output_offset, cmsis_nn_tile padding, "
                                         r"cmsis_nn_tile stride, .*\} as mcudeploy passes it for its scratch "
                                         r"queries \(mve\)"):
        generate(graph, board, load_pack(reordered), tmp_path / "m1", source="m", choose=calls)
    other = make_pack(tmp_path / "other")
    header = other / "Include/arm_nnfunctions.h"
    header.write_text(header.read_text().replace(
        "int32_t arm_avgpool_s8_get_buffer_size_mve(const int dim_dst_width, const int ch_src);",
        "int32_t arm_avgpool_s8_get_buffer_size_mve(const cmsis_nn_dims *output_dims, const int ch_src);"))
    with pytest.raises(BuildError, match=r"declares arm_avgpool_s8_get_buffer_size_mve\(cmsis_nn_dims\* "
                                         r"output_dims, int ch_src\): mcudeploy would call it with "
                                         r"\(int32_t, int32_t\) for its scratch queries \(mve\), so it is "
                                         r"not called"):
        generate(graph, board, load_pack(other), tmp_path / "m2", source="m", choose=calls)
    assert not (tmp_path / "m1").exists() and not (tmp_path / "m2").exists()


def test_nnref_is_fully_declared() -> None:
    library = nnref_library()
    assert library.grouped_conv and library.has("arm_fully_connected_per_channel_s8")
    assert len(library.prototype("arm_vector_sum_s8").names) == 7


def test_the_host_build_is_rebuilt_when_a_file_a_source_includes_changes(tmp_path: Path) -> None:
    """The cache key covers what a source includes by name (here a .c file beside it, which is in no
    include folder), so a changed included file is never served from an earlier build."""
    (tmp_path / "body.c").write_text("int answer(void) { return 41; }\n")
    wrapper = tmp_path / "wrapper.c"
    wrapper.write_text('#include "body.c"\n')
    first = ctypes.CDLL(str(host_compile(nnref_library(), extra_sources=[wrapper], purpose="test")))
    (tmp_path / "body.c").write_text("int answer(void) { return 42; }\n")
    second = ctypes.CDLL(str(host_compile(nnref_library(), extra_sources=[wrapper], purpose="test")))
    assert (first.answer(), second.answer()) == (41, 42)

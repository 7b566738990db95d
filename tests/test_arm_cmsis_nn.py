"""Arm's own CMSIS-NN, as far as PyPI carries it: the `bakenn` 1.0.0 wheel vendors the sources and
headers of Arm's CMSIS-NN 4.0.0 (Apache-2.0) for its convolution, depthwise, fully connected and
pooling kernels. The wheel is fetched with pip into `.cache/wheels` and laid out as a pack.

This proves, with Arm's code rather than ours:
- the generated C compiles unchanged against Arm's headers (`-Wall -Wextra -Werror`), for every
  case of the test plan that 4.0.0's API covers (MAXIMUM/MINIMUM came later), softmax and
  element-wise layers included (the subset lacks their kernels, so this is checked by compiling,
  not linking);
- models of the layers the subset has run bit-exact with the host reference and TFLM on QEMU
  through Arm's MVE (Cortex-M55), DSP (Cortex-M4) and plain C (Cortex-M3) kernels, every
  convolution grouping included: 4.0.0 predates grouped convolution, so they are split;
- a release without host-side scratch queries is sized by asking the device (scratch probe);
- `--tune` measures Arm's kernels like nnref's: for a depthwise layer with ch_mult 2 it picks the
  split into multiplier-1 calls, which reach Arm's vectorised kernel (the README's figures);
- outputs overlapping inputs as far as mcudeploy.codegen.walks proves from Arm's code run
  bit-exact through each CPU class's kernels (and with a whole local release, streamed stages).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cases import CASES, REFERENCE_LAYER_NAMES, build_cases, reference_layers
from memory_models import mobilenet_head, same_size_chain
from nnpack import pack_from_tree
from shipped import FetchError, fetch_wheel

from mcudeploy.boards import load_board
from mcudeploy.cli import main
from mcudeploy.codegen import generate
from mcudeploy.codegen.lower import lower
from mcudeploy.codegen.scratch import answers_on_host
from mcudeploy.codegen.tuning import Tuning
from mcudeploy.codegen.walks import ARM_4_0_0, ARM_7_0_0, layer_shift, release_of
from mcudeploy.manifest import code_path
from mcudeploy.nnlib import nnref_library
from mcudeploy.packs import load_pack
from mcudeploy.resources import firmware_dir
from mcudeploy.scratch_probe import scratch_sizes
from mcudeploy.toolchain import cpu_flags

pytestmark = pytest.mark.device
BAKENN = "bakenn==1.0.0"
VENDOR = "bakenn/backend/cmsis_nn/vendor"
# Cases whose C generated for nnref calls functions that came after 4.0.0 (arm_maximum_s8,
# arm_minimum_s8: generated for 4.0.0 they become loops), and the cases whose layers the vendored
# subset implements (it has no add, mul or softmax kernels).
AFTER_4_0 = {"maximum_minimum"}
COMPILABLE = sorted(set(CASES) - AFTER_4_0)
RUNNABLE = sorted(name for name in CASES if not any(k in name for k in ("add", "mul", "softmax")))


@pytest.fixture(scope="module")
def arm_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        wheel = fetch_wheel(BAKENN)
    except FetchError as err:
        if os.environ.get("CI"):  # the proof with Arm's code must not vanish silently
            pytest.fail(f"Arm's CMSIS-NN sources unavailable under CI: {err}")
        pytest.skip(f"Arm's CMSIS-NN sources unavailable: {err}")
    unpacked = tmp_path_factory.mktemp("bakenn")
    subprocess.run([sys.executable, "-m", "zipfile", "-e", str(wheel), str(unpacked)], check=True)
    return pack_from_tree(unpacked / VENDOR, tmp_path_factory.mktemp("pack") / "CMSIS-NN", "4.0.0")


@pytest.mark.parametrize("board", ["mps3-an547", "mps2-an386"])
def test_generated_c_compiles_unchanged_against_arms_headers(arm_pack: Path, board: str,
                                                             tmp_path: Path) -> None:
    # Generated for nnref (the subset lacks the add, mul and softmax kernels a pack build would
    # link); the text is the same for any library but for the splitting of grouped convolutions.
    graph, _ = build_cases(COMPILABLE, seed=5)
    b = load_board(board)
    generate(graph, b, nnref_library(), tmp_path / "model", source="plan")
    includes = [f"-I{d}" for d in load_pack(arm_pack).include_dirs] + [f"-I{firmware_dir() / 'include'}"]
    result = subprocess.run(
        ["arm-none-eabi-gcc", *cpu_flags(b), "-std=c11", "-Wall", "-Wextra", "-Werror", "-c",
         str(code_path(tmp_path / "model")), "-o", str(tmp_path / "model.o"), *includes],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("board", ["mps3-an547", "mps2-an386", "mps2-an385"])
def test_test_plan_is_bit_exact_through_arms_kernels(arm_pack: Path, board: str, tmp_path: Path) -> None:
    _, data = build_cases(RUNNABLE, seed=5)
    model = tmp_path / "plan.tflite"
    model.write_bytes(data)
    out = tmp_path / "out"
    status = main(["run", str(model), "--board", board, "--cmsis-nn", str(arm_pack), "--out", str(out),
                   "--vectors", "3", "--library-calls", "-q"])
    report = json.loads((out / "report.json").read_text())
    assert status == 0, report.get("mismatches") or report.get("error")
    assert report["library"] == "CMSIS-NN 4.0.0 (grouped convolutions split)"
    assert report["vectors"] == 3 and report["mismatched_vectors"] == 0
    assert report["oracles"] == ["host-reference", "tflm"]
    # Arm's kernels are described by GCC's call graph like nnref's: the stack is their bound.
    stack = report["firmware"]["stack_use"]
    assert stack["bound"] is not None and stack["measured"] <= stack["bound"] < stack["bytes"] < 4096, stack
    print(f"\nArm's CMSIS-NN 4.0.0 on {board}: stack measured {stack['measured']} B, call-graph bound "
          f"{stack['bound']} B, reserved {stack['bytes']} B")


def test_scratch_of_a_release_without_host_queries_comes_from_the_device(arm_pack: Path,
                                                                        tmp_path: Path) -> None:
    library = load_pack(arm_pack)
    board = load_board("mps3-an547")
    assert not answers_on_host(library, board.cpu_class)
    graph, _ = build_cases(["conv3x3_same_relu", "depthwise_m1", "conv_grouped2"], seed=1)
    calls = Tuning(library_only=True).chooser(board.cpu_class, library)  # Arm's kernels' queries
    manifest = generate(graph, board, library, tmp_path / "model", source="m", choose=calls,
                        scratch=scratch_sizes(library, board, tmp_path / "model-scratch-probe"))
    probe = (tmp_path / "model-scratch-probe" / "probe" / "probe.c").read_text()
    assert "#define MODEL_SCRATCH_WANTED(layer, wanted, planned) (mcd_probe_report" in probe
    # Arm's MVE convolution wants an im2col buffer; the planned sizes are the device's answers,
    # which the firmware's start-up check (same query, same device) then confirms on every run.
    conv = next(layer for layer in manifest.layers if layer.kind == "conv2d")
    assert conv.scratch_bytes > 0


@pytest.mark.parametrize("board", ["mps3-an547", "mps2-an386"])
def test_tuning_with_arms_kernels_splits_the_depthwise_multiplier(arm_pack: Path, board: str,
                                                                  tmp_path: Path) -> None:
    model = tmp_path / "reference_layers.tflite"
    model.write_bytes(reference_layers()[1])
    out = tmp_path / "bench"
    assert main(["bench", str(model), "--board", board, "--cmsis-nn", str(arm_pack), "--tune",
                 "--library-calls", "--out", str(out), "-q"]) == 0
    result = json.loads((out / "bench.json").read_text())
    assert result["bit_exact"] is True
    [tuned] = result["tuning"]["layers"]
    assert tuned["name"] == "l2_depthwise_conv2d" and tuned["lowering"] == "split_multiplier"
    by_name = {c["name"]: c for c in tuned["candidates"]}
    assert all(c["bit_exact"] for c in by_name.values())
    gain = by_name["wrapper"]["instructions"] / by_name["split_multiplier"]["instructions"]
    per_mac = {name: round(layer["instructions"] / layer["macs"], 2)
               for name, layer in zip(REFERENCE_LAYER_NAMES, result["layers"], strict=True)}
    print(f"\nArm's CMSIS-NN 4.0.0 on {board}, instructions per MAC: {per_mac}; "
          f"ch_mult 2 split {gain:.1f}x faster than the wrapper call")
    assert gain > 2.0, by_name


@pytest.mark.parametrize("board", ["mps3-an547", "mps2-an386", "mps2-an385"])
def test_overlaps_proved_for_arms_kernels_are_bit_exact(arm_pack: Path, board: str, tmp_path: Path) -> None:
    """Layers whose output overlaps their input as far as mcudeploy.codegen.walks proves for Arm's
    4.0.0 kernels (MVE, DSP, plain C: each its own order), bit-exact with the host reference and TFLM.
    The release has no host scratch queries, so no streamed stage: overlaps only."""
    library = load_pack(arm_pack)
    assert release_of(library) is ARM_4_0_0
    graph, data = same_size_chain()
    model = tmp_path / "head.tflite"
    model.write_bytes(data)
    out = tmp_path / "out"
    status = main(["run", str(model), "--board", board, "--cmsis-nn", str(arm_pack), "--out", str(out),
                   "--vectors", "3", "--library-calls", "-q"])  # overlaps are proved for the library's calls
    report = json.loads((out / "report.json").read_text())
    assert status == 0, report.get("mismatches") or report.get("error")
    assert report["oracles"] == ["host-reference", "tflm"] and report["mismatched_vectors"] == 0
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    walked = [layer for layer in lower(graph).layers
              if layer_shift(layer, library, load_board(board).cpu_class) is not None]
    assert walked and manifest["arena_bytes"] < manifest["lower_bound"]
    print(f"\nArm's 4.0.0 on {board}: arena {manifest['arena_bytes']} B against the tensor bound "
          f"{manifest['lower_bound']} B; {len(walked)} of {len(lower(graph).layers)} layers may overlap")


@pytest.mark.parametrize("board", ["mps3-an547", "mps2-an386"])
def test_stages_and_overlaps_with_a_local_release(board: str, tmp_path: Path) -> None:
    """The same with a whole Arm release brought in locally (MCD_ARM_CMSIS_NN: 7.0.0's tree or
    pack), whose host scratch queries let stages be planned too; TFLM is the second oracle."""
    release = os.environ.get("MCD_ARM_CMSIS_NN")
    if not release:
        pytest.skip("Arm's CMSIS-NN is not downloadable here: set MCD_ARM_CMSIS_NN to a release to run this")
    library = load_pack(release)
    assert release_of(library) is ARM_7_0_0, "walks.py has read 7.0.0 only among the whole releases"
    _, data = mobilenet_head(size=48)
    model = tmp_path / "head.tflite"
    model.write_bytes(data)
    out = tmp_path / "out"
    status = main(["run", str(model), "--board", board, "--cmsis-nn", release, "--out", str(out),
                   "--vectors", "3", "--library-calls", "-q"])
    report = json.loads((out / "report.json").read_text())
    assert status == 0, report.get("mismatches") or report.get("error")
    assert report["mismatched_vectors"] == 0 and "tflm" in report["oracles"]
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    assert "lowered as stage of layers" in code_path(out / "model").read_text()
    assert manifest["arena_bytes"] < 0.7 * manifest["lower_bound"]
    print(f"\n{library.name} on {board}: arena {manifest['arena_bytes']} B against the tensor bound "
          f"{manifest['lower_bound']} B")

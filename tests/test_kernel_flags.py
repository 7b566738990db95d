"""Per-kernel compiler flags of the NN library (mcudeploy.build.KERNEL_FLAGS): the depthwise
kernels are compiled -fno-inline-functions-called-once, the rest with the library's own flags,
and the build says so in build.json and in where their objects go."""

from __future__ import annotations

import json
from pathlib import Path

from mcudeploy.boards import load_board
from mcudeploy.build import build_firmware, kernel_flags
from mcudeploy.codegen import generate
from mcudeploy.codegen.tuning import Tuning
from mcudeploy.frontends.tflite import load_tflite
from mcudeploy.nnlib import nnref_library

ROOT = Path(__file__).resolve().parent.parent
FLAG = "-fno-inline-functions-called-once"


def test_only_the_depthwise_kernels_take_the_flag() -> None:
    library = nnref_library()
    flagged = sorted(s.name for s in library.sources if kernel_flags(s))
    assert flagged == sorted(f"arm_depthwise_conv_{name}.c" for name in (
        "s16", "wrapper_s16", "wrapper_s16_get_buffer_size", "wrapper_s16_get_buffer_size_dsp",
        "wrapper_s16_get_buffer_size_mve", "wrapper_s8", "wrapper_s8_get_buffer_size",
        "wrapper_s8_get_buffer_size_dsp", "wrapper_s8_get_buffer_size_mve"))
    assert all(kernel_flags(s) == (FLAG,) for s in library.sources if "depthwise" in s.name)
    assert kernel_flags(Path("arm_depthwise_conv_s8_opt.c")) == (FLAG,)  # Arm's file names too
    assert kernel_flags(Path("arm_convolve_1x1_s8_fast.c")) == ()


def test_the_build_compiles_flagged_kernels_apart(tmp_path: Path) -> None:
    """Every layer through the library's calls: of the sources the model needs, the depthwise
    kernel (the s8 wrapper and its query) is compiled apart with the flag."""
    board, library = load_board("mps2-an386"), nnref_library()
    generate(load_tflite(ROOT / "models" / "tiny_cnn.tflite"), board, library, tmp_path / "model", "tiny_cnn",
             choose=Tuning(library_only=True).chooser(board.cpu_class, library))
    build_firmware(board, tmp_path / "model", tmp_path / "build", library)
    config = json.loads((tmp_path / "build" / "build.json").read_text())
    flagged = {"arm_depthwise_conv_wrapper_s8.c", "arm_depthwise_conv_wrapper_s8_get_buffer_size.c"}
    assert {Path(s).name: f for s, f in config["nn_source_flags"].items()} == {n: [FLAG] for n in flagged}
    objects = tmp_path / "build" / "obj" / "nn"
    apart = {p.name for p in (objects / FLAG.lstrip("-")).rglob("*.o")}
    assert apart == {Path(name).with_suffix(".o").name for name in flagged}
    assert "arm_convolve_wrapper_s8.o" in {p.name for p in objects.rglob("*.o")} - apart

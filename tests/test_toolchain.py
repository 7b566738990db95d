"""GCC flags per CPU, and the firmware build's handling of boards and memory overflow."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from mcudeploy.boards import Board, load_board
from mcudeploy.build import build_firmware, render_linker_script
from mcudeploy.errors import BoardError, BuildError
from mcudeploy.model import import_model
from mcudeploy.nnlib import NNLibrary
from mcudeploy.outdir import staged_directory
from mcudeploy.pipeline import RunHooks, compile_model
from mcudeploy.progress import Progress
from mcudeploy.toolchain import TOOLCHAIN_PREFIX, cpu_flags

AN547 = load_board("mps3-an547")
ECHO_MODEL = Path(__file__).parent / "firmware" / "echo_model"
NO_LIBRARY = NNLibrary("none", (), ())

# (cpu, fpu, dsp, mve) -> the feature macros GCC must then predefine.
VARIANTS = {
    "cortex-m3": (("cortex-m3", False, False, "none"), set()),
    "cortex-m4": (("cortex-m4", True, True, "none"), {"__ARM_FP", "__ARM_FEATURE_DSP"}),
    "cortex-m4 without FPU": (("cortex-m4", False, True, "none"), {"__ARM_FEATURE_DSP"}),
    "cortex-m7": (("cortex-m7", True, True, "none"), {"__ARM_FP", "__ARM_FEATURE_DSP"}),
    "cortex-m33": (("cortex-m33", True, True, "none"), {"__ARM_FP", "__ARM_FEATURE_DSP"}),
    "cortex-m33 without DSP": (("cortex-m33", True, False, "none"), {"__ARM_FP"}),
    "cortex-m55": (("cortex-m55", True, True, "float"),
                   {"__ARM_FP", "__ARM_FEATURE_DSP", "__ARM_FEATURE_MVE=3"}),
    "cortex-m55 integer MVE": (("cortex-m55", True, True, "int"),
                               {"__ARM_FP", "__ARM_FEATURE_DSP", "__ARM_FEATURE_MVE=1"}),
    "cortex-m55 integer MVE without FPU": (("cortex-m55", False, True, "int"),
                                           {"__ARM_FEATURE_DSP", "__ARM_FEATURE_MVE=1"}),
    "cortex-m55 without MVE": (("cortex-m55", True, True, "none"),
                               {"__ARM_FP", "__ARM_FEATURE_DSP"}),
}
FEATURES = ("__ARM_FP", "__ARM_FEATURE_DSP", "__ARM_FEATURE_MVE")
TINY = """
#include <stdint.h>
int32_t dot(const int8_t *a, const int8_t *b, int n) {
    int32_t s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
float scale(float x) { return x * 0.5f; }
"""


def variant(cpu: str, fpu: bool, dsp: bool, mve: str) -> Board:
    return AN547.model_copy(update={"cpu": cpu, "fpu": fpu, "dsp": dsp, "mve": mve})


@pytest.mark.parametrize(("features", "macros"), VARIANTS.values(), ids=VARIANTS.keys())
def test_flags_compile_with_exactly_the_board_features(
    tmp_path: Path, features: tuple[str, bool, bool, str], macros: set[str]
) -> None:
    flags = cpu_flags(variant(*features))
    source = tmp_path / "tiny.c"
    source.write_text(TINY)
    gcc = f"{TOOLCHAIN_PREFIX}gcc"
    subprocess.run([gcc, *flags, "-O2", "-Wall", "-Wextra", "-Werror", "-c", str(source),
                    "-o", str(tmp_path / "tiny.o")], check=True)
    defined = subprocess.run([gcc, *flags, "-dM", "-E", str(source)], check=True,
                             capture_output=True, text=True).stdout.splitlines()
    found = set()
    for line in defined:
        _, name, *value = line.split()
        if name in FEATURES:
            found.add(f"{name}={value[0]}" if name == "__ARM_FEATURE_MVE" else name)
    assert found == macros


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (("cortex-m3", True, False, "none"), "has no FPU"),
        (("cortex-m3", False, True, "none"), "has no DSP"),
        (("cortex-m7", True, False, "none"), "always has the DSP"),
        (("cortex-m55", False, True, "float"), "needs the FPU"),
        (("cortex-m55", True, False, "int"), "MVE needs the DSP"),
    ],
)
def test_impossible_cpu_features_are_board_errors(
    features: tuple[str, bool, bool, str], message: str
) -> None:
    with pytest.raises(BoardError, match=message):
        cpu_flags(variant(*features))


def test_linker_script_puts_the_stack_at_the_top_of_its_region() -> None:
    script = render_linker_script(AN547)
    assert "DTCM (rwx) : ORIGIN = 0x20000000, LENGTH = 0x00080000" in script
    assert ".stack 0x2007C000 (NOLOAD)" in script
    assert ".weights : ALIGN(16)" in script and "} > SRAM" in script


def _oversized_model(tmp_path: Path, arena_bytes: int) -> Path:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.c").write_text(
        f'#include "{ECHO_MODEL / "model.c"}"\n'
        f"__attribute__((section(\".arena\"), used)) static int8_t extra[{arena_bytes}];\n"
    )
    return model


@pytest.mark.parametrize(
    ("arena_bytes", "message"),
    [
        (600 * 1024, "ld: build/firmware.elf section `.arena' will not fit in region `DTCM'"),
        (500 * 1024, "region DTCM overflowed: .arena runs into the 16384-byte stack"),
    ],
    ids=["region", "stack"],
)
def test_memory_overflow_is_a_build_error_naming_the_region(
    tmp_path: Path, arena_bytes: int, message: str
) -> None:
    model = _oversized_model(tmp_path, arena_bytes)
    with pytest.raises(BuildError, match=message.replace(".", r"\.")):
        build_firmware(AN547, model, tmp_path / "build", NO_LIBRARY)


def test_compiler_error_is_a_build_error_with_the_first_error_line(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.c").write_text("int broken(void) { return undeclared; }\n")
    with pytest.raises(BuildError, match=r"model\.c:1:.*error: 'undeclared' undeclared"):
        build_firmware(AN547, model, tmp_path / "build", NO_LIBRARY)


def test_a_failed_build_names_a_log_that_survives_the_staging_directory(tmp_path: Path) -> None:
    """`mcudeploy build` stages its output and removes it on the error: the log the message names
    is kept elsewhere (the user cache), with the compiler's whole output."""
    broken = tmp_path / "broken.c"
    broken.write_text("int broken(void) { return undeclared; }\n")
    model = import_model(Path(__file__).parent.parent / "models" / "tiny_cnn.tflite")
    out = tmp_path / "out"
    with pytest.raises(BuildError) as failed, staged_directory(out) as work:
        compile_model(model, AN547, work, Progress(quiet=True), RunHooks(sources=(broken,)))
    message = str(failed.value)
    assert re.fullmatch(r"firmware build failed \(log: (\S+)\): \S*broken\.c:1:\d+: error: 'undeclared' "
                        r"undeclared \(first use in this function\)", message), message
    log = Path(re.search(r"\(log: (\S+)\)", message).group(1))
    try:
        assert log.is_file() and "'undeclared' undeclared" in log.read_text()
        assert not log.is_relative_to(tmp_path) and list(tmp_path.iterdir()) == [broken]
    finally:
        log.unlink(missing_ok=True)

"""firmware/nnref as a library: every function the generated code can call is there, one public
function per file named as the function, documented once in arm_nnfunctions.h, and the whole
library compiles with -Wall -Wextra -Werror for the host and for Cortex-M3/M4/M7/M33/M55."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from cases import CASES, build_cases
from nnref_cases import combine, device_batch

from mcudeploy.boards import load_board
from mcudeploy.codegen import generate
from mcudeploy.codegen.tuning import Tuning
from mcudeploy.manifest import code_path
from mcudeploy.nnlib import nnref_library
from mcudeploy.toolchain import TOOLCHAIN_PREFIX, cpu_flags

ROOT = Path(__file__).resolve().parent.parent
NNREF = ROOT / "firmware" / "nnref"
HEADER = NNREF / "Include" / "arm_nnfunctions.h"
WARNINGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"]
BOARDS = {"cortex-m3": "mps2-an385", "cortex-m4": "mps2-an386", "cortex-m7": "mps2-an500",
          "cortex-m33": "mps2-an505", "cortex-m55": "mps3-an547"}
# What the ONNX/TFLite lowerings may emit beyond the templates' calls (CMSIS-NN's own names).
DATA_MOVEMENT = {"arm_concatenation_s8_x", "arm_concatenation_s8_y", "arm_concatenation_s8_z",
                 "arm_concatenation_s8_w", "arm_pad_s8", "arm_transpose_s8", "arm_maximum_s8",
                 "arm_minimum_s8", "arm_elementwise_mul_s8"}
DEFINITION = re.compile(r"^(?!static)[a-z_][\w \*]*?\b(arm_\w+)\s*\(", re.MULTILINE)
DECLARATION = re.compile(r"^[a-z_][\w \*]*?\b(arm_\w+)\s*\([^;{]*\);", re.MULTILINE)


def _declared() -> list[str]:
    return DECLARATION.findall(HEADER.read_text())


def _public_sources() -> list[Path]:
    return [s for s in nnref_library().sources if s.parent.name != "NNSupportFunctions"]


def _compile(compiler: str, flags: list[str], out: Path) -> None:
    sources = [str(s) for s in nnref_library().sources]
    result = subprocess.run([compiler, *flags, *WARNINGS, f"-I{NNREF / 'Include'}", "-c", *sources],
                            cwd=out, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert len(list(out.glob("*.o"))) == len(sources)


def test_compiles_without_warnings_for_the_host(tmp_path: Path) -> None:
    _compile("gcc", ["-pedantic"], tmp_path)
    _compile("gcc", ["-DNNREF_FC_KERNEL_SUMS"], tmp_path)


@pytest.mark.parametrize("cpu", sorted(BOARDS))
def test_compiles_without_warnings_for_each_cortex_m(tmp_path: Path, cpu: str) -> None:
    board = load_board(BOARDS[cpu])
    assert board.cpu == cpu
    _compile(f"{TOOLCHAIN_PREFIX}gcc", list(cpu_flags(board)), tmp_path)


def test_one_public_function_per_file_named_as_the_function() -> None:
    for source in _public_sources():
        defined = DEFINITION.findall(source.read_text())
        assert defined == [source.stem], f"{source.name} defines {defined}"


def test_every_declared_function_has_its_file_and_every_file_its_declaration() -> None:
    declared = _declared()
    assert len(declared) == len(set(declared))
    assert sorted(declared) == sorted(s.stem for s in _public_sources())


def test_every_function_is_documented_once_in_the_header() -> None:
    text = HEADER.read_text()
    for declaration in DECLARATION.finditer(text):
        before = text[: declaration.start()].rstrip()
        assert before.endswith("*/"), f"{declaration.group(1)} is not documented"
    for source in nnref_library().sources:
        assert "@param" not in source.read_text(), f"{source.name} repeats the contract"


def test_every_function_generated_code_calls_is_in_nnref(tmp_path: Path) -> None:
    """The calls in model.c generated for every layer variant of the test plan and of the nnref
    device batch, for each CPU class, with the default lowerings and with library calls only, are
    all nnref functions."""
    graphs = [build_cases(sorted(CASES), seed=3)[0], combine(device_batch())[0]]
    called: set[str] = set()
    library = nnref_library()
    for board in ("mps3-an547", "mps2-an386", "mps2-an385"):
        for calls in (False, True):
            choose = Tuning(library_only=calls).chooser(load_board(board).cpu_class, library)
            for i, graph in enumerate(graphs):
                out = tmp_path / f"{board}-{i}-{calls}"
                generate(graph, load_board(board), library, out, source=graph.name, choose=choose)
                called |= set(re.findall(r"\b(arm_\w+)\(", code_path(out).read_text()))
    missing = (called | DATA_MOVEMENT) - set(_declared())
    assert not missing, f"generated code may call {sorted(missing)}, which nnref lacks"
    # arm_vector_sum_s8 is called on the host (mcudeploy.codegen.kernel_sums), not in model.c.
    assert {"arm_convolve_wrapper_s8", "arm_depthwise_conv_wrapper_s8", "arm_fully_connected_s8",
            "arm_fully_connected_per_channel_s8", "arm_avgpool_s8",
            "arm_max_pool_s8", "arm_elementwise_add_s8", "arm_elementwise_mul_s8", "arm_softmax_s8",
            "arm_convolve_wrapper_s8_get_buffer_size", "arm_avgpool_s8_get_buffer_size",
            "arm_fully_connected_s8_get_buffer_size"} <= called

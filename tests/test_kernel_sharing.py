"""Generated kernels that are the same code are written once (mcudeploy/codegen/kernel_sharing.py):
layers of the same geometry and quantization share one kernel function, each with its own entry
point and constants; layers that differ in one constant the kernel bakes in (a stride, an
activation bound) do not. Checked in NAME.c, in the firmware's symbols, and bit-exact on QEMU."""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from modelgen import GraphBuilder
from test_mcd_kernels import RELU6, run_forced

from mcudeploy import ir
from mcudeploy.codegen.kernel_sharing import kernel_text, runtime_geometry, shared_kernels
from mcudeploy.manifest import code_path
from mcudeploy.toolchain import TOOLCHAIN_PREFIX, find_compiler

# Layer names in the order sharing_graph builds them.
DEPTHWISE, DEPTHWISE_SAME, DEPTHWISE_STRIDED, DEPTHWISE_RELU6 = (f"l{i}_depthwise_conv2d" for i in range(4))
CONV, CONV_SAME, CONV_RELU6 = "l4_conv2d", "l5_conv2d", "l6_conv2d"
FOLLOWERS = {DEPTHWISE_SAME: DEPTHWISE, DEPTHWISE_STRIDED: DEPTHWISE, CONV_SAME: CONV}
ALONE = {DEPTHWISE_RELU6: DEPTHWISE, CONV_RELU6: CONV}  # -> the kernel of the same kind they do not share


def sharing_graph() -> tuple[ir.Graph, bytes]:
    """Depthwise convolutions of the same output quantization (their weights differ): two of the
    same geometry, one with stride 2 (it reads its geometry at run time, and so do the two it
    shares the kernel with), one with ReLU6; 1x1 convolutions: two alike, one with ReLU6."""
    b = GraphBuilder(seed=3)
    x = b.input((1, 8, 8, 8))
    dws = [b.depthwise(x), b.depthwise(x), b.depthwise(x, stride=(2, 2)), b.depthwise(x, activation=RELU6)]
    convs = [b.conv(x, 8, kernel=(1, 1)), b.conv(x, 8, kernel=(1, 1)),
             b.conv(x, 8, kernel=(1, 1), activation=RELU6)]
    for group in (dws, convs):
        for other in group[1:]:
            b.tensors[other] = replace(b.tensors[other], quant=b.tensors[group[0]].quant)
    return b.build(dws + convs, "sharing")


def _body(name: str, query: int = 4, code: str = "in") -> str:
    """A body as the generated templates write it: scratch query, kernel, entry point."""
    return (f"static int32_t {name}_get_buffer_size(void)\n{{\n    return {query};\n}}\n"
            f"static int32_t {name}_kernel(const int8_t *in)\n"
            f"{{ return {name}_helper({code}) + l11_x_kernel(in); }}\n"
            f"static int32_t {name}(void)\n{{\n"
            f"    return {name}_kernel(arena + {query}, 0, 0, {name}_constants);\n}}")


def test_the_kernel_text_abstracts_the_layer_name_and_leaves_out_the_query_and_entry_point() -> None:
    text = kernel_text("l1_x", _body("l1_x"))
    assert text is not None and "l1_x" not in text and "l11_x_kernel" in text
    assert "get_buffer_size" not in text and "arena" not in text
    assert kernel_text("l1_x", _body("l1_x").replace("l1_x(void)", "l1_x_band0(void)")) is None
    layers = [("l1_x", "mcd_conv_dsp.c.j2", _body("l1_x")), ("l7_x", "mcd_conv_dsp.c.j2", _body("l7_x", 8)),
              ("l9_x", "mcd_conv_dsp.c.j2", _body("l9_x", code="in + 1")),
              ("l10_x", "mcd_conv_mve.c.j2", _body("l10_x")), ("l12_x", "conv2d.c.j2", _body("l12_x"))]
    assert shared_kernels(layers) == {"l7_x": "l1_x"}


def test_the_geometry_is_read_at_run_time_only_where_that_shares_a_kernel() -> None:
    """(name, template, kernel with constants, kernel reading them): l1 and l2 differ in their
    constants, not at run time; l3 and l4 are the same code either way; l5 has no partner."""
    dsp = "mcd_depthwise_dsp.c.j2"
    layers = [("l1_x", dsp, _body("l1_x", code="in + 2"), _body("l1_x", code="g")),
              ("l2_x", dsp, _body("l2_x", code="in + 3"), _body("l2_x", code="g")),
              ("l3_x", dsp, _body("l3_x", code="in + 5"), _body("l3_x", code="g + 1")),
              ("l4_x", dsp, _body("l4_x", code="in + 5"), _body("l4_x", code="g + 1")),
              ("l5_x", dsp, _body("l5_x", code="in + 7"), _body("l5_x", code="g + 2")),
              ("l6_x", "mcd_conv_dsp.c.j2", _body("l6_x", code="in + 8"), _body("l6_x", code="g"))]
    assert runtime_geometry(layers) == {"l1_x", "l2_x"}


def _functions(elf: Path) -> dict[str, tuple[int, int]]:
    """The firmware's function symbols: name -> (address, size); a clone GCC specialised for
    constant arguments (`.constprop.0`) under its function's name."""
    nm = find_compiler().with_name(f"{TOOLCHAIN_PREFIX}nm")
    listed = subprocess.run([str(nm), "-S", "--defined-only", str(elf)], check=True, capture_output=True,
                            text=True).stdout
    fields = (line.split() for line in listed.splitlines())
    return {f[3].split(".")[0]: (int(f[0], 16), int(f[1], 16)) for f in fields
            if len(f) == 4 and f[2] in "tT"}


@pytest.mark.device
@pytest.mark.parametrize(("board", "name"), [("mps2-an386", "mcd_dsp"), ("mps3-an547", "mcd_mve")])
def test_layers_of_the_same_kernel_link_one_function_and_run_bit_exact(tmp_path: Path, board: str,
                                                                       name: str) -> None:
    out, shapes = run_forced(tmp_path, *sharing_graph(), board, name)
    assert shapes == 3  # layer signatures

    text = code_path(out / "model").read_text()
    assert text.count(f"lowered as {name} */") == 7
    for follower, leader in FOLLOWERS.items():
        assert f"static int32_t {follower}_kernel(" not in text
        assert f"    return {leader}_kernel(" in text.split(f"static int32_t {follower}(void)\n")[1]
    for alone in (DEPTHWISE, CONV, *ALONE):
        assert f"static int32_t {alone}_kernel(" in text
    def kernel(layer: str) -> str:
        return text.split(f"static int32_t {layer}_kernel(")[1].split("static int32_t")[0]

    assert re.search(r"const int32_t g_stride_h [^;]*= constants\[", kernel(DEPTHWISE))
    assert "g_stride_h" not in kernel(DEPTHWISE_RELU6)

    functions = _functions(out / "build" / "firmware.elf")
    kernels = {s for s in functions if s.endswith("_kernel")}
    assert {f"{leader}_kernel" for leader in FOLLOWERS.values()} <= kernels
    assert not {f"{follower}_kernel" for follower in FOLLOWERS} & kernels
    # the layers that differ in one constant have code of their own: their kernel, or their entry
    # point with it inlined, apart from the shared kernel
    for alone, leader in ALONE.items():
        own = functions.get(f"{alone}_kernel", functions[alone])
        assert own[0] != functions[f"{leader}_kernel"][0] and own[1] > 100

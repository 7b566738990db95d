"""Generated kernels that are the same code are written once (mcudeploy/codegen/kernel_sharing.py):
layers of the same geometry and quantization share one kernel function, each with its own entry
point and constants; layers that differ in one constant the kernel bakes in (a stride, an
activation bound) do not. Checked in NAME.c, in the firmware's symbols, and bit-exact on QEMU."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from modelgen import GraphBuilder
from test_mcd_kernels import RELU6, forced_tuning

from mcudeploy import ir
from mcudeploy.cli import main
from mcudeploy.codegen.kernel_sharing import kernel_text, shared_kernels
from mcudeploy.manifest import code_path
from mcudeploy.toolchain import TOOLCHAIN_PREFIX, find_compiler

# Layer names in the order sharing_graph builds them.
DEPTHWISE, DEPTHWISE_SAME, DEPTHWISE_STRIDED = (f"l{i}_depthwise_conv2d" for i in range(3))
CONV, CONV_SAME, CONV_RELU6 = "l3_conv2d", "l4_conv2d", "l5_conv2d"
FOLLOWERS = {DEPTHWISE_SAME: DEPTHWISE, CONV_SAME: CONV}


def sharing_graph() -> tuple[ir.Graph, bytes]:
    """Two depthwise convolutions of the same geometry and output quantization (their weights
    differ) and one with stride 2; two 1x1 convolutions alike and one with ReLU6."""
    b = GraphBuilder(seed=3)
    x = b.input((1, 8, 8, 8))
    dw, dw_same, dw_strided = b.depthwise(x), b.depthwise(x), b.depthwise(x, stride=(2, 2))
    conv, conv_same = b.conv(x, 8, kernel=(1, 1)), b.conv(x, 8, kernel=(1, 1))
    conv_relu6 = b.conv(x, 8, kernel=(1, 1), activation=RELU6)
    for same, first in ((dw_same, dw), (conv_same, conv), (conv_relu6, conv)):
        b.tensors[same] = replace(b.tensors[same], quant=b.tensors[first].quant)
    return b.build([dw, dw_same, dw_strided, conv, conv_same, conv_relu6], "sharing")


def test_the_kernel_text_abstracts_the_layer_name_only() -> None:
    body = ("static int32_t l1_x_get_buffer_size(void)\n{\n    return 4;\n}\n"
            "static int32_t l1_x_kernel(const int8_t *in) { return l1_x_helper(in) + l11_x_kernel(in); }\n"
            "static int32_t l1_x(void)\n{\n"
            "    return l1_x_kernel(arena + 0, arena + 8, 0, l1_x_constants);\n}")
    text = kernel_text("l1_x", body)
    assert text is not None and "l1_x" not in text and "l11_x_kernel" in text and "arena" not in text
    assert kernel_text("l1_x", body.replace("l1_x(void)", "l1_x_band0(void)")) is None  # no entry point
    same = body.replace("return 4", "return 4").replace("l1_x", "l7_x").replace("arena + 8", "arena + 64")
    other = body.replace("return 4", "return 8").replace("l1_x", "l9_x")
    layers = [("l1_x", "mcd_conv_dsp.c.j2", body), ("l7_x", "mcd_conv_dsp.c.j2", same),
              ("l9_x", "mcd_conv_dsp.c.j2", other),
              ("l10_x", "mcd_conv_mve.c.j2", body.replace("l1_x", "l10_x")),
              ("l12_x", "conv2d.c.j2", body.replace("l1_x", "l12_x"))]
    assert shared_kernels(layers) == {"l7_x": "l1_x"}


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
    graph, data = sharing_graph()
    model = tmp_path / "sharing.tflite"
    model.write_bytes(data)
    assert forced_tuning(graph, board, name, tmp_path / "tuning.json") == 3  # layer signatures
    out = tmp_path / "out"
    status = main(["run", str(model), "--board", board, "--tuning", str(tmp_path / "tuning.json"),
                   "--vectors", "2", "--out", str(out), "-q"])
    report = json.loads((out / "report.json").read_text())
    assert report["oracles"] == ["host-reference", "tflm"] and report["mismatches"] == []
    assert status == 0 and report["verdict"] == "pass" and report["bit_exact_vectors"] == 2

    text = code_path(out / "model").read_text()
    assert text.count(f"lowered as {name} */") == 6
    for follower, leader in FOLLOWERS.items():
        assert f"static int32_t {follower}_kernel(" not in text
        assert f"    return {leader}_kernel(" in text.split(f"static int32_t {follower}(void)\n")[1]
    for alone in (DEPTHWISE, DEPTHWISE_STRIDED, CONV, CONV_RELU6):
        assert f"static int32_t {alone}_kernel(" in text

    functions = _functions(out / "build" / "firmware.elf")
    kernels = {s for s in functions if s.endswith("_kernel")}
    assert {f"{leader}_kernel" for leader in FOLLOWERS.values()} <= kernels
    assert not {f"{follower}_kernel" for follower in FOLLOWERS} & kernels
    # the layers that differ in one constant have code of their own: their kernel, or their entry
    # point with it inlined, apart from the shared kernel
    for alone, leader in ((DEPTHWISE_STRIDED, DEPTHWISE), (CONV_RELU6, CONV)):
        own = functions.get(f"{alone}_kernel", functions[alone])
        assert own[0] != functions[f"{leader}_kernel"][0] and own[1] > 100

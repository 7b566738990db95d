"""Benchmarks: the MLPerf Tiny builders, memory fitting before the build, TFLM's arena, and
`mcudeploy bench` on QEMU with the arena in the ELF equal to the plan."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile
from hostlib import HostModel

from mcudeploy.boards import load_board
from mcudeploy.build import build_firmware
from mcudeploy.cli import main
from mcudeploy.codegen import generate
from mcudeploy.codegen.candidates import library_only
from mcudeploy.errors import BuildError
from mcudeploy.frontends.tflite import load_tflite, parse_tflite
from mcudeploy.manifest import code_path
from mcudeploy.memory import measure_tflm_arena
from mcudeploy.nnlib import nnref_library
from mcudeploy.reference import run_graph
from mcudeploy.report.bench_result import BenchResult
from mcudeploy.resources import boards_dir
from mcudeploy.support import check_graph
from mcudeploy.vectors import random_vectors
from models import MLPERF_TINY, mlperf_tiny_tflite

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "models" / "tiny_cnn.tflite"

# Multiply-accumulates of the MLPerf Tiny reference architectures, counted layer by layer (e.g.
# DS-CNN: 25x5x64 outputs of a 10x4 conv, four 3x3 depthwise + 64x64 pointwise blocks, FC 64x12).
MACS = {
    "ds_cnn_kws": 320_000 + 4 * (72_000 + 512_000) + 768,
    "mobilenet_v1_025_vww": 7_489_664, "resnet8_cifar10": 12_501_632, "fc_autoencoder_ad": 264_192,
}


BELOW_BOUND = {"mobilenet_v1_025_vww": 0.6, "resnet8_cifar10": 0.8}


@pytest.mark.parametrize("name", sorted(MLPERF_TINY))
def test_mlperf_tiny_models_are_reproducible_and_deployable(name: str, tmp_path: Path) -> None:
    data = mlperf_tiny_tflite(name, seed=0)
    assert data == mlperf_tiny_tflite(name, seed=0) != mlperf_tiny_tflite(name, seed=1)
    graph = parse_tflite(data, name)
    check_graph(graph)
    manifest = generate(graph, load_board("mps3-an547"), nnref_library(), tmp_path, source=name,
                        table=library_only())
    assert sum(layer.macs for layer in manifest.layers) == MACS[name]
    # Issue 19's goals below the tensor-granularity bound (overlaps and streamed stages, nnref's
    # calls: --library-calls; the generated kernels trade some of it for speed, README "Benchmarks").
    assert manifest.arena_bytes <= BELOW_BOUND.get(name, 1.0) * manifest.lower_bound


@pytest.mark.parametrize("name", ["ds_cnn_kws", "resnet8_cifar10"])
def test_mlperf_tiny_generated_c_is_bit_exact_on_the_host(name: str, tmp_path: Path) -> None:
    # ResNet-8's residual ADDs run in place: the host build of the same model.c proves it.
    graph = parse_tflite(mlperf_tiny_tflite(name), name)
    library = nnref_library()
    manifest = generate(graph, load_board("mps3-an547"), library, tmp_path, source=name)
    if name == "resnet8_cifar10":
        assert code_path(tmp_path).read_text().count(", in place over ") == 3
    model = HostModel(tmp_path, library, manifest)
    for vector in random_vectors(graph, 2, seed=4):
        values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
        out = model.invoke(vector)
        np.testing.assert_array_equal(out[0], values[graph.outputs[0]])
        # The activations are not saturated: the logits use the int8 range.
        assert np.ptp(values[graph.tensor(graph.ops[-2].outputs[0]).name]) > 16


def _small_board(tmp_path: Path, region: str, length: int) -> Path:
    """mps3-an547 with one region shrunk, and a stack of at most 2 KiB, as a board file of its own."""
    text = (boards_dir() / "mps3-an547.toml").read_text().replace("stack_bytes = 16384", "stack_bytes = 2048")
    start = text.index(f'name = "{region}"')
    at = text.index("length = ", start)
    end = text.index("\n", at)
    text = text[:at] + f"length = {length:#x}" + text[end:]
    path = tmp_path / "small-an547.toml"
    path.write_text(text.replace('name = "mps3-an547"', 'name = "small-an547"'))
    return path


def test_model_too_big_for_a_region_is_refused_before_building(tmp_path: Path, capsys) -> None:
    board = _small_board(tmp_path, "DTCM", 0x1000)
    text = board.read_text()  # the arena in DTCM only (the board's other choices: tests/test_placement.py)
    board.write_text(re.sub(r"\narena = .*\n", '\narena = "DTCM"\n', text))
    out = tmp_path / "out"
    status = main(["build", str(BUNDLED), "--board", str(board), "--out", str(out)])
    text = capsys.readouterr().err
    assert status == 2, text
    assert "region DTCM holds 4,096 bytes but needs" in " ".join(text.split())
    # stack (estimate: 2,048) + arena 1,440 + static data (estimate: 4,096 + 4 x 9 layers; the FC
    # kernel sums are precomputed, in flash)
    assert "3,524 bytes over" in " ".join(text.split())
    assert not out.exists() and "Traceback" not in text


def test_the_linker_still_refuses_what_the_estimate_let_through(tmp_path: Path) -> None:
    # Generated for the real board, linked for one whose DTCM holds less than the arena and the
    # runtime's data: the pre-build check is bypassed, and ld's region check is the backstop.
    library = nnref_library()
    generate(load_tflite(BUNDLED), load_board("mps3-an547"), library, tmp_path / "model", "tiny")
    small = load_board(_small_board(tmp_path, "DTCM", 0x800))
    with pytest.raises(BuildError, match=r"DTCM"):
        build_firmware(small, tmp_path / "model", tmp_path / "build", library)


_SMALLEST_ARENA = """
import sys
from tflite_micro.python.tflite_micro import runtime
data = open(sys.argv[1], "rb").read()
def allocates(size):
    try:
        runtime.Interpreter.from_bytes(data, arena_size=size)
        return True
    except RuntimeError:
        return False
low, high = 0, 1 << 20
while low < high:
    mid = (low + high) // 2
    low, high = (low, mid) if allocates(mid) else (mid + 1, high)
print(low)
"""


def test_tflm_arena_is_the_smallest_arena_it_can_allocate_in() -> None:
    found = measure_tflm_arena(BUNDLED.read_bytes())
    assert found.total == found.head + found.tail
    smallest = subprocess.run([sys.executable, "-c", _SMALLEST_ARENA, str(BUNDLED)],
                              capture_output=True, text=True, check=True).stdout
    assert int(smallest) == found.total
    # Both planners meet the liveness bound on the bundled model: TFLM's head is our arena.
    assert found.head == 1440


def _load_script():
    spec = importlib.util.spec_from_file_location("bench_script", ROOT / "scripts" / "bench_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.device
def test_bench_counts_every_layer_and_the_elf_arena_is_the_planned_one(tmp_path: Path,
                                                                        capsys) -> None:
    out = tmp_path / "bench"
    assert main(["bench", str(BUNDLED), "--out", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "l0_conv2d" in printed and "instr/MAC" in printed and "TFLM arena" in printed
    result = json.loads((out / "bench.json").read_text())
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    assert result["bit_exact"] is True
    # The arena in the ELF is the planned one, byte for byte.
    with open(out / "build" / "firmware.elf", "rb") as f:
        elf = ELFFile(f)
        arena = elf.get_section_by_name(".symtab").get_symbol_by_name("arena_storage")[0]
        assert arena["st_size"] == elf.get_section_by_name(".arena")["sh_size"]
    assert arena["st_size"] == manifest["arena_bytes"] == result["arena_bytes"] == result["ram"]["arena"]
    # Per layer: instructions add up to the total (each layer is timed to one SysTick tick).
    layers = result["layers"]
    assert [layer["macs"] for layer in layers] == [layer["macs"] for layer in manifest["layers"]]
    assert abs(sum(layer["instructions"] for layer in layers) - result["instructions"]) <= 32 * len(layers)
    assert result["instructions"] > 20_000 and result["macs"] == 16_576
    flash = result["flash"]
    assert flash["weights"] + flash["model_code"] + flash["runtime"] == flash["total"]
    assert flash["code"] == flash["total"] - flash["weights"] <= 8 * 1024  # the size goal
    assert result["tflm"]["total"] > result["model_ram"]
    # RAM: the arena, the stack as measured on the device (within its call-graph bound and the
    # stack the image reserves) and the static data.
    ram, stack = result["ram"], result["stack"]
    assert 0 < stack["handshake"] <= stack["measured"] == ram["stack"] <= stack["bound"] < stack["bytes"]
    assert stack["bytes"] == ram["stack_reserved"] < 1024 and stack["path"][0] == "Reset_Handler"
    assert ram["total"] == ram["arena"] + ram["stack"] + ram["static"]
    assert ram["reserved"] == ram["total"] - ram["stack"] + stack["bytes"]
    assert "stack" in printed and "measured" in printed
    # RESULTS.md renders the same figures with the goals marked, TFLM's on the device beside them.
    loaded = BenchResult.load(out / "bench.json")
    assert loaded.to_dict() == result
    script = _load_script()
    tflm_device = script.tflm_device_figures()
    text = script.render([loaded], [], [], ["mps3-an547"], tflm_device)
    row = next(line for line in text.splitlines() if line.startswith("| `tiny_cnn.tflite` | 16,576"))
    assert "1.00x ✓" in row and f"{flash['code']:,} ✓" in row
    tflm = tflm_device[("tiny_cnn", "mps3-an547")]
    assert tflm["ram"] == tflm["arena"] + tflm["stack"] + tflm["static"]
    memory = next(line for line in text.splitlines() if line.startswith("| `tiny_cnn.tflite` | mps3-an547 |"))
    assert memory.split(" | ")[5:10] == [f"{ram['stack']:,}", f"{stack['bytes']:,}", f"{ram['static']:,}",
                                         f"{ram['total']:,}", f"{flash['code']:,} ✓"]
    assert memory.endswith(f"| {tflm['ram']:,} | {tflm['code']:,} | {ram['total'] / tflm['ram']:.2f}x ✓ |")

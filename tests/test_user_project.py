"""Two exported models in a user's own firmware (tests/userproject): its own start-up code, a
CubeMX-style linker script that knows nothing of the models, CMake with a toolchain file, the
libraries added with add_subdirectory as `mcudeploy export` wrote them. On QEMU for the M4 and the
M55, both models' outputs for fixed inputs are bit-exact with TFLM and the host reference, the
float model's through its float helpers, with the default lowering (the generated kernels, their
headers shipped in the folders); the arenas are in .bss, never loaded from flash.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cases import build_case
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from tools import required_tool

from mcudeploy.arith import round_half_away
from mcudeploy.boards import load_board
from mcudeploy.cli import main
from mcudeploy.device.runners.qemu import QemuRunner
from mcudeploy.frontends.tflite import parse_tflite
from mcudeploy.reference import run_graph
from mcudeploy.tflm_process import TflmProcess
from mcudeploy.toolchain import cpu_flags

ROOT = Path(__file__).resolve().parent.parent
PROJECT = Path(__file__).parent / "userproject"
CNN = ROOT / "models" / "tiny_cnn.tflite"
ARENA_BYTES = 1 << 20  # TFLM's
RAM = 0x20000000  # where the linker scripts' RAM starts


def _cnn_input() -> np.ndarray:
    """main.c's image: ((i * 37 + 11) % 256) / 4 - 103."""
    i = np.arange(144)
    return (((i * 37 + 11) % 256) // 4 - 103).astype(np.int8).reshape(1, 12, 12, 1)


def _mean_net_input() -> np.ndarray:
    """main.c's samples: float((i * 29 + 7) % 61 - 30) / 17 in single precision."""
    i = np.arange(2 * 7 * 5 * 3)
    return (((i * 29 + 7) % 61 - 30).astype(np.float32) / np.float32(17)).reshape(2, 7, 5, 3)


def _printed(console: str, label: str) -> list[int]:
    """The numbers main.c printed on the line `label: ...` (hexadecimal for the bits of floats)."""
    match = re.search(rf"^{re.escape(label)}:((?: -?[0-9a-f]+)*)$", console, re.MULTILINE)
    assert match, f"no line {label!r} in {console!r}"
    return [int(x, 16 if label.endswith("bits") else 10) for x in match.group(1).split()]


def _expected(cnn_tflite: bytes, mean_tflite: bytes) -> dict[str, list[int]]:
    """Each printed line as TFLM computes it, checked against the host reference first."""
    image, samples = _cnn_input(), _mean_net_input()
    with TflmProcess(cnn_tflite, ARENA_BYTES) as tflm:
        (scores,) = tflm.invoke([image], 1)
    with TflmProcess(mean_tflite, ARENA_BYTES) as tflm:
        features, pooled = tflm.invoke([samples], 2)
    assert features.dtype == np.float32 and pooled.dtype == np.int8

    cnn = parse_tflite(cnn_tflite, "cnn")
    assert np.array_equal(run_graph(cnn, {cnn.inputs[0]: image})[cnn.outputs[0]], scores)
    mean = parse_tflite(mean_tflite, "mean_net")  # the int8 body: QUANTIZE and DEQUANTIZE on the host
    x = mean.tensor(mean.inputs[0])
    q = np.clip(round_half_away(samples.astype(np.float64) / x.scale) + x.zero_point, -128, 127)
    values = run_graph(mean, {mean.inputs[0]: q.astype(np.int8)})
    y = mean.tensor(mean.outputs[0])
    dequantized = (np.float32(y.scale) * (values[mean.outputs[0]].astype(np.float32) - y.zero_point))
    assert np.array_equal(dequantized.view(np.uint32), features.view(np.uint32))
    assert np.array_equal(values[mean.outputs[1]], pooled)

    return {"cnn out0": scores.reshape(-1).tolist(), "cnn out0 (own arena)": scores.reshape(-1).tolist(),
            "mean_net out0 bits": features.reshape(-1).view(np.uint32).tolist(),
            "mean_net out1": pooled.reshape(-1).tolist()}


def _build(cmake: str, board_name: str, cnn_dir: Path, mean_dir: Path, build: Path) -> Path:
    """The user's firmware built with CMake under its toolchain file."""
    flags = " ".join(cpu_flags(load_board(board_name)))
    for command in ([cmake, "-S", str(PROJECT), "-B", str(build), "-G", "Unix Makefiles",
                     f"-DCMAKE_TOOLCHAIN_FILE={PROJECT / 'arm-none-eabi.cmake'}", f"-DCPU_FLAGS={flags}",
                     f"-DLINKER_SCRIPT={PROJECT / f'{board_name}.ld'}", f"-DCNN_DIR={cnn_dir}",
                     f"-DMEAN_NET_DIR={mean_dir}", "-DCMAKE_BUILD_TYPE=MinSizeRel"],
                    [cmake, "--build", str(build), "-j2"]):
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
    return build / "firmware.elf"


def _symbols(image: ELFFile, test) -> list:
    return [s for s in image.get_section_by_name(".symtab").iter_symbols() if test(s.name)]


def _placement(elf: Path, arena_sizes: list[int]) -> dict[str, int]:
    """Every model's arena (the static `arena_storage` of NAME.c, told apart by its size) is in
    .bss, a section without contents in the file, and no loaded segment holds a byte of it; every
    constant array (`..._weights`, a generated kernel's `..._constants`) is in .rodata, in FLASH.
    Returns the firmware's flash (loaded bytes) and RAM (allocated bytes in RAM, at 0x20000000 on
    both boards)."""
    with open(elf, "rb") as f:
        image = ELFFile(f)
        arenas = _symbols(image, lambda name: name == "arena_storage")
        assert sorted(s["st_size"] for s in arenas) == sorted(arena_sizes), arenas
        loads = [seg for seg in image.iter_segments() if seg["p_type"] == "PT_LOAD"]
        for symbol in arenas:
            section = image.get_section(symbol["st_shndx"])
            assert section.name == ".bss" and section["sh_type"] == "SHT_NOBITS", section.name
            start, end = symbol["st_value"], symbol["st_value"] + symbol["st_size"]
            for seg in loads:
                loaded = range(seg["p_vaddr"], seg["p_vaddr"] + seg["p_filesz"])
                assert end <= loaded.start or start >= loaded.stop, f"arena {start:#x} is loaded"
        weights = _symbols(image, lambda name: name.endswith(("_weights", "_constants")))
        assert weights and {image.get_section(s["st_shndx"]).name for s in weights} == {".rodata"}
        assert image.get_section_by_name(".rodata")["sh_addr"] < RAM
        return {"flash": sum(seg["p_filesz"] for seg in loads),
                "ram": sum(s["sh_size"] for s in image.iter_sections()
                           if s["sh_flags"] & SH_FLAGS.SHF_ALLOC and s["sh_addr"] >= RAM)}


@pytest.mark.device
@pytest.mark.parametrize("board_name", ["mps2-an386", "mps3-an547"])
def test_two_exported_models_in_a_users_firmware(board_name: str, tmp_path: Path) -> None:
    cmake = required_tool("cmake", "cmake")
    _, mean_tflite = build_case("float_io_mean")
    mean_path = tmp_path / "float_io_mean.tflite"
    mean_path.write_bytes(mean_tflite)
    folders = {"cnn": tmp_path / "lib" / "cnn", "mean_net": tmp_path / "lib" / "mean_net"}
    for name, model in (("cnn", CNN), ("mean_net", mean_path)):
        assert main(["export", str(model), "--board", board_name, "--out", str(folders[name]),
                     "--name", name, "-q"]) == 0
    # The default lowering: cnn's convolutions, depthwise, ADD and fully connected layers are
    # generated kernels, their headers shipped beside cnn.c.
    assert "lowered as mcd_" in (folders["cnn"] / "cnn.c").read_text()
    assert (folders["cnn"] / "mcdk.h").is_file()

    elf = _build(cmake, board_name, folders["cnn"], folders["mean_net"], tmp_path / "build")
    command = QemuRunner(load_board(board_name), elf).command("null")
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    console = result.stdout + result.stderr
    assert result.returncode == 0, console

    expected = _expected(CNN.read_bytes(), mean_tflite)
    for label, values in expected.items():
        assert _printed(console, label) == values, label

    arenas = [json.loads((f / "manifest.json").read_text())["arena_bytes"] for f in folders.values()]
    sizes = _placement(elf, arenas)
    print(f"{board_name}: user firmware with two models: flash {sizes['flash']} B, RAM {sizes['ram']} B")

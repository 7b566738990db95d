"""`mcudeploy export`: the library's name, the folder's files (what CMake, Zephyr and PlatformIO
read is there and names real files that compile; the generated kernels' headers; the NN sources'
own flags in both CMake files), the API on the host, the NAME.c that `run` verifies being the one
exported, and .hex/.bin from `build`. A user's own firmware with two exported
models runs on QEMU in tests/test_user_project.py. Zephyr and PlatformIO cannot run here (no
network for their SDKs and platforms): their files are checked for structure as each tool reads
them."""

from __future__ import annotations

import ctypes
import hashlib
import json
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from cases import build_case
from nnpack import make_pack
from tools import required_tool

from mcudeploy import ir
from mcudeploy.arith import round_half_away
from mcudeploy.boards import load_board
from mcudeploy.cli import main
from mcudeploy.codegen.cname import check_name, name_from_file
from mcudeploy.errors import InputError
from mcudeploy.export_tflite import graph_to_tflite
from mcudeploy.frontends.tflite import load_tflite, parse_tflite
from mcudeploy.nnlib import host_compile, nnref_library
from mcudeploy.reference import run_graph
from mcudeploy.resources import firmware_dir
from mcudeploy.tflm_process import TflmProcess
from mcudeploy.toolchain import TOOLCHAIN_PREFIX, cpu_flags, find_compiler

ROOT = Path(__file__).resolve().parent.parent
CNN = ROOT / "models" / "tiny_cnn.tflite"
S16_FC = ROOT / "tests" / "data" / "s16" / "fc_relu_b3.tflite"  # TensorFlow's 16x8 converter's
# What zephyr/module.yml may hold (Zephyr's scripts/zephyr_module.py schema, its build section).
ZEPHYR_BUILD_KEYS = {"cmake", "kconfig", "cmake-ext", "kconfig-ext", "sysbuild-cmake", "sysbuild-kconfig",
                     "sysbuild-cmake-ext", "sysbuild-kconfig-ext", "depends", "settings"}
# Zephyr's CMake functions that a module's CMakeLists.txt calls, recording what they are given.
ZEPHYR_STUBS = """\
macro(zephyr_library_named name)
  message("library ${name}")
endmacro()
function(zephyr_library_sources)
  foreach(source IN LISTS ARGN)
    message("source ${source}")
  endforeach()
endfunction()
function(zephyr_include_directories)
endfunction()
function(zephyr_library_include_directories)
endfunction()
function(zephyr_library_compile_options)
endfunction()
"""


# ---- names ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "why"), [
    ("int", "is a C keyword"), ("9lives", "is not a C identifier"), ("a-b", "is not a C identifier"),
    ("_x", "is not a C identifier"), ("x" * 33, "is longer than 32 characters"),
    ("stdint", "is the name of a C standard header (stdint.h)"), ("arm_net", "starts with arm_ or mcd"),
    ("mcd_model", "starts with arm_ or mcd"), ("l3_conv2d", "has the form of the names mcudeploy gives"),
    ("state0", "has the form of the names mcudeploy gives"), ("é", "is not a C identifier"),
])
def test_names_that_cannot_prefix_a_library_are_refused(name: str, why: str) -> None:
    with pytest.raises(InputError, match=re.escape(f"--name {name!r} {why}")):
        check_name(name)


def test_default_names_are_file_names_made_identifiers() -> None:
    assert [name_from_file(s) for s in ("tiny_cnn", "kws-v2.int8", "int", "stdint", "3d", "mcd", "l3",
                                        "$(rm -rf x)", "ééé", "a" * 40)] == [
        "tiny_cnn", "kws_v2_int8", "int_model", "stdint_model", "model_3d", "model_mcd", "model_l3",
        "rm__rf_x", "model", "a" * 32]
    assert check_name("Kws") == "Kws"


def test_a_bad_name_is_refused_in_one_line_and_nothing_is_written(tmp_path: Path, capsys) -> None:
    out = tmp_path / "lib"
    assert main(["export", str(CNN), "--out", str(out), "--name", "int"]) == 2
    assert capsys.readouterr().err.strip() == "error: --name 'int' is a C keyword"
    assert not out.exists()


# ---- the folder -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny_cnn exported for the M4 as `cnn`."""
    out = tmp_path_factory.mktemp("export") / "cnn"
    assert main(["export", str(CNN), "--board", "mps2-an386", "--out", str(out), "--name", "cnn", "-q"]) == 0
    return out


def _compiles(folder: Path, sources: list[Path], include_dirs: list[Path], board: str = "mps2-an386",
              output: Path = Path("/dev/null")) -> None:
    """Each source compiles for the board's CPU with the include folders, as the tool would."""
    flags = [*cpu_flags(load_board(board)), "-O2", "-Wall", "-Werror", *(f"-I{d}" for d in include_dirs)]
    for source in sources:
        result = subprocess.run([str(find_compiler()), *flags, "-c", str(source), "-o", str(output)],
                                capture_output=True, text=True, cwd=folder)
        assert result.returncode == 0, result.stderr


def test_the_folder_holds_the_library_and_the_nn_sources_it_calls(folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    code = (folder / "cnn.c").read_bytes()
    assert manifest["name"] == "cnn" and manifest["files"]["cnn.c"] == hashlib.sha256(code).hexdigest()
    assert manifest["inputs"][0]["shape"] == [1, 12, 12, 1] and manifest["arena_bytes"] == 1440
    nn = manifest["nn_library"]
    assert nn["vendored"] and nn["root"] == "nn" and nn["include_dirs"] == ["Include"]
    copied = sorted(p.relative_to(folder / "nn").as_posix() for p in (folder / "nn").rglob("*.c"))
    assert copied == sorted(nn["sources"])
    assert "Source/PoolingFunctions/arm_max_pool_s8.c" in copied
    assert len(copied) < 20  # only what the model calls, of nnref's 60 files
    # The layers lowered as generated kernels: their headers beside cnn.c, as mcudeploy has them.
    assert '#include "mcdk.h"' in code.decode() and "lowered as mcd_dsp" in code.decode()
    for header in ("mcdk.h", "mcdk_mve_portable.h"):
        shipped = (folder / header).read_bytes()
        assert shipped == (firmware_dir() / "include" / header).read_bytes()
        assert manifest["files"][header] == hashlib.sha256(shipped).hexdigest()
    header = (folder / "cnn.h").read_text()
    for line in ("#define CNN_INPUT_COUNT 1", "#define CNN_OUTPUT_COUNT 1", "#define CNN_INPUT0_BYTES 144",
                 "#define CNN_INPUT0_SCALE 0.011339101f", "#define CNN_INPUT0_ZERO_POINT (-71)",
                 "#define CNN_INPUT0_SHAPE {1, 12, 12, 1}", "#define CNN_ARENA_BYTES 1440",
                 "int32_t cnn_init(void);", "void cnn_reset(void);",
                 "int32_t cnn_invoke(const int8_t *const inputs[], int8_t *const outputs[]);",
                 "int32_t cnn_set_arena(void *buffer, size_t bytes);"):
        assert line in header, line
    # Every macro of the library is prefixed, and every global symbol of its object.
    macros = re.findall(r"^#\s*define\s+(\w+)", (folder / "cnn.c").read_text() + header, re.M)
    assert macros and all(m.startswith("CNN_") for m in macros), macros
    obj = folder.parent / "cnn.o"
    _compiles(folder, [folder / "cnn.c"], [folder / "nn" / "Include"], output=obj)
    nm = find_compiler().with_name(f"{TOOLCHAIN_PREFIX}nm")
    listed = subprocess.run([str(nm), "-g", "--defined-only", str(obj)], capture_output=True, text=True,
                            check=True)
    symbols = [line.split()[-1] for line in listed.stdout.splitlines()]
    assert "cnn_invoke" in symbols and all(s.startswith("cnn_") for s in symbols), symbols


def test_cmake_adds_every_source_it_names(folder: Path) -> None:
    text = (folder / "CMakeLists.txt").read_text()
    assert "add_library(cnn STATIC" in text
    assert 'target_include_directories(cnn PUBLIC "${CMAKE_CURRENT_SOURCE_DIR}")' in text
    named = [folder / "nn" / p for p in re.findall(r'"\$\{CNN_NN_ROOT\}/([^"]+)"', text)]
    assert named and all(p.exists() for p in named)


def test_zephyr_module_is_what_zephyr_reads(folder: Path) -> None:
    """As scripts/zephyr_module.py reads it: module.yml's build section, the CMake folder holding a
    CMakeLists.txt, the Kconfig file; the Kconfig symbol the CMake file tests; every file it names,
    which compile with its include folders."""
    module = yaml.safe_load((folder / "zephyr" / "module.yml").read_text())
    assert set(module) <= {"name", "build", "tests", "samples", "boards", "blobs"} and module["name"] == "cnn"
    build = module["build"]
    assert set(build) <= ZEPHYR_BUILD_KEYS
    cmake = (folder / build["cmake"] / "CMakeLists.txt").read_text()
    kconfig = (folder / build["kconfig"]).read_text()
    (symbol,) = re.findall(r"^if\(CONFIG_(\w+)\)$", cmake, re.M)
    assert re.search(rf"^config {symbol}\n\tbool ", kconfig, re.M)
    variables = {"${CNN_DIR}": folder, "${CNN_NN_ROOT}": folder / "nn"}
    quoted = re.findall(r'"(\$\{(?:CNN_DIR|CNN_NN_ROOT)\}[^"]*)"', cmake)
    paths = [re.sub(r"\$\{\w+\}", lambda m: str(variables[m.group(0)]), p) for p in quoted]
    assert paths and all(Path(p).exists() for p in paths), paths
    sources = [Path(p) for p in paths if p.endswith(".c")]
    assert Path(folder / "cnn.c") in [s.resolve() for s in sources]
    _compiles(folder, sources, [Path(p) for p in paths if Path(p).is_dir()])


def test_two_zephyr_modules_compile_each_nn_source_once(tmp_path: Path) -> None:
    """Zephyr links its libraries whole (--whole-archive), so an NN function compiled by two modules
    would be defined twice. Both modules' zephyr/CMakeLists.txt, run by CMake as Zephyr includes
    them, compile each model's code and every NN source either model calls, once. (Both through the
    library's calls, --library-calls: with the generated kernels they share no NN source.)"""
    cmake = required_tool("cmake", "cmake")
    _, mean_tflite = build_case("float_io_mean")
    model, folder, other = tmp_path / "mean.tflite", tmp_path / "cnn", tmp_path / "mean_net"
    model.write_bytes(mean_tflite)
    for source, out, name in ((CNN, folder, "cnn"), (model, other, "mean_net")):
        assert main(["export", str(source), "--board", "mps2-an386", "--out", str(out), "--name", name,
                     "--library-calls", "-q"]) == 0
    script = tmp_path / "zephyr.cmake"
    script.write_text(ZEPHYR_STUBS + "set(CONFIG_MCUDEPLOY_CNN y)\nset(CONFIG_MCUDEPLOY_MEAN_NET y)\n"
                      f'include("{folder}/zephyr/CMakeLists.txt")\ninclude("{other}/zephyr/CMakeLists.txt")\n')
    result = subprocess.run([cmake, "-P", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert [line for line in lines if line.startswith("library ")] == ["library mcudeploy_cnn",
                                                                       "library mcudeploy_mean_net"]
    compiled = [Path(line.removeprefix("source ")).resolve() for line in lines if line.startswith("source ")]
    assert folder / "cnn.c" in compiled and other / "mean_net.c" in compiled
    called = {f: set(json.loads((f / "manifest.json").read_text())["nn_library"]["sources"])
              for f in (folder, other)}
    assert called[other] - called[folder], "the second model calls no NN source the first does not"
    assert called[other] & called[folder], "the models share no NN source"
    nn = [p for p in compiled if p.suffix == ".c" and p.name not in ("cnn.c", "mean_net.c")]
    assert sorted(p.as_posix().split("/nn/", 1)[1] for p in nn) == sorted(called[folder] | called[other])


def test_platformio_library_is_what_platformio_reads(folder: Path) -> None:
    """library.json: its name, the exported header in includeDir, the source filter naming real
    files, which compile with its -I flags."""
    library = json.loads((folder / "library.json").read_text())
    assert library["name"] == "cnn" and library["frameworks"] == "*" and library["platforms"] == "*"
    build = library["build"]
    assert (folder / build["includeDir"] / "cnn.h").is_file()
    src = folder / build["srcDir"]
    assert build["srcFilter"][0] == "-<*>"
    sources = [src / f[2:-1] for f in build["srcFilter"][1:]]
    assert all(f.startswith("+<") for f in build["srcFilter"][1:]) and all(s.is_file() for s in sources)
    includes = [folder / f.removeprefix("-I ") for f in build["flags"] if f.startswith("-I ")]
    assert includes and all(d.is_dir() for d in includes)
    _compiles(folder, sources, [*includes, folder / build["includeDir"]])


def test_compiled_for_another_cpu_class_the_library_stops(tmp_path: Path) -> None:
    out = tmp_path / "m55"
    assert main(["export", str(CNN), "--board", "mps3-an547", "--out", str(out), "--name", "cnn", "-q"]) == 0
    with pytest.raises(AssertionError, match=r"cnn\.c was generated for the mve CMSIS-NN path of mps3-an547"):
        _compiles(out, [out / "cnn.c"], [out / "nn" / "Include"], board="mps2-an386")


def test_a_pack_is_listed_not_copied(tmp_path: Path, capsys) -> None:
    pack = make_pack(tmp_path / "pack")
    out = tmp_path / "lib"
    assert main(["export", str(CNN), "--cmsis-nn", str(pack), "--board", "mps2-an386", "--out", str(out),
                 "-q"]) == 0
    assert not (out / "nn").exists()
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["CMakeLists.txt", "README.md", "library.json", "manifest.json", "mcdk.h",
                       "mcdk_mve_portable.h", "tiny_cnn.c", "tiny_cnn.h", "zephyr/CMakeLists.txt",
                       "zephyr/Kconfig", "zephyr/module.yml"]
    assert f": {len(written)} files, arena 1440 B" in capsys.readouterr().out
    nn = json.loads((out / "manifest.json").read_text())["nn_library"]
    assert not nn["vendored"] and Path(nn["root"]) == pack.resolve()
    assert all((pack / s).is_file() for s in nn["sources"]) and nn["include_dirs"] == ["Include"]
    cmake = (out / "CMakeLists.txt").read_text()
    assert f'set(TINY_CNN_NN_ROOT "{pack.resolve()}" CACHE PATH' in cmake
    assert cmake.count('"${TINY_CNN_NN_ROOT}/Source/') == len(nn["sources"])


def test_library_calls_ship_no_kernel_headers_and_the_nn_sources_flags_reach_cmake(tmp_path: Path) -> None:
    """With --library-calls no layer uses a generated kernel: no mcdk header is written or included.
    The depthwise NN sources mcudeploy compiles -fno-inline-functions-called-once (build.KERNEL_FLAGS)
    get the flag in both CMake files; CMake, building the library for the host, passes it to those
    sources' compiler command lines and to no other."""
    cmake = required_tool("cmake", "cmake")
    out = tmp_path / "lib"
    assert main(["export", str(CNN), "--board", "mps2-an386", "--out", str(out), "--name", "cnn",
                 "--library-calls", "-q"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["files"]) == ["cnn.c", "cnn.h"] and not list(out.glob("mcdk*"))
    assert "mcdk" not in (out / "cnn.c").read_text()
    flags = manifest["nn_library"]["flags"]
    assert flags and all("depthwise" in source for source in flags)
    assert all(f == ["-fno-inline-functions-called-once"] for f in flags.values())
    assert set(flags) < set(manifest["nn_library"]["sources"])
    for cmake_file in (out / "CMakeLists.txt", out / "zephyr" / "CMakeLists.txt"):
        text = cmake_file.read_text()
        for source in flags:
            line = (f'set_property(SOURCE "${{CNN_NN_ROOT}}/{source}" APPEND PROPERTY COMPILE_OPTIONS '
                    '"-fno-inline-functions-called-once")')
            assert line in text, (cmake_file, source)
    build = tmp_path / "build"
    for command in ([cmake, "-S", str(out), "-B", str(build), "-G", "Unix Makefiles"],
                    [cmake, "--build", str(build), "-j2", "--", "VERBOSE=1"]):
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
    compiles = [line for line in result.stdout.splitlines()
                if " -c " in line and line.rstrip().endswith(".c")]
    flagged = {line.rsplit("/nn/", 1)[-1] for line in compiles if "-fno-inline-functions-called-once" in line}
    assert len(compiles) == len(manifest["nn_library"]["sources"]) + 1 and flagged == set(flags)


# ---- the API on the host --------------------------------------------------------------------------
def test_invoke_set_arena_and_steps_on_the_host(folder: Path, tmp_path: Path) -> None:
    """cnn.c with its own arena left out (CNN_USER_ARENA): no arena, then a refused one, then a
    good one; invoke's outputs are the host reference's, and so are those of the steps."""
    library = nnref_library()
    shared = host_compile(library, extra_sources=[folder / "cnn.c"], purpose="test",
                          cflags=["-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-DCNN_USER_ARENA"])
    dll = ctypes.CDLL(str(shared))
    dll.cnn_input.restype = dll.cnn_output.restype = ctypes.c_void_p
    graph = parse_tflite(CNN.read_bytes(), "cnn")
    image = np.random.default_rng(3).integers(-128, 128, (1, 12, 12, 1)).astype(np.int8)
    expected = run_graph(graph, {graph.inputs[0]: image})[graph.outputs[0]].reshape(-1)
    inputs = (ctypes.c_void_p * 1)(image.ctypes.data)
    scores = np.zeros(10, np.int8)
    outputs = (ctypes.c_void_p * 1)(scores.ctypes.data)
    error_arena = -65536
    assert dll.cnn_init() == 0
    assert dll.cnn_invoke(inputs, outputs) == error_arena and dll.cnn_input(0) is None
    arena = (ctypes.c_int8 * (1440 + 32))()
    base = ctypes.addressof(arena)
    aligned = base + (-base % 16)
    assert dll.cnn_set_arena(ctypes.c_void_p(aligned + 1), 1440) == error_arena
    assert dll.cnn_set_arena(ctypes.c_void_p(aligned), 1439) == error_arena
    assert dll.cnn_set_arena(ctypes.c_void_p(aligned), 1440) == 0
    assert dll.cnn_invoke(inputs, outputs) == 0 and np.array_equal(scores, expected)
    ctypes.memmove(dll.cnn_input(0), image.ctypes.data, 144)
    assert [dll.cnn_invoke_layer(i) for i in range(9)] == [0] * 9 and dll.cnn_invoke_layer(9) == -65537
    assert ctypes.string_at(dll.cnn_output(0), 10) == expected.tobytes()


# ---- what run verifies is what export ships ----------------------------------------------------------
@pytest.mark.device
def test_run_verifies_the_exported_code(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["run", str(CNN), "--board", "mps2-an386", "--name", "cnn", "--out", str(out),
                 "--vectors", "2", "-q"]) == 0
    report = json.loads((out / "report.json").read_text())
    shipped = hashlib.sha256((folder / "cnn.c").read_bytes()).hexdigest()
    assert report["verdict"] == "pass" and report["model_info"]["code_sha256"] == shipped
    assert (out / "model" / "cnn.c").read_bytes() == (folder / "cnn.c").read_bytes()
    assert (out / "model" / "cnn.h").read_bytes() == (folder / "cnn.h").read_bytes()
    # The firmware is built on the library's API: the binding uses cnn_* and nothing of cnn.c's own.
    binding = (out / "model" / "mcd_harness.c").read_text()
    used = set(re.findall(r"\bcnn_\w+", binding))
    assert used == {"cnn_hash", "cnn_init", "cnn_reset", "cnn_invoke_layer", "cnn_input", "cnn_output",
                    "cnn_tensor"}
    # build writes .hex and, the image being one block on the M4's boards, .bin.
    elf = out / "build" / "firmware.elf"
    hex_text = elf.with_suffix(".hex").read_text()
    assert hex_text.startswith(":") and hex_text.rstrip().endswith(":00000001FF")
    binary = elf.with_suffix(".bin").read_bytes()
    vectors = binary[:8]
    assert int.from_bytes(vectors[4:8], "little") & 1 == 1  # the reset vector, a Thumb address


@pytest.mark.device
def test_an_image_in_two_regions_gets_no_bin(tmp_path: Path) -> None:
    out = tmp_path / "b"
    assert main(["build", str(CNN), "--board", "mps3-an547", "--out", str(out), "-q"]) == 0
    elf = out / "build" / "firmware.elf"
    assert elf.with_suffix(".hex").is_file() and not elf.with_suffix(".bin").exists()


# ---- a 16x8 model: int16 inputs and outputs ---------------------------------------------------------
def _float_io_16x8() -> bytes:
    """TensorFlow's 16x8 fully connected layer (int16 in and out) with float I/O wrappers: a QUANTIZE
    of a float input to int16 and a DEQUANTIZE of the int16 output to float."""
    g = load_tflite(S16_FC)
    (x,), (y,) = g.inputs, g.outputs
    tensors = dict(g.tensors) | {"x_float": replace(g.tensor(x), name="x_float", dtype="float32", quant=None),
                                 "y_float": replace(g.tensor(y), name="y_float", dtype="float32", quant=None)}
    ops = (ir.Op("quantize_in", ir.Quantize(), ("x_float",), (x,), "quantize_in"), *g.ops,
           ir.Op("dequantize_out", ir.Quantize(), (y,), ("y_float",), "dequantize_out"))
    return graph_to_tflite(ir.Graph("fc16", tensors, ops, ("x_float",), ("y_float",)))


@pytest.fixture(scope="module")
def s16_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the float-I/O 16x8 .tflite file, its export for the M4 as `fc16`)."""
    folder = tmp_path_factory.mktemp("s16")
    model = folder / "fc16.tflite"
    model.write_bytes(_float_io_16x8())
    out = folder / "lib"
    assert main(["export", str(model), "--board", "mps2-an386", "--out", str(out), "-q"]) == 0
    return model, out


def test_a_16x8_model_exports_with_int16_io_and_float_helpers(s16_model: tuple[Path, Path]) -> None:
    """The header types the int16 tensors; on the host, invoke on int16 buffers gives the host
    reference's outputs, and invoke_float (the int16 QUANTIZE and DEQUANTIZE in fc16.c) gives TFLM's
    float outputs bit for bit, saturating inputs beyond int16."""
    model, folder = s16_model
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [io["dtype"] for io in manifest["inputs"] + manifest["outputs"]] == ["int16", "int16"]
    assert "arm_convolve_wrapper_s16(" in (folder / "fc16.c").read_text()  # per channel: a 1x1 convolution
    assert "Source/ConvolutionFunctions/arm_convolve_s16.c" in manifest["nn_library"]["sources"]
    header = (folder / "fc16.h").read_text()
    for line in ("#define FC16_INPUT0_BYTES 60", "#define FC16_INPUT0_ELEMENTS 30",
                 "#define FC16_INPUT0_TYPE int16_t", "#define FC16_OUTPUT0_BYTES 42",
                 "#define FC16_OUTPUT0_ELEMENTS 21", "#define FC16_OUTPUT0_TYPE int16_t",
                 "#define FC16_INPUT0_ZERO_POINT (0)",
                 "void fc16_quantize_input0(const float *values, int16_t *quantized);",
                 "void fc16_dequantize_output0(const int16_t *quantized, float *values);",
                 "int32_t fc16_invoke_float(const float *const inputs[], float *const outputs[]);"):
        assert line in header, line
    _compiles(folder, [folder / "fc16.c"], [folder / "nn" / "Include"])

    dll = ctypes.CDLL(str(host_compile(nnref_library(), extra_sources=[folder / "fc16.c"], purpose="test",
                                       cflags=["-std=c99", "-O1", "-Wall", "-Wextra", "-Werror"])))
    assert dll.fc16_init() == 0
    graph = parse_tflite(model.read_bytes(), "fc16")
    x, y = graph.tensor(graph.inputs[0]), graph.tensor(graph.outputs[0])
    rng = np.random.default_rng(5)
    vector = rng.integers(-32768, 32768, x.shape).astype(np.int16)
    expected = run_graph(graph, {x.name: vector})[y.name]
    got = np.zeros(y.shape, np.int16)
    inputs, outputs = (ctypes.c_void_p * 1)(vector.ctypes.data), (ctypes.c_void_p * 1)(got.ctypes.data)
    assert dll.fc16_invoke(inputs, outputs) == 0
    assert np.array_equal(got, expected)

    samples = (rng.standard_normal(x.shape) * 20000 * x.scale).astype(np.float32)
    samples.flat[:3] = [np.float32(40000 * x.scale), np.float32(-40000 * x.scale), np.float32(2.5 * x.scale)]
    with TflmProcess(model.read_bytes(), 1 << 16) as tflm:
        (want,) = tflm.invoke([samples], 1)
    quantized = np.clip(round_half_away(samples.astype(np.float64) / x.scale), -32768, 32767)
    assert quantized.min() == -32768 and quantized.max() == 32767  # some inputs saturate
    values = np.zeros(y.shape, np.float32)
    assert dll.fc16_invoke_float((ctypes.c_void_p * 1)(samples.ctypes.data),
                                 (ctypes.c_void_p * 1)(values.ctypes.data)) == 0
    assert want.dtype == np.float32 and np.array_equal(values.view(np.uint32), want.view(np.uint32))
    reference = run_graph(graph, {x.name: quantized.astype(np.int16)})[y.name]
    assert np.array_equal(values, np.float32(y.scale) * reference.astype(np.float32))


@pytest.mark.device
def test_run_verifies_the_exported_16x8_code(s16_model: tuple[Path, Path], tmp_path: Path) -> None:
    model, folder = s16_model
    out = tmp_path / "run"
    assert main(["run", str(model), "--board", "mps2-an386", "--out", str(out), "--vectors", "2", "-q"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "pass" and report["bit_exact_vectors"] == 2
    assert report["oracles"] == ["host-reference", "tflm"]
    assert report["model_info"]["code_sha256"] == hashlib.sha256((folder / "fc16.c").read_bytes()).hexdigest()


def test_export_takes_precision_and_refuses_it_for_a_tflite_file(tmp_path: Path, capsys) -> None:
    out = tmp_path / "lib"
    assert main(["export", str(S16_FC), "--precision", "int16", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {S16_FC}: an int8 TFLite file keeps its own quantization; --precision is for float models "
        "(ONNX, float TFLite)")
    assert not out.exists()

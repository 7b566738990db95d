"""scripts/tflm_device.py's own parts that run without a tflite-micro tree: the harness's stack
high-water mark and tick counter on QEMU, the code split read from the linker map, and the
CMSIS-NN pack view that mcudeploy reads."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest
import tflm_firmware

from mcudeploy.boards import load_board
from mcudeploy.packs import load_pack
from mcudeploy.toolchain import cpu_flags

ROOT = Path(__file__).resolve().parent.parent
_SPEC = importlib.util.spec_from_file_location("tflm_device", ROOT / "scripts" / "tflm_device.py")
tflm_device = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(tflm_device)

STACK_USE = 3000
FAULTS_FROM, ACCEPTED_FROM = 4000, 5000
LOOPS = 20_000

# A stand-in for TFLM's library: one TFLM-like and one CMSIS-NN-like member, as TFLM's ar names them.
KERNEL_C = "int arm_scale_s8(int x);\nint kernel_eval(int x) { return arm_scale_s8(x) + 1; }\n"
ARM_C = "int arm_scale_s8(int x) { return 3 * x; }\n"
MAIN_C = f"""
#include "harness.h"
int kernel_eval(int x);

__attribute__((noinline)) static unsigned use_stack(void) {{
    volatile unsigned char buffer[{STACK_USE}];
    for (unsigned i = 0; i < sizeof(buffer); i++) buffer[i] = (unsigned char)i;
    return buffer[7];
}}

__attribute__((noinline)) static void spin(unsigned n) {{
    for (volatile unsigned i = 0; i < n; i++) {{
    }}
}}

static void put(const char *key, uint64_t value) {{
    harness_puts("tflm "); harness_puts(key); harness_puts(" "); harness_put_u64(value); harness_puts("\\n");
}}

/* With -append arena=N, the harness's arena try as TFLM would answer it: refused below
 * {FAULTS_FROM} bytes, a fault below {ACCEPTED_FROM}, accepted from there on. */
static int try_arena(uint32_t bytes) {{
    if (bytes >= {ACCEPTED_FROM}u) {{
        put("accepted", 1);
        harness_puts("tflm output 0 2a\\n");
    }} else if (bytes >= {FAULTS_FROM}u) {{
        __builtin_trap();
    }} else {{
        put("accepted", 0);
    }}
    harness_puts("tflm done\\n");
    return 0;
}}

int main(void) {{
    uint32_t arena = harness_arena_argument();
    if (arena != 0) return try_arena(arena);
    harness_ticks_init();
    harness_stack_paint(16);
    put("idle", harness_stack_peak());
    use_stack();
    put("used", harness_stack_peak());
    uint64_t t0 = harness_ticks();
    spin({LOOPS});
    uint64_t t1 = harness_ticks();
    spin(2 * {LOOPS});
    uint64_t t2 = harness_ticks();
    put("once", t1 - t0);
    put("twice", t2 - t1);
    put("kernel", (uint64_t)kernel_eval(2));
    harness_puts("tflm done\\n");
    return 0;
}}
"""


def _compile(source: Path, flags: list[str], out: Path) -> Path:
    subprocess.run(["arm-none-eabi-gcc", *flags, "-Os", "-ffunction-sections",
                    f"-I{tflm_firmware.HARNESS_DIR}", "-c", str(source), "-o", str(out)],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="module", params=["mps3-an547", "mps2-an386"])
def harness_elf(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """startup.c and a test main linked by the harness's linker script, with a two-member archive
    named as TFLM's library."""
    board = load_board(request.param)
    work = tmp_path_factory.mktemp(request.param)
    flags = list(cpu_flags(board))
    for name, text in (("harness.c", MAIN_C), ("kernel.c", KERNEL_C), ("arm_scale_s8.c", ARM_C)):
        (work / name).write_text(text)
    objects = [_compile(work / "harness.c", flags, work / "harness.o"),
               _compile(tflm_firmware.HARNESS_DIR / "startup.c", flags, work / "startup.o")]
    archive = work / "libtensorflow-microlite.a"
    subprocess.run(["arm-none-eabi-ar", "rcs", str(archive),
                    str(_compile(work / "kernel.c", flags, work / "kernel.o")),
                    str(_compile(work / "arm_scale_s8.c", flags, work / "arm_scale_s8.o"))], check=True)
    (work / "linker.ld").write_text(tflm_firmware.linker_script(board))
    elf = work / "harness.elf"
    subprocess.run(["arm-none-eabi-gcc", *flags, "-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections",
                    f"-Wl,-Map={elf.with_suffix('.map')}", "-T", str(work / "linker.ld"), "-o", str(elf),
                    *map(str, objects), str(archive)], check=True, capture_output=True)
    return board, elf


def test_stack_high_water_mark_and_ticks_on_qemu(harness_elf: tuple) -> None:
    board, elf = harness_elf
    values = tflm_firmware.run_harness(board, elf).values
    # From the top of the stack: the start-up's and main's frames, then the buffer.
    assert values["idle"] < 128
    assert STACK_USE < values["used"] <= STACK_USE + 128, values
    assert values["kernel"] == 7
    # SysTick under -icount: twice the loop, twice the ticks (to the tick and the call around it).
    assert abs(values["twice"] - 2 * values["once"]) <= 2, values


def test_smallest_arena_search_counts_a_fault_as_refused(harness_elf: tuple) -> None:
    board, elf = harness_elf
    found = tflm_firmware.smallest_arena(board, elf, 3000, 64 * 1024, [b"\x2a"])
    assert found.bytes == ACCEPTED_FROM and found.output_same
    assert all((size >= ACCEPTED_FROM) == (what == "accepted") for size, what in found.tries.items())
    faults = {size: what for size, what in found.tries.items() if size >= FAULTS_FROM}
    assert faults and all(what.startswith("HardFault (CFSR") and what.endswith(" in main")
                          for size, what in faults.items() if size < ACCEPTED_FROM), found.tries
    assert tflm_firmware.smallest_arena(board, elf, 3000, 64 * 1024, [b"\x2b"]).output_same is False


def test_code_split_from_the_map_adds_up_to_the_elf(harness_elf: tuple) -> None:
    _, elf = harness_elf
    figures = tflm_firmware.elf_figures(elf)
    split = figures.code_by_origin
    assert sum(split.values()) == figures.code, split
    assert split["tflm"] > 0 and split["cmsis_nn"] > 0 and split["harness"] > 0
    assert figures.sections[".stack"] == tflm_firmware.STACK_BYTES


def test_pack_view_drops_the_float_sources_tflm_leaves_out(tmp_path: Path) -> None:
    tree = tmp_path / "CMSIS-NN"
    files = ["Source/ConvolutionFunctions/arm_convolve_s8.c",
             "Source/ConvolutionFunctions/arm_convolve_f16.c",
             "Source/BasicMathFunctions/arm_elementwise_add_f32.c",
             "Source/NNSupportFunctions/arm_nntables_flt.c", "Source/NNSupportFunctions/arm_nntables.c"]
    for name in [*files, "Include/arm_nnfunctions.h", "LICENSE"]:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("/* */\n")
    entries = "\n".join(f'        <file category="source" name="{n}"/>' for n in files)
    (tree / "ARM.CMSIS-NN.pdsc").write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<package><releases><release version="0.0.0"/></releases><components>
    <component Cclass="CMSIS" Cgroup="NN Lib">
      <files>
        <file category="include" name="Include/"/>
{entries}
      </files>
    </component>
</components></package>
""")
    view, dropped = tflm_device.pack_view(tree, tmp_path / "view")
    assert dropped == 3
    library = load_pack(view)
    assert sorted(p.name for p in library.sources) == ["arm_convolve_s8.c", "arm_nntables.c"]
    assert (view / "Source" / "ConvolutionFunctions" / "arm_convolve_f16.c").is_file()  # only unlisted

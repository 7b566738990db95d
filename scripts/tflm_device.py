"""Measure TFLM on the device beside mcudeploy, with the same CMSIS-NN tree, on the same QEMU.

    python scripts/tflm_device.py --tflm-root DIR --cmsis-nn-root DIR [--third-party DIR]
        [--boards B ...] [--models M ...] [--out DIR] [--results DIR]

For each board's CPU, TFLM's own Makefile builds its `cortex_m_generic` library with
`OPTIMIZED_KERNEL_DIR=cmsis_nn` (release build; minutes, cached per CPU, TFLM commit and CMSIS-NN
contents), once the pinned third-party trees sit in its downloads/ directory: they are exported
from the git repositories in --third-party (nothing is downloaded). For each model and board, a
harness firmware of our own (benchmarks/tflm_harness/) runs one inference of the seeded input that
`mcudeploy bench` uses, and reports instructions (SysTick under `-icount shift=0`), start-up cost,
`arena_used_bytes()`, the smallest arena AllocateTensors accepts, the stack high-water mark and
the output, which must equal mcudeploy's host reference and the TFLM Python interpreter bit for
bit. Code and RAM come from the ELF and its map. Then `mcudeploy bench` measures the same model
and board with the same CMSIS-NN tree (and with nnref). Writes RESULTS/tflm_device.json and
RESULTS/TFLM_DEVICE.md (default RESULTS: benchmarks/).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import tflm_firmware  # noqa: E402
import tflm_lib  # noqa: E402

from mcudeploy import __version__  # noqa: E402
from mcudeploy.boards import load_board  # noqa: E402
from mcudeploy.errors import BoardError, MCUDeployError  # noqa: E402
from mcudeploy.model import import_model  # noqa: E402
from mcudeploy.resources import cache_dir  # noqa: E402
from mcudeploy.vectors import random_vectors  # noqa: E402
from mcudeploy.verify.expected import expected_outputs  # noqa: E402
from models import mlperf_tiny_tflite  # noqa: E402

MODELS = ("ds_cnn_kws", "mobilenet_v1_025_vww", "resnet8_cifar10", "fc_autoencoder_ad", "tiny_cnn")
BOARDS = ("mps3-an547", "mps2-an386")
BUNDLED = {"tiny_cnn": ROOT / "models" / "tiny_cnn.tflite"}
ARENA_BYTES = 256 * 1024  # the harness's arena, from which the smallest accepted size is bisected
# What TFLM's Makefile leaves out of CMSIS-NN with its defaults ARM_NN_ENABLE_F16=0, _F32=0.
_FLOAT_SOURCE = re.compile(r"(_f16|_f32|/arm_nntables_flt)\.c$")
_PDSC_FILE = re.compile(r'^\s*<file\b[^>]*\bname="([^"]+)"[^>]*/>\s*$')


def model_file(name: str, models_dir: Path) -> Path:
    """The model `name` as a .tflite file: bundled, or an MLPerf Tiny net written from its seed."""
    if name in BUNDLED:
        return BUNDLED[name]
    path = models_dir / f"{name}.tflite"
    models_dir.mkdir(parents=True, exist_ok=True)
    path.write_bytes(mlperf_tiny_tflite(name, seed=0))
    return path


def pack_view(cmsis_nn_root: Path, out: Path) -> tuple[Path, int]:
    """The CMSIS-NN tree as mcudeploy reads a pack, compiling what TFLM's Makefile compiles: its
    Include/ and Source/ (symlinks) and its .pdsc without the float sources TFLM leaves out. Returns
    the directory and how many files the .pdsc lost."""
    descriptions = sorted(cmsis_nn_root.glob("*.pdsc"))
    if len(descriptions) != 1:
        raise tflm_lib.TflmError(f"{cmsis_nn_root}: expected one .pdsc file, found {len(descriptions)}")
    out.mkdir(parents=True, exist_ok=True)
    for name in ("Include", "Source", "LICENSE"):
        link = out / name
        link.unlink(missing_ok=True)
        link.symlink_to((cmsis_nn_root / name).resolve())
    kept, dropped = [], 0
    for line in descriptions[0].read_text(encoding="utf-8").splitlines(keepends=True):
        match = _PDSC_FILE.match(line)
        if match and _FLOAT_SOURCE.search(match.group(1)):
            dropped += 1
            continue
        kept.append(line)
    (out / descriptions[0].name).write_text("".join(kept), encoding="utf-8")
    return out, dropped


def mcudeploy_bench(model: Path, board: str, out: Path, seed: int, cmsis_nn: Path | None) -> dict:
    """`mcudeploy bench` on QEMU: its bench.json (exit status 1, not bit-exact, is recorded there)."""
    command = [sys.executable, "-m", "mcudeploy", "bench", str(model), "--board", board, "--out", str(out),
               "--seed", str(seed), "--no-tflm", "-q"]
    if cmsis_nn is not None:
        command += ["--cmsis-nn", str(cmsis_nn)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode not in (0, 1) or not (out / "bench.json").is_file():
        last = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
        return {"error": last}
    return json.loads((out / "bench.json").read_text(encoding="utf-8"))


def _mcudeploy_figures(bench: dict) -> dict:
    if "error" in bench:
        return bench
    return {"library": bench["library"], "bit_exact": bench["bit_exact"],
            "instructions": bench["instructions"], "startup_instructions": bench.get("startup_instructions"),
            "arena": bench["arena_bytes"], "lower_bound": bench["lower_bound"], "ram": bench["ram"],
            "flash": bench["flash"]}


def bit_exact(outputs: list[bytes], expected: dict[str, list[list[np.ndarray]]]) -> dict[str, bool]:
    """For each oracle: whether every output equals the device's bytes."""
    return {oracle: len(values[0]) == len(outputs) and all(
        np.ascontiguousarray(v).tobytes() == o for v, o in zip(values[0], outputs, strict=False))
        for oracle, values in expected.items()}


def measure_tflm(path: Path, board_name: str, library: tflm_lib.Library, methods: dict[str, str],
                 out: Path, seed: int, arena_bytes: int, int8_kernels: dict[str, str] | None) -> dict:
    """The harness for one model on one board (with TFLM's int8-only kernel registrations where
    `int8_kernels` offers them): build, run, check, measure."""
    board = load_board(board_name)
    model = import_model(path)
    vectors = random_vectors(model.graph, 1, seed)
    inputs = [np.ascontiguousarray(v).tobytes() for v in vectors[0]]
    ops = tflm_firmware.write_model_sources(model.tflite, inputs, methods, arena_bytes, out / "model",
                                            path.name, int8_kernels)
    elf = tflm_firmware.build_harness(board, library, out / "model", out / "build")
    run = tflm_firmware.run_harness(board, elf)
    (out / "console.txt").write_text(run.console, encoding="utf-8")
    exact = bit_exact(run.outputs, expected_outputs(model, vectors))
    figures = tflm_firmware.elf_figures(elf)
    per_tick = board.qemu.instructions_per_tick
    v = run.values
    stack = max(v["stack_startup"], v["stack_invoke"])
    if stack >= v["stack_size"]:
        raise tflm_lib.TflmError(f"{path.name} on {board_name}: the harness's {v['stack_size']}-byte stack "
                                 "was used up: its peak is not known")
    smallest = tflm_firmware.smallest_arena(board, elf, v["arena_used"], v["arena_given"], run.outputs)
    faults = {size: what for size, what in smallest.tries.items() if what not in ("accepted", "refused")}
    return {
        "registrations": ops, "instructions": round(v["invoke_ticks"] * per_tick),
        "startup_instructions": round(v["startup_ticks"] * per_tick),
        "arena_used": v["arena_used"], "arena_min": smallest.bytes,
        "arena_min_output_same": smallest.output_same, "arena_tries": smallest.tries,
        "allocate_faults": faults,
        "stack_peak": stack, "stack_startup": v["stack_startup"], "stack_invoke": v["stack_invoke"],
        "bit_exact": exact, "model_bytes": figures.sections.get(".weights", 0),
        "code": figures.code, "code_by_origin": figures.code_by_origin,
        "static": figures.static, "static_by_origin": figures.static_by_origin,
        "ram": smallest.bytes + stack + figures.static,
        "method": f"QEMU -icount shift=0, SysTick ticks x {per_tick}",
    }


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def _mark(flag: bool) -> str:
    return "✓" if flag else "✗"


def _figure(figures: dict, *keys: str) -> str:
    """`figures[k1][k2]...` with thousands separators, or `-` for a run that failed."""
    if not figures or "error" in figures:
        return "-"
    value = figures
    for key in keys:
        value = value[key]
    return f"{value:,}" if value is not None else "-"


def _exactness(r: dict) -> str:
    t, m, n = r["tflm"], r["mcudeploy_cmsis_nn"], r.get("mcudeploy_nnref")
    same = [k for k, ok in t["bit_exact"].items() if ok]
    marks = [f"TFLM = {' = '.join(same) or 'neither oracle'} {_mark(len(same) == len(t['bit_exact']))}"]
    marks.append(f"mcudeploy + CMSIS-NN {_mark(m['bit_exact'])}" if "error" not in m
                 else f"mcudeploy + CMSIS-NN failed: {m['error']}")
    if n:
        marks.append(f"nnref {_mark(n['bit_exact'])}" if "error" not in n else f"nnref failed: {n['error']}")
    if not t["arena_min_output_same"]:
        marks.append("TFLM with its smallest arena: another output ✗")
    return "; ".join(marks)


def _fault_notes(results: list[dict]) -> list[str]:
    """One line per model and board where AllocateTensors faulted instead of refusing an arena."""
    notes = []
    for r in results:
        faults = r["tflm"].get("allocate_faults") or {}
        if not faults:
            continue
        sizes = sorted(int(size) for size in faults)
        kinds = sorted(set(re.sub(r", address 0x[0-9a-f]+", "", what) for what in faults.values()))
        notes.append(f"- `{r['model']}` on {r['board']}: `arena_used_bytes()` is {r['tflm']['arena_used']:,} "
                     f"but `AllocateTensors` needs {r['tflm']['arena_min']:,} B; with {len(sizes)} of the "
                     f"{len(r['tflm']['arena_tries'])} sizes tried, {sizes[0]:,} to {sizes[-1]:,} B, it "
                     f"faults instead of refusing: {'; '.join(kinds)}.")
    return notes


def _main_row(r: dict) -> str:
    t, m, n = r["tflm"], r["mcudeploy_cmsis_nn"], r.get("mcudeploy_nnref") or {}
    ok_m = "error" not in m
    cells = [
        f"`{r['model']}`", r["board"],
        f"{t['instructions']:,} / {_figure(m, 'instructions')} / {_figure(n, 'instructions')}",
        _ratio(t["instructions"], m["instructions"]) if ok_m else "-",
        f"{t['arena_used']:,} / {t['arena_min']:,} / {_figure(m, 'arena')}",
        f"{t['stack_peak']:,}",
        f"{t['code']:,} / {_figure(m, 'flash', 'code')} / {_figure(n, 'flash', 'code')}",
        f"{t['ram']:,} / {_figure(m, 'ram', 'total')} ({_figure(m, 'ram', 'stack')})",
        _exactness(r),
    ]
    return "| " + " | ".join(cells) + " |"


def _detail_row(r: dict) -> str:
    t, d, m = r["tflm"], r["tflm_default_kernels"], r["mcudeploy_cmsis_nn"]
    parts = t["code_by_origin"]
    cells = [
        f"`{r['model']}`", r["board"],
        " / ".join(f"{parts.get(k, 0):,}" for k in ("tflm", "cmsis_nn", "c_runtime", "harness")),
        f"{_figure(d, 'code')} ({_figure(d, 'stack_peak')})",
        f"{t['startup_instructions']:,} / {_figure(m, 'startup_instructions')}",
        f"{t['stack_startup']:,} / {t['stack_invoke']:,}",
        f"{t['static']:,}",
        f"{t['model_bytes']:,} / {_figure(m, 'flash', 'weights')}",
    ]
    return "| " + " | ".join(cells) + " |"


def render(results: list[dict], meta: dict) -> str:
    """TFLM_DEVICE.md."""
    cmsis_nn = meta["cmsis_nn"]
    lines = [
        "# TFLM on the device beside mcudeploy",
        "",
        "Generated by `python scripts/tflm_device.py` (do not edit); every figure is in",
        "[tflm_device.json](tflm_device.json). One inference of the seeded input that `mcudeploy bench`",
        "uses, on QEMU with `-icount shift=0`, with the same CMSIS-NN tree for TFLM and mcudeploy.",
        "",
        f"- TFLM {meta['tflm_commit'][:8]}: its library built by its Makefile (`TARGET=cortex_m_generic "
        "OPTIMIZED_KERNEL_DIR=cmsis_nn TOOLCHAIN=gcc BUILD_TYPE=release`); our harness registers "
        "TFLM's int8-only kernels (`Register_CONV_2D_INT8()`, ...) where TFLM has them",
        f"- CMSIS-NN {(cmsis_nn['commit'] or 'tree ' + cmsis_nn['digest'])[:8]} (TFLM pins "
        f"{meta['tflm_pins_cmsis_nn'][:8]}); mcudeploy reads it through a .pdsc without the "
        f"{meta['pack_view_dropped']} float sources that TFLM's Makefile leaves out "
        "(`ARM_NN_ENABLE_F16=0`, `_F32=0`)",
        f"- mcudeploy {meta['mcudeploy']}; {meta['gcc']}; {meta['qemu']}",
        "",
        "| model | board | instructions TFLM / mcudeploy + CMSIS-NN / nnref | TFLM / mcudeploy "
        "| arena B: TFLM used / TFLM smallest / mcudeploy | TFLM stack peak B "
        "| code B: TFLM / mcudeploy + CMSIS-NN / nnref | RAM B: TFLM / mcudeploy (its stack) | bit-exact |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [_main_row(r) if "error" not in r["tflm"] else
              f"| `{r['model']}` | {r['board']} | TFLM failed: {r['tflm']['error']} | | | | | | |"
              for r in results]
    faults = _fault_notes(results)
    if faults:
        lines += ["", "Where TFLM's `AllocateTensors` crashes instead of refusing a small arena:", "",
                  *faults]
    lines += [
        "",
        "TFLM in detail:",
        "",
        "| model | board | code B: TFLM / CMSIS-NN / C runtime / harness | code B with TFLM's default "
        "registrations (stack peak) | start-up instructions: TFLM / mcudeploy | stack peak B: "
        "start-up / Invoke | static RAM B | model B: .tflite / mcudeploy's weights |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [_detail_row(r) for r in results if "error" not in r["tflm"]]
    lines += [
        "",
        "- **instructions**: one inference (TFLM: `Invoke`; mcudeploy: its layers), SysTick ticks x the "
        "board's instructions per tick. **start-up**: TFLM constructing the op resolver (the model's "
        "operators only) and the interpreter, then `AllocateTensors`; mcudeploy's `mcd_model_init`.",
        "- **arena**: TFLM's `arena_used_bytes()` after `AllocateTensors`, and the smallest arena "
        "`AllocateTensors` accepts (bisected to the byte, a fresh interpreter for each try; `Invoke` "
        "with it gives the same output unless noted); mcudeploy's planned arena.",
        "- **stack peak**: the harness paints the stack, and scans it after `AllocateTensors` and after "
        "`Invoke`; the deeper of the two, from the top of the stack, the harness's own frames included.",
        "- **code**: flash besides the model. TFLM: all that is loaded except the .tflite and the "
        "harness's input, split by the linker map into TFLM (its library, and its header-only code "
        "compiled into the harness), CMSIS-NN, the C/C++ runtime (newlib-nano, libgcc) and the harness "
        "(start-up, semihosting output, the arena try); mcudeploy: `flash - weights` of `bench.json` "
        "(layer calls, NN library, runtime). TFLM's default registrations (`AddConv2D()`) link every "
        "type's kernels.",
        "- **RAM**: TFLM: its smallest arena + its stack peak + .data and .bss (interpreter, op resolver, "
        "C library; the harness's own buffers excluded); mcudeploy: `bench.json`'s arena + stack + "
        "static, with its stack figure in brackets.",
        "- **bit-exact**: TFLM's output on the device against mcudeploy's host reference "
        "(`host-reference`) and the TFLM Python interpreter (`tflm`), for the same input; `mcudeploy "
        "bench` checks its device against the same two.",
        "",
        f"The run took {meta['seconds'] / 60:.0f} min, of which {meta['library_build_seconds'] / 60:.0f} min "
        "building TFLM's libraries (0: both from the cache). Building them took "
        + ", ".join(f"{lib['build_seconds'] / 60:.0f} min for the {lib['target_arch']}"
                    for lib in meta["libraries"].values()) + " (make -j2 on this machine's 2 cores).",
    ]
    return "\n".join(lines) + "\n"


def _tool_version(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True).stdout.splitlines()[0].strip()
    except (OSError, IndexError):
        return "not found"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tflm-root", type=Path, required=True, help="a tflite-micro source tree")
    parser.add_argument("--cmsis-nn-root", type=Path, required=True,
                        help="a CMSIS-NN tree, linked by TFLM and mcudeploy alike")
    parser.add_argument("--third-party", type=Path,
                        help="git repositories of flatbuffers, gemmlowp, ruy, kissfft, CMSIS_6 and "
                             "Cortex_DFP (NAME, NAME.git or OWNER+NAME/repo), for the trees missing from "
                             "TFLM's downloads/")
    parser.add_argument("--boards", nargs="+", default=list(BOARDS))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "tflm_device",
                        help="work directory: models, harness builds, mcudeploy builds")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks",
                        help="where tflm_device.json and TFLM_DEVICE.md go")
    parser.add_argument("--cache", type=Path, default=None,
                        help="where TFLM's libraries are built and kept (default: mcudeploy's cache/tflm)")
    parser.add_argument("--make-python", type=Path, default=Path(sys.executable),
                        help="the python3 TFLM's Makefile runs (needs numpy and Pillow)")
    parser.add_argument("--jobs", type=int, default=2, help="make -j for TFLM's library")
    parser.add_argument("--seed", type=int, default=0, help="seed of the input (as mcudeploy bench)")
    parser.add_argument("--no-nnref", dest="nnref", action="store_false",
                        help="do not bench mcudeploy with nnref")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    tflm_root, cmsis_nn_root = args.tflm_root.resolve(), args.cmsis_nn_root.resolve()
    cache = args.cache or cache_dir() / "tflm"
    try:
        boards = {name: load_board(name) for name in args.boards}
        no_qemu = [name for name, b in boards.items() if b.qemu is None or not b.semihosting]
        if no_qemu:
            raise BoardError(f"boards {', '.join(no_qemu)}: the harness runs on QEMU with semihosting")
        layout = tflm_lib.lay_out_downloads(tflm_root, args.third_party)
        libraries = {name: tflm_lib.build_library(
            tflm_root, tflm_lib.target_arch(b.cpu, b.fpu), cmsis_nn_root, cache, args.make_python,
            jobs=args.jobs) for name, b in boards.items()}
        methods = tflm_firmware.resolver_methods(tflm_root)
        int8_kernels = tflm_firmware.int8_registrations(tflm_root)
        pack, dropped = pack_view(cmsis_nn_root, args.out / "cmsis-nn-pack")
    except (tflm_lib.TflmError, MCUDeployError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    library_seconds = sum(lib.build_seconds for lib in libraries.values() if not lib.cached)
    results = []
    for name in args.models:
        path = model_file(name, args.out / "models")
        for board in args.boards:
            work = args.out / f"{name}-{board}"
            step = time.monotonic()
            row = {"model": name, "board": board}
            # TFLM's int8-only kernels where it has them (what a size-minded int8 deployment
            # registers), and its default registrations, which link every type's kernels.
            for key, kernels in (("tflm", int8_kernels), ("tflm_default_kernels", None)):
                try:
                    row[key] = measure_tflm(path, board, libraries[board], methods, work / key, args.seed,
                                            ARENA_BYTES, kernels)
                except tflm_lib.TflmError as exc:
                    row[key] = {"error": str(exc)}
            tflm = row["tflm"]
            row["mcudeploy_cmsis_nn"] = _mcudeploy_figures(
                mcudeploy_bench(path, board, work / "mcudeploy-cmsis-nn", args.seed, pack))
            if args.nnref:
                row["mcudeploy_nnref"] = _mcudeploy_figures(
                    mcudeploy_bench(path, board, work / "mcudeploy-nnref", args.seed, None))
            row["seconds"] = round(time.monotonic() - step, 1)
            results.append(row)
            print(f"{name} on {board}: " + (f"TFLM {tflm['instructions']:,} instructions, arena "
                                             f"{tflm['arena_used']:,} used / {tflm['arena_min']:,} min, "
                                             f"stack {tflm['stack_peak']:,} B" if "error" not in tflm
                                             else f"TFLM failed: {tflm['error']}")
                  + f" ({row['seconds']:.0f} s)", flush=True)
    first = next(iter(libraries.values()))
    meta = {
        "tflm_root": str(tflm_root), "tflm_commit": first.tflm_commit, "cmsis_nn": first.cmsis_nn,
        "tflm_pins_cmsis_nn": tflm_lib.pinned_cmsis_nn(tflm_root), "downloads": layout,
        "libraries": {b: {"target_arch": lib.target_arch, "path": str(lib.path),
                          "cxxflags": list(lib.cxxflags), "build_seconds": round(lib.build_seconds, 1),
                          "cached": lib.cached}
                      for b, lib in libraries.items()},
        "pack_view_dropped": dropped, "mcudeploy": __version__, "seed": args.seed,
        "gcc": _tool_version(["arm-none-eabi-gcc", "--version"]),
        "qemu": _tool_version(["qemu-system-arm", "--version"]),
        "seconds": round(time.monotonic() - started, 1), "library_build_seconds": round(library_seconds, 1),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "tflm_device.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=1) + "\n", encoding="utf-8")
    (args.results / "TFLM_DEVICE.md").write_text(render(results, meta), encoding="utf-8")
    print(f"wrote {args.results / 'TFLM_DEVICE.md'} and tflm_device.json ({meta['seconds']:.0f} s)")
    failed = any("error" in r[key] or not all(r[key]["bit_exact"].values())
                 for r in results for key in ("tflm", "tflm_default_kernels"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

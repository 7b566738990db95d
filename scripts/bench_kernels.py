"""Regenerate benchmarks/KERNELS.md and benchmarks/kernels.json: the instructions per inference of
each benchmark model on each board (QEMU -icount), lowered four ways, each figure from one
inference checked bit for bit against the host reference and TFLM:

- `nnref`: mcudeploy's portable CMSIS-NN API, every layer one library call (`--library-calls`);
- `nnref + generated`: the same, with mcudeploy's generated kernels (mcd_dsp, mcd_mve) competing
  for every layer, each layer's lowering measured by `--tune`;
- `CMSIS-NN`: Arm's library (`--cmsis-nn`: a checkout, or anything `mcudeploy --cmsis-nn` takes),
  library calls only (`--library-calls`);
- `CMSIS-NN + generated`: Arm's library with the generated kernels competing, tuned.

TFLM with CMSIS-NN (7.0.0) is not run here: its figures are those issue 20 reports, measured on the
same QEMU machines (tensorflow/tflite-micro 90b983c2, release build), and only for the models and
boards it lists.

    python scripts/bench_kernels.py --cmsis-nn PATH [--cmsis-nn-name NAME] [--boards B ...]
                                    [--models M ...] [--out DIR]
    python scripts/bench_kernels.py --render    (KERNELS.md again from kernels.json)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from rich.console import Console

from mcudeploy.boards import load_board
from mcudeploy.codegen.candidates import GENERATED
from mcudeploy.codegen.lower import Layer, lower
from mcudeploy.model import import_model
from mcudeploy.packs import nn_library
from mcudeploy.pipeline import BuildOptions, bench_model
from mcudeploy.progress import Progress
from mcudeploy.report.bench_result import BenchResult
from mcudeploy.tune import TuneOptions

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from models import MLPERF_TINY, mlperf_tiny_tflite  # noqa: E402

BOARDS = ["mps2-an386", "mps3-an547"]
BUNDLED = ROOT / "models" / "tiny_cnn.tflite"
RESULTS = ROOT / "benchmarks" / "KERNELS.md"
RESULTS_JSON = ROOT / "benchmarks" / "kernels.json"
WAYS = ("nnref", "nnref + generated", "CMSIS-NN", "CMSIS-NN + generated")
# TFLM + CMSIS-NN 7.0.0, instructions per inference on QEMU, as issue 20 reports them.
TFLM = {
    ("ds_cnn_kws", "mps3-an547"): 1_817_000, ("ds_cnn_kws", "mps2-an386"): 7_700_000,
    ("mobilenet_v1_025_vww", "mps3-an547"): 6_558_000, ("mobilenet_v1_025_vww", "mps2-an386"): 24_100_000,
    ("resnet8_cifar10", "mps3-an547"): 4_914_000, ("resnet8_cifar10", "mps2-an386"): 29_900_000,
}
# Issue 20's goals for mcudeploy's best: at most TFLM's instructions everywhere; on the M4 at most
# these instructions; on the M55 at most 0.8x CMSIS-NN's.
M4_GOALS = {"ds_cnn_kws": 4_600_000, "mobilenet_v1_025_vww": 15_000_000}
M55_VS_CMSIS = 0.8


def model_files(out: Path, names: list[str] | None) -> list[Path]:
    """The MLPerf Tiny architectures (seeded weights) and the bundled model, as files."""
    folder = out / "models"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in MLPERF_TINY:
        path = folder / f"{name}.tflite"
        path.write_bytes(mlperf_tiny_tflite(name, seed=0))
        paths.append(path)
    paths.append(BUNDLED)
    return [p for p in paths if names is None or p.stem in names]


STAGE = "streamed stage (its layers together)"


def kind_of(layer: Layer) -> str:
    """The layer kind the per-MAC table groups by."""
    kind = layer.op.kind
    if kind == "conv2d":
        f = layer.values["filter_dims"]
        return "pointwise conv (1x1)" if f.h == f.w == 1 else "conv (KxK)"
    return {"depthwise_conv2d": "depthwise conv", "fully_connected": "fully connected"}.get(kind, kind)


def elements(layer: Layer) -> int:
    """An element-wise layer's output elements (0 for the others)."""
    v = layer.values
    return v["block_size"] * v["repeats"] if "block_size" in v else 0


def run(paths: list[Path], boards: list[str], cmsis_nn: str, label: str | None, out: Path,
        console: Console) -> list[dict]:
    """Every model on every board, the four ways; one row per (model, board)."""
    library = nn_library(cmsis_nn)
    rows = []
    for path in paths:
        layers = lower(import_model(path).graph).layers
        for board in boards:
            row: dict = {"model": path.stem, "board": board, "cpu": load_board(board).cpu}
            for way in WAYS:
                name = way.split()[0]
                folder = out / f"{path.stem}-{board}-{way.replace(' + ', '-').replace(' ', '')}"
                if way.endswith("generated"):
                    tune = TuneOptions(tune=True, tuning=out / f"tuning-{name}.json")
                else:
                    tune = TuneOptions(library_calls=True)
                options = BuildOptions(board=board, cmsis_nn=None if name == "nnref" else cmsis_nn,
                                       tuning=tune)
                result = bench_model(path, options, folder, Progress(quiet=True), tflm=False)
                row[way] = _figures(result, layers)
                console.print(f"{path.stem} on {board}, {way}: {result.instructions:,} instructions, "
                              f"bit-exact {result.bit_exact}")
            row["library"] = label or library.name
            rows.append(row)
    return rows


def _figures(result: BenchResult, layers: tuple[Layer, ...]) -> dict:
    lowering = {r["index"]: r["lowering"] for r in result.tuning.get("layers", [])}
    per_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for figures, layer in zip(result.layers, layers, strict=True):
        work = figures.macs or elements(layer)  # ADD: per element
        # a streamed stage runs at its last layer's step, with all its layers' MACs
        kind = STAGE if figures.macs > layer.macs else kind_of(layer)
        if work:
            per_kind[kind][0] += figures.instructions
            per_kind[kind][1] += work
    chosen: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for layer in layers:
        if layer.index in lowering:
            chosen[kind_of(layer)][lowering[layer.index]] += 1
    return {"instructions": result.instructions, "bit_exact": result.bit_exact, "macs": result.macs,
            "flash_code": result.flash["code"], "weights": result.flash["weights"],
            "arena": result.arena_bytes,
            "per_kind": {k: {"instructions": i, "work": m} for k, (i, m) in per_kind.items()},
            "lowerings": {k: dict(v) for k, v in chosen.items()}}


def best(row: dict) -> tuple[str, int]:
    """mcudeploy's best way for the row and its instructions."""
    way = min(("nnref + generated", "CMSIS-NN + generated"), key=lambda w: row[w]["instructions"])
    return way, row[way]["instructions"]


def _m(value: int) -> str:
    return f"{value / 1e6:.3f} M" if value >= 100_000 else f"{value:,}"


def goal_misses(rows: list[dict]) -> list[str]:
    """Issue 20's goals that a row misses, in words."""
    misses = []
    for row in rows:
        _, instructions = best(row)
        tflm = TFLM.get((row["model"], row["board"]))
        if tflm and instructions > tflm:
            misses.append(f"`{row['model']}` on {row['board']}: {instructions / tflm:.2f}x TFLM")
        if row["board"] == "mps2-an386" and instructions > M4_GOALS.get(row["model"], instructions):
            goal = M4_GOALS[row["model"]]
            misses.append(f"`{row['model']}` on {row['board']}: {_m(instructions)} > {_m(goal)}")
        cmsis = row["CMSIS-NN"]["instructions"]
        if row["board"] == "mps3-an547" and instructions > M55_VS_CMSIS * cmsis:
            misses.append(f"`{row['model']}` on {row['board']}: {instructions / cmsis:.2f}x CMSIS-NN")
    return misses


def render(rows: list[dict], boards: list[str]) -> str:
    """KERNELS.md."""
    library = rows[0]["library"] if rows else ""
    lines = [
        "# Generated kernels against the libraries",
        "",
        "Generated by `python scripts/bench_kernels.py --cmsis-nn PATH` (do not edit); every figure is in",
        "[kernels.json](kernels.json). Instructions per inference on QEMU (`-icount shift=0`, SysTick),",
        "one inference of a seeded random input, each checked bit for bit against the host reference and",
        f"TFLM. CMSIS-NN is {library}, compiled with the board's flags (mcudeploy's build: -O2, link-time",
        "optimisation, the depthwise kernels -fno-inline-functions-called-once). The generated kernels",
        "are `mcd_dsp` (the DSP extension's SMLAD), `mcd_mve` and `mcd_mve_x1` (Helium; one loop step",
        "per iteration in the latter).",
        "",
        "- **nnref**: mcudeploy's portable CMSIS-NN API, every layer one library call;",
        "- **+ generated**: mcudeploy's kernels generated per layer compete with the library's calls",
        "  for every layer, and `--tune` keeps the fastest bit-exact one;",
        "- **TFLM + CMSIS-NN**: issue 20's figures (TFLM 90b983c2 with CMSIS-NN 7.0.0 on the same QEMU",
        "  machines), not re-measured here;",
        "- **best**: mcudeploy's best of the two `+ generated` columns.",
        "",
        "## Instructions per inference",
        "",
        "| model | board | nnref | nnref + generated | CMSIS-NN | CMSIS-NN + generated | TFLM + CMSIS-NN "
        "| best / TFLM | best / CMSIS-NN | bit-exact |",
        "|" + " --- |" * 10,
    ]
    for row in rows:
        way, instructions = best(row)
        tflm = TFLM.get((row["model"], row["board"]))
        exact = all(row[w]["bit_exact"] for w in WAYS)
        cells = [f"`{row['model']}`", row["board"]] + [
            f"**{_m(row[w]['instructions'])}**" if w == way else _m(row[w]["instructions"]) for w in WAYS]
        cells += [_m(tflm) if tflm else "", f"{instructions / tflm:.2f}x" if tflm else "",
                  f"{instructions / row['CMSIS-NN']['instructions']:.2f}x", "yes" if exact else "**NO**"]
        lines.append("| " + " | ".join(cells) + " |")
    misses = goal_misses(rows)
    lines += ["", "Issue 20's goals: best ≤ 1.00x TFLM + CMSIS-NN everywhere; on the M4 (mps2-an386) "
              "ds_cnn ≤ 4.6 M and mobilenet_v1_025_vww ≤ 15 M; on the M55 (mps3-an547) best ≤ 0.8x "
              "CMSIS-NN.", ""]
    lines += [f"- missed: {m}" for m in misses] or ["Every goal is met."]
    lines += ["", "## Instructions per MAC, by layer kind", "",
              "Summed over the layers of that kind in all the models above; for ADD, instructions per "
              "output element.", ""]
    for board in boards:
        kinds = sorted({k for r in rows if r["board"] == board for w in WAYS for k in r[w]["per_kind"]})
        lines += [f"### {board}", "", "| layer kind | MACs (elements) | " + " | ".join(WAYS) + " |",
                  "|" + " --- |" * (2 + len(WAYS))]
        for kind in kinds:
            cells = [kind]
            work = sum(r["nnref"]["per_kind"].get(kind, {}).get("work", 0)
                       for r in rows if r["board"] == board)
            cells.append(f"{work:,}")
            for way in WAYS:
                instr = sum(r[way]["per_kind"].get(kind, {}).get("instructions", 0)
                            for r in rows if r["board"] == board)
                cells.append(f"{instr / work:.3f}" if work else "")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## What it costs in flash", "",
              "Flash but the weights (bytes: code, read-only data, vectors), and the weights; the "
              "generated kernels' constants (weights laid out for the loops, the DSP depthwise "
              "kernel's as 16-bit values, folded biases, requantization records) count as weights.", "",
              "| model | board | " + " | ".join(f"{w}: code, weights" for w in WAYS) + " |",
              "|" + " --- |" * (2 + len(WAYS))]
    for row in rows:
        cells = [f"`{row['model']}`", row["board"]]
        cells += [f"{row[w]['flash_code']:,}, {row[w]['weights']:,}" for w in WAYS]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += ["## Which lowering won", "",
              "Layers of each kind lowered each way by `--tune` (the `+ generated` columns).", "",
              "| board | library | layer kind | lowerings (layers) |", "| --- | --- | --- | --- |"]
    for board in boards:
        for way in ("nnref + generated", "CMSIS-NN + generated"):
            counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            for r in rows:
                if r["board"] == board:
                    for kind, chosen in r[way]["lowerings"].items():
                        for name, count in chosen.items():
                            counts[kind][name] += count
            for kind in sorted(counts):
                won = ", ".join(f"{'**' + n + '**' if n in GENERATED else n} ({c})"
                                for n, c in sorted(counts[kind].items(), key=lambda x: -x[1]))
                lines.append(f"| {board} | {way.split()[0]} | {kind} | {won} |")
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cmsis-nn", help="Arm's CMSIS-NN (a checkout, pack or pack id)")
    parser.add_argument("--cmsis-nn-name", metavar="NAME",
                        help="what to call it (a git checkout's .pdsc says version 0.0.0 at every tag)")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "kernels",
                        help="where the models, builds and tuning files go (default: out/kernels)")
    parser.add_argument("--boards", nargs="+", default=BOARDS)
    parser.add_argument("--models", nargs="+", metavar="NAME",
                        help="only these models (file stems); the results are then not written")
    parser.add_argument("--render", action="store_true", help="only write KERNELS.md from kernels.json")
    args = parser.parse_args()
    console = Console(stderr=True)
    if args.render:
        saved = json.loads(RESULTS_JSON.read_text(encoding="utf-8"))
        RESULTS.write_text(render(saved["rows"], saved["boards"]), encoding="utf-8")
        return 0
    if args.cmsis_nn is None:
        parser.error("--cmsis-nn is required (but with --render)")
    rows = run(model_files(args.out, args.models), args.boards, args.cmsis_nn, args.cmsis_nn_name, args.out,
               console)
    if args.models:
        console.print(render(rows, args.boards))
        return 0
    tflm = {f"{model} {board}": value for (model, board), value in TFLM.items()}
    RESULTS_JSON.write_text(json.dumps({"boards": args.boards, "tflm": tflm, "rows": rows}, indent=1) + "\n",
                            encoding="utf-8")
    RESULTS.write_text(render(rows, args.boards), encoding="utf-8")
    console.print(f"wrote {RESULTS} and {RESULTS_JSON}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

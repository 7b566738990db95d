"""The import step: a model file becomes an int8 model ready to deploy, or is refused before anything
is written. An int8 TFLite file keeps its quantization; a float ONNX model is quantized on the
user's calibration data, its quality measured layer by layer, and written as int8 TFLite for TFLM."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mcudeploy.errors import InputError, ModelFormatError
from mcudeploy.export_tflite import graph_to_tflite
from mcudeploy.frontends.onnx import load_onnx
from mcudeploy.frontends.tflite import load_tflite
from mcudeploy.ir import Graph
from mcudeploy.oracles import OnnxFloat
from mcudeploy.progress import Progress
from mcudeploy.quantize.calibrate import calibrate, load_samples
from mcudeploy.quantize.quality import Quality, measure
from mcudeploy.quantize.quantizer import quantize_graph
from mcudeploy.support import check_graph
from mcudeploy.vectors import Vector, load_vectors, random_vectors


@dataclass(frozen=True)
class Model:
    """An imported int8 model: the IR, the TFLite bytes TFLM runs as the oracle, and for ONNX input
    the float model (onnxruntime) with the quantization quality measured at conversion."""

    path: Path
    graph: Graph
    tflite: bytes
    float_model: OnnxFloat | None = None
    quality: Quality | None = None


@dataclass(frozen=True)
class ImportOptions:
    """How to read a model: calibration data and method for float ONNX models."""

    calibration: Path | None = None
    method: str = "minmax"
    snr_warn_db: float = 20.0


def import_model(path: Path, options: ImportOptions = ImportOptions()) -> Model:
    """Read a model file (int8 TFLite, or float ONNX quantized on the calibration data) and refuse
    what mcudeploy cannot deploy, before anything is written."""
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        if options.calibration is not None:
            raise InputError(f"{path}: an int8 TFLite file keeps its own quantization; "
                             "--calibration is for float ONNX models")
        graph = load_tflite(path)
        check_graph(graph, str(path))
        return Model(path, graph, path.read_bytes())
    if suffix == ".onnx":
        if options.calibration is None:
            raise InputError(f"{path}: a float ONNX model needs --calibration data (.npy, .npz or a "
                             "folder of them) to be quantized")
        imp = load_onnx(path)
        samples = load_samples(imp, options.calibration)
        calibration = calibrate(imp, samples, options.method, source=str(options.calibration))
        graph = quantize_graph(imp.graph, calibration.ranges, imp.where)
        check_graph(graph)
        quality = measure(graph, calibration.float_values, options.snr_warn_db,
                          calibration_samples=len(samples))
        return Model(path, graph, graph_to_tflite(graph), OnnxFloat(imp, graph, samples), quality)
    raise ModelFormatError(f"{path}: unknown model format {path.suffix!r} (expected .tflite or .onnx)")


def report_quality(model: Model, progress: Progress) -> None:
    """For a quantized model: the output SNR measured at conversion, and the warning if it is low."""
    q = model.quality
    if q is None:
        return
    outputs = ", ".join(f"{n} {s:.1f} dB" for n, s in q.output_snr_db.items())
    measured = "all of them" if q.samples == q.calibration_samples else f"the first {q.samples}"
    progress.step(f"quantized: ranges from {q.calibration_samples} calibration samples, quality "
                  f"measured on {measured}: output SNR {outputs}")
    if q.warning:
        progress.warn(q.warning)


def vectors_for(model: Model, inputs: Path | None, count: int, seed: int) -> list[Vector]:
    """The vectors a run feeds the model: the user's `inputs` file (for ONNX input in the model's
    layout, quantized), else `count` quantized calibration samples (ONNX), else `count` seeded random
    int8 vectors."""
    if inputs is not None:
        if model.float_model is not None:
            return model.float_model.vectors_from(inputs)
        return load_vectors(model.graph, inputs)
    if model.float_model is not None:
        samples = model.float_model.calibration_vectors
        return [samples[i % len(samples)] for i in range(count)]
    return random_vectors(model.graph, count, seed)

"""Calibration: run the float model (onnxruntime) on the user's data and measure every activation.

`min-max` takes each tensor's extremes; `percentile` clips the rare outliers (0.01 % at each end),
which users ask for when a few large activations waste int8 resolution.

Calibration files are checked where they are read: a file that does not load, an array of the
wrong shape or type, and any value that is not a finite float32 are refused naming the file and
the input. An activation that the float model computes as NaN or infinity (a float32 overflow) is
refused naming the tensor, its node and the sample; onnxruntime's own errors become one line
naming the model file.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from mcudeploy.errors import InputError, ModelFormatError
from mcudeploy.finite import nonfinite
from mcudeploy.frontends.onnx import OnnxImport
from mcudeploy.frontends.onnx_check import node_label

METHODS = ("minmax", "percentile")
PERCENTILE = 99.99
_MAX_SAMPLES_PER_TENSOR = 1 << 20

Sample = dict[str, np.ndarray]  # ONNX input name -> one batch in ONNX layout
ORT_ERRORS = tuple(v for v in vars(ort_state).values() if isinstance(v, type) and issubclass(v, Exception))
"""The exceptions onnxruntime raises (InvalidGraph, Fail, NotImplemented, ...)."""
_NUMPY_FILE_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def ort_message(exc: Exception) -> str:
    """onnxruntime's message, first line, without its "[ONNXRuntimeError] : 1 : FAIL :" prefix and
    the C++ source location and function some messages start with."""
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", str(exc).strip())
    text = re.sub(r"^\S+:\d+ [^(]*\([^)]*\) ", "", text)
    return text.splitlines()[0] if text else type(exc).__name__


class FloatModel:
    """onnxruntime over the static model, returning any tensors asked for, in IR layout."""

    def __init__(self, imp: OnnxImport, names: list[str] | None = None) -> None:
        self.imp = imp
        model = onnx.ModelProto()
        model.CopyFrom(imp.model)
        existing = {o.name for o in model.graph.output}
        self.names = list(names if names is not None else imp.onnx_outputs)
        for name in self.names:
            if name not in existing and name not in imp.onnx_inputs:
                model.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        ort.set_default_logger_severity(4)  # its errors come back as exceptions, said once by mcudeploy
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.log_severity_level = 4
        try:
            self.session = ort.InferenceSession(model.SerializeToString(), options,
                                                providers=["CPUExecutionProvider"])
        except ORT_ERRORS as exc:
            raise ModelFormatError(f"{imp.where}: onnxruntime cannot load the model: "
                                   f"{ort_message(exc)}") from exc

    def run(self, sample: Sample) -> dict[str, np.ndarray]:
        """The requested tensors for one sample, each in IR layout."""
        wanted = [n for n in self.names if n not in sample]
        try:
            outputs = self.session.run(wanted, sample)
        except ORT_ERRORS as exc:
            raise ModelFormatError(f"{self.imp.where}: onnxruntime cannot run the model: "
                                   f"{ort_message(exc)}") from exc
        values = dict(zip(wanted, outputs, strict=True))
        values.update({n: sample[n] for n in self.names if n in sample})
        return {n: self.imp.layouts[n].to_ir(np.asarray(v, dtype=np.float32)) for n, v in values.items()}


def load_samples(imp: OnnxImport, path: Path) -> list[Sample]:
    """Calibration samples from a .npy (one input), .npz (one array per input) or a folder of them.

    Arrays are in the ONNX model's layout: either one batch of the input's shape, or a stack of
    items along a new first axis (or along the batch axis when the model's batch is 1).
    """
    files = sorted(p for p in path.iterdir() if p.suffix in (".npy", ".npz")) if path.is_dir() else [path]
    if not files:
        raise InputError(f"{path}: no .npy or .npz files to calibrate with")
    samples: list[Sample] = []
    for file in files:
        samples += list(_samples_of(imp, file))
    if not samples:
        raise InputError(f"{path}: the calibration data holds no samples")
    return samples


def _read_arrays(imp: OnnxImport, file: Path) -> dict[str, np.ndarray]:
    """The arrays of a .npy (one input) or .npz (one per input name), read whole; a file numpy cannot
    read (empty, truncated, pickled objects, not numpy at all) is refused naming it."""
    try:
        loaded = np.load(file, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            if len(imp.onnx_inputs) != 1:
                raise InputError(f"{file}: the model has {len(imp.onnx_inputs)} inputs; use a .npz with "
                                 f"arrays named {', '.join(imp.onnx_inputs)}")
            return {imp.onnx_inputs[0]: loaded}
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise InputError(f"{file}: not a .npy or .npz file")
        with loaded:
            missing = [n for n in imp.onnx_inputs if n not in loaded.files]
            if missing:
                raise InputError(f"{file}: no array for input(s) {', '.join(missing)}")
            return {n: loaded[n] for n in imp.onnx_inputs}
    except _NUMPY_FILE_ERRORS as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{file}: cannot read calibration data: {reason}") from exc


def _samples_of(imp: OnnxImport, file: Path) -> Iterator[Sample]:
    arrays = _read_arrays(imp, file)
    stacks = {}
    for name, array in arrays.items():
        shape = imp.layouts[name].onnx_shape
        if not np.issubdtype(array.dtype, np.floating):
            raise InputError(f"{file}: input {name!r} is {array.dtype}; calibration data must be float")
        bad = nonfinite(array)
        if bad is not None:
            raise InputError(f"{file}: input {name!r} holds {bad}; calibration data must be finite")
        if array.shape == shape:
            array = array[None]
        elif shape[0] == 1 and array.shape[1:] == shape[1:]:
            array = array[:, None]
        if array.shape[1:] != shape:
            raise InputError(f"{file}: input {name!r} expects shape {list(shape)} (or a stack of them), "
                             f"the file has {list(array.shape)}")
        if not len(array):
            raise InputError(f"{file}: input {name!r} holds no samples (shape {list(array.shape)})")
        with np.errstate(over="ignore"):
            stacks[name] = array.astype(np.float32)
        bad = nonfinite(stacks[name])
        if bad is not None:
            raise InputError(f"{file}: input {name!r} is beyond the float32 range ({bad} once converted)")
    counts = {len(s) for s in stacks.values()}
    if len(counts) != 1:
        raise InputError(f"{file}: inputs hold different numbers of samples {sorted(counts)}")
    for i in range(counts.pop()):
        yield {n: s[i] for n, s in stacks.items()}


@dataclass
class Calibration:
    """Per-tensor ranges, and the float values of every activation for the first samples."""

    ranges: dict[str, tuple[float, float]]
    float_values: list[dict[str, np.ndarray]]


def calibrate(imp: OnnxImport, samples: list[Sample], method: str = "minmax",
              keep: int = 16, source: str = "the calibration data") -> Calibration:
    """Ranges of every activation over the samples; keeps `keep` samples' values for quality checks.
    `source` names where the samples came from in refusals."""
    if method not in METHODS:
        raise InputError(f"unknown calibration method {method!r} (choose from {', '.join(METHODS)})")
    in_onnx = {o for node in imp.model.graph.node for o in node.output} | set(imp.onnx_inputs)
    # Tensors the import added (a Pad before a pooling) share their input's range (quantizer.py).
    names = [t.name for t in imp.graph.activations if t.name in in_onnx]
    model = FloatModel(imp, names)
    low = dict.fromkeys(names, np.inf)
    high = dict.fromkeys(names, -np.inf)
    collected: dict[str, list[np.ndarray]] = {n: [] for n in names}
    kept = []
    rng = np.random.default_rng(0)
    producers = {o: node_label(node, i) for i, node in enumerate(imp.model.graph.node) for o in node.output}
    for i, sample in enumerate(samples):
        values = model.run(sample)
        if i < keep:
            kept.append(values)
        for name, value in values.items():
            bad = nonfinite(value)
            if bad is not None:
                by = f", computed by {producers[name]}," if name in producers else ""
                raise InputError(f"{imp.where}: tensor {name!r}{by} holds {bad} on calibration sample {i} "
                                 f"of {source}: the float model leaves the float32 range")
            flat = value.reshape(-1)
            low[name] = min(low[name], float(flat.min()))
            high[name] = max(high[name], float(flat.max()))
            if method == "percentile":
                take = max(1, _MAX_SAMPLES_PER_TENSOR // len(samples))
                collected[name].append(flat if flat.size <= take else rng.choice(flat, take, replace=False))
    if method == "percentile":
        for name, parts in collected.items():
            values = np.concatenate(parts)
            low[name] = float(np.percentile(values, 100 - PERCENTILE))
            high[name] = float(np.percentile(values, PERCENTILE))
    return Calibration({n: (low[n], high[n]) for n in names}, kept)

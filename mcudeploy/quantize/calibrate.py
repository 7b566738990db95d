"""Calibration: run the float model (onnxruntime) on the user's data and measure every activation.

`min-max` takes each tensor's extremes; `percentile` clips the rare outliers (0.01 % at each end),
which users ask for when a few large activations waste int8 resolution.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

from mcudeploy.errors import InputError
from mcudeploy.frontends.onnx import OnnxImport

METHODS = ("minmax", "percentile")
PERCENTILE = 99.99
_MAX_SAMPLES_PER_TENSOR = 1 << 20

Sample = dict[str, np.ndarray]  # ONNX input name -> one batch in ONNX layout


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
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(model.SerializeToString(), options,
                                            providers=["CPUExecutionProvider"])

    def run(self, sample: Sample) -> dict[str, np.ndarray]:
        """The requested tensors for one sample, each in IR layout."""
        wanted = [n for n in self.names if n not in sample]
        values = dict(zip(wanted, self.session.run(wanted, sample), strict=True))
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


def _samples_of(imp: OnnxImport, file: Path) -> Iterator[Sample]:
    try:
        loaded = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{file}: cannot read calibration data: {exc}") from exc
    if isinstance(loaded, np.ndarray):
        if len(imp.onnx_inputs) != 1:
            raise InputError(f"{file}: the model has {len(imp.onnx_inputs)} inputs; use a .npz with "
                             f"arrays named {', '.join(imp.onnx_inputs)}")
        arrays = {imp.onnx_inputs[0]: loaded}
    else:
        missing = [n for n in imp.onnx_inputs if n not in loaded.files]
        if missing:
            raise InputError(f"{file}: no array for input(s) {', '.join(missing)}")
        arrays = {n: loaded[n] for n in imp.onnx_inputs}
    stacks = {}
    for name, array in arrays.items():
        shape = imp.layouts[name].onnx_shape
        if not np.issubdtype(array.dtype, np.floating):
            raise InputError(f"{file}: input {name!r} is {array.dtype}; calibration data must be float")
        if array.shape == shape:
            array = array[None]
        elif shape[0] == 1 and array.shape[1:] == shape[1:]:
            array = array[:, None]
        if array.shape[1:] != shape:
            raise InputError(f"{file}: input {name!r} expects shape {list(shape)} (or a stack of them), "
                             f"the file has {list(array.shape)}")
        stacks[name] = array.astype(np.float32)
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
              keep: int = 16) -> Calibration:
    """Ranges of every activation over the samples; keeps `keep` samples' values for quality checks."""
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
    for i, sample in enumerate(samples):
        values = model.run(sample)
        if i < keep:
            kept.append(values)
        for name, value in values.items():
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

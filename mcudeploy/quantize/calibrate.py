"""Calibration: run the float model (onnxruntime for ONNX, TFLM's float kernels for a float TFLite
file; mcudeploy.quantize.float_models) on the user's data and measure every activation.

An LSTM's output sequence and its cell state at every step, which the float model does not
expose, are computed on the host from the LSTM's input (mcudeploy.quantize.lstm_float) and measured
the same way.

`min-max` takes each tensor's extremes; `percentile` clips the rare outliers (0.01 % at each end),
which users ask for when a few large activations waste int8 resolution.

Calibration files are checked where they are read: a file that does not load, an array of the
wrong shape or type, and any value that is not a finite float32 are refused naming the file and
the input. An activation that the float model computes as NaN or infinity (a float32 overflow) is
refused naming the tensor, its node and the sample; onnxruntime's own errors become one line
naming the model file (TFLM's, from its worker process, an OracleError).
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcudeploy.errors import InputError, UnsupportedError
from mcudeploy.finite import nonfinite
from mcudeploy.quantize.float_models import FloatModel, Sample
from mcudeploy.quantize.lstm_float import lstm_names, lstm_values

METHODS = ("minmax", "percentile")
PERCENTILE = 99.99
_MAX_SAMPLES_PER_TENSOR = 1 << 20
_NUMPY_FILE_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def load_samples(model: FloatModel, path: Path) -> list[Sample]:
    """Calibration samples from a .npy (one input), .npz (one array per input) or a folder of them.

    Arrays are in the model file's layout (NCHW for ONNX, NHWC for TFLite): either one batch of the
    input's shape, or a stack of batches along a new first axis, or a stack of single samples along
    the batch axis, which are grouped into batches of the model's batch size (the last batch
    completed from the first samples).
    """
    files = sorted(p for p in path.iterdir() if p.suffix in (".npy", ".npz")) if path.is_dir() else [path]
    if not files:
        raise InputError(f"{path}: no .npy or .npz files to calibrate with")
    samples: list[Sample] = []
    for file in files:
        samples += list(_samples_of(model, file))
    if not samples:
        raise InputError(f"{path}: the calibration data holds no samples")
    return samples


def _read_arrays(model: FloatModel, file: Path) -> dict[str, np.ndarray]:
    """The arrays of a .npy (one input) or .npz (one per input name), read whole; a file numpy cannot
    read (empty, truncated, pickled objects, not numpy at all) is refused naming it."""
    try:
        names = list(model.inputs)
        loaded = np.load(file, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            if len(names) != 1:
                raise InputError(f"{file}: the model has {len(names)} inputs; use a .npz with "
                                 f"arrays named {', '.join(names)}")
            return {names[0]: loaded}
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise InputError(f"{file}: not a .npy or .npz file")
        with loaded:
            missing = [n for n in names if n not in loaded.files]
            if missing:
                raise InputError(f"{file}: no array for input(s) {', '.join(missing)}")
            return {n: loaded[n] for n in names}
    except _NUMPY_FILE_ERRORS as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{file}: cannot read calibration data: {reason}") from exc


def _samples_of(model: FloatModel, file: Path) -> Iterator[Sample]:
    arrays = _read_arrays(model, file)
    stacks = {}
    for name, array in arrays.items():
        shape = tuple(model.inputs[name])
        if not np.issubdtype(array.dtype, np.floating):
            raise InputError(f"{file}: input {name!r} is {array.dtype}; calibration data must be float")
        bad = nonfinite(array)
        if bad is not None:
            raise InputError(f"{file}: input {name!r} holds {bad}; calibration data must be finite")
        if array.shape == shape:
            array = array[None]
        elif array.ndim == len(shape) and array.shape[1:] == shape[1:] and len(array):
            array = _batches(array, shape[0])
        if array.shape[1:] != shape:
            also = f" or single samples [K, {', '.join(map(str, shape[1:]))}]" if shape[0] > 1 else ""
            raise InputError(f"{file}: input {name!r} expects shape {list(shape)}, a stack of them "
                             f"[K, {', '.join(map(str, shape))}]{also}; the file has {list(array.shape)}")
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


def _batches(samples: np.ndarray, batch: int) -> np.ndarray:
    """Single samples [K, ...] as [ceil(K / batch), batch, ...]; the last batch is completed with
    the first samples, so that every sample counts."""
    count = -(-len(samples) // batch)
    order = np.arange(count * batch) % len(samples)
    return samples[order].reshape(count, batch, *samples.shape[1:])


@dataclass
class Calibration:
    """Per-tensor ranges, and the float values of every activation for the first samples."""

    ranges: dict[str, tuple[float, float]]
    float_values: list[dict[str, np.ndarray]]


def calibrate(model: FloatModel, samples: list[Sample], method: str = "minmax",
              keep: int = 16, source: str = "the calibration data") -> Calibration:
    """Ranges of every activation over the samples; keeps `keep` samples' values for quality checks.
    `source` names where the samples came from in refusals."""
    if method not in METHODS:
        raise InputError(f"unknown calibration method {method!r} (choose from {', '.join(METHODS)})")
    measured = model.measured()
    derived = [n for n in lstm_names(model.graph) if n not in measured]  # mcudeploy.quantize.lstm_float
    names = measured + derived
    low = dict.fromkeys(names, np.inf)
    high = dict.fromkeys(names, -np.inf)
    collected: dict[str, list[np.ndarray]] = {n: [] for n in names}
    kept = []
    rng = np.random.default_rng(0)
    runner = model.runner(measured)
    try:
        for i, sample in enumerate(samples):
            values = runner.run(sample)
            if derived:
                values.update({n: v for n, v in lstm_values(model.graph, values).items() if n in derived})
            if i < keep:
                kept.append(values)
            for name, value in values.items():
                bad = nonfinite(value)
                if bad is not None:
                    producer = model.producer(name)
                    by = f", computed by {producer}," if producer else ""
                    raise InputError(f"{model.where}: tensor {name!r}{by} holds {bad} on calibration sample "
                                     f"{i} of {source}: the float model leaves the float32 range")
                flat = value.reshape(-1)
                low[name] = min(low[name], float(flat.min()))
                high[name] = max(high[name], float(flat.max()))
                if method == "percentile":
                    take = max(1, _MAX_SAMPLES_PER_TENSOR // len(samples))
                    kept_values = flat if flat.size <= take else rng.choice(flat, take, replace=False)
                    collected[name].append(kept_values)
    finally:
        runner.close()
    unmeasured = [n for n in derived if low[n] == np.inf]
    if unmeasured:
        raise UnsupportedError(f"{model.where}: the LSTM computing {unmeasured[0]!r} reads a tensor the "
                               "float model does not compute as it is: its ranges cannot be calibrated")
    if method == "percentile":
        for name, parts in collected.items():
            values = np.concatenate(parts)
            low[name] = float(np.percentile(values, 100 - PERCENTILE))
            high[name] = float(np.percentile(values, PERCENTILE))
    return Calibration({n: (low[n], high[n]) for n in names}, kept)

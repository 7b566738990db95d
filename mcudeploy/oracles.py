"""The independent oracles: the TFLite-Micro interpreter, run on the host from its Python package,
and for a quantized model its float original (onnxruntime, or TFLM's float kernels)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mcudeploy.arith import round_half_away
from mcudeploy.errors import ModelFormatError, OracleError
from mcudeploy.finite import nonfinite
from mcudeploy.ir import Graph
from mcudeploy.quantize.calibrate import load_samples
from mcudeploy.quantize.float_models import FloatModel, Runner, Sample
from mcudeploy.tflm_process import TflmProcess

MIN_ARENA_BYTES = 16 * 1024 * 1024
HANDLE_BYTES = 4  # a resource tensor holds a variable's handle; the variable is a tensor of its own


def preserved_arena_bytes(graph: Graph) -> int:
    """An arena in which TFLM can keep every tensor of `graph` (kPreserveAllTensors gives each its
    own bytes): twice their sum, plus 1 MiB for its own structures, and at least 16 MiB."""
    total = sum(int(np.prod(t.shape, dtype=np.int64))
                * (HANDLE_BYTES if t.dtype == "resource" else np.dtype(t.dtype).itemsize)
                for t in graph.tensors.values())
    return max(MIN_ARENA_BYTES, 2 * total + (1 << 20))


class Tflm:
    """A TFLM interpreter over one .tflite model (subgraph 0), keeping every tensor for inspection
    (in an arena sized from the graph unless `arena_bytes` is given).

    It runs in a worker process (`mcudeploy.tflm_process`): when TFLM crashes, aborts or refuses
    the file, the call raises `OracleError` and mcudeploy goes on. Close it (or use it as a context
    manager) to stop the worker."""

    name = "tflm"

    def __init__(self, model: bytes, graph: Graph, arena_bytes: int | None = None) -> None:
        self.graph = graph
        self._interpreter = TflmProcess(model, arena_bytes or preserved_arena_bytes(graph))
        try:
            inputs, outputs = self._interpreter.details(len(graph.inputs), len(graph.outputs))
        except BaseException:
            self.close()
            raise
        self._in_types = [d["dtype"] for d in inputs]
        self._out_types = [d["dtype"] for d in outputs]
        # TFLite's LSTM keeps its hidden and cell state in variable tensors from invoke to invoke;
        # mcudeploy deploys it as Keras computes it (stateful=False), each inference from the zero
        # state, unless told to keep it (ir.Lstm.keeps_state): then TFLM is reset before each
        # (support refuses such an LSTM beside resource variables).
        self._reset_each = any(op.kind == "lstm" and not op.attrs.keeps_state for op in graph.ops)

    def invoke(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run once on int8 inputs; returns the int8 outputs in model order. A file with float I/O
        wrappers gets the inputs dequantized, and its outputs quantized back, with the scales of the
        int8 tensors the graph deploys (exact: the wrappers use the same scales); one with uint8 I/O
        gets those inputs shifted by 128, and those outputs shifted back (exact: import checks the shift);
        a uint8 output the graph computes (a QUANTIZE to uint8 that is not that shift) stays uint8."""
        values = []
        for index, value in enumerate(inputs):
            value = np.asarray(value)
            if self._in_types[index] == np.float32:
                t = self.graph.tensor(self.graph.inputs[index])
                value = dequantize(value, t.scale, t.zero_point).astype(np.float32)
            elif self.graph.inputs[index] in self.graph.uint8_io:
                value = (value.astype(np.int16) + 128).astype(np.uint8)
            values.append(value)
        if self._reset_each:
            self._interpreter.reset()
        found = self._interpreter.invoke(values, len(self.graph.outputs))
        outputs = []
        for index, name in enumerate(self.graph.outputs):
            value = found[index]
            if self._out_types[index] == np.float32:
                t = self.graph.tensor(name)
                info = np.iinfo(t.dtype)
                q = round_half_away(value.astype(np.float64) / t.scale) + t.zero_point
                value = np.clip(q, info.min, info.max).astype(t.dtype)
            elif name in self.graph.uint8_io:
                value = (value.astype(np.int16) - 128).astype(np.int8)
            outputs.append(value)
        return outputs

    def tensor(self, index: int) -> np.ndarray:
        """A tensor of subgraph 0 by its index in the file, as of the last invoke."""
        found = self._interpreter.tensor(index, 0)
        return found["tensor_data"].reshape(found["shape"])

    def reset(self) -> None:
        self._interpreter.reset()

    def close(self) -> None:
        """Stop the worker process."""
        self._interpreter.close()

    def __enter__(self) -> Tflm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def snr_db(reference: np.ndarray, approx: np.ndarray) -> float:
    """Signal-to-noise ratio of `approx` against `reference`, in dB (inf when equal)."""
    reference = np.asarray(reference, dtype=np.float64)
    noise = float(((reference - np.asarray(approx, dtype=np.float64)) ** 2).sum())
    signal = float((reference**2).sum())
    if noise == 0.0:
        return float("inf")
    return 10.0 * float(np.log10(max(signal, 1e-30) / noise))


def dequantize(value: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (value.astype(np.float64) - zero_point) * scale


class FloatOracle:
    """The original float model (onnxruntime on an ONNX file, TFLM's float kernels on a float TFLite
    file): int8 IR vectors in, float IR-layout outputs out."""

    def __init__(self, model: FloatModel, graph: Graph, samples: list[Sample]) -> None:
        self.graph = graph
        self.model = model
        self.samples = samples
        self.name = model.name
        self._runner: Runner | None = None

    def quantize(self, sample: Sample) -> tuple[np.ndarray, ...]:
        """One float sample in the file's layout as an int8 vector in IR layout."""
        out = []
        for name in self.graph.inputs:
            t = self.graph.tensor(name)
            real = self.model.to_ir(name, sample[name])
            info = np.iinfo(t.dtype)
            q = round_half_away(real / t.scale) + t.zero_point
            out.append(np.clip(q, info.min, info.max).astype(t.dtype))
        return tuple(out)

    @property
    def calibration_vectors(self) -> list[tuple[np.ndarray, ...]]:
        return [self.quantize(s) for s in self.samples]

    def vectors_from(self, path: Path) -> list[tuple[np.ndarray, ...]]:
        """The user's float inputs (the file's layout, .npy/.npz/folder) as int8 vectors."""
        return [self.quantize(s) for s in load_samples(self.model, path)]

    def invoke(self, vector: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The float model's outputs (IR layout) for one int8 vector. An output that is not finite,
        or the library failing, is an OracleError: no verdict can rest on it."""
        sample = {}
        for name, value in zip(self.graph.inputs, vector, strict=True):
            t = self.graph.tensor(name)
            real = dequantize(value, t.scale, t.zero_point).astype(np.float32)
            sample[name] = self.model.to_file(name, real)
        if self._runner is None:
            self._runner = self.model.runner(list(self.graph.outputs))
        try:
            values = self._runner.run(sample)
        except ModelFormatError as exc:
            raise OracleError(str(exc)) from exc
        for name in self.graph.outputs:
            bad = nonfinite(values[name])
            if bad is not None:
                raise OracleError(f"{self.model.where}: {self.name}'s output {name!r} holds {bad}")
        return [values[n] for n in self.graph.outputs]

    def close(self) -> None:
        """Release the library's runner (TFLM's worker process) until the next invoke."""
        if self._runner is not None:
            self._runner.close()
            self._runner = None

"""The float model behind a quantized graph, run by a library mcudeploy did not write: onnxruntime
for ONNX files, TFLM's float kernels (in its worker process) for float TFLite files.

Calibration reads every activation through it, the quality check compares the int8 graph with
it, and the float oracle compares the device's outputs with it. Samples are in the file's own
layout (NCHW for ONNX, NHWC for TFLite); values come back in the IR's (NHWC).
"""

from __future__ import annotations

import re
from typing import Protocol

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from mcudeploy import ir
from mcudeploy.errors import ModelFormatError
from mcudeploy.frontends.onnx import OnnxImport
from mcudeploy.frontends.onnx_check import node_label
from mcudeploy.frontends.tflite_float import TfliteFloatImport
from mcudeploy.tflm_process import TflmProcess

Sample = dict[str, np.ndarray]  # input name -> one batch in the file's layout
ORT_ERRORS = tuple(v for v in vars(ort_state).values() if isinstance(v, type) and issubclass(v, Exception))
"""The exceptions onnxruntime raises (InvalidGraph, Fail, NotImplemented, ...)."""
_TFLM_MIN_ARENA = 16 * 1024 * 1024


class Runner(Protocol):
    def run(self, sample: Sample) -> dict[str, np.ndarray]:
        """The requested tensors for one sample, each in IR layout, as float32."""

    def close(self) -> None:
        """Release what runs the model (a worker process)."""


class FloatModel(Protocol):
    """A float model file: its float IR, its inputs, and how to run it."""

    name: str  # the library that runs it, as reports name the float oracle
    where: str  # the file, as refusals name it
    graph: ir.Graph  # the float IR the quantizer takes

    @property
    def inputs(self) -> dict[str, tuple[int, ...]]:
        """Input name -> shape, in the file's layout, in the model's order."""

    def measured(self) -> list[str]:
        """The IR activations the file computes (others, which the import adds, share a range)."""

    def producer(self, name: str) -> str | None:
        """What computes tensor `name`, as messages name it."""

    def to_ir(self, name: str, value: np.ndarray) -> np.ndarray:
        """A value of input `name` in the file's layout, in the IR's."""

    def to_file(self, name: str, value: np.ndarray) -> np.ndarray:
        """A value of input `name` in the IR's layout, in the file's."""

    def runner(self, names: list[str]) -> Runner:
        """Something that runs the model and returns the tensors `names`."""


def ort_message(exc: Exception) -> str:
    """onnxruntime's message, first line, without its "[ONNXRuntimeError] : 1 : FAIL :" prefix and
    the C++ source location and function some messages start with."""
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", str(exc).strip())
    text = re.sub(r"^\S+:\d+ [^(]*\([^)]*\) ", "", text)
    return text.splitlines()[0] if text else type(exc).__name__


class OnnxFloatModel:
    """A float ONNX model, run by onnxruntime."""

    name = "onnxruntime"

    def __init__(self, imp: OnnxImport) -> None:
        self.imp = imp
        self.where = imp.where
        self.graph = imp.graph

    @property
    def inputs(self) -> dict[str, tuple[int, ...]]:
        return {n: self.imp.layouts[n].onnx_shape for n in self.imp.onnx_inputs}

    def measured(self) -> list[str]:
        in_onnx = {o for node in self.imp.model.graph.node for o in node.output} | set(self.imp.onnx_inputs)
        # Tensors the import added (a Pad before a pooling) share their input's range (quantizer.py).
        return [t.name for t in self.graph.activations if t.name in in_onnx]

    def producer(self, name: str) -> str | None:
        return next((node_label(node, i) for i, node in enumerate(self.imp.model.graph.node)
                     if name in node.output), None)

    def to_ir(self, name: str, value: np.ndarray) -> np.ndarray:
        return self.imp.layouts[name].to_ir(value)

    def to_file(self, name: str, value: np.ndarray) -> np.ndarray:
        return self.imp.layouts[name].to_onnx(value)

    def runner(self, names: list[str]) -> OnnxRunner:
        return OnnxRunner(self.imp, names)


class OnnxRunner:
    """onnxruntime over the static model, returning any tensors asked for, in IR layout."""

    def __init__(self, imp: OnnxImport, names: list[str]) -> None:
        self.imp = imp
        model = onnx.ModelProto()
        model.CopyFrom(imp.model)
        existing = {o.name for o in model.graph.output}
        self.names = list(names)
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
        wanted = [n for n in self.names if n not in sample]
        try:
            outputs = self.session.run(wanted, sample)
        except ORT_ERRORS as exc:
            raise ModelFormatError(f"{self.imp.where}: onnxruntime cannot run the model: "
                                   f"{ort_message(exc)}") from exc
        values = dict(zip(wanted, outputs, strict=True))
        values.update({n: sample[n] for n in self.names if n in sample})
        return {n: self.imp.layouts[n].to_ir(np.asarray(v, dtype=np.float32)) for n, v in values.items()}

    def close(self) -> None:
        """Nothing to release: the session goes with the object."""


class TfliteFloatModel:
    """A float TFLite model (its float32 file), run by TFLM's float kernels in a worker process.
    The file's layout is the IR's."""

    name = "tflm"

    def __init__(self, imp: TfliteFloatImport) -> None:
        self.imp = imp
        self.where = imp.where
        self.graph = imp.graph

    @property
    def inputs(self) -> dict[str, tuple[int, ...]]:
        return {n: self.graph.tensor(n).shape for n in self.graph.inputs}

    def measured(self) -> list[str]:
        return [t.name for t in self.graph.activations if t.name in self.imp.indices]

    def producer(self, name: str) -> str | None:
        op = self.graph.producer(name)
        return op.origin if op is not None else None

    def to_ir(self, name: str, value: np.ndarray) -> np.ndarray:
        return value

    def to_file(self, name: str, value: np.ndarray) -> np.ndarray:
        return value

    def runner(self, names: list[str]) -> TflmFloatRunner:
        return TflmFloatRunner(self.imp, names)


class TflmFloatRunner:
    """TFLM over the float32 file, every tensor kept (kPreserveAllTensors) so that any can be read
    after an invoke. TFLM crashing or refusing the file raises OracleError."""

    def __init__(self, imp: TfliteFloatImport, names: list[str]) -> None:
        self.imp = imp
        self.names = list(names)
        tensors = imp.graph.tensors.values()
        total = sum(int(np.prod(t.shape, dtype=np.int64)) * 4 for t in tensors)  # float32 at most
        self.process = TflmProcess(imp.model, max(_TFLM_MIN_ARENA, 2 * total + (1 << 20)))

    def run(self, sample: Sample) -> dict[str, np.ndarray]:
        inputs = [np.asarray(sample[n], dtype=np.float32) for n in self.imp.graph.inputs]
        self.process.invoke(inputs, 0)
        wanted = [n for n in self.names if n not in sample]
        found = self.process.tensors([self.imp.indices[n] for n in wanted])
        values = {n: np.asarray(v, dtype=np.float32) for n, v in zip(wanted, found, strict=True)}
        values.update({n: np.asarray(sample[n], dtype=np.float32) for n in self.names if n in sample})
        return values

    def close(self) -> None:
        self.process.close()


def float_model(imp: OnnxImport | TfliteFloatImport) -> FloatModel:
    """The float model of an imported file."""
    return OnnxFloatModel(imp) if isinstance(imp, OnnxImport) else TfliteFloatModel(imp)

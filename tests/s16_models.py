"""The one-layer 16x8 and LSTM models of tests/data/s16 (made by scripts/make_s16_models.py):
their layer read from the flatbuffer, TFLM run on them, and the kernel parameters TFLM's Prepare
derives, for the tests that compare nnref and mcudeploy/reference with TFLM."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tflite_micro.python.tflite_micro import runtime
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from mcudeploy.arith import quantize_multiplier
from mcudeploy.reference import s16
from mcudeploy.reference.lstm import GATES, LstmParams, lstm_params

DATA = Path(__file__).parent / "data" / "s16"
OPS = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
DTYPES = {fb.TensorType.INT8: np.int8, fb.TensorType.INT16: np.int16, fb.TensorType.INT32: np.int32,
          fb.TensorType.INT64: np.int64}
# Fused activation -> (low, high) in real values.
FUSED = {fb.ActivationFunctionType.NONE: (None, None), fb.ActivationFunctionType.RELU: (0.0, None),
         fb.ActivationFunctionType.RELU6: (0.0, 6.0), fb.ActivationFunctionType.RELU_N1_TO_1: (-1.0, 1.0)}
# LSTM input indices of each gate: (input weights, recurrent weights, bias).
LSTM_TENSORS = {"input": (1, 5, 12), "forget": (2, 6, 13), "cell": (3, 7, 14), "output": (4, 8, 15)}


@dataclass
class Tensor:
    shape: tuple[int, ...]
    dtype: type
    scale: np.ndarray
    zero_point: int
    data: np.ndarray | None  # constants only


@dataclass
class Layer:
    """The single operator of a test model."""

    name: str
    kind: str
    options: object
    inputs: list[Tensor | None]
    outputs: list[Tensor]
    model: bytes
    feed: list[int]  # for each model input, its position in `inputs`

    @property
    def activation(self) -> tuple[float | None, float | None]:
        return FUSED[self.options.fusedActivationFunction]


def load(name: str) -> Layer:
    data = (DATA / f"{name}.tflite").read_bytes()
    model = fb.ModelT.InitFromPackedBuf(data, 0)
    graph = model.subgraphs[0]
    (op,) = graph.operators

    def tensor(index: int) -> Tensor | None:
        if index < 0:
            return None
        t = graph.tensors[index]
        buf = model.buffers[t.buffer].data
        dtype = DTYPES[t.type]
        q = t.quantization
        values = None if buf is None else np.frombuffer(bytes(buf), dtype).reshape(tuple(t.shape))
        return Tensor(tuple(int(s) for s in t.shape), dtype, np.asarray(q.scale, np.float32),
                      int(q.zeroPoint[0]), values)

    code = model.operatorCodes[op.opcodeIndex]
    kind = OPS[max(code.builtinCode, code.deprecatedBuiltinCode)]
    feed = [list(op.inputs).index(i) for i in graph.inputs]
    inputs, outputs = [tensor(i) for i in op.inputs], [tensor(i) for i in op.outputs]
    return Layer(name, kind, op.builtinOptions, inputs, outputs, data, feed)


class Tflm:
    """TFLM's Python interpreter on one test model; keeps its variable tensors between calls."""

    def __init__(self, layer: Layer) -> None:
        self.interpreter = runtime.Interpreter.from_bytes(layer.model, arena_size=256 * 1024)
        self.feed = layer.feed

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        """inputs in the operator's order."""
        for i, position in enumerate(self.feed):
            self.interpreter.set_input(inputs[position], i)
        self.interpreter.invoke()
        return self.interpreter.get_output(0)

    def reset(self) -> None:
        self.interpreter.reset()


def random_input(t: Tensor, rng: np.random.Generator) -> np.ndarray:
    info = np.iinfo(t.dtype)
    return rng.integers(info.min, info.max + 1, t.shape).astype(t.dtype)


def padding(layer: Layer, in_hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
            dilation: tuple[int, int]) -> tuple[int, int]:
    """(top, left) of TFLite's SAME/VALID padding."""
    if layer.options.padding == fb.Padding.VALID:
        return 0, 0
    out = []
    for size, k, s, d in zip(in_hw, kernel, stride, dilation, strict=True):
        effective = (k - 1) * d + 1
        total = max(((size + s - 1) // s - 1) * s + effective - size, 0)
        out.append(total // 2)
    return out[0], out[1]


def conv_params(layer: Layer, weights: Tensor, bias: Tensor | None) -> s16.ConvParamsS16:
    """TFLM's per-channel multipliers (doubles of the float scales) and int16 clamp."""
    x, y = layer.inputs[0], layer.outputs[0]
    mult, shift = s16.conv_multipliers(float(x.scale[0]), weights.scale, float(y.scale[0]))
    channels = y.shape[-1]
    mult, shift = np.resize(mult, channels), np.resize(shift, channels)
    act = s16.activation_range(*layer.activation, float(y.scale[0]))
    return s16.ConvParamsS16(mult, shift, None if bias is None else bias.data, *act)


def fc_per_tensor_multiplier(layer: Layer) -> tuple[int, int]:
    """TFLite's per-tensor FC multiplier: float32 product of the input and weight scales, double
    division by the output scale (GetQuantizedConvolutionMultipler)."""
    x, w, y = layer.inputs[0], layer.inputs[1], layer.outputs[0]
    product = float(np.float32(x.scale[0]) * np.float32(w.scale[0]))
    return quantize_multiplier(product / float(y.scale[0]))


def lstm_layer_params(layer: Layer) -> LstmParams:
    """The LSTM's parameters from its tensors (see mcudeploy.reference.lstm.lstm_params)."""
    t = layer.inputs
    x, hidden, cell = t[0], t[18], t[19]
    weights = {g: (t[i].data, float(t[i].scale[0]), t[r].data, float(t[r].scale[0]))
               for g, (i, r, _) in LSTM_TENSORS.items()}
    biases = {g: t[b].data for g, (_, _, b) in LSTM_TENSORS.items()}
    assert set(weights) == set(GATES)
    assert layer.options.fusedActivationFunction == fb.ActivationFunctionType.TANH
    return lstm_params(int16=x.dtype == np.int16, time_major=bool(layer.options.timeMajor),
                       input_scale=float(x.scale[0]), input_zero_point=x.zero_point,
                       hidden_scale=float(hidden.scale[0]), hidden_zero_point=hidden.zero_point,
                       cell_scale=float(cell.scale[0]), cell_clip=float(layer.options.cellClip),
                       weights=weights, biases=biases)

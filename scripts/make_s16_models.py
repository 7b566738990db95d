"""Make the 16x8 and LSTM test models in tests/data/s16/ with TensorFlow's converter (run once).

    python3.11 -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu==2.21.0 tf_keras==2.21.0
    /tmp/tf/bin/python scripts/make_s16_models.py [--out tests/data/s16]

The committed files were made by TensorFlow 2.21.0 with tf_keras 2.21.0 (Keras 3's LSTM becomes a
WHILE loop in the converter, tf_keras' becomes UNIDIRECTIONAL_SEQUENCE_LSTM). Each model is one
layer with random weights and biases, converted with a representative dataset:
- `<name>.tflite` of the single-op kinds: 16x8 (`EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_
  WEIGHTS_INT8`, int16 input and output); per-channel weights (FULLY_CONNECTED too) unless the
  name says per_tensor; int64 biases unless the name says int32;
- `lstm_int8*.tflite`: full int8 (`TFLITE_BUILTINS_INT8`, int8 input and output);
- `lstm_16x8*.tflite`: TensorFlow 2.21 refuses to quantize UNIDIRECTIONAL_SEQUENCE_LSTM to 16x8
  ("Quantization to 16x8-bit not yet supported"), old and new quantizer alike, while TFLM runs
  such layers. So the 16x8 LSTM files are the int8 conversion of the same layer requantized by
  this script to TFLite's 16x8 scheme: int16 input, output and hidden state (zero point 0, scale
  from the int8 file's range), int64 biases with scale input_scale * weight_scale, the int8
  weights and the int16 cell state as converted.
CI does not need TensorFlow: the tests read the committed files. The last line of README.md in
the output directory names the versions.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import flatbuffers
import numpy as np
import tensorflow as tf
import tf_keras as keras
from tensorflow.lite.python import schema_py_generated as fb

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = 32


def randomise(model: keras.Model, seed: int) -> None:
    """Random weights and biases (Keras starts biases at zero, which would leave them untested)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([rng.normal(0.0, 0.4, w.shape).astype(np.float32) for w in weights])


def single_input(shape: tuple[int, ...], layer: keras.layers.Layer) -> keras.Model:
    """A model of one layer on one input of `shape` (batch included)."""
    inp = keras.Input(shape[1:], batch_size=shape[0])
    return keras.Model(inp, layer(inp))


def two_inputs(shape: tuple[int, ...], layer: keras.layers.Layer, then: keras.layers.Layer | None = None
               ) -> keras.Model:
    """A model of one two-input layer (and an activation the converter fuses into it)."""
    a = keras.Input(shape[1:], batch_size=shape[0])
    b = keras.Input(shape[1:], batch_size=shape[0])
    out = layer([a, b])
    return keras.Model([a, b], then(out) if then is not None else out)


def dataset(model: keras.Model, seed: int) -> Callable[[], object]:
    """Calibration samples: normal values, each input with its own spread."""
    def samples():
        rng = np.random.default_rng(seed)
        spreads = [1.0 + 2.0 * i for i in range(len(model.inputs))]
        for _ in range(SAMPLES):
            yield [rng.normal(0.0, s, tuple(t.shape)).astype(np.float32)
                   for t, s in zip(model.inputs, spreads, strict=True)]
    return samples


def convert(model: keras.Model, seed: int, mode: str, **options: object) -> bytes:
    """mode "16x8" (int16 I/O) or "int8" (int8 I/O); options are converter attributes."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = dataset(model, seed)
    if mode == "16x8":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int16
    else:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    for name, value in options.items():
        setattr(converter, name, value)
    return converter.convert()


L = keras.layers
# name: (model builder, converter options)
SINGLE_OPS: dict[str, tuple[Callable[[], keras.Model], dict[str, object]]] = {
    "conv_same_relu_b2": (
        lambda: single_input((2, 7, 6, 3), L.Conv2D(5, 3, padding="same", activation="relu")), {}),
    "conv_valid_stride2": (lambda: single_input((1, 9, 8, 4), L.Conv2D(6, (3, 2), strides=2)), {}),
    "conv_dilation2_relu6": (
        lambda: single_input((1, 8, 8, 3), L.Conv2D(4, 3, dilation_rate=2, padding="same",
                                                    activation="relu6")),
        {}),
    "conv_per_tensor": (lambda: single_input((1, 6, 5, 3), L.Conv2D(5, 3, padding="same")),
                        {"_experimental_disable_per_channel": True}),
    "conv_bias_int32": (lambda: single_input((1, 6, 6, 2), L.Conv2D(3, 3, padding="same")),
                        {"_experimental_full_integer_quantization_bias_type": tf.int32}),
    "conv_1x1": (lambda: single_input((1, 5, 5, 7), L.Conv2D(3, 1)), {}),
    "depthwise_mult2_stride2_b2": (
        lambda: single_input((2, 8, 7, 3), L.DepthwiseConv2D(3, strides=2, depth_multiplier=2,
                                                             padding="same")),
        {}),
    "depthwise_dilation2_relu": (
        lambda: single_input((1, 9, 9, 5), L.DepthwiseConv2D(3, dilation_rate=2, padding="same",
                                                             activation="relu")), {}),
    "fc_relu_b3": (lambda: single_input((3, 10), L.Dense(7, activation="relu")), {}),
    "fc_no_bias": (lambda: single_input((1, 13), L.Dense(5, use_bias=False)), {}),
    "fc_per_tensor_b2": (lambda: single_input((2, 9), L.Dense(6)),
                         {"_experimental_disable_per_channel": True}),
    "add_relu": (lambda: two_inputs((1, 4, 5, 3), L.Add(), L.ReLU()), {}),
    "mul": (lambda: two_inputs((2, 3, 4, 5), L.Multiply()), {}),
    "avgpool_same_stride2": (
        lambda: single_input((1, 7, 8, 3), L.AveragePooling2D(3, strides=2, padding="same")), {}),
    "maxpool_valid": (lambda: single_input((2, 7, 8, 5), L.MaxPooling2D(2, strides=2)), {}),
    "maxpool_same": (lambda: single_input((1, 5, 7, 3), L.MaxPooling2D(3, strides=2, padding="same")), {}),
    "softmax": (lambda: single_input((2, 3, 10), L.Softmax()), {}),
    "softmax_wide": (lambda: single_input((4, 33), L.Softmax()), {}),
}

# name: (time_major, batch, time steps, input size, hidden size)
LSTMS = {
    "lstm": (False, 1, 5, 3, 4),
    "lstm_b2": (False, 2, 4, 5, 6),
    "lstm_time_major_b2": (True, 2, 4, 3, 5),
}


def lstm_model(time_major: bool, batch: int, steps: int, inputs: int, hidden: int) -> keras.Model:
    shape = (steps, batch, inputs) if time_major else (batch, steps, inputs)
    return single_input(shape, L.LSTM(hidden, return_sequences=True, time_major=time_major))


def requantize_lstm_16x8(int8_file: bytes) -> bytes:
    """The int8 UNIDIRECTIONAL_SEQUENCE_LSTM as TFLite's 16x8 scheme would quantize it (see the
    module docstring): int16 input, output and hidden state, int64 biases."""
    model = fb.ModelT.InitFromPackedBuf(int8_file, 0)
    graph = model.subgraphs[0]
    (op,) = graph.operators
    tensors = graph.tensors
    op.intermediates = []

    def int16_range(index: int) -> float:
        q = tensors[index].quantization
        scale, zero = float(q.scale[0]), int(q.zeroPoint[0])
        return max(abs(scale * (-128 - zero)), abs(scale * (127 - zero))) / 32767.0

    input_scale, hidden_scale = int16_range(op.inputs[0]), int16_range(op.outputs[0])
    retyped = ((op.inputs[0], input_scale), (op.inputs[18], hidden_scale), (op.outputs[0], hidden_scale))
    for index, scale in retyped:
        tensors[index].type = fb.TensorType.INT16
        tensors[index].quantization.scale = [scale]
        tensors[index].quantization.zeroPoint = [0]
    for bias_index, weight_index in zip(op.inputs[12:16], op.inputs[1:5], strict=True):
        bias = tensors[bias_index]
        quantized = np.frombuffer(bytes(model.buffers[bias.buffer].data), np.int32)
        real = quantized * float(bias.quantization.scale[0])
        scale = input_scale * float(tensors[weight_index].quantization.scale[0])
        values = np.round(real / scale).astype(np.int64)
        buffer = fb.BufferT()
        buffer.data = np.frombuffer(values.tobytes(), np.uint8)
        model.buffers.append(buffer)
        bias.buffer = len(model.buffers) - 1
        bias.type = fb.TensorType.INT64
        bias.quantization.scale = [scale]
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "s16")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for seed, (name, (build, options)) in enumerate(SINGLE_OPS.items()):
        keras.utils.set_random_seed(seed)
        model = build()
        randomise(model, seed)
        (args.out / f"{name}.tflite").write_bytes(convert(model, seed, "16x8", **options))
        print(name)
    for seed, (name, sizes) in enumerate(LSTMS.items(), start=100):
        keras.utils.set_random_seed(seed)
        model = lstm_model(*sizes)
        randomise(model, seed)
        int8_file = convert(model, seed, "int8")
        int16_file = requantize_lstm_16x8(int8_file)
        (args.out / f"{name.replace('lstm', 'lstm_int8', 1)}.tflite").write_bytes(int8_file)
        (args.out / f"{name.replace('lstm', 'lstm_16x8', 1)}.tflite").write_bytes(int16_file)
        print(name)
    (args.out / "README.md").write_text(
        "Test models made by `scripts/make_s16_models.py` (see its docstring): one layer each, random\n"
        "weights, 16x8 single ops and int8/16x8 UNIDIRECTIONAL_SEQUENCE_LSTM.\n\n"
        f"Made with TensorFlow {tf.__version__} and tf_keras {keras.__version__}.\n")


if __name__ == "__main__":
    main()

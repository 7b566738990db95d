"""Make the Keras 3 test models in tests/data/keras/ with TensorFlow's converter (run once).

    python3.11 -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu==2.21.0
    /tmp/tf/bin/python scripts/make_keras_models.py [--out tests/data/keras]

The committed files were made by TensorFlow 2.21.0 with Keras 3.15.1, as a Keras user makes them:
`keras.Input(shape)` with the batch left unknown (so Flatten and Reshape compute their shape at
run time: SHAPE, STRIDED_SLICE, PACK feeding RESHAPE), random weights and biases, converted to
full int8 (`TFLITE_BUILTINS_INT8`, int8 input and output) with a representative dataset of 32
random-normal samples. The float models (`*.float32.tflite` and the like) are what a Keras user
gets by default: converted without quantization (float32), with `Optimize.DEFAULT` alone
(dynamic range: int8 weights of the larger layers, float activations), with float16 weights, and
to full int8 with uint8 input and output (`inference_input_type=tf.uint8`). CI does not need
TensorFlow: the tests read the committed files, and the last line of README.md in the output
directory names the versions.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = 32


def randomise(model: keras.Model, seed: int) -> None:
    """Random weights and biases (Keras starts biases at zero, which would leave them untested);
    batch normalisation gets scales and variances between 0.5 and 1.5, layer normalisation scales
    between 0.5 and 1.5."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = weights
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
        elif isinstance(layer, keras.layers.LayerNormalization):
            gamma, beta = weights
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape)])
        elif weights:
            layer.set_weights([rng.normal(0.0, 0.3, w.shape).astype(np.float32) for w in weights])


def flatten() -> keras.Model:
    """Conv2D, Flatten (SHAPE, STRIDED_SLICE, PACK, RESHAPE with an unknown batch), Dense."""
    x = keras.Input((8, 8, 3))
    y = keras.layers.Conv2D(4, 3, activation="relu")(x)
    y = keras.layers.Flatten()(y)
    return keras.Model(x, keras.layers.Dense(5)(y))


def reshape_1d() -> keras.Model:
    """Reshape to a sequence, Conv1D, GlobalAveragePooling1D (MEAN over a 3-D tensor)."""
    x = keras.Input((6, 8, 4))
    y = keras.layers.Reshape((48, 4))(x)
    y = keras.layers.Conv1D(12, 3, activation="relu")(y)
    y = keras.layers.GlobalAveragePooling1D()(y)
    return keras.Model(x, keras.layers.Dense(3)(y))


def max_pool_1d() -> keras.Model:
    """Conv1D then GlobalMaxPooling1D (REDUCE_MAX over the time axis)."""
    x = keras.Input((40, 6))
    y = keras.layers.Conv1D(10, 5, padding="same")(x)
    y = keras.layers.GlobalMaxPooling1D()(y)
    return keras.Model(x, keras.layers.Dense(4)(y))


def layout_and_prelu() -> keras.Model:
    """Permute (TRANSPOSE), PReLU per channel (PRELU), ReLU after a concatenation (RELU)."""
    x = keras.Input((6, 10, 3))
    a = keras.layers.Conv2D(8, 3, padding="same")(x)
    a = keras.layers.PReLU(shared_axes=[1, 2])(a)
    b = keras.layers.Conv2D(4, 1)(x)
    y = keras.layers.ReLU()(keras.layers.Concatenate()([a, b]))
    y = keras.layers.Permute((2, 1, 3))(y)
    return keras.Model(x, keras.layers.Conv2D(5, 3)(y))


def mobilenet() -> keras.Model:
    """keras.applications.MobileNet(alpha=0.25), untrained, 10 classes, on 96x96x3."""
    return keras.applications.MobileNet(input_shape=(96, 96, 3), alpha=0.25, weights=None, classes=10)


def small_cnn() -> keras.Model:
    """Conv2D, DepthwiseConv2D with ReLU6, batch normalisation, a residual Add, max pooling, global
    average pooling, two Dense layers and Softmax; the larger weights (a 3x3 convolution of 24
    channels, the first Dense) are the ones a dynamic-range conversion stores as int8."""
    x = keras.Input((12, 12, 3))
    y = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    y = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(y)
    y = keras.layers.Conv2D(24, 1)(y)
    y = keras.layers.BatchNormalization()(y)
    z = keras.layers.Conv2D(24, 3, padding="same")(y)
    y = keras.layers.ReLU()(keras.layers.Add()([y, z]))
    y = keras.layers.MaxPooling2D()(y)
    y = keras.layers.Conv2D(32, 3, activation="relu")(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    y = keras.layers.Dense(64, activation="relu")(y)
    return keras.Model(x, keras.layers.Softmax()(keras.layers.Dense(10)(y)))


def wake_head() -> keras.Model:
    """An openWakeWord-style head: Flatten of [16, 48] features (unknown batch: SHAPE...), Dense
    with ReLU, Dense with a sigmoid."""
    x = keras.Input((16, 48))
    y = keras.layers.Dense(16, activation="relu")(keras.layers.Flatten()(x))
    return keras.Model(x, keras.layers.Dense(1, activation="sigmoid")(y))


class LayerNorm(keras.layers.Layer):
    """Layer normalisation over the last axis written out as openWakeWord's exported heads compute
    it: (x - mean) * rsqrt(mean((x - mean)^2) + eps) * gamma + beta (MEAN, SUB, MUL, ADD, RSQRT;
    Keras' own LayerNormalization converts to SQUARED_DIFFERENCE instead)."""

    def build(self, shape: tuple) -> None:
        self.gamma = self.add_weight(shape=(shape[-1],), initializer="ones")
        self.beta = self.add_weight(shape=(shape[-1],), initializer="zeros")

    def call(self, x):  # Keras tensors in and out
        centred = x - keras.ops.mean(x, axis=-1, keepdims=True)
        variance = keras.ops.mean(centred * centred, axis=-1, keepdims=True)
        return centred * keras.ops.rsqrt(variance + 1e-5) * self.gamma + self.beta


def layer_norm() -> keras.Model:
    """An openWakeWord-style head with layer normalisation: Flatten, Dense, LayerNorm, ReLU, Dense
    with a sigmoid."""
    x = keras.Input((16, 48))
    y = keras.layers.Dense(32)(keras.layers.Flatten()(x))
    y = keras.layers.ReLU()(LayerNorm()(y))
    return keras.Model(x, keras.layers.Dense(1, activation="sigmoid")(y))


def keras_layer_norm() -> keras.Model:
    """Keras' own LayerNormalization after a Dense layer (MEAN, SQUARED_DIFFERENCE, RSQRT, and the
    mean negated: a float NEG between DEQUANTIZE and QUANTIZE in the full-int8 file)."""
    x = keras.Input((16, 48))
    y = keras.layers.Dense(32)(keras.layers.Flatten()(x))
    y = keras.layers.LayerNormalization()(y)
    return keras.Model(x, keras.layers.Dense(3)(y))


def keras_layer_norm_conv1d() -> keras.Model:
    """LayerNormalization over the channels of a Conv1D's output (channels last), then ReLU and a
    second Conv1D: the per-step 1 / sqrt(variance) times the per-channel gamma broadcasts both ways."""
    x = keras.Input((24, 8))
    y = keras.layers.Conv1D(16, 3, padding="same")(x)
    y = keras.layers.ReLU()(keras.layers.LayerNormalization()(y))
    return keras.Model(x, keras.layers.Conv1D(4, 3)(y))


MODELS: dict[str, Callable[[], keras.Model]] = {
    "flatten": flatten, "reshape_1d": reshape_1d, "max_pool_1d": max_pool_1d,
    "layout_and_prelu": layout_and_prelu, "mobilenet_025": mobilenet,
}


FLOAT_MODELS: dict[str, Callable[[], keras.Model]] = {"small_cnn": small_cnn, "wake_head": wake_head}
FORMS = ("float32", "dynamic", "float16", "uint8")  # how each float model is converted
LAYER_NORM_SEED = 100


def convert(model: keras.Model, seed: int, form: str = "int8") -> bytes:
    """The model converted as `form` says: full int8 (int8 or uint8 I/O), or float32, dynamic
    range, float16 (no representative dataset)."""
    shape = tuple(d for d in model.inputs[0].shape[1:])
    rng = np.random.default_rng(seed)
    samples = [rng.normal(0, 1, (1, *shape)).astype(np.float32) for _ in range(SAMPLES)]
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if form == "float32":
        return converter.convert()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if form == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if form in ("dynamic", "float16"):
        return converter.convert()
    converter.representative_dataset = lambda: ([s] for s in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8 if form == "uint8" else tf.int8
    converter.inference_output_type = tf.uint8 if form == "uint8" else tf.int8
    return converter.convert()


def write_layer_norm(out: Path) -> None:
    """layer_norm.tflite (full int8) and layer_norm.float32.tflite, from one model (its own seed)."""
    model = layer_norm()
    randomise(model, LAYER_NORM_SEED)
    for form, name in (("int8", "layer_norm"), ("float32", "layer_norm.float32")):
        (out / f"{name}.tflite").write_bytes(convert(model, LAYER_NORM_SEED, form))
        print(name, "written")


KERAS_LAYER_NORMS = {"keras_layer_norm": (keras_layer_norm, 101),
                     "keras_layer_norm_conv1d": (keras_layer_norm_conv1d, 102)}


def write_keras_layer_norm(out: Path) -> None:
    """keras_layer_norm*.tflite (full int8) and keras_layer_norm*.float32.tflite: Keras' own
    LayerNormalization, each model from its own seed."""
    for name, (make, seed) in KERAS_LAYER_NORMS.items():
        model = make()
        randomise(model, seed)
        for form, file in (("int8", name), ("float32", f"{name}.float32")):
            (out / f"{file}.tflite").write_bytes(convert(model, seed, form))
            print(file, "written")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "keras")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for seed, (name, make) in enumerate(MODELS.items()):
        model = make()
        randomise(model, seed)
        (args.out / f"{name}.tflite").write_bytes(convert(model, seed))
        print(name, "written")
    for seed, (name, make) in enumerate(FLOAT_MODELS.items(), start=len(MODELS)):
        model = make()
        randomise(model, seed)
        for form in FORMS:
            (args.out / f"{name}.{form}.tflite").write_bytes(convert(model, seed, form))
            print(f"{name}.{form}", "written")
    write_layer_norm(args.out)
    write_keras_layer_norm(args.out)
    (args.out / "README.md").write_text(
        "Keras 3 models converted by `scripts/make_keras_models.py` (see its docstring): `NAME.tflite` "
        "to full int8, `NAME.FORM.tflite` as float32, dynamic range, float16, or full int8 with uint8 "
        "input and output; `layer_norm.tflite` (full int8) and `layer_norm.float32.tflite`: a head with "
        "layer normalisation (SUB, RSQRT); `keras_layer_norm*.tflite` and "
        "`keras_layer_norm*.float32.tflite`: Keras' own LayerNormalization after Dense and Conv1D layers "
        "(SQUARED_DIFFERENCE, RSQRT, and in full int8 a float NEG between DEQUANTIZE and QUANTIZE).\n\n"
        f"Made by TensorFlow {tf.__version__} with Keras {keras.__version__}.\n")


if __name__ == "__main__":
    main()

"""Make the LSTM keyword-style test models in tests/data/lstm/ with TensorFlow's converter (run once).

    python3.11 -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu==2.21.0 tf_keras==2.21.0
    /tmp/tf/bin/python scripts/make_lstm_models.py [--out tests/data/lstm]

The committed files were made by TensorFlow 2.21.0 with tf_keras 2.21.0 (Keras 3's LSTM becomes a
WHILE loop in the converter; tf_keras' becomes UNIDIRECTIONAL_SEQUENCE_LSTM), as a user makes a
small keyword model: a static batch of 1 and a static sequence length, random weights and biases,
converted to full int8 (`TFLITE_BUILTINS_INT8`, int8 input and output) with a representative
dataset of 32 random-normal samples:
- `keyword_lstm.tflite`: [1, 10, 8] -> LSTM(16) -> Dense(4) -> softmax (the converter writes the
  LSTM's last step as a STRIDED_SLICE of its sequence output);
- `sequence_lstm.tflite`: [1, 6, 5] -> LSTM(7, return_sequences=True) -> Dense(3) per step.
CI does not need TensorFlow: the tests read the committed files. The last line of README.md in
the output directory names the versions.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = 32
L = keras.layers


def keyword_lstm() -> keras.Model:
    """Ten frames of eight features, one LSTM layer, a softmax over four classes."""
    x = keras.Input((10, 8), batch_size=1)
    y = L.LSTM(16)(x)
    return keras.Model(x, L.Dense(4, activation="softmax")(y))


def sequence_lstm() -> keras.Model:
    """Every step's hidden state, each through a Dense layer."""
    x = keras.Input((6, 5), batch_size=1)
    y = L.LSTM(7, return_sequences=True)(x)
    return keras.Model(x, L.Dense(3)(y))


MODELS: dict[str, Callable[[], keras.Model]] = {"keyword_lstm": keyword_lstm, "sequence_lstm": sequence_lstm}


def randomise(model: keras.Model, seed: int) -> None:
    """Random weights and biases (Keras starts biases at zero, which would leave them untested)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([rng.normal(0.0, 0.4, w.shape).astype(np.float32) for w in weights])


def convert(model: keras.Model, seed: int) -> bytes:
    """Full int8 with int8 input and output, calibrated on random-normal samples."""
    rng = np.random.default_rng(seed)
    samples = [rng.normal(0.0, 1.0, tuple(model.inputs[0].shape)).astype(np.float32) for _ in range(SAMPLES)]
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([s] for s in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "lstm")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for seed, (name, build) in enumerate(MODELS.items(), start=200):
        keras.utils.set_random_seed(seed)
        model = build()
        randomise(model, seed)
        (args.out / f"{name}.tflite").write_bytes(convert(model, seed))
        print(name)
    (args.out / "README.md").write_text(
        "LSTM test models made by `scripts/make_lstm_models.py` (see its docstring): keyword-style\n"
        "Keras models with an int8 UNIDIRECTIONAL_SEQUENCE_LSTM, random weights.\n\n"
        f"Made with TensorFlow {tf.__version__} and tf_keras {keras.__version__}.\n")


if __name__ == "__main__":
    main()

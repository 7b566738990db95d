"""Make models/tiny_cnn.tflite, the bundled int8 model, with TensorFlow's converter.

TensorFlow is an independent producer of int8 TFLite files (a dev extra: `pip install -e .[models]`),
so the bundled model is not shaped by mcudeploy's own writer. The network: 12x12x1 images of ten
synthetic patterns (bars, crosses, corners, blobs), a standard convolution, max pooling, a depthwise
convolution, a 1x1 convolution with a residual ADD, average pooling, two dense layers and softmax.
Seeded and run with deterministic ops, so the same TensorFlow version gives the same file.

    python scripts/make_bundled_model.py            # writes models/tiny_cnn.tflite and inputs
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIZE, CLASSES, SEED = 12, 10, 20261123
OUT = Path(__file__).resolve().parent.parent / "models"


def patterns(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noisy images of ten pattern classes at random offsets."""
    images = rng.normal(0.0, 0.15, size=(count, SIZE, SIZE)).astype(np.float32)
    labels = rng.integers(0, CLASSES, size=count)
    for img, label in zip(images, labels, strict=True):
        r, c = rng.integers(2, SIZE - 2, size=2)
        if label == 0:
            img[r, :] += 1.0
        elif label == 1:
            img[:, c] += 1.0
        elif label == 2:
            img[r, :] += 1.0
            img[:, c] += 1.0
        elif label == 3:
            np.fill_diagonal(img, img.diagonal() + 1.0)
        elif label == 4:
            np.fill_diagonal(np.fliplr(img), np.fliplr(img).diagonal() + 1.0)
        elif label == 5:
            img[r - 2 : r + 2, c - 2 : c + 2] += 1.0
        elif label == 6:
            img[:SIZE // 2, :SIZE // 2] += 0.8
        elif label == 7:
            img[SIZE // 2 :, SIZE // 2 :] += 0.8
        elif label == 8:
            img[::2, :] += 0.7
        else:
            img[:, ::2] += 0.7
    return images[..., None], labels


def build_model():
    import tensorflow as tf

    layers = tf.keras.layers
    inp = layers.Input((SIZE, SIZE, 1), batch_size=1, name="image")
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inp)
    x = layers.MaxPool2D(2, name="max_pool")(x)
    y = layers.DepthwiseConv2D(3, padding="same", activation="relu6", name="dw_conv")(x)
    y = layers.Conv2D(8, 1, name="pw_conv")(y)
    x = layers.Add(name="residual")([x, y])
    x = layers.ReLU(name="residual_relu")(x)
    x = layers.AveragePooling2D(2, name="avg_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(16, activation="relu", name="fc1")(x)
    x = layers.Dense(CLASSES, name="fc2")(x)
    out = layers.Softmax(name="softmax")(x)
    return tf.keras.Model(inp, out, name="tiny_cnn")


def main() -> None:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(SEED)
    x_train, y_train = patterns(6000, rng)
    x_test, y_test = patterns(1000, rng)
    model = build_model()
    model.compile(optimizer=tf.keras.optimizers.Adam(0.003),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=6, batch_size=64, verbose=2)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"float accuracy on held-out patterns: {accuracy:.3f}")

    def representative():
        for i in range(200):
            yield [x_train[i : i + 1]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    data = converter.convert()
    OUT.mkdir(exist_ok=True)
    (OUT / "tiny_cnn.tflite").write_bytes(data)
    np.save(OUT / "tiny_cnn_inputs.npy", x_test[:32].astype(np.float32))
    np.save(OUT / "tiny_cnn_labels.npy", y_test[:32].astype(np.int64))
    print(f"wrote {OUT / 'tiny_cnn.tflite'} ({len(data)} bytes)")


if __name__ == "__main__":
    main()

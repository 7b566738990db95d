"""Make the resize test models in tests/data/resize/ with TensorFlow's converter (run once).

    python3.11 -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu==2.21.0
    /tmp/tf/bin/python scripts/make_resize_models.py [--out tests/data/resize]

Each model is a Keras 3 model (batch 1) of a convolution, a resize, a convolution and a second
resize, with random weights, converted to full int8 as scripts/make_keras_models.py does. The
resizes are `tf.compat.v1.image.resize_bilinear` / `resize_nearest_neighbor` with each flag pair
TFLite has (align_corners, half_pixel_centers, neither), up and down, by integer and non-integer
ratios, and Keras's own UpSampling2D and Resizing layers (half_pixel_centers).
`keras_layers.float32.tflite` is the last one unquantized, for `--calibration`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf
from make_keras_models import convert, randomise

ROOT = Path(__file__).resolve().parent.parent


def _resize(method: str, size: tuple[int, int], align: bool, half: bool) -> keras.layers.Layer:
    """A TF1 resize with explicit flags, as a Keras layer."""
    fn = tf.compat.v1.image.resize_bilinear if method == "bilinear" else \
        tf.compat.v1.image.resize_nearest_neighbor
    return keras.layers.Lambda(lambda t: fn(t, size, align_corners=align, half_pixel_centers=half))


def _two_resizes(shape: tuple[int, int, int], first: keras.layers.Layer,
                 second: keras.layers.Layer) -> keras.Model:
    x = keras.Input(shape, batch_size=1)
    y = keras.layers.Conv2D(4, 3, padding="same")(x)
    y = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(first(y))
    return keras.Model(x, second(y))


def plain() -> keras.Model:
    """Neither flag: bilinear 6x6 -> 12x12, nearest down to 7x5."""
    return _two_resizes((6, 6, 3), _resize("bilinear", (12, 12), False, False),
                        _resize("nearest", (7, 5), False, False))


def align_corners() -> keras.Model:
    """align_corners: bilinear 5x7 -> 9x12, nearest to 4x17."""
    return _two_resizes((5, 7, 3), _resize("bilinear", (9, 12), True, False),
                        _resize("nearest", (4, 17), True, False))


def half_pixel() -> keras.Model:
    """half_pixel_centers: bilinear 12x10 -> 5x7 (down), nearest up to 13x11."""
    return _two_resizes((12, 10, 3), _resize("bilinear", (5, 7), False, True),
                        _resize("nearest", (13, 11), False, True))


def keras_layers() -> keras.Model:
    """Keras's UpSampling2D(2, bilinear) and Resizing(9, 7, nearest), as users write them."""
    return _two_resizes((5, 6, 3), keras.layers.UpSampling2D(2, interpolation="bilinear"),
                        keras.layers.Resizing(9, 7, interpolation="nearest"))


MODELS: dict[str, Callable[[], keras.Model]] = {
    "plain": plain, "align_corners": align_corners, "half_pixel": half_pixel, "keras_layers": keras_layers,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "resize")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for seed, (name, make) in enumerate(MODELS.items(), start=100):
        model = make()
        randomise(model, seed)
        (args.out / f"{name}.tflite").write_bytes(convert(model, seed))
        if name == "keras_layers":
            (args.out / f"{name}.float32.tflite").write_bytes(convert(model, seed, "float32"))
        print(name, "written")
    (args.out / "README.md").write_text(
        "Resize models converted by `scripts/make_resize_models.py` (see its docstring).\n\n"
        f"Made by TensorFlow {tf.__version__} with Keras {keras.__version__}.\n")


if __name__ == "__main__":
    main()

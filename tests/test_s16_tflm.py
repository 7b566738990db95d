"""16x8 layers converted by TensorFlow (tests/data/s16, scripts/make_s16_models.py): TFLM's
Python interpreter, mcudeploy's numpy reference (mcudeploy/reference/s16.py) and nnref's _s16
functions built for the host agree bit for bit on random int16 inputs, with the parameters
derived from the file as TFLM derives them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from nnreflib import NnrefHost, build
from nnreflib_s16 import NnrefS16
from s16_models import Layer, Tflm, conv_params, fc_per_tensor_multiplier, load, padding, random_input

from mcudeploy.arith import quantize_multiplier, requantize
from mcudeploy.reference import s16

SINGLE_OPS = sorted(p.stem for p in (Path(__file__).parent / "data" / "s16").glob("*.tflite")
                    if not p.stem.startswith("lstm"))
VECTORS = 4


@pytest.fixture(scope="module")
def nnref(tmp_path_factory: pytest.TempPathFactory) -> NnrefS16:
    return NnrefS16(NnrefHost(build(tmp_path_factory.mktemp("nnref"))).dll)


def _vectors(layer: Layer, seed: int) -> list[list[np.ndarray]]:
    """Random int16 inputs, then one at the extremes (every input at -32768 or 32767 by halves)."""
    rng = np.random.default_rng(seed)
    inputs = [t for t in layer.inputs if t is not None and t.data is None]
    vectors = [[random_input(t, rng) for t in inputs] for _ in range(VECTORS - 1)]
    extremes = [np.where(rng.random(t.shape) < 0.5, -32768, 32767).astype(np.int16) for t in inputs]
    return [*vectors, extremes]


def _conv(layer: Layer, nnref: NnrefS16, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, w, b = layer.inputs
    o = layer.options
    stride, dilation = (o.strideH, o.strideW), (o.dilationHFactor, o.dilationWFactor)
    pad = padding(layer, x.shape[1:3], w.shape[1:3], stride, dilation)
    p = conv_params(layer, w, b)
    out_shape = layer.outputs[0].shape
    expected = s16.conv2d(x, w.data, p, stride, dilation, pad, out_shape)
    status, got = nnref.conv(x, w.data, p.bias, p.multiplier, p.shift, stride=stride, padding=pad,
                             dilation=dilation, act=(p.act_min, p.act_max), out_shape=out_shape,
                             bias_int32=b.dtype == np.int32)
    assert status == 0
    return expected, got


def _depthwise(layer: Layer, nnref: NnrefS16, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, w, b = layer.inputs
    o = layer.options
    stride, dilation = (o.strideH, o.strideW), (o.dilationHFactor, o.dilationWFactor)
    pad = padding(layer, x.shape[1:3], w.shape[1:3], stride, dilation)
    p = conv_params(layer, w, b)
    out_shape = layer.outputs[0].shape
    multiplier = out_shape[-1] // x.shape[-1]
    expected = s16.depthwise_conv2d(x, w.data, p, stride, dilation, pad, multiplier, out_shape)
    status, got = nnref.depthwise(x, w.data, p.bias, p.multiplier, p.shift, ch_mult=multiplier, stride=stride,
                                  padding=pad, dilation=dilation, act=(p.act_min, p.act_max),
                                  out_shape=out_shape)
    assert status == 0
    return expected, got


def _fully_connected(layer: Layer, nnref: NnrefS16, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per tensor: arm_fully_connected_s16. Per channel (TensorFlow's default for 16x8 Dense),
    which Arm's API has no FC for: arm_convolve_wrapper_s16 as a 1x1 convolution."""
    _, w, b = layer.inputs
    p = conv_params(layer, w, b)
    if w.scale.size == 1:
        mult, shift = fc_per_tensor_multiplier(layer)
        p = s16.ConvParamsS16(np.array([mult]), np.array([shift]), p.bias, p.act_min, p.act_max)
    expected = s16.fully_connected(x, w.data, p)
    rows, (c_out, depth) = x.size // w.shape[1], w.shape
    if w.scale.size == 1:
        status, got = nnref.fully_connected(x, w.data, p.bias, int(p.multiplier[0]), int(p.shift[0]),
                                            act=(p.act_min, p.act_max))
    else:
        status, got = nnref.conv(x.reshape(rows, 1, 1, depth), w.data.reshape(c_out, 1, 1, depth), p.bias,
                                 p.multiplier, p.shift, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                                 act=(p.act_min, p.act_max), out_shape=(rows, 1, 1, c_out))
    assert status == 0
    return expected, got.reshape(expected.shape)


def _pool(layer: Layer, nnref: NnrefS16, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    o = layer.options
    mode = "avg" if layer.kind == "AVERAGE_POOL_2D" else "max"
    window, stride = (o.filterHeight, o.filterWidth), (o.strideH, o.strideW)
    pad = padding(layer, x.shape[1:3], window, stride, (1, 1))
    y = layer.outputs[0]
    act = s16.activation_range(*layer.activation, float(y.scale[0]))
    expected = s16.pool2d(x, mode, window, stride, pad, act, y.shape)
    status, got = nnref.pool(mode, x, window=window, stride=stride, padding=pad, act=act, out_shape=y.shape)
    assert status == 0
    return expected, got


def _add(layer: Layer, nnref: NnrefS16, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ta, tb, y = layer.inputs[0], layer.inputs[1], layer.outputs[0]
    act = s16.activation_range(*layer.activation, float(y.scale[0]))
    p = s16.add_params(float(ta.scale[0]), float(tb.scale[0]), float(y.scale[0]), act)
    status, got = nnref.add(a, b, p)
    assert status == 0
    return s16.add(a, b, p), got


def _mul(layer: Layer, nnref: NnrefS16, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ta, tb, y = layer.inputs[0], layer.inputs[1], layer.outputs[0]
    act = s16.activation_range(*layer.activation, float(y.scale[0]))
    mult, shift = quantize_multiplier(float(ta.scale[0]) * float(tb.scale[0]) / float(y.scale[0]))
    status, got = nnref.mul(a, b, mult, shift, act)
    assert status == 0
    return s16.mul(a, b, mult, shift, act), got


def _softmax(layer: Layer, nnref: NnrefS16, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mult, shift = s16.softmax_params(float(layer.inputs[0].scale[0]), float(layer.options.beta))
    exp_lut, recip_lut = s16.softmax_luts()
    status, got = nnref.softmax(x, mult, shift, exp_lut, recip_lut)
    assert status == 0
    return s16.softmax(x, mult, shift, exp_lut, recip_lut), got


KERNELS = {"CONV_2D": _conv, "DEPTHWISE_CONV_2D": _depthwise, "FULLY_CONNECTED": _fully_connected,
           "AVERAGE_POOL_2D": _pool, "MAX_POOL_2D": _pool, "ADD": _add, "MUL": _mul, "SOFTMAX": _softmax}


@pytest.mark.parametrize("name", SINGLE_OPS)
def test_tflm_reference_and_nnref_agree_on_tensorflow_16x8_layers(name: str, nnref: NnrefS16) -> None:
    layer = load(name)
    assert layer.inputs[0].dtype == np.int16 and layer.outputs[0].dtype == np.int16
    tflm = Tflm(layer)
    for i, vector in enumerate(_vectors(layer, seed=len(name))):
        oracle = tflm(*vector)
        expected, got = KERNELS[layer.kind](layer, nnref, *vector)
        np.testing.assert_array_equal(expected, oracle, err_msg=f"{name} vector {i}: reference vs TFLM")
        np.testing.assert_array_equal(got, oracle, err_msg=f"{name} vector {i}: nnref vs TFLM")


def test_the_models_cover_the_16x8_cases() -> None:
    """Per-channel and per-tensor, int64 and int32 bias, padding, stride, dilation, batch > 1,
    activation clamps and odd channel counts are all among the converted models."""
    layers = [load(n) for n in SINGLE_OPS]
    kinds = {layer.kind for layer in layers}
    assert kinds == set(KERNELS)
    weights = [layer.inputs[1] for layer in layers if layer.kind in ("CONV_2D", "FULLY_CONNECTED")]
    assert {w.scale.size > 1 for w in weights} == {True, False}
    biases = {layer.inputs[2].dtype for layer in layers if layer.kind == "CONV_2D"}
    assert biases == {np.int32, np.int64}
    assert any(layer.inputs[0].shape[0] > 1 for layer in layers)
    assert any(layer.activation != (None, None) for layer in layers)
    assert any(layer.outputs[0].shape[-1] % 2 for layer in layers)
    convs = [layer.options for layer in layers if layer.kind in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert any(o.strideH > 1 for o in convs) and any(o.dilationHFactor > 1 for o in convs)


def test_softmax_tables_match_tflm_over_their_whole_range(nnref: NnrefS16) -> None:
    """Rows chosen so that the entries of both 513-value tables TFLM fills at Prepare (exp and
    1 / (1 + x)) are read (every exp entry the model's scale reaches, at least 500 of the 512
    reciprocal ones): the tables mcudeploy computes on the host (a float32 emulation of
    LUTPopulate) give TFLM's outputs, through the reference and through nnref."""
    layer = load("softmax_wide")
    tflm = Tflm(layer)
    rows, width = layer.inputs[0].shape
    mult, shift = s16.softmax_params(float(layer.inputs[0].scale[0]), float(layer.options.beta))
    exp_lut, recip_lut = s16.softmax_luts()
    rng = np.random.default_rng(5)
    exp_entries, recip_entries = set(), set()
    for i in range(1000):
        # One batch in four spreads the differences over the whole int16 range (the exp table);
        # the others vary how many values sit near the maximum (the sums, the reciprocal table).
        spread = np.full((rows, 1), 65536) if i % 4 == 0 else rng.integers(1, 65536, (rows, 1))
        x = (32767 - rng.integers(0, spread, (rows, width))).astype(np.int16)
        x[:, rng.integers(0, width)] = 32767
        oracle = tflm(x)
        np.testing.assert_array_equal(s16.softmax(x, mult, shift, exp_lut, recip_lut), oracle)
        status, got = nnref.softmax(x, mult, shift, exp_lut, recip_lut)
        assert status == 0
        np.testing.assert_array_equal(got, oracle)
        # Which entries were read: the exp table by each difference, the reciprocal by each sum.
        scaled = requantize(x.astype(np.int64) - 32767, mult, shift)
        sym = np.clip(scaled + 32767, -32768, 32767)
        exp_entries |= set((256 + (sym >> 7)).ravel().tolist())
        total = s16.lut_lookup(sym, exp_lut).sum(axis=1)
        clz = 32 - np.frexp(total.astype(np.float64))[1]
        shifted = ((total << (clz - 1)) + (1 << 13)) >> 14
        recip_entries |= set((256 + (np.clip(shifted - 3 * 2**15, -32768, 32767) >> 7)).tolist())
    # This model's input scale reaches exp(x) only down to x = -6.8: the entries below are unused.
    lowest = int(np.clip(requantize(np.int64(-65535), mult, shift) + 32767, -32768, 32767)) >> 7
    assert exp_entries == set(range(256 + lowest, 512))
    assert len(recip_entries) >= 500, len(recip_entries)

"""nnref's 16x8 and LSTM functions, built for the host and called through ctypes, are bit-exact
with mcudeploy/reference/s16.py and lstm.py on seeded random cases: shapes, per-channel
multipliers, shifts of both signs, int64/int32/no bias, padding, stride, dilation, batches,
activation clamps, channel multipliers; LSTMs with random parameters, cell clip, both layouts,
and the state carried by the step function; the arithmetic helpers on their edge values; and the
argument errors. (tests/test_s16_tflm.py and test_lstm_tflm.py check both against TFLM.)"""

from __future__ import annotations

import ctypes
import re
from pathlib import Path

import numpy as np
import pytest
from nnreflib import NnrefHost, build
from nnreflib_s16 import NnrefS16

from mcudeploy.reference import s16
from mcudeploy.reference.lstm import GATES, LstmGate, LstmParams, initial_state, lstm

CASES = 40
NNREF = Path(__file__).resolve().parent.parent / "firmware" / "nnref"


@pytest.fixture(scope="module")
def dll(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    return NnrefHost(build(tmp_path_factory.mktemp("nnref"))).dll


@pytest.fixture(scope="module")
def nnref(dll: ctypes.CDLL) -> NnrefS16:
    return NnrefS16(dll)


def _x(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(-32768, 32768, shape).astype(np.int16)


def _w(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(-127, 128, shape).astype(np.int8)


def _quant(rng: np.random.Generator, channels: int, shifts: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    return (rng.integers(2**30, 2**31, channels).astype(np.int64),
            rng.integers(shifts[0], shifts[1] + 1, channels).astype(np.int64))


def _act(rng: np.random.Generator) -> tuple[int, int]:
    kind = rng.integers(0, 3)
    if kind == 0:
        return s16.INT16_MIN, s16.INT16_MAX
    if kind == 1:
        return 0, s16.INT16_MAX
    low = int(rng.integers(-20000, 0))
    return low, int(rng.integers(low, 20000))


def _window(rng: np.random.Generator):
    """(in_hw, kernel, stride, dilation, (top, left), out_hw) with every output window touching
    the input."""
    kernel = tuple(int(k) for k in rng.integers(1, 4, 2))
    stride = tuple(int(s) for s in rng.integers(1, 4, 2))
    dilation = tuple(int(d) for d in rng.integers(1, 3, 2))
    hw = tuple(int(v) for v in rng.integers(1, 8, 2))
    pads, out = [], []
    for size, k, s, d in zip(hw, kernel, stride, dilation, strict=True):
        span = (k - 1) * d + 1
        before = int(rng.integers(0, span))
        after = int(rng.integers(0, span))
        out.append(max((size + before + after - span) // s + 1, 1))
        pads.append(before)
    return hw, kernel, stride, dilation, tuple(pads), tuple(out)


# ---------------------------------------------------------------- arithmetic and tables

def test_requantize_s64_matches_reference_on_edge_values(dll: ctypes.CDLL) -> None:
    fn = dll.shim_requantize_s64
    fn.restype, fn.argtypes = ctypes.c_int32, (ctypes.c_int64, ctypes.c_int32, ctypes.c_int32)
    rng = np.random.default_rng(1)
    accs = [0, 1, -1, 2**47 - 1, -(2**47), 12345678901, -98765432109, *rng.integers(-(2**47), 2**47, 300)]
    mults = [0, 1, 2**30, 0x7FFEFFFF, 0x7FFF0000, 2**31 - 1, *rng.integers(2**30, 2**31, 20)]
    for shift in (-31, -20, -15, -1, 0, 1, 7):
        for m in mults:
            expected = s16.requantize_s64(np.array(accs, np.int64), m, shift)
            got = [fn(int(a), int(m), shift) for a in accs]
            np.testing.assert_array_equal(got, expected, err_msg=f"multiplier {m} shift {shift}")


def test_lut_lookup_matches_reference_on_every_int16(dll: ctypes.CDLL) -> None:
    fn = dll.shim_lut_lookup_s16
    fn.restype, fn.argtypes = ctypes.c_int16, (ctypes.c_int16, ctypes.c_void_p)
    rng = np.random.default_rng(2)
    for lut in (*s16.softmax_luts(), rng.integers(-32768, 32768, 513).astype(np.int16)):
        lut = np.ascontiguousarray(lut, np.int16)
        values = np.arange(-32768, 32768, 37, dtype=np.int64)
        got = [fn(int(v), lut.ctypes.data) for v in values]
        np.testing.assert_array_equal(got, s16.lut_lookup(values, lut))


def test_the_sigmoid_table_is_the_same_in_c_and_in_python(dll: ctypes.CDLL) -> None:
    fn = dll.shim_sigmoid_table_s16
    fn.restype, fn.argtypes = ctypes.c_uint16, (ctypes.c_int32,)
    np.testing.assert_array_equal([fn(i) for i in range(256)], s16.SIGMOID_TABLE)
    source = (NNREF / "Source" / "NNSupportFunctions" / "arm_nn_sigmoid_table_s16.c").read_text()
    assert len(re.findall(r"\b\d{5}\b", source.split("{", 1)[1])) == 256


@pytest.mark.parametrize("kind", ["sigmoid", "tanh"])
@pytest.mark.parametrize("left_shift", [-3, -1, 0, 1, 2])
def test_activation_matches_reference_on_every_int16(nnref: NnrefS16, kind: str, left_shift: int) -> None:
    x = np.arange(-32768, 32768, dtype=np.int16)
    np.testing.assert_array_equal(nnref.activation(x, left_shift, kind), s16.activation(x, left_shift, kind))


# ---------------------------------------------------------------- layers

@pytest.mark.parametrize("bias_kind", ["int64", "int32", "none64", "none32"])
def test_conv_matches_reference(nnref: NnrefS16, bias_kind: str) -> None:
    rng = np.random.default_rng(sum(map(ord, bias_kind)))
    for case in range(CASES):
        hw, kernel, stride, dilation, pad, out_hw = _window(rng)
        n, c_in, c_out = int(rng.integers(1, 3)), int(rng.integers(1, 6)), int(rng.integers(1, 8))
        x, w = _x(rng, (n, *hw, c_in)), _w(rng, (c_out, *kernel, c_in))
        mult, shift = _quant(rng, c_out, (-22, -4))
        int32 = bias_kind.endswith("32")
        bias = None
        if not bias_kind.startswith("none"):
            bias = rng.integers(-2**28, 2**28, c_out).astype(np.int32 if int32 else np.int64)
        act = _act(rng)
        p = s16.ConvParamsS16(mult, shift, bias, *act, bias_int32=int32)
        out_shape = (n, *out_hw, c_out)
        expected = s16.conv2d(x, w, p, stride, dilation, pad, out_shape)
        for wrapper in (True, False):
            status, got = nnref.conv(x, w, bias, mult, shift, stride=stride, padding=pad, dilation=dilation,
                                     act=act, out_shape=out_shape, bias_int32=int32, wrapper=wrapper)
            assert status == 0
            np.testing.assert_array_equal(got, expected, err_msg=f"case {case}")
    assert len(np.unique(expected)) > 1


def test_depthwise_matches_reference(nnref: NnrefS16) -> None:
    rng = np.random.default_rng(3)
    for case in range(CASES):
        hw, kernel, stride, dilation, pad, out_hw = _window(rng)
        n, c_in, ch_mult = int(rng.integers(1, 3)), int(rng.integers(1, 40)), int(rng.integers(1, 4))
        c_out = c_in * ch_mult
        x, w = _x(rng, (n, *hw, c_in)), _w(rng, (1, *kernel, c_out))
        mult, shift = _quant(rng, c_out, (-20, -4))
        bias = None if case % 5 == 0 else rng.integers(-2**26, 2**26, c_out).astype(np.int64)
        act = _act(rng)
        p = s16.ConvParamsS16(mult, shift, bias, *act)
        out_shape = (n, *out_hw, c_out)
        expected = s16.depthwise_conv2d(x, w, p, stride, dilation, pad, ch_mult, out_shape)
        for wrapper in (True, False):
            status, got = nnref.depthwise(x, w, bias, mult, shift, ch_mult=ch_mult, stride=stride,
                                          padding=pad, dilation=dilation, act=act, out_shape=out_shape,
                                          wrapper=wrapper)
            assert status == 0
            np.testing.assert_array_equal(got, expected, err_msg=f"case {case}")


def test_fully_connected_matches_reference(nnref: NnrefS16) -> None:
    rng = np.random.default_rng(4)
    for case in range(CASES):
        rows, depth, c_out = int(rng.integers(1, 5)), int(rng.integers(1, 700)), int(rng.integers(1, 13))
        x, w = _x(rng, (rows, depth)), _w(rng, (c_out, depth))
        mult, shift = _quant(rng, 1, (-22, -6))
        bias = None if case % 4 == 0 else rng.integers(-2**26, 2**26, c_out).astype(np.int64)
        act = _act(rng)
        expected = s16.fully_connected(x, w, s16.ConvParamsS16(mult, shift, bias, *act))
        status, got = nnref.fully_connected(x, w, bias, int(mult[0]), int(shift[0]), act=act)
        assert status == 0
        np.testing.assert_array_equal(got, expected, err_msg=f"case {case}")


def test_add_and_mul_match_reference(nnref: NnrefS16) -> None:
    rng = np.random.default_rng(5)
    for case in range(CASES):
        shape = tuple(int(v) for v in rng.integers(1, 6, 4))
        a, b = _x(rng, shape), _x(rng, shape)
        scales = rng.uniform(1e-5, 1e-3, 3)
        act = _act(rng)
        p = s16.add_params(*scales, act)
        status, got = nnref.add(a, b, p)
        assert status == 0
        np.testing.assert_array_equal(got, s16.add(a, b, p), err_msg=f"add case {case}")
        mult, shift = _quant(rng, 1, (-20, 0))
        status, got = nnref.mul(a, b, int(mult[0]), int(shift[0]), act)
        assert status == 0
        expected = s16.mul(a, b, int(mult[0]), int(shift[0]), act)
        np.testing.assert_array_equal(got, expected, err_msg=f"mul case {case}")


@pytest.mark.parametrize("mode", ["avg", "max"])
def test_pooling_matches_reference(nnref: NnrefS16, mode: str) -> None:
    rng = np.random.default_rng(6 if mode == "avg" else 7)
    for case in range(CASES):
        hw = tuple(int(v) for v in rng.integers(1, 9, 2))
        window = tuple(int(v) for v in rng.integers(1, 4, 2))
        stride = tuple(int(v) for v in rng.integers(1, 3, 2))
        pad = tuple(int(rng.integers(0, k)) for k in window)
        out_hw = tuple(max((h + p - k) // s + 1, 1)
                       for h, p, k, s in zip(hw, pad, window, stride, strict=True))
        n, c = int(rng.integers(1, 3)), int(rng.integers(1, 40))
        x = _x(rng, (n, *hw, c))
        act = _act(rng)
        expected = s16.pool2d(x, mode, window, stride, pad, act, (n, *out_hw, c))
        status, got = nnref.pool(mode, x, window=window, stride=stride, padding=pad, act=act,
                                 out_shape=(n, *out_hw, c))
        assert status == 0
        np.testing.assert_array_equal(got, expected, err_msg=f"case {case}")


def test_softmax_matches_reference(nnref: NnrefS16) -> None:
    rng = np.random.default_rng(8)
    exp_lut, recip_lut = s16.softmax_luts()
    for case in range(CASES):
        rows, row = int(rng.integers(1, 5)), int(rng.integers(1, 300))
        x = _x(rng, (rows, row)) if case % 2 else (rng.integers(-300, 300, (rows, row)) * 7).astype(np.int16)
        mult, shift = s16.softmax_params(float(rng.uniform(1e-5, 1e-2)), float(rng.uniform(0.5, 2.0)))
        status, got = nnref.softmax(x, mult, shift, exp_lut, recip_lut)
        assert status == 0
        expected = s16.softmax(x, mult, shift, exp_lut, recip_lut)
        np.testing.assert_array_equal(got, expected, err_msg=f"case {case}")


# ---------------------------------------------------------------- LSTM

def _random_lstm(rng: np.random.Generator, int16: bool, time_major: bool, inputs: int, hidden: int
                 ) -> LstmParams:
    """Multipliers that keep the gates, the cell and the hidden state inside their ranges."""
    fc_shifts = (-12, -7) if int16 else (-4, 0)
    gates = {}
    for name in GATES:
        bias = rng.integers(-2**20, 2**20, hidden) if int16 else rng.integers(-2**14, 2**14, hidden)
        gates[name] = LstmGate(
            _w(rng, (hidden, inputs)), int(rng.integers(2**30, 2**31)), int(rng.integers(*fc_shifts)),
            _w(rng, (hidden, hidden)), int(rng.integers(2**30, 2**31)), int(rng.integers(*fc_shifts)),
            bias.astype(np.int64 if int16 else np.int32),
            "tanh" if name == "cell" and rng.random() < 0.7 else "sigmoid")
    cell_power = int(rng.integers(-15, -9))
    zp_in, zp_out = (0, 0) if int16 else (int(rng.integers(-20, 20)), int(rng.integers(-20, 20)))
    return LstmParams(
        int16=int16, time_major=time_major, input_zero_point=zp_in, hidden_zero_point=zp_out,
        forget_to_cell=(2**30, -14), input_to_cell=(2**30, -29 - cell_power),
        hidden=(int(rng.integers(2**30, 2**31)), -14 if int16 else -22),
        cell_clip=int(rng.choice([0, 0, 5000, 20000])), cell_scale_power=cell_power, gates=gates)


@pytest.mark.parametrize("int16", [False, True], ids=["int8", "16x8"])
def test_lstm_matches_reference_with_state_carried(nnref: NnrefS16, int16: bool) -> None:
    rng = np.random.default_rng(9 + int16)
    for case in range(CASES // 2):
        time_major = bool(case % 2)
        batch, steps, inputs, hidden = (int(v) for v in rng.integers(1, [4, 6, 9, 9]))
        p = _random_lstm(rng, int16, time_major, inputs, hidden)
        info = np.iinfo(np.int16 if int16 else np.int8)
        shape = (steps, batch, inputs) if time_major else (batch, steps, inputs)
        x = rng.integers(info.min, info.max + 1, shape)
        expected, (h, c) = lstm(x, p)
        status, got = nnref.lstm(x, p)
        assert status == 0
        np.testing.assert_array_equal(got, expected, err_msg=f"case {case}: arm_lstm_unidirectional")
        seq = x if time_major else x.transpose(1, 0, 2)
        h0, c0 = initial_state(p, batch)
        steps_out, h1, c1 = nnref.lstm_steps(seq, p, h0, c0)
        np.testing.assert_array_equal(steps_out, expected if time_major else expected.transpose(1, 0, 2))
        np.testing.assert_array_equal(h1, h)
        np.testing.assert_array_equal(c1, c)
        # The next call goes on from that state.
        x2 = rng.integers(info.min, info.max + 1, shape)
        expected2, _ = lstm(x2, p, (h, c))
        steps2, _, _ = nnref.lstm_steps(x2 if time_major else x2.transpose(1, 0, 2), p, h1, c1)
        np.testing.assert_array_equal(steps2, expected2 if time_major else expected2.transpose(1, 0, 2))
        if p.cell_clip:
            assert np.abs(c).max() <= p.cell_clip


# ---------------------------------------------------------------- argument errors

def test_argument_errors(nnref: NnrefS16) -> None:
    rng = np.random.default_rng(10)
    x, mult, shift = _x(rng, (1, 4, 4, 4)), np.full(4, 2**30), np.full(4, -10)
    common = dict(padding=(0, 0), act=(s16.INT16_MIN, s16.INT16_MAX))
    grouped = _w(rng, (4, 1, 1, 2))  # C_f = 2 != C_in = 4: Arm's int16 convolution has no groups
    assert nnref.conv(x, grouped, None, mult, shift, stride=(1, 1), dilation=(1, 1), out_shape=(1, 4, 4, 4),
                      **common)[0] == -1
    w = _w(rng, (4, 1, 1, 4))
    assert nnref.conv(x, w, None, mult, shift, stride=(0, 1), dilation=(1, 1), out_shape=(1, 4, 4, 4),
                      **common)[0] == -1
    assert nnref.conv(x, w, None, mult, shift, stride=(1, 1), dilation=(1, 0), out_shape=(1, 4, 4, 4),
                      **common)[0] == -1
    dw = _w(rng, (1, 1, 1, 8))
    assert nnref.depthwise(x, dw, None, np.full(8, 2**30), np.full(8, -10), ch_mult=3, stride=(1, 1),
                           dilation=(1, 1), out_shape=(1, 4, 4, 8), **common)[0] == -1
    assert nnref.fully_connected(x.reshape(1, 64), _w(rng, (3, 64)), None, 2**30, -10,
                                 act=common["act"])[0] == 0
    exp_lut, recip_lut = s16.softmax_luts()
    assert nnref.softmax(x, 2**30, 0, None, recip_lut)[0] == -1
    assert nnref.softmax(x, 2**30, 0, exp_lut, None)[0] == -1
    assert nnref.softmax(x, 2**30, 0, np.zeros(513, np.int16), recip_lut)[0] == -1  # a row sum of 0
    assert nnref.pool("avg", x, window=(2, 2), stride=(0, 1), padding=(0, 0), act=common["act"],
                      out_shape=(1, 2, 2, 4))[0] == -1
    # A window entirely in the padding: average pooling says so, max pooling writes the clamp.
    status, out = nnref.pool("avg", x, window=(1, 1), stride=(1, 1), padding=(1, 0), act=(-5, 5),
                             out_shape=(1, 5, 4, 4))
    assert status == -1 and (out[0, 0] == -5).all()
    status, out = nnref.pool("max", x, window=(1, 1), stride=(1, 1), padding=(1, 0), act=(-5, 5),
                             out_shape=(1, 5, 4, 4))
    assert status == 0 and (out[0, 0] == -5).all()

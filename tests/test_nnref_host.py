"""nnref, compiled for the host and called through ctypes, is bit-exact with the host reference.

Seeded hypothesis cases over shapes, offsets, multipliers, shifts of both signs, groupings,
dilations, batches and activation ranges (tests/nnref_cases.py), per CMSIS-NN function; the named
edge cases; the MVE kernel-sum contract of the fully connected functions; the data-movement
functions against numpy; and the scratch queries. tests/test_nnref_device.py runs the device batch
of cases cross-compiled on QEMU.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from nnref_cases import (
    STRATEGIES,
    conv_case,
    depthwise_case,
    describe,
    device_batch,
    draw_cases,
    fc_cases,
    run_on_nnref,
)
from nnreflib import Dims, NnrefHost, build

from mcudeploy.arith import INT32_MAX, INT32_MIN, rounding_divide_by_pot, srdhm
from mcudeploy.arith import params as qp
from mcudeploy.arith import requantize as reference_requantize

# Cases per CMSIS-NN function: 60 x 7 = 420 seeded cases, each run once per test session.
CASES = 60
SETTINGS = settings(max_examples=CASES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
int32s = st.integers(INT32_MIN, INT32_MAX)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> NnrefHost:
    return NnrefHost(build(tmp_path_factory.mktemp("nnref")))


@pytest.fixture(scope="module")
def host_sums(tmp_path_factory: pytest.TempPathFactory) -> NnrefHost:
    """nnref built with -DNNREF_FC_KERNEL_SUMS: the fully connected contract of its MVE build."""
    return NnrefHost(build(tmp_path_factory.mktemp("nnref_sums"), kernel_sums=True), kernel_sums=True)


def assert_case(host: NnrefHost, case) -> None:
    np.testing.assert_array_equal(run_on_nnref(host, case), case.expected(), err_msg=describe(case))


# ---------------------------------------------------------------- every function, random cases

@pytest.mark.parametrize("kind", sorted(STRATEGIES))
def test_function_matches_reference_on_seeded_cases(host: NnrefHost, kind: str) -> None:
    @seed(sum(map(ord, kind)))
    @SETTINGS
    @given(STRATEGIES[kind])
    def check(case) -> None:
        assert_case(host, case)

    check()


def test_fully_connected_with_mve_kernel_sums_matches_reference(host_sums: NnrefHost) -> None:
    @seed(7)
    @SETTINGS
    @given(fc_cases())
    def check(case) -> None:
        assert_case(host_sums, case)

    check()


def test_fully_connected_wrapper_dispatches_per_tensor_and_per_channel(host: NnrefHost,
                                                                       host_sums: NnrefHost) -> None:
    for case in draw_cases("fully_connected", 20, 31):
        p = qp.conv_params(case.op, case.graph)
        per_channel = len(p.multiplier) > 1
        for h in (host, host_sums):
            status, out = h.fully_connected(case.inputs[0], case.graph.tensor("w").data, p.bias,
                                            p.multiplier, p.shift, input_offset=p.input_offset,
                                            output_offset=p.output_offset, act=(p.act_min, p.act_max),
                                            per_channel=per_channel, wrapper=True)
            assert status == 0
            np.testing.assert_array_equal(out, case.expected(), err_msg=describe(case))


def test_device_batch_matches_reference_on_the_host(host: NnrefHost) -> None:
    """The very cases tests/test_nnref_device.py runs on QEMU, here through ctypes."""
    batch = device_batch()
    assert len(batch) >= 80
    for case in batch:
        assert_case(host, case)


# ---------------------------------------------------------------- arithmetic edge cases

def test_doubling_high_multiply_saturates_only_for_int32_min_squared(host: NnrefHost) -> None:
    assert host.doubling_high_mult(INT32_MIN, INT32_MIN) == INT32_MAX
    for a, b in [(INT32_MIN, INT32_MAX), (INT32_MAX, INT32_MIN), (INT32_MIN, 1), (INT32_MIN, -1),
                 (INT32_MAX, INT32_MAX), (-1, 1), (1 << 30, 1 << 30), (-(1 << 30), 1 << 30)]:
        assert host.doubling_high_mult(a, b) == int(srdhm(a, b)), (a, b)


@seed(11)
@settings(max_examples=300, deadline=None, database=None)
@given(a=int32s, b=int32s)
def test_doubling_high_multiply_matches_reference(host: NnrefHost, a: int, b: int) -> None:
    assert host.doubling_high_mult(a, b) == int(srdhm(a, b))


@seed(12)
@settings(max_examples=300, deadline=None, database=None)
@given(x=int32s, exponent=st.integers(0, 31))
def test_rounding_divide_by_power_of_two_matches_reference(host: NnrefHost, x: int, exponent: int) -> None:
    assert host.divide_by_power_of_two(x, exponent) == int(rounding_divide_by_pot(x, exponent))


@seed(13)
@settings(max_examples=400, deadline=None, database=None)
@given(x=st.one_of(int32s, st.integers(-5000, 5000), st.sampled_from([INT32_MIN, INT32_MAX, 0, -1])),
       multiplier=st.one_of(st.integers(1 << 30, INT32_MAX), st.just(0)),
       shift=st.integers(-31, 30))
def test_requantize_matches_reference_for_shifts_of_both_signs(host: NnrefHost, x: int, multiplier: int,
                                                               shift: int) -> None:
    assert host.requantize(x, multiplier, shift) == int(reference_requantize(x, multiplier, shift))


def test_requantize_at_int32_min(host: NnrefHost) -> None:
    for multiplier, shift in [(INT32_MAX, 0), (1 << 30, 0), (1 << 30, -31), (INT32_MAX, 1), (1 << 30, 30)]:
        assert host.requantize(INT32_MIN, multiplier, shift) == int(
            reference_requantize(INT32_MIN, multiplier, shift)), (multiplier, shift)


# ---------------------------------------------------------------- named layer edge cases

def _conv(**overrides):
    spec = {"n": 1, "hw": (5, 5), "c_f": 3, "groups": 1, "per_group": 4, "kernel": (3, 3),
            "stride": (1, 1), "dilation": (1, 1), "pads": (1, 1, 1, 1), "zp_in": -3, "zp_out": 5,
            "shifts": (-9, -6), "act": (-128, 127)}
    return conv_case(5, **(spec | overrides))


def test_activation_clamps_at_int8_limits(host: NnrefHost) -> None:
    case = _conv(shifts=(2, 4))  # large multipliers: most outputs saturate both ways
    out = run_on_nnref(host, case)
    assert (out == -128).any() and (out == 127).any()
    np.testing.assert_array_equal(out, case.expected())
    narrow = _conv(shifts=(-4, -2), act=(-3, 4))
    out = run_on_nnref(host, narrow)
    assert out.min() == -3 and out.max() == 4
    np.testing.assert_array_equal(out, narrow.expected())


@pytest.mark.parametrize("shifts", [(-31, -20), (-8, 0), (1, 12), (25, 30)],
                         ids=["deep-right", "right", "left", "deep-left"])
def test_convolution_with_shifts_of_each_sign(host: NnrefHost, shifts: tuple[int, int]) -> None:
    assert_case(host, _conv(shifts=shifts, groups=2, c_f=2))


def test_one_input_channel_to_many_outputs(host: NnrefHost) -> None:
    assert_case(host, _conv(c_f=1, per_group=9))
    assert_case(host, _conv(c_f=1, groups=1, per_group=16, kernel=(1, 1), pads=(0, 0, 0, 0)))
    assert_case(host, depthwise_case(6, n=1, hw=(6, 5), c_in=1, ch_mult=7, kernel=(2, 2), stride=(1, 1),
                                     dilation=(1, 1), pads=(0, 0, 0, 0), zp_in=10, zp_out=-7,
                                     shifts=(-10, -7), act=(-128, 127)))


def test_channel_multiplier_with_batches(host: NnrefHost) -> None:
    for n, ch_mult, dilation in [(3, 3, (2, 2)), (2, 2, (1, 1)), (4, 5, (1, 3))]:
        assert_case(host, depthwise_case(n, n=n, hw=(7, 6), c_in=4, ch_mult=ch_mult, kernel=(3, 3),
                                         stride=(1, 2), dilation=dilation, pads=(2, 1, 1, 2),
                                         zp_in=-100, zp_out=3, shifts=(-9, -5), act=(-100, 90)))


def test_grouped_and_batched_convolution_with_dilation(host: NnrefHost) -> None:
    assert_case(host, _conv(n=3, groups=3, c_f=2, per_group=2, dilation=(2, 1), pads=(2, 1, 0, 2)))


def test_inconsistent_groupings_are_argument_errors(host: NnrefHost) -> None:
    x = np.zeros((1, 4, 4, 6), np.int8)
    ones = np.ones(4, np.int32)
    common = {"input_offset": 0, "output_offset": 0, "stride": (1, 1), "padding": (0, 0),
              "dilation": (1, 1), "act": (-128, 127), "out_shape": (1, 4, 4, 4)}
    status, _ = host.conv(x, np.zeros((4, 1, 1, 4), np.int8), ones, ones << 30, ones, **common)
    assert status == -1  # C_in = 6 is not a multiple of C_f = 4
    status, _ = host.conv(x, np.zeros((4, 1, 1, 2), np.int8), ones, ones << 30, ones, **common)
    assert status == -1  # 3 groups do not divide C_out = 4
    status, _ = host.depthwise(x, np.zeros((1, 1, 1, 4), np.int8), ones, ones << 30, ones, ch_mult=1,
                               **common)
    assert status == -1  # C_out != C_in * ch_mult


# ---------------------------------------------------------------- data movement

@st.composite
def _tensor(draw, rank: int = 4) -> np.ndarray:
    shape = tuple(draw(st.integers(1, 5)) for _ in range(rank))
    data = draw(st.binary(min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    return np.frombuffer(data, np.int8).reshape(shape).copy()


@seed(21)
@settings(max_examples=100, deadline=None, database=None)
@given(x=_tensor(), axis=st.sampled_from("xyzw"), parts=st.integers(1, 3), data=st.data())
def test_concatenation_along_each_axis_matches_numpy(host: NnrefHost, x: np.ndarray, axis: str, parts: int,
                                                     data) -> None:
    numpy_axis = {"x": 3, "y": 2, "z": 1, "w": 0}[axis]
    pieces = [x]
    for _ in range(parts - 1):
        shape = list(x.shape)
        shape[numpy_axis] = data.draw(st.integers(1, 4))
        pieces.append(np.arange(np.prod(shape), dtype=np.int64).astype(np.int8).reshape(shape))
    expected = np.concatenate(pieces, axis=numpy_axis)
    out = np.zeros_like(expected)
    offset = 0
    for piece in pieces:
        n, h, w, c = piece.shape
        host.concatenation(axis, np.ascontiguousarray(piece), out, (c, w, h, n),
                           expected.shape[numpy_axis], offset)
        offset += piece.shape[numpy_axis]
    np.testing.assert_array_equal(out, expected)


@seed(22)
@settings(max_examples=80, deadline=None, database=None)
@given(x=_tensor(), pre=st.tuples(*[st.integers(0, 2)] * 4), post=st.tuples(*[st.integers(0, 2)] * 4),
       value=st.integers(-128, 127))
def test_pad_matches_numpy(host: NnrefHost, x: np.ndarray, pre, post, value: int) -> None:
    status, out = host.pad(x, value, pre, post)
    assert status == 0
    np.testing.assert_array_equal(out, np.pad(x, list(zip(pre, post, strict=True)), constant_values=value))


def test_negative_pad_is_an_argument_error(host: NnrefHost) -> None:
    status, _ = host.pad(np.zeros((1, 2, 2, 1), np.int8), 0, (0, 0, 0, 0), (0, -1, 0, 0))
    assert status == -1


@seed(23)
@settings(max_examples=80, deadline=None, database=None)
@given(rank=st.integers(1, 4), data=st.data())
def test_transpose_matches_numpy(host: NnrefHost, rank: int, data) -> None:
    x = data.draw(_tensor(rank))
    perm = data.draw(st.permutations(range(rank)))
    expected = np.transpose(x, perm)
    status, out = host.transpose(np.ascontiguousarray(x), perm, expected.shape)
    assert status == 0
    np.testing.assert_array_equal(out, expected)


def test_transpose_refuses_a_bad_permutation(host: NnrefHost) -> None:
    x = np.zeros((2, 3), np.int8)
    assert host.transpose(x, [0, 0], (2, 2))[0] == -1
    assert host.transpose(x, [1, 0], (2, 3))[0] == -1  # output dims are not the permuted ones


@seed(24)
@settings(max_examples=80, deadline=None, database=None)
@given(x=_tensor(), which=st.sampled_from(["maximum", "minimum"]), data=st.data())
def test_maximum_and_minimum_broadcast_like_numpy(host: NnrefHost, x: np.ndarray, which: str, data) -> None:
    shape = tuple(s if data.draw(st.booleans()) else 1 for s in x.shape)
    y = np.arange(np.prod(shape), dtype=np.int64).astype(np.int8).reshape(shape) * np.int8(37)
    a, b = (x, y) if data.draw(st.booleans()) else (y, x)
    status, out = host.extremum(which, np.ascontiguousarray(a), np.ascontiguousarray(b), x.shape)
    assert status == 0
    np.testing.assert_array_equal(out, getattr(np, which)(a, b))


def test_maximum_refuses_shapes_that_do_not_broadcast(host: NnrefHost) -> None:
    a, b = np.zeros((1, 2, 3, 4), np.int8), np.zeros((1, 2, 2, 4), np.int8)
    assert host.extremum("maximum", a, b, (1, 2, 3, 4))[0] == -1


# ---------------------------------------------------------------- scratch queries

QUERIES = ["arm_convolve_wrapper_s8_get_buffer_size", "arm_depthwise_conv_wrapper_s8_get_buffer_size",
           "arm_fully_connected_s8_get_buffer_size", "arm_avgpool_s8_get_buffer_size"]


@pytest.mark.parametrize("suffix", ["", "_dsp", "_mve"])
@pytest.mark.parametrize("query", QUERIES)
def test_every_scratch_query_and_its_cpu_variants_answer(host: NnrefHost, host_sums: NnrefHost, query: str,
                                                         suffix: str) -> None:
    filter_dims = Dims(20, 1, 1, 7)
    if query.startswith("arm_avgpool"):
        args: tuple = (5, 7)
    elif query.startswith("arm_fully"):
        args = (ctypes.byref(filter_dims),)
    else:
        zeros = (ctypes.c_int32 * 16)()
        feature_map = ctypes.byref(Dims(1, 4, 4, 7))
        args = (zeros, feature_map, ctypes.byref(filter_dims), feature_map)
    kernel_sums = query.startswith("arm_fully") and (suffix == "_mve")
    assert host.query(query + suffix, *args) == (28 if kernel_sums else 0)
    sums_build = query.startswith("arm_fully") and suffix != "_dsp"
    assert host_sums.query(query + suffix, *args) == (28 if sums_build else 0)

"""nnref's int16 (16x8) and LSTM functions cross-compiled and run on QEMU, one board per CPU
class (M55 with MVE, M4 with DSP, M3 plain): tests/firmware/nnref_s16 runs seeded cases the host
writes into it, bit-exact with mcudeploy/reference/s16.py and lstm.py; and the same convolution,
depthwise convolution and fully connected shapes as s8 and as s16, counted with QEMU -icount,
give instructions per MAC of each kernel against its s8 twin (printed and written to ipm.json)."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mcudeploy import ir
from mcudeploy.arith.params import ConvParams
from mcudeploy.boards import Board, load_board
from mcudeploy.build import build_firmware
from mcudeploy.device.protocol import INPUT, OUTPUT, Link
from mcudeploy.device.runners.qemu import QemuRunner
from mcudeploy.nnlib import NNLibrary, nnref_library
from mcudeploy.packs import load_pack
from mcudeploy.reference import s16
from mcudeploy.reference.conv import conv2d, depthwise_conv2d, fully_connected
from mcudeploy.reference.lstm import GATES, LstmGate, LstmParams, initial_state, lstm

pytestmark = pytest.mark.device
FIRMWARE = Path(__file__).parent / "firmware" / "nnref_s16"
BOARDS = {"cortex-m55": "mps3-an547", "cortex-m4": "mps2-an386", "cortex-m3": "mps2-an385"}
HEADER_WORDS = 64
CASE_BYTES = 12288
OPS = {"conv": 1, "depthwise": 2, "fc": 3, "add": 4, "mul": 5, "avg": 6, "max": 7, "softmax": 8,
       "lstm_s8": 9, "lstm_s16": 10, "steps_s8": 11, "steps_s16": 12, "activation": 13}


class Case:
    """The words of tests/firmware/nnref_s16's case header and the arrays after it (8-aligned)."""

    def __init__(self, op: str) -> None:
        self.h = np.zeros(HEADER_WORDS, np.int32)
        self.h[0] = OPS[op]
        self.blob = bytearray()

    def set(self, word: int, *values: int) -> None:
        self.h[word:word + len(values)] = values

    def array(self, word: int, data: np.ndarray | None) -> None:
        """Append `data` and store its byte offset in h[word] (-1 for None)."""
        if data is None:
            self.h[word] = -1
            return
        self.blob += bytes(-len(self.blob) % 8)
        self.h[word] = 4 * HEADER_WORDS + len(self.blob)
        self.blob += np.ascontiguousarray(data).tobytes()

    def payload(self) -> bytes:
        data = self.h.tobytes() + bytes(self.blob)
        assert len(data) <= CASE_BYTES
        return data


def _x(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(-32768, 32768, shape).astype(np.int16)


def _w(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.integers(-127, 128, shape).astype(np.int8)


def _conv_case(rng: np.random.Generator, depthwise: bool, bias_kind: str) -> tuple[Case, np.ndarray]:
    n, (h, w), c_in = 2, (5, 6), 3
    kernel, stride, dilation, pad = (3, 2), (2, 1), (1, 2), (1, 1)
    ch_mult = 2 if depthwise else 1
    c_out = c_in * ch_mult if depthwise else 5
    out_hw = ((h + 2 * pad[0] - ((kernel[0] - 1) * dilation[0] + 1)) // stride[0] + 1,
              (w + 2 * pad[1] - ((kernel[1] - 1) * dilation[1] + 1)) // stride[1] + 1)
    x = _x(rng, (n, h, w, c_in))
    weights = _w(rng, (1, *kernel, c_out) if depthwise else (c_out, *kernel, c_in))
    mult = rng.integers(2**30, 2**31, c_out).astype(np.int32)
    shift = rng.integers(-18, -8, c_out).astype(np.int32)
    bias = {"int64": rng.integers(-2**26, 2**26, c_out).astype(np.int64),
            "int32": rng.integers(-2**26, 2**26, c_out).astype(np.int32), "none": None}[bias_kind]
    act = (-20000, 25000)
    p = s16.ConvParamsS16(mult.astype(np.int64), shift.astype(np.int64), bias, *act)
    out_shape = (n, *out_hw, c_out)
    case = Case("depthwise" if depthwise else "conv")
    case.set(1, *x.shape, *weights.shape, *out_shape, stride[1], stride[0], pad[1], pad[0], dilation[1],
             dilation[0], *act, int(bias_kind == "int32"))
    for word, data in ((22, x), (23, weights), (24, bias), (25, mult), (26, shift)):
        case.array(word, data)
    case.set(27, ch_mult)
    if depthwise:
        return case, s16.depthwise_conv2d(x, weights, p, stride, dilation, pad, ch_mult, out_shape)
    return case, s16.conv2d(x, weights, p, stride, dilation, pad, out_shape)


def _fc_case(rng: np.random.Generator) -> tuple[Case, np.ndarray]:
    rows, depth, c_out = 3, 37, 7
    x, w = _x(rng, (rows, depth)), _w(rng, (c_out, depth))
    bias = rng.integers(-2**26, 2**26, c_out).astype(np.int64)
    mult, shift, act = 1518500250, -14, (0, 32767)
    case = Case("fc")
    case.set(1, rows, depth, c_out, mult, shift, *act)
    for word, data in ((22, x), (23, w), (24, bias)):
        case.array(word, data)
    return case, s16.fully_connected(x, w, s16.ConvParamsS16(np.array([mult]), np.array([shift]), bias, *act))


def _elementwise_cases(rng: np.random.Generator) -> list[tuple[Case, np.ndarray]]:
    a, b = _x(rng, 150), _x(rng, 150)
    p = s16.add_params(3.1e-4, 1.2e-4, 4.0e-4, (-30000, 30000))
    add = Case("add")
    add.set(1, a.size, p.input1_multiplier, p.input1_shift, p.input2_multiplier, p.input2_shift,
            p.output_multiplier, p.output_shift, p.left_shift, p.act_min, p.act_max)
    add.array(22, a)
    add.array(23, b)
    mul = Case("mul")
    mul.set(1, a.size, 1518500250, -15, -32768, 20000)
    mul.array(22, a)
    mul.array(23, b)
    return [(add, s16.add(a, b, p)), (mul, s16.mul(a, b, 1518500250, -15, (-32768, 20000)))]


def _pool_cases(rng: np.random.Generator) -> list[tuple[Case, np.ndarray]]:
    out = []
    for mode in ("avg", "max"):
        x = _x(rng, (2, 5, 7, 3))
        window, stride, pad, act = (3, 2), (2, 2), (1, 0), (-25000, 30000)
        out_shape = (2, 3, 3, 3)
        case = Case(mode)
        case.set(1, *x.shape, *window)
        case.set(9, *out_shape, stride[1], stride[0], pad[1], pad[0])
        case.set(19, *act)
        case.array(22, x)
        out.append((case, s16.pool2d(x, mode, window, stride, pad, act, out_shape)))
    return out


def _softmax_case(rng: np.random.Generator) -> tuple[Case, np.ndarray]:
    x = (rng.integers(-400, 400, (3, 40)) * 20).astype(np.int16)
    mult, shift = s16.softmax_params(1.1e-3, 1.0)
    exp_lut, recip_lut = s16.softmax_luts()
    case = Case("softmax")
    case.set(1, 3, 40, mult, shift)
    for word, data in ((22, x), (23, exp_lut), (24, recip_lut)):
        case.array(word, data)
    return case, s16.softmax(x, mult, shift, exp_lut, recip_lut)


def _activation_cases(rng: np.random.Generator) -> list[tuple[Case, np.ndarray]]:
    out = []
    for kind, left_shift in (("sigmoid", 0), ("tanh", -2), ("tanh", 1)):
        x = _x(rng, 200)
        case = Case("activation")
        case.set(1, x.size, left_shift, int(kind == "tanh"))
        case.array(22, x)
        out.append((case, s16.activation(x, left_shift, kind)))
    return out


def _lstm(rng: np.random.Generator, int16: bool) -> LstmParams:
    """A random layer (4 inputs, 5 hidden units) whose gates and state stay inside their ranges."""
    shifts = (-12, -7) if int16 else (-4, 0)
    gates = {}
    for name in GATES:
        bias = rng.integers(-2**20, 2**20, 5) if int16 else rng.integers(-2**14, 2**14, 5)
        gates[name] = LstmGate(
            _w(rng, (5, 4)), int(rng.integers(2**30, 2**31)), int(rng.integers(*shifts)),
            _w(rng, (5, 5)), int(rng.integers(2**30, 2**31)), int(rng.integers(*shifts)),
            bias.astype(np.int64 if int16 else np.int32), "tanh" if name == "cell" else "sigmoid")
    zp_in, zp_out = (0, 0) if int16 else (5, -7)
    return LstmParams(int16=int16, time_major=not int16, input_zero_point=zp_in, hidden_zero_point=zp_out,
                      forget_to_cell=(2**30, -14), input_to_cell=(2**30, -16),
                      hidden=(1518500250, -14 if int16 else -22), cell_clip=9000, cell_scale_power=-13,
                      gates=gates)


def _lstm_header(case: Case, p: LstmParams, batch: int, steps: int, inputs: int) -> None:
    case.set(1, int(p.time_major), batch, steps, inputs, p.hidden_size, -p.input_zero_point,
             *p.forget_to_cell, *p.input_to_cell, p.cell_clip, p.cell_scale_power, *p.hidden,
             p.hidden_zero_point)
    for i, name in enumerate(GATES):
        g = p.gates[name]
        in_sum = g.input_weights.astype(np.int64).sum(axis=1) * -p.input_zero_point + g.bias.astype(np.int64)
        hid_sum = g.hidden_weights.astype(np.int64).sum(axis=1) * -p.hidden_zero_point
        bias_type = np.int64 if p.int16 else np.int32
        base = 20 + 8 * i
        case.set(base, g.input_multiplier, g.input_shift)
        case.array(base + 2, g.input_weights)
        case.array(base + 3, in_sum.astype(bias_type))
        case.set(base + 4, g.hidden_multiplier, g.hidden_shift)
        case.array(base + 6, g.hidden_weights)
        case.array(base + 7, hid_sum.astype(bias_type))
        case.set(52 + i, int(g.activation == "tanh"))


def _lstm_cases(rng: np.random.Generator) -> list[tuple[Case, np.ndarray]]:
    out = []
    for int16 in (False, True):
        p = _lstm(rng, int16)
        dtype = np.int16 if int16 else np.int8
        info = np.iinfo(dtype)
        batch, steps = 2, 4
        shape = (steps, batch, 4) if p.time_major else (batch, steps, 4)
        x = rng.integers(info.min, info.max + 1, shape).astype(dtype)
        case = Case("lstm_s16" if int16 else "lstm_s8")
        _lstm_header(case, p, batch, steps, 4)
        case.array(60, x)
        expected, state = lstm(x, p)
        out.append((case, expected))
        # Streaming from the state that call left: time-major steps, then the final cell state.
        p_tm = dataclasses.replace(p, time_major=True)
        x2 = rng.integers(info.min, info.max + 1, (3, batch, 4)).astype(dtype)
        expected2, (_, cell) = lstm(x2, p_tm, state)
        steps_case = Case("steps_s16" if int16 else "steps_s8")
        _lstm_header(steps_case, p_tm, batch, 3, 4)
        steps_case.array(60, x2)
        steps_case.array(61, state[0].astype(dtype))
        steps_case.array(62, state[1].astype(np.int16))
        out.append((steps_case, np.concatenate([expected2.view(np.int8).ravel(),
                                                cell.astype(np.int16).view(np.int8).ravel()])))
    assert not np.array_equal(initial_state(p, 2)[0], state[0])
    return out


def device_cases(seed: int) -> list[tuple[str, Case, np.ndarray]]:
    """Every function of the firmware's case layer, with its expected output."""
    rng = np.random.default_rng(seed)
    cases = [_conv_case(rng, False, "int64"), _conv_case(rng, False, "int32"),
             _conv_case(rng, False, "none"), _conv_case(rng, True, "int64"), _conv_case(rng, True, "none"),
             _fc_case(rng),
             *_elementwise_cases(rng), *_pool_cases(rng), _softmax_case(rng), *_activation_cases(rng),
             *_lstm_cases(rng)]
    names = {v: k for k, v in OPS.items()}
    return [(names[int(case.h[0])], case, expected) for case, expected in cases]


# ---------------------------------------------------------------- the benchmark twins

CONV_HW, CONV_C, DW_HW, DW_C, FC_DEPTH, FC_OUT = 12, 16, 16, 16, 512, 32
MACS = {"conv": CONV_HW * CONV_HW * CONV_C * 9 * CONV_C, "depthwise": DW_HW * DW_HW * DW_C * 9,
        "fully_connected": FC_DEPTH * FC_OUT}


def _bench_data() -> dict[str, np.ndarray]:
    """What tests/firmware/nnref_s16's mcd_model_init fills, in its order."""
    state = 12345
    words = []

    def take(count: int) -> np.ndarray:
        nonlocal state
        out = np.empty(count, np.uint32)
        for i in range(count):
            state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
            out[i] = state
        words.append(out)
        return out

    def s8(count: int) -> np.ndarray:
        return (take(count) >> 24).astype(np.uint8).view(np.int8)

    def s16_(count: int) -> np.ndarray:
        return (take(count) >> 16).astype(np.uint16).view(np.int16)

    d = {"conv_in8": s8(CONV_HW * CONV_HW * CONV_C), "conv_in16": s16_(CONV_HW * CONV_HW * CONV_C),
         "dw_in8": s8(DW_HW * DW_HW * DW_C), "dw_in16": s16_(DW_HW * DW_HW * DW_C),
         "fc_in8": s8(FC_DEPTH), "fc_in16": s16_(FC_DEPTH), "conv_w": s8(CONV_C * 9 * CONV_C),
         "dw_w": s8(9 * DW_C), "fc_w": s8(FC_OUT * FC_DEPTH)}
    bias, mult = [], []
    for _ in range(CONV_C):
        bias.append(int(take(1)[0] >> 18) - 8192)
        mult.append(0x40000000 + int(take(1)[0] >> 2))
    d["bias32"], d["mult"] = np.array(bias, np.int64), np.array(mult, np.int64)
    d["fc_bias32"] = np.array([int(take(1)[0] >> 18) - 8192 for _ in range(FC_OUT)], np.int64)
    return d


def bench_expected() -> list[np.ndarray]:
    """Outputs 1..6: conv s8, conv s16, depthwise s8, depthwise s16, FC s8, FC s16."""
    d = _bench_data()
    shift = np.full(CONV_C, -10)
    p8 = ConvParams(3, -2, d["mult"], shift, -128, 127, d["bias32"])
    p16 = s16.ConvParamsS16(d["mult"], shift, d["bias32"] * 256)
    same, one = ir.Padding(1, 1, 1, 1), (1, 1)
    conv_shape = (1, CONV_HW, CONV_HW, CONV_C)
    dw_shape = (1, DW_HW, DW_HW, DW_C)
    fc8 = ConvParams(3, -2, np.array([1518500250]), np.array([-11]), -128, 127, d["fc_bias32"])
    fc16 = s16.ConvParamsS16(np.array([1518500250]), np.array([-11]), d["fc_bias32"] * 256)
    conv_w, dw_w = d["conv_w"].reshape(CONV_C, 3, 3, CONV_C), d["dw_w"].reshape(1, 3, 3, DW_C)
    return [
        conv2d(d["conv_in8"].reshape(conv_shape), conv_w, p8, one, one, same, conv_shape),
        s16.conv2d(d["conv_in16"].reshape(conv_shape), conv_w, p16, one, one, (1, 1), conv_shape),
        depthwise_conv2d(d["dw_in8"].reshape(dw_shape), dw_w, p8, one, one, same, 1, dw_shape),
        s16.depthwise_conv2d(d["dw_in16"].reshape(dw_shape), dw_w, p16, one, one, (1, 1), 1, dw_shape),
        fully_connected(d["fc_in8"], d["fc_w"].reshape(FC_OUT, FC_DEPTH), fc8),
        s16.fully_connected(d["fc_in16"], d["fc_w"].reshape(FC_OUT, FC_DEPTH), fc16),
    ]


# ---------------------------------------------------------------- the tests

@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, NNLibrary], tuple[Board, Path]]:
    built: dict[tuple[str, str], tuple[Board, Path]] = {}

    def get(board_name: str, library: NNLibrary) -> tuple[Board, Path]:
        key = (board_name, library.name)
        if key not in built:
            board = load_board(board_name)
            elf = build_firmware(board, FIRMWARE, tmp_path_factory.mktemp(board_name), library)
            built[key] = (board, elf)
        return built[key]
    return get


def run_cases(board: Board, elf: Path) -> None:
    """Every case of device_cases on the firmware, bit-exact with the reference."""
    cases = device_cases(seed=21)
    with QemuRunner(board, elf) as port:
        link = Link(port)
        assert link.hello().model_hash == b"nnrefs16"
        for name, case, expected in cases:
            link.write(INPUT, 0, case.payload())
            done = link.invoke(stop_after=0)
            assert done.status == 0, f"{board.cpu} {name}: status {done.status}"
            raw = link.read(OUTPUT, 0, expected.nbytes)
            got = np.frombuffer(raw, expected.dtype).reshape(expected.shape)
            np.testing.assert_array_equal(got, expected, err_msg=f"{board.cpu}: {name}")
        link.exit(0)
    assert {name for name, _, _ in cases} == set(OPS)


@pytest.mark.parametrize("cpu", sorted(BOARDS))
def test_s16_and_lstm_functions_are_bit_exact_on_each_cpu_class(firmware, cpu: str) -> None:
    board, elf = firmware(BOARDS[cpu], nnref_library())
    assert board.cpu == cpu
    run_cases(board, elf)


@pytest.mark.parametrize("cpu", sorted(BOARDS))
def test_arm_cmsis_nn_release_computes_the_same(firmware, cpu: str) -> None:
    """The same firmware linked with Arm's CMSIS-NN (a release brought in locally: its unpacked
    directory or .pack in MCD_ARM_CMSIS_NN), bit-exact with the same reference: nnref's and
    Arm's 16x8 and LSTM functions mean the same thing."""
    release = os.environ.get("MCD_ARM_CMSIS_NN")
    if not release:
        pytest.skip("Arm's CMSIS-NN is not downloadable here: set MCD_ARM_CMSIS_NN to a release to run this")
    board, elf = firmware(BOARDS[cpu], load_pack(release))
    run_cases(board, elf)


@pytest.mark.parametrize("cpu", sorted(BOARDS))
def test_instructions_per_mac_s16_against_s8(firmware, cpu: str, tmp_path: Path) -> None:
    """The six benchmark layers bit-exact, and their instructions per MAC (ipm.json)."""
    board, elf = firmware(BOARDS[cpu], nnref_library())
    idle = Case("activation")  # layer 0 with nothing to do
    with QemuRunner(board, elf, icount=True) as port:
        link = Link(port)
        link.hello()
        link.write(INPUT, 0, idle.payload())
        done = link.invoke()
        assert (done.status, done.layer) == (0, 6)
        ticks = link.layer_ticks(7)[1:]
        outputs = [np.frombuffer(link.read(OUTPUT, i + 1, e.nbytes), e.dtype).reshape(e.shape)
                   for i, e in enumerate(bench_expected())]
        link.exit(0)
    for name, got, expected in zip(("conv s8", "conv s16", "dw s8", "dw s16", "fc s8", "fc s16"), outputs,
                                   bench_expected(), strict=True):
        np.testing.assert_array_equal(got, expected, err_msg=f"{cpu}: {name}")
        assert len(np.unique(expected)) > 16, f"{cpu}: {name} has too few distinct values to test"
    per_tick = board.qemu.instructions_per_tick
    figures = {}
    for i, kernel in enumerate(("conv", "depthwise", "fully_connected")):
        s8, s16_ = (round(ticks[2 * i + k] * per_tick / MACS[kernel], 2) for k in (0, 1))
        figures[kernel] = {"s8": s8, "s16": s16_, "ratio": round(s16_ / s8, 2)}
    (tmp_path / "ipm.json").write_text(json.dumps({cpu: figures}, indent=1))
    print(f"\nnnref instructions per MAC on {cpu} ({board.name}), s16 against s8: {figures}")
    assert all(1.0 < f[k] < 60.0 for f in figures.values() for k in ("s8", "s16")), figures

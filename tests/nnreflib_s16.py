"""nnref's int16 (16x8) and LSTM functions called through ctypes on the host build of
tests/nnreflib.py: numpy arrays in, (status, numpy array) out."""

from __future__ import annotations

import ctypes

import numpy as np
from nnreflib import (
    Activation,
    Context,
    ConvParams,
    Dims,
    DwConvParams,
    FcParams,
    PerChannel,
    PerTensor,
    PoolParams,
    Tile,
    dims,
)

from mcudeploy.reference.lstm import GATES, LstmParams


class BiasData(ctypes.Structure):
    _fields_ = (("data", ctypes.c_void_p), ("is_int32_bias", ctypes.c_bool))


class SoftmaxLut(ctypes.Structure):
    _fields_ = (("exp_lut", ctypes.c_void_p), ("one_by_one_lut", ctypes.c_void_p))


class LstmGateC(ctypes.Structure):
    _fields_ = (("input_multiplier", ctypes.c_int32), ("input_shift", ctypes.c_int32),
                ("input_weights", ctypes.c_void_p), ("input_effective_bias", ctypes.c_void_p),
                ("hidden_multiplier", ctypes.c_int32), ("hidden_shift", ctypes.c_int32),
                ("hidden_weights", ctypes.c_void_p), ("hidden_effective_bias", ctypes.c_void_p),
                ("bias", ctypes.c_void_p), ("activation_type", ctypes.c_int))


class LstmParamsC(ctypes.Structure):
    _fields_ = tuple((name, ctypes.c_int32) for name in (
        "time_major", "batch_size", "time_steps", "input_size", "hidden_size", "input_offset",
        "forget_to_cell_multiplier", "forget_to_cell_shift", "input_to_cell_multiplier",
        "input_to_cell_shift", "cell_clip", "cell_scale_power", "output_multiplier", "output_shift",
        "output_offset")) + tuple((f"{g}_gate", LstmGateC) for g in GATES)


class LstmContextC(ctypes.Structure):
    _fields_ = (("temp1", ctypes.c_void_p), ("temp2", ctypes.c_void_p), ("cell_state", ctypes.c_void_p))


ACTIVATIONS = {"sigmoid": 0, "tanh": 1}


def _addr(array: np.ndarray | None) -> ctypes.c_void_p | None:
    """Address of an array the caller keeps alive during the call (never a temporary)."""
    if array is None:
        return None
    assert array.flags["C_CONTIGUOUS"]
    return ctypes.c_void_p(array.ctypes.data)


def _i32(values) -> np.ndarray:
    return np.ascontiguousarray(np.atleast_1d(values), dtype=np.int32)


def _tiles(stride, padding, dilation) -> tuple[Tile, Tile, Tile]:
    """(h, w) pairs as CMSIS-NN tiles (w, h); padding (top, left)."""
    return Tile(stride[1], stride[0]), Tile(padding[1], padding[0]), Tile(dilation[1], dilation[0])


class NnrefS16:
    """The nnref 16x8 and LSTM functions of a host build, with numpy arrays."""

    def __init__(self, dll: ctypes.CDLL) -> None:
        self.dll = dll
        for name in ("arm_convolve_wrapper_s16", "arm_convolve_s16", "arm_depthwise_conv_wrapper_s16",
                     "arm_depthwise_conv_s16", "arm_fully_connected_s16", "arm_elementwise_add_s16",
                     "arm_elementwise_mul_s16", "arm_avgpool_s16", "arm_max_pool_s16", "arm_softmax_s16",
                     "arm_nn_activation_s16", "arm_lstm_unidirectional_s8", "arm_lstm_unidirectional_s16",
                     "arm_nn_lstm_step_s8", "arm_nn_lstm_step_s16", "arm_vector_sum_s8",
                     "arm_vector_sum_s8_s64"):
            getattr(dll, name).restype = ctypes.c_int32

    # ---- convolutions and fully connected ----
    def conv(self, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, mult, shift, *, stride, padding,
             dilation, act, out_shape, bias_int32: bool = False, wrapper: bool = True
             ) -> tuple[int, np.ndarray]:
        """bias int64, or int32 with bias_int32; stride/dilation (h, w), padding (top, left)."""
        params = ConvParams(0, 0, *_tiles(stride, padding, dilation), Activation(*act))
        mult, shift = _i32(mult), _i32(shift)
        quant = PerChannel(mult.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
                           shift.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)))
        if bias is not None:
            bias = np.ascontiguousarray(bias, np.int32 if bias_int32 else np.int64)
        bias_data = BiasData(_addr(bias), bias_int32)
        x, w = np.ascontiguousarray(x, np.int16), np.ascontiguousarray(w, np.int8)
        out = np.zeros(out_shape, np.int16)
        fn = self.dll.arm_convolve_wrapper_s16 if wrapper else self.dll.arm_convolve_s16
        status = fn(None, ctypes.byref(params), ctypes.byref(quant), ctypes.byref(dims(x.shape)), _addr(x),
                    ctypes.byref(dims(w.shape)), _addr(w), ctypes.byref(dims((len(mult),))),
                    ctypes.byref(bias_data), ctypes.byref(dims(out_shape)), _addr(out))
        return status, out

    def depthwise(self, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, mult, shift, *, ch_mult: int,
                  stride, padding, dilation, act, out_shape, wrapper: bool = True) -> tuple[int, np.ndarray]:
        params = DwConvParams(0, 0, ch_mult, *_tiles(stride, padding, dilation), Activation(*act))
        mult, shift = _i32(mult), _i32(shift)
        quant = PerChannel(mult.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
                           shift.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)))
        bias = None if bias is None else np.ascontiguousarray(bias, np.int64)
        x, w = np.ascontiguousarray(x, np.int16), np.ascontiguousarray(w, np.int8)
        out = np.zeros(out_shape, np.int16)
        fn = self.dll.arm_depthwise_conv_wrapper_s16 if wrapper else self.dll.arm_depthwise_conv_s16
        status = fn(None, ctypes.byref(params), ctypes.byref(quant), ctypes.byref(dims(x.shape)), _addr(x),
                    ctypes.byref(dims(w.shape)), _addr(w), ctypes.byref(dims((len(mult),))), _addr(bias),
                    ctypes.byref(dims(out_shape)), _addr(out))
        return status, out

    def fully_connected(self, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, mult: int, shift: int, *,
                        act) -> tuple[int, np.ndarray]:
        """x [rows, K] int16, w [C_out, K] int8, per-tensor requantization, int64 bias."""
        c_out, depth = w.shape
        rows = x.size // depth
        params = FcParams(0, 0, 0, Activation(*act))
        quant = PerTensor(int(mult), int(shift))
        bias = None if bias is None else np.ascontiguousarray(bias, np.int64)
        x, w = np.ascontiguousarray(x, np.int16), np.ascontiguousarray(w, np.int8)
        out = np.zeros((rows, c_out), np.int16)
        status = self.dll.arm_fully_connected_s16(
            ctypes.byref(Context(None, 0)), ctypes.byref(params), ctypes.byref(quant),
            ctypes.byref(Dims(rows, 1, 1, depth)), _addr(x), ctypes.byref(Dims(depth, 1, 1, c_out)), _addr(w),
            ctypes.byref(dims((c_out,))), _addr(bias), ctypes.byref(Dims(rows, 1, 1, c_out)), _addr(out))
        return status, out

    # ---- element-wise ----
    def add(self, a: np.ndarray, b: np.ndarray, p) -> tuple[int, np.ndarray]:
        """p: mcudeploy.reference.s16.AddParamsS16."""
        a, b = np.ascontiguousarray(a, np.int16), np.ascontiguousarray(b, np.int16)
        out = np.zeros(a.shape, np.int16)
        status = self.dll.arm_elementwise_add_s16(
            _addr(a), _addr(b), 0, p.input1_multiplier, p.input1_shift, 0, p.input2_multiplier,
            p.input2_shift, p.left_shift, _addr(out), 0, p.output_multiplier, p.output_shift, p.act_min,
            p.act_max, a.size)
        return status, out

    def mul(self, a: np.ndarray, b: np.ndarray, mult: int, shift: int, act) -> tuple[int, np.ndarray]:
        a, b = np.ascontiguousarray(a, np.int16), np.ascontiguousarray(b, np.int16)
        out = np.zeros(a.shape, np.int16)
        status = self.dll.arm_elementwise_mul_s16(_addr(a), _addr(b), 0, 0, _addr(out), 0, mult, shift, *act,
                                                  a.size)
        return status, out

    def pool(self, mode: str, x: np.ndarray, *, window, stride, padding, act, out_shape
             ) -> tuple[int, np.ndarray]:
        params = PoolParams(Tile(stride[1], stride[0]), Tile(padding[1], padding[0]), Activation(*act))
        x = np.ascontiguousarray(x, np.int16)
        out = np.zeros(out_shape, np.int16)
        fn = self.dll.arm_avgpool_s16 if mode == "avg" else self.dll.arm_max_pool_s16
        status = fn(None, ctypes.byref(params), ctypes.byref(dims(x.shape)), _addr(x),
                    ctypes.byref(Dims(1, window[0], window[1], 1)), ctypes.byref(dims(out_shape)), _addr(out))
        return status, out

    def softmax(self, x: np.ndarray, mult: int, shift: int, exp_lut: np.ndarray | None,
                recip_lut: np.ndarray | None, row_size: int | None = None) -> tuple[int, np.ndarray]:
        x = np.ascontiguousarray(x, np.int16)
        luts = [None if t is None else np.ascontiguousarray(t, np.int16) for t in (exp_lut, recip_lut)]
        tables = SoftmaxLut(_addr(luts[0]), _addr(luts[1]))
        out = np.zeros(x.shape, np.int16)
        row = x.shape[-1] if row_size is None else row_size
        status = self.dll.arm_softmax_s16(_addr(x), x.size // x.shape[-1], row, mult, shift,
                                          ctypes.byref(tables), _addr(out))
        return status, out

    def activation(self, x: np.ndarray, left_shift: int, kind: str) -> np.ndarray:
        x = np.ascontiguousarray(x, np.int16)
        out = np.zeros(x.shape, np.int16)
        status = self.dll.arm_nn_activation_s16(_addr(x), _addr(out), x.size, left_shift, ACTIVATIONS[kind])
        assert status == 0
        return out

    # ---- LSTM ----
    def effective_biases(self, p: LstmParams) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per gate (input, hidden) effective biases, by nnref's arm_vector_sum_s8 (int8 layers) or
        arm_vector_sum_s8_s64 (16x8), as TFLM's CMSIS-NN port computes them."""
        out = {}
        for name in GATES:
            g = p.gates[name]
            pair = []
            for weights, offset, bias in ((g.input_weights, -p.input_zero_point, g.bias),
                                          (g.hidden_weights, -p.hidden_zero_point, None)):
                rows, cols = weights.shape
                w = np.ascontiguousarray(weights, np.int8)
                if p.int16:
                    total = np.zeros(rows, np.int64)
                    b = None if bias is None else np.ascontiguousarray(bias, np.int64)
                    status = self.dll.arm_vector_sum_s8_s64(_addr(total), cols, rows, _addr(w), offset,
                                                            _addr(b))
                else:
                    total = np.zeros(rows, np.int32)
                    b = None if bias is None else np.ascontiguousarray(bias, np.int32)
                    status = self.dll.arm_vector_sum_s8(_addr(total), cols, rows, _addr(w), offset, 0,
                                                        _addr(b))
                assert status == 0
                pair.append(total)
            out[name] = (pair[0], pair[1])
        return out

    def _lstm_struct(self, p: LstmParams, batch: int, steps: int, input_size: int
                     ) -> tuple[LstmParamsC, list[np.ndarray]]:
        keep: list[np.ndarray] = []
        gates = {}
        for name, (in_bias, hid_bias) in self.effective_biases(p).items():
            g = p.gates[name]
            w_in = np.ascontiguousarray(g.input_weights, np.int8)
            w_hid = np.ascontiguousarray(g.hidden_weights, np.int8)
            keep += [w_in, w_hid, in_bias, hid_bias]
            gates[f"{name}_gate"] = LstmGateC(
                g.input_multiplier, g.input_shift, _addr(w_in), _addr(in_bias), g.hidden_multiplier,
                g.hidden_shift, _addr(w_hid), _addr(hid_bias), None, ACTIVATIONS[g.activation])
        params = LstmParamsC(
            time_major=int(p.time_major), batch_size=batch, time_steps=steps, input_size=input_size,
            hidden_size=p.hidden_size, input_offset=-p.input_zero_point,
            forget_to_cell_multiplier=p.forget_to_cell[0], forget_to_cell_shift=p.forget_to_cell[1],
            input_to_cell_multiplier=p.input_to_cell[0], input_to_cell_shift=p.input_to_cell[1],
            cell_clip=p.cell_clip, cell_scale_power=p.cell_scale_power, output_multiplier=p.hidden[0],
            output_shift=p.hidden[1], output_offset=p.hidden_zero_point, **gates)
        return params, keep

    def lstm(self, x: np.ndarray, p: LstmParams) -> tuple[int, np.ndarray]:
        """arm_lstm_unidirectional_s8/_s16 over x [T, B, I] (time major) or [B, T, I]."""
        dtype = np.int16 if p.int16 else np.int8
        x = np.ascontiguousarray(x, dtype)
        steps, batch = (x.shape[0], x.shape[1]) if p.time_major else (x.shape[1], x.shape[0])
        params, keep = self._lstm_struct(p, batch, steps, x.shape[2])
        temp = [np.full(batch * p.hidden_size, 0x55, np.int16) for _ in range(3)]
        ctx = LstmContextC(*(_addr(t) for t in temp))
        out = np.zeros((*x.shape[:2], p.hidden_size), dtype)
        fn = self.dll.arm_lstm_unidirectional_s16 if p.int16 else self.dll.arm_lstm_unidirectional_s8
        status = fn(_addr(x), _addr(out), ctypes.byref(params), ctypes.byref(ctx))
        del keep
        return status, out

    def lstm_steps(self, x: np.ndarray, p: LstmParams, hidden: np.ndarray, cell: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Streaming: arm_nn_lstm_step_* for each step of x [T, B, I] (time major) from the given
        hidden state [B, H] and cell state [B, H] (updated in place: the step writes the new hidden
        state over the old one); returns (outputs [T, B, H], hidden, cell)."""
        dtype = np.int16 if p.int16 else np.int8
        x = np.ascontiguousarray(x, dtype)
        steps, batch = x.shape[0], x.shape[1]
        params, keep = self._lstm_struct(p, batch, steps, x.shape[2])
        hidden = np.ascontiguousarray(hidden, dtype).copy()
        cell = np.ascontiguousarray(cell, np.int16).copy()
        temp = [np.zeros(batch * p.hidden_size, np.int16) for _ in range(2)]
        ctx = LstmContextC(_addr(temp[0]), _addr(temp[1]), _addr(cell))
        fn = self.dll.arm_nn_lstm_step_s16 if p.int16 else self.dll.arm_nn_lstm_step_s8
        outputs = []
        for t in range(steps):
            step_in = np.ascontiguousarray(x[t])
            status = fn(_addr(step_in), _addr(hidden), _addr(hidden), ctypes.byref(params),
                        ctypes.byref(ctx), 1)
            assert status == 0
            outputs.append(hidden.copy())
        del keep
        return np.stack(outputs), hidden, cell

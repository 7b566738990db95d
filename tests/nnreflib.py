"""nnref compiled natively for the host and called through ctypes, one Python method per CMSIS-NN
function: numpy arrays in, (status, numpy array) out.

`NnrefHost(kernel_sums=True)` builds nnref with -DNNREF_FC_KERNEL_SUMS, the contract of its MVE
fully connected path (kernel sums from arm_vector_sum_s8 in the context buffer), on the host.
"""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np

from mcudeploy.nnlib import nnref_library

CFLAGS = ["-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC"]
SHIM = Path(__file__).parent / "firmware" / "nnref_shim.c"


class Tile(ctypes.Structure):
    _fields_ = (("w", ctypes.c_int32), ("h", ctypes.c_int32))


class Dims(ctypes.Structure):
    _fields_ = (("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32),
                ("c", ctypes.c_int32))


class Context(ctypes.Structure):
    _fields_ = (("buf", ctypes.c_void_p), ("size", ctypes.c_int32))


class Activation(ctypes.Structure):
    _fields_ = (("min", ctypes.c_int32), ("max", ctypes.c_int32))


class PerChannel(ctypes.Structure):
    _fields_ = (("multiplier", ctypes.POINTER(ctypes.c_int32)),
                ("shift", ctypes.POINTER(ctypes.c_int32)))


class QuantParams(ctypes.Structure):
    _fields_ = (("multiplier", ctypes.POINTER(ctypes.c_int32)), ("shift", ctypes.POINTER(ctypes.c_int32)),
                ("is_per_channel", ctypes.c_int32))


class PerTensor(ctypes.Structure):
    _fields_ = (("multiplier", ctypes.c_int32), ("shift", ctypes.c_int32))


class ConvParams(ctypes.Structure):
    _fields_ = (("input_offset", ctypes.c_int32), ("output_offset", ctypes.c_int32),
                ("stride", Tile), ("padding", Tile), ("dilation", Tile),
                ("activation", Activation))


class DwConvParams(ctypes.Structure):
    _fields_ = (("input_offset", ctypes.c_int32), ("output_offset", ctypes.c_int32),
                ("ch_mult", ctypes.c_int32), ("stride", Tile), ("padding", Tile),
                ("dilation", Tile), ("activation", Activation))


class FcParams(ctypes.Structure):
    _fields_ = (("input_offset", ctypes.c_int32), ("filter_offset", ctypes.c_int32),
                ("output_offset", ctypes.c_int32), ("activation", Activation))


class PoolParams(ctypes.Structure):
    _fields_ = (("stride", Tile), ("padding", Tile), ("activation", Activation))


class TransposeParams(ctypes.Structure):
    _fields_ = (("num_dims", ctypes.c_int32), ("permutations", ctypes.POINTER(ctypes.c_uint32)))


def dims(shape) -> Dims:
    """NHWC dims of a shape of up to 4 axes (leading axes of 1)."""
    shape = (1,) * (4 - len(shape)) + tuple(int(s) for s in shape)
    return Dims(*shape)


def _i32(values) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.int32)


def _ptr(array: np.ndarray) -> ctypes.POINTER(ctypes.c_int32):
    return array.ctypes.data_as(ctypes.POINTER(ctypes.c_int32))


def build(out_dir: Path, *, kernel_sums: bool = False) -> Path:
    """nnref + the arithmetic shim as a host shared library in out_dir."""
    library = nnref_library()
    target = out_dir / ("nnref-sums.so" if kernel_sums else "nnref.so")
    cmd = ["gcc", *CFLAGS, *(["-DNNREF_FC_KERNEL_SUMS"] if kernel_sums else [])]
    cmd += [f"-I{d}" for d in library.include_dirs]
    cmd += [str(s) for s in (*library.sources, SHIM)] + ["-o", str(target)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return target


class NnrefHost:
    """The nnref functions, called with numpy arrays."""

    def __init__(self, so: Path, *, kernel_sums: bool = False) -> None:
        self.dll = ctypes.CDLL(str(so))
        self.kernel_sums = kernel_sums
        for name in ("shim_doubling_high_mult", "shim_divide_by_power_of_two", "shim_requantize"):
            getattr(self.dll, name).restype = ctypes.c_int32
            getattr(self.dll, name).argtypes = (ctypes.c_int32,) * 3 if "requant" in name \
                else (ctypes.c_int32,) * 2

    # ---- arithmetic ----
    def doubling_high_mult(self, a: int, b: int) -> int:
        return self.dll.shim_doubling_high_mult(a, b)

    def divide_by_power_of_two(self, x: int, exponent: int) -> int:
        return self.dll.shim_divide_by_power_of_two(x, exponent)

    def requantize(self, x: int, multiplier: int, shift: int) -> int:
        return self.dll.shim_requantize(x, multiplier, shift)

    # ---- convolutions ----
    def conv(self, x: np.ndarray, w: np.ndarray, bias: np.ndarray, mult, shift, *, input_offset: int,
             output_offset: int, stride, padding, dilation, act, out_shape) -> tuple[int, np.ndarray]:
        """padding is (top, left); stride/dilation (h, w); act (min, max)."""
        params = ConvParams(input_offset, output_offset, Tile(stride[1], stride[0]),
                            Tile(padding[1], padding[0]), Tile(dilation[1], dilation[0]),
                            Activation(*act))
        mult, shift, bias = _i32(mult), _i32(shift), _i32(bias)
        quant = PerChannel(_ptr(mult), _ptr(shift))
        out = np.zeros(out_shape, np.int8)
        status = self.dll.arm_convolve_wrapper_s8(
            None, ctypes.byref(params), ctypes.byref(quant), ctypes.byref(dims(x.shape)),
            _data(x), ctypes.byref(dims(w.shape)), _data(w),
            ctypes.byref(dims((len(bias),))), _data(bias), ctypes.byref(dims(out_shape)),
            _data(out))
        return status, out

    def depthwise(self, x: np.ndarray, w: np.ndarray, bias: np.ndarray, mult, shift, *,
                  input_offset: int, output_offset: int, ch_mult: int, stride, padding, dilation,
                  act, out_shape) -> tuple[int, np.ndarray]:
        params = DwConvParams(input_offset, output_offset, ch_mult, Tile(stride[1], stride[0]),
                              Tile(padding[1], padding[0]), Tile(dilation[1], dilation[0]),
                              Activation(*act))
        mult, shift, bias = _i32(mult), _i32(shift), _i32(bias)
        quant = PerChannel(_ptr(mult), _ptr(shift))
        out = np.zeros(out_shape, np.int8)
        status = self.dll.arm_depthwise_conv_wrapper_s8(
            None, ctypes.byref(params), ctypes.byref(quant), ctypes.byref(dims(x.shape)),
            _data(x), ctypes.byref(dims(w.shape)), _data(w),
            ctypes.byref(dims((len(bias),))), _data(bias), ctypes.byref(dims(out_shape)),
            _data(out))
        return status, out

    # ---- fully connected ----
    def fully_connected(self, x: np.ndarray, w: np.ndarray, bias: np.ndarray, mult, shift, *,
                        input_offset: int, output_offset: int, act, per_channel: bool,
                        wrapper: bool = False) -> tuple[int, np.ndarray]:
        """x [rows, K], w [C_out, K]; with kernel sums, the context holds arm_vector_sum_s8's sums.
        `wrapper` calls arm_fully_connected_wrapper_s8 instead of the per-tensor/per-channel one."""
        c_out, depth = w.shape
        rows = x.size // depth
        params = FcParams(input_offset, 0, output_offset, Activation(*act))
        bias = _i32(bias)
        sums = np.zeros(max(c_out, 1), np.int32)
        ctx = Context(None, 0)
        if self.kernel_sums:
            size = self.dll.arm_fully_connected_s8_get_buffer_size(ctypes.byref(Dims(depth, 1, 1, c_out)))
            assert size == 4 * c_out
            status = self.dll.arm_vector_sum_s8(_data(sums), depth, c_out, _data(w), input_offset, 0,
                                                _data(bias))
            assert status == 0
            ctx = Context(sums.ctypes.data, size)
        out = np.zeros((rows, c_out), np.int8)
        args = (ctypes.byref(Dims(rows, 1, 1, depth)), _data(x), ctypes.byref(Dims(depth, 1, 1, c_out)),
                _data(w), ctypes.byref(dims((c_out,))), _data(bias), ctypes.byref(Dims(rows, 1, 1, c_out)),
                _data(out))
        if wrapper:
            mult, shift = _i32(np.atleast_1d(mult)), _i32(np.atleast_1d(shift))
            quant = QuantParams(_ptr(mult), _ptr(shift), int(per_channel))
            status = self.dll.arm_fully_connected_wrapper_s8(ctypes.byref(ctx), ctypes.byref(params),
                                                             ctypes.byref(quant), *args)
        elif per_channel:
            mult, shift = _i32(mult), _i32(shift)
            quant = PerChannel(_ptr(mult), _ptr(shift))
            status = self.dll.arm_fully_connected_per_channel_s8(ctypes.byref(ctx), ctypes.byref(params),
                                                                 ctypes.byref(quant), *args)
        else:
            quant = PerTensor(int(mult), int(shift))
            status = self.dll.arm_fully_connected_s8(ctypes.byref(ctx), ctypes.byref(params),
                                                     ctypes.byref(quant), *args)
        return status, out

    # ---- pooling ----
    def pool(self, mode: str, x: np.ndarray, *, window, stride, padding, act,
             out_shape) -> tuple[int, np.ndarray]:
        params = PoolParams(Tile(stride[1], stride[0]), Tile(padding[1], padding[0]), Activation(*act))
        out = np.zeros(out_shape, np.int8)
        fn = self.dll.arm_avgpool_s8 if mode == "avg" else self.dll.arm_max_pool_s8
        status = fn(None, ctypes.byref(params), ctypes.byref(dims(x.shape)), _data(x),
                    ctypes.byref(Dims(1, window[0], window[1], 1)), ctypes.byref(dims(out_shape)),
                    _data(out))
        return status, out

    # ---- elementwise ----
    def add(self, a: np.ndarray, b: np.ndarray, p) -> tuple[int, np.ndarray]:
        """p: mcudeploy.arith.params.AddParams."""
        out = np.zeros(a.shape, np.int8)
        status = self.dll.arm_elementwise_add_s8(
            _data(a), _data(b), p.input1_offset, p.input1_multiplier, p.input1_shift,
            p.input2_offset, p.input2_multiplier, p.input2_shift, p.left_shift, _data(out),
            p.output_offset, p.output_multiplier, p.output_shift, p.act_min, p.act_max, a.size)
        return status, out

    def mul(self, a: np.ndarray, b: np.ndarray, p) -> tuple[int, np.ndarray]:
        """p: mcudeploy.arith.params.MulParams."""
        out = np.zeros(a.shape, np.int8)
        status = self.dll.arm_elementwise_mul_s8(
            _data(a), _data(b), p.input1_offset, p.input2_offset, _data(out), p.output_offset,
            p.output_multiplier, p.output_shift, p.act_min, p.act_max, a.size)
        return status, out

    def extremum(self, which: str, a: np.ndarray, b: np.ndarray, out_shape) -> tuple[int, np.ndarray]:
        out = np.zeros(out_shape, np.int8)
        status = getattr(self.dll, f"arm_{which}_s8")(
            None, _data(a), ctypes.byref(dims(a.shape)), _data(b), ctypes.byref(dims(b.shape)),
            _data(out), ctypes.byref(dims(out_shape)))
        return status, out

    def softmax(self, x: np.ndarray, p) -> np.ndarray:
        """p: mcudeploy.arith.params.SoftmaxParams; rows along the last axis."""
        out = np.zeros(x.shape, np.int8)
        self.dll.arm_softmax_s8(_data(x), x.size // x.shape[-1], x.shape[-1], p.multiplier,
                                p.left_shift, p.diff_min, _data(out))
        return out

    # ---- data movement ----
    def concatenation(self, axis: str, x: np.ndarray, out: np.ndarray, extents, out_extent: int,
                      offset: int) -> None:
        """x seen as [w][z][y][x] with `extents` (x, y, z, w); writes into out."""
        fn = getattr(self.dll, f"arm_concatenation_s8_{axis}")
        ints = [ctypes.c_uint16(e) for e in extents]
        if axis == "w":
            fn(_data(x), *ints, _data(out), ctypes.c_uint32(offset))
        else:
            fn(_data(x), *ints, _data(out), ctypes.c_uint16(out_extent), ctypes.c_uint32(offset))

    def pad(self, x: np.ndarray, pad_value: int, pre, post) -> tuple[int, np.ndarray]:
        shape = tuple(a + s + b for a, s, b in zip(pre, x.shape, post, strict=True))
        out = np.full(shape, 55, np.int8)
        status = self.dll.arm_pad_s8(_data(x), _data(out), ctypes.c_int8(pad_value),
                                     ctypes.byref(Dims(*x.shape)), ctypes.byref(Dims(*pre)),
                                     ctypes.byref(Dims(*post)))
        return status, out

    def transpose(self, x: np.ndarray, perm, out_shape) -> tuple[int, np.ndarray]:
        rank = len(perm)
        table = (ctypes.c_uint32 * rank)(*perm)
        params = TransposeParams(rank, table)
        in_dims = Dims(*(tuple(x.shape) + (1,) * (4 - x.ndim)))
        out_dims = Dims(*(tuple(out_shape) + (1,) * (4 - len(out_shape))))
        out = np.zeros(out_shape, np.int8)
        status = self.dll.arm_transpose_s8(_data(x), _data(out), ctypes.byref(in_dims),
                                           ctypes.byref(out_dims), ctypes.byref(params))
        return status, out

    # ---- scratch queries ----
    def query(self, name: str, *args) -> int:
        fn = getattr(self.dll, name)
        fn.restype = ctypes.c_int32
        return fn(*args)


def _data(array: np.ndarray) -> ctypes.c_void_p:
    """The address of an array the caller keeps alive during the call (never a temporary)."""
    assert array.flags["C_CONTIGUOUS"] and array.dtype in (np.int8, np.int32)
    return ctypes.c_void_p(array.ctypes.data)

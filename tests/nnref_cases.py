"""Random single-layer cases for proving nnref: hypothesis strategies over shapes, offsets,
multipliers, shifts, groupings, dilations, batches and activation ranges.

A case is a one-operator IR graph whose quantization is chosen so that the kernel parameters come
out exactly as drawn: activations have scale 1, so a per-channel weight scale of
`multiplier * 2**(shift - 31)` (exact in float64) gives back that multiplier and shift, and an
activation clip of `(act_min - zp, act_max - zp)` gives back that clamp. The same cases drive
nnref directly through ctypes (tests/test_nnref_host.py) and, several at a time in one model, the
generated C on QEMU (tests/test_nnref_device.py). Array contents come from a numpy generator
seeded by the strategy, so hypothesis spends its effort on the structure.
"""

from __future__ import annotations

from dataclasses import dataclass

import hypothesis
import numpy as np
from hypothesis import strategies as st

from mcudeploy import ir
from mcudeploy.arith import params as qp
from mcudeploy.frontends.padding import output_size
from mcudeploy.reference import run_graph

I32 = np.int32


@dataclass(frozen=True)
class Case:
    """One operator with its tensors, and the values of its inputs."""

    graph: ir.Graph
    inputs: tuple[np.ndarray, ...]

    @property
    def op(self) -> ir.Op:
        return self.graph.ops[0]

    def expected(self) -> np.ndarray:
        """The host reference's output."""
        values = run_graph(self.graph, dict(zip(self.graph.inputs, self.inputs, strict=True)))
        return values[self.graph.outputs[0]]


def _act(zp: int, scale: float, act: tuple[int, int]) -> ir.Clip:
    low, high = act
    return ir.Clip(None if low == -128 else (low - zp) * scale, None if high == 127 else (high - zp) * scale)


def _q(scale: float, zp: int) -> ir.QuantParams:
    return ir.QuantParams((scale,), (zp,))


def _case(attrs, inputs: dict[str, tuple[tuple[int, ...], ir.QuantParams, np.ndarray | None]],
          out_shape: tuple[int, ...], out_quant: ir.QuantParams, values: list[np.ndarray]) -> Case:
    tensors = {
        name: ir.Tensor(name, tuple(shape), "int32" if data is not None and data.dtype == I32 else "int8",
                        quant, data)
        for name, (shape, quant, data) in inputs.items()
    }
    tensors["y"] = ir.Tensor("y", tuple(out_shape), "int8", out_quant)
    op = ir.Op("op", attrs, tuple(inputs), ("y",), f"{attrs.KIND} case")
    feeds = tuple(n for n, (_, _, data) in inputs.items() if data is None)
    return Case(ir.Graph("case", tensors, (op,), feeds, ("y",)), tuple(values))


def _weight_quant(mult: np.ndarray, shift: np.ndarray, axis: int) -> ir.QuantParams:
    scales = tuple(float(m) * 2.0 ** (int(s) - 31) for m, s in zip(mult, shift, strict=True))
    return ir.QuantParams(scales, (0,) * len(scales), axis)


def conv_case(seed: int, *, n: int, hw: tuple[int, int], c_f: int, groups: int, per_group: int,
              kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
              pads: tuple[int, int, int, int], zp_in: int, zp_out: int, shifts: tuple[int, int],
              act: tuple[int, int]) -> Case:
    """A (grouped) CONV_2D; pads are (top, bottom, left, right), shifts the range drawn from."""
    rng = np.random.default_rng(seed)
    c_in, c_out = c_f * groups, per_group * groups
    pad = ir.Padding(*pads)
    oh = output_size(hw[0], kernel[0], stride[0], dilation[0], pad.top, pad.bottom)
    ow = output_size(hw[1], kernel[1], stride[1], dilation[1], pad.left, pad.right)
    mult = rng.integers(2**30, 2**31, c_out)
    shift = rng.integers(shifts[0], shifts[1] + 1, c_out)
    wq = _weight_quant(mult, shift, 0)
    x = rng.integers(-128, 128, (n, *hw, c_in)).astype(np.int8)
    w = rng.integers(-127, 128, (c_out, *kernel, c_f)).astype(np.int8)
    b = rng.integers(-2**16, 2**16, c_out).astype(I32)
    attrs = ir.Conv2D(stride, dilation, pad, _act(zp_out, 1.0, act))
    return _case(attrs, {"x": (x.shape, _q(1.0, zp_in), None), "w": (w.shape, wq, w),
                         "b": (b.shape, wq, b)}, (n, oh, ow, c_out), _q(1.0, zp_out), [x])


def depthwise_case(seed: int, *, n: int, hw: tuple[int, int], c_in: int, ch_mult: int,
                   kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
                   pads: tuple[int, int, int, int], zp_in: int, zp_out: int,
                   shifts: tuple[int, int], act: tuple[int, int]) -> Case:
    rng = np.random.default_rng(seed)
    c_out = c_in * ch_mult
    pad = ir.Padding(*pads)
    oh = output_size(hw[0], kernel[0], stride[0], dilation[0], pad.top, pad.bottom)
    ow = output_size(hw[1], kernel[1], stride[1], dilation[1], pad.left, pad.right)
    mult = rng.integers(2**30, 2**31, c_out)
    shift = rng.integers(shifts[0], shifts[1] + 1, c_out)
    wq = _weight_quant(mult, shift, 3)
    x = rng.integers(-128, 128, (n, *hw, c_in)).astype(np.int8)
    w = rng.integers(-127, 128, (1, *kernel, c_out)).astype(np.int8)
    b = rng.integers(-2**16, 2**16, c_out).astype(I32)
    attrs = ir.DepthwiseConv2D(stride, dilation, pad, ch_mult, _act(zp_out, 1.0, act))
    return _case(attrs, {"x": (x.shape, _q(1.0, zp_in), None), "w": (w.shape, wq, w),
                         "b": (b.shape, wq, b)}, (n, oh, ow, c_out), _q(1.0, zp_out), [x])


def fc_case(seed: int, *, rows: int, depth: int, c_out: int, per_channel: bool, zp_in: int,
            zp_out: int, shifts: tuple[int, int], act: tuple[int, int]) -> Case:
    """FULLY_CONNECTED. TFLite takes a per-tensor multiplier's scale product in float32, so a
    per-tensor multiplier is drawn with 24 significant bits."""
    rng = np.random.default_rng(seed)
    count = c_out if per_channel else 1
    mult = rng.integers(2**30, 2**31, count)
    if not per_channel:
        mult = (mult >> 7) << 7
    shift = rng.integers(shifts[0], shifts[1] + 1, count)
    wq = _weight_quant(mult, shift, 0)
    x = rng.integers(-128, 128, (rows, depth)).astype(np.int8)
    w = rng.integers(-127, 128, (c_out, depth)).astype(np.int8)
    b = rng.integers(-2**16, 2**16, c_out).astype(I32)
    bq = ir.QuantParams(wq.scale * (c_out // count), (0,) * c_out, 0)
    attrs = ir.FullyConnected(_act(zp_out, 1.0, act))
    return _case(attrs, {"x": (x.shape, _q(1.0, zp_in), None), "w": (w.shape, wq, w),
                         "b": (b.shape, bq, b)}, (rows, c_out), _q(1.0, zp_out), [x])


def pool_case(seed: int, *, mode: str, n: int, hw: tuple[int, int], c: int, window: tuple[int, int],
              stride: tuple[int, int], pads: tuple[int, int, int, int], zp: int,
              act: tuple[int, int]) -> Case:
    rng = np.random.default_rng(seed)
    pad = ir.Padding(*pads)
    oh = output_size(hw[0], window[0], stride[0], 1, pad.top, pad.bottom)
    ow = output_size(hw[1], window[1], stride[1], 1, pad.left, pad.right)
    x = rng.integers(-128, 128, (n, *hw, c)).astype(np.int8)
    attrs = ir.Pool2D(mode, window, stride, pad, _act(zp, 1.0, act))
    return _case(attrs, {"x": (x.shape, _q(1.0, zp), None)}, (n, oh, ow, c), _q(1.0, zp), [x])


def binary_case(seed: int, *, kind: str, size: int, scales: tuple[float, float, float],
                zps: tuple[int, int, int], act: tuple[int, int]) -> Case:
    """ADD or MUL of two same-shape inputs."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (1, size)).astype(np.int8)
    b = rng.integers(-128, 128, (1, size)).astype(np.int8)
    clip = _act(zps[2], scales[2], act)
    attrs = ir.Add(clip) if kind == "add" else ir.Mul(clip)
    return _case(attrs, {"a": (a.shape, _q(scales[0], zps[0]), None),
                         "b": (b.shape, _q(scales[1], zps[1]), None)},
                 a.shape, _q(scales[2], zps[2]), [a, b])


def softmax_case(seed: int, *, rows: int, row_size: int, scale: float, beta: float, zp: int) -> Case:
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (rows, row_size)).astype(np.int8)
    return _case(ir.Softmax(beta), {"x": (x.shape, _q(scale, zp), None)}, x.shape,
                 _q(1.0 / 256.0, -128), [x])


# ---------------------------------------------------------------- strategies

seeds = st.integers(0, 2**32 - 1)
zero_points = st.integers(-128, 127)
# Shift ranges of both signs. Mostly those of real layers (outputs spread over int8, where an
# error of one in an accumulator shows), sometimes any right shift, sometimes left shifts too.
_realistic_shifts = st.integers(-14, -4).flatmap(lambda lo: st.tuples(st.just(lo), st.integers(lo, lo + 3)))
shift_ranges = st.one_of(
    _realistic_shifts, _realistic_shifts, _realistic_shifts,
    st.tuples(st.integers(-31, 0), st.integers(-31, 0)).map(sorted).map(tuple),
    st.tuples(st.integers(-31, 30), st.integers(-31, 30)).map(sorted).map(tuple),
)
act_ranges = st.one_of(st.just((-128, 127)),
                       st.tuples(st.integers(-128, 127), st.integers(-128, 127)).map(sorted).map(tuple))


@st.composite
def _window(draw, max_kernel: int, max_dilation: int):
    """(hw, kernel, stride, dilation, pads) with at least one output position per axis."""
    kernel, stride, dilation, hw, pads = [], [], [], [], []
    for _ in range(2):
        k, s = draw(st.integers(1, max_kernel)), draw(st.integers(1, 3))
        d = draw(st.integers(1, max_dilation))
        span = (k - 1) * d + 1
        before, after = draw(st.integers(0, span - 1)), draw(st.integers(0, span - 1))
        size = draw(st.integers(max(1, span - before - after), 9))
        kernel.append(k), stride.append(s), dilation.append(d), hw.append(size), pads.append((before, after))
    return (tuple(hw), tuple(kernel), tuple(stride), tuple(dilation),
            (pads[0][0], pads[0][1], pads[1][0], pads[1][1]))


@st.composite
def conv_cases(draw) -> Case:
    hw, kernel, stride, dilation, pads = draw(_window(3, 3))
    return conv_case(draw(seeds), n=draw(st.integers(1, 3)), hw=hw, c_f=draw(st.integers(1, 4)),
                     groups=draw(st.integers(1, 3)), per_group=draw(st.integers(1, 4)), kernel=kernel,
                     stride=stride, dilation=dilation, pads=pads, zp_in=draw(zero_points),
                     zp_out=draw(zero_points), shifts=draw(shift_ranges), act=draw(act_ranges))


@st.composite
def depthwise_cases(draw) -> Case:
    hw, kernel, stride, dilation, pads = draw(_window(3, 3))
    return depthwise_case(draw(seeds), n=draw(st.integers(1, 3)), hw=hw, c_in=draw(st.integers(1, 6)),
                          ch_mult=draw(st.integers(1, 4)), kernel=kernel, stride=stride,
                          dilation=dilation, pads=pads, zp_in=draw(zero_points),
                          zp_out=draw(zero_points), shifts=draw(shift_ranges), act=draw(act_ranges))


@st.composite
def fc_cases(draw) -> Case:
    return fc_case(draw(seeds), rows=draw(st.integers(1, 4)), depth=draw(st.integers(1, 48)),
                   c_out=draw(st.integers(1, 12)), per_channel=draw(st.booleans()),
                   zp_in=draw(zero_points), zp_out=draw(zero_points), shifts=draw(shift_ranges),
                   act=draw(act_ranges))


@st.composite
def pool_cases(draw) -> Case:
    hw, window, stride, _, pads = draw(_window(4, 1))
    return pool_case(draw(seeds), mode=draw(st.sampled_from(["avg", "max"])), n=draw(st.integers(1, 3)),
                     hw=hw, c=draw(st.integers(1, 40)), window=window, stride=stride, pads=pads,
                     zp=draw(zero_points), act=draw(act_ranges))


scales = st.floats(-12, 1).map(lambda e: float(2.0**e * 1.37))


@st.composite
def binary_cases(draw, kind: str) -> Case:
    return binary_case(draw(seeds), kind=kind, size=draw(st.integers(1, 64)),
                       scales=(draw(scales), draw(scales), draw(scales)),
                       zps=(draw(zero_points), draw(zero_points), draw(zero_points)),
                       act=draw(act_ranges))


@st.composite
def softmax_cases(draw) -> Case:
    return softmax_case(draw(seeds), rows=draw(st.integers(1, 4)), row_size=draw(st.integers(1, 40)),
                        scale=draw(st.floats(-8, 0).map(lambda e: float(2.0**e * 1.11))),
                        beta=draw(st.floats(0.1, 3.0)), zp=draw(zero_points))


STRATEGIES = {
    "conv2d": conv_cases(), "depthwise_conv2d": depthwise_cases(), "fully_connected": fc_cases(),
    "pool2d": pool_cases(), "add": binary_cases("add"), "mul": binary_cases("mul"),
    "softmax": softmax_cases(),
}


def combine(cases: list[Case], name: str = "nnref_cases") -> tuple[ir.Graph, tuple[np.ndarray, ...]]:
    """All cases side by side in one graph (tensor names prefixed c<i>_), and its input vector."""
    tensors: dict[str, ir.Tensor] = {}
    ops, inputs, outputs, values = [], [], [], []
    for i, case in enumerate(cases):
        rename = {n: f"c{i}_{n}" for n in case.graph.tensors}
        for old, t in case.graph.tensors.items():
            tensors[rename[old]] = ir.Tensor(rename[old], t.shape, t.dtype, t.quant, t.data)
        op = case.op
        ops.append(ir.Op(f"c{i}_{op.kind}", op.attrs, tuple(rename[n] for n in op.inputs),
                         tuple(rename[n] for n in op.outputs), f"case {i} ({op.kind})"))
        inputs += [rename[n] for n in case.graph.inputs]
        outputs += [rename[n] for n in case.graph.outputs]
        values += case.inputs
    return ir.Graph(name, tensors, tuple(ops), tuple(inputs), tuple(outputs)), tuple(values)


def run_on_nnref(host, case: Case) -> np.ndarray:
    """The case's layer computed by nnref (tests/nnreflib.NnrefHost), its status checked."""
    op, g = case.op, case.graph
    x = case.inputs[0]
    y = g.tensor("y")
    a = op.attrs
    if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected"):
        p = qp.conv_params(op, g)
        w = g.tensor("w").data
        common = {"input_offset": p.input_offset, "output_offset": p.output_offset,
                  "act": (p.act_min, p.act_max)}
        if op.kind == "fully_connected":
            per_channel = len(p.multiplier) > 1
            mult, shift = (p.multiplier, p.shift) if per_channel else (p.multiplier[0], p.shift[0])
            status, out = host.fully_connected(x, w, p.bias, mult, shift, per_channel=per_channel,
                                               **common)
        else:
            window = {"stride": a.stride, "padding": (a.padding.top, a.padding.left),
                      "dilation": a.dilation, "out_shape": y.shape, **common}
            if op.kind == "conv2d":
                status, out = host.conv(x, w, p.bias, p.multiplier, p.shift, **window)
            else:
                status, out = host.depthwise(x, w, p.bias, p.multiplier, p.shift,
                                             ch_mult=a.depth_multiplier, **window)
    elif op.kind == "pool2d":
        p = qp.pool_params(op, g)
        status, out = host.pool(a.mode, x, window=a.window, stride=a.stride,
                                padding=(a.padding.top, a.padding.left), act=(p.act_min, p.act_max),
                                out_shape=y.shape)
    elif op.kind == "add":
        status, out = host.add(x, case.inputs[1], qp.add_params(op, g))
    elif op.kind == "mul":
        status, out = host.mul(x, case.inputs[1], qp.mul_params(op, g))
    else:
        status, out = 0, host.softmax(x, qp.softmax_params(op, g))
    assert status == 0, f"{op.kind} returned {status}"
    return out.reshape(y.shape)


def describe(case: Case) -> str:
    """The case's shapes and parameters, for failure messages."""
    op = case.op
    shapes = {n: t.shape for n, t in case.graph.tensors.items()}
    return f"{op.kind} {op.attrs} shapes {shapes}"


DEVICE_SEED = 20_260_501
DEVICE_CASES_PER_KIND = 12


def draw_cases(kind: str, count: int, seed: int) -> list[Case]:
    """`count` cases of one kind, the same ones on every run (hypothesis with a fixed seed)."""
    found: list[Case] = []

    @hypothesis.seed(seed)
    @hypothesis.settings(max_examples=count, database=None, deadline=None,
                         phases=[hypothesis.Phase.generate],
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(STRATEGIES[kind])
    def collect(case: Case) -> None:
        found.append(case)

    collect()
    return found


def device_batch(kinds: list[str] | None = None) -> list[Case]:
    """The cases run on QEMU, one model per CPU class (and through ctypes on the host too)."""
    return [case for kind in (kinds or list(STRATEGIES))
            for case in draw_cases(kind, DEVICE_CASES_PER_KIND, DEVICE_SEED)]

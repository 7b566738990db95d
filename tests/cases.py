"""The plan of small test graphs: one entry per layer variant, shared by the host and QEMU tests.

Each case builds a graph with `GraphBuilder`; names say what is exercised.
"""

from __future__ import annotations

from collections.abc import Callable

from modelgen import GraphBuilder

from mcudeploy import ir

RELU, RELU6 = ir.Clip(0.0, None), ir.Clip(0.0, 6.0)


def _conv(shape, c_out, **kw) -> Callable[[GraphBuilder], list[str]]:
    def build(b: GraphBuilder) -> list[str]:
        return [b.conv(b.input(shape), c_out, **kw)]
    return build


def _dw(shape, multiplier, **kw) -> Callable[[GraphBuilder], list[str]]:
    def build(b: GraphBuilder) -> list[str]:
        return [b.depthwise(b.input(shape), multiplier, **kw)]
    return build


def _pool_add_fc_softmax(b: GraphBuilder) -> list[str]:
    x = b.input((1, 8, 8, 5))
    avg = b.pool(x, "avg", (3, 3), (2, 2), "same")
    mx = b.pool(x, "max", (3, 3), (2, 2), "same")
    s = b.add(avg, mx, RELU)
    flat = b.reshape(s, (1, 80))
    return [b.softmax(b.fully_connected(flat, 10), beta=0.5)]


def _fc_batch(b: GraphBuilder) -> list[str]:
    return [b.fully_connected(b.input((3, 20)), 7, RELU6)]


def _two_outputs(b: GraphBuilder) -> list[str]:
    x = b.input((1, 6, 6, 4))
    c = b.conv(x, 4, padding="valid", activation=RELU)
    return [b.pool(c, "max", (2, 2), (2, 2)), b.depthwise(x, 1, stride=(2, 2))]


def _mul_broadcast(b: GraphBuilder) -> list[str]:
    x = b.input((2, 5, 5, 6))
    scale = b.input((1, 1, 1, 6))
    y = b.mul(x, scale, RELU)
    return [b.mul(y, b.constant((6,)))]


def _add_broadcast_and_constant(b: GraphBuilder) -> list[str]:
    x = b.input((1, 4, 6, 3))
    y = b.add_b(b.constant((1, 1, 1, 3)), x)
    z = b.add_b(y, b.constant((1,)), RELU6)
    return [b.add_b(z, b.input((1, 4, 6, 3)))]


def _concat_pad(b: GraphBuilder) -> list[str]:
    x = b.input((1, 5, 4, 3))
    c = b.conv(x, 4, padding="valid", kernel=(1, 1))
    q = b.pool_same_quant(c)
    channels = b.concat([c, q], axis=3)
    rows = b.concat([c, q, c], axis=1)
    padded = b.pad(channels, ((0, 0), (1, 2), (0, 3), (0, 0)))
    return [padded, b.pad(rows, ((0, 0), (0, 0), (0, 0), (2, 1))), b.concat([c, q], axis=0)]


def _conv_asymmetric_padding(b: GraphBuilder) -> list[str]:
    return [b.conv(b.input((1, 7, 8, 3)), 4, kernel=(3, 2),
                   padding=ir.Padding(top=2, bottom=0, left=0, right=1))]


def _slice_logistic_quantize(b: GraphBuilder) -> list[str]:
    x = b.input((1, 9, 1, 12))
    head = b.slice(x, (0, 2, 0, 0), (1, 9, 1, 12), (1, 3, 1, 1))
    tail = b.slice(x, (0, 5, 0, 3), (1, 9, 1, 10))
    fc = b.fully_connected(b.reshape(tail, (1, 28)), 6)
    conv = b.conv(x, 4, kernel=(3, 1))
    return [head, b.logistic(fc), b.quantize(b.logistic(conv)), b.tanh(conv), b.leaky_relu(conv, 0.1),
            b.hard_swish(conv, b.tensors[conv].scale * 0.7, -100)]


def _float_io_mean(b: GraphBuilder) -> list[str]:
    x = b.float_input((2, 7, 5, 3))
    features = b.mean(b.conv(x, 6, activation=RELU), keep_dims=False)
    pooled = b.mean(b.conv(x, 4, kernel=(1, 1)), keep_dims=True)
    return [b.dequantize(b.fully_connected(features, 4)), pooled]


def _windows_beyond_the_input(b: GraphBuilder) -> list[str]:
    rows = b.input((1, 2, 1, 16))
    tiny = b.input((1, 2, 3, 4))
    return [b.depthwise(rows, 1, kernel=(9, 1)),  # SAME pads 4 rows each side of 2
            b.conv(tiny, 3, kernel=(5, 5)),
            b.conv(tiny, 2, kernel=(3, 3), dilation=(3, 3)),  # some taps never reach the input
            b.pool(tiny, "avg", (5, 5), (1, 1), "same"),
            b.pool(tiny, "max", (4, 5), (2, 2), "same")]


def _maximum_minimum(b: GraphBuilder) -> list[str]:
    x = b.input((2, 5, 4, 6))
    conv = b.conv(x, 6, kernel=(1, 1))
    channel = b.input((1, 1, 1, 6))
    column = b.input((2, 5, 1, 1))
    # the first operand broadcasting: the second, an input, takes its quantization
    return [b.extremum("max", conv, x), b.extremum("min", conv, channel),
            b.extremum("max", column, b.input((2, 5, 4, 6)))]


def _sub_rsqrt(b: GraphBuilder) -> list[str]:
    # SUB of two inputs that broadcast against each other, minus a per-channel constant with a
    # fused ReLU, and a tensor minus its mean over the channels (layer normalisation's centring);
    # RSQRT of every int8 value
    rows, columns = b.input((2, 3, 1, 8)), b.input((2, 1, 4, 1))
    both = b.sub(rows, columns)
    x = b.conv(b.input((1, 3, 5, 6)), 6, kernel=(1, 1))
    centred = b.sub(x, b.conv(x, 1, kernel=(1, 1)))
    return [both, b.sub(both, b.constant((8,)), RELU), centred, b.rsqrt(b.input((1, 16, 16)))]


CASES: dict[str, Callable[[GraphBuilder], list[str]]] = {
    "conv3x3_same_relu": _conv((1, 9, 9, 4), 8, activation=RELU),
    "conv3x3_stride2_valid": _conv((1, 10, 9, 3), 5, stride=(2, 2), padding="valid"),
    "conv_dilation2": _conv((1, 11, 11, 4), 4, dilation=(2, 2)),
    "conv_grouped2": _conv((1, 7, 7, 6), 4, groups=2),
    "conv_grouped_c_over_4": _conv((1, 6, 6, 16), 8, groups=4, activation=RELU6),
    "conv_groups_eq_cin": _conv((1, 6, 6, 5), 10, groups=5),
    "conv1x1": _conv((1, 5, 5, 12), 7, kernel=(1, 1)),
    "conv_batch3": _conv((3, 6, 5, 3), 4, stride=(1, 2)),
    "conv1d": _conv((1, 1, 17, 6), 5, kernel=(1, 3), stride=(1, 2)),
    "depthwise_m1": _dw((1, 9, 9, 8), 1, activation=RELU6),
    "depthwise_m2_stride2": _dw((1, 9, 8, 3), 2, stride=(2, 2)),
    "depthwise_m3_batch3_dilated": _dw((3, 9, 9, 2), 3, dilation=(2, 2)),
    "depthwise_1_channel_to_many": _dw((1, 6, 6, 1), 7, kernel=(2, 2), padding="valid"),
    "pool_add_fc_softmax": _pool_add_fc_softmax,
    "fc_batch3": _fc_batch,
    "two_outputs": _two_outputs,
    "mul_broadcast": _mul_broadcast,
    "add_broadcast_and_constant": _add_broadcast_and_constant,
    "concat_pad": _concat_pad,
    "slice_logistic_quantize": _slice_logistic_quantize,
    "float_io_mean": _float_io_mean,
    "windows_beyond_the_input": _windows_beyond_the_input,
    "maximum_minimum": _maximum_minimum,
    "sub_rsqrt": _sub_rsqrt,
}


def build_case(name: str, seed: int = 0):
    """(graph, tflite bytes) of a case."""
    b = GraphBuilder(seed=seed)
    outputs = CASES[name](b)
    return b.build(outputs, name=name)


def build_cases(names: list[str], seed: int = 0, name: str = "matrix"):
    """One graph holding several cases side by side (one firmware image tests them all)."""
    b = GraphBuilder(seed=seed)
    outputs = [out for case in names for out in CASES[case](b)]
    return b.build(outputs, name=name)


def reference_layers():
    """(graph, tflite bytes) of the layers of issue 10's instructions-per-MAC table: 3x3 kernels
    on 24x24 maps, and a 256 -> 64 fully connected layer."""
    b = GraphBuilder(seed=4)
    b.conv(b.input((1, 24, 24, 16)), 16)
    b.depthwise(b.input((1, 24, 24, 32)), 1)
    b.depthwise(b.input((1, 24, 24, 16)), 2)
    b.conv(b.input((1, 24, 24, 16)), 16, groups=4)
    b.fully_connected(b.input((1, 256)), 64)
    return b.build([op.outputs[0] for op in b.ops], name="reference_layers")


REFERENCE_LAYER_NAMES = ["convolution 16->16", "depthwise, ch_mult 1, 32 ch",
                         "depthwise, ch_mult 2, 16->32", "grouped conv, 4 groups", "fully connected 256->64"]

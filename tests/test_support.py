"""Support checks: refusals name the operator and the rule (every constraint_* has a refusing case
quoting it); the docs table is generated from them."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from cases import build_case
from modelgen import GraphBuilder

from mcudeploy import ir, support
from mcudeploy.errors import UnsupportedError
from mcudeploy.support import Constraint, check_graph, rule

ROOT = Path(__file__).resolve().parent.parent


def _with_tensor(graph: ir.Graph, name: str, **changes) -> ir.Graph:
    tensors = dict(graph.tensors)
    tensors[name] = dataclasses.replace(tensors[name], **changes)
    return dataclasses.replace(graph, tensors=tensors)


def test_supported_cases_pass() -> None:
    for case in ("conv_grouped2", "pool_add_fc_softmax", "depthwise_m3_batch3_dilated"):
        check_graph(build_case(case)[0])


@pytest.mark.parametrize(
    ("case", "tensor", "changes", "expected"),
    [
        ("conv1x1", "t0_conv2d", {"dtype": "int16"}, "only QUANTIZE converts between int8 and int16"),
        ("conv1x1", "t0_conv2d", {"dtype": "float32"}, "Activations are int8"),
        ("conv1x1", "w0", {"quant": ir.QuantParams((0.1,), (3,))}, "symmetric (zero point 0)"),
        ("conv1x1", "b0", {"dtype": "int64"}, "bias, if any, is constant int32"),
        ("conv1x1", "t0_conv2d", {"shape": (1, 5, 4, 7)}, "output size follows from kernel"),
        ("conv_grouped2", "w0", {"shape": (4, 3, 3, 4)}, "Groups divide both channel counts"),
        ("pool_add_fc_softmax", "t5_softmax", {"quant": ir.QuantParams((0.1,), (0,))},
         "scale 1/256, zero point -128"),
        ("pool_add_fc_softmax", "t1_pool2d", {"quant": ir.QuantParams((0.5,), (1,))},
         "keeps the input's scale and zero point"),
        ("slice_logistic_quantize", "t8_tanh", {"quant": ir.QuantParams((0.01,), (0,))},
         "scale 1/128, zero point 0"),
        ("slice_logistic_quantize", "t10_hard_swish", {"quant": ir.QuantParams((0.0001,), (0,))},
         "is below 1/128 of the input scale"),
        ("maximum_minimum", "t2_extremum", {"quant": ir.QuantParams((0.5,), (1,))},
         "is quantized unlike the output"),
        ("maximum_minimum", "input1", {"shape": (1, 1, 3, 6)}, "does not broadcast to [2, 5, 4, 6]"),
    ],
)
def test_refusal_names_operator_rule_and_detail(case, tensor, changes, expected) -> None:
    graph = _with_tensor(build_case(case)[0], tensor, **changes)
    with pytest.raises(UnsupportedError) as err:
        check_graph(graph)
    message = str(err.value)
    assert message.startswith("operator ") and "not supported" in message
    assert expected in message and "Here:" in message


def test_add_with_different_shapes_is_refused() -> None:
    graph, _ = build_case("pool_add_fc_softmax")
    add = next(op for op in graph.ops if op.kind == "add")
    ops = tuple(dataclasses.replace(op, inputs=(op.inputs[0], "input")) if op is add else op
                for op in graph.ops)
    graph = dataclasses.replace(graph, ops=ops)
    with pytest.raises(UnsupportedError, match=r"shapes \[1, 4, 4, 5\] and \[1, 8, 8, 5\] do not broadcast"):
        check_graph(graph)


def test_an_operator_reading_an_uncomputed_tensor_is_refused() -> None:
    graph, _ = build_case("conv1x1")
    op = dataclasses.replace(graph.ops[0], inputs=("ghost", *graph.ops[0].inputs[1:]))
    tensors = {**graph.tensors, "ghost": graph.tensors["input"]}
    with pytest.raises(UnsupportedError, match="reads tensor 'ghost', which no earlier operator"):
        check_graph(dataclasses.replace(graph, ops=(op,), tensors=tensors))


def test_supported_ops_doc_is_generated_from_the_checks() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    from gen_supported_ops import TARGET, render

    assert TARGET.read_text() == render(), "run python scripts/gen_supported_ops.py"
    assert "Groups divide both channel counts" in render()


# ---- every constraint refuses, quoting its rule -------------------------------------------------

def _graph(build) -> ir.Graph:
    """The IR graph a GraphBuilder recipe makes (not written to TFLite: it is about to be broken)."""
    b = GraphBuilder(seed=3)
    outputs = build(b)
    return ir.Graph("refused", dict(b.tensors), tuple(b.ops), tuple(b.inputs), tuple(outputs))


def _attrs(graph: ir.Graph, index: int, **changes) -> ir.Graph:
    ops = list(graph.ops)
    ops[index] = dataclasses.replace(ops[index], attrs=dataclasses.replace(ops[index].attrs, **changes))
    return dataclasses.replace(graph, ops=tuple(ops))


def _quant(scale: float, zero_point: int = 0) -> ir.QuantParams:
    return ir.QuantParams((scale,), (zero_point,))


def _conv(b: GraphBuilder) -> list[str]:  # t0_conv2d = conv(input [1, 5, 5, 12], w0 [7, 1, 1, 12], b0)
    return [b.conv(b.input((1, 5, 5, 12)), 7, kernel=(1, 1))]


def _depthwise(b: GraphBuilder) -> list[str]:  # t0_depthwise_conv2d [1, 6, 6, 6], multiplier 2
    return [b.depthwise(b.input((1, 6, 6, 3)), 2)]


def _fc(b: GraphBuilder) -> list[str]:  # t0_fully_connected = input [1, 20] x w0 [4, 20] + b0
    return [b.fully_connected(b.input((1, 20)), 4)]


def _add(b: GraphBuilder) -> list[str]:
    return [b.add(b.input((1, 4, 4, 5)), b.input((1, 4, 4, 5)))]


def _sub(b: GraphBuilder) -> list[str]:  # t0_sub = input [1, 4, 4, 5] - input1 [1, 4, 1, 1]
    return [b.sub(b.input((1, 4, 4, 5)), b.input((1, 4, 1, 1)))]


def _mul(b: GraphBuilder) -> list[str]:  # t0_mul = input [1, 4, 1, 5] x input1 [1, 1, 3, 5]
    return [b.mul(b.input((1, 4, 1, 5)), b.input((1, 1, 3, 5)))]


def _squared_difference(b: GraphBuilder) -> list[str]:  # t0_squared_difference = (input - input1)^2
    return [b.squared_difference(b.input((1, 8, 4)), b.input((1, 8, 1)))]


def _rsqrt(b: GraphBuilder) -> list[str]:  # t0_rsqrt of input [1, 8], zero point -128
    return [b.rsqrt(b.input((1, 8)))]


def _concat(b: GraphBuilder) -> list[str]:  # t0_pool2d, then t1_concat
    x = b.input((1, 3, 3, 2))
    return [b.concat([x, b.pool_same_quant(x)], axis=3)]


def _reshape_softmax(b: GraphBuilder) -> list[str]:  # t0_reshape [1, 24], t1_softmax
    return [b.softmax(b.reshape(b.input((1, 2, 3, 4)), (1, 24)))]


def _unary(kind: str):
    def build(b: GraphBuilder) -> list[str]:
        x = b.input((1, 8))
        return [{"logistic": b.logistic, "tanh": b.tanh, "softmax": b.softmax}[kind](x)]
    return build


def _pool(b: GraphBuilder) -> list[str]:
    return [b.pool(b.input((1, 4, 4, 3)), "max")]


def _extremum(b: GraphBuilder) -> list[str]:
    return [b.extremum("max", b.input((1, 4, 4, 3)), b.input((1, 4, 4, 3)))]


def _pad(b: GraphBuilder) -> list[str]:
    return [b.pad(b.input((1, 3, 3, 2)), ((0, 0), (1, 1), (1, 1), (0, 0)))]


def _slice(b: GraphBuilder) -> list[str]:
    return [b.slice(b.input((1, 6, 4, 2)), (0, 0, 0, 0), (1, 6, 4, 2))]


def _mean(b: GraphBuilder) -> list[str]:
    return [b.mean(b.input((1, 4, 4, 3)))]


def _hard_swish(b: GraphBuilder) -> list[str]:
    return [b.hard_swish(b.input((1, 8)), 0.01, 0)]


def _relu6(b: GraphBuilder) -> list[str]:  # t0_relu, a clamp to [0, 6] in the input's quantization
    x = b.input((1, 8))
    return [b._op(ir.Relu(0.0, 6.0), (x,), (1, 8), b.tensors[x].quant)]


def _prelu(b: GraphBuilder) -> list[str]:  # t1_prelu = prelu(input [1, 4, 4, 3], c1 [3])
    x = b.input((1, 4, 4, 3))
    return [b._op(ir.PRelu(), (x, b.constant((3,))), (1, 4, 4, 3))]


def _transpose(b: GraphBuilder) -> list[str]:  # t0_transpose [1, 3, 4, 2] of input [1, 2, 3, 4]
    x = b.input((1, 2, 3, 4))
    return [b._op(ir.Transpose((0, 2, 3, 1)), (x,), (1, 3, 4, 2), b.tensors[x].quant)]


def _resize(b: GraphBuilder) -> list[str]:  # t0_resize [1, 8, 6, 2] of input [1, 4, 3, 2]
    x = b.input((1, 4, 3, 2))
    return [b._op(ir.Resize("bilinear", False, False), (x,), (1, 8, 6, 2), b.tensors[x].quant)]


def _broken(recipe, tensor: str, **changes):
    """A refusal: the recipe's graph with one tensor changed."""
    return lambda: _with_tensor(_graph(recipe), tensor, **changes)


def _broken_op(recipe, **changes):
    """A refusal: the recipe's graph with its first operator's attributes changed."""
    return lambda: _attrs(_graph(recipe), 0, **changes)


def _variable() -> ir.Graph:
    """READ_VARIABLE of a [1, 4] variable into a [1, 5] tensor."""
    quant = _quant(0.05)
    tensors = {"state": ir.Tensor("state", (1, 4), "int8", quant),
               "read": ir.Tensor("read", (1, 5), "int8", quant)}
    op = ir.Op("op0_read_variable", ir.ReadVariable(), ("state",), ("read",), "operator 0 (READ_VARIABLE)")
    return ir.Graph("refused", tensors, (op,), (), ("read",), {"state": np.zeros((1, 4), np.int8)})


def _int16_stride() -> ir.Graph:
    """A 1x1 convolution with a stride of 40000 rows (its output one row high)."""
    return _with_tensor(_attrs(_graph(_conv), 0, stride=(40000, 1)), "t0_conv2d", shape=(1, 1, 5, 7))


def _s16(recipe, tensor: str | None = None, **changes):
    """A 16x8 refusal: the recipe's graph with int16 activations (zero point 0) and int64 biases,
    then one tensor changed."""
    def build() -> ir.Graph:
        graph = _graph(recipe)
        tensors = {}
        for name, t in graph.tensors.items():
            if t.dtype == "int8" and not t.is_constant:
                t = dataclasses.replace(t, dtype="int16", quant=_quant(t.scale))
            elif t.dtype == "int32" and t.is_constant:
                t = dataclasses.replace(t, dtype="int64", data=t.data.astype(np.int64))
            tensors[name] = t
        graph = dataclasses.replace(graph, tensors=tensors)
        return _with_tensor(graph, tensor, **changes) if tensor else graph
    return build


def _int32_bias(recipe):
    def build() -> ir.Graph:
        graph = _s16(recipe)()
        return _with_tensor(graph, "b0", dtype="int32", data=graph.tensors["b0"].data.astype(np.int32))
    return build


# constraint -> a graph that breaks it, and no rule checked before it
REFUSALS: dict[Constraint, Callable[[], ir.Graph]] = {
    support.constraint_static_shapes: _broken(_conv, "t0_conv2d", shape=(1, 5, 0, 7)),
    support.constraint_int8_activations: _broken(_conv, "t0_conv2d", dtype="float32"),
    support.constraint_int8_weights: _s16(_conv, "w0", quant=ir.QuantParams((0.1,), (3,))),
    support.constraint_int16_activations: _s16(_conv, "t0_conv2d", quant=_quant(0.1, 3)),
    support.constraint_int16_weights: _int32_bias(_fc),
    support.constraint_int16_requantization: _s16(_conv, "t0_conv2d", quant=_quant(1e-9)),
    support.constraint_int16_add_scales: _s16(_add, "t0_add", quant=_quant(1e-9)),
    support.constraint_int16_softmax: _s16(_unary("softmax"), "t0_softmax", quant=_quant(0.1)),
    support.constraint_nhwc: _broken(_conv, "t0_conv2d", shape=(2, 5, 5, 7)),
    support.constraint_weights: _broken(_conv, "w0", quant=ir.QuantParams((0.1,), (3,))),
    support.constraint_conv_geometry: _broken(_conv, "w0", shape=(7, 1, 1, 5)),
    support.constraint_int16_geometry: _int16_stride,
    support.constraint_requantization: _broken(_conv, "t0_conv2d", quant=_quant(1e-9)),
    support.constraint_depthwise_geometry: _broken_op(_depthwise, depth_multiplier=3),
    support.constraint_fc_geometry: _broken(_fc, "w0", shape=(4, 7)),
    support.constraint_fc_bias_scale: _broken(_fc, "b0", quant=ir.QuantParams((1.0,) * 4, (0,) * 4, 0)),
    support.constraint_pool_geometry: _broken(_pool, "t0_pool2d", quant=_quant(0.5, 1)),
    support.constraint_broadcast: _broken(_add, "input1", shape=(1, 8, 8, 5)),
    support.constraint_add_scales: _broken(_add, "t0_add", quant=_quant(1e-9)),
    support.constraint_extremum: _broken(_extremum, "input1", quant=_quant(0.5, 1)),
    support.constraint_broadcast_4d: _broken(_sub, "input1", shape=(1, 4, 2, 1)),
    support.constraint_sub_scales: _broken(_sub, "t0_sub", quant=_quant(1e-9)),
    support.constraint_mul_broadcast: _broken(_mul, "input1", shape=(1, 1, 2, 5)),
    support.constraint_squared_difference_scales: _broken(_squared_difference, "t0_squared_difference",
                                                          quant=_quant(1e-9)),
    support.constraint_rsqrt_input: _broken(_rsqrt, "input", quant=_quant(0.1, -100)),
    support.constraint_rsqrt_scales: _broken(_rsqrt, "t0_rsqrt", quant=_quant(1e6)),
    support.constraint_same_quantization: _broken(_concat, "t1_concat", quant=_quant(0.5, 1)),
    support.constraint_pad: _broken_op(_pad, pads=((0, 0), (-1, 3), (1, 1), (0, 0))),
    support.constraint_softmax_output: _broken(_unary("softmax"), "t0_softmax", quant=_quant(0.1)),
    support.constraint_softmax_scaling: _broken(_unary("softmax"), "input", quant=_quant(1e-9)),
    support.constraint_reshape: _broken(_reshape_softmax, "t0_reshape", shape=(1, 25)),
    support.constraint_slice: _broken_op(_slice, strides=(1, 0, 1, 1)),
    support.constraint_mean: _broken(_mean, "t0_mean", shape=(1, 4)),
    support.constraint_same_size: _broken(_unary("logistic"), "t0_logistic", shape=(1, 9)),
    support.constraint_logistic_output: _broken(_unary("logistic"), "t0_logistic", quant=_quant(0.1)),
    support.constraint_q4_27_input: _broken(_unary("logistic"), "input", quant=_quant(16.0)),
    support.constraint_tanh_output: _broken(_unary("tanh"), "t0_tanh", quant=_quant(0.1)),
    support.constraint_hard_swish_scales: _broken(_hard_swish, "t0_hard_swish", quant=_quant(1e-6)),
    support.constraint_hard_swish_shifts: _broken(_hard_swish, "t0_hard_swish", quant=_quant(100.0)),
    support.constraint_relu_bounds: _broken(_relu6, "t0_relu", quant=_quant(0.5, 1)),
    support.constraint_prelu: _broken(_prelu, "c1", shape=(4,)),
    support.constraint_transpose: _broken(_transpose, "t0_transpose", shape=(1, 4, 3, 2)),
    support.constraint_variable: _variable,
    support.constraint_resize: _broken(_resize, "t0_resize", quant=_quant(0.5, 1)),
}


def test_every_constraint_has_a_refusing_case() -> None:
    constraints = {f for name, f in vars(support).items() if name.startswith("constraint_")}
    assert set(REFUSALS) == constraints, sorted(f.__name__ for f in constraints ^ set(REFUSALS))


@pytest.mark.parametrize("constraint", list(REFUSALS), ids=lambda c: c.__name__)
def test_constraint_refuses_quoting_its_rule(constraint: Constraint) -> None:
    graph = REFUSALS[constraint]()
    with pytest.raises(UnsupportedError) as err:
        check_graph(graph)
    assert f"not supported: {rule(constraint)} Here: " in str(err.value)

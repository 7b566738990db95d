"""Support checks: refusals name the operator and the rule; the docs table is generated from them."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
from cases import build_case

from mcudeploy import ir
from mcudeploy.errors import UnsupportedError
from mcudeploy.support import check_graph

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
        ("conv1x1", "t0_conv2d", {"dtype": "int16"}, "Activations are int8"),
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

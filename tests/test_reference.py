"""The host reference against TFLM, bit for bit, on every intermediate tensor of every test model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cases import CASES, build_case
from modelgen import GraphBuilder

from mcudeploy.errors import OracleError
from mcudeploy.frontends.tflite import load_tflite
from mcudeploy.oracles import MIN_ARENA_BYTES, Tflm, preserved_arena_bytes
from mcudeploy.reference import run_graph
from mcudeploy.vectors import load_vectors, random_vectors

BUNDLED = Path(__file__).resolve().parent.parent / "models" / "tiny_cnn.tflite"


def assert_every_tensor_matches(graph, data: bytes, vectors) -> None:
    oracle = Tflm(data, graph)
    index = {name: i for i, name in enumerate(graph.tensors)}
    seen = []
    for vector in vectors:
        oracle.invoke(list(vector))
        ours = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
        for name, value in ours.items():
            theirs = oracle.tensor(index[name])
            assert theirs.shape == value.shape, name
            np.testing.assert_array_equal(value, theirs, err_msg=f"tensor {name}")
        seen += [ours[n].reshape(-1) for n in graph.outputs]
    # outputs that take only a few values would make the comparison vacuous
    assert len(np.unique(np.concatenate(seen))) > 8


@pytest.mark.parametrize("case", sorted(CASES))
def test_reference_matches_tflm_on_every_tensor(case: str) -> None:
    graph, data = build_case(case, seed=7)
    assert_every_tensor_matches(graph, data, random_vectors(graph, 4, seed=1))


def test_reference_matches_tflm_on_the_bundled_model() -> None:
    graph = load_tflite(BUNDLED)
    vectors = load_vectors(graph, BUNDLED.with_name("tiny_cnn_inputs.npy"))
    vectors += random_vectors(graph, 8, seed=2)
    assert_every_tensor_matches(graph, BUNDLED.read_bytes(), vectors)


@pytest.mark.parametrize("scale", [0.002, 0.0117, 0.03, 0.0625, 0.1, 0.37])
def test_logistic_and_quantize_exhaustively_match_tflm(scale: float) -> None:
    """Every int8 input value through LOGISTIC and QUANTIZE (to uint8 and int8), for six scales."""
    from modelgen import GraphBuilder

    from mcudeploy import ir

    b = GraphBuilder(seed=int(scale * 1000))
    x = b.input((1, 256))
    b.tensors[x] = ir.Tensor(x, (1, 256), "int8", ir.QuantParams((scale,), (-7,)))
    graph, data = b.build([b.logistic(x), b.quantize(x, "uint8"), b.quantize(x, "int8")])
    vector = (np.arange(-128, 128, dtype=np.int8).reshape(1, 256),)
    oracle = Tflm(data, graph)
    ours = run_graph(graph, {x: vector[0]})
    for name, theirs in zip(graph.outputs, oracle.invoke(list(vector)), strict=True):
        np.testing.assert_array_equal(ours[name], theirs)
    assert len(np.unique(ours[graph.outputs[0]])) > 20


@pytest.mark.parametrize(("scale", "zero_point"), [(0.004, 3), (0.0236, -7), (0.05, 40), (0.125, -128),
                                                  (0.31, 0)])
def test_tanh_leaky_relu_and_hard_swish_exhaustively_match_tflm(scale: float, zero_point: int) -> None:
    """Every int8 input value through TANH, LEAKY_RELU (alphas 0.01, 0.2 and 1.7) and HARD_SWISH,
    into output scales above and below the input's, for five input quantizations."""
    from modelgen import GraphBuilder

    from mcudeploy import ir

    b = GraphBuilder(seed=int(scale * 1000))
    x = b.input((1, 256))
    b.tensors[x] = ir.Tensor(x, (1, 256), "int8", ir.QuantParams((scale,), (zero_point,)))
    outputs = [b.tanh(x), b.leaky_relu(x, 0.01), b.leaky_relu(x, 0.2, scale=scale * 0.37, zero_point=5),
               b.leaky_relu(x, 1.7, scale=scale * 2.9, zero_point=-100),
               b.hard_swish(x, scale * 0.6, -90), b.hard_swish(x, scale * 1.3, -5),
               b.hard_swish(x, scale * 0.011, 60)]
    graph, data = b.build(outputs)
    vector = (np.arange(-128, 128, dtype=np.int8).reshape(1, 256),)
    oracle = Tflm(data, graph)
    ours = run_graph(graph, {x: vector[0]})
    for name, theirs in zip(graph.outputs, oracle.invoke(list(vector)), strict=True):
        np.testing.assert_array_equal(ours[name], theirs, err_msg=name)
    assert len(np.unique(ours[graph.outputs[0]])) >= 20  # tanh saturates fast at scale 0.31


@pytest.mark.parametrize("seed", range(12))
def test_mean_matches_tflm_for_random_shapes_and_scales(seed: int) -> None:
    """TFLite's integer MEAN (multiplier divided by the count in 64 bits) against TFLM."""
    from modelgen import GraphBuilder

    from mcudeploy import ir

    rng = np.random.default_rng(seed)
    b = GraphBuilder(seed=seed)
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 12)), int(rng.integers(1, 12)),
             int(rng.integers(1, 7)))
    x = b.input(shape)
    outputs = [b.mean(x, keep_dims=bool(seed % 2))]
    if seed % 3 == 0:  # the same quantization in and out
        b.tensors[outputs[0]] = ir.Tensor(outputs[0], b.tensors[outputs[0]].shape, "int8", b.tensors[x].quant)
    graph, data = b.build(outputs)
    assert_every_tensor_matches(graph, data, random_vectors(graph, 6, seed=seed))


def test_tflm_keeps_every_tensor_of_a_model_beyond_16_mib() -> None:
    # Five 4 MiB tensors: TFLM keeping all of them (kPreserveAllTensors) needs more than the 16 MiB
    # the oracle used to give it, and refused the file (face_detection_back, 17.7 MB).
    b = GraphBuilder(seed=3)
    x, y = b.input((1, 1024, 1024, 4)), b.input((1, 1024, 1024, 4))
    for _ in range(3):
        x = b.add(x, y)
    graph, data = b.build([x], name="big")
    assert preserved_arena_bytes(graph) == 2 * 5 * 4 * 1024 * 1024 + (1 << 20)
    with pytest.raises(OracleError, match=r"TFLM failed to allocate tensors .*Failed to resize buffer"):
        Tflm(data, graph, arena_bytes=MIN_ARENA_BYTES)
    (vector,) = random_vectors(graph, 1, seed=2)
    with Tflm(data, graph) as oracle:
        (theirs,) = oracle.invoke(list(vector))
    ours = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))[graph.outputs[0]]
    np.testing.assert_array_equal(ours, theirs)
    assert len(np.unique(ours)) > 8

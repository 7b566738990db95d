"""What the device must output: the host reference's and TFLM's outputs for the same vectors."""

from __future__ import annotations

import numpy as np

from mcudeploy.model import Model
from mcudeploy.oracles import Tflm
from mcudeploy.reference import run_graph
from mcudeploy.vectors import Vector


def expected_outputs(model: Model, vectors: list[Vector]) -> dict[str, list[list[np.ndarray]]]:
    """Outputs of the host reference and of TFLM for every vector, by oracle. A stateful model's
    state carries over from vector to vector. TFLM runs in a worker process: when it crashes,
    aborts or refuses the file, this raises `OracleError`."""
    graph = model.graph
    reference = []
    state: dict[str, np.ndarray] = {}
    for vector in vectors:
        values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)), state)
        reference.append([values[n] for n in graph.outputs])
    with Tflm(model.tflite, graph) as oracle:
        tflm = [oracle.invoke(list(vector)) for vector in vectors]
    return {"host-reference": reference, "tflm": tflm}

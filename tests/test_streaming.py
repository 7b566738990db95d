"""Real streaming int8 models (the micro wake word models shipped in the `pymicro-wakeword` wheel):
resource variables, CALL_ONCE, STRIDED_SLICE, SPLIT_V, LOGISTIC, QUANTIZE and a uint8 output.

Each model runs a sequence of inputs with its state carried on every side: the host reference,
TFLM and the device (host-compiled C here, QEMU below), and must agree on every step."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path

import numpy as np
import pytest
from hostlib import HostModel

from mcudeploy.boards import load_board
from mcudeploy.build import build_firmware
from mcudeploy.cli import main
from mcudeploy.codegen import generate
from mcudeploy.codegen.tuning import Tuning
from mcudeploy.device.protocol import Link, Space
from mcudeploy.device.runners.qemu import QemuRunner
from mcudeploy.frontends.tflite import load_tflite
from mcudeploy.nnlib import nnref_library
from mcudeploy.oracles import Tflm
from mcudeploy.reference import run_graph
from mcudeploy.vectors import random_vectors

MODELS = sorted(p for p in (importlib.resources.files("pymicro_wakeword") / "models").iterdir()
                if p.name.endswith(".tflite"))
STEPS = 60


def test_the_package_ships_four_models() -> None:
    assert [m.name for m in MODELS] == ["alexa.tflite", "hey_jarvis.tflite", "hey_mycroft.tflite",
                                        "okay_nabu.tflite"]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_every_tensor_of_every_step_matches_tflm(model) -> None:
    path = Path(str(model))
    graph = load_tflite(path)
    assert graph.variables and any(op.kind == "logistic" for op in graph.ops)
    oracle = Tflm(path.read_bytes(), graph)
    index = {name: i for i, name in enumerate(graph.tensors) if not name.startswith("variable:")}
    state: dict[str, np.ndarray] = {}
    for vector in random_vectors(graph, STEPS, seed=4):
        oracle.invoke(list(vector))
        values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)), state)
        for name, value in values.items():
            if name in index:
                np.testing.assert_array_equal(oracle.tensor(index[name]).reshape(value.shape), value,
                                              err_msg=name)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_generated_c_streams_like_tflm(model, tmp_path: Path) -> None:
    path = Path(str(model))
    graph = load_tflite(path)
    library = nnref_library()
    manifest = generate(graph, load_board("mps3-an547"), library, tmp_path, path.name)
    assert manifest.variables and manifest.arena_bytes < 4096
    host = HostModel(tmp_path, library, manifest)
    oracle = Tflm(path.read_bytes(), graph)
    for vector in random_vectors(graph, STEPS, seed=5):
        np.testing.assert_array_equal(host.invoke(vector)[0], oracle.invoke(list(vector))[0].reshape(1, 1))


@pytest.mark.device
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_streaming_model_on_qemu_over_sixty_steps(model, tmp_path: Path) -> None:
    out = tmp_path / "out"
    status = main(["run", str(model), "--vectors", str(STEPS), "--jobs", "2", "--out", str(out), "-q"])
    report = json.loads((out / "report.json").read_text())
    assert status == 0 and report["verdict"] == "pass", report
    assert report["vectors"] == STEPS and report["mismatched_vectors"] == 0
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    # The file's uint8 output: the device runs the int8 graph, the host shifts by 128.
    assert manifest["outputs"][0]["dtype"] == "int8" and manifest["variables"]
    assert manifest["outputs"][0]["name"] in report["model_info"]["uint8_io"]


@pytest.mark.device
def test_reset_restores_the_initial_state(tmp_path: Path) -> None:
    path = Path(str(MODELS[-1]))
    graph = load_tflite(path)
    library = nnref_library()
    board = load_board("mps3-an547")
    # Read after the whole inference, the concatenation must still be in the arena: as planned for
    # the library's calls (the generated kernels' scratch changes the plan)
    calls = Tuning(library_only=True).chooser(board.cpu_class, library)
    manifest = generate(graph, board, library, tmp_path / "model", path.name, choose=calls)
    elf = build_firmware(board, tmp_path / "model", tmp_path / "build", library,
                         extra_defines={"MCD_MAX_LAYERS": str(len(manifest.layers))})
    first_concat = next(t for t in manifest.tensors if manifest.layers[t.producer].kind == "concat")
    x0, x1 = random_vectors(graph, 2, seed=6)

    def step(link: Link, vector) -> bytes:
        link.write(Space.INPUT, 0, vector[0].tobytes())
        assert link.invoke().status == 0
        return link.read(Space.TENSOR, first_concat.id, first_concat.size)

    with QemuRunner(board, elf) as port:
        link = Link(port)
        link.hello()
        fresh = step(link, x0)
        carried = step(link, x1)
        link.reset()
        again = step(link, x0)
        link.exit(0)
    assert carried != fresh  # the concatenation holds the state left by x0
    assert again == fresh

"""Per-layer localisation: a mismatch is traced to the first layer that diverges, with the pattern
of its differences. On QEMU with a planted bug (tests/firmware/variants/planted_depthwise_bug.c:
channel 5 of every depthwise convolution comes out doubled), and on the host for the pattern."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cases import build_case, build_cases

from mcudeploy.boards import load_board
from mcudeploy.cli import main, parser
from mcudeploy.cli import run as run_command
from mcudeploy.codegen import generate
from mcudeploy.nnlib import nnref_library
from mcudeploy.pipeline import RunHooks
from mcudeploy.reference import run_graph
from mcudeploy.vectors import random_vectors
from mcudeploy.verify.localise import format_indices, localise

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "models" / "tiny_cnn.tflite"
PLANTED = RunHooks(
    sources=(Path(__file__).parent / "firmware" / "variants" / "planted_depthwise_bug.c",),
    defines={"arm_depthwise_conv_wrapper_s8": "planted_depthwise_conv_wrapper_s8"},
)


def planted_run(out: Path, capsys, *extra: str) -> tuple[int, dict, str]:
    # --library-calls: the bug is planted in the library's depthwise call, which a generated kernel
    # would replace
    args = parser().parse_args(["run", str(BUNDLED), "--out", str(out), "--vectors", "12", "--library-calls",
                                *extra])
    status = run_command.run(args, PLANTED)
    return status, json.loads((out / "report.json").read_text()), capsys.readouterr().out


@pytest.mark.device
def test_planted_depthwise_bug_is_traced_to_its_layer_and_channel(tmp_path: Path, capsys) -> None:
    status, report, text = planted_run(tmp_path / "out", capsys)
    assert status == 1 and report["verdict"] == "fail"
    assert sorted({m["vector"] for m in report["mismatches"]}) == [3, 4, 6, 7]
    loc = report["localisation"]
    assert loc["vector"] == 3 and loc["error"] is None
    first = next(d for d in loc["layers"] if d["index"] == loc["first_divergent"])
    assert (first["name"], first["kind"]) == ("l2_depthwise_conv2d", "depthwise_conv2d")
    assert first["pattern"]["channels"] == [5] and first["pattern"]["batches"] == [0]
    assert first["max_abs_diff"] > 0 and 0 < first["differing"] <= 36
    assert [d["differing"] for d in loc["layers"][:2]] == [0, 0]  # the layers before it matched
    heatmap = np.array(loc["heatmap"])
    assert heatmap.shape == (6, 8) and heatmap[:, 5].any() and not np.delete(heatmap, 5, 1).any()
    assert ("layer 2 l2_depthwise_conv2d (operator 2 (DEPTHWISE_CONV_2D)) is the first to diverge "
            "on vector 3") in " ".join(text.split())
    assert "channels 5 (of 8)" in " ".join(text.split())
    html = (tmp_path / "out" / "report.html").read_text()
    assert "l2_depthwise_conv2d" in html and 'class="verdict fail"' in html


@pytest.mark.device
def test_jobs_merge_the_results_in_vector_order(tmp_path: Path, capsys) -> None:
    status, report, _ = planted_run(tmp_path / "out", capsys, "--jobs", "2")
    assert status == 1 and report["link"]["jobs"] == 2
    assert report["vectors"] == 12
    assert sorted({m["vector"] for m in report["mismatches"]}) == [3, 4, 6, 7]
    first = report["localisation"]["first_divergent"]
    assert report["localisation"]["layers"][first]["pattern"]["channels"] == [5]


@pytest.mark.device
def test_jobs_pass_the_bundled_model(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["run", str(BUNDLED), "--out", str(out), "--vectors", "30", "--jobs", "2", "-q"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["link"]["jobs"] == 2 and report["bit_exact_vectors"] == 30
    assert report["localisation"] is None


def _device_tensors(manifest, graph, vector) -> dict[int, bytes]:
    """What a correct device would return layer by layer: the reference's tensors as bytes."""
    values = run_graph(graph, dict(zip(graph.inputs, vector, strict=True)))
    names = {t.id: t.name for t in manifest.tensors}
    return {layer.index: values[names[layer.tensor]].tobytes() for layer in manifest.layers}


def test_pattern_names_batch_row_column_and_channel(tmp_path: Path) -> None:
    graph, _ = build_case("depthwise_m3_batch3_dilated")
    manifest = generate(graph, load_board("mps3-an547"), nnref_library(), tmp_path, source="dw")
    vector = random_vectors(graph, 1, seed=4)[0]
    device = _device_tensors(manifest, graph, vector)
    layer = manifest.layers[0]
    shape = manifest.tensors[layer.tensor].shape
    assert shape == [3, 9, 9, 6]
    wrong = np.frombuffer(device[0], np.int8).reshape(shape).copy()
    wrong[2, 3, 1, 4] ^= 0x10
    wrong[2, 4, 1, 4] ^= 0x01
    device[0] = wrong.tobytes()
    loc = localise(manifest, graph, 7, vector, device)
    first = loc.first()
    assert first is not None and first.index == 0
    assert first.pattern == {"batches": [2], "rows": [3, 4], "columns": [1], "channels": [4]}
    assert (first.differing, first.max_abs_diff) == (2, 16)
    assert first.mean_abs_diff == pytest.approx(17 / (3 * 9 * 9 * 6), abs=1e-6)
    assert first.channel_max_abs_diff == [0, 0, 0, 0, 16, 0]
    assert loc.heatmap_rows == "rows" and loc.heatmap[3][4] == 16 and loc.heatmap[4][4] == 1
    assert loc.describe().startswith(
        "layer 0 l0_depthwise_conv2d (operator 0 (DEPTHWISE_CONV_2D)) is the first to diverge on "
        "vector 7: 2 of 1458 elements differ; channels 4 (of 6); columns 1 (of 9); rows 3-4 (of 9); "
        "batches 2 (of 3); max |diff| 16, mean |diff| 0.0117")


def test_first_of_several_diverging_layers_is_named(tmp_path: Path) -> None:
    graph, _ = build_cases(["pool_add_fc_softmax"])
    manifest = generate(graph, load_board("mps3-an547"), nnref_library(), tmp_path, source="chain")
    vector = random_vectors(graph, 1, seed=2)[0]
    device = _device_tensors(manifest, graph, vector)
    assert len(manifest.layers) >= 3
    for k in (1, 2):  # layer 1 is wrong, and so (as it would be on a device) everything after it
        data = bytearray(device[k])
        data[0] ^= 0x7F
        device[k] = bytes(data)
    loc = localise(manifest, graph, 0, vector, device)
    assert loc.first_divergent == 1
    assert [d.differing for d in loc.layers[:3]] == [0, 1, 1]


def test_a_mismatch_that_does_not_reproduce_is_said_so(tmp_path: Path) -> None:
    graph, _ = build_case("conv1x1")
    manifest = generate(graph, load_board("mps3-an547"), nnref_library(), tmp_path, source="c")
    vector = random_vectors(graph, 1, seed=2)[0]
    loc = localise(manifest, graph, 5, vector, _device_tensors(manifest, graph, vector))
    assert loc.first_divergent is None and loc.first() is None
    assert "matched the host reference" in loc.describe() and "did not reproduce" in loc.describe()


@pytest.mark.parametrize(("indices", "text"), [
    ([], "none"), ([5], "5"), ([0, 1, 2, 3], "0-3"), ([1, 3, 5], "1, 3, 5"), ([0, 1, 4, 6, 7], "0-1, 4, 6-7"),
    (list(range(0, 80, 2)), ", ".join(str(i) for i in range(0, 32, 2)) + ", ... (40 in all)"),
])
def test_indices_are_written_as_ranges(indices: list[int], text: str) -> None:
    assert format_indices(indices) == text

"""`--tune` on QEMU (mcudeploy.tune): candidates measured per layer, verified bit-exact on the
device, the fastest bit-exact one kept in DIR/tuning.json and reused by later builds; broken
candidates (a test-only table) rejected; the same machinery with a pack-shaped library; every
candidate of the convolution matrix run on the device; the choices and gains in `bench` and in
report.html. Host-side units (signatures, stop points, the tuning file) come first."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from modelgen import GraphBuilder
from nnpack import make_pack
from test_conv_matrix import matrix_model

from mcudeploy import ir
from mcudeploy.boards import load_board
from mcudeploy.cli import main
from mcudeploy.codegen.candidates import CANDIDATES, Candidate
from mcudeploy.codegen.grouped_fallback import constant, replace_constants
from mcudeploy.codegen.lower import Dims, Layer, lower
from mcudeploy.codegen.tuning import Tuning, layer_signature, library_id, model_tuning
from mcudeploy.errors import BoardError
from mcudeploy.frontends.tflite import load_tflite, parse_tflite
from mcudeploy.manifest import code_path
from mcudeploy.nnlib import nnref_library
from mcudeploy.packs import load_pack
from mcudeploy.progress import Progress
from mcudeploy.tune import simulator, stop_points, tune_graph, valid_until
from models import mlperf_tiny_tflite

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "models" / "tiny_cnn.tflite"


def center_tap_only(layer: Layer) -> Layer:
    """Broken on purpose: only the kernel's centre tap, unpadded (fast, and wrong)."""
    f = layer.values["filter_dims"]
    centre = constant(layer, "weights").reshape(f.h, f.w, f.c)[f.h // 2, f.w // 2]
    values = {**layer.values, "filter_dims": Dims(1, 1, 1, f.c), "padding": (0, 0)}
    return replace(layer, values=values, constants=replace_constants(layer, {"weights": centre}))


def refused(layer: Layer) -> Layer:
    """Broken on purpose: a channel multiplier the library refuses (an error status)."""
    return replace(layer, values={**layer.values, "ch_mult": layer.values["ch_mult"] + 1})


ALWAYS = lambda layer, library: True  # noqa: E731
DW = CANDIDATES["depthwise_conv2d"]
BROKEN_TABLE = {**CANDIDATES, "depthwise_conv2d": (
    DW[0], Candidate("center_tap_only", center_tap_only, ALWAYS), *DW[1:],
    Candidate("refused", refused, ALWAYS))}


def _graph(seed: int = 2) -> tuple[ir.Graph, bytes]:
    """A depthwise layer with multiplier 2, then a grouped convolution reading it."""
    b = GraphBuilder(seed=seed)
    x = b.input((1, 10, 9, 4))
    return b.build([b.conv(b.depthwise(x, 2), 8, groups=4)], "tune")


def _model_file(tmp_path: Path, seed: int = 2) -> Path:
    model = tmp_path / "tune.tflite"
    model.write_bytes(_graph(seed)[1])
    return model


# ---------------------------------------------------------------- host side


def test_signatures_keys_and_the_tuning_file_round_trip(tmp_path: Path) -> None:
    graph, _ = _graph()
    dw, conv = lower(graph).layers
    assert layer_signature(dw) == ("depthwise_conv2d in 1x10x9x4 filter 1x3x3x8 out 1x10x9x8 stride 1,1 "
                                   "dilation 1,1 padding 1,1 mult 2")
    assert layer_signature(conv).startswith("conv2d in 1x10x9x8 filter 8x3x3x2 out 1x10x9x8")
    assert library_id(nnref_library()).startswith("nnref #")
    path = tmp_path / "tuning.json"
    Tuning().save(path)
    assert Tuning.load(path).entries == {}
    path.write_text('{"format": 1, "entries": [{"signature": "x"}]}')
    assert main(["build", str(BUNDLED), "--tuning", str(path), "--out", str(tmp_path / "o")]) == 2
    assert main(["build", str(BUNDLED), "--tuning", str(tmp_path / "none.json"),
                 "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_tuning_file_errors_name_the_file(tmp_path: Path, capsys) -> None:
    path = tmp_path / "t.json"
    path.write_text("[1, 2")
    main(["build", str(BUNDLED), "--tuning", str(path), "--out", str(tmp_path / "o")])
    assert f"error: {path}: not a mcudeploy tuning file" in capsys.readouterr().err
    main(["build", str(BUNDLED), "--tuning", str(tmp_path / "none.json"), "--out", str(tmp_path / "o")])
    assert "none.json: no such tuning file (--tune creates one)" in capsys.readouterr().err


def test_outputs_are_read_where_they_are_still_intact() -> None:
    b = GraphBuilder(seed=1)
    x = b.input((1, 6, 6, 4))
    a = b.depthwise(x, 1)  # 0: dies at 2, an ADD that may write over it
    c = b.depthwise(x, 1)  # 1: dies at 2
    s = b.add(a, c)  # 2
    d = b.depthwise(s, 1)  # 3: dies at 4
    e = b.conv(d, 4, kernel=(1, 1))  # 4: an output
    graph, _ = b.build([e, b.depthwise(s, 2)])  # 5: an output
    until = valid_until(graph, lower(graph))
    assert until == {0: 1, 1: 1, 2: 5, 3: 4, 4: 5, 5: 5}
    assert stop_points([0, 1, 3, 5], until) == [(1, [0, 1]), (4, [3]), (5, [5])]
    assert stop_points([3, 4, 5], until) == [(4, [3, 4]), (5, [5])]


def test_the_simulator_is_qemu_else_the_fvp() -> None:
    an547 = load_board("mps3-an547")
    assert simulator(an547).runner == "qemu" and simulator(an547).per_tick == 31.25
    fvp_only = an547.model_copy(update={"runners": ["fvp"], "qemu": None})
    assert simulator(fvp_only).runner == "fvp" and simulator(fvp_only).per_tick is None
    with pytest.raises(BoardError, match="board nucleo-l4r5zi has no simulator"):
        simulator(load_board("nucleo-l4r5zi"))


# ---------------------------------------------------------------- on QEMU


@pytest.mark.device
def test_broken_candidates_are_rejected_and_the_fastest_bit_exact_kept(tmp_path: Path) -> None:
    graph, _ = _graph()
    tuning = Tuning()
    board, library = load_board("mps3-an547"), nnref_library()
    entries = tune_graph(graph, board, library, tuning, tmp_path, Progress(quiet=True),
                         source="tune", table=BROKEN_TABLE)
    assert not (tmp_path / "tuning").exists()  # the candidate images are removed
    dw, conv = entries
    figures = {c.name: c for c in dw.candidates}
    assert list(figures) == ["wrapper", "center_tap_only", "split_multiplier", "as_grouped", "refused"]
    wrong = figures["center_tap_only"]
    assert not wrong.bit_exact and "elements differ" in wrong.note
    assert figures["refused"].ticks is None and figures["refused"].note == "returned status -1"
    exact = [c for c in dw.candidates if c.bit_exact]
    assert {c.name for c in exact} == {"wrapper", "split_multiplier", "as_grouped"}
    chosen = figures[dw.chosen]
    assert chosen.ticks == min(c.ticks for c in exact)
    assert wrong.ticks < chosen.ticks  # by speed alone it would have won
    # The grouped conv's per_group ran in the image whose depthwise was wrong: it was checked
    # against the reference of its own (wrong) input, and is bit-exact.
    assert [(c.name, c.bit_exact) for c in conv.candidates] == [("wrapper", True), ("per_group", True)]
    assert set(tuning.entries) == {dw.key, conv.key}
    # Nothing left to measure: a second tuning builds no image.
    assert tune_graph(graph, board, library, tuning, tmp_path, Progress(quiet=True), source="tune") == []


@pytest.mark.device
def test_tuning_the_bundled_model_measures_each_layer_with_candidates(tmp_path: Path) -> None:
    """Only layers with several candidates are measured (pooling and softmax run as they are); on
    the M4 the generated DSP kernels compete with every convolution, FC and ADD, and win."""
    graph = load_tflite(BUNDLED)
    entries = tune_graph(graph, load_board("mps2-an386"), nnref_library(), Tuning(), tmp_path,
                         Progress(quiet=True), source="tiny_cnn.tflite")
    fc = ("fully_connected", ["wrapper", "as_1x1_convolution", "mcd_dsp"])  # two FC layers of other shapes
    assert [(e.signature.split()[0], [c.name for c in e.candidates]) for e in entries] == [
        ("conv2d", ["wrapper", "mcd_dsp"]), ("depthwise_conv2d", ["wrapper", "as_grouped", "mcd_dsp"]),
        ("conv2d", ["wrapper", "mcd_dsp"]), ("add", ["wrapper", "mcd_dsp"]), fc, fc]
    for entry in entries:
        assert all(c.bit_exact for c in entry.candidates) and entry.cpu_class == "dsp"
        assert entry.chosen == "mcd_dsp" == min(entry.candidates, key=lambda c: c.ticks).name
    assert entries[1].measured_on == "tiny_cnn.tflite: l2_depthwise_conv2d (operator 2 (DEPTHWISE_CONV_2D))"


@pytest.mark.device
def test_tuning_ds_cnn_measures_each_layer_shape_once(tmp_path: Path) -> None:
    """A bench model on the M55: four depthwise and four pointwise layers, each shape measured
    once; every candidate bit-exact; the generated Helium kernels chosen (nnref's grouped path,
    as_grouped, is slower than its wrapper for multiplier 1)."""
    graph = parse_tflite(mlperf_tiny_tflite("ds_cnn_kws"), "ds_cnn_kws")
    tuning = Tuning()
    board, library = load_board("mps3-an547"), nnref_library()
    entries = tune_graph(graph, board, library, tuning, tmp_path, Progress(quiet=True), source="ds_cnn")
    kinds = ["conv2d", "depthwise_conv2d", "conv2d", "fully_connected"]
    assert [e.signature.split()[0] for e in entries] == kinds
    for entry in entries:
        assert all(c.bit_exact for c in entry.candidates)
        assert entry.chosen == min(entry.candidates, key=lambda c: c.ticks).name
        figures = {c.name: c.instructions for c in entry.candidates}
        assert figures["mcd_mve"] < figures["wrapper"]
    assert entries[1].figures("as_grouped").instructions > entries[1].figures("wrapper").instructions
    rows = model_tuning(graph, library, board.cpu_class, tuning)
    assert [(r.index, r.lowering[:7], r.source) for r in rows] == [
        (i, "mcd_mve", "tuned") for i in range(9)] + [(10, entries[3].chosen[:7], "tuned")]
    assert all(r.gain > 0 for r in rows[:9])


@pytest.mark.device
def test_build_tune_writes_the_tuning_file_and_later_builds_reuse_it(tmp_path: Path, capsys) -> None:
    model = _model_file(tmp_path)
    out = tmp_path / "out"
    assert main(["build", str(model), "--tune", "--out", str(out)]) == 0
    assert "tuning 2 layers with several lowerings: 3 firmware images" in capsys.readouterr().err
    tuning = json.loads((out / "tuning.json").read_text())
    chosen = [e["chosen"] for e in tuning["entries"]]
    text = code_path(out / "model").read_text()
    assert all(f"lowered as {name} */" in text for name in chosen)
    # Again into the same directory, with and without --tune: nothing measured, the same C.
    for extra in (["--tune"], []):
        assert main(["build", str(model), *extra, "--out", str(out)]) == 0
        assert "tuning" not in capsys.readouterr().err
        assert code_path(out / "model").read_text() == text
        assert json.loads((out / "tuning.json").read_text()) == tuning
    # Elsewhere, from the file.
    assert main(["build", str(model), "--tuning", str(out / "tuning.json"), "--out", str(tmp_path / "b"),
                 "-q"]) == 0
    assert code_path(tmp_path / "b" / "model").read_text() == text


@pytest.mark.device
@pytest.mark.parametrize(("version", "old", "board"),
                         [("7.0.0", False, "mps2-an386"), ("5.0.0", True, "mps3-an547")])
def test_tuning_with_a_pack_shaped_library(tmp_path: Path, version: str, old: bool, board: str) -> None:
    """Nothing in the machinery is nnref's: a pack, on a DSP and an MVE board, and an old pack
    whose grouped convolutions have no wrapper call."""
    pack = make_pack(tmp_path / "pack", version=version, api="5" if old else "7")
    model = _model_file(tmp_path, seed=5)
    tuning = tmp_path / "shared.json"
    out = tmp_path / "out"
    assert main(["build", str(model), "--tune", "--tuning", str(tuning), "--cmsis-nn", str(pack),
                 "--board", board, "--out", str(out), "-q"]) == 0
    entries = json.loads(tuning.read_text())["entries"]
    assert json.loads((out / "tuning.json").read_text())["entries"] == entries
    library = library_id(load_pack(pack))
    assert {e["library"] for e in entries} == {library} and library.startswith(f"CMSIS-NN {version}")
    assert {e["cpu_class"] for e in entries} == {load_board(board).cpu_class}
    names = {e["signature"].split()[0]: [c["name"] for c in e["candidates"]] for e in entries}
    if old:  # the grouped conv has one candidate left (per_group): nothing to measure
        assert names == {"depthwise_conv2d": ["wrapper", "split_multiplier"]}
    else:
        assert names == {"depthwise_conv2d": ["wrapper", "split_multiplier", "as_grouped"],
                         "conv2d": ["wrapper", "per_group"]}
    text = code_path(out / "model").read_text()
    for entry in entries:
        assert all(c["bit_exact"] for c in entry["candidates"]), entry
        assert f"lowered as {entry['chosen']} */" in text
    assert not old or "lowered as per_group */" in text


@pytest.mark.device
def test_bench_tune_shows_each_candidate_and_the_gain(tmp_path: Path, capsys) -> None:
    model = _model_file(tmp_path)
    out = tmp_path / "bench"
    assert main(["bench", str(model), "--tune", "--no-tflm", "--out", str(out)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    result = json.loads((out / "bench.json").read_text())
    t = result["tuning"]
    assert t["tuning_file"] and t["measured_layers"] == 2 and t["method"].startswith("QEMU mps3-an547")
    dw = t["layers"][0]
    assert dw["lowering"] == "split_multiplier" and dw["source"] == "tuned"
    assert dw["gain"] == dw["candidates"][0]["instructions"] - dw["candidates"][1]["instructions"] > 0
    assert t["gain"] == sum(row["gain"] for row in t["layers"]) > 0
    assert "lowering candidates, instructions per layer" in text and "split_multiplier (tuned)" in text
    assert "* split_multiplier" in text and f"{dw['candidates'][0]['instructions']:,}" in text
    assert f"{t['gain']:,}" in text
    assert result["bit_exact"] and result["startup_instructions"] > 0
    # The chosen candidates measured in the model as chosen are what the final firmware measures
    # (to the ticks' resolution: each figure is a difference of two SysTick readings, so each is
    # within one tick of the truth and two figures of the same code differ by less than two ticks).
    per_tick = load_board("mps3-an547").qemu.instructions_per_tick
    for row in t["layers"]:
        final = result["layers"][row["index"]]["instructions"]
        assert abs(row["in_model"] - final) < 2 * per_tick, (row, final)
        assert f"({row['in_model']:,} in the model)" in text


@pytest.mark.device
def test_run_report_shows_the_lowerings_of_a_tuning_file(tmp_path: Path) -> None:
    model = _model_file(tmp_path)
    out = tmp_path / "run"
    assert main(["run", str(model), "--tune", "--vectors", "3", "--out", str(out), "-q"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["tuning"]["tuning_file"] and report["tuning"]["gain"] > 0
    html = (out / "report.html").read_text()
    assert '<h2 id="tuning">Lowering</h2>' in html and "split_multiplier (tuned)" in html
    assert main(["run", str(model), "--vectors", "2", "--out", str(tmp_path / "plain"), "-q"]) == 0
    assert 'id="tuning"' not in (tmp_path / "plain" / "report.html").read_text()


@pytest.mark.device
@pytest.mark.parametrize(("batch", "dims"), [(3, 1), (1, 2)])
def test_every_candidate_of_the_conv_matrix_runs_bit_exact_on_qemu(tmp_path: Path, batch: int,
                                                                   dims: int) -> None:
    """The matrix's 1-D model at batch 3 and its 2-D model: every grouping, multiplier, stride,
    dilation and padding, each of the 144 layers with several candidates tuned on the device: 108
    grouped and depthwise layers, and 36 ungrouped convolutions where the generated kernels
    (mcd_dsp, mcd_mve) compete with the wrapper call."""
    model, calibration, _ = matrix_model(tmp_path, batch, dims)
    out = tmp_path / "out"
    assert main(["build", str(model), "--calibration", str(calibration), "--tune", "--out", str(out),
                 "-q"]) == 0
    entries = json.loads((out / "tuning.json").read_text())["entries"]
    assert len(entries) == 144
    measured = {c["name"] for e in entries for c in e["candidates"]}
    expected = {"wrapper", "per_group", "split_multiplier", "as_grouped", "mcd_dsp", "mcd_mve",
                "mcd_mve_x1", *(["per_batch"] * (batch > 1))}
    assert measured == expected
    generated = [e for e in entries if any(c["name"] == "mcd_mve" for c in e["candidates"])]
    assert len(generated) == 36 and all(e["chosen"].startswith("mcd_") for e in generated)
    for e in entries:
        bad = [c for c in e["candidates"] if not c["bit_exact"]]
        assert not bad, (e["signature"], bad)
        fastest = min(e["candidates"], key=lambda c: c["ticks"])
        assert next(c for c in e["candidates"] if c["name"] == e["chosen"])["ticks"] == fastest["ticks"]
    text = code_path(out / "model").read_text()
    assert sum(text.count(f"lowered as {name} */") for name in expected) >= 144
    wins = {e["chosen"] for e in entries}
    assert "split_multiplier" in wins
    counts = {name: sum(e["chosen"] == name for e in entries) for name in sorted(wins)}
    print(f"batch {batch}, {dims}-D: 144 layers tuned on QEMU, all candidates bit-exact; chosen: {counts}")

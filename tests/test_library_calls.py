"""Lowerings fitted to the library in use (mcudeploy.codegen.library_calls), proven on QEMU with packs
made from nnref that reproduce each API generation of Arm's CMSIS-NN (tests/nnpack.py): bit-exact
with the host reference and TFLM, or refused naming the layer and the library. Each fixture's fault
is shown to bite when mcudeploy does not avoid it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cases import CASES
from modelgen import GraphBuilder
from nnpack import make_pack

from mcudeploy.cli import main
from mcudeploy.codegen import kernel_sums as kernel_sums_module
from mcudeploy.codegen import library_calls
from mcudeploy.codegen.kernel_sums import FORMS, host_vector_sum
from mcudeploy.codegen.library_calls import KNOWN_FAULTS, extremum_row_fault, per_row_broadcast
from mcudeploy.codegen.lower import Dims
from mcudeploy.manifest import code_path
from mcudeploy.nnlib import nnref_library
from mcudeploy.packs import load_pack

ROOT = Path(__file__).resolve().parent.parent
# Per-tensor FC (kernel sums on MVE), softmax, average pooling, grouped convolution, MAXIMUM and
# MINIMUM (one operand broadcasting per row), and a per-channel FC.
PLAN = ["pool_add_fc_softmax", "fc_batch3", "conv_grouped2", "maximum_minimum"]


def _model(tmp_path: Path) -> Path:
    b = GraphBuilder(seed=11)
    outputs = [out for case in PLAN for out in CASES[case](b)]
    outputs.append(b.fully_connected(b.input((2, 24)), 9, per_channel=True))
    path = tmp_path / "generations.tflite"
    path.write_bytes(b.build(outputs, name="generations")[1])
    return path


def _run(model: Path, pack: Path, board: str, out: Path) -> tuple[int, dict, str]:
    """`run` with every layer through the library's calls (the generated kernels call none)."""
    status = main(["run", str(model), "--board", board, "--cmsis-nn", str(pack), "--out", str(out),
                   "--vectors", "3", "--library-calls", "-q"])
    return status, json.loads((out / "report.json").read_text()), code_path(out / "model").read_text()


@pytest.mark.device
@pytest.mark.parametrize(("api", "board"), [("4", "mps3-an547"), ("5", "mps3-an547"), ("6", "mps3-an547"),
                                            ("6", "mps2-an386"), ("7", "mps3-an547"), ("7", "mps2-an385")])
def test_each_api_generation_is_bit_exact_on_qemu(tmp_path: Path, api: str, board: str) -> None:
    """Generation 7 carries main's float files (listed unconditionally, not compilable) and 7.0.0's
    maximum/minimum fault; the others lack the per-channel FC and maximum/minimum functions."""
    newest = api == "7"
    pack = make_pack(tmp_path / "pack", f"{api}.0.0", api=api, float_files=newest, extremum_fault=newest)
    status, report, text = _run(_model(tmp_path), pack, board, tmp_path / "out")
    assert status == 0 and report["verdict"] == "pass", report.get("mismatches") or report.get("error")
    assert report["bit_exact_vectors"] == 3 and report["oracles"] == ["host-reference", "tflm"]
    assert report["library"].startswith(f"CMSIS-NN {api}.0.0")
    loops = text.count("lowered as loop */")
    if api == "7":  # only the row-broadcasting layer avoids the faulty function
        assert loops == 1 and "[2, 5, 1, 1] + [2, 5, 4, 6] -> [2, 5, 4, 6], lowered as loop */" in text
        assert "arm_fully_connected_per_channel_s8(" in text and "arm_maximum_s8(" in text
    else:
        assert loops == 3 and "arm_maximum_s8(" not in text and "arm_minimum_s8(" not in text
        assert "lowered as as_1x1_convolution */" in text
        assert "arm_fully_connected_per_channel_s8(" not in text
    assert ("_kernel_sums[" in text) is (board == "mps3-an547" and api != "4")


@pytest.mark.device
def test_the_generated_kernels_with_the_oldest_generation_are_bit_exact_on_qemu(tmp_path: Path) -> None:
    """By default the generated kernels take the convolutions, fully connected layers and ADD; the
    library's calls that remain are fitted to it all the same (MAXIMUM/MINIMUM as loops), and its
    scratch, which it cannot size on the host, is asked of the device beside the kernels' own."""
    pack = make_pack(tmp_path / "pack", "4.0.0", api="4")
    status = main(["run", str(_model(tmp_path)), "--board", "mps3-an547", "--cmsis-nn", str(pack), "--out",
                   str(tmp_path / "out"), "--vectors", "3", "-q"])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    text = code_path(tmp_path / "out" / "model").read_text()
    assert status == 0 and report["verdict"] == "pass", report.get("mismatches") or report.get("error")
    assert report["bit_exact_vectors"] == 3
    assert text.count("lowered as loop */") == 3 and "arm_maximum_s8(" not in text
    assert "lowered as mcd_mve */" in text and "arm_fully_connected_per_channel_s8(" not in text
    assert (tmp_path / "out" / "model-scratch-probe" / "probe" / "probe.c").is_file()


@pytest.mark.device
def test_the_maximum_fault_miscomputes_when_not_avoided(tmp_path: Path, monkeypatch) -> None:
    pack = make_pack(tmp_path / "pack", extremum_fault=True)
    monkeypatch.setattr(library_calls, "KNOWN_FAULTS", ())
    status, report, text = _run(_model(tmp_path), pack, "mps3-an547", tmp_path / "out")
    assert status == 1 and report["verdict"] == "fail"
    first = report["localisation"]["layers"][report["localisation"]["first_divergent"]]
    assert first["origin"].endswith("(MAXIMUM)") and first["shape"] == [2, 5, 4, 6]
    assert "lowered as loop */" not in text


@pytest.mark.device
def test_kernel_sums_called_as_the_next_generation_miscompute(tmp_path: Path, monkeypatch) -> None:
    """6.0.0's kernels want plain row sums; called as 7.0.0's contract (the input offset and the
    bias folded in, what mcudeploy once did) the fully connected layers compute something else."""
    pack = make_pack(tmp_path / "pack", "6.0.0", api="6")
    six = next(f for f in FORMS if len(f.params) == 6)
    wrong = type(six)(six.params, lambda offset, bias: (offset, bias), fused=True)
    monkeypatch.setattr(kernel_sums_module, "FORMS", tuple(wrong if f is six else f for f in FORMS))
    host_vector_sum.cache_clear()
    try:
        status, report, _ = _run(_model(tmp_path), pack, "mps3-an547", tmp_path / "out")
    finally:
        host_vector_sum.cache_clear()
    assert status == 1 and report["verdict"] == "fail"
    first = report["localisation"]["layers"][report["localisation"]["first_divergent"]]
    assert first["origin"].endswith("(FULLY_CONNECTED)")


def test_a_function_the_library_lacks_is_refused_naming_the_layer(tmp_path: Path, capsys) -> None:
    pack = make_pack(tmp_path / "pack")
    header = pack / "Include/arm_nnfunctions.h"
    text = header.read_text()
    start = text.index("void arm_softmax_s8(")
    header.write_text(text[:start] + text[text.index(";", start) + 1:])
    model = _model(tmp_path)
    out = tmp_path / "out"
    assert main(["build", str(model), "--cmsis-nn", str(pack), "--out", str(out), "-q"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert ("error: layer 4 l4_softmax (operator 5 (SOFTMAX)): CMSIS-NN 7.0.0 has no arm_softmax_s8() "
            "(not in what its headers declare), and mcudeploy has no other lowering for it") in err, err
    assert not out.exists()
    next(pack.glob("Source/*/arm_softmax_s8.c")).write_text("/* not in this release */\n")
    header.write_text(text)  # declared again, but defined nowhere
    assert main(["build", str(model), "--cmsis-nn", str(pack), "--out", str(out), "-q"]) == 2
    assert "has no arm_softmax_s8() (not in what its sources define)" in capsys.readouterr().err


def test_a_source_the_description_omits_fails_the_build_naming_the_function(tmp_path: Path, capsys) -> None:
    """Arm's 4.1.0 .pdsc omits arm_s8_to_s16_unordered_with_offset.c, which its DSP convolution
    calls: such a pack cannot link, and the error says why."""
    pack = make_pack(tmp_path / "pack")
    pdsc = pack / "ARM.CMSIS-NN.pdsc"
    omitted = ('        <file category="source" '
               'name="Source/NNSupportFunctions/arm_nn_fully_connected_core_s8.c"/>\n')
    assert omitted in pdsc.read_text()
    pdsc.write_text(pdsc.read_text().replace(omitted, ""))
    out = tmp_path / "out"
    model = ROOT / "models" / "tiny_cnn.tflite"
    assert main(["build", str(model), "--cmsis-nn", str(pack), "--out", str(out), "--library-calls",
                 "-q"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert ("undefined reference to `arm_nn_fully_connected_core_s8' (CMSIS-NN 7.0.0 declares "
            "arm_nn_fully_connected_core_s8() but none of the sources its description lists "
            "defines it)") in err
    assert not out.exists()


def test_the_fault_table_condition_and_detection(tmp_path: Path) -> None:
    def layer(a: tuple, b: tuple, out: tuple):
        values = {"input1_dims": Dims(*a), "input2_dims": Dims(*b), "output_dims": Dims(*out)}
        return type("L", (), {"values": values})()

    assert per_row_broadcast(layer((2, 5, 1, 1), (2, 5, 4, 6), (2, 5, 4, 6)))
    assert per_row_broadcast(layer((2, 5, 4, 1), (1, 5, 1, 1), (2, 5, 4, 1)))
    assert not per_row_broadcast(layer((2, 5, 4, 6), (2, 5, 4, 6), (2, 5, 4, 6)))  # equal shapes
    assert not per_row_broadcast(layer((1, 1, 1, 6), (2, 5, 4, 6), (2, 5, 4, 6)))  # per channel
    assert not per_row_broadcast(layer((2, 3, 1, 5), (2, 3, 1, 1), (2, 3, 1, 5)))  # output W = 1
    assert not per_row_broadcast(layer((2, 1, 1, 1), (2, 5, 4, 6), (2, 5, 4, 6)))  # per batch: a scalar
    assert extremum_row_fault(load_pack(make_pack(tmp_path / "faulty", extremum_fault=True)))
    assert not extremum_row_fault(load_pack(make_pack(tmp_path / "right")))
    assert not extremum_row_fault(nnref_library())


def test_the_readme_lists_every_known_fault() -> None:
    readme = (ROOT / "README.md").read_text()
    for fault in KNOWN_FAULTS:
        assert f"| {' / '.join(f'`{name}`' for name in fault.functions)} |" in readme

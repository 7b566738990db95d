"""What a user sees on mistakes: one line naming the file/operator/field, an exit status, and no
output directory written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cases import build_case
from test_tflite_frontend import _retype_first_op
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from mcudeploy.cli import main, parser

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "models" / "tiny_cnn.tflite"


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    status = main(args)
    captured = capsys.readouterr()
    return status, captured.err + captured.out


def test_unsupported_operator_is_refused_before_anything_is_written(tmp_path, capsys) -> None:
    _, data = build_case("conv1x1")
    model = tmp_path / "tanh.tflite"
    model.write_bytes(_retype_first_op(data, fb.BuiltinOperator.L2_NORMALIZATION))
    out = tmp_path / "out"
    status, text = run_cli(["run", str(model), "--out", str(out)], capsys)
    assert status == 2
    assert "error:" in text and "operator 0 (L2_NORMALIZATION) is not supported" in text
    assert "Traceback" not in text
    assert not out.exists() and list(tmp_path.iterdir()) == [model]


def test_malformed_model_names_the_file(tmp_path, capsys) -> None:
    model = tmp_path / "junk.tflite"
    model.write_bytes(b"\x00" * 64)
    status, text = run_cli(["build", str(model), "--out", str(tmp_path / "o")], capsys)
    assert status == 2 and f"{model}: not a TFLite flatbuffer" in text
    assert not (tmp_path / "o").exists()


def test_unknown_format_and_missing_file(tmp_path, capsys) -> None:
    status, text = run_cli(["build", str(tmp_path / "m.pt")], capsys)
    assert status == 2 and "unknown model format '.pt'" in text
    status, text = run_cli(["build", str(tmp_path / "none.tflite")], capsys)
    assert status == 2 and "none.tflite: cannot read" in text


def test_board_typo_names_file_line_and_field(tmp_path, capsys) -> None:
    text = (ROOT / "boards" / "mps3-an547.toml").read_text().replace("bauddiv", "baudiv")
    board = tmp_path / "mps3-an547.toml"
    board.write_text(text)
    status, err = run_cli(["build", str(BUNDLED), "--board", str(board)], capsys)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if s.startswith("baudiv"))
    assert status == 2
    assert f"{board}:{line}: field 'uart.baudiv': unknown field (did you mean 'bauddiv'?)" in err


def test_unknown_board_lists_the_known_ones(capsys) -> None:
    status, err = run_cli(["build", str(BUNDLED), "--board", "mps3-an999"], capsys)
    assert status == 2 and "unknown board 'mps3-an999'" in err and "mps3-an547" in err


def test_inputs_of_the_wrong_shape_are_refused(tmp_path, capsys) -> None:
    inputs = tmp_path / "x.npy"
    np.save(inputs, np.zeros((2, 5, 5), dtype=np.int8))
    status, err = run_cli(["run", str(BUNDLED), "--inputs", str(inputs),
                           "--out", str(tmp_path / "o")], capsys)
    assert status == 2 and "expects shape [1, 12, 12, 1]" in err


def test_help_explains_the_commands(capsys) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for word in ("run", "build", "boards", "bit-exact"):
        assert word in text


def test_boards_lists_the_default_board(capsys) -> None:
    status, text = run_cli(["boards"], capsys)
    assert status == 0 and "mps3-an547" in text and "cortex-m55" in text

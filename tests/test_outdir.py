"""Output directories: they appear whole with the umask's mode, one command at a time writes one, and
what a killed command left beside it goes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mcudeploy.cli import main
from mcudeploy.outdir import staged_directory

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "models" / "tiny_cnn.tflite"


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_directories_get_the_umask_mode(umask: int, tmp_path: Path) -> None:
    out = tmp_path / "out"
    old = os.umask(umask)
    try:
        with staged_directory(out) as work:
            assert stat.S_IMODE(work.stat().st_mode) == 0o777 & ~umask
            (work / "sub").mkdir()
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((out / "sub").stat().st_mode) == 0o777 & ~umask


def test_a_second_command_into_the_same_directory_is_refused(tmp_path: Path, capsys) -> None:
    """While one command writes `out` (here: this test, holding it), `mcudeploy build --out out` is
    refused naming the directory, and the first one's result is what `out` holds."""
    out = tmp_path / "out"
    with staged_directory(out) as work:
        (work / "first").write_text("1")
        assert main(["build", str(BUNDLED), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert f"error: {out} is being written by another mcudeploy command (pid {os.getpid()}); wait for it " \
           "or choose another --out" in " ".join(err.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in out.iterdir()] == ["first"]


def test_the_lock_is_free_again_after_a_failure(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), staged_directory(out):
        raise RuntimeError("a crash")
    assert list(tmp_path.iterdir()) == []
    with staged_directory(out) as work:
        (work / "second").write_text("2")
    assert [p.name for p in out.iterdir()] == ["second"]


def test_leftovers_of_a_killed_command_are_removed(tmp_path: Path) -> None:
    """A command killed with SIGKILL cannot clean up: the next one into the same directory does."""
    for leftover in (".out.partial-1a2b3c4d", ".out.old-1a2b3c4d"):
        (tmp_path / leftover / "build").mkdir(parents=True)
    (tmp_path / ".other.partial-1a2b3c4d").mkdir()
    with staged_directory(tmp_path / "out"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.partial-1a2b3c4d", "out"]


def test_an_output_directory_that_cannot_be_created_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "out"
    assert main(["build", str(BUNDLED), "--out", str(out), "-q"]) == 2
    assert " ".join(capsys.readouterr().err.split()) == (
        f"error: cannot create the output directory {out} ({tmp_path / 'file'}: File exists)")

"""The wheel: built from this checkout, installed elsewhere, it runs the quick start on its own copy of
the firmware sources and board files (mcudeploy/_data), from a folder outside the checkout."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mcudeploy.boards import available_boards

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# What the wheel is built from: the package and the data pyproject.toml maps into it.
SOURCES = ("pyproject.toml", "README.md", "SConstruct", "mcudeploy", "firmware", "boards")


def test_every_package_goes_into_the_wheel() -> None:
    """pyproject.toml lists the packages by hand (mcudeploy._data has no folder of its own to be
    found): a new subpackage must be added there."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "mcudeploy").rglob("__init__.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - found == {"mcudeploy._data"}


def _run(command: list[str | Path], cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.slow
def test_wheel_installed_elsewhere_runs_the_quick_start(tmp_path: Path) -> None:
    """`pip wheel`, then `pip install --no-deps` into a fresh venv (which reuses this environment's
    dependencies through a .pth file), then `mcudeploy boards` and `mcudeploy run tiny_cnn.tflite`
    from a folder outside the checkout: PASS, built from the wheel's own sources, nothing written
    into the installed package, caches in the user's cache."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    source = tmp_path / "source"  # a copy, so that the build's scratch never lands in the checkout
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, source], tmp_path, env, 300)
    (wheel,) = dist.glob("mcudeploy-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, env)
    python = venv / "bin" / "python"
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                        tmp_path, env).strip())
    (purelib / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], tmp_path, env)
    installed = _files(venv)

    work = tmp_path / "elsewhere"
    work.mkdir()
    shutil.copy2(ROOT / "models" / "tiny_cnn.tflite", work)
    env["MCUDEPLOY_CACHE"] = str(tmp_path / "cache")
    mcudeploy = venv / "bin" / "mcudeploy"
    where = _run([python, "-c", "import mcudeploy.resources as r; print(r.__file__, r.project_root())"],
                 work, env).split()
    assert where == [str(purelib / "mcudeploy" / "resources.py"), str(purelib / "mcudeploy" / "_data")]

    boards = _run([mcudeploy, "boards"], work, env).splitlines()
    assert [line.split()[0] for line in boards] == available_boards()

    _run([mcudeploy, "run", "tiny_cnn.tflite", "--vectors", "4"], work, env)
    report = json.loads((work / "out" / "tiny_cnn" / "report.json").read_text())
    assert (report["verdict"], report["vectors"], report["bit_exact_vectors"]) == ("pass", 4, 4)
    config = json.loads((work / "out" / "tiny_cnn" / "build" / "build.json").read_text())
    assert all(s.startswith(str(purelib / "mcudeploy" / "_data" / "firmware"))
               for s in config["runtime_sources"] + config["nn_sources"])
    assert _files(venv) == installed, "nothing may be written into the installed package"
    assert any((tmp_path / "cache" / "scons").iterdir())

"""A lock file SCons leaves in the object cache when a build is killed while holding it (it holds it
for an instant) must not fail every later build: mcudeploy.build removes one that is stale."""

from __future__ import annotations

import os
import time
from pathlib import Path

from mcudeploy.build import STALE_LOCK_SECONDS, clear_stale_cache_lock
from mcudeploy.cli import main


def test_a_stale_cache_lock_is_removed_and_a_fresh_one_kept(tmp_path: Path) -> None:
    lock = tmp_path / "config.lock"
    lock.touch()
    clear_stale_cache_lock(tmp_path)
    assert lock.exists()  # a build may hold it right now
    old = time.time() - STALE_LOCK_SECONDS - 5
    os.utime(lock, (old, old))
    clear_stale_cache_lock(tmp_path)
    assert not lock.exists()
    clear_stale_cache_lock(tmp_path)  # none there: nothing to do


def test_a_build_after_a_killed_one_succeeds(tmp_path: Path, monkeypatch) -> None:
    """The lock left as a build killed at that instant leaves it: SCons alone would wait 5 s on it
    and fail; the build removes it and succeeds."""
    monkeypatch.setenv("MCUDEPLOY_CACHE", str(tmp_path / "cache"))
    lock = tmp_path / "cache" / "scons" / "config.lock"
    lock.parent.mkdir(parents=True)
    lock.touch()
    old = time.time() - STALE_LOCK_SECONDS - 5
    os.utime(lock, (old, old))
    assert main(["build", "models/tiny_cnn.tflite", "--out", str(tmp_path / "out"), "-q"]) == 0
    assert (tmp_path / "out" / "build" / "firmware.elf").is_file() and not lock.exists()

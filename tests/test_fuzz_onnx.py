"""Seeded bad float ONNX models and calibration files (tests/fuzz_onnx.py) through `mcudeploy build`:
each is refused with exit status 2 in one line naming the file and the culprit, leaving nothing
behind, or it imports; a sample of those that import is built, and another run on QEMU, where the
verdict must be true (scripts/fuzz_onnx.py runs thousands)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from fuzz_onnx import cases, check

SEED = 14
COUNT = 300
BUILDS = 4  # of the cases that import, the first few are built
RUNS = 3  # and the next few run on QEMU


def _report(outcomes: list) -> str:
    return "\n".join(f"{o.case.name}: {p}" for o in outcomes for p in o.problems)


def test_bad_onnx_inputs_are_refused_in_one_line_or_build(tmp_path: Path) -> None:
    outcomes, built = [], 0
    for index, case in enumerate(cases(SEED, COUNT)):
        outcome = check(case, tmp_path / f"case{index}", build=built < BUILDS)
        built += outcome.kind == "built"
        outcomes.append(outcome)
    kinds = Counter(o.kind for o in outcomes)
    assert not _report(outcomes), _report(outcomes)
    assert set(kinds) == {"refused", "imported", "built"} and kinds["built"] == BUILDS, kinds
    assert kinds["refused"] > COUNT // 2, kinds
    faults = {o.case.name.split(":")[0] for o in outcomes}
    assert {"nonfinite-initializer", "calibration-all-nan", "non-utf8", "cycle", "unproduced-output",
            "calibration-dev-null", "calibration-pickled-objects", "bias-shape"} <= faults, faults


@pytest.mark.device
def test_bad_onnx_inputs_that_import_run_with_a_true_verdict(tmp_path: Path) -> None:
    outcomes = []
    for index, case in enumerate(cases(SEED, COUNT)):
        if len(outcomes) == RUNS + BUILDS:
            break
        outcome = check(case, tmp_path / f"case{index}", run=len(outcomes) >= BUILDS)
        if outcome.kind != "refused":
            outcomes.append(outcome)
    ran = outcomes[BUILDS:]
    assert not _report(ran), _report(ran)
    assert all(o.kind.startswith("run ") for o in ran), [o.kind for o in ran]

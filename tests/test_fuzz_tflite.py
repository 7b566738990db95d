"""Seeded fuzzing of the TFLite import (tests/fuzz_tflite.py generates the mutants): every mutant
of a valid file is refused by `mcudeploy build` with exit 2 naming the file and the tensor,
operator or field, or accepted and then built (exit 0 or 2), run on QEMU with a true verdict
(a pass only where the host reference and TFLM agree; exit 4 only for an oracle error), or
checked against both oracles. No traceback, no crash, nothing half-written.

scripts/fuzz_tflite.py runs thousands of them, each in a worker process that may crash."""

from __future__ import annotations

import time
from collections import Counter

from fuzz_tflite import cases, judge

SEED = 14
COUNT = 300
RUNS = 3  # accepted mutants, each new, run on QEMU
BUILDS = 3  # then as many built


def test_mutants_are_refused_by_name_or_verified(tmp_path) -> None:
    started = time.monotonic()
    counts: Counter[str] = Counter()
    problems: list[str] = []
    seen: set[str] = set()
    actions = ["run"] * RUNS + ["build"] * BUILDS
    for case in cases(SEED, COUNT):
        outcome = judge(case, tmp_path, lambda: actions.pop(0) if actions else "oracles", seen)
        counts[outcome.result] += 1
        problems += [f"{case.name}: {p}" for p in outcome.problems]
    print(dict(counts), f"{time.monotonic() - started:.1f} s")
    assert problems == []
    assert counts["refused"] > COUNT // 2
    assert counts["passed"] >= 1 and counts["built"] >= 1  # the sample reached the device
    assert sum(counts.values()) == COUNT

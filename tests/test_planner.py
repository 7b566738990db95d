"""Arena planning: invariants on random buffer sets, and the bound."""

from __future__ import annotations

import numpy as np
import pytest

from mcudeploy.codegen.planner import Buffer, align, lower_bound, plan_greedy, plan_linear


def random_buffers(seed: int) -> list[Buffer]:
    rng = np.random.default_rng(seed)
    steps = int(rng.integers(1, 30))
    out = []
    for i in range(int(rng.integers(1, 40))):
        first = int(rng.integers(0, steps))
        last = int(rng.integers(first, steps + 1))
        out.append(Buffer(f"b{i}", int(rng.integers(0, 5000)), first, last))
    return out


def assert_valid(buffers: list[Buffer], offsets: dict[str, int], arena: int, alignment: int) -> None:
    for b in buffers:
        assert offsets[b.name] % alignment == 0
        assert offsets[b.name] + b.size <= arena
    for i, a in enumerate(buffers):
        for b in buffers[i + 1 :]:
            if a.overlaps(b) and a.size and b.size:
                a0, b0 = offsets[a.name], offsets[b.name]
                assert a0 + a.size <= b0 or b0 + b.size <= a0, (a, b)


@pytest.mark.parametrize("seed", range(60))
@pytest.mark.parametrize("planner", [plan_greedy, plan_linear])
def test_no_two_live_buffers_overlap(seed: int, planner) -> None:
    buffers = random_buffers(seed)
    plan = planner(buffers, 16)
    assert_valid(buffers, plan.offsets, plan.arena_bytes, 16)
    assert plan.arena_bytes >= plan.lower_bound == lower_bound(buffers, 16)


@pytest.mark.parametrize("seed", range(60))
def test_greedy_never_worse_than_linear(seed: int) -> None:
    buffers = random_buffers(seed)
    assert plan_greedy(buffers, 4).arena_bytes <= plan_linear(buffers, 4).arena_bytes


def test_chain_reuses_memory_and_meets_the_bound() -> None:
    # a chain a -> b -> c -> d: each layer needs its input and output only
    sizes = [1000, 3000, 500, 2000]
    buffers = [Buffer(f"t{i}", s, max(i - 1, 0), i) for i, s in enumerate(sizes)]
    plan = plan_greedy(buffers, 4)
    assert plan.arena_bytes == plan.lower_bound == 4000  # t0 and t1 live together at step 0
    assert plan_linear(buffers, 4).arena_bytes == sum(sizes)


def test_lower_bound_counts_aligned_sizes() -> None:
    buffers = [Buffer("a", 1, 0, 0), Buffer("b", 1, 0, 0)]
    assert lower_bound(buffers, 16) == 32
    assert align(17, 16) == 32 and align(0, 4) == 0

"""The cascade fusion ILP against exhaustive search, greedy and unfused."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappers.cascade import fusion
from mappers.cascade.fusion import FusionProblem, Intermediate
from mappers.schedule import ScheduleError


def random_problem(rng: random.Random, n: int, tiles: tuple[int, ...] = (1, 2, 4)) -> FusionProblem:
    """A random chain-with-skips cascade of ``n`` Einsums."""
    inter = []
    for i in range(n - 1):
        consumers = {i + 1}
        if i + 2 < n and rng.random() < 0.3:
            consumers.add(i + 2)
        inter.append(
            Intermediate(
                name=f"T{i}",
                producer=i,
                consumers=tuple(sorted(consumers)),
                bytes=float(rng.choice([1, 2, 4, 8, 16, 32]) * 1024),
                tiled=rng.random() < 0.8,
            )
        )
    return FusionProblem(
        einsums=tuple(f"E{i}" for i in range(n)),
        compute_cycles=tuple(float(rng.randint(100, 5000)) for _ in range(n)),
        io_bytes=tuple(float(rng.choice([0, 1024, 4096, 16384])) for _ in range(n)),
        untiled_input_bytes=tuple(float(rng.choice([0, 0, 512, 2048])) for _ in range(n)),
        intermediates=tuple(inter),
        capacity_bytes=float(rng.choice([16, 32, 64]) * 1024),
        dram_bytes_per_cycle=float(rng.choice([4, 8, 16])),
        work_bytes=tuple(float(rng.choice([0, 1024, 4096])) for _ in range(n)),
        dram_pj_per_byte=8.0,
        buffer_pj_per_byte=1.0,
        fixed_energy_pj=1e5,
        static_pj_per_cycle=2.0,
        tile_counts=tiles,
    )


CASES = [
    random_problem(random.Random(seed), n)
    for seed, n in zip(range(12), [3, 4, 5, 6, 7, 8] * 2, strict=True)
]


@pytest.mark.parametrize("objective", fusion.OBJECTIVES)
def test_ilp_matches_exhaustive_on_small_cascades(objective: str, monkeypatch) -> None:
    """On 12 small cascades CP-SAT alone (no enumeration behind it) is within
    2% of exhaustive search."""
    monkeypatch.setattr(fusion, "EXACT_POINTS", 0)
    worst = 0.0
    for p in CASES:
        best = fusion.exhaustive(p, objective)
        ilp = fusion.solve_ilp(p, objective, time_limit_s=5, workers=1, seed=0)
        assert fusion.feasible(p, ilp.keep, ilp.tiles)
        assert ilp.objective_value == pytest.approx(
            fusion.evaluate(p, ilp.keep, ilp.tiles).objective(objective)
        )
        ratio = ilp.objective_value / best.objective_value
        worst = max(worst, ratio)
        assert ratio <= 1.02, (objective, p.einsums, ratio)
    print(f"{objective}: worst ILP/exhaustive = {worst:.4f}")


@pytest.mark.parametrize("objective", fusion.OBJECTIVES)
def test_the_bound_is_below_the_exhaustive_optimum(objective: str, monkeypatch) -> None:
    """The reported bound is a true lower bound: the cost terms' relaxation
    where the space is too large to enumerate (forced here), the exact
    optimum where it is not; CP-SAT's bound over its rounded integer model
    is never reported."""
    for p in CASES:
        opt = fusion.exhaustive(p, objective).objective_value
        exact = fusion.solve_ilp(p, objective, time_limit_s=5, workers=1)
        assert exact.bound == pytest.approx(opt, rel=1e-12)
        assert exact.objective_value == pytest.approx(opt, rel=1e-12)
        assert exact.status == "OPTIMAL" and exact.gap == 0.0
        monkeypatch.setattr(fusion, "EXACT_POINTS", 0)
        relaxed = fusion.solve_ilp(p, objective, time_limit_s=5, workers=1)
        monkeypatch.undo()
        assert relaxed.bound <= opt * (1 + 1e-12)
        assert relaxed.bound == pytest.approx(fusion.relaxation_bound(p, objective))
        if relaxed.bound < relaxed.objective_value:
            assert relaxed.status == "FEASIBLE" and relaxed.gap > 0


def test_ilp_never_worse_than_greedy_or_unfused() -> None:
    for p in CASES:
        for obj in ("edp", "dram_traffic"):
            ilp = fusion.solve_ilp(p, obj, time_limit_s=5, workers=1)
            assert ilp.objective_value <= fusion.greedy(p, obj).objective_value * (1 + 1e-9)
            assert ilp.objective_value <= fusion.unfused(p, obj).objective_value * (1 + 1e-9)


def test_hand_computed_two_einsum_chain() -> None:
    """E0 -> T0 (4 KiB) -> E1, 1 KiB io each, bandwidth 8 B/cycle.

    Unfused: E0 moves 1 KiB + 4 KiB = 5120 B (640 cycles > 500 compute),
    E1 the same; latency 1280 cycles, DRAM 10240 B. Fused: 1024 B each
    (128 cycles < 500), latency 1000 cycles, DRAM 2048 B.
    """
    p = FusionProblem(
        einsums=("E0", "E1"),
        compute_cycles=(500.0, 500.0),
        io_bytes=(1024.0, 1024.0),
        untiled_input_bytes=(0.0, 0.0),
        intermediates=(Intermediate("T0", 0, (1,), 4096.0),),
        capacity_bytes=8192.0,
        dram_bytes_per_cycle=8.0,
    )
    unf = fusion.evaluate(p, (False,))
    fused = fusion.evaluate(p, (True,))
    assert unf.latency_cycles == 1280 and unf.dram_bytes == 10240
    assert fused.latency_cycles == 1000 and fused.dram_bytes == 2048
    assert fusion.solve_ilp(p, "latency", workers=1).keep == (True,)
    # a buffer too small for T0 forces the spill
    small = FusionProblem(**{**p.__dict__, "capacity_bytes": 2048.0})
    assert fusion.solve_ilp(small, "latency", workers=1).keep == (False,)


def test_same_seed_same_answer() -> None:
    p = CASES[7]
    a = fusion.solve_ilp(p, "edp", workers=1, seed=3)
    b = fusion.solve_ilp(p, "edp", workers=1, seed=3)
    assert a.keep == b.keep and a.tiles == b.tiles


def test_working_set_too_big_is_explained() -> None:
    p = random_problem(random.Random(1), 4)
    p = FusionProblem(**{**p.__dict__, "work_bytes": (1e9, 0.0, 0.0, 0.0)})
    with pytest.raises(ScheduleError, match="E0 needs 1000000000 B"):
        fusion.solve_ilp(p, "edp", workers=1)


def test_long_cascades_are_segmented() -> None:
    p = random_problem(random.Random(5), 45, tiles=(1,))
    r = fusion.solve_ilp(p, "dram_traffic", time_limit_s=5, workers=1)
    assert r.notes["segments"] == 2
    assert fusion.feasible(p, r.keep, r.tiles)
    assert r.objective_value <= fusion.greedy(p, "dram_traffic").objective_value * (1 + 1e-9)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 7), cap=st.sampled_from([0.5, 4, 64]))
def test_random_problems_valid_or_clear_error(seed: int, n: int, cap: float) -> None:
    p = random_problem(random.Random(seed), n)
    p = FusionProblem(**{**p.__dict__, "capacity_bytes": cap * 1024})
    try:
        r = fusion.solve_ilp(p, "edp", time_limit_s=2, workers=1)
    except ScheduleError as err:
        assert "does not" in str(err) or "needs" in str(err)
        return
    assert fusion.feasible(p, r.keep, r.tiles)

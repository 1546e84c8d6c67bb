"""The ILP mapper against exhaustive search, random search and brute force."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ilp_exhaustive import check_against_exhaustive, recorded_optima, recorded_space_size

from experiments.problem_sets import SMALL_PROBLEMS, conv, gemm, tiny_arch
from mappers.baselines.exhaustive import (
    SpaceTooLarge,
    exhaustive_optima,
    exhaustive_search,
    valid_tilings,
)
from mappers.factors import count_splits, divisors, prime_factors, splits
from mappers.ilp.bounds import lower_bounds
from mappers.mapping import MappingError, mapping_to_dict, validate
from mappers.search import OBJECTIVES, objective_of, search
from mappers.space import MapSpace
from sim.analytical.model import evaluate, evaluate_batch
from workloads.errors import EinsimError


def _evs(e, a):
    return (lambda m: evaluate(e, a, m)), (lambda ms: evaluate_batch(e, a, ms))


# ----------------------------------------------------------------- factors
@pytest.mark.parametrize("n", [1, 2, 12, 36, 97, 360, 1024, 3 * 5 * 7 * 11])
def test_factor_helpers_match_brute_force(n: int) -> None:
    assert math.prod(p**m for p, m in prime_factors(n)) == n
    assert divisors(n) == tuple(d for d in range(1, n + 1) if n % d == 0)
    for k in (1, 2, 3):
        brute = [t for t in itertools.product(divisors(n), repeat=k) if math.prod(t) == n]
        assert sorted(splits(n, k)) == sorted(brute)
        assert count_splits(n, k) == len(brute)


def test_space_counts_tilings_in_closed_form() -> None:
    e, a = gemm(8, 4, 6), tiny_arch(fx=2, fy=2)
    space = MapSpace(e, a)
    n = len(space.slots)  # DRAM.T, GB.T, GB.x, GB.y, RF.T
    assert n == 5
    assert space.tiling_count() == count_splits(8, n) * count_splits(4, n) * count_splits(6, n)


# --------------------------------------------------------- ILP vs exhaustive
# (the 20 small problems: test_ilp_vs_exhaustive_*.py, two files so that two
# CI workers share them)
def test_ilp_within_2pct_of_exhaustive_small() -> None:
    e, a = SMALL_PROBLEMS[17]
    optima = recorded_optima(17, e, a)
    check_against_exhaustive(e, a, optima, objectives=("edp", "latency"), time_limit_s=0.5)


def test_bypass_space_contains_keep_all_space() -> None:
    e, a = SMALL_PROBLEMS[14]
    ev, evb = _evs(e, a)
    kw = dict(objectives=OBJECTIVES, evaluate=ev, evaluate_batch=evb, max_points=10**6)
    keep_all = exhaustive_optima(e, a, bypass=False, **kw)
    # the bypass space (the default) of problem 14 is enumerated live by
    # test_ilp_vs_exhaustive_10_19 and checked against its record
    full, points = recorded_optima(14, e, a), recorded_space_size(14)
    for o in OBJECTIVES:
        assert full[o] <= keep_all[o].objective_value * (1 + 1e-12)
        assert points > keep_all[o].notes["points"]


def test_order_classes_give_identical_metrics() -> None:
    """Every loop order of a level scores exactly like its class representative
    (so enumerating one order per class is exhaustive)."""
    e, a = conv(1, 2, 2, 2, 2, 3, 3), tiny_arch(fx=2, fy=2, gb_bytes=2048, rf_bytes=128)
    space = MapSpace(e, a)
    rng = random.Random(0)
    tilings = list(valid_tilings(space, bypass=True))
    tilings = [t for t in tilings if len(space.default_order(t, 0)) >= 3][:40]
    assert tilings
    keeps_all = space.keep_options()
    for tiling in rng.sample(tilings, 8):
        keeps = rng.choice([k for k in keeps_all if space.violation(tiling, k) is None])
        base = [space.default_order(tiling, lvl) for lvl in range(space.nlev)]
        for lvl in range(space.nlev):
            reps = space.order_classes(tiling, lvl, keeps)
            perms = space.orders(tiling, lvl)
            assert 1 <= len(reps) <= len(perms)
            rep_vals = {}
            for rep in reps:
                orders = tuple(base[:lvl] + [rep] + base[lvl + 1 :])
                m = evaluate(e, a, space.to_mapping(tiling, orders, keeps))
                rep_vals[rep] = (m.latency_s, m.energy_pj)
            for perm in perms:
                orders = tuple(base[:lvl] + [perm] + base[lvl + 1 :])
                m = evaluate(e, a, space.to_mapping(tiling, orders, keeps))
                # some representative gives exactly these metrics
                assert any(
                    v == pytest.approx((m.latency_s, m.energy_pj), rel=1e-12)
                    for v in rep_vals.values()
                )


def test_bound_is_below_sampled_mappings_on_presets() -> None:
    import hw_models

    for arch in ("eyeriss_like", "tpu_like"):
        a = hw_models.load(arch)
        e = gemm(64, 48, 96)
        b = lower_bounds(MapSpace(e, a))
        ev, evb = _evs(e, a)
        for seed in (1, 2):
            rnd = search(
                e,
                a,
                mapper="random",
                objective="edp",
                evaluate=ev,
                evaluate_batch=evb,
                samples=60,
                seed=seed,
            )
            m = evaluate(e, a, rnd.mapping)
            for obj in OBJECTIVES:  # a bound holds for every mapping and objective
                assert 0 < b[obj] <= objective_of(m, obj, a)


def test_timeout_returns_the_best_mapping_with_its_gap() -> None:
    e, a = conv(1, 8, 4, 4, 4, 3, 3), tiny_arch(fx=4, fy=2, gb_bytes=4096, rf_bytes=128)
    ev, evb = _evs(e, a)
    r = search(
        e, a, mapper="ilp", objective="edp", evaluate=ev, evaluate_batch=evb, time_limit_s=0.01
    )
    validate(r.mapping, e, a)
    assert r.status in ("feasible", "timeout", "optimal")
    assert r.gap is not None and 0.0 <= r.gap < 1.0
    assert r.bound <= r.objective_value


def test_exhaustive_is_a_lower_bound_for_random_search() -> None:
    """Random samples the same space, so it can never beat the exhaustive optimum."""
    e, a = SMALL_PROBLEMS[5]
    ev, evb = _evs(e, a)
    ex = exhaustive_search(e, a, objective="energy", evaluate=ev, evaluate_batch=evb)
    rnd = search(
        e,
        a,
        mapper="random",
        objective="energy",
        evaluate=ev,
        evaluate_batch=evb,
        samples=300,
        seed=3,
    )
    validate(rnd.mapping, e, a)
    assert rnd.objective_value >= ex.objective_value * (1 - 1e-12)
    assert rnd.notes["samples"] == 300


def test_exhaustive_refuses_large_spaces_with_a_clear_message() -> None:
    e, a = gemm(256, 256, 256), tiny_arch()
    ev, evb = _evs(e, a)
    with pytest.raises(SpaceTooLarge, match="more than 1000 points"):
        search(
            e,
            a,
            mapper="exhaustive",
            objective="edp",
            evaluate=ev,
            evaluate_batch=evb,
            max_points=1000,
        )


# ------------------------------------------------------------ repeatability
def test_same_inputs_and_seed_give_the_same_mapping() -> None:
    e, a = conv(1, 8, 4, 4, 4, 3, 3), tiny_arch(fx=4, fy=2, gb_bytes=4096, rf_bytes=128)
    ev, evb = _evs(e, a)
    runs = [
        search(
            e,
            a,
            mapper="ilp",
            objective="edp",
            evaluate=ev,
            evaluate_batch=evb,
            seed=7,
            time_limit_s=0.5,
        )
        for _ in range(2)
    ]
    assert mapping_to_dict(runs[0].mapping) == mapping_to_dict(runs[1].mapping)
    assert runs[0].objective_value == runs[1].objective_value


# --------------------------------------------------------------- infeasible
def test_infeasible_problem_names_the_constraint() -> None:
    e = gemm(8, 8, 8, bits=32)
    a = tiny_arch(rf_bytes=6)  # one 4-byte word, double buffered: 8 B > 6 B
    a = a.__class__(
        **{
            **a.__dict__,
            "levels": (
                a.levels[0],
                a.levels[1],
                a.levels[2].__class__(**{**a.levels[2].__dict__, "double_buffered": True}),
            ),
        }
    )
    ev, evb = _evs(e, a)
    with pytest.raises(
        MappingError, match=r"smallest tile of tensor \w \(8 B\) does not fit level PE_RF \(6 B\)"
    ):
        search(e, a, mapper="ilp", objective="edp", evaluate=ev, evaluate_batch=evb)


# --------------------------------------------------------------- hypothesis
@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    m=st.integers(1, 48),
    n=st.integers(1, 48),
    k=st.integers(1, 48),
    fx=st.integers(1, 6),
    fy=st.integers(1, 6),
    rf=st.sampled_from([2, 6, 12, 24, 64, 200]),
    gb=st.sampled_from([16, 100, 512, 4096]),
    obj=st.sampled_from(OBJECTIVES),
)
def test_ilp_never_returns_an_invalid_mapping(m, n, k, fx, fy, rf, gb, obj) -> None:
    e, a = gemm(m, n, k), tiny_arch(gb_bytes=gb, rf_bytes=rf, fx=fx, fy=fy)
    ev, evb = _evs(e, a)
    try:
        r = search(
            e, a, mapper="ilp", objective=obj, evaluate=ev, evaluate_batch=evb, time_limit_s=0.3
        )
    except EinsimError as err:
        assert str(err)  # a clear one-line message, never a crash
        assert "\n" not in str(err)
        return
    validate(r.mapping, e, a)
    assert math.isfinite(r.objective_value) and r.objective_value > 0
    assert r.gap is None or 0.0 <= r.gap <= 1.0


def test_extent_tables_hold_only_reachable_extents() -> None:
    """The ILP tabulates log2 of a tile extent only for the values tile
    factors can give: brute force over every integer up to the rank size."""
    from mappers.ilp.solve import _extent_values

    n = 720720
    assert _extent_values((("m", 1),), {"m": n}) == [d for d in range(1, n + 1) if n % d == 0]
    sizes = {"p": 12, "r": 3}  # a sliding window p + 2 r
    want = sorted(
        {
            1 + (a - 1) + 2 * (b - 1)
            for a in range(1, 13)
            for b in range(1, 4)
            if 12 % a == 0 and 3 % b == 0
        }
    )
    assert _extent_values((("p", 1), ("r", 2)), sizes) == want

"""The cascade ILP's space holds every baseline it is compared with (issue 13).

``schedule --method ilp`` is never worse than ``flat``, ``greedy`` or
``unfused`` on any library cascade, on any spatial preset, for any
objective; its bound is below every one of them and, on cascades small
enough to enumerate, below the exhaustive optimum of the same space.
"""

from __future__ import annotations

import pytest

import hw_models
from mappers.schedule import ScheduleError
from sim.schedulers import schedule_cascade
from workloads import library

SPATIAL = ("eyeriss_like", "flat_cloud", "flat_edge", "fusemax_cloud", "tpu_like")
OBJECTIVES = ("edp", "latency", "energy", "dram_traffic")


def _value(m, objective: str) -> float:
    """The objective as the schedulers minimise it (cycles, pJ, bytes)."""
    if objective == "latency":
        return m.cycles
    if objective == "energy":
        return m.energy_pj
    if objective == "dram_traffic":
        return sum(next(iter(m.traffic_bytes.values())).values())
    return m.cycles * m.energy_pj


def _cascades():
    """Every library workload at its (small) defaults."""
    return [(name, library.build(name)) for name in library.list_workloads()]


def _ilp(c, arch, objective):
    return schedule_cascade(c, arch, "ilp", objective, time_limit_s=0.5, workers=1)


@pytest.mark.slow
@pytest.mark.parametrize("preset", SPATIAL)
def test_ilp_is_never_worse_than_flat_greedy_or_unfused(preset):
    arch = hw_models.load(preset)
    checked = 0
    for name, c in _cascades():
        for obj in OBJECTIVES:
            sched, m = _ilp(c, arch, obj)
            value, bound = _value(m, obj), sched.solver["bound"]
            assert sched.solver["objective"] == pytest.approx(value, rel=1e-12)
            assert bound <= value * (1 + 1e-9)
            for method in ("flat", "greedy", "unfused"):
                try:
                    _, bm = schedule_cascade(c, arch, method, obj)
                except ScheduleError:
                    assert method == "flat"  # FLAT needs an attention cascade that fits
                    continue
                b = _value(bm, obj)
                assert value <= b * (1 + 1e-9), (name, preset, obj, method, value, b)
                assert bound <= b * (1 + 1e-9), (name, preset, obj, method, bound, b)
                checked += 1
    assert checked >= len(_cascades()) * len(OBJECTIVES) * 2


@pytest.mark.parametrize("name", ["attention-3pass", "attention-2pass", "mlp", "attention-1pass"])
def test_ilp_bound_is_below_the_exhaustive_optimum(name):
    """The exhaustive method enumerates the same space (every residency
    pattern, and the structured candidates): the ILP's value is at least its
    optimum and the ILP's bound at most."""
    arch = hw_models.load("flat_edge")
    c = library.build(name)
    for obj in OBJECTIVES:
        sched, m = _ilp(c, arch, obj)
        _, em = schedule_cascade(c, arch, "exhaustive", obj)
        opt = _value(em, obj)
        assert _value(m, obj) >= opt * (1 - 1e-9)
        assert sched.solver["bound"] <= opt * (1 + 1e-9), (name, obj)


def test_three_pass_attention_ilp_finds_flats_schedule_with_an_honest_gap():
    """The issue's case: 3-pass attention, B=1 H=12 M=P=4096 on fusemax_cloud.
    The fusion ILP alone proved 11.5 ms optimal over its residency space;
    FLAT's tiled, pipelined fusion takes 8.4 ms, and the ILP now returns it."""
    arch = hw_models.load("fusemax_cloud")
    c = library.build("attention-3pass", B=1, H=12, M=4096, P=4096)
    sched, m = _ilp(c, arch, "latency")
    _, flat = schedule_cascade(c, arch, "flat", "latency")
    _, greedy = schedule_cascade(c, arch, "greedy", "latency")
    assert m.latency_s <= flat.latency_s * (1 + 1e-12)
    assert m.latency_s < 0.75 * greedy.latency_s
    assert sched.solver["chosen"].startswith("flat")
    assert sched.solver["bound"] <= flat.cycles

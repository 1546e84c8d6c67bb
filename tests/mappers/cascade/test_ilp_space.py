"""The cascade ILP's space holds every baseline it is compared with (issue 13).

``schedule --method ilp`` (the front door) is never worse than ``flat``,
``greedy`` or ``unfused`` (the Einsums' mappings, as ``eval``) on any
library cascade, on any spatial preset, for any objective; its bound is
below every one of them and, on cascades small enough to enumerate, below
the exhaustive optimum of the same space.
"""

from __future__ import annotations

import pytest

import hw_models
import sim
from mappers.mapping import MappingError
from mappers.schedule import ScheduleError
from sim.analytical.cascade import einsum_cycles
from sim.schedulers import schedule_cascade
from workloads import library

SPATIAL = tuple(n for n in hw_models.list_presets() if hw_models.load(n).family == "spatial")
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


#: left out for CI time: the whole model (1,160 Einsums at its defaults) is
#: the decoder layer, which is in the list, repeated with an embedding and head
SKIP = ("llm",)


def _cascades():
    """Every library workload at its (small) defaults, but :data:`SKIP`."""
    return [(n, library.build(n)) for n in library.list_workloads() if n not in SKIP]


def _ilp(c, arch, objective):
    return schedule_cascade(c, arch, "ilp", objective, time_limit_s=0.5, workers=1)


def _door(c, arch, method, objective="latency"):
    """``einsim schedule --method METHOD`` (the front door, greedy mapper)."""
    return sim.evaluate(c, arch, schedule=method, objective=objective, time_limit_s=0.5)


@pytest.mark.slow
@pytest.mark.parametrize("preset", SPATIAL)
def test_ilp_is_never_worse_than_flat_greedy_or_unfused(preset):
    arch = hw_models.load(preset)
    checked = 0
    refused = 0
    for name, c in _cascades():
        for obj in OBJECTIVES:
            try:
                ev = _door(c, arch, "ilp", obj)
            except MappingError as exc:
                # a preset without the units a cascade needs (simba_like and
                # tpu_v4i have MACs only): every method refuses it the same way
                assert "no compute unit" in str(exc), (name, preset, obj)
                for method in ("flat", "greedy", "unfused"):
                    with pytest.raises((MappingError, ScheduleError)):
                        _door(c, arch, method, obj)
                refused += 1
                continue
            sched, m = ev.schedule, ev.metrics
            value, bound = _value(m, obj), sched.solver["bound"]
            assert sched.solver["objective"] == pytest.approx(value, rel=1e-12)
            assert bound <= value * (1 + 1e-9)
            for method in ("flat", "greedy", "unfused"):
                try:
                    bm = _door(c, arch, method, obj).metrics
                except ScheduleError:
                    assert method == "flat"  # FLAT needs an attention cascade that fits
                    continue
                b = _value(bm, obj)
                assert value <= b * (1 + 1e-9), (name, preset, obj, method, value, b)
                assert bound <= b * (1 + 1e-9), (name, preset, obj, method, bound, b)
                checked += 1
    assert checked >= (len(_cascades()) * len(OBJECTIVES) - refused) * 2
    assert refused < len(_cascades()) * len(OBJECTIVES)  # the GEMM cascades map


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


def test_three_pass_attention_ilp_is_never_worse_than_a_baseline_and_its_bound_holds():
    """The issue's case: 3-pass attention, B=1 H=12 M=P=4096 on fusemax_cloud.
    The fusion ILP alone proved 11.5 ms optimal over its residency space;
    FLAT's tiled, pipelined fusion takes 8.37 ms, and the ILP now returns it.
    Its bound (7.864 M cycles, gap 0) is checked against a closed form that
    holds for any schedule: no schedule ends before its busiest unit has
    done its operations at full rate (7,864,320 cycles on vector_1d)."""
    arch = hw_models.load("fusemax_cloud")
    c = library.build("attention-3pass", B=1, H=12, M=4096, P=4096)
    ilp = _door(c, arch, "ilp")
    base = {m: _door(c, arch, m) for m in ("flat", "unfused", "greedy")}
    for m, ev in base.items():
        assert ilp.metrics.latency_s <= ev.metrics.latency_s * (1 + 1e-12), m
        assert ilp.schedule.solver["bound"] <= ev.metrics.cycles * (1 + 1e-12), m
    assert ilp.metrics.latency_s < 0.75 * base["unfused"].metrics.latency_s
    assert ilp.metrics.latency_s < 0.75 * base["greedy"].metrics.latency_s
    assert ilp.schedule.solver["chosen"].startswith("flat")
    # unfused through the front door is the mapped evaluation (eval's answer)
    assert base["unfused"].mapper == "greedy"
    busy = {}
    for e in c.einsums:
        unit = arch.unit(ilp.schedule.binding[e.name])
        busy[unit.name] = busy.get(unit.name, 0.0) + einsum_cycles(e, unit)
    floor = max(busy.values())
    # the bound is the space's least value (FLAT's, each point costed
    # exactly); no schedule at all beats the floor, and FLAT is within its
    # pipeline fill (96 cycles) of it, so the reported 0% gap is honest
    assert floor <= ilp.schedule.solver["bound"] <= ilp.metrics.cycles
    assert ilp.metrics.cycles <= floor * (1 + 1e-4)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_one_pass_attention_ilp_is_never_worse_than_fusemax(objective):
    """FuseMax's streamed pass is in the ILP's space (issue 13's 1-pass case,
    4K tokens on fusemax_cloud): the ILP is at most FuseMax's, unfused's and
    greedy's value, and so is its bound."""
    arch = hw_models.load("fusemax_cloud")
    c = library.build("attention-1pass", B=1, H=12, M=4096, P=4096)
    ilp = _door(c, arch, "ilp", objective)
    value, bound = _value(ilp.metrics, objective), ilp.schedule.solver["bound"]
    assert ilp.schedule.solver["objective"] == pytest.approx(value, rel=1e-12)
    for m in ("fusemax", "unfused", "greedy"):
        b = _value(_door(c, arch, m, objective).metrics, objective)
        assert value <= b * (1 + 1e-12), (m, value, b)
        assert bound <= b * (1 + 1e-12), (m, bound, b)

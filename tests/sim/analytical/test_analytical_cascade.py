"""Unfused cascades through the front door: sums of the parts, compulsory
traffic, utilisation by time share, and the registries."""

from __future__ import annotations

import math

import pytest

import hw_models
import sim
from mappers import registry
from mappers.baselines.greedy import greedy_mapping
from mappers.objectives import ObjectiveError
from sim.analytical.model import evaluate, evaluate_cascade
from sim.models import ModelError
from workloads import library


@pytest.fixture(scope="module")
def arch():
    return hw_models.load("fusemax_cloud")


def test_cascade_is_the_sum_of_its_einsums(arch):
    casc = library.build("attention-3pass")
    maps = {e.name: greedy_mapping(e, arch) for e in casc.einsums}
    total = evaluate_cascade(casc, arch, maps)
    parts = [evaluate(e, arch, maps[e.name]) for e in casc.einsums]
    assert total.cycles == pytest.approx(sum(p.cycles for p in parts))
    assert total.energy_pj == pytest.approx(sum(p.energy_pj for p in parts))
    assert total.macs == casc.total_macs
    # utilisation = busy time / total time, per unit
    for u in ("pe_array", "vector_1d"):
        busy = sum(p.utilization[u] * p.cycles for p in parts)
        assert total.utilization[u] == pytest.approx(busy / total.cycles)
    # unfused: every intermediate is written to DRAM and read back at least once
    dram = total.traffic_bytes["DRAM"]
    for t in casc.intermediates:
        assert dram[t] >= 2 * casc.tensor(t).bytes
    for t in (*casc.inputs, *casc.outputs):
        assert dram[t] >= casc.tensor(t).bytes


def test_front_door_matches_direct_evaluation(arch):
    casc = library.build("mlp")
    ev = sim.evaluate(casc, arch, mapper="greedy-fast")
    direct = evaluate_cascade(casc, arch, ev.mappings)
    assert ev.metrics.cycles == pytest.approx(direct.cycles, rel=1e-12)
    assert ev.metrics.energy_pj == pytest.approx(direct.energy_pj, rel=1e-12)
    assert set(ev.metrics.mapping) == {e.name for e in casc.einsums}


def test_evaluator_never_worse_than_plain_greedy(arch):
    e = library.build("gemm", M=1000, N=300, K=700).einsums[0]
    plain = evaluate(e, arch, greedy_mapping(e, arch))
    best = sim.evaluate(e, arch, mapper="greedy", objective="edp").metrics
    assert best.energy_pj * best.latency_s <= plain.energy_pj * plain.latency_s * (1 + 1e-12)


def test_registries_are_one_line_extensions(arch, monkeypatch):
    e = library.build("gemm", M=64, N=64, K=64).einsums[0]
    calls = []

    def my_mapper(einsum, arch_, unit, objective):
        calls.append(objective)
        return [greedy_mapping(einsum, arch_)]

    monkeypatch.setitem(
        registry.MAPPERS, "mine", registry.MapperInfo("mine", "test", candidates=my_mapper)
    )
    m = sim.evaluate(e, arch, mapper="mine", objective="latency").metrics
    assert calls == ["latency"] and math.isfinite(m.cycles)
    assert m.cycles == evaluate(e, arch, greedy_mapping(e, arch)).cycles
    with pytest.raises(ModelError, match="unknown model 'magic'"):
        sim.evaluate(e, arch, model="magic")
    with pytest.raises(ObjectiveError, match="unknown objective"):
        sim.evaluate(e, arch, objective="speed")

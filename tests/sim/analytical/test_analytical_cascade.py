"""Unfused cascades through the pipeline: sums of the parts, compulsory
traffic, utilisation by time share, and the registries."""

from __future__ import annotations

import math

import pytest

import hw_models
from experiments import pipeline
from experiments.pipeline import PipelineError, evaluate_workload, find_mappings
from mappers.baselines.greedy import greedy_mapping
from sim.analytical.model import evaluate, evaluate_cascade
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


def test_pipeline_matches_direct_evaluation(arch):
    casc = library.build("mlp")
    m = evaluate_workload(casc, arch, mapper="greedy-fast")
    maps = find_mappings(casc, arch, mapper="greedy-fast")
    direct = evaluate_cascade(casc, arch, maps)
    assert m.cycles == pytest.approx(direct.cycles)
    assert set(m.mapping) == {e.name for e in casc.einsums}


def test_evaluator_never_worse_than_plain_greedy(arch):
    e = library.build("gemm", M=1000, N=300, K=700).einsums[0]
    plain = evaluate(e, arch, greedy_mapping(e, arch))
    best = evaluate_workload(e, arch, mapper="greedy", objective="edp")
    assert best.energy_pj * best.latency_s <= plain.energy_pj * plain.latency_s * (1 + 1e-12)


def test_registries_are_one_line_extensions(arch, monkeypatch):
    e = library.build("gemm", M=64, N=64, K=64).einsums[0]
    calls = []

    def my_mapper(einsum, arch_, objective, evaluator, **opts):
        calls.append(objective)
        return greedy_mapping(einsum, arch_)

    monkeypatch.setitem(pipeline.MAPPERS, "mine", my_mapper)
    m = evaluate_workload(e, arch, mapper="mine", objective="latency")
    assert calls == ["latency"] and math.isfinite(m.cycles)
    with pytest.raises(PipelineError, match="unknown model 'magic'"):
        evaluate_workload(e, arch, sim="magic")
    with pytest.raises(PipelineError, match="unknown objective"):
        evaluate_workload(e, arch, objective="speed")

"""Random mappings of random GEMMs: accepted ones give finite, non-negative
metrics and conserve MACs; rejected ones raise MappingError; the scalar
and the vectorised paths agree."""

from __future__ import annotations

import math

import numpy as np
from builders import gemm, spatial_arch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappers.mapping import LevelMapping, Mapping, MappingError, padded_points, validate
from sim.analytical.model import evaluate, evaluate_batch

LEVELS = ("DRAM", "GlobalBuffer", "PE_RF")


@st.composite
def gemm_and_mapping(draw):
    sizes = {r: draw(st.integers(1, 24)) for r in ("m", "n", "k")}
    e = gemm(sizes["m"], sizes["n"], sizes["k"], bits=draw(st.sampled_from([8, 16])))
    arch = spatial_arch(
        rows=draw(st.sampled_from([2, 4])),
        cols=draw(st.sampled_from([2, 4])),
        gb_bytes=draw(st.sampled_from([256, 2048, 1 << 16])),
        rf_bytes=draw(st.sampled_from([8, 32, 128])),
        dataflow=draw(st.sampled_from(["os", "ws", "is"])),
    )
    # per rank: split its size (sometimes short, sometimes padded) over the
    # levels; spatial factors at the GlobalBuffer
    temporal = [{}, {}, {}]
    spatial = [{}, {}, {}]
    for r, n in sizes.items():
        s = draw(st.integers(1, 5))
        spatial[1][r] = s
        rest = math.ceil(n / s) + draw(st.sampled_from([0, 0, 0, 1, -1]))
        a = draw(st.integers(1, max(1, rest)))
        b = draw(st.integers(1, max(1, math.ceil(rest / a))))
        temporal[2][r] = a
        temporal[1][r] = b
        temporal[0][r] = max(1, math.ceil(rest / (a * b)))
    keeps = [
        None,
        draw(st.sampled_from([None, ("A", "B", "C"), ("A",), ("C", "B"), ()])),
        draw(st.sampled_from([None, ("C",), ("A",), ("B",), ()])),
    ]
    levels = tuple(
        LevelMapping(
            level=LEVELS[i],
            temporal=temporal[i],
            spatial=spatial[i],
            order=tuple(draw(st.permutations(["m", "n", "k"]))),
            keep=keeps[i],
        )
        for i in range(3)
    )
    return e, arch, Mapping(einsum=e.name, levels=levels)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(gemm_and_mapping())
def test_random_mappings(case):
    e, arch, m = case
    try:
        validate(m, e, arch)
    except MappingError as exc:
        assert str(exc)  # a message, not a crash
        res = evaluate_batch(e, arch, [m])
        assert not res["valid"][0]
        return
    r = evaluate(e, arch, m)
    vals = [r.cycles, r.latency_s, r.energy_pj, r.compute_cycles, *r.transfer_cycles.values()]
    vals += list(r.energy_breakdown_pj.values())
    for lv in r.accesses.values():
        for a in lv.values():
            vals += [a.reads, a.writes, a.updates, a.bytes]
    assert all(math.isfinite(v) and v >= 0 for v in vals)
    M, N, K = (e.rank_sizes[x] for x in "mnk")
    assert r.macs == M * N * K  # conserved whatever the mapping
    assert r.padded_macs == padded_points(e, m) >= r.macs
    assert 0 <= r.utilization["pe_array"] <= 1
    # no faster than every PE busy on every (padded) MAC
    assert r.compute_cycles + 1 >= r.padded_macs / arch.compute[0].pes
    # outputs reach DRAM exactly once per element or more (partial sums)
    assert r.accesses["DRAM"]["C"].writes >= M * N
    assert r.accesses["DRAM"]["A"].reads >= M * K
    assert r.accesses["DRAM"]["B"].reads >= K * N
    # scalar and vectorised paths agree, and the batch marks it valid
    res = evaluate_batch(e, arch, [m])
    assert res["valid"][0]
    np.testing.assert_allclose(res["cycles"][0], r.cycles, rtol=1e-9)
    np.testing.assert_allclose(res["energy_pj"][0], r.energy_pj, rtol=1e-9)
    for lv, d in r.traffic_bytes.items():
        for t, b in d.items():
            np.testing.assert_allclose(res[f"traffic_bytes.{lv}.{t}"][0], b, rtol=1e-9)

"""The analytical model against closed forms, a brute-force loop-nest walk and
SCALE-Sim's per-fold formulas and SRAM counts."""

from __future__ import annotations

import csv
import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from builders import (
    conv1d,
    copy,
    gemm,
    level,
    lm,
    mapping,
    single_level_arch,
    spatial_arch,
    unit,
)

from hw_models.arch import Architecture
from mappers.mapping import MappingError, loop_order
from sim.analytical.model import access_terms, evaluate, evaluate_batch

REF = Path(__file__).resolve().parents[3] / "experiments" / "data" / "scalesim" / "reference.csv"


# ---------------------------------------------------------------- closed forms


@pytest.mark.parametrize("M,N,K,pes", [(64, 64, 64, 16), (32, 48, 7, 8), (128, 1, 3, 64)])
def test_gemm_single_level_unlimited_bandwidth_takes_macs_over_pes(M, N, K, pes):
    e = gemm(M, N, K)
    arch = single_level_arch(pes)
    m = mapping(e, lm("DRAM", {"m": M // pes, "n": N, "k": K}, {"m": pes}))
    r = evaluate(e, arch, m)
    assert r.cycles == M * N * K / pes
    assert r.compute_cycles == M * N * K / pes
    assert r.macs == M * N * K
    assert r.utilization["pe_array"] == pytest.approx(1.0)


def test_bandwidth_bound_copy_takes_bytes_over_bandwidth():
    # B[m] = A[m], 4096 16-bit elements through a 16 B/cycle DRAM port
    M, bw, tile = 4096, 16.0, 64
    e = copy(M)
    arch = Architecture(
        name="copy",
        family="spatial",
        clock_hz=1e9,
        levels=(
            level("DRAM", None, bw, shared_bw=True),
            level("Buf", 2 * 2 * tile * 2, math.inf),
        ),
        compute=(unit(pes=1),),
    )
    m = mapping(e, lm("DRAM", {"m": M // tile}), lm("Buf", {"m": tile}))
    r = evaluate(e, arch, m)
    moved = 2 * M * 2  # read A, write B, 2 B each
    assert r.traffic_bytes["DRAM"] == {"A": M * 2, "B": M * 2}
    assert r.transfer_cycles["DRAM"] == moved / bw
    assert r.compute_cycles == 0
    # the shared DRAM port is busy from the first read to the last write
    # (nothing to compute between them), so there is no fill on top of it;
    # the discrete-event simulator counts the same 1024 cycles
    assert r.cycles == moved / bw
    assert evaluate(e, arch, m, fill=False).cycles == moved / bw
    assert r.latency_s == r.cycles / 1e9


def test_energy_equals_hand_count_two_level():
    # C[m,n] = A[m,k] B[k,n], M=N=K=4, DRAM -> Buf (holds everything) -> 4 PEs
    e = gemm(4, 4, 4)
    arch = Architecture(
        name="two",
        family="spatial",
        clock_hz=1e9,
        levels=(
            level("DRAM", None, 8.0, er=100.0, ew=120.0),
            level("Buf", 1024, 8.0, er=5.0, ew=6.0, fanout_x=4),
        ),
        compute=(unit(pes=4, mac_pj=1.5),),
        static_power_w=0.002,
    )
    m = mapping(e, lm("DRAM"), lm("Buf", {"m": 4, "k": 4}, {"n": 4}, order="mk"))
    r = evaluate(e, arch, m)
    # DRAM: A, B read once (16 words each), C written once (16 words)
    dram = 16 * 100 + 16 * 100 + 16 * 120
    # Buf: filled with A, B (writes), written C (16 words) back read once
    # for DRAM; the PEs read A (multicast over n: 64/4 = 16 reads), B (64
    # reads), and update C: 64 MAC updates of which 16 are first writes.
    buf_fill = 32 * 6
    buf_reads = 16 * 5 + 64 * 5 + 16 * 5  # A, B to the PEs, C back to DRAM
    buf_c = 16 * 6 + 48 * (5 + 6)  # first writes + read-modify-writes
    compute = 64 * 1.5
    assert r.energy_breakdown_pj["DRAM"] == dram
    assert r.energy_breakdown_pj["Buf"] == buf_fill + buf_reads + buf_c
    assert r.energy_breakdown_pj["pe_array.mac"] == compute
    static = 0.002 * r.latency_s * 1e12
    assert r.energy_breakdown_pj["static"] == pytest.approx(static)
    assert r.energy_pj == pytest.approx(dram + buf_fill + buf_reads + buf_c + compute + static)
    acc = r.accesses["Buf"]
    assert (acc["A"].reads, acc["B"].reads) == (16, 64)
    assert (acc["C"].writes, acc["C"].updates, acc["C"].reads) == (16, 48, 16)


# ---------------------------------------------------- brute-force loop nest


def brute_force(einsum, arch, m):
    """Walk the loop nest point by point (temporal loops only) and count
    parent reads / writes of every tensor at every level.

    A tile is refetched whenever the tile a level holds changes between
    consecutive iterations; it is identified by the loop indices above the
    level of the ranks that index the tensor. Footprints are the distinct
    elements the tile touches, found by enumerating them.
    """
    ranks = [r for r, _ in einsum.rank_sizes_items]
    nl = len(arch.levels)
    loops = []  # (level, rank, factor), outermost first
    for i, lvm in enumerate(m.levels):
        for r in loop_order(lvm, ranks):
            if lvm.temporal.get(r, 1) > 1:
                loops.append((i, r, lvm.temporal[r]))
    every = {a.tensor for a in einsum.accesses}
    keep = [
        every if i == 0 or m.levels[i].keep is None else set(m.levels[i].keep) for i in range(nl)
    ]
    accs = {a.tensor: a for a in einsum.accesses}
    out = einsum.output.tensor
    reads = {(i, t): 0 for i in range(nl) for t in accs}
    writes = dict(reads)
    updates = dict(reads)

    def point(idx):
        # rank coordinate of the point given loop indices (row-major strides)
        coord = dict.fromkeys(ranks, 0)
        for (_lv, r, _f), v in zip(loops, idx, strict=True):
            inner = 1
            for _lv2, r2, f2 in loops[loops.index((_lv, r, _f)) + 1 :]:
                if r2 == r:
                    inner *= f2
            coord[r] += v * inner
        return coord

    def elem(t, coord):
        return tuple(sum(c * coord[rk] for rk, c in ix.terms) for ix in accs[t].indices)

    def tile_id(t, c, idx):
        return tuple(
            v
            for (lv, r, _f), v in zip(loops, idx, strict=True)
            if lv < c and any(r in ix.ranks for ix in accs[t].indices)
        )

    # tile footprints by enumeration of the first tile
    all_idx = list(itertools.product(*[range(f) for _, _, f in loops]))
    current = {}
    seen = {}
    touched = set()
    for idx in all_idx:
        coord = point(idx)
        for t in accs:
            path = [i for i in range(nl) if t in keep[i]]
            for c in [*path[1:], nl]:
                p = max(i for i in path if i < c)
                tid = tile_id(t, c, idx) if c < nl else idx
                key = (t, c)
                if current.get(key) == tid:
                    continue
                if c < nl:
                    # footprint: distinct elements of the tile at c
                    members = {elem(t, point(j)) for j in all_idx if tile_id(t, c, j) == tid}
                    fp = len(members)
                else:
                    fp = 1
                if t != out:
                    reads[(p, t)] += fp
                    if c < nl:
                        writes[(c, t)] += fp
                else:
                    if c == nl:
                        e_ = elem(t, coord)
                        if e_ in touched:
                            updates[(p, t)] += 1
                        else:
                            writes[(p, t)] += 1
                            touched.add(e_)
                    else:
                        if key in current:
                            writes[(p, t)] += fp  # write back the old tile
                            reads[(c, t)] += fp
                        if (t, c, tid) in seen:
                            reads[(p, t)] += fp  # partial sums come back
                            writes[(c, t)] += fp
                        seen[(t, c, tid)] = True
                current[key] = tid
    for (t, c), _tid in current.items():
        if t == out and c < nl:
            p = max(i for i in range(c) if t in keep[i])
            fp = len({elem(t, point(j)) for j in all_idx if tile_id(t, c, j) == _tid})
            writes[(p, t)] += fp
            reads[(c, t)] += fp
    return reads, writes, updates


def _three_level(gb=1 << 20, rf=1 << 20):
    return Architecture(
        name="three",
        family="spatial",
        clock_hz=1e9,
        levels=(level("DRAM", None), level("GB", gb), level("RF", rf)),
        compute=(unit(pes=1),),
    )


@pytest.mark.parametrize(
    "factors,orders,keeps",
    [
        # output stationary at GB, inputs refetched
        (({"m": 2, "n": 2, "k": 1}, {"k": 2}, {"m": 2, "n": 2, "k": 4}), ("mnk", "k", "knm"), None),
        # reduction loop outermost: partial sums go back to DRAM
        (({"k": 2, "m": 2}, {"n": 4}, {"m": 2, "k": 4}), ("km", "n", "mk"), None),
        # irrelevant loops innermost keep tiles stationary
        (({"n": 2, "m": 2, "k": 2}, {"m": 2, "n": 2}, {"k": 4}), ("knm", "nm", "k"), None),
        # bypass: RF keeps only A
        (
            ({"m": 2, "n": 2}, {"k": 4, "n": 2}, {"m": 2, "k": 2}),
            ("nm", "kn", "mk"),
            ((), ("A", "C"), ("A",)),
        ),
    ],
)
def test_access_counts_match_brute_force_walk(factors, orders, keeps):
    e = gemm(4, 4, 8)
    sizes = e.rank_sizes
    arch = _three_level()
    names = ("DRAM", "GB", "RF")
    lms = []
    for i, (f, o) in enumerate(zip(factors, orders, strict=True)):
        k = None if keeps is None or i == 0 else keeps[i]
        lms.append(lm(names[i], f, order=o, keep=k))
    m = mapping(e, *lms)
    for r in sizes:
        assert m.factor(r) == sizes[r]
    r = evaluate(e, arch, m)
    b_reads, b_writes, b_updates = brute_force(e, arch, m)
    for (lv, t), v in b_reads.items():
        got = r.accesses[names[lv]].get(t)
        assert (got.reads if got else 0) == v, (names[lv], t, "reads")
        assert (got.writes if got else 0) == b_writes[(lv, t)], (names[lv], t, "writes")
        assert (got.updates if got else 0) == b_updates[(lv, t)], (names[lv], t, "updates")


def test_sliding_window_footprint_matches_brute_force():
    e = conv1d(P=8, R=3, stride=1)
    arch = _three_level()
    m = mapping(
        e,
        lm("DRAM", {"p": 2}, order="p"),
        lm("GB", {"p": 2}, order="p"),
        lm("RF", {"p": 2, "r": 3}, order="pr"),
    )
    r = evaluate(e, arch, m)
    b_reads, _, _ = brute_force(e, arch, m)
    # GB tile of I: p=4, r=3 -> 6 elements, 2 tiles (overlapping halo counted twice)
    assert r.accesses["DRAM"]["I"].reads == b_reads[(0, "I")] == 12
    assert r.accesses["GB"]["I"].reads == b_reads[(1, "I")]


# ---------------------------------------------------------- SCALE-Sim formulas


def _scalesim_rows(dataflow):
    with REF.open() as f:
        rows = [
            r
            for r in csv.DictReader(f)
            if r["kind"] == "gemm" and r["dataflow"] == dataflow and float(r["stall_cycles"]) == 0
        ]
    return rows[:6]


def _dataflow_mapping(e, df, rows, cols, M, N, K):
    """The mapping SCALE-Sim uses: Sr x Sc on the array, T in time, folds outside."""
    sr, sc, t = {"os": ("m", "n", "k"), "ws": ("k", "n", "m"), "is": ("k", "m", "n")}[df]
    size = {"m": M, "n": N, "k": K}
    fy, fx = math.ceil(size[sr] / rows), math.ceil(size[sc] / cols)
    stationary = {"os": "C", "ws": "B", "is": "A"}[df]
    return mapping(
        e,
        lm("DRAM"),
        lm(
            "GlobalBuffer",
            {sr: fy, sc: fx},
            {sr: min(rows, size[sr]), sc: min(cols, size[sc])},
            order=(sr, sc),
            axes={sr: "y", sc: "x"},
        ),
        lm("PE_RF", {t: size[t]}, keep=(stationary,)),
    )


@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_compute_cycles_match_scalesim_fold_formula(df):
    rows_ = _scalesim_rows(df)
    assert rows_, "reference rows missing"
    for row in rows_:
        M, N, K = int(row["M"]), int(row["N"]), int(row["K"])
        R, C = int(row["array_rows"]), int(row["array_cols"])
        e = gemm(M, N, K, bits=8)
        arch = spatial_arch(rows=R, cols=C, gb_bytes=None, rf_bytes=None, dataflow=df)
        m = _dataflow_mapping(e, df, R, C, M, N, K)
        r = evaluate(e, arch, m)
        assert r.compute_cycles == float(row["compute_cycles_no_stall"]), row["layer"]
        if float(row["stall_cycles"]) == 0:
            assert r.compute_cycles == float(row["total_cycles"])
        gb = r.accesses["GlobalBuffer"]
        if df == "os":  # SCALE-Sim's operand SRAM reads
            assert gb["A"].reads == float(row["sram_ifmap_reads"]), row["layer"]
            assert gb["B"].reads == float(row["sram_filter_reads"]), row["layer"]
        if df == "ws":
            assert gb["A"].reads == float(row["sram_ifmap_reads"]), row["layer"]
            assert gb["B"].reads == float(row["sram_filter_reads"]), row["layer"]
            c = gb["C"]
            assert c.writes + c.updates == float(row["sram_ofmap_writes"]), row["layer"]


# ------------------------------------------------------------- vectorised API


def test_batch_of_mappings_equals_single_calls():
    e = gemm(16, 12, 20)
    arch = spatial_arch(gb_bytes=8192, rf_bytes=256)
    from mappers.baselines.greedy import greedy_mapping

    base = greedy_mapping(e, arch)
    variants = [base]
    for perm in itertools.permutations(["m", "n", "k"]):
        lv0 = dataclasses.replace(base.levels[0], order=perm)
        variants.append(dataclasses.replace(base, levels=(lv0, *base.levels[1:])))
    variants.append(
        mapping(
            e,
            lm("DRAM", {"m": 2, "n": 3, "k": 5}, order="kmn"),
            lm("GlobalBuffer", {"k": 2}, {"m": 4, "n": 4}),
            lm("PE_RF", {"m": 2, "k": 2}, keep=("C", "A")),
        )
    )
    res = evaluate_batch(e, arch, variants)
    for i, m in enumerate(variants):
        one = evaluate(e, arch, m)
        assert res["cycles"][i] == pytest.approx(one.cycles, rel=1e-12)
        assert res["energy_pj"][i] == pytest.approx(one.energy_pj, rel=1e-12)
        assert res["traffic_bytes.DRAM.A"][i] == pytest.approx(one.traffic_bytes["DRAM"]["A"])
        assert bool(res["valid"][i])


def test_hw_overrides_equal_derived_architectures():
    e = gemm(64, 64, 64)
    arch = spatial_arch(gb_bytes=1 << 16, rf_bytes=256)
    from mappers.baselines.greedy import greedy_mapping

    m = greedy_mapping(e, arch)
    bws = np.array([1.0, 4.0, 16.0, 64.0, 256.0])
    clocks = np.array([1e9, 5e8, 2e9, 1e9, 1e9])
    res = evaluate_batch(
        e, arch, m, hw_overrides={"DRAM.read_bw_bytes_per_cycle": bws, "clock_hz": clocks}
    )
    assert res["cycles"].shape == (5,)
    for i, (bw, clk) in enumerate(zip(bws, clocks, strict=True)):
        lv = dataclasses.replace(arch.levels[0], read_bw_bytes_per_cycle=float(bw))
        a2 = dataclasses.replace(arch, levels=(lv, *arch.levels[1:]), clock_hz=float(clk))
        one = evaluate(e, a2, m)
        assert res["cycles"][i] == pytest.approx(one.cycles)
        assert res["latency_s"][i] == pytest.approx(one.latency_s)
        assert res["energy_pj"][i] == pytest.approx(one.energy_pj)
    # the slowest DRAM is bandwidth bound: more bandwidth never hurts
    assert np.all(np.diff(res["cycles"][:1]) <= 0)
    with pytest.raises(MappingError, match="unknown hardware override"):
        evaluate_batch(e, arch, m, hw_overrides={"DRAM.colour": bws})


def test_factor_arrays_and_validity_flags():
    e = gemm(8, 8, 8)
    arch = single_level_arch(pes=8)
    # [N, levels=1, ranks=3]
    tf = np.array([[[1, 8, 8]], [[2, 8, 8]], [[1, 4, 8]]], dtype=float)
    sf = np.array([[[8, 1, 1]], [[4, 1, 1]], [[8, 1, 1]]], dtype=float)
    res = evaluate_batch(e, arch, temporal=tf, spatial=sf)
    assert list(res["valid"]) == [True, True, False]  # the last does not cover n
    assert res["cycles"][0] == 64 and res["cycles"][1] == 128


def test_access_terms_reproduce_counts():
    e = gemm(4, 4, 8)
    arch = _three_level()
    m = mapping(
        e,
        lm("DRAM", {"k": 2, "m": 2}, order="km"),
        lm("GB", {"n": 4}, order="n"),
        lm("RF", {"m": 2, "k": 4}, order="mk"),
    )
    r = evaluate(e, arch, m)
    f = {(lvm.level, rk): v for lvm in m.levels for rk, v in lvm.temporal.items()}
    for term in access_terms(e, arch, m):
        if term.parent != "DRAM":
            continue
        count = math.prod(f[x] for x in term.temporal)
        if term.footprint_level == "GB":
            count *= {"A": 2 * 4, "B": 4 * 4, "C": 2 * 4}[term.tensor]  # GB tile m=2 n=4 k=4
        acc = r.accesses["DRAM"][term.tensor]
        if term.action == "read":
            assert acc.reads == count
        else:
            assert acc.writes == count
            distinct = math.prod(f[x] for x in term.distinct)
            assert acc.reads == count - count // math.prod(f[x] for x in term.temporal) * distinct


def test_non_mac_einsum_runs_on_vector_unit():
    from builders import ix

    from workloads.ir import Access, Einsum

    # SN[m,p] = exp(QK[m,p] - MX[p]) on a 2D array + a 1D array fed by the buffer
    e = Einsum(
        name="SN",
        output=Access("SN", (ix("m"), ix("p"))),
        inputs=(Access("QK", (ix("m"), ix("p"))), Access("MX", (ix("p"),))),
        map_op="expdiff",
        reduce_op="none",
        rank_sizes_items=(("m", 64), ("p", 64)),
    )
    base = spatial_arch(gb_bytes=1 << 20, rf_bytes=64)
    vec = unit(
        "vector_1d",
        "array1d",
        pes=16,
        ops={"add": 1.0, "exp": 0.5, "max": 1.0},
        epj={"add": 1.0, "exp": 10.0},
        fed_by="GlobalBuffer",
    )
    arch = dataclasses.replace(base, compute=(*base.compute, vec))
    from mappers.baselines.greedy import greedy_mapping

    m = greedy_mapping(e, arch)
    assert m.unit == "vector_1d"
    r = evaluate(e, arch, m)
    # 4096 points, each 1 exp-of-difference (0.5/cycle) = 2 cycles per lane
    assert r.compute_cycles == 4096 * 2 / 16
    assert r.energy_breakdown_pj["vector_1d.exp"] == 4096 * 10.0
    assert r.utilization["pe_array"] == 0.0
    assert 0 < r.utilization["vector_1d"] <= 1
    assert r.macs == 0


def test_metrics_dict_roundtrip():
    import json

    from sim.metrics import Metrics

    e = gemm(8, 8, 8)
    r = evaluate(
        e,
        spatial_arch(),
        mapping(e, lm("DRAM", {"m": 8, "n": 8, "k": 8}), lm("GlobalBuffer"), lm("PE_RF")),
    )
    back = Metrics.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    assert back.edp_pj_s == r.energy_pj * r.latency_s

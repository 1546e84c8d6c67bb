"""The discrete-event simulator against the analytical model, hand-computed
contention, full tile-by-tile simulation, and its failure modes."""

from __future__ import annotations

import math
import random

import pytest

# ------------------------------------------------------------------ toy inputs
from des_builders import (  # noqa: E402
    acc,
    gemm,
    one_level_arch,
    random_gemm_mapping,
    random_three_level,
    split,
    three_level_arch,
    two_level_arch,
    two_unit_maps,
    unary,
)

from mappers.mapping import LevelMapping, Mapping, MappingError, validate
from sim.analytical.model import evaluate
from sim.des.nest import build_nest
from sim.des.simulate import (
    DeadlockError,
    SimTimeLimitError,
    simulate,
    simulate_cascade,
    simulate_nests,
)
from workloads.errors import EinsimError
from workloads.ir import Einsum


def test_simulated_transfers_equal_analytical_access_counts_on_random_mappings():
    """Every tile the DES moves, summed, equals the analytical reuse analysis
    (reads, writes and updates per level and tensor) -- any loop order,
    partial-sum refetches and multicast included."""
    rng = random.Random(7)
    for _ in range(20):
        e, a, m = random_three_level(rng)
        an = evaluate(e, a, m)
        des = simulate(e, a, m, full_sim=True)
        for lv, per in an.accesses.items():
            for t, x in per.items():
                y = des.accesses[lv][t]
                for f in ("reads", "writes", "updates"):
                    assert getattr(y, f) == pytest.approx(getattr(x, f), rel=1e-9, abs=1e-9), (
                        lv,
                        t,
                        f,
                    )
                assert des.traffic_bytes[lv][t] == pytest.approx(an.traffic_bytes[lv][t], rel=1e-9)
        assert des.energy_breakdown_pj["DRAM"] == pytest.approx(
            an.energy_breakdown_pj["DRAM"], rel=1e-9
        )


# --------------------------------------- latency where the analytical model is exact


def _one_level_case(rng: random.Random):
    M, N, K = (rng.choice([16, 32, 64, 128]) for _ in range(3))
    pes = rng.choice([1, 2, 4, 8])
    e = gemm(M, N, K)
    a = one_level_arch(rng.choice([0.5, 2.0, 8.0, 64.0, 1e4]), pes)
    m = Mapping(
        "gemm", (LevelMapping("DRAM", {"m": M, "n": N // pes, "k": K}, {"n": pes}),), unit="vec"
    )
    return e, a, m


def _streaming_case(rng: random.Random):
    """Two levels, output-stationary (no partial sums), the buffer's ports
    never the bottleneck, and every tile small (each transfer <= 0.25% of
    the run), so fill and drain are negligible: the analytical overlap
    model is exact there."""
    while True:
        M, N, K = (rng.choice([32, 64, 128, 256]) for _ in range(3))
        pes = rng.choice([1, 2, 4, 8])
        e = gemm(M, N, K)
        a = two_level_arch(rng.choice([1.0, 2.0, 4.0, 8.0, 32.0, 128.0]), 1e5, pes)
        fm, fn = split(M, 2, rng), split(N // pes, 2, rng)
        if fm[0] * fn[0] < 64:
            continue
        m = Mapping(
            "gemm",
            (
                LevelMapping("DRAM", {"m": fm[0], "n": fn[0]}, order=tuple(rng.sample("mn", 2))),
                LevelMapping("Buffer", {"m": fm[1], "n": fn[1], "k": K}, {"n": pes}),
            ),
            unit="vec0",
        )
        try:
            validate(m, e, a)
        except MappingError:
            continue
        nest = build_nest(e, a, m)
        an = evaluate(e, a, m)
        biggest = max(b.transfer_bytes / nest.channel_bw[b.parent_rd] for b in nest.buffers)
        if biggest <= 0.0025 * an.cycles:
            return e, a, m


def test_des_matches_analytical_within_1pct_where_it_is_exact():
    rng = random.Random(11)
    cases = [_one_level_case(rng) for _ in range(12)] + [_streaming_case(rng) for _ in range(24)]
    worst = 0.0
    for e, a, m in cases:
        an = evaluate(e, a, m)
        des = simulate(e, a, m, full_sim=True)
        err = abs(des.cycles - an.cycles) / an.cycles
        worst = max(worst, err)
        assert err < 0.01, (m, an.cycles, des.cycles)
        for lv, per in an.traffic_bytes.items():
            for t, b in per.items():
                assert des.traffic_bytes[lv][t] == pytest.approx(b, rel=0.01)
    assert len(cases) >= 30
    print(f"\n{len(cases)} cases, worst latency error {worst:.3%}")


# ------------------------------------------------------------------ contention


def test_two_streams_on_one_channel_share_it_half_and_half():
    """Two independent Einsums on two units each stream 64 KiB in and out of
    DRAM. Alone each takes bytes/bw (+ one tile of fill); together each gets
    half the DRAM bandwidth, so the pair takes 2 x bytes/bw. The analytical
    model (per Einsum, overlapped on separate units) says bytes/bw."""
    M, tile, bw = 32768, 256, 4.0  # elements, elements per tile, B/cycle
    arch = two_level_arch(bw, 1e5, 1, units=2, rate=64.0)  # compute: 4 cycles per tile
    e1, e2 = unary("E1", "X1", "Y1", M), unary("E2", "X2", "Y2", M)
    maps = two_unit_maps(M, tile)
    nbytes = M * 2
    tile_cycles = tile * 2 / bw
    compute = tile / 64
    alone = simulate(e1, arch, maps["E1"], full_sim=True)
    # alone: the read stream is the bottleneck, then the last tile's compute
    # and write-back
    assert alone.cycles == pytest.approx(nbytes / bw + compute + tile_cycles, rel=1e-9)
    an = evaluate(e1, arch, maps["E1"])
    assert an.cycles == pytest.approx(nbytes / bw + tile_cycles, rel=0.01)

    class Casc:
        einsums = (e1, e2)

    both = simulate_cascade(Casc(), arch, maps, full_sim=True)
    # hand number: two read streams at bw/2 each: 2 x bytes / bw; then the
    # last tiles' compute and their two write-backs sharing the write port
    hand = 2 * nbytes / bw + compute + 2 * tile_cycles
    assert both.cycles == pytest.approx(hand, rel=1e-9)
    overlap_estimate = max(an.cycles, an.cycles)
    assert both.cycles > 1.9 * overlap_estimate
    # each unit computes M / 64 cycles of the run
    assert both.utilization["vec0"] == pytest.approx(M / 64 / both.cycles, rel=1e-3)


def test_dependent_einsums_run_one_after_another():
    M, tile = 4096, 256
    arch = two_level_arch(4.0, 1e5, 1, units=2, rate=64.0)
    e1, e2 = unary("E1", "X", "Y", M), unary("E2", "Y", "Z", M)
    maps = two_unit_maps(M, tile)

    class Casc:
        einsums = (e1, e2)

    both = simulate_cascade(Casc(), arch, maps, full_sim=True)
    one = simulate(e1, arch, maps["E1"], full_sim=True)
    assert both.cycles == pytest.approx(2 * one.cycles, rel=1e-9)


# ------------------------------------------------------------------ steady state


@pytest.mark.slow
def test_steady_state_extrapolation_within_1pct_of_full_simulation():
    rng = random.Random(3)
    checked = 0
    while checked < 4:
        e, a, m = random_three_level(rng, sizes=(128, 256))
        nest = build_nest(e, a, m)
        if not 5000 <= nest.steps <= 20000:
            continue
        full = simulate(e, a, m, full_sim=True)
        fast = simulate(e, a, m)
        note = fast.notes["steady_state"]
        assert note["used"] and not note["full_sim"]
        assert fast.cycles == pytest.approx(full.cycles, rel=0.01)
        assert fast.notes["events"] < full.notes["events"]
        for lv, per in full.traffic_bytes.items():
            for t, b in per.items():
                assert fast.traffic_bytes[lv][t] == pytest.approx(b, rel=1e-9)
        checked += 1


def test_steady_state_extrapolation_exact_on_a_periodic_stream():
    # a bandwidth-bound stream: the period is exactly tile bytes / bw
    M, tile, bw = 1 << 20, 64, 8.0
    arch = two_level_arch(bw, 1e5, 1, rate=64.0)
    e = unary("E", "X", "Y", M)
    m = Mapping(
        "E",
        (LevelMapping("DRAM", {"m": M // tile}), LevelMapping("Buffer", {"m": tile})),
        unit="vec0",
    )
    r = simulate(e, arch, m)
    assert r.notes["steady_state"]["used"]
    # reads are the bottleneck; then the last tile's compute and write-back
    assert r.cycles == pytest.approx(M * 2 / bw + tile / 64 + tile * 2 / bw, rel=1e-9)
    assert r.notes["events"] < 20_000  # 16K tiles x 3 events were not all simulated


# ------------------------------------------------------------ failure modes


def test_buffer_too_small_deadlocks_and_names_the_unit_and_tile():
    e = gemm(64, 64, 64)
    a = three_level_arch(gb_cap=1000)  # an A tile (16x16x2 B = 512 B) and a B tile do not both fit
    m = Mapping(
        "gemm",
        (
            LevelMapping("DRAM", {"m": 4, "n": 4, "k": 4}, order=("m", "n", "k")),
            LevelMapping("GlobalBuffer", {"k": 16}, {"m": 4, "n": 4}),
            LevelMapping("PE_RF", {"m": 4, "n": 4}),
        ),
        unit="pe_array",
    )
    with pytest.raises(MappingError):
        simulate(e, a, m)  # validation catches it first
    with pytest.raises(DeadlockError) as err:
        simulate(e, a, m, check=False, full_sim=True)
    msg = str(err.value)
    assert "pe_array" in msg and "GlobalBuffer" in msg and "step 0" in msg
    assert "too small" in msg
    assert isinstance(err.value, EinsimError)


def test_bound_on_simulated_time_stops_the_run():
    e, a, m = random_three_level(random.Random(5))
    with pytest.raises(SimTimeLimitError) as err:
        simulate(e, a, m, full_sim=True, max_cycles=100.0)
    assert "100 cycles" in str(err.value)


def test_default_bound_is_finite_and_above_the_result():
    from sim.des.simulate import default_bound

    e, a, m = random_three_level(random.Random(9))
    nest = build_nest(e, a, m)
    r = simulate_nests(a, [nest], full_sim=True)
    assert math.isfinite(default_bound([nest]))
    assert r.cycles < default_bound([nest])


def test_fused_intermediate_is_handed_over_on_chip():
    """With the intermediate resident in the buffer (a fused schedule), it
    never goes to DRAM: DRAM traffic drops by its write and its read, and
    the bandwidth-bound pair gets faster by that many bytes / bandwidth."""
    from types import SimpleNamespace

    M, tile, bw = 8192, 256, 4.0
    arch = two_level_arch(bw, 1e5, 1, units=2, rate=64.0)
    e1, e2 = unary("E1", "X", "Y", M), unary("E2", "Y", "Z", M)
    maps = two_unit_maps(M, tile)
    casc = SimpleNamespace(einsums=(e1, e2))
    unfused = simulate_cascade(casc, arch, maps, full_sim=True)
    sched = SimpleNamespace(order=("E1", "E2"), residency={"Y": "Buffer"}, binding={})
    fused = simulate_cascade(casc, arch, maps, schedule=sched, full_sim=True)
    assert unfused.traffic_bytes["DRAM"]["Y"] == pytest.approx(2 * M * 2)
    assert fused.traffic_bytes["DRAM"].get("Y", 0.0) == 0.0
    assert fused.traffic_bytes["DRAM"]["X"] == unfused.traffic_bytes["DRAM"]["X"]
    # unfused: E1 reads X and writes Y, then E2 reads Y and writes Z, each
    # bound by its read stream plus the last tile's compute and write-back;
    # fused: E1 only reads X (+ last compute), then E2 computes each tile
    # from the buffer and writes Z (first compute + the write stream). The
    # hand-over is at Einsum granularity (E2 starts when E1 is done).
    t_unfused = 2 * (M * 2 / bw + tile / 64 + tile * 2 / bw)
    assert unfused.cycles == pytest.approx(t_unfused, rel=1e-9)
    t_fused = (M * 2 / bw + tile / 64) + (tile / 64 + M * 2 / bw)
    assert fused.cycles == pytest.approx(t_fused, rel=1e-9)


def test_leaving_out_ports_that_never_limit_changes_no_result(monkeypatch):
    """The engine drops ports that can never limit a job (a speed-up); the
    simulated times must be identical with every port kept."""
    import sim.des.engine as engine

    rng = random.Random(13)
    cases = [random_three_level(rng) for _ in range(6)]
    fast = [simulate(e, a, m, full_sim=True).cycles for e, a, m in cases]
    monkeypatch.setattr(engine.Engine, "_drop_idle_ports", lambda self: None)
    slow = [simulate(e, a, m, full_sim=True).cycles for e, a, m in cases]
    assert fast == pytest.approx(slow, rel=1e-12)


@pytest.mark.slow
def test_steady_state_on_a_cascade_within_1pct_of_full_simulation():
    """A chain of two GEMMs on one unit (Z1 = A B, Z2 = Z1 C), each a long
    nest: extrapolated Einsum by Einsum and composed, within 1% of the full
    simulation."""
    from types import SimpleNamespace

    def mm(name, out, x, y, M, N, K):
        return Einsum(
            name, acc(out, "m", "n"), (acc(x, "m", "k"), acc(y, "k", "n")), "mul", "sum",
            (("m", M), ("n", N), ("k", K)),
        )  # fmt: skip

    a = three_level_arch(dram_bw=8.0, gb_bw=64.0)
    e1, e2 = mm("g1", "Z1", "A", "B", 256, 256, 128), mm("g2", "Z2", "Z1", "C", 256, 128, 256)

    def mp(name, tm, tn, tk):
        return Mapping(
            name,
            (
                LevelMapping("DRAM", {"m": tm[0], "n": tn[0], "k": tk[0]}, order=("m", "n", "k")),
                LevelMapping(
                    "GlobalBuffer",
                    {"m": tm[1], "n": tn[1], "k": tk[1]},
                    {"m": 4, "n": 4},
                    order=("n", "k", "m"),
                ),  # fmt: skip
                LevelMapping("PE_RF", {"m": tm[2], "n": tn[2], "k": tk[2]}),
            ),
            unit="pe_array",
        )

    maps = {
        "g1": mp("g1", (4, 8, 2), (4, 8, 2), (2, 16, 4)),
        "g2": mp("g2", (4, 8, 2), (2, 8, 2), (4, 8, 8)),
    }
    casc = SimpleNamespace(einsums=(e1, e2))
    fast = simulate_cascade(casc, a, maps)
    full = simulate_cascade(casc, a, maps, full_sim=True)
    assert fast.notes["steady_state"]["used"]
    assert fast.notes["events"] < full.notes["events"] / 3
    assert fast.cycles == pytest.approx(full.cycles, rel=0.01)
    for lv, per in full.traffic_bytes.items():
        for t, b in per.items():
            assert fast.traffic_bytes[lv][t] == pytest.approx(b, rel=1e-9)


def test_small_cascade_with_concurrent_units_is_simulated_in_full():
    """Per-Einsum extrapolation cannot see the contention of Einsums running
    together on different units; a small such cascade is simulated in full."""
    import hw_models
    from mappers.baselines.greedy import greedy_mapping
    from workloads import library

    arch = hw_models.load("fusemax_cloud")
    casc = library.build("attention-1pass", H=2, M=1024, P=1024)
    maps = {e.name: greedy_mapping(e, arch) for e in casc.einsums}
    fast = simulate_cascade(casc, arch, maps)
    note = fast.notes["steady_state"]
    assert note["full_sim"] and "concurrent" in note["reason"]
    full = simulate_cascade(casc, arch, maps, full_sim=True)
    assert fast.cycles == full.cycles


def test_random_unchecked_mappings_finish_or_fail_cleanly():
    """Mappings that overflow buffers (validation off) either simulate to a
    finite time or raise an EinsimError (deadlock); never a hang or a raw
    exception."""
    rng = random.Random(21)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(30):
        M, N, K = (rng.choice([16, 32]) for _ in range(3))
        e = gemm(M, N, K)
        a = three_level_arch(gb_cap=rng.choice([256, 1024, 4096, 1 << 20]))
        m = random_gemm_mapping(rng, M, N, K, buffer_order=False)
        try:
            r = simulate(e, a, m, check=False, full_sim=True)
        except EinsimError as exc:
            assert "deadlock" in str(exc)
            outcomes["error"] += 1
        else:
            assert math.isfinite(r.cycles) and r.cycles > 0
            assert r.macs == M * N * K
            outcomes["ok"] += 1
    assert outcomes["ok"] > 0 and outcomes["error"] > 0


def test_pipelined_fusion_overlaps_producer_and_consumer():
    """In a pipelined fusion group on two units, the consumer takes each tile
    as soon as the producer has made it: the pair takes one read stream plus
    the last tile's two computes and write-back (hand number), and the
    steady-state extrapolation gets the same number for a long stream."""
    from types import SimpleNamespace

    from mappers.schedule import FusionGroup

    tile, bw = 256, 4.0
    arch = two_level_arch(bw, 1e5, 1, units=2, rate=64.0)
    sched = SimpleNamespace(
        order=("E1", "E2"),
        residency={"Y": "Buffer"},
        binding={},
        groups=(FusionGroup(("E1", "E2"), keep_level="Buffer", pipelined=True),),
    )
    # the long stream (2 x 2^19 steps) is past the full-simulation budget
    # for concurrent cascades, so it is extrapolated
    for M, full in ((8192, True), (1 << 27, False)):
        e1, e2 = unary("E1", "X", "Y", M), unary("E2", "Y", "Z", M)
        maps = two_unit_maps(M, tile)
        casc = SimpleNamespace(einsums=(e1, e2))
        r = simulate_cascade(casc, arch, maps, schedule=sched, full_sim=full)
        hand = M * 2 / bw + tile / 64 + tile / 64 + tile * 2 / bw
        assert r.cycles == pytest.approx(hand, rel=1e-9)
        assert r.notes["steady_state"]["used"] == (not full)
        # both units busy the same share of the run
        assert r.utilization["vec0"] == pytest.approx(r.utilization["vec1"])

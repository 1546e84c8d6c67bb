"""The ILP plan: the kernel-grouping ILP, FlashAttention rediscovered, bandwidth-bound decode."""

from __future__ import annotations

import math
import random

import pytest

from mappers.cascade.gpu_groups import (
    GroupingProblem,
    KernelOption,
    brute_force,
    solve,
    solve_dp,
)
from mappers.schedule import ScheduleError
from sim.gpu import plans
from sim.gpu.model import resolve
from workloads import library

SPEC, PARAMS = resolve("h100")


def _random_problem(rng: random.Random, n: int) -> GroupingProblem:
    opts = [KernelOption(i, i + 1, rng.uniform(1, 10) * 1e-6, rng.uniform(1, 10) * 1e-6)
            for i in range(n)]  # fmt: skip
    for _ in range(3 * n):
        i = rng.randrange(n)
        j = rng.randrange(i + 1, min(n, i + 4) + 1)
        opts.append(KernelOption(i, j, rng.uniform(1, 12) * 1e-6 * (j - i) ** 0.5,
                                 rng.uniform(1, 10) * 1e-6))  # fmt: skip
    return GroupingProblem(n, tuple(opts))


@pytest.mark.parametrize("seed", range(8))
def test_grouping_ilp_equals_brute_force(seed: int) -> None:
    p = _random_problem(random.Random(seed), 7)
    exact = brute_force(p)
    ilp = solve(p)
    assert ilp.status == "OPTIMAL"
    assert ilp.objective_s == pytest.approx(exact.objective_s, rel=1e-6, abs=2e-8)


@pytest.mark.parametrize("seed", range(4))
def test_dp_is_exact_for_gpu_time_alone(seed: int) -> None:
    p = _random_problem(random.Random(100 + seed), 7)
    no_host = GroupingProblem(p.n, tuple(KernelOption(o.start, o.stop, o.gpu_s, 0.0)
                                         for o in p.options))  # fmt: skip
    assert solve_dp(no_host).gpu_s == pytest.approx(brute_force(no_host).gpu_s, rel=1e-12)
    assert solve(no_host).gpu_s == pytest.approx(solve_dp(no_host).gpu_s, rel=1e-6, abs=2e-8)


def test_grouping_ilp_never_worse_than_its_hint_and_rejects_gaps() -> None:
    p = _random_problem(random.Random(7), 9)
    hint = list(range(p.n))  # the first n options: one kernel per Einsum
    res = solve(p, hint=hint)
    single = GroupingProblem(p.n, p.options[: p.n])
    assert res.objective_s <= brute_force(single).objective_s + 1e-12
    with pytest.raises(ScheduleError, match="covers"):
        solve(GroupingProblem(3, (KernelOption(0, 1, 1e-6, 0), KernelOption(2, 3, 1e-6, 0))))


def _flash_io_bytes(b: int, h: int, n: int, d: int, br: int, bc: int, causal: bool) -> float:
    """FlashAttention's HBM accesses (Dao et al. 2022, Algorithm 1 / Theorem 2):
    Q read and O written once; K and V read once per query block of ``br`` rows
    (causal: only the key blocks of ``bc`` keys up to the block's last query)."""
    eb = 2
    q_blocks = math.ceil(n / br)
    if causal:
        kv_keys = sum(min(n, math.ceil(min(n, (i + 1) * br) / bc) * bc) for i in range(q_blocks))
    else:
        kv_keys = q_blocks * n
    return b * h * (2 * n * d * eb + 2 * kv_keys * d * eb)


def _query_block(d: int, bc: int, smem: float) -> int:
    """Largest power-of-two query block whose FlashAttention working set fits shared
    memory: Q_i (bf16), K_j and V_j (bf16), S_ij and O_i in fp32 (the paper's on-chip set)."""
    br = 1
    while (2 * br) * d * 2 + 2 * bc * d * 2 + (2 * br) * bc * 4 + (2 * br) * d * 4 <= smem:
        br *= 2
    return min(br, 256)


@pytest.mark.parametrize("causal", [0, 1])
@pytest.mark.parametrize(("d", "bc"), [(64, 128), (128, 64)])
@pytest.mark.parametrize("n", [1024, 4096, 16384, 65536])
def test_ilp_rediscovers_flash_attention(causal: int, d: int, bc: int, n: int) -> None:
    """One fused kernel; the score matrix never leaves the SM; its global-memory traffic
    is FlashAttention's IO count within 5%; not slower than the library SDPA."""
    b, h = 1, 32
    c = library.build("attention-1pass", B=b, H=h, E=d, F=d, M=n, P=n, M0=bc, causal=causal)
    m = plans.evaluate(c, "h100", plan="ilp")
    ks = m.notes["kernels"]
    assert [k["kind"] for k in ks] == ["fused"]
    br = _query_block(d, bc, SPEC.smem_bytes_per_sm)
    assert br == 128  # FlashAttention-2's forward block for both head dims
    closed = _flash_io_bytes(b, h, n, d, br, bc, bool(causal))
    assert m.traffic_bytes["L2"]["all"] == pytest.approx(closed, rel=0.05)
    # HBM: at least every input and output once (the scores never reach it)
    compulsory = b * h * 4 * n * d * 2
    hbm = sum(m.traffic_bytes["HBM"].values())
    assert compulsory <= hbm <= closed * 1.0001
    assert m.latency_s <= m.notes["ilp"]["library_s"]


@pytest.mark.parametrize(
    ("workload", "params"),
    [
        ("decoder-layer", {"model": "llama-7b", "seq": 2048, "rope": "0", "attention": "1pass"}),
        ("decoder-layer", {"model": "bert-large", "seq": 512, "batch": 8, "norm_position": "pre"}),
        ("decode-step", {"model": "llama-7b", "batch": 16, "kv_len": 2048}),
        ("decode-step", {"model": "mixtral", "batch": 4}),
    ],
)
def test_ilp_plan_is_never_slower_than_the_library_plan(workload: str, params: dict) -> None:
    c = library.build(workload, **params)
    lib = plans.evaluate(c, "h100")
    ilp = plans.evaluate(c, "h100", plan="ilp")
    assert ilp.latency_s <= lib.latency_s * (1 + 1e-9)
    assert ilp.notes["ilp"]["speedup_vs_library"] == pytest.approx(
        lib.latency_s / ilp.latency_s, rel=1e-6
    )
    names = sorted(n for k in ilp.notes["kernels"] for n in k["einsums"])
    assert names == sorted(e.name for e in c.einsums)


@pytest.mark.slow
def test_llama7b_decode_batch1_is_hbm_bandwidth_bound() -> None:
    """The IO-aware speed of light of one decode step (the ILP plan, replayed from a CUDA
    graph) reads the weights and the KV cache once: TPOT is (weights + KV) /
    (HBM bandwidth x the calibrated streaming efficiency) plus the timing
    model's separate per-kernel terms (sim/gpu/timing.py: each kernel's ramp
    and graph node, one graph launch), within 5%; never below the bound."""
    c = library.build("llm", model="llama-7b", phase="decode", batch=1, kv_len=2048)
    m = plans.evaluate(c, "h100", plan="ilp", timing="graph")
    llm = m.notes["llm"]
    # closed form: 6.74e9 parameters in bf16 (Touvron et al. 2023, Table 2) + the cache
    # of 32 layers x (K, V) x 4096 x 2048 positions x 2 bytes
    weights = 2 * 6.74e9
    assert llm["weights_bytes"] == pytest.approx(weights, rel=0.01)
    kv = 32 * 2 * 4096 * 2048 * 2
    assert llm["kv_cache_bytes"] == pytest.approx(kv, rel=0.001)
    bound = (weights + kv) / (SPEC.hbm_bandwidth_bytes_per_s * PARAMS.hbm_eff)
    fixed = m.notes["n_kernels"] * (PARAMS.kernel_ramp_s + PARAMS.graph_node_s)
    fixed += PARAMS.graph_launch_s
    assert bound < llm["tpot_s"] == pytest.approx(bound + fixed, rel=0.05)
    # eager PyTorch at batch 1 is far from it: launches and small kernels dominate
    eager = plans.evaluate(c, "h100").notes["llm"]["tpot_s"]
    assert eager > 1.3 * bound

"""GPU kernel model: closed forms, library mechanisms, API, CLI, monotonicity."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hw_models
from sim.gpu import attention as att
from sim.gpu.gemm_select import act_quant_bytes, tma_aligned
from sim.gpu.kernels import flash_cost
from sim.gpu.model import (
    KernelResult,
    KernelRow,
    evaluate_cascade,
    predict,
    predict_kernels,
    predict_row,
    resolve,
)
from sim.gpu.rows import to_batch
from sim.gpu.spec import GpuModelError, GpuParams, load_params
from sim.gpu.tiling import gemm_cost

H100 = hw_models.load("h100")
SPEC, PARAMS = resolve(H100)


def _gemm(m: int, n: int, k: int, dtype: str = "bf16", **kw) -> dict:
    return {"op": "gemm", "dtype": dtype, "M": m, "N": n, "K": k, **kw}


def _t(row: dict, arch=H100) -> float:
    return predict([row], arch)[0].time_s


def test_params_file_loads_with_provenance() -> None:
    import yaml

    p = load_params("h100")
    assert isinstance(p, GpuParams)
    doc = yaml.safe_load(Path("sim/gpu/params/h100.yaml").read_text())
    assert doc["fitted_on"] and doc["command"].startswith("python -m experiments.calibrate_gpu")
    assert doc["envelope"]["regions"], "the calibration envelope is stored with the parameters"
    # efficiencies are fractions of the datasheet peaks
    assert 0.3 < p.tensor_eff <= 1.0 and 0.5 < p.hbm_eff <= 1.0


# ------------------------------------------------------------ GEMM mechanisms


def test_tma_alignment_rule_closed_form() -> None:
    """TMA needs every leading dimension to be a multiple of 16 bytes."""
    eb = np.array([2.0])  # bf16
    cases = {
        # (N, K, layout): aligned?
        (4096, 4096, "NN"): True,
        (4096, 4095, "NN"): False,  # A's stride K: 8190 bytes
        (4100, 4096, "NN"): False,  # B's and C's stride N: 8200 bytes
        (4104, 4096, "NN"): True,  # 8208 = 16 x 513
        (4096, 4100, "TN"): False,  # weight [N, K]: stride K
        (4104, 4104, "TN"): True,
    }
    for (n, k, lay), want in cases.items():
        got = tma_aligned(np.array([n]), np.array([k]), eb, eb, np.array([lay]))[0]
        assert got == want, (n, k, lay)
    # fp32 operands (4 bytes): multiples of 4 elements suffice
    assert tma_aligned(
        np.array([4100]), np.array([4100]), np.array([4.0]), np.array([4.0]), np.array(["NN"])
    )[0]


def test_unaligned_gemm_falls_back_to_the_legacy_rate() -> None:
    """A compute-bound GEMM one element off alignment runs at
    legacy_mma_ratio of the TMA path (Luo et al. 2025: TMA 1.5x)."""
    ok = predict([_gemm(8192, 8192, 8192)])[0]
    off = predict([_gemm(8192, 8192, 8191)])[0]
    assert ok.detail["tma"] == 1.0 and off.detail["tma"] == 0.0
    ratio = off.kernel_s / ok.kernel_s
    assert ratio == pytest.approx(1 / PARAMS.legacy_mma_ratio, rel=0.05)
    # on a card without TMA (A100) alignment changes nothing
    a_spec, _ = resolve("a100")
    t1 = predict([_gemm(4096, 4096, 4096)], "a100")[0].kernel_s
    t2 = predict([_gemm(4096, 4096, 4095)], "a100")[0].kernel_s
    assert t2 / t1 == pytest.approx(1.0, rel=0.01)
    assert not a_spec.has_tma


def test_small_gemm_reads_operands_once() -> None:
    """Operands that fit in L2 are read from HBM exactly once (A + B)."""
    c = gemm_cost(1024, 1024, 1024, "bf16", SPEC, PARAMS)
    assert c.dram_read_bytes == pytest.approx(2 * 1024 * 1024 * 2)
    assert c.dram_write_bytes == pytest.approx(1024 * 1024 * 2)
    assert c.flops["tensor16"] == 2 * 1024**3


def test_large_gemm_time_near_compute_bound() -> None:
    """16384^3 bf16 takes at least FLOPs / datasheet peak, and not 2x more."""
    c = gemm_cost(16384, 16384, 16384, "bf16", SPEC, PARAMS)
    roof = 2 * 16384**3 / SPEC.tensor_rate("bf16")
    assert roof < c.t_kernel_s < 2 * roof


def test_split_k_only_while_tiles_leave_sms_idle() -> None:
    few = predict([_gemm(16, 1024, 16384)])[0]
    many = predict([_gemm(8192, 8192, 1024)])[0]
    assert few.detail["split_k"] > 1 and many.detail["split_k"] == 1


def test_l2_resident_weights_are_faster_than_cold() -> None:
    """Six copies of a 2 MB weight cycle through L2 (the public GEMM
    collectors' loop); one 512 MB weight cannot stay."""
    small = dict(_gemm(64, 1024, 1024), timing="graph", graph_ops=6)
    cold = predict([{**small, "n_sets": 0}])[0]
    warm = predict([{**small, "n_sets": 6}])[0]
    assert warm.dram_bytes_steady < 0.5 * cold.dram_bytes_steady
    assert warm.kernel_s < cold.kernel_s
    big = dict(_gemm(64, 16384, 16384), timing="graph")
    assert predict([{**big, "n_sets": 6}])[0].kernel_s == pytest.approx(
        predict([{**big, "n_sets": 0}])[0].kernel_s
    )


def test_fp8_quantisation_kernel_bytes_closed_form() -> None:
    """Activation quantisation of X[M, K] bf16: bytes per kind."""
    m, k = np.array([2048.0]), np.array([7168.0])
    x = 2048 * 7168
    rd, wr = act_quant_bytes(m, k, np.array(["dynamic"]))
    # amax pass + quantise pass read X (2 bytes each); fp8 out + 1 fp32 scale
    assert (rd[0], wr[0]) == (2 * 2 * x, x + 4)
    rd, wr = act_quant_bytes(m, k, np.array(["static"]))
    assert (rd[0], wr[0]) == (2 * x, x + 4)
    rd, wr = act_quant_bytes(m, k, np.array(["token"]))
    assert (rd[0], wr[0]) == (2 * x, x + 4 * 2048)
    rd, wr = act_quant_bytes(m, k, np.array(["group128"]))
    assert (rd[0], wr[0]) == (2 * x, x + 4 * 2048 * 56)
    # the GEMM with the quantisation timed adds those bytes and kernels
    base = dict(_gemm(2048, 4096, 7168, "fp8", layout="TN"), timing="graph", family="cublas")
    with_q = predict([{**base, "includes_act_quant": True, "act_quant": "dynamic"}])[0]
    without = predict([{**base, "includes_act_quant": False}])[0]
    assert with_q.n_kernels == without.n_kernels + 3  # memset, amax, quantise
    assert with_q.dram_bytes_steady - without.dram_bytes_steady == pytest.approx(2 * 2 * x + x + 4)
    assert with_q.time_s > without.time_s


def test_fp8_block_is_block_scaled_fp8() -> None:
    r = predict([dict(_gemm(4096, 4096, 4096, "fp8_block", layout="TN"), timing="graph")])[0]
    assert r.family == "deepgemm"
    bf = predict([dict(_gemm(4096, 4096, 4096, layout="TN"), timing="graph")])[0]
    assert r.kernel_s < bf.kernel_s  # fp8 tensor cores: twice the bf16 peak


def test_conv2d_is_implicit_gemm_and_pads_few_channels() -> None:
    row = {
        "op": "conv2d",
        "dtype": "bf16",
        "B": 8,
        "C": 64,
        "HW": 56,
        "Kc": 64,
        "R": 3,
        "stride": 1,
    }
    out, cost = predict_row(row, SPEC, PARAMS)
    assert cost.flops["tensor16"] == pytest.approx(2 * (8 * 56 * 56) * 64 * (64 * 9))
    s2, _ = predict_row({**row, "stride": 2}, SPEC, PARAMS)
    assert s2["pred_ms"] <= out["pred_ms"]
    # C = 3 (a first layer) does the MMA work of C = 8: 16-byte channel padding
    first = {
        "op": "conv2d",
        "dtype": "bf16",
        "B": 64,
        "C": 3,
        "HW": 224,
        "Kc": 64,
        "R": 7,
        "stride": 2,
    }
    eight = {**first, "C": 8}
    k3 = predict([first])[0]
    k8 = predict([eight])[0]
    assert k3.kernel_s > 0.6 * k8.kernel_s  # far more than the 3/8 of the work


# ------------------------------------------------------------ attention


def _fa3_splits_reference(b: int, hkv: int, n: int, block_n: int, sms: int = 132) -> int:
    """FA3's static heuristic (batch 1) and dynamic split, written out."""
    n_blocks = math.ceil(n / block_n)
    total = hkv  # one m block
    if total >= 0.8 * sms or n_blocks <= 4:
        static = 1
    else:
        mx = min(128, sms, n_blocks)
        effs = [(total * s / sms) / math.ceil(total * s / sms) for s in range(1, mx + 1)]
        best = max(effs)
        static = next(s for s in range(1, mx + 1) if effs[s - 1] >= 0.85 * best)
    per_sm = max(1, math.ceil(b * n_blocks * 1.1 * hkv / sms))
    return max(1, min(math.ceil(n_blocks / per_sm), static))


def test_split_kv_cta_counts_closed_form() -> None:
    """Decode CTAs = batch x KV heads x query blocks x KV splits, with FA3's
    split heuristic (hopper/heuristics.h, flash_prepare_scheduler.cu)."""
    for b, hkv, n in ((1, 8, 32768), (4, 8, 8192), (16, 8, 4096), (64, 1, 2048), (1, 1, 131072)):
        row = {
            "op": "attn_flash",
            "B": b,
            "H": 32,
            "Hkv": hkv,
            "M": 1,
            "N": n,
            "K": 128,
            "timing": "graph",
            "family": "fa3",
        }
        r = predict([row])[0]
        want = _fa3_splits_reference(b, hkv, n, 176)  # d=128, no paging: kBlockN 176
        assert r.detail["splits"] == want, (b, hkv, n)
        # GQA packed: one query block of the 4 (or 32) heads per KV head
        assert r.detail["ctas"] == b * hkv * 1 * want
    # FA2 (PyTorch SDPA): 2 x SMs in its heuristic, 64-row blocks
    r = predict([{"op": "attn_flash", "B": 1, "H": 32, "Hkv": 8, "M": 1, "N": 32768, "K": 128}])[0]
    n_blocks = 32768 // 128
    effs = [(8 * s / 264) / math.ceil(8 * s / 264) for s in range(1, 129)]
    eligible = [
        s
        for s in range(1, 129)
        if s == 1 or math.ceil(n_blocks / s) != math.ceil(n_blocks / (s - 1))
    ]
    best = max(effs[s - 1] for s in eligible)
    want = next(s for s in eligible if effs[s - 1] >= 0.85 * best)
    assert r.detail["splits"] == want and r.n_kernels == 2  # + the combine kernel


def test_decode_reads_the_kv_cache_once_and_scales_with_it() -> None:
    base = {
        "op": "attn_flash",
        "B": 16,
        "H": 32,
        "Hkv": 8,
        "M": 1,
        "K": 128,
        "timing": "graph",
        "family": "fa3",
    }
    small, big = predict([{**base, "N": 8192}, {**base, "N": 65536}])
    kv = 2 * 16 * 8 * 65536 * 128 * 2
    assert big.dram_bytes_steady == pytest.approx(kv, rel=0.05)
    assert 6 < big.kernel_s / small.kernel_s < 8.5
    # fp8 KV: half the bytes
    fp8 = predict([{**base, "N": 65536, "kv_dtype": "fp8"}])[0]
    assert fp8.dram_bytes_steady == pytest.approx(kv / 2, rel=0.05)


def test_trtllm_xqa_packs_any_group_up_to_32_heads() -> None:
    """TensorRT-LLM's XQA packs the query heads of one KV head for any group
    of at most 32 heads (12 and 24 included: its kernels are compiled for the
    group at run time), so its CTAs are batch x KV heads x 16-row query
    blocks x splits; a group of
    48 runs masked MHA, a CTA per query head that re-reads its KV head
    through L2 (docs/references.md, "TensorRT-LLM XQA")."""
    base = {"op": "attn_flash", "B": 8, "M": 1, "N": 16384, "K": 128, "family": "trtllm"}
    rows = [{**base, "H": 8 * g, "Hkv": 8} for g in (8, 12, 24, 32, 48)]
    r = predict(rows)
    for g, res in zip((8, 12, 24, 32), r[:4], strict=True):
        assert res.detail["ctas"] == 8 * 8 * math.ceil(g / 16) * res.detail["splits"], g
    assert r[4].detail["ctas"] == 8 * 8 * 48 * r[4].detail["splits"]
    # packed groups stream the cache once: within 10% of each other (the
    # queries and outputs grow with the group); the unpacked one is slower
    assert r[2].kernel_s < 1.1 * r[0].kernel_s
    assert r[4].kernel_s > 2.0 * r[3].kernel_s
    # a head dim above 256 also leaves XQA
    big_d = predict([{**base, "H": 64, "Hkv": 8, "K": 512}])[0]
    assert big_d.detail["ctas"] == 8 * 64 * big_d.detail["splits"]


def test_a_one_token_prompt_runs_the_kernel_its_library_picks() -> None:
    """``phase`` = prefill with ``M = N = 1`` is a one-token prompt.
    TensorRT-LLM picks its kernel by phase: the context FMHA, a CTA per
    sequence and query head (no GQA packing), where a decode step runs XQA
    (query heads packed per KV head, split over the keys). FlashAttention
    picks by shape: one query runs its decode path in either phase."""
    base = {"op": "attn_flash", "B": 256, "H": 64, "Hkv": 4, "M": 1, "N": 1, "K": 64}
    trt = {**base, "family": "trtllm", "timing": "graph"}
    prompt, step = predict([{**trt, "phase": "prefill"}, {**trt, "phase": "decode"}])
    assert prompt.detail["ctas"] == 256 * 64
    assert step.detail["ctas"] == 256 * 4 * step.detail["splits"]
    # 16,384 CTAs of fixed cost on 132 SMs: at least 124 rounds of attn_cta_s
    assert prompt.kernel_s >= math.ceil(256 * 64 / SPEC.sm_count) * PARAMS.attn_cta_s
    assert prompt.kernel_s > 5 * step.kernel_s
    fa3 = {**base, "family": "fa3", "timing": "graph"}
    a, b = predict([{**fa3, "phase": "prefill"}, {**fa3, "phase": "decode"}])
    assert a.time_s == b.time_s and a.detail == b.detail
    # without a phase, one query is a decode step
    assert predict([trt])[0].detail == step.detail


def test_causal_block_count_closed_form_matches_brute_force() -> None:
    import random

    def brute(m: int, n: int, br: int, bc: int) -> tuple[float, float]:
        tot = big = 0
        for i in range(math.ceil(m / br)):
            kv = min(n, math.ceil(((i + 1) * br + max(0, n - m)) / bc) * bc)
            tot += br * kv
            big = max(big, br * kv)
        return float(tot), float(big)

    rng = random.Random(7)
    for _ in range(300):
        m, n, bc = rng.randint(1, 3000), rng.randint(1, 3000), rng.choice((64, 128))
        t, lg = att.causal_kv_elems(np.array([m]), np.array([n]), np.array([128]), np.array([bc]))
        assert (t[0], lg[0]) == brute(m, n, 128, bc), (m, n, bc)


def test_flash_keeps_scores_on_chip_and_causal_halves_the_work() -> None:
    b, h, n, d = 2, 16, 4096, 64
    s_bytes = b * h * n * n * 2
    fl = flash_cost(b, h, n, n, d, False, "bf16", SPEC, PARAMS)
    assert fl.dram_read_bytes + fl.dram_write_bytes < s_bytes / 8
    full = flash_cost(2, 16, 8192, 8192, 128, False, "bf16", SPEC, PARAMS)
    causal = flash_cost(2, 16, 8192, 8192, 128, True, "bf16", SPEC, PARAMS)
    assert 0.45 < causal.t_kernel_s / full.t_kernel_s < 0.6


def test_pre_processing_kernels_when_included() -> None:
    base = {
        "op": "attn_flash",
        "B": 8,
        "H": 32,
        "Hkv": 8,
        "M": 1,
        "N": 4096,
        "K": 128,
        "timing": "graph",
        "family": "fa3",
    }
    plain = predict([base])[0]
    app = predict([{**base, "includes_kv_append": True}])[0]
    assert app.n_kernels == plain.n_kernels + 1
    trt = predict(
        [{**base, "family": "trtllm", "includes_kv_append": True, "includes_rope": True}]
    )[0]
    trt0 = predict([{**base, "family": "trtllm"}])[0]
    assert trt.n_kernels == trt0.n_kernels + 1  # rotary and append fused in one kernel


def test_xqa_hopper_kernel_does_its_own_pre_processing() -> None:
    """TensorRT-LLM's XQA Hopper kernel (supportConfigQGMMA: an fp8 KV cache,
    groups of 2..32 heads, head dims 16..256, 8..128-token pages, compute
    capability 9.0) applies RoPE and appends K and V itself, so the QKV
    pre-processing kernel does not run; a 16-bit cache (the HMMA kernel),
    a group of 1 or 48, a 256-token page or an A100 keep it. The work is
    still done: the step is slower than without pre-processing."""
    base = {"op": "attn_flash", "B": 32, "H": 32, "Hkv": 4, "M": 1, "N": 64, "K": 128}
    base |= {"timing": "graph", "family": "trtllm", "paged_kv_block": 64, "kv_dtype": "fp8"}
    pre = {"includes_kv_append": True, "includes_rope": True}

    def extra_kernels(row: dict, arch=H100) -> float:
        with_pre, without = predict([{**row, **pre}, row], arch)
        assert with_pre.kernel_s > without.kernel_s
        return with_pre.n_kernels - without.n_kernels

    assert extra_kernels(base) == 0
    assert extra_kernels({**base, "kv_dtype": "bf16"}) == 1
    assert extra_kernels({**base, "H": 4}) == 1  # one query head per KV head: MMHA
    assert extra_kernels({**base, "H": 192}) == 1  # a group of 48
    assert extra_kernels({**base, "paged_kv_block": 256}) == 1
    assert extra_kernels(base, hw_models.load("a100")) == 1


def test_trtllm_fp8_cache_runs_fp8_context_fmha() -> None:
    """TensorRT-LLM turns FP8 context FMHA on for an fp8 KV cache
    (``hasFp8KvCache() && use_paged_context_fmha``, paged context forced on
    for an fp8 cache): its prefill MMAs run in e4m3 and its QKV
    pre-processing writes Q in fp8. FA3 and a 16-bit cache keep the
    activations' type; decode steps are not context FMHA."""
    row = {"op": "attn_flash", "B": 2, "H": 32, "Hkv": 8, "M": 4096, "N": 4096, "K": 128}
    row |= {"causal": True, "timing": "kernel", "paged_kv_block": 64, "phase": "prefill"}
    cases = [
        ({"family": "trtllm", "kv_dtype": "fp8"}, "fp8"),
        ({"family": "trtllm", "kv_dtype": "bf16"}, "bf16"),
        ({"family": "fa3", "kv_dtype": "fp8"}, "bf16"),
    ]
    batch = to_batch([{**row, **c} for c, _ in cases])
    assert list(att.prefill_mma_dtype(batch.cols)) == [want for _, want in cases]
    # the fused pre-processing writes Q (tokens x H x d) in one byte, the
    # cache in its own type; a decode step writes Q in the activations' type
    tokens, h, hkv, d = 2 * 4096, 32, 8, 128
    pre = att.fused_qkv_preprocess_costs(batch.cols, SPEC, PARAMS)
    assert pre.dram_write[0] == tokens * h * d * 1 + 2 * tokens * hkv * d * 1
    assert pre.dram_write[1] == tokens * h * d * 2 + 2 * tokens * hkv * d * 2
    step = to_batch([{**row, **cases[0][0], "M": 1, "phase": "decode"}])
    step_pre = att.fused_qkv_preprocess_costs(step.cols, SPEC, PARAMS)
    assert step_pre.dram_write[0] == 2 * h * d * 2 + 2 * 2 * hkv * d * 1
    # compute-bound at 4K tokens: the fp8 kernel is faster, but by less than
    # the 2x of the tensor peaks (the fp8 operands' re-layout per score)
    fp8, bf16 = predict([{**row, **c} for c, _ in cases[:2]])
    assert 0.5 < fp8.kernel_s / bf16.kernel_s < 0.9


# ------------------------------------------------------------ timing conventions


def test_timing_conventions_are_separate_terms() -> None:
    row = _gemm(256, 256, 256)
    ev, gr, ke, lo = predict([{**row, "timing": t} for t in ("event", "graph", "kernel", "loop")])
    assert ke.time_s == pytest.approx(ke.kernel_s)
    # graph: kernel durations + a node gap per kernel + one graph launch
    assert gr.time_s == pytest.approx(gr.kernel_s + PARAMS.graph_node_s + PARAMS.graph_launch_s)
    # eager: host time (allocation + launch) and a launch gap per kernel
    host = 2 * PARAMS.host_op_s
    g = ke.kernel_s + PARAMS.launch_gap_s
    assert lo.time_s == pytest.approx(max(host, g))
    assert ev.time_s == pytest.approx(max(g, host + min(g, PARAMS.event_period_s)))
    assert ke.time_s < gr.time_s < ev.time_s
    # graph_ops share one graph launch
    six = predict([{**row, "timing": "graph", "graph_ops": 6}])[0]
    assert six.time_s == pytest.approx(gr.time_s - PARAMS.graph_launch_s * 5 / 6)


# ------------------------------------------------------------ cards


def test_other_cards_take_every_rate_from_their_preset() -> None:
    for name in ("h200", "a100", "b200"):
        arch = hw_models.load(name)
        spec, par = resolve(arch)
        assert par == PARAMS  # one parameter file, no per-card refit
        assert spec.sm_count == arch.params["sm_count"]
        assert spec.hbm_bandwidth_bytes_per_s == arch.params["hbm_bandwidth_bytes_per_s"]
        assert spec.tensor_rate("bf16") == arch.params["tensor_flops_per_s"]["bf16"]
        assert spec.tdp_w == arch.params["tdp_w"]


def test_h200_ratios_follow_its_hbm_and_compute_figures() -> None:
    """Same SMs and tensor rates, 4.8 vs 3.35 TB/s (datasheets): streaming
    kernels speed up by up to 3.35/4.8, compute-bound ones not at all."""
    hbm = 3.35 / 4.8
    cases = [
        (_gemm(16, 8192, 8192, timing="kernel"), hbm, 0.80),
        (_gemm(512, 4096, 4096, timing="kernel"), 0.85, 0.97),
        (_gemm(8192, 8192, 8192, timing="kernel"), 0.97, 1.0),
        (
            {
                "op": "attn_flash",
                "B": 16,
                "H": 32,
                "Hkv": 8,
                "M": 1,
                "N": 32768,
                "K": 128,
                "timing": "kernel",
                "family": "fa3",
            },
            hbm,
            0.80,
        ),
    ]
    for row, lo, hi in cases:
        r = _t(row, "h200") / _t(row, "h100")
        assert lo * 0.99 <= r <= hi * 1.001, (row, r)
    # A100: 312 vs 989 TFLOP/s bf16: a compute-bound GEMM about 3x slower
    r = _t(_gemm(8192, 8192, 8192), "a100") / _t(_gemm(8192, 8192, 8192))
    assert r == pytest.approx(989 / 312, rel=0.10)
    with pytest.raises(GpuModelError):
        predict([_gemm(64, 64, 64, "fp8")], "a100")  # no fp8 on A100


# ------------------------------------------------------------ envelope, API, errors


def test_envelope_flags_what_calibration_did_not_cover() -> None:
    inside = predict([dict(_gemm(4096, 4096, 4096, layout="TN"), timing="graph")])[0]
    assert not inside.out_of_envelope and inside.envelope_reason == ""
    conv = predict([{"op": "conv2d", "B": 8, "C": 64, "HW": 56, "Kc": 64, "R": 3}])[0]
    assert conv.out_of_envelope and "conv2d" in conv.envelope_reason
    huge = predict([dict(_gemm(10**6, 4096, 4096, layout="TN"), timing="graph")])[0]
    assert huge.out_of_envelope and "M outside" in huge.envelope_reason
    a100 = predict([_gemm(4096, 4096, 4096)], "a100")[0]
    assert a100.out_of_envelope and "compute capability" in a100.envelope_reason


def test_kernel_row_and_dict_give_the_same_result() -> None:
    row = KernelRow(op="attn_flash", B=4, H=32, Hkv=8, M=1, N=4096, K=128, timing="graph")
    a = predict([row])[0]
    b = predict([row.to_dict()])[0]
    assert isinstance(a, KernelResult) and a == b
    assert a.family == "fa3"  # the graph convention's default family
    assert predict([{**row.to_dict(), "timing": "event"}])[0].family == "fa2"


def test_predict_kernels_dataframe_and_rows_agree() -> None:
    import pandas as pd

    rows = [_gemm(512, 512, 512), _gemm(4096, 4096, 4096)]
    df = predict_kernels(pd.DataFrame(rows), H100)
    lst = predict_kernels(rows, H100)
    assert list(df["pred_ms"]) == pytest.approx([r["pred_ms"] for r in lst])
    assert df["pred_ms"].iloc[1] > df["pred_ms"].iloc[0]
    assert {"out_of_envelope", "envelope_reason", "pred_bound"} <= set(df.columns)


def test_bad_rows_raise_clear_errors() -> None:
    with pytest.raises(GpuModelError, match="unknown value 'matmul'"):
        predict([{"op": "matmul", "M": 1}])
    with pytest.raises(GpuModelError, match="column 'K'"):
        predict([_gemm(4, 4, "x")])
    with pytest.raises(GpuModelError, match="column 'dtype'"):
        predict([_gemm(4, 4, 4, "int4")])
    with pytest.raises(GpuModelError, match="column 'Hkv'"):
        predict([{"op": "attn_flash", "H": 32, "Hkv": 5, "M": 1, "N": 8, "K": 64}])
    with pytest.raises(GpuModelError, match="column 'timing'"):
        predict([{**_gemm(4, 4, 4), "timing": "wall"}])
    with pytest.raises(GpuModelError, match="row 1: column 'M'"):
        to_batch([_gemm(4, 4, 4), _gemm(-1, 4, 4)])
    attn = {"op": "attn_flash", "H": 8, "M": 4, "N": 8, "K": 64}
    with pytest.raises(GpuModelError, match=r"column 'phase': decode has one query \(M = 1\)"):
        predict([{**attn, "phase": "decode"}])
    with pytest.raises(GpuModelError, match="column 'phase': unknown value 'extend'"):
        predict([{**attn, "phase": "extend"}])
    with pytest.raises(GpuModelError, match="column 'phase': only attention rows"):
        predict([{**_gemm(4, 4, 4), "phase": "prefill"}])


SIZES = (1, 7, 16, 33, 127, 128, 129, 1000, 1024, 3071, 4096, 11008, 12289)


@pytest.mark.parametrize("dtype", ["bf16", "fp32", "tf32"])
def test_unseen_shapes_finite_and_monotone(dtype: str) -> None:
    """Odd sizes, skinny GEMMs: finite, positive, monotone in M, N, K (for a
    fixed alignment class: 16-byte aligned K and N or not)."""
    for shape in [(1, 4096, 4096), (37, 4097, 1023), (1000, 999, 1001), (8191, 129, 63)]:
        for axis in range(3):
            rows = []
            for s in SIZES:
                dims = list(shape)
                dims[axis] = s
                rows.append(_gemm(*dims, dtype=dtype))
            res = predict(rows)
            for r in res:
                assert math.isfinite(r.time_s) and r.time_s > 0 and math.isfinite(r.energy_pj)
            aligned = [r.detail["tma"] for r in res]
            t = [r.time_s for r in res]
            for i in range(1, len(t)):
                if aligned[i] == aligned[i - 1]:
                    assert t[i] >= t[i - 1] * (1 - 1e-9), (dtype, shape, axis, i)


def test_other_ops_monotone_in_size() -> None:
    for op in ("add", "gelu", "sum", "softmax", "layernorm", "rmsnorm", "silu_mul"):
        prev = 0.0
        for m in (1, 10, 1000, 10**5, 10**7):
            t = _t({"op": op, "M": m, "N": 1024})
            assert t >= prev
            prev = t
    prev = 0.0
    for n in (64, 100, 512, 2048, 4097, 16384):
        t = _t({"op": "attn_flash", "B": 1, "H": 8, "M": n, "N": n, "K": 128})
        assert t >= prev
        prev = t


def test_huge_shapes_are_fast_and_finite() -> None:
    import time

    rows = [
        {"op": "attn_flash", "B": 1, "H": 1, "M": 10**9, "N": 10**9, "K": 128, "causal": 1},
        _gemm(10**7, 10**7, 10**5),
        {"op": "softmax", "dtype": "fp32", "M": 10**9, "N": 10**5},
        {"op": "attn_flash", "B": 4096, "H": 128, "Hkv": 8, "M": 1, "N": 10**7, "K": 256},
    ]
    t0 = time.perf_counter()
    for r in predict(rows):
        assert math.isfinite(r.time_s) and math.isfinite(r.energy_pj)
    assert time.perf_counter() - t0 < 5.0


def test_cli_gpu_predict_columns_timing_and_errors(tmp_path: Path, capsys) -> None:
    import pandas as pd

    from experiments.cli import main

    inp = tmp_path / "in.csv"
    inp.write_text(
        "id,op,dtype,B,H,Hkv,M,N,K,causal,kv_dtype,paged_kv_block,layout,includes_act_quant,timing\n"
        "a,gemm,bf16,,,,4096,4096,4096,,,,,,\n"
        "b,gemm,fp8,,,,1024,4096,4096,,,,TN,1,graph\n"
        "c,attn_flash,bf16,8,32,8,1,8192,128,0,fp8,64,,,\n"
        "d,conv2d,bf16,8,,,,,,,,,,,\n"
    )
    out = tmp_path / "out.csv"
    assert main(["gpu-predict", "--kernels", str(inp), "--out", str(out), "--timing", "graph"]) == 0
    got = pd.read_csv(out)
    assert list(got["id"]) == ["a", "b", "c", "d"]
    assert list(got["pred_timing"]) == ["graph"] * 4  # --timing fills the empty cells
    assert got["out_of_envelope"].tolist() == [0, 0, 0, 1]
    assert "outside the calibration envelope" in capsys.readouterr().out
    ref = predict([dict(_gemm(4096, 4096, 4096), timing="graph")])[0]
    assert got["pred_ms"].iloc[0] == pytest.approx(ref.time_s * 1e3, rel=1e-5)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,op,dtype,M,N,K\na,gemm,bf16,4,4,4\nb,gemm,bf16,12x,4,4\n")
    assert main(["gpu-predict", "--kernels", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3:4" in err and "column 'M'" in err and "Traceback" not in err
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("id,M\na,4\n")
    assert main(["gpu-predict", "--kernels", str(nocol), "--out", str(out)]) == 2


def test_evaluate_cascade_maps_einsums_to_kernels() -> None:
    import workloads.library as lib

    g = evaluate_cascade(lib.build("gemm", M=4096, N=4096, K=4096), H100)
    direct = predict([_gemm(4096, 4096, 4096, timing="loop")])[0]
    assert g.model == "gpu"
    assert g.latency_s == pytest.approx(direct.time_s, rel=1e-9)
    attn = lib.build("attention-3pass", B=2, H=16, M=4096, P=4096, E=64, F=64)
    fused = evaluate_cascade(attn, H100, fused=True)
    unfused = evaluate_cascade(attn, H100, fused=False)
    s_bytes = 2 * 16 * 4096 * 4096 * 2
    assert (
        sum(fused.traffic_bytes["HBM"].values())
        < s_bytes
        < sum(unfused.traffic_bytes["HBM"].values())
    )
    assert fused.latency_s < unfused.latency_s


def test_measure_script_imports_parses_and_lists_suites_without_torch() -> None:
    code = (
        "import sys, experiments.measure_gpu_kernels as m;"
        "a = m.parse_args(['--out', 'x', '--ops', 'gemm']);"
        "assert a.ops == 'gemm';"
        "assert m.main(['--out', 'x', '--dry-run', '--ids', 'k005']) == 0;"
        "assert m.main(['--out', 'x', '--dry-run', '--suite', 'issue15', '--timing', 'event,graph']) == 0;"
        "assert 'torch' not in sys.modules and 'pynvml' not in sys.modules"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "k005" in r.stdout and " graph " in r.stdout


def test_measure_suites_cover_unaligned_gqa_decode_and_fp8() -> None:
    from experiments.measure_gpu_kernels import COLUMNS, suite_rows

    rows = suite_rows("issue15")
    unaligned = [r for r in rows if r["op"] == "gemm" and r["dtype"] == "bf16"]
    assert any(int(r["K"]) % 8 for r in unaligned) and any(int(r["N"]) % 8 for r in unaligned)
    decode = [r for r in rows if r["op"] == "attn_flash"]
    assert all(r["M"] == "1" for r in decode) and {int(r["Hkv"]) for r in decode} >= {1, 8}
    assert max(int(r["N"]) for r in decode) >= 131072
    fp8 = [r for r in rows if r["dtype"] == "fp8"]
    assert {r["includes_act_quant"] for r in fp8} == {"0", "1"}
    # the model reads every row the script writes
    for col in ("timing", "graph_ops", "Hkv", "kv_dtype", "layout", "includes_act_quant"):
        assert col in COLUMNS
    res = predict([{k: v for k, v in r.items() if k != "id"} for r in rows])
    assert all(math.isfinite(x.time_s) for x in res)


def test_measure_script_reproduces_h100_flops_and_bytes() -> None:
    """The script's FLOP and byte counts equal the columns of the H100 file."""
    import csv

    from experiments.measure_gpu_kernels import DEFAULT_KERNELS, shapes

    with DEFAULT_KERNELS.open() as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        s = shapes(r)
        assert s["flops"] == float(r["flops"]), r["id"]
        assert s["min_bytes"] == float(r["min_bytes"]), r["id"]


def test_host_time_is_host_op_s_times_counted_host_operations() -> None:
    from sim.gpu.spec import HOST_OPS

    fl, mm, cp = predict(
        [
            {"op": "attn_flash", "B": 2, "H": 16, "M": 512, "N": 512, "K": 64},
            _gemm(512, 512, 512),
            {"op": "copy", "M": 1 << 20, "N": 1},
        ]
    )
    assert fl.host_s == pytest.approx(HOST_OPS["sdpa"] * PARAMS.host_op_s)
    assert mm.host_s == pytest.approx(HOST_OPS["cublas"] * PARAMS.host_op_s)
    assert cp.host_s == pytest.approx(HOST_OPS["copy"] * PARAMS.host_op_s)
    assert PARAMS.event_period_s == pytest.approx(2 * PARAMS.host_op_s, rel=1e-5)


def test_every_combination_of_families_and_conventions_predicts() -> None:
    rows = []
    for fam, t in itertools.product(
        ("fa2", "fa3", "trtllm", "triton"), ("event", "graph", "kernel", "loop")
    ):
        for m in (1, 2048):
            rows.append(
                {
                    "op": "attn_flash",
                    "B": 4,
                    "H": 32,
                    "Hkv": 8,
                    "M": m,
                    "N": 2048,
                    "K": 128,
                    "family": fam,
                    "timing": t,
                    "causal": int(m > 1),
                }
            )
    for fam, dt in (
        ("cublas", "fp8"),
        ("cutlass", "fp8"),
        ("deepgemm", "fp8_block"),
        ("cutlass", "fp8_block"),
    ):
        rows.append(
            dict(
                _gemm(1024, 4096, 4096, dt, layout="TN"),
                family=fam,
                includes_act_quant=True,
                timing="graph",
            )
        )
    for op in ("kv_append", "rotary", "act_quant"):
        rows.append({"op": op, "B": 8, "M": 128, "N": 4096, "H": 32, "Hkv": 8, "K": 128})
    for r in predict(rows):
        assert (
            math.isfinite(r.time_s)
            and r.time_s > 0
            and r.bound in ("compute", "memory", "latency", "host")
        )

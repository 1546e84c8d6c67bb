"""Lowering cascades to GPU kernels: regions, the library and fused plans, the timeline."""

from __future__ import annotations

import math

import pytest

from sim.gpu import lowering, plans, timeline
from sim.gpu.energy import gpu_time_s, host_time_s, median_time_s
from sim.gpu.kernels import kernel_cost
from sim.gpu.llm import format_report, tp_degree
from sim.gpu.model import resolve
from sim.gpu.regions import find_regions
from sim.gpu.spec import HOST_OPS, GpuModelError
from workloads import library

SPEC, PARAMS = resolve("h100")


# ------------------------------------------------------------------ timeline


@pytest.mark.parametrize("host_ops", [1, 2, 5])
@pytest.mark.parametrize("gpu_us", [1.0, 8.0, 20.0, 40.0, 400.0])
def test_event_loop_of_one_kernel_is_the_calibrated_single_call_formula(
    host_ops: int, gpu_us: float
) -> None:
    """The measurement-loop simulation reproduces median = max(G, h + min(G, e))."""
    cost = lowering.with_host(kernel_cost({"op": "copy", "M": 1, "N": 1}, SPEC, PARAMS), "copy")
    cost = lowering.replace(cost, t_kernel_s=gpu_us * 1e-6)
    cost = lowering.with_host(cost, *(["copy"] * host_ops))
    st = [timeline.Step(host_time_s(cost, PARAMS), gpu_time_s(cost, PARAMS))]
    assert timeline.event_median_s(st, PARAMS.event_period_s) == pytest.approx(
        median_time_s(cost, PARAMS), rel=1e-9
    )


def test_timeline_host_bound_and_gpu_bound_closed_forms() -> None:
    # 20 short kernels: the GPU waits for each launch; the forward ends one GPU
    # time after the last launch
    short = [timeline.Step(5e-6, 1e-6)] * 20
    assert timeline.forward_s(short) == pytest.approx(20 * 5e-6 + 1e-6)
    assert timeline.loop_s(short) == pytest.approx(20 * 5e-6)
    # 20 long kernels: the host runs ahead; only the first launch shows
    long = [timeline.Step(5e-6, 100e-6)] * 20
    assert timeline.forward_s(long) == pytest.approx(5e-6 + 20 * 100e-6)
    assert timeline.loop_s(long) == pytest.approx(20 * 100e-6)
    # a sync makes the host wait: the next launch starts after the synced kernel
    synced = [timeline.Step(5e-6, 100e-6, sync=True), timeline.Step(5e-6, 1e-6)]
    assert timeline.forward_s(synced) == pytest.approx(5e-6 + 100e-6 + 5e-6 + 1e-6)


# ------------------------------------------------------------ library plan

#: the measured layer (issue 16): x -> norm -> QKV GEMM [T, 3h] -> SDPA ->
#: output GEMM -> + x -> norm -> FFN -> + x, no rotary embedding
LLAMA = {"model": "llama-7b", "rope": "0", "norm_position": "pre"}
BERT = {"model": "bert-large", "norm_position": "pre"}


def _plan(workload: str, **p):
    return lowering.library_plan(library.build(workload, **p), SPEC, PARAMS)


def test_llama_layer_is_the_eager_pytorch_kernel_sequence() -> None:
    T, h, f = 2 * 256, 4096, 11008
    plan = _plan("decoder-layer", batch=2, seq=256, **LLAMA)
    kinds = [k.kind for k in plan.kernels]
    assert kinds == [
        "norm", "gemm", "attention", "gemm", "eltwise", "norm", "gemm", "eltwise", "eltwise",
        "gemm", "eltwise",
    ]  # fmt: skip
    gemms = [k.row for k in plan.kernels if k.kind == "gemm"]
    assert [(g["M"], g["N"], g["K"]) for g in gemms] == [
        (T, 3 * h, h),
        (T, h, h),
        (T, 2 * f, h),
        (T, h, f),
    ]
    att = next(k.row for k in plan.kernels if k.kind == "attention")
    assert (att["B"], att["H"], att["M"], att["N"], att["K"], att["causal"]) == (
        2, 32, 256, 256, 128, 1,
    )  # fmt: skip
    # host operations counted from the PyTorch source (sim/gpu/spec.py HOST_OPS):
    # 2 rms_norm, 4 matmul, 1 SDPA, 2 out-of-place adds, silu, mul
    ops = 2 * HOST_OPS["rmsnorm"] + 4 * HOST_OPS["cublas"] + HOST_OPS["sdpa"]
    ops += 4 * HOST_OPS["eltwise"]
    got = sum(host_time_s(k.cost, PARAMS) for k in plan.kernels) / PARAMS.host_op_s
    assert got == pytest.approx(ops)


def test_bert_and_gpt_layers_have_ten_kernels() -> None:
    for p in (BERT, {"model": "gpt3", "rope": "0"}):
        plan = _plan("decoder-layer", batch=1, seq=128, **p)
        kinds = [k.kind for k in plan.kernels]
        assert kinds.count("gemm") == 4 and kinds.count("norm") == 2
        assert kinds.count("attention") == 1 and len(kinds) == 10
        norm = next(k.row for k in plan.kernels if k.kind == "norm")
        assert norm["op"] == "layernorm"


def test_library_costs_are_the_kernel_model_rows() -> None:
    """Each library kernel costs exactly what the kernel model says for its row."""
    plan = _plan("decoder-layer", batch=1, seq=512, **LLAMA)
    for k in plan.kernels:
        if k.row:
            assert k.cost.t_kernel_s == pytest.approx(kernel_cost(k.row, SPEC, PARAMS).t_kernel_s)


def test_gpu_bound_layer_time_is_the_sum_of_kernel_times() -> None:
    """A prefill layer runs GPU-bound: the events bracket the GPU time of all kernels."""
    c = library.build("decoder-layer", batch=1, seq=2048, **LLAMA)
    m = plans.evaluate(c, "h100")
    busy = sum(gpu_time_s(k.cost, PARAMS) for k in lowering.library_plan(c, SPEC, PARAMS).kernels)
    assert m.latency_s == pytest.approx(busy, rel=1e-6)
    assert m.notes["host_s"] < busy


def test_decode_attention_gqa_rows_and_untimed_append() -> None:
    c = library.build("decode-step", model="llama-3-8b", batch=4, kv_len=1024)
    plan = lowering.library_plan(c, SPEC, PARAMS)
    att = next(k.row for k in plan.kernels if k.kind == "attention")
    # one query per sequence, 32 query heads over 8 KV heads (the kernel model packs them)
    assert (att["B"], att["H"], att["Hkv"], att["M"], att["N"]) == (4, 32, 8, 1, 1024)
    appends = [k for k in plan.kernels if k.kind == "kv_append"]
    assert len(appends) == 2 and not any(k.timed for k in appends)
    with_append = plans.evaluate(c, "h100")
    without = plans.evaluate(c, "h100", include_append=False)
    assert with_append.notes["n_kernels"] == without.notes["n_kernels"] + 2


@pytest.mark.parametrize(
    ("workload", "params", "dims"),
    [
        ("decoder-layer", {"model": "llama-3-8b", "seq": 256, "attention": "1pass"},
         {"N": 256, "M": 256, "H": 32, "Hkv": 8, "D": 128, "causal": True, "key_parts": 1}),
        ("decode-step", {"model": "mixtral", "batch": 2, "new_tokens": 3, "kv_len": 64},
         {"N": 64, "M": 3, "H": 32, "Hkv": 8, "D": 128, "causal": False, "key_parts": 2}),
        ("attention-3pass", {"B": 2, "H": 4, "M": 64, "P": 32},
         {"N": 64, "M": 32, "H": 4, "Hkv": 4, "D": 64, "causal": False, "key_parts": 1}),
        ("attention-1pass", {"H": 4, "M": 64, "P": 64, "M0": 16, "causal": 1},
         {"N": 64, "M": 64, "H": 4, "Hkv": 4, "D": 64, "causal": True, "key_parts": 1}),
    ],
)  # fmt: skip
def test_attention_regions_in_every_form(workload: str, params: dict, dims: dict) -> None:
    c = library.build(workload, **params)
    att = [r for r in find_regions(c) if r.kind == "attention"]
    assert len(att) == 1
    assert {k: att[0].dims[k] for k in dims} == dims
    # the region covers the whole softmax chain: no Einsum of it is left over
    left = [r.kind for r in find_regions(c) if r.kind == "eltwise" and r.einsums[0] in (
        "MX", "SN", "SD", "A", "LM", "RM", "MC", "EC", "DS", "OS")]  # fmt: skip
    assert not left


def test_moe_layer_library_kernels_per_expert() -> None:
    c = library.build("decoder-layer", model="mixtral", seq=64, batch=2)
    plan = lowering.library_plan(c, SPEC, PARAMS)
    moe = [k for k in plan.kernels if k.kind == "moe"]
    # router + 6 shared calls + 8 experts x (where, gather, 3 GEMMs, act, mul, gate, index_add)
    assert len(moe) == 1 + 6 + 8 * 9
    assert sum(k.sync for k in moe) == 8
    gemm = next(k.row for k in moe if k.name == "moe.e0.L0_G1" or k.name.endswith(".FG"))
    # load-balanced: 128 tokens x top-2 / 8 experts
    assert gemm["M"] == 128 * 2 // 8 and gemm["K"] == 4096


def test_fused_plan_fuses_epilogues_and_norms() -> None:
    c = library.build("llm", model="llama-7b", phase="decode", batch=1, kv_len=256, layers=2)
    lib = lowering.library_plan(c, SPEC, PARAMS)
    fused = lowering.fused_plan(c, SPEC, PARAMS)
    per_layer = [k for k in fused.kernels if k.layer == "1"]
    # norm(+add), QKV, attention (+rotary, append), O, add+norm, gate|up+SwiGLU, down
    assert len(per_layer) == 7
    assert len(fused.kernels) < len(lib.kernels)
    # every Einsum is in exactly one kernel
    for p in (lib, fused):
        names = [n for k in p.kernels for n in k.einsums]
        assert sorted(names) == sorted(e.name for e in c.einsums)
    m_f, m_l = plans.evaluate(c, "h100", plan="fused"), plans.evaluate(c, "h100")
    assert m_f.latency_s < m_l.latency_s


def test_llm_report_memory_and_tensor_parallel_message() -> None:
    c = library.build("llm", model="llama-2-70b", phase="decode", batch=8, kv_len=4096, layers=2)
    m = plans.evaluate(c, "h100")
    llm = m.notes["llm"]
    # the cascade has 2 layers: weights of 2 layers + embedding, head and norms
    per_layer = 8192 * (8192 * 2 + 1024 * 2) + 3 * 8192 * 28672 + 2 * 8192
    expect_w = 2 * (2 * per_layer + 2 * 32000 * 8192 + 8192)
    assert llm["weights_bytes"] == pytest.approx(expect_w, rel=1e-9)
    kv = 2 * 2 * 8 * 8 * 128 * 4096 * 2  # layers x (K, V) x batch x KV heads x dim x len x bytes
    assert llm["kv_cache_bytes"] == pytest.approx(kv, rel=1e-9)
    assert llm["fits"] and llm["tokens_per_s"] == pytest.approx(8 / llm["tpot_s"])
    full = plans.evaluate(
        library.build("llm", model="llama-2-70b", phase="decode", batch=1, kv_len=512), "h100"
    )
    assert not full.notes["llm"]["fits"] and full.notes["llm"]["tp_needed"] == 2
    text = format_report(full)
    assert "TP=2" in text and "does NOT fit" in text
    assert tp_degree(300e9, 80e9) == 4 and tp_degree(10e9, 80e9) == 1


def test_ttft_and_energy_per_token() -> None:
    c = library.build("llm", model="llama-7b", phase="prefill", batch=2, seq=128, layers=1)
    m = plans.evaluate(c, "h100")
    llm = m.notes["llm"]
    assert llm["ttft_s"] == pytest.approx(m.notes["forward_s"])
    assert llm["energy_per_token_j"] == pytest.approx(m.energy_pj * 1e-12 / 256)
    assert math.isclose(sum(r["gpu_s"] for r in m.notes["kernels"]), m.notes["gpu_busy_s"])


def test_h200_is_faster_on_memory_bound_decode_from_its_preset() -> None:
    c = library.build("decode-step", model="llama-7b", batch=64, kv_len=4096, rope="0")
    t100 = plans.evaluate(c, "h100", include_append=False).latency_s
    t200 = plans.evaluate(c, "h200", include_append=False).latency_s
    assert t200 < t100


def test_bad_plan_and_bad_input() -> None:
    c = library.build("gemm", M=64, N=64, K=64)
    with pytest.raises(GpuModelError, match="unknown GPU plan"):
        plans.evaluate(c, "h100", plan="tensorrt")
    with pytest.raises(GpuModelError, match="a cascade or an Einsum"):
        plans.evaluate("gemm", "h100")
    m = plans.evaluate(c, "h100")
    assert m.notes["n_kernels"] == 1 and m.model == "gpu"
    # a lone Einsum is its own one-kernel cascade: the same numbers
    one = plans.evaluate(c.einsums[0], "h100")
    assert one.latency_s == m.latency_s and one.energy_pj == m.energy_pj


def test_timeline_figure() -> None:
    from sim.gpu.llm import timeline_figure

    m = plans.evaluate(library.build("decoder-layer", seq=64, **LLAMA), "h100")
    fig = timeline_figure(m)
    gpu_bars = sum(len(t.x) for t in fig.data if t.name != "host launch")
    assert gpu_bars == m.notes["n_kernels"]

"""Attention kernels by family: prefill, split-KV decode, KV append, rotary.

Shapes: ``B`` sequences, ``H`` query heads, ``Hkv`` KV heads (GQA/MQA:
``H / Hkv`` query heads per KV head), ``M`` queries and ``N`` keys per
sequence, head dim ``d`` (the ``K`` column), ``causal``; activations in
``dtype``, the KV cache in ``kv_dtype``; ``paged_kv_block`` tokens per
page (0: contiguous).

**Prefill families** (one flash kernel; S and P never reach HBM):

* ``fa2``: FlashAttention-2 (PyTorch SDPA's flash backend). CTAs of
  ``Br`` queries (``Flash_fwd_kernel_traits<64,128,128,4>`` and
  ``<128,128,64,4>`` in experiments/data/h100/traffic_ncu.csv), 2 per SM,
  over B x H x query blocks; mma.sync at ``flash_mma_eff`` of the tensor
  peak and the online softmax on the CUDA cores one after the other.
* ``fa3``: FlashAttention-3 (vLLM, SGLang). wgmma at ``fa3_mma_eff`` with the
  softmax overlapped (warp-specialised ping-pong: per score element the
  larger of the two); tiles from ``hopper/tile_size.h`` (``tile_size_fwd_sm90``:
  192x128/192 for d <= 64, 128x128/176 for d <= 128, ...; paged KV whose page
  is not a multiple of the tile's keys loads without TMA and takes the
  smaller tile); a persistent scheduler with longest-first order for
  causal masks; GQA heads packed per KV head when the query blocks are short
  (``should_pack_gqa``).
* ``trtllm``: TensorRT-LLM's context FMHA (Hopper warp-specialised wgmma
  kernels), costed as ``fa3`` but with a CTA per query head: its grid is
  query blocks x heads x sequences, with no GQA packing (a one-token prompt
  of B sequences and H heads is B x H CTAs of fixed cost each). With an fp8
  KV cache it runs in fp8 (:func:`prefill_mma_dtype`).

fp8 main loops (FA3 with fp8 inputs, TensorRT-LLM's FP8 context FMHA) run at
the fp8 peak with the family's efficiency, plus ``fp8_attn_ops`` per score
element for the operands' re-layout (FlashAttention-3, section 3.3).
* ``triton``: SGLang's Triton kernels, wgmma without warp specialisation:
  ``fa3``'s tiles with the softmax after the MMAs, a CTA per query head.

Causal masks: query block i visits keys up to its diagonal
(:func:`causal_kv_elems`, closed form).

**Decode** (``M = 1``): split-KV flash-decoding. CTAs over batch x KV heads
x query blocks x KV splits, the query heads of one KV head packed into one
block of rows (FlashAttention-2's ``seqlenq_ngroups_swapped``, FA3's
PackGQA), padded up to the tile's rows; the number of splits from each
library's heuristic (:func:`num_splits`: FlashAttention's
``num_splits_heuristic``, FA3's dynamic per-batch split of
``prepare_varlen_num_blocks``, TensorRT-LLM's multi-block mode, SGLang
Triton's fixed 8); then a combine kernel reduces the splits' fp32 partial
outputs and log-sum-exps. The KV cache streams from HBM (from L2 when a
timing loop keeps one cache resident, ``n_sets``), at most
``sm_stream_bytes_per_s`` per busy SM.

**Included pre-processing** (``includes_kv_append``, ``includes_rope``):
the KV-cache append (vLLM ``reshape_and_cache_flash``, SGLang's KV-buffer
store: one kernel, a block per token) and rotary embedding (one kernel);
TensorRT-LLM fuses both into one QKV pre-processing kernel. A KV cache in
fp8 read by FA3 with bf16 activations adds the query's fp8 quantisation
(one kernel: FA3 takes q, k, v in one dtype).
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from sim.gpu.costs import Costs, costs
from sim.gpu.memory import l2_resident, retained, stream_bw
from sim.gpu.rows import DTYPE_BYTES
from sim.gpu.spec import GpuParams, GpuSpec

#: SGLang's Triton decode splits the KV of each sequence in this many parts
#: (--triton-attention-num-kv-splits default, sglang server_args)
TRITON_KV_SPLITS = 8
#: TensorRT-LLM multi-block mode: at least this many keys per block
#: (assumption: the XQA/MMHA kernels' 64-token chunk granularity)
TRTLLM_BLOCK_KEYS = 64
#: largest query-head group TensorRT-LLM's XQA kernels pack, and their head
#: dims: any group of at most 32 heads (powers of two or not), head dims that
#: are multiples of 16 from 16 to 256 (``jit::supportConfigHMMA`` and
#: ``supportConfigQGMMA``, docs/references.md "TensorRT-LLM XQA")
XQA_MAX_GROUP = 32
XQA_MAX_HEAD_DIM = 256
#: FlashAttention's split heuristic: at most this many splits
MAX_SPLITS = 128
#: KV-cache page sizes (tokens) TensorRT-LLM's Hopper XQA kernel accepts
#: (``supportConfigQGMMA``, docs/references.md "TensorRT-LLM XQA")
QGMMA_PAGE_TOKENS = (8.0, 16.0, 32.0, 64.0, 128.0)


def trtllm_qgmma(cols: dict[str, np.ndarray], spec: GpuSpec) -> np.ndarray:
    """Rows a TensorRT-LLM decode step runs on XQA's Hopper warp-specialised
    kernel (``supportConfigQGMMA``): compute capability 9.0, 16-bit
    activations, an fp8 KV cache (a 16-bit cache takes the Ampere-style
    HMMA kernel), query-head groups of 2..32, head dims 16..256 in steps of
    16, paged in 8..128-token pages. That kernel also applies the rotary
    embedding and appends the new K and V itself (``appliesRoPEInXqaKernel``:
    "unsupported shapes fall back to invokeQKVPreprocessing"), so the
    separate pre-processing kernel does not run."""
    h, hkv, d = (cols[c].astype(np.float64) for c in ("H", "Hkv", "K"))
    qpk = h / hkv
    paged = cols["paged_kv_block"].astype(np.float64)
    page_ok = (paged == 0) | np.isin(paged, QGMMA_PAGE_TOKENS)
    return (
        (_physics_family(cols["family"]) == "trtllm")
        & (np.asarray(cols["kv_dtype"]) == "fp8")
        & np.isin(np.asarray(cols["dtype"]), ("bf16", "fp16"))
        & (qpk > 1)
        & (qpk <= XQA_MAX_GROUP)
        & (np.mod(d, 16.0) == 0)
        & (d <= XQA_MAX_HEAD_DIM)
        & page_ok
        & (spec.compute_capability == 9.0)
    )


#: families whose library picks the kernel by the phase of the request
#: (TensorRT-LLM: context FMHA or XQA generation kernels; SGLang's Triton
#: backend: its extend or decode kernel); FlashAttention's one entry point
#: picks by shape, so one query runs its split-KV decode path in any phase
PHASE_DISPATCH = ("trtllm", "triton")


def runs_decode_kernel(family: np.ndarray, phase: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Which attention rows run the decode kernel: every decode step, and a
    one-token prompt (``M = 1``, ``phase = prefill``) where the library
    dispatches by shape (:data:`PHASE_DISPATCH`)."""
    fam = np.asarray(family)
    by_phase = np.zeros(fam.shape, bool)
    for f in PHASE_DISPATCH:
        by_phase |= fam == f
    return (np.asarray(phase) == "decode") | ((np.asarray(m) == 1) & ~by_phase)


def prefill_mma_dtype(cols: dict[str, np.ndarray]) -> np.ndarray:
    """The element type of a prefill kernel's MMAs: the activations', except
    TensorRT-LLM with an fp8 KV cache. Its attention op turns FP8 context
    FMHA on for an fp8 cache read through paged context FMHA
    (``mFP8ContextFMHA = ... || (hasFp8KvCache() && use_paged_context_fmha)``,
    ``cpp/tensorrt_llm/thop/attentionOp.cpp``), and its PyTorch backend
    forces paged context FMHA on for an fp8 cache and on SM90
    (``_torch/attention_backend/trtllm.py``): the QKV pre-processing then
    writes Q in fp8 and the FMHA runs e4m3 MMAs (docs/references.md
    "TensorRT-LLM FP8 context FMHA")."""
    dt = np.asarray(cols["dtype"]).astype(object)
    fp8_cache = np.asarray(cols["kv_dtype"]).astype(str) == "fp8"
    fp8_fmha = (_physics_family(cols["family"]) == "trtllm") & fp8_cache
    return np.where(fp8_fmha, "fp8", dt)


def _physics_family(family: np.ndarray) -> np.ndarray:
    """FA4 (vLLM's CuTe-DSL kernels for a few head dims) is costed as FA3."""
    fam = np.asarray(family)
    return np.where(fam == "fa4", "fa3", fam)


def _eb(dtypes: np.ndarray) -> np.ndarray:
    return np.array([DTYPE_BYTES[str(d)] for d in dtypes], np.float64)


def causal_kv_elems(
    m: np.ndarray, n: np.ndarray, br: np.ndarray, bc: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Score elements over all query blocks of a causal kernel, and the largest.

    Query block i (``br`` rows) visits keys up to ``(i+1) br + (n - m)``
    rounded up to whole key blocks, at most ``n``. Closed form of that sum
    (no loop over blocks). Exact when ``bc`` divides ``br``; otherwise the
    per-block round-up is replaced by its mean (half a key block).
    """
    m, n, br, bc = (np.asarray(x, np.float64) for x in (m, n, br, bc))
    q_blocks = np.ceil(m / br)
    off = np.ceil(np.maximum(0.0, n - m) / bc) * bc
    exact = np.mod(br, bc) == 0
    # blocks whose key range ends before n: (i + 1) br + off < n
    c = np.maximum(0.0, np.minimum(q_blocks, np.ceil((n - off) / br) - 1))
    pad = np.where(exact, 0.0, bc / 2.0)
    kv_sum = br * c * (c + 1) / 2 + (off + pad) * c + n * (q_blocks - c)
    longest = np.minimum(n, q_blocks * br + off)
    return br * kv_sum, br * longest


def fa3_tiles(
    d: np.ndarray, causal: np.ndarray, eb: np.ndarray, paged_non_tma: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(kBlockM, kBlockN) of FlashAttention-3 on sm90 (hopper/tile_size.h)."""
    d = np.asarray(d, np.float64)
    causal = np.asarray(causal, bool)
    pn = np.asarray(paged_non_tma, bool)
    two = np.asarray(eb) >= 2
    bm = np.select([d <= 64, d <= 96, d <= 256], [192.0, 192.0, 128.0], 64.0)
    bn16 = np.select(
        [d <= 64, d <= 96, d <= 128, d <= 192, d <= 256],
        [
            np.where(causal, 128.0, np.where(pn, 160.0, 192.0)),
            np.where(pn, 128.0, 144.0),
            np.where(causal | pn, 128.0, 176.0),
            np.where(pn, 96.0, 128.0),
            80.0,
        ],
        64.0,
    )
    bn8 = np.select(
        [d <= 64, d <= 96, d <= 128, d <= 192, d <= 256],
        [160.0, 128.0, np.where(pn, 160.0, 224.0), 160.0, 128.0],
        64.0,
    )
    return bm, np.where(two, bn16, bn8)


def fa2_tiles(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Br, Bc, CTAs per SM) of FlashAttention-2's forward kernel.

    d <= 64: <64,128,128,4>; d <= 128: <128,128,64,4> (the Nsight names);
    larger heads: 64 x 64 tiles, one CTA per SM (shared memory).
    """
    d = np.asarray(d, np.float64)
    br = np.where(d <= 128, 128.0, 64.0)
    bc = np.select([d <= 64, d <= 128], [128.0, 64.0], 64.0)
    per_sm = np.where(d <= 128, 2.0, 1.0)
    return br, bc, per_sm


def splits_heuristic(
    total_mblocks: np.ndarray, num_sms: float, n_blocks: np.ndarray, *, fa3: bool
) -> np.ndarray:
    """FlashAttention's ``num_splits_heuristic`` (vectorised).

    One split once the blocks nearly fill the SMs (0.8 x num_sms); else the
    smallest split count whose wave efficiency ``n_waves / ceil(n_waves)``
    reaches 85% of the best, up to min(128, num_sms, n_blocks). FA3 never
    splits 4 key blocks or fewer; FA2 skips split counts that give the same
    blocks per split as one fewer (``is_split_eligible``).
    """
    tm = np.asarray(total_mblocks, np.float64)
    nb = np.asarray(n_blocks, np.float64)
    rows = len(tm)
    max_s = np.minimum(np.minimum(MAX_SPLITS, num_sms), nb)
    effs = np.zeros((rows, MAX_SPLITS))
    for s in range(1, MAX_SPLITS + 1):
        waves = tm * s / num_sms
        eff = waves / np.ceil(waves)
        valid = s <= max_s
        if not fa3 and s > 1:
            valid &= np.ceil(nb / s) != np.ceil(nb / (s - 1))
        effs[:, s - 1] = np.where(valid, eff, 0.0)
    best = effs.max(axis=1)
    ok = effs >= 0.85 * best[:, None] - 1e-12
    ok &= effs > 0
    first = np.where(ok.any(axis=1), ok.argmax(axis=1) + 1, 1).astype(np.float64)
    split = np.where(tm >= 0.8 * num_sms, 1.0, first)
    if fa3:
        split = np.where(nb <= 4, 1.0, split)
    return np.maximum(split, 1.0)


def num_splits(
    family: np.ndarray,
    b: np.ndarray,
    hkv: np.ndarray,
    m_blocks: np.ndarray,
    n_blocks: np.ndarray,
    n: np.ndarray,
    spec: GpuSpec,
) -> np.ndarray:
    """KV splits of a decode kernel per family (see module docstring)."""
    sms = float(spec.sm_count)
    fam = np.asarray(family, dtype=object)
    out = np.ones(len(fam))
    # FA2 (PyTorch SDPA): num_splits_heuristic(b * h * m_blocks, 2 * SMs, ...)
    fa2 = fam == "fa2"
    if fa2.any():
        out[fa2] = splits_heuristic((b * hkv * m_blocks)[fa2], 2 * sms, n_blocks[fa2], fa3=False)
    # FA3 varlen (vLLM, SGLang): a static bound from the heuristic with
    # batch 1, then prepare_varlen_num_blocks: blocks_per_sm =
    # ceil(total_blocks x 1.1 x Hkv / SMs), splits = ceil(n_blocks / that)
    fa3 = fam == "fa3"
    if fa3.any():
        static = splits_heuristic((hkv * m_blocks)[fa3], sms, n_blocks[fa3], fa3=True)
        total = (b * m_blocks * n_blocks)[fa3]
        per_sm = np.maximum(1.0, np.ceil(total * 1.1 * hkv[fa3] / sms))
        out[fa3] = np.clip(np.ceil(n_blocks[fa3] / per_sm), 1.0, static)
    # TensorRT-LLM multi-block mode: enough blocks to fill the SMs, at
    # least TRTLLM_BLOCK_KEYS keys each (assumption, see module constant)
    trt = fam == "trtllm"
    if trt.any():
        fill = np.ceil(sms / np.maximum(1.0, (b * hkv)[trt]))
        out[trt] = np.clip(np.minimum(fill, np.ceil(n[trt] / TRTLLM_BLOCK_KEYS)), 1.0, MAX_SPLITS)
    tri = fam == "triton"
    if tri.any():
        out[tri] = np.minimum(float(TRITON_KV_SPLITS), np.maximum(1.0, np.ceil(n[tri] / 16.0)))
    return out


def cta_fixed_s(
    ctas: np.ndarray, tile_bytes: np.ndarray, per_sm: np.ndarray, spec: GpuSpec, params: GpuParams
) -> np.ndarray:
    """The per-CTA fixed time of a flash kernel, summed over the CTAs each SM
    runs (``per_sm`` resident at once overlap theirs): ``attn_cta_s`` plus
    the CTA's Q and O tiles at one SM's share of the HBM bandwidth."""
    share = spec.hbm_bandwidth_bytes_per_s * params.hbm_eff / spec.sm_count
    per_cta = params.attn_cta_s + tile_bytes / share
    rounds = np.asarray(ctas, np.float64) / (spec.sm_count * np.asarray(per_sm, np.float64))
    return np.maximum(rounds, 1.0) * per_cta


#: how the CTAs' fixed latencies combine with the streaming work:
#: (t^2 + t_lat^2)^(1/2), the latency of one resident CTA hidden by another's
#: streaming about half the time (assumption)
LATENCY_P = 2.0


def latency_overlap(t: np.ndarray, t_lat: np.ndarray) -> np.ndarray:
    return np.sqrt(
        np.asarray(t, np.float64) ** LATENCY_P + np.asarray(t_lat, np.float64) ** LATENCY_P
    )


def _mma_rate_sm(
    family: np.ndarray, dtype: np.ndarray, spec: GpuSpec, params: GpuParams
) -> np.ndarray:
    """MMA FLOP/s of one SM for the family's attention main loop. fp8 runs
    at the fp8 peak with the family's efficiency: its extra work is the
    operands' re-layout (``fp8_attn_ops``, per score element), not a GEMM's
    partial-sum promotion over a long K (``fp8_eff_ratio``)."""
    dt = np.asarray(dtype)
    peak = np.array(
        [spec.tensor_rate("tf32" if str(d) == "fp32" else str(d)) for d in dt], np.float64
    )
    fam = np.asarray(family)
    eff = np.select(
        [fam == "fa2", fam == "trtllm"],
        [params.flash_mma_eff, params.trtllm_mma_eff],
        params.fa3_mma_eff,
    )
    return peak * eff / spec.sm_count


def _softmax_s(family: np.ndarray, spec: GpuSpec, params: GpuParams) -> np.ndarray:
    """Non-MMA time per score element on one SM (online softmax: the exp on
    the SFU, max, scale, sum and convert on the FP32 pipes)."""
    ops = np.where(np.asarray(family) == "fa2", params.flash_softmax_ops, params.fa3_softmax_ops)
    return ops / (spec.cuda_rate("fp32") / spec.sm_count)


def _kv_inputs(
    cols: dict[str, np.ndarray], h: np.ndarray, hkv: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the kernel family, bytes per Q/O and per K/V element, query
    heads per KV head and the KV page size (0: not paged)."""
    fam = _physics_family(cols["family"])
    eb = _eb(cols["dtype"])
    ekv = _eb(cols["kv_dtype"])
    return fam, eb, ekv, h / hkv, cols["paged_kv_block"].astype(np.float64)


def _fa3_paged_tiles(
    d: np.ndarray, causal: np.ndarray, eb: np.ndarray, paged: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fa3_tiles` where FA3's TMA path for paged KV needs pages that
    hold whole key tiles (else the non-TMA tiles)."""
    _, bn = fa3_tiles(d, causal, eb, np.zeros(len(d), bool))
    non_tma = (paged > 0) & (np.mod(paged, bn) != 0)
    return fa3_tiles(d, causal, eb, non_tma)


def _flops(
    pairs: np.ndarray, d: np.ndarray, eb: np.ndarray, fa2: np.ndarray, classes: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """FLOPs per class: 4 d per score element on the tensor pipe the element
    size picks (fp8, tf32 where ``classes`` has it, FA2's synchronous or the
    asynchronous 16-bit MMA), and one row pass per score element."""
    tensor = np.where(eb == 1, "tensor8", np.where(fa2, "tensor16_sync", "tensor16"))
    if "tf32" in classes:
        tensor = np.where(eb == 4, "tf32", tensor)
    fl = {c: np.where(tensor == c, 4.0 * pairs * d, 0.0) for c in classes}
    fl["rowpass"] = pairs
    return fl


def prefill_costs(
    cols: dict[str, np.ndarray], spec: GpuSpec, params: GpuParams
) -> tuple[Costs, dict[str, np.ndarray]]:
    """One flash-attention forward kernel per row (the prefill phase)."""
    b, h, hkv, m, n, d = (cols[c].astype(np.float64) for c in ("B", "H", "Hkv", "M", "N", "K"))
    causal = cols["causal"].astype(bool)
    rows = len(b)
    fam, eb_act, ekv, qpk, paged = _kv_inputs(cols, h, hkv)
    mma_dt = prefill_mma_dtype(cols)
    eb = _eb(mma_dt)  # Q and the MMA operands; O is written in the activations' type
    fa2 = fam == "fa2"
    br2, bc2, per_sm2 = fa2_tiles(d)
    bm3, bn3 = _fa3_paged_tiles(d, causal, eb, paged)
    br = np.where(fa2, br2, bm3)
    bc = np.where(fa2, bc2, bn3)
    per_sm = np.where(fa2, per_sm2, 1.0)

    # FA3 PackGQA when it fills the query blocks better (should_pack_gqa);
    # TensorRT-LLM's context FMHA and SGLang's Triton kernel launch a CTA
    # per query head (grid: query blocks x heads x sequences)
    def _eff(q: np.ndarray) -> np.ndarray:
        return q / (np.ceil(q / br) * br)

    pack = (fam == "fa3") & (qpk > 1) & (_eff(m) < 0.9 * _eff(m * qpk))
    mq = np.where(pack, m * qpk, m)
    heads = np.where(pack, hkv, h)
    q_blocks = np.ceil(mq / br)
    ctas = b * heads * q_blocks
    total_c, longest_c = causal_kv_elems(mq, n, br, bc)
    full = br * np.ceil(n / bc) * bc
    per_cta = np.where(causal, total_c / q_blocks, full)
    longest = np.where(causal, longest_c, full)
    pairs = np.where(causal, np.where(n >= m, m * n - m * (m - 1) / 2, m * n / 2), m * n) * b * h
    # per score element: the MMAs (4 d FLOPs) then the online softmax; the
    # measured FA2 and FA3 rates grow with d as this sum does (a fixed
    # softmax cost beside MMA work proportional to d)
    # fp8 MMAs take both operands K-major: P is converted and permuted in
    # registers and V transposed in shared memory (fp8_attn_ops)
    fp8_extra = np.where(eb == 1, params.fp8_attn_ops, 0.0) / (
        spec.cuda_rate("fp32") / spec.sm_count
    )
    t_elem = (
        4.0 * d / _mma_rate_sm(fam, mma_dt, spec, params)
        + _softmax_s(fam, spec, params)
        + fp8_extra
    )
    slots = spec.sm_count * per_sm
    t_cta = per_cta * t_elem
    t_long = longest * t_elem
    waves = np.ceil(ctas / slots)
    fill = np.minimum(1.0, ctas / slots)
    # non-causal: whole waves (FA2's grid), or an even split (FA3's
    # persistent scheduler); causal: average load per slot plus, for FA2,
    # half the longest CTA left at the end (FA3 schedules longest first)
    t_nc = np.where(
        fa2,
        np.maximum(t_cta, waves * per_sm * t_cta * np.where(waves == 1, fill, 1.0)),
        np.maximum(t_cta, ctas * t_cta / spec.sm_count),
    )
    t_c = np.where(
        fa2,
        np.maximum(t_long, per_sm * (ctas * t_cta / slots + t_long / 2)),
        np.maximum(
            t_long, ctas * t_cta / spec.sm_count + t_long / np.maximum(1.0, ctas / spec.sm_count)
        ),
    )
    t_comp = np.where(causal, t_c, t_nc)
    # HBM: Q, K, V read (K, V re-read beyond what L2 keeps), O and the fp32
    # log-sum-exp written
    q_b = b * h * m * d * eb
    kv_head = 2.0 * n * d * ekv
    kv_b = kv_head * b * hkv
    reread = 1.0 + kv_head / (params.flash_kv_l2_frac * spec.l2_bytes)
    hit = l2_resident(q_b + kv_b, cols["n_sets"], spec, params)
    rd_cold = q_b + kv_b * reread
    rd = rd_cold * (1.0 - hit)
    wr = b * h * m * d * eb_act + b * h * m * 4.0
    t_mem = (rd + wr) / stream_bw(np.minimum(ctas, spec.sm_count), spec, params)
    t_lat = cta_fixed_s(ctas, br * d * (eb + eb_act), per_sm, spec, params)
    # the asynchronous K/V loads overlap the main loop (FA2: cp.async double
    # buffering; FA3: a TMA producer warp); the CTAs' fixed latencies do not
    exec_s = latency_overlap(np.maximum(t_comp, t_mem), t_lat)
    heads_in_flight = np.maximum(1.0, np.minimum(b * hkv, slots / q_blocks))
    ncu = rd_cold + np.maximum(0.0, wr - retained(spec, params, heads_in_flight * kv_head))
    l2 = ctas * (per_cta / br) * 2 * d * ekv + q_b + wr
    fl = _flops(pairs, d, eb, fa2, ("tensor16", "tensor16_sync", "tensor8", "tf32"))
    out = costs(
        rows,
        exec_s=exec_s,
        dram_read=rd,
        dram_write=wr,
        ncu_dram=ncu,
        l2_bytes=l2,
        t_compute=t_comp,
        t_memory=t_mem,
        flops=fl,
    )
    return out, {
        "ctas": ctas,
        "tile_m": br,
        "tile_n": bc,
        "pack_gqa": pack.astype(float),
        "splits": np.ones(rows),
    }


def decode_costs(
    cols: dict[str, np.ndarray], spec: GpuSpec, params: GpuParams
) -> tuple[Costs, dict[str, np.ndarray]]:
    """Split-KV decode attention (one query per sequence) plus the combine."""
    b, h, hkv, n, d = (cols[c].astype(np.float64) for c in ("B", "H", "Hkv", "N", "K"))
    rows = len(b)
    fam, eb, ekv, qpk, paged = _kv_inputs(cols, h, hkv)
    fa2 = fam == "fa2"
    # rows of a packed query block: FA2 splitkv uses 64-row blocks
    # (flash_fwd_splitkv kernel traits); FA3 its prefill tile, one MMA
    # warpgroup (64 rows) for d = 128 and <= 64 packed rows (use_one_mma_wg)
    bm3, bn3 = _fa3_paged_tiles(d, np.zeros(rows, bool), ekv, paged)
    bm3 = np.where((d == 128) & (qpk <= 64), 64.0, bm3)
    # FA2: kBlockN of the split heuristic (flash_api.cpp, set_params_splitkv)
    bn2 = np.select([d <= 64, d <= 128], [256.0, 128.0], 64.0)
    bm = np.where(fa2, 64.0, np.where(fam == "fa3", bm3, 16.0))
    bn = np.where(fa2, bn2, np.where(fam == "fa3", bn3, 64.0))
    # TensorRT-LLM's XQA kernels (compiled at run time for the group size)
    # pack the query heads of one KV head, for groups of at most 32 heads
    # and head dims 16..256 in steps of 16; the rest run the masked-MHA
    # kernel, a CTA per query head that re-reads its KV head through L2
    # ("Masked MHA ... for generation, XQA kernels for MQA/GQA", TensorRT-LLM docs)
    xqa = (qpk <= XQA_MAX_GROUP) & (d <= XQA_MAX_HEAD_DIM) & (np.mod(d, 16.0) == 0)
    unpacked = (fam == "trtllm") & ~xqa
    heads = np.where(unpacked, h, hkv)
    rows_q = np.where(unpacked, 1.0, qpk)
    m_blocks = np.ceil(rows_q / bm)
    n_blocks = np.ceil(n / bn)
    split = num_splits(fam, b, heads, m_blocks, n_blocks, n, spec)
    split = np.minimum(split, np.maximum(1.0, n_blocks))
    ctas = b * heads * m_blocks * split
    # compute: padded query rows x keys x 4d per KV head
    fam2 = np.where(fa2, "fa2", np.where(fam == "trtllm", "trtllm", "fa3"))
    work_elems = b * heads * m_blocks * bm * n_blocks * bn
    t_elem = 4.0 * d / _mma_rate_sm(fam2, cols["dtype"], spec, params) + _softmax_s(
        fam2, spec, params
    )
    busy = np.minimum(ctas, spec.sm_count)
    t_comp = work_elems * t_elem / busy
    # memory: the KV cache once (from L2 when a loop keeps it resident),
    # queries, and the partial outputs written for the combine
    kv_b = 2.0 * b * hkv * n * d * ekv
    page_b = np.where(paged > 0, b * np.ceil(n / np.maximum(paged, 1.0)) * 4.0, 0.0)
    q_b = b * h * d * eb
    part = np.where(split > 1, b * h * split * (d + 1) * 4.0, 0.0)
    out_b = np.where(split > 1, part, b * h * d * eb)
    hit = l2_resident(kv_b, cols["n_sets"], spec, params)
    rd_cold = kv_b + page_b + q_b
    rd = kv_b * (1.0 - hit) + page_b + q_b
    t_mem_hbm = (rd + out_b) / stream_bw(busy, spec, params)
    # KV served from L2 still crosses L2 -> SM at the L2 bandwidth
    l2_kv = kv_b * np.where(unpacked, qpk, 1.0) - kv_b * (1.0 - hit)
    t_mem_l2 = l2_kv / (spec.l2_bandwidth_bytes_per_s * np.minimum(1.0, busy / spec.sm_count))
    t_mem = t_mem_hbm + t_mem_l2
    t_lat = cta_fixed_s(ctas, rows_q * d * (eb + 4.0), np.ones(rows), spec, params)
    t_attn = latency_overlap(np.maximum(t_comp, t_mem), t_lat)
    # combine: read the fp32 partials and LSEs, write O (a block per head)
    comb = split > 1
    comb_rd = np.where(comb, part, 0.0)
    comb_wr = np.where(comb, b * h * d * eb, 0.0)
    t_comb = np.where(
        comb, (comb_rd + comb_wr) / stream_bw(np.minimum(b * h, spec.sm_count), spec, params), 0.0
    )
    pairs = b * h * n
    fl = _flops(pairs, d, eb, fa2, ("tensor16", "tensor16_sync", "tensor8"))
    ncu = rd_cold + out_b + comb_rd + np.maximum(0.0, comb_wr - retained(spec, params, 0.0))
    out = costs(
        rows,
        exec_s=t_attn + t_comb,
        n_kernels=1.0 + comb,
        dram_read=rd + comb_rd,
        dram_write=out_b + comb_wr,
        ncu_dram=ncu,
        l2_bytes=kv_b + q_b + out_b + comb_rd + comb_wr,
        t_compute=t_comp,
        t_memory=t_mem + t_comb,
        flops=fl,
    )
    return out, {
        "ctas": ctas,
        "splits": split,
        "tile_m": bm,
        "tile_n": bn,
        "pack_gqa": np.ones(rows),
    }


def token_kernel_costs(
    tokens: np.ndarray,
    read_b: np.ndarray,
    write_b: np.ndarray,
    ops: np.ndarray,
    spec: GpuSpec,
    params: GpuParams,
) -> Costs:
    """A memory-bound kernel with one block per token (append, rotary)."""
    tokens = np.asarray(tokens, np.float64)
    rows = len(tokens)
    busy = np.minimum(tokens, spec.sm_count)
    t_mem = (read_b + write_b) / stream_bw(busy, spec, params)
    t_ops = ops / (
        spec.cuda_rate("fp32")
        * params.cuda_eff
        * np.clip(busy / spec.sm_count, 1.0 / spec.sm_count, 1.0)
    )
    return costs(
        rows,
        exec_s=np.maximum(t_mem, t_ops),
        dram_read=read_b,
        dram_write=write_b,
        t_memory=t_mem,
        t_compute=t_ops,
        flops={"cuda": ops},
    )


#: CUDA-core ops per rotated element: a complex multiply by (cos, sin), 2 FMAs
ROPE_OPS = 3.0


def kv_append_costs(cols: dict[str, np.ndarray], spec: GpuSpec, params: GpuParams) -> Costs:
    """Write the new tokens' K and V into the cache (one kernel, a block per
    token: vLLM reshape_and_cache_flash, SGLang set_kv_buffer)."""
    b, m, hkv, d = (cols[c].astype(np.float64) for c in ("B", "M", "Hkv", "K"))
    tokens = b * m
    eb, ekv = _eb(cols["dtype"]), _eb(cols["kv_dtype"])
    read_b = 2.0 * tokens * hkv * d * eb + tokens * 8.0  # K, V and the slot map
    write_b = 2.0 * tokens * hkv * d * ekv
    return token_kernel_costs(
        tokens, read_b, write_b, np.where(ekv < eb, 2.0 * tokens * hkv * d, 0.0), spec, params
    )


def rotary_costs(cols: dict[str, np.ndarray], spec: GpuSpec, params: GpuParams) -> Costs:
    """Rotary embedding of Q and K in place (one kernel, a block per token)."""
    b, m, h, hkv, d = (cols[c].astype(np.float64) for c in ("B", "M", "H", "Hkv", "K"))
    tokens = b * m
    eb = _eb(cols["dtype"])
    elems = tokens * (h + hkv) * d
    cos_sin = tokens * d * 4.0
    return token_kernel_costs(
        tokens, elems * eb + cos_sin, elems * eb, ROPE_OPS * elems, spec, params
    )


def fused_qkv_preprocess_costs(
    cols: dict[str, np.ndarray], spec: GpuSpec, params: GpuParams
) -> Costs:
    """TensorRT-LLM's QKV pre-processing: rotary on Q and K and the KV-cache
    append in one kernel (reads the fused QKV, writes Q and the cache; Q in
    fp8 ahead of an FP8 context FMHA, :func:`prefill_mma_dtype`)."""
    b, m, h, hkv, d = (cols[c].astype(np.float64) for c in ("B", "M", "H", "Hkv", "K"))
    tokens = b * m
    eb, ekv = _eb(cols["dtype"]), _eb(cols["kv_dtype"])
    decode = runs_decode_kernel(cols["family"], cols["phase"], cols["M"])
    eq = np.where(decode, eb, _eb(prefill_mma_dtype(cols)))
    read_b = tokens * (h + 2 * hkv) * d * eb + tokens * d * 4.0
    write_b = tokens * h * d * eq + 2.0 * tokens * hkv * d * ekv
    return token_kernel_costs(
        tokens, read_b, write_b, ROPE_OPS * tokens * (h + hkv) * d, spec, params
    )


def q_quant_costs(cols: dict[str, np.ndarray], spec: GpuSpec, params: GpuParams) -> Costs:
    """Quantise the queries to fp8 (static scale, one elementwise kernel)."""
    b, m, h, d = (cols[c].astype(np.float64) for c in ("B", "M", "H", "K"))
    elems = b * m * h * d
    return token_kernel_costs(
        np.ceil(elems / 2048.0), elems * _eb(cols["dtype"]), elems, elems, spec, params
    )


def preprocess_costs(cols: dict[str, np.ndarray], spec: GpuSpec, params: GpuParams) -> Costs:
    """The pre-processing kernels a timed attention call includes."""
    rows = len(cols["B"])
    fam = _physics_family(cols["family"])
    app = cols["includes_kv_append"].astype(bool)
    rope = cols["includes_rope"].astype(bool)
    trt = fam == "trtllm"
    total = costs(rows, exec_s=0.0, n_kernels=0.0, host_ops=0.0, dram_read=0.0, dram_write=0.0)
    fused = trt & (app | rope)
    # a decode step on XQA's Hopper kernel does the pre-processing inside
    # the attention kernel: its work, no kernel of its own
    in_attention = fused & runs_decode_kernel(cols["family"], cols["phase"], cols["M"])
    in_attention &= trtllm_qgmma(cols, spec)
    parts = [
        (fused & ~in_attention, fused_qkv_preprocess_costs),
        (~trt & app, kv_append_costs),
        (~trt & rope, rotary_costs),
    ]
    if in_attention.any():
        inside = _masked(fused_qkv_preprocess_costs(cols, spec, params), in_attention)
        inside.n_kernels = np.zeros(rows)
        total = total + inside
    fp8kv = np.array([str(k) == "fp8" for k in cols["kv_dtype"]]) & np.array(
        [str(x) != "fp8" for x in cols["dtype"]]
    )
    parts.append(((fam == "fa3") & fp8kv, q_quant_costs))
    for mask, fn in parts:
        if mask.any():
            total = total + _masked(fn(cols, spec, params), mask)
    return total


def _masked(c: Costs, mask: np.ndarray) -> Costs:
    m = mask.astype(np.float64)
    out = Costs.zeros(len(m))
    for f in fields(Costs):
        if f.name not in ("flops", "sm_busy"):
            setattr(out, f.name, getattr(c, f.name) * m)
    out.flops = {k: v * m for k, v in c.flops.items()}
    return out

"""GEMM kernel selection and cost, as cuBLAS / CUTLASS / DeepGEMM run them.

For ``batch`` GEMMs ``C[M,N] = A[M,K] B[K,N]`` (vectorised over rows):

* **Kernel class.** Hopper's TMA/wgmma kernels (cuBLAS ``nvjet_sm90``,
  CUTLASS 3 sm90, DeepGEMM) need every operand's leading dimension to be a
  multiple of 16 bytes: TMA requires global strides that are multiples of 16
  bytes (CUDA C++ Programming Guide, "Tensor Memory Access"). Row-major
  ``A[M,K]`` has stride ``K``; ``B`` has stride ``N`` (layout ``NN``,
  ``torch.matmul``) or ``K`` (``TN``, ``F.linear``'s ``[N, K]`` weight); ``C``
  has stride ``N``. Otherwise cuBLAS falls back to Ampere-style mma.sync
  kernels, ``legacy_mma_ratio`` of the TMA path's rate (:func:`tma_aligned`).
* **Tiles and waves.** The output is cut into CTA tiles ``Tm x Tn`` (the
  shapes cuBLAS picked on the measured H100: ``nvjet_sm90_tst_256x128``,
  ``128x256``, ``320x128``, ``128x64``, ``64x8``... in
  ``experiments/data/h100/traffic_ncu.csv``, and transposes). Each SM works
  through ``tiles / SMs`` of them (``wave_quant`` = 0: the persistent
  kernels balance tiles, stream-K style); a tile costs, per K step, the
  larger of its MMA time and its operand feed from L2.
* **Split-K.** While the output tiles leave SMs idle, K is split in 2-16;
  fp32 partial sums go to a workspace (HBM only beyond what L2 keeps).
* **Traffic.** Operands that fit in ``l2_reuse_frac`` of L2 are read once;
  otherwise a wave of concurrent tiles reads the A rows and B columns of
  its block of tiles and waves re-read (``gemm_reread``). Inputs a timing
  loop keeps cycling through L2 (``n_sets`` copies that fit) come from L2.
* **Time.** Compute and HBM time combine as a p-norm (``overlap_p``); the
  HBM side streams at most ``sm_stream_bytes_per_s`` per busy SM. Like the
  libraries' heuristics, the fastest candidate (tile, split) wins.
* **fp8.** Per-tensor fp8 and 128-block-scaled fp8 (``fp8_block``: 1x128
  activation groups, 128x128 weight blocks, DeepGEMM / CUTLASS) run at the
  fp8 tensor rate x ``fp8_eff_ratio``; block scaling adds one fp32
  promotion FMA per output element and 128-wide K block on the CUDA cores
  (DeepSeek-V3 report, "Increasing Accumulation Precision"), which the
  warp-specialised kernels overlap with the MMAs (energy, not time), and
  reads its scales. When the timed region includes it, the activation quantisation
  kernel(s) run first (:func:`act_quant_costs`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.gpu.costs import Costs, costs
from sim.gpu.memory import ELEMS_PER_BLOCK, l2_resident, overlap, retained, stream_bw
from sim.gpu.rows import DTYPE_BYTES, member
from sim.gpu.spec import GpuModelError, GpuParams, GpuSpec

#: CTA output tiles (Tm, Tn) cuBLAS picked on the measured H100 (see module
#: docstring) plus transposes and the square/skinny shapes in between.
TILES: tuple[tuple[int, int], ...] = (
    (256, 128),
    (128, 256),
    (320, 128),
    (128, 128),
    (128, 64),
    (64, 128),
    (64, 256),
    (256, 64),
    (64, 512),
    (64, 64),
    (64, 8),
    (8, 64),
    (64, 16),
    (16, 64),
    (128, 16),
    (16, 128),
    (128, 32),
    (32, 128),
)

#: tile of the traffic model (nvjet_sm90_tst_256x128 in traffic_ncu.csv)
REFERENCE_TILE: tuple[int, int] = (256, 128)

#: split-K factors tried (cuBLAS splits K when the output has few tiles)
SPLITS: tuple[int, ...] = (1, 2, 4, 8, 16)

#: fp8 block scaling: 128-wide K groups (DeepSeek-V3; DeepGEMM, CUTLASS)
FP8_BLOCK = 128

#: TMA's stride rule: global strides are multiples of this many bytes
TMA_ALIGN_BYTES = 16


def out_bytes(dtype: str) -> int:
    """Bytes per output element (fp8 GEMMs write bf16)."""
    return 2 if dtype in ("fp8", "fp8_block") else DTYPE_BYTES[dtype]


def tma_aligned(
    n: np.ndarray, k: np.ndarray, eb: np.ndarray, out_eb: np.ndarray, layout: np.ndarray
) -> np.ndarray:
    """Whether every operand's leading dimension is a multiple of 16 bytes.

    ``A[M,K]`` row-major: stride K; ``B``: stride N (``NN``) or K (``TN``);
    ``C[M,N]``: stride N. M never enters a stride.
    """
    k_ok = (np.asarray(k) * eb) % TMA_ALIGN_BYTES == 0
    c_ok = (np.asarray(n) * out_eb) % TMA_ALIGN_BYTES == 0
    b_ok = np.where(np.asarray(layout) == "TN", k_ok, (np.asarray(n) * eb) % TMA_ALIGN_BYTES == 0)
    return k_ok & b_ok & c_ok


def mma_rate(dtype: np.ndarray, tma: np.ndarray, spec: GpuSpec, params: GpuParams) -> np.ndarray:
    """Sustained GEMM FLOP/s of the whole GPU per row (fp32: CUDA cores)."""
    out = np.empty(len(dtype))
    for dt in np.unique(dtype):
        sel = dtype == dt
        if dt == "fp32":
            out[sel] = spec.cuda_rate("fp32") * params.cuda_eff
            continue
        r = spec.tensor_rate(str(dt)) * params.tensor_eff
        if dt in ("fp8", "fp8_block"):
            r *= params.fp8_eff_ratio
        out[sel] = r
    # the mma.sync fallback (no TMA) on a card whose peak needs wgmma; fp32
    # SGEMM runs on the CUDA cores either way
    legacy = ~tma & spec.has_tma & (dtype != "fp32")
    return np.where(legacy, out * params.legacy_mma_ratio, out)


def compute_class(dtype: np.ndarray, tma: np.ndarray) -> np.ndarray:
    """Energy/rate class of a GEMM (mma.sync from registers: tensor16_sync)."""
    cls = np.full(len(dtype), "tensor16", dtype=object)
    cls[member(dtype, ("fp8", "fp8_block"))] = "tensor8"
    cls[dtype == "tf32"] = "tf32"
    cls[dtype == "fp32"] = "cuda"
    cls[(cls == "tensor16") & ~tma] = "tensor16_sync"
    return cls


def _reads(
    m: np.ndarray,
    n: np.ndarray,
    a_b: np.ndarray,
    b_b: np.ndarray,
    spec: GpuSpec,
    params: GpuParams,
) -> tuple[np.ndarray, np.ndarray]:
    """HBM reads of one (unbatched) GEMM with the reference tile, and the
    operand bytes a wave keeps in flight (cold L2)."""
    tm, tn = REFERENCE_TILE
    gm = np.ceil(m / tm)
    gn = np.ceil(n / tn)
    tiles_mn = gm * gn
    ab = a_b + b_b
    p = np.minimum(tiles_mn, spec.sm_count)
    wm = np.minimum(gm, np.maximum(1.0, np.sqrt(p * tn / tm)))
    wn = np.minimum(gn, np.maximum(1.0, p / wm))
    wm = np.minimum(gm, np.maximum(1.0, p / wn))
    per_wave = np.minimum(wm * tm, m) * a_b / m + np.minimum(wn * tn, n) * b_b / n
    waves = tiles_mn / p
    small = ab <= params.l2_reuse_frac * spec.l2_bytes
    reads = np.where(small, ab, ab + params.gemm_reread * np.maximum(0.0, waves * per_wave - ab))
    inflight = np.where(small, ab, np.minimum(ab, per_wave))
    return reads, inflight


def gemm_costs(
    m: np.ndarray,
    n: np.ndarray,
    k: np.ndarray,
    dtype: np.ndarray,
    spec: GpuSpec,
    params: GpuParams,
    *,
    batch: np.ndarray | None = None,
    layout: np.ndarray | None = None,
    a_bytes: np.ndarray | None = None,
    n_sets: np.ndarray | None = None,
    aligned: np.ndarray | None = None,
) -> tuple[Costs, dict[str, np.ndarray]]:
    """Cost of ``batch`` GEMMs per row in one library call (one kernel).

    ``a_bytes`` overrides the unique bytes of A per batch (implicit-GEMM
    convolution reads its input once, not the im2col expansion); ``aligned``
    overrides the TMA-alignment test (convolution kernels).
    Returns the costs and a detail dict (tile, split, TMA path).
    """
    m, n, k = (np.asarray(x, np.float64) for x in (m, n, k))
    rows = len(m)
    dtype = np.asarray(dtype, dtype=object)
    batch = np.ones(rows) if batch is None else np.asarray(batch, np.float64)
    layout = (
        np.full(rows, "NN", dtype=object) if layout is None else np.asarray(layout, dtype=object)
    )
    n_sets = np.zeros(rows) if n_sets is None else np.asarray(n_sets, np.float64)
    if rows and min(m.min(), n.min(), k.min(), batch.min()) < 1:
        raise GpuModelError("GEMM sizes must be >= 1")
    eb = np.array([DTYPE_BYTES[d] for d in dtype], np.float64)
    out_eb = np.array([out_bytes(d) for d in dtype], np.float64)
    tma = tma_aligned(n, k, eb, out_eb, layout) if aligned is None else np.asarray(aligned, bool)
    tma = tma & spec.has_tma
    rate = mma_rate(dtype, tma, spec, params)
    sms = float(spec.sm_count)
    rate_sm = rate / sms
    mc = np.where(tma, min(params.feed_multicast, spec.cluster_multicast), 1.0)
    feed = spec.l2_bandwidth_bytes_per_s * mc / sms
    a_b = m * k * eb if a_bytes is None else np.asarray(a_bytes, np.float64)
    b_b = k * n * eb
    c_b = m * n * out_eb
    block = member(dtype, ("fp8_block",))
    # fp8_block scales: activations [M, K/128] and weights [N/128, K/128], fp32
    scale_b = np.where(
        block,
        (m * np.ceil(k / FP8_BLOCK) + np.ceil(n / FP8_BLOCK) * np.ceil(k / FP8_BLOCK)) * 4.0,
        0.0,
    )
    reads1, inflight1 = _reads(m, n, a_b, b_b, spec, params)
    reads1 = reads1 + scale_b
    hit = l2_resident((a_b + b_b) * batch, n_sets, spec, params)

    def _candidate(ix: np.ndarray, tm: Any, tn: Any, s: Any) -> tuple[np.ndarray, ...]:
        """(time, compute, memory, reads, writes) of rows ``ix`` with a tile
        Tm x Tn and split s (scalars or per-row arrays)."""
        mm, nn, kk, bt = m[ix], n[ix], k[ix], batch[ix]
        tiles = np.ceil(mm / tm) * np.ceil(nn / tn) * s * bt
        t_step = np.maximum(2.0 * tm * tn / rate_sm[ix], (tm + tn) * eb[ix] / feed[ix])
        per_sm = tiles / sms + params.wave_quant * (np.ceil(tiles / sms) - tiles / sms)
        t_comp = per_sm * np.ceil(kk / s) * t_step
        spill = np.maximum(
            0.0, (s - 1) * mm * nn * 4.0 * bt - params.l2_retain_frac * spec.l2_bytes
        )
        reads = reads1[ix] * bt * (1.0 - hit[ix]) + spill
        writes = c_b[ix] * bt + spill
        t_mem = (reads + writes) / stream_bw(np.minimum(tiles, sms), spec, params)
        return overlap(t_comp, t_mem, params), t_comp, t_mem, reads, writes

    # every (tile, split) candidate's time; the fastest wins (ties, for
    # memory-bound shapes, go to the least compute time)
    cands = [(tm, tn, s) for tm, tn in TILES for s in SPLITS]
    score = np.full((rows, len(cands)), np.inf)
    for j, (tm, tn, s) in enumerate(cands):
        tiles_mn = np.ceil(m / tm) * np.ceil(n / tn)
        ok = np.flatnonzero((tiles_mn * batch < sms) | (s == 1))
        if not len(ok):
            continue
        t, t_comp, _, _, _ = _candidate(ok, tm, tn, s)
        score[ok, j] = t + 1e-9 * t_comp
    best = score.argmin(axis=1)
    pick = np.array(cands, np.float64)[best]
    keep_tm, keep_tn, split = pick[:, 0], pick[:, 1], pick[:, 2]
    best_t, t_comp, t_mem, reads, writes = _candidate(np.arange(rows), keep_tm, keep_tn, split)
    tiles = np.ceil(m / keep_tm) * np.ceil(n / keep_tn) * split * batch
    keep = {
        "tm": keep_tm,
        "tn": keep_tn,
        "reads": reads,
        "writes": writes,
        "tiles": tiles,
        "t_comp": t_comp,
        "t_mem": t_mem,
    }
    # Nsight Compute's per-kernel HBM bytes: cold L2 (caches flushed), dirty
    # output lines still in L2 at the end not counted
    partial = (split - 1) * m * n * 4.0 * batch
    spill = np.maximum(0.0, partial - params.l2_retain_frac * spec.l2_bytes)
    ncu_reads = reads1 * batch + spill
    in_flight_batches = np.maximum(
        1.0, np.minimum(batch, sms / np.maximum(1.0, keep["tiles"] / batch))
    )
    ncu_writes = np.maximum(
        0.0, keep["writes"] - retained(spec, params, inflight1 * in_flight_batches)
    )
    # L2 -> SM operand traffic of a 256x128 tile whose A tile is multicast
    # to a cluster of 2 CTAs: (128 + 128) / (256 x 128) bytes per MAC; a
    # reference tile keeps the energy monotone in M, N and K
    l2 = batch * m * n * k * eb / 128.0 + keep["reads"] + keep["writes"]
    cls = compute_class(dtype, tma)
    flops = 2.0 * m * n * k * batch
    fl = {
        c: np.where(cls == c, flops, 0.0)
        for c in ("tensor16", "tensor16_sync", "tensor8", "tf32", "cuda")
    }
    fl["cuda"] = fl["cuda"] + np.where(block, 2.0 * m * n * np.ceil(k / FP8_BLOCK) * batch, 0.0)
    out = costs(
        rows,
        exec_s=best_t,
        dram_read=keep["reads"],
        dram_write=keep["writes"],
        ncu_dram=ncu_reads + ncu_writes,
        l2_bytes=l2,
        t_compute=keep["t_comp"],
        t_memory=keep["t_mem"],
        flops=fl,
    )
    detail = {
        "tile_m": keep["tm"],
        "tile_n": keep["tn"],
        "split_k": split,
        "tma": tma.astype(float),
        "tiles": keep["tiles"],
    }
    return out, detail


#: fp8 activation quantisation kernels per kind, from the frameworks' source:
#: kind -> (tiny kernels, passes reading X, fixed-grid reduction kernels,
#: threads walking one row (0: an elementwise grid), rows per block)
#:  static   vLLM static_scaled_fp8_quant: one kernel, scale given, a block
#:           of 1024 threads per token (csrc/quantization/fp8/common.cu)
#:  dynamic  per-tensor amax then quantise: a memset of the scale, a
#:           reduction over X on a fixed grid of 1024 blocks x 1024 threads
#:           with atomicMax, and the elementwise quantise pass (TensorRT-LLM
#:           cpp/tensorrt_llm/common/cudaFp8Utils.cu,
#:           invokeComputeFP8QuantizeScale PER_TENSOR + invokeQuantizeMatrix)
#:  token    per-row scale and quantise in one kernel: a warp per token,
#:           eight tokens per 256-thread block (SGLang
#:           sgl_per_token_quant_fp8, per_token_quant_fp8_kernel)
#:  group128 1x128 groups: one elementwise-like kernel writing fp32 scales
#:           (SGLang per_token_group_quant_fp8, TensorRT-LLM fp8_quantize_1x128)
ACT_QUANT_KERNELS: dict[str, tuple[int, int, int, int, int]] = {
    "none": (0, 0, 0, 0, 1),
    "static": (0, 1, 0, 1024, 1),
    "dynamic": (1, 2, 1, 0, 1),
    "token": (0, 1, 0, 32, 8),
    "group128": (0, 1, 0, 0, 1),
}

#: the fixed grid of TensorRT-LLM's per-tensor amax kernel (blocks, threads)
AMAX_GRID = (1024, 1024)
#: resident threads per SM (compute capability 8.0-10.0: 2048)
THREADS_PER_SM = 2048


def act_quant_bytes(
    m: np.ndarray, k: np.ndarray, kind: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(HBM bytes read, written) of the activation quantisation of X[M,K] bf16.

    Each pass reads X (2 bytes per element); the quantise pass writes fp8 (1
    byte) plus its scales: one fp32 per tensor (dynamic, static), per row
    (token) or per 1x128 group (group128).
    """
    m = np.asarray(m, np.float64)
    k = np.asarray(k, np.float64)
    kind = np.asarray(kind, dtype=object)
    passes = np.array([ACT_QUANT_KERNELS[str(x)][1] for x in kind], np.float64)
    x = m * k
    scales = np.select(
        [kind == "token", kind == "group128", member(kind, ("dynamic", "static"))],
        [m, m * np.ceil(k / FP8_BLOCK), np.ones_like(m)],
        0.0,
    )
    read = passes * x * 2.0
    write = np.where(passes > 0, x * 1.0 + 4.0 * scales, 0.0)
    return read, write


def act_quant_costs(
    m: np.ndarray, k: np.ndarray, kind: np.ndarray, spec: GpuSpec, params: GpuParams
) -> Costs:
    """The activation quantisation kernels of fp8 GEMMs (per row).

    Each streams X at the bandwidth its busy SMs reach, and a kernel with a
    block (or a warp) per token takes at least its rounds of resident
    blocks x a block's latency ``row_fixed_s`` (one pass: load, scale,
    store), as the row kernels of ``sim.gpu.kernels`` do.
    """
    m = np.asarray(m, np.float64)
    k = np.asarray(k, np.float64)
    kind = np.asarray(kind)
    rows = len(m)
    info = np.array([ACT_QUANT_KERNELS[str(x)] for x in kind], np.float64).reshape(rows, 5)
    tiny, passes, fixed_grid, row_threads, rows_per_block = (info[:, i] for i in range(5))
    read, write = act_quant_bytes(m, k, kind)
    x = m * k
    per_row = row_threads > 0
    blocks = np.where(per_row, np.ceil(m / rows_per_block), np.ceil(x / ELEMS_PER_BLOCK))
    bw = stream_bw(np.minimum(blocks, spec.sm_count), spec, params)
    t_quant = (x * 2.0 + write) / bw
    threads_per_block = np.maximum(row_threads * rows_per_block, 1.0)
    resident = np.floor(THREADS_PER_SM / threads_per_block)
    rounds = np.ceil(blocks / (resident * spec.sm_count))
    t_block = params.row_fixed_s
    t_quant = np.where(per_row, np.maximum(t_quant, rounds * t_block), t_quant)
    # the per-tensor amax kernel: rounds of 1024-thread blocks, each at least
    # one block latency (a reduction and an atomic)
    b, t = AMAX_GRID
    amax_rounds = np.ceil(b / (spec.sm_count * (THREADS_PER_SM // t)))
    t_amax = np.maximum(
        x * 2.0 / stream_bw(spec.sm_count, spec, params), amax_rounds * params.row_fixed_s
    )
    exec_s = np.where(passes > 0, t_quant, 0.0) + np.where(fixed_grid > 0, t_amax, 0.0)
    return costs(
        rows,
        exec_s=exec_s,
        n_kernels=tiny + np.minimum(passes, 1.0) + fixed_grid,
        dram_read=read,
        dram_write=write,
        t_memory=exec_s,
        flops={"cuda": passes * x},
    )

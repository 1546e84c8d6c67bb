"""cuBLAS-like GEMM tiling on a GPU: tile choice, tile/wave quantisation, traffic.

A GEMM ``C[M,N] = A[M,K] B[K,N]`` (optionally batched) is cut into CTA output
tiles ``Tm x Tn`` (optionally split along K). Each SM works through
``ceil(tiles / SMs)`` tiles (tile and wave quantisation); a tile costs a fixed
prologue/epilogue plus, per K step, the larger of its MMA time and the time
to feed its operands into shared memory. The kernel takes the larger of that
and its HBM time. Like cuBLAS's heuristic, the model picks the fastest tile of
a candidate set; the set holds the shapes the measured H100 kernels used
(``nvjet_sm90_tst_256x128``, ``128x256``, ``128x64``, ``64x256``,
``64x512``, ``64x8``... in ``experiments/data/h100/traffic_ncu.csv``) and
their transposes.

HBM traffic: operands that fit in a fraction of L2 are read once; otherwise a
wave of concurrent tiles reads the A rows and B columns of its block of
tiles, and waves re-read (NVIDIA "Matrix Multiplication Background" guide,
tile/wave quantisation; the re-read factor is calibrated on Nsight Compute
DRAM counters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

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

#: bytes per element by dtype name
DTYPE_BYTES: dict[str, int] = {"fp8": 1, "bf16": 2, "fp16": 2, "tf32": 4, "fp32": 4}


def dtype_bytes(dtype: str) -> int:
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise GpuModelError(
            f"unknown dtype '{dtype}', expected one of {', '.join(DTYPE_BYTES)}"
        ) from None


def compute_class(dtype: str) -> str:
    """Energy/rate class of a GEMM in this dtype."""
    return {"fp8": "tensor8", "bf16": "tensor16", "fp16": "tensor16", "tf32": "tf32"}.get(
        dtype, "cuda"
    )


def mma_rate(spec: GpuSpec, params: GpuParams, dtype: str) -> float:
    """Sustained GEMM FLOP/s of the whole GPU for a dtype (fp32 = CUDA cores)."""
    if dtype == "fp32":
        return spec.cuda_rate("fp32") * params.cuda_eff
    return spec.tensor_rate(dtype) * params.tensor_eff


@dataclass(frozen=True)
class KernelCost:
    """Cost of one PyTorch-level call (one or more GPU kernels)."""

    #: GPU busy time summed over the call's kernels (no launch gaps), s
    t_kernel_s: float
    n_kernels: int
    #: host API families of the calls it issues ("cublas", "sdpa", ...)
    host_calls: tuple[str, ...]
    #: steady-state HBM traffic (every output eventually written back)
    dram_read_bytes: float
    dram_write_bytes: float
    #: HBM bytes as Nsight Compute counts them per kernel (cold L2 before
    #: each kernel; dirty lines still in L2 at the kernel's end not counted)
    ncu_dram_bytes: float
    l2_bytes: float
    #: useful operations by class ("tensor16", "tf32", "tensor8", "cuda")
    flops: dict[str, float] = field(default_factory=dict)
    detail: dict[str, object] = field(default_factory=dict)

    def __add__(self, other: KernelCost) -> KernelCost:
        flops = dict(self.flops)
        for k, v in other.flops.items():
            flops[k] = flops.get(k, 0.0) + v
        return KernelCost(
            t_kernel_s=self.t_kernel_s + other.t_kernel_s,
            n_kernels=self.n_kernels + other.n_kernels,
            host_calls=self.host_calls + other.host_calls,
            dram_read_bytes=self.dram_read_bytes + other.dram_read_bytes,
            dram_write_bytes=self.dram_write_bytes + other.dram_write_bytes,
            ncu_dram_bytes=self.ncu_dram_bytes + other.ncu_dram_bytes,
            l2_bytes=self.l2_bytes + other.l2_bytes,
            flops=flops,
            # the second operand's details get the index of its first kernel
            detail={
                **self.detail,
                **{f"{k}_{self.n_kernels + 1}": v for k, v in other.detail.items()},
            },
        )


def retained_bytes(spec: GpuSpec, params: GpuParams, inflight_reuse_bytes: float) -> float:
    """Dirty output bytes left in L2 at a kernel's end (not yet in HBM)."""
    return max(0.0, params.l2_retain_frac * spec.l2_bytes - inflight_reuse_bytes)


#: bytes an SM keeps in flight from HBM (Little's law: a kernel moving less
#: than SMs x this cannot reach full bandwidth; 64 KB per SM ~ 2.5 us of
#: latency-bound transfer on an H100; assumption, see docs/gpu-model.md)
SM_INFLIGHT_BYTES = 65536.0


def hbm_time_s(nbytes: float, spec: GpuSpec, params: GpuParams) -> float:
    """HBM time of ``nbytes``, never below the latency floor of a small kernel."""
    bw = spec.hbm_bandwidth_bytes_per_s * params.hbm_eff
    return max(nbytes, spec.sm_count * SM_INFLIGHT_BYTES) / bw


def _gemm_reads(
    m: int,
    n: int,
    k: int,
    tm: int,
    tn: int,
    tiles_mn: int,
    slots: int,
    a_bytes: float,
    b_bytes: float,
    eb: int,
    spec: GpuSpec,
    params: GpuParams,
) -> tuple[float, float]:
    """HBM reads of one (unbatched) GEMM and the bytes in flight a wave reuses."""
    ab = a_bytes + b_bytes
    if ab <= params.l2_reuse_frac * spec.l2_bytes:
        return ab, ab
    p = min(tiles_mn, slots)
    gm = math.ceil(m / tm)
    gn = math.ceil(n / tn)
    # square wave block (in elements), clipped to the grid
    wm = min(gm, max(1.0, math.sqrt(p * tn / tm)))
    wn = min(gn, max(1.0, p / wm))
    wm = min(gm, max(1.0, p / wn))
    per_wave = min(wm * tm, m) * a_bytes / m + min(wn * tn, n) * b_bytes / n
    waves = tiles_mn / p
    return ab + params.gemm_reread * max(0.0, waves * per_wave - ab), min(ab, per_wave)


def gemm_cost(
    m: int,
    n: int,
    k: int,
    dtype: str,
    spec: GpuSpec,
    params: GpuParams,
    *,
    batch: int = 1,
    a_bytes: float | None = None,
    host: str = "cublas",
) -> KernelCost:
    """Cost of ``batch`` GEMMs C[M,N] = A[M,K] B[K,N] in one cuBLAS call.

    ``a_bytes`` overrides the unique bytes of A per batch (implicit-GEMM
    convolution reads its input once, not the im2col expansion).
    """
    if min(m, n, k, batch) < 1:
        raise GpuModelError(f"GEMM sizes must be >= 1, got M={m} N={n} K={k} B={batch}")
    eb = dtype_bytes(dtype)
    rate = mma_rate(spec, params, dtype)
    sms = spec.sm_count
    rate_sm = rate / sms
    feed = spec.l2_bandwidth_bytes_per_s * min(params.feed_multicast, spec.cluster_multicast) / sms
    a_b = float(a_bytes) if a_bytes is not None else float(m) * k * eb
    b_b = float(k) * n * eb
    c_b = float(m) * n * eb

    # HBM traffic with the tile cuBLAS uses for large GEMMs on the H100
    # (256x128, one CTA per SM): independent of the compute tile picked, so
    # the traffic is monotone in M, N and K
    rt_m, rt_n = REFERENCE_TILE
    reads1, inflight1 = _gemm_reads(
        m,
        n,
        k,
        rt_m,
        rt_n,
        math.ceil(m / rt_m) * math.ceil(n / rt_n),
        sms,
        a_b,
        b_b,
        eb,
        spec,
        params,
    )
    best: tuple[float, ...] | None = None
    for tm, tn in TILES:
        tiles_mn = math.ceil(m / tm) * math.ceil(n / tn)
        for s in SPLITS:
            # split-K only while the output tiles leave SMs idle (a condition
            # that only removes candidates as M, N grow: time stays monotone)
            if s > 1 and tiles_mn * batch >= sms:
                continue
            kp = math.ceil(k / s)
            tiles = tiles_mn * s * batch
            per_sm = tiles / sms + params.wave_quant * (math.ceil(tiles / sms) - tiles / sms)
            t_tile = kp * max(2.0 * tm * tn / rate_sm, (tm + tn) * eb / feed)
            t_comp = per_sm * t_tile
            # split-K partials (fp32) are written and read back once; they
            # reach HBM only beyond what L2 keeps
            partial = (s - 1) * m * n * 4.0 * batch
            spill = max(0.0, partial - params.l2_retain_frac * spec.l2_bytes)
            reads = reads1 * batch + spill
            writes = c_b * batch + spill
            t_mem = hbm_time_s(reads + writes, spec, params)
            t = max(t_comp, t_mem)
            # ties (memory-bound shapes) go to the tile with the least compute time
            if best is None or (t, t_comp) < (best[0], best[8]):
                best = (t, tm, tn, s, reads, writes, inflight1, tiles, t_comp, t_mem)
    assert best is not None
    t, tm, tn, s, reads, writes, inflight, tiles, t_comp, t_mem = best
    # batches in flight together share L2 with this batch's operands
    in_flight_batches = max(1.0, min(batch, sms / max(1.0, tiles / batch)))
    retained = retained_bytes(spec, params, inflight * in_flight_batches)
    ncu_writes = max(0.0, writes - retained)
    kp = math.ceil(k / s)
    # L2 -> SM operand traffic of a 256x128 tile whose A tile is multicast to
    # a cluster of 2 CTAs (the "1x2" in nvjet names): (128 + 128) / (256 x 128)
    # bytes per MAC. A reference tile, not the chosen one, keeps the energy
    # monotone in M, N and K (used for energy only).
    l2 = batch * float(m) * n * k * eb / 128.0 + reads + writes
    cls = compute_class(dtype)
    return KernelCost(
        t_kernel_s=t,
        n_kernels=1,
        host_calls=(host,),
        dram_read_bytes=reads,
        dram_write_bytes=writes,
        ncu_dram_bytes=reads + ncu_writes,
        l2_bytes=l2,
        flops={cls: 2.0 * m * n * k * batch},
        detail={
            "tile": f"{tm}x{tn}",
            "split_k": s,
            "tiles": tiles,
            "t_compute_s": t_comp,
            "t_memory_s": t_mem,
        },
    )


def roofline_gemm_s(flops: float, bytes_: float, rate: float, bw: float) -> float:
    """Plain roofline time (used by the baseline comparison)."""
    return float(np.maximum(flops / rate, bytes_ / bw))

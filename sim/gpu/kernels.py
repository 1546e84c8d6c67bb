"""Per-operation GPU kernel models (what one PyTorch-level call costs).

Ops (the ``op`` column of ``experiments/data/h100/kernels.csv``):
``gemm``, ``bmm``, ``conv2d`` (implicit GEMM), ``attn_flash`` (one fused
FlashAttention-2 kernel: S never reaches HBM), ``attn_unfused`` (S = Q K^T,
softmax(S), S V: three kernels, S through HBM), memory-bound ``copy``,
``add``, ``gelu``, ``sum`` and row kernels ``softmax``, ``layernorm``,
``rmsnorm``.

Launch configurations (CTA tile sizes, threads per block) follow the kernels
Nsight Compute recorded on the H100 (``traffic_ncu.csv``): FlashAttention-2
``Flash_fwd_kernel_traits<64,128,128,4>`` / ``<128,128,64,4>`` (head dim,
query block, key block, warps), ``softmax_warp_forward`` (a warp per row,
128-thread blocks, rows <= 1024), ``cunn_SoftMaxForward*`` (1024 threads, a
block per row), ``vectorized_layer_norm_kernel`` (128 threads, a block per
row).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sim.gpu.spec import GpuModelError, GpuParams, GpuSpec
from sim.gpu.tiling import KernelCost, dtype_bytes, gemm_cost, retained_bytes

#: elementwise ops: (input tensors read, output tensors written, CUDA-core
#: ops per element). gelu (erf form) ~ 20 fp32 ops per element: the erff
#: polynomial of CUDA's libdevice is about 15 FMAs plus scaling (estimate).
ELEMENTWISE: dict[str, tuple[int, int, float]] = {
    "copy": (1, 1, 0.0),
    "add": (2, 1, 1.0),
    "mul": (2, 1, 1.0),
    "gelu": (1, 1, 20.0),
    "relu": (1, 1, 1.0),
    "exp": (1, 1, 4.0),
    "sum": (1, 0, 1.0),
}

#: row ops: on-chip passes over each row (softmax: max, sum, normalise and
#: write; norms: statistics, normalise and write) and per-column parameter
#: tensors read (layernorm weight and bias, rmsnorm weight)
ROW_OPS: dict[str, tuple[float, int]] = {
    "softmax": (3.0, 0),
    "layernorm": (2.0, 2),
    "rmsnorm": (2.0, 1),
}

OPS: tuple[str, ...] = (
    "gemm",
    "bmm",
    "conv2d",
    "attn_flash",
    "attn_unfused",
    *ELEMENTWISE,
    *ROW_OPS,
)


def _int(row: Mapping[str, Any], key: str, default: int | None = None) -> int:
    v = row.get(key, None)
    if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
        if default is None:
            raise GpuModelError(f"op '{row.get('op')}' needs column '{key}'")
        return default
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise GpuModelError(f"column '{key}' must be a number, got {v!r}") from None
    if not math.isfinite(f) or f != int(f):
        raise GpuModelError(f"column '{key}' must be a whole number, got {v!r}")
    return int(f)


def elementwise_cost(op: str, n: int, dtype: str, spec: GpuSpec, params: GpuParams) -> KernelCost:
    """A memory-bound elementwise op (or full reduction) over ``n`` elements."""
    reads_t, writes_t, ops = ELEMENTWISE[op]
    eb = dtype_bytes(dtype)
    rd = float(reads_t) * n * eb
    wr = float(writes_t) * n * eb + (eb if op == "sum" else 0.0)
    # blocks of 512 threads x 4 elements: small tensors cannot use every SM
    blocks = max(1.0, n / 2048.0)
    active = min(1.0, blocks / spec.sm_count)
    t_mem = (rd + wr) / (spec.hbm_bandwidth_bytes_per_s * params.hbm_eff * active)
    t_ops = ops * n / (spec.cuda_rate("fp32") * params.cuda_eff * active)
    # a device copy is one cudaMemcpyAsync (no kernel in Nsight Compute): one
    # host operation, and one launch_s of start-up on the GPU like a kernel
    # (small copies: 15.3 us between events, 7.6 us back-to-back); add is
    # measured with out= (no allocation: sim.gpu.spec.HOST_OPS)
    host = {"copy": "copy", "add": "eltwise_out"}.get(op, "eltwise")
    retained = retained_bytes(spec, params, 0.0)
    return KernelCost(
        t_kernel_s=max(t_mem, t_ops),
        n_kernels=1,
        host_calls=(host,),
        dram_read_bytes=rd,
        dram_write_bytes=wr,
        ncu_dram_bytes=rd + max(0.0, wr - retained),
        l2_bytes=rd + wr,
        flops={"cuda": ops * n},
        detail={"t_memory_s": t_mem},
    )


def row_cost(
    op: str, rows: int, cols: int, dtype: str, spec: GpuSpec, params: GpuParams
) -> KernelCost:
    """Softmax / layernorm / rmsnorm over the last dim: rows x cols.

    Time is the larger of the HBM time and the block-latency bound: each
    block walks its row(s) in a few dependent passes (reduce, reduce,
    write), so a block's latency grows with the bytes each thread handles.
    """
    if op not in ROW_OPS:
        raise GpuModelError(f"unknown row op '{op}'")
    passes, n_params = ROW_OPS[op]
    eb = dtype_bytes(dtype)
    n = float(rows) * cols
    rd = n * eb + n_params * cols * eb
    wr = n * eb
    if op == "softmax" and cols <= 1024:
        rows_per_block, threads_per_row, blocks_per_sm = 4, 32, 16
    elif op == "softmax":
        rows_per_block, threads_per_row, blocks_per_sm = 1, 1024, 2
    else:
        rows_per_block, threads_per_row, blocks_per_sm = 1, 128, 16
    rounds = math.ceil(rows / (rows_per_block * blocks_per_sm * spec.sm_count))
    t_block = params.row_fixed_s + cols * eb * params.row_s_per_byte * (1024 / threads_per_row)
    blocks = rows / rows_per_block
    active = min(1.0, blocks / spec.sm_count)
    t_mem = (rd + wr) / (spec.hbm_bandwidth_bytes_per_s * params.hbm_eff * active)
    t_lat = rounds * t_block
    retained = retained_bytes(spec, params, 0.0)
    return KernelCost(
        t_kernel_s=max(t_mem, t_lat),
        n_kernels=1,
        host_calls=(op if op in ("layernorm", "rmsnorm") else "eltwise",),
        dram_read_bytes=rd,
        dram_write_bytes=wr,
        ncu_dram_bytes=rd + max(0.0, wr - retained),
        l2_bytes=rd + wr,
        flops={"rowpass": passes * n},
        detail={"t_memory_s": t_mem, "t_latency_s": t_lat},
    )


def causal_kv_elems(m: int, n: int, br: int, bc: int) -> tuple[float, float]:
    """Score elements over all query blocks of a causal kernel, and the largest.

    Query block i (``br`` rows) visits keys up to ``(i+1) br + (n - m)``
    rounded up to whole key blocks (``bc`` divides ``br``), at most ``n``.
    Closed form of that sum (no loop over blocks: huge sizes stay fast).
    """
    q_blocks = math.ceil(m / br)
    off = math.ceil(max(0, n - m) / bc) * bc
    # blocks whose key range ends before n: (i + 1) br + off < n
    c = max(0, min(q_blocks, math.ceil((n - off) / br) - 1))
    kv_sum = br * c * (c + 1) / 2 + off * c + n * (q_blocks - c)
    longest = min(n, q_blocks * br + off)
    return float(br * kv_sum), float(br * longest)


def flash_cost(
    b: int,
    h: int,
    m: int,
    n: int,
    d: int,
    causal: bool,
    dtype: str,
    spec: GpuSpec,
    params: GpuParams,
) -> KernelCost:
    """One FlashAttention-2 forward kernel: Q[b,h,m,d], K,V[b,h,n,d] -> O.

    One pass: each CTA keeps a block of queries on chip and streams K and V;
    S and P never reach HBM.
    """
    eb = dtype_bytes(dtype)
    br = 128
    bc = 128 if d <= 64 else 64
    ctas_per_sm = 2
    q_blocks = math.ceil(m / br)
    ctas = b * h * q_blocks
    # score elements computed per CTA (key blocks up to the diagonal if causal)
    if causal:
        total, longest = causal_kv_elems(m, n, br, bc)
        elems_per_cta = total / q_blocks
        pairs = b * h * (m * n - m * (m - 1) / 2 if n >= m else m * n / 2)
    else:
        elems_per_cta = br * math.ceil(n / bc) * bc
        longest = elems_per_cta
        pairs = float(b) * h * m * n
    rate_sm = (
        spec.tensor_rate(dtype if dtype != "fp32" else "tf32")
        * params.flash_mma_eff
        / spec.sm_count
    )
    cuda_sm = spec.cuda_rate("fp32") / spec.sm_count
    t_elem = 4.0 * d / rate_sm + params.flash_softmax_ops / cuda_sm
    t_cta = elems_per_cta * t_elem
    slots = spec.sm_count * ctas_per_sm
    t_long = longest * t_elem
    if causal:
        # CTAs of unequal work, scheduled as slots free up: the average load
        # per slot plus, on average, half the longest CTA left at the end
        t_comp = max(t_long, ctas_per_sm * (ctas * t_cta / slots + t_long / 2))
    else:
        waves = math.ceil(ctas / slots)
        fill = min(1.0, ctas / slots)
        t_comp = max(t_cta, waves * ctas_per_sm * t_cta * (fill if waves == 1 else 1.0))
    q_b = float(b) * h * m * d * eb
    kv_head = 2.0 * n * d * eb
    kv_b = kv_head * b * h
    reread = 1.0 + kv_head / (params.flash_kv_l2_frac * spec.l2_bytes)
    rd = q_b + kv_b * reread
    wr = q_b * 0 + float(b) * h * m * d * eb + float(b) * h * m * 4  # O and LSE (fp32)
    t_mem = (rd + wr) / (spec.hbm_bandwidth_bytes_per_s * params.hbm_eff)
    heads_in_flight = max(1.0, min(b * h, slots / q_blocks))
    retained = retained_bytes(spec, params, heads_in_flight * kv_head)
    l2 = ctas * (elems_per_cta / br) * 2 * d * eb + q_b + wr
    return KernelCost(
        t_kernel_s=max(t_comp, t_mem),
        n_kernels=1,
        host_calls=("sdpa",),
        dram_read_bytes=rd,
        dram_write_bytes=wr,
        ncu_dram_bytes=rd + max(0.0, wr - retained),
        l2_bytes=l2,
        flops={
            "tensor16_sync" if eb == 2 else ("tensor8" if eb == 1 else "tf32"): 4.0 * pairs * d,
            "rowpass": pairs,  # online softmax: one on-chip pass per score
        },
        detail={"ctas": ctas, "t_compute_s": t_comp, "t_memory_s": t_mem},
    )


def unfused_attention_cost(
    b: int,
    h: int,
    m: int,
    n: int,
    d: int,
    causal: bool,
    dtype: str,
    spec: GpuSpec,
    params: GpuParams,
) -> KernelCost:
    """Three kernels: S = Q K^T (bmm), P = softmax(S), O = P V (bmm).

    S and P go to HBM and come back. A causal mask adds one elementwise pass
    over S (masked_fill).
    """
    bh = b * h
    qk = gemm_cost(m, n, d, dtype, spec, params, batch=bh)
    cost = qk
    if causal:
        mask = elementwise_cost("copy", bh * m * n, dtype, spec, params)
        cost = cost + replace(mask, n_kernels=1, host_calls=("eltwise",))
    sm = row_cost("softmax", bh * m, n, dtype, spec, params)
    pv = gemm_cost(m, d, n, dtype, spec, params, batch=bh)
    return cost + sm + pv


def conv2d_cost(
    b: int,
    c: int,
    hw: int,
    kc: int,
    r: int,
    stride: int,
    dtype: str,
    spec: GpuSpec,
    params: GpuParams,
) -> KernelCost:
    """Conv2d (padding R//2) as an implicit GEMM: M = B P Q, N = Kc, K = C R R.

    The input is read from HBM once per wave block (not the im2col
    expansion): its unique bytes stand in for A.
    """
    if stride < 1 or r < 1:
        raise GpuModelError(f"conv2d needs R >= 1 and stride >= 1, got R={r} stride={stride}")
    pad = r // 2
    p = (hw + 2 * pad - r) // stride + 1
    if p < 1:
        raise GpuModelError(f"conv2d output is empty (HW={hw}, R={r}, stride={stride})")
    eb = dtype_bytes(dtype)
    m_, n_, k_ = b * p * p, kc, c * r * r
    a_unique = float(b) * c * hw * hw * eb
    cost = gemm_cost(m_, n_, k_, dtype, spec, params, a_bytes=a_unique, host="cublas")
    cost.detail["implicit_gemm"] = f"{m_}x{n_}x{k_}"
    return cost


def kernel_cost(row: Mapping[str, Any], spec: GpuSpec, params: GpuParams) -> KernelCost:
    """Dispatch one kernels.csv-style row to its op model."""
    op = str(row.get("op", "")).strip()
    dtype = str(row.get("dtype", "bf16")).strip() or "bf16"
    if op not in OPS:
        raise GpuModelError(f"unknown op '{op}', expected one of {', '.join(OPS)}")
    if op == "gemm":
        return gemm_cost(_int(row, "M"), _int(row, "N"), _int(row, "K"), dtype, spec, params)
    if op == "bmm":
        return gemm_cost(
            _int(row, "M"),
            _int(row, "N"),
            _int(row, "K"),
            dtype,
            spec,
            params,
            batch=_int(row, "B", 1),
        )
    if op == "conv2d":
        return conv2d_cost(
            _int(row, "B", 1),
            _int(row, "C"),
            _int(row, "HW"),
            _int(row, "Kc"),
            _int(row, "R"),
            _int(row, "stride", 1),
            dtype,
            spec,
            params,
        )
    if op in ("attn_flash", "attn_unfused"):
        args = (
            _int(row, "B", 1),
            _int(row, "H", 1),
            _int(row, "M"),
            _int(row, "N"),
            _int(row, "K"),
            bool(_int(row, "causal", 0)),
            dtype,
            spec,
            params,
        )
        return flash_cost(*args) if op == "attn_flash" else unfused_attention_cost(*args)
    m, n = _int(row, "M"), _int(row, "N", 1)
    if min(m, n) < 1:
        raise GpuModelError(f"op '{op}' needs M, N >= 1, got M={m} N={n}")
    if op in ELEMENTWISE:
        return elementwise_cost(op, m * n, dtype, spec, params)
    return row_cost(op, m, n, dtype, spec, params)

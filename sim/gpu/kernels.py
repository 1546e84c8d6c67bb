"""Per-op GPU kernel models and the dispatch of rows to them (vectorised).

Ops (``sim.gpu.rows.OPS``): ``gemm``, ``bmm`` and fp8 GEMMs
(:mod:`sim.gpu.gemm_select`), ``conv2d`` (implicit GEMM), ``attn_flash`` /
``attn_decode`` (:mod:`sim.gpu.attention`), ``attn_unfused`` (S = Q K^T,
softmax(S), S V: three kernels, S through HBM), memory-bound elementwise ops
(``copy``, ``add``, ``mul``, ``gelu``, ``relu``, ``silu``, ``silu_mul``,
``exp``, ``sum``), row kernels ``softmax``, ``layernorm``, ``rmsnorm``, and
the LLM pre-processing kernels ``kv_append``, ``rotary``, ``act_quant``.

Launch configurations follow the kernels Nsight Compute recorded on the
H100 (``experiments/data/h100/traffic_ncu.csv``): ``softmax_warp_forward``
(a warp per row, 128-thread blocks, rows <= 1024), ``cunn_SoftMaxForward*``
(1024 threads, a block per row), ``vectorized_layer_norm_kernel`` (128
threads, a block per row).

:func:`batch_costs` is the entry point: it returns one
:class:`~sim.gpu.costs.Costs` entry per row plus a detail dict (tile,
splits, TMA path, CTAs) for the envelope and the reports.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.gpu import attention as att
from sim.gpu.costs import Costs, costs
from sim.gpu.gemm_select import act_quant_costs, gemm_costs
from sim.gpu.kernel_cost import KernelCost
from sim.gpu.memory import ELEMS_PER_BLOCK, elementwise_time, retained, stream_bw
from sim.gpu.rows import DTYPE_BYTES, ELEMENTWISE, OPS, ROW_OPS, KernelBatch, member, to_batch
from sim.gpu.spec import HOST_OPS, GpuModelError, GpuParams, GpuSpec
from sim.gpu.timing import kernel_time

#: eager host API family per op (sim.gpu.spec.HOST_OPS)
HOST_FAMILY: dict[str, str] = {
    "gemm": "cublas",
    "bmm": "cublas",
    "conv2d": "cublas",
    "copy": "copy",
    "add": "eltwise_out",
    "layernorm": "layernorm",
    "rmsnorm": "rmsnorm",
}

#: cuDNN runs NCHW convolutions on NHWC implicit-GEMM kernels with layout
#: transforms of the input, the filter and the output around them
#: (assumption: PyTorch's default NCHW tensors; channels_last would skip them)
CONV_TRANSFORMS = 3
#: channels are padded to a multiple of 16 bytes for the tensor cores' K
#: dimension (8 bf16 elements), so C = 3 does the work of C = 8
CONV_C_ALIGN_BYTES = 16


def _eb(dtypes: np.ndarray) -> np.ndarray:
    return np.array([DTYPE_BYTES[str(d)] for d in dtypes], np.float64)


def elementwise_costs(
    op: np.ndarray, numel: np.ndarray, dtype: np.ndarray, spec: GpuSpec, params: GpuParams
) -> Costs:
    """Memory-bound elementwise ops (or full reductions) over ``numel`` elements."""
    info = np.array([ELEMENTWISE[str(o)] for o in op], np.float64).reshape(len(op), 3)
    reads_t, writes_t, ops_pe = info[:, 0], info[:, 1], info[:, 2]
    eb = _eb(dtype)
    n = np.asarray(numel, np.float64)
    rd = reads_t * n * eb
    wr = writes_t * n * eb + np.where(op == "sum", eb, 0.0)
    blocks = np.maximum(1.0, n / ELEMS_PER_BLOCK)
    t_mem, t_ops = elementwise_time(rd + wr, blocks, ops_pe * n, spec, params)
    ncu = rd + np.maximum(0.0, wr - retained(spec, params, 0.0))
    copy = op == "copy"
    return costs(
        len(n),
        exec_s=np.maximum(t_mem, t_ops),
        dram_read=rd,
        dram_write=wr,
        ncu_dram=ncu,
        t_memory=t_mem,
        t_compute=t_ops,
        flops={"cuda": ops_pe * n},
        # a device copy is a cudaMemcpyAsync on the copy engine (no kernel in
        # Nsight Compute, SMs idle): it still pays the per-kernel fixed terms
        sm_busy=np.where(copy, 0.0, 1.0),
    )


def row_costs(
    op: np.ndarray,
    rows_: np.ndarray,
    cols_: np.ndarray,
    dtype: np.ndarray,
    spec: GpuSpec,
    params: GpuParams,
) -> Costs:
    """Softmax / layernorm / rmsnorm over the last dim: rows x cols.

    Time is the larger of the HBM time and the block-latency bound: each
    block walks its row(s) in a few dependent passes (reduce, reduce,
    write), so a block's latency grows with the bytes each thread handles.
    """
    info = np.array([ROW_OPS[str(o)] for o in op], np.float64).reshape(len(op), 2)
    passes, n_params = info[:, 0], info[:, 1]
    eb = _eb(dtype)
    r = np.asarray(rows_, np.float64)
    c = np.asarray(cols_, np.float64)
    n = r * c
    rd = n * eb + n_params * c * eb
    wr = n * eb
    soft_small = (op == "softmax") & (c <= 1024)
    soft_big = (op == "softmax") & (c > 1024)
    rows_per_block = np.where(soft_small, 4.0, 1.0)
    threads = np.where(soft_small, 32.0, np.where(soft_big, 1024.0, 128.0))
    blocks_per_sm = np.where(soft_big, 2.0, 16.0)
    rounds = np.ceil(r / (rows_per_block * blocks_per_sm * spec.sm_count))
    t_block = params.row_fixed_s + c * eb * params.row_s_per_byte * (1024.0 / threads)
    blocks = r / rows_per_block
    t_mem = (rd + wr) / stream_bw(np.minimum(blocks, spec.sm_count), spec, params)
    t_lat = rounds * t_block
    return costs(
        len(r),
        exec_s=np.maximum(t_mem, t_lat),
        dram_read=rd,
        dram_write=wr,
        ncu_dram=rd + np.maximum(0.0, wr - retained(spec, params, 0.0)),
        t_memory=t_mem,
        t_compute=t_lat,
        flops={"rowpass": passes * n},
    )


def conv2d_costs(
    b: KernelBatch, spec: GpuSpec, params: GpuParams
) -> tuple[Costs, dict[str, np.ndarray]]:
    """Conv2d (padding R//2) as an implicit GEMM: M = B P Q, N = Kc, K = C' R R.

    C' = C padded to 16 bytes of channels (:data:`CONV_C_ALIGN_BYTES`). The
    input is read from HBM once per wave block (not the im2col expansion):
    its unique bytes stand in for A. NCHW tensors add the layout transforms
    (:data:`CONV_TRANSFORMS` memory-bound kernels).
    """
    bb, c, hw, kc, r, s = (b.f(x) for x in ("B", "C", "HW", "Kc", "R", "stride"))
    pad = np.floor(r / 2)
    p = np.floor((hw + 2 * pad - r) / s) + 1
    if (p < 1).any():
        i = int(np.flatnonzero(p < 1)[0])
        raise GpuModelError(
            f"conv2d output is empty (HW={int(hw[i])}, R={int(r[i])}, stride={int(s[i])})"
        )
    eb = _eb(b["dtype"])
    c_pad = np.ceil(c * eb / CONV_C_ALIGN_BYTES) * CONV_C_ALIGN_BYTES / eb
    m_, n_, k_ = bb * p * p, kc, c_pad * r * r
    a_unique = bb * c_pad * hw * hw * eb
    gemm, detail = gemm_costs(
        m_,
        n_,
        k_,
        b["dtype"],
        spec,
        params,
        a_bytes=a_unique,
        n_sets=b.f("n_sets"),
        aligned=np.ones(b.n, bool),
    )
    # the useful work is the unpadded one
    useful = 2.0 * m_ * n_ * c * r * r
    scale = useful / (2.0 * m_ * n_ * k_)
    gemm.flops = {k: v * scale for k, v in gemm.flops.items()}
    in_b = bb * c * hw * hw * eb
    w_b = kc * c * r * r * eb
    out_b = bb * kc * p * p * eb
    moved = in_b + w_b + out_b
    t_mem = (
        2.0
        * moved
        / stream_bw(
            np.minimum(np.maximum(1.0, moved / (ELEMS_PER_BLOCK * eb)), spec.sm_count), spec, params
        )
    )
    tr = costs(
        b.n,
        exec_s=t_mem,
        n_kernels=float(CONV_TRANSFORMS),
        dram_read=moved,
        dram_write=moved,
        t_memory=t_mem,
    )
    detail = {**detail, "implicit_m": m_, "implicit_n": n_, "implicit_k": k_}
    return gemm + tr, detail


def unfused_attention_costs(b: KernelBatch, spec: GpuSpec, params: GpuParams) -> Costs:
    """Three kernels: S = Q K^T (bmm), P = softmax(S), O = P V (bmm).

    S and P go to HBM and come back. A causal mask adds a masked_fill pass
    over S (and the mask's creation: ones + triu, two small kernels).
    """
    bh = b.f("B") * b.f("H")
    m, n, d = b.f("M"), b.f("N"), b.f("K")
    dt = b["dtype"]
    qk, _ = gemm_costs(m, n, d, dt, spec, params, batch=bh, layout=np.full(b.n, "TN", dtype=object))
    sm = row_costs(np.full(b.n, "softmax", dtype=object), bh * m, n, dt, spec, params)
    pv, _ = gemm_costs(m, d, n, dt, spec, params, batch=bh)
    total = qk + sm + pv
    causal = b["causal"].astype(bool)
    if causal.any():
        mask = elementwise_costs(np.full(b.n, "mul", dtype=object), bh * m * n, dt, spec, params)
        mk = causal.astype(np.float64)
        mask.n_kernels = mask.n_kernels * 3.0
        for name in (
            "exec_s",
            "n_kernels",
            "dram_read",
            "dram_write",
            "ncu_dram",
            "l2_bytes",
            "t_compute",
            "t_memory",
        ):
            setattr(mask, name, getattr(mask, name) * mk)
        mask.flops = {k: v * mk for k, v in mask.flops.items()}
        total = total + mask
    return total


def _host_ops(b: KernelBatch, c: Costs, detail: dict[str, np.ndarray]) -> np.ndarray:
    """Host operations of each row's eager PyTorch call (sim.gpu.spec.HOST_OPS)."""
    op = b["op"]
    ho = np.array([HOST_OPS[HOST_FAMILY.get(str(o), "eltwise")] for o in op], np.float64)
    attn = member(op, ("attn_flash", "attn_decode"))
    split = detail.get("splits", np.ones(b.n)) > 1
    ho = np.where(attn, np.where(split, HOST_OPS["sdpa_splitkv"], HOST_OPS["sdpa"]), ho)
    # unfused attention: matmul, softmax, matmul (+ ones, triu, masked_fill)
    unf = op == "attn_unfused"
    ho = np.where(
        unf,
        2 * HOST_OPS["cublas"] + HOST_OPS["eltwise"] + 3 * HOST_OPS["eltwise"] * b["causal"],
        ho,
    )
    conv = op == "conv2d"
    ho = np.where(conv, HOST_OPS["cublas"] + CONV_TRANSFORMS, ho)
    # every further kernel of a call (pre-processing, quantisation) is one
    # more eager op: an output and a launch
    base_k = np.where(
        attn,
        1.0 + split,
        np.where(unf, 3.0 + 3 * b["causal"], np.where(conv, 1.0 + CONV_TRANSFORMS, 1.0)),
    )
    extra = np.maximum(0.0, c.n_kernels - base_k)
    return ho + HOST_OPS["eltwise"] * extra


def batch_costs(
    b: KernelBatch, spec: GpuSpec, params: GpuParams
) -> tuple[Costs, dict[str, np.ndarray]]:
    """Costs of every row of a batch (dispatch by op class)."""
    total = Costs.zeros(b.n)
    detail: dict[str, np.ndarray] = {
        k: np.full(b.n, np.nan)
        for k in ("tile_m", "tile_n", "split_k", "tma", "ctas", "splits", "pack_gqa")
    }
    op = b["op"]
    unknown = ~member(op, OPS)
    if unknown.any():
        raise GpuModelError(f"unknown op {op[unknown][0]!r}, expected one of {', '.join(OPS)}")
    for dt in np.unique(b["dtype"]):
        tensor_ops = member(
            op, ("gemm", "bmm", "conv2d", "attn_flash", "attn_decode", "attn_unfused")
        )
        if (tensor_ops & (b["dtype"] == dt)).any() and dt != "fp32" and not spec.has_dtype(str(dt)):
            raise GpuModelError(f"GPU '{spec.name}' has no tensor-core rate for dtype '{dt}'")

    def put(mask: np.ndarray, part: Costs, det: dict[str, np.ndarray] | None = None) -> None:
        idx = np.flatnonzero(mask)
        total.put(idx, part)
        for k, v in (det or {}).items():
            if k in detail:
                detail[k][idx] = v

    gem = member(op, ("gemm", "bmm"))
    if gem.any():
        s = b.take(np.flatnonzero(gem))
        batch = np.where(s["op"] == "bmm", s.f("B"), 1.0)
        g, det = gemm_costs(
            s.f("M"),
            s.f("N"),
            s.f("K"),
            s["dtype"],
            spec,
            params,
            batch=batch,
            layout=s["layout"],
            n_sets=s.f("n_sets"),
        )
        det = {
            "tile_m": det["tile_m"],
            "tile_n": det["tile_n"],
            "split_k": det["split_k"],
            "tma": det["tma"],
            "ctas": det["tiles"],
        }
        q = s["includes_act_quant"] & member(s["dtype"], ("fp8", "fp8_block"))
        if q.any():
            aq = act_quant_costs(
                s.f("M"), s.f("K") * batch, np.where(q, s["act_quant"], "none"), spec, params
            )
            g = g + aq
        put(gem, g, det)
    conv = op == "conv2d"
    if conv.any():
        c, det = conv2d_costs(b.take(np.flatnonzero(conv)), spec, params)
        put(
            conv,
            c,
            {
                "tile_m": det["tile_m"],
                "tile_n": det["tile_n"],
                "split_k": det["split_k"],
                "tma": det["tma"],
            },
        )
    attn = member(op, ("attn_flash", "attn_decode"))
    dec = attn & att.runs_decode_kernel(b["family"], b["phase"], b["M"])
    pre = attn & ~dec
    for mask, fn in ((pre, att.prefill_costs), (dec, att.decode_costs)):
        if mask.any():
            s = b.take(np.flatnonzero(mask))
            a, det = fn(s.cols, spec, params)
            a = a + att.preprocess_costs(s.cols, spec, params)
            put(mask, a, det)
    unf = op == "attn_unfused"
    if unf.any():
        put(unf, unfused_attention_costs(b.take(np.flatnonzero(unf)), spec, params))
    ew = member(op, tuple(ELEMENTWISE))
    if ew.any():
        s = b.take(np.flatnonzero(ew))
        put(ew, elementwise_costs(s["op"], s.f("M") * s.f("N"), s["dtype"], spec, params))
    ro = member(op, tuple(ROW_OPS))
    if ro.any():
        s = b.take(np.flatnonzero(ro))
        put(ro, row_costs(s["op"], s.f("M"), s.f("N"), s["dtype"], spec, params))
    for name, fn in (("kv_append", att.kv_append_costs), ("rotary", att.rotary_costs)):
        mask = op == name
        if mask.any():
            put(mask, fn(b.take(np.flatnonzero(mask)).cols, spec, params))
    aq = op == "act_quant"
    if aq.any():
        s = b.take(np.flatnonzero(aq))
        kind = np.where(s["act_quant"] == "none", "dynamic", s["act_quant"])
        put(aq, act_quant_costs(s.f("M"), s.f("N"), kind, spec, params))
    total.host_ops = _host_ops(b, total, detail)
    return total, detail


def causal_kv_elems(m: int, n: int, br: int, bc: int) -> tuple[float, float]:
    """Scalar form of :func:`sim.gpu.attention.causal_kv_elems`."""
    t, lng = att.causal_kv_elems(np.array([m]), np.array([n]), np.array([br]), np.array([bc]))
    return float(t[0]), float(lng[0])


def kernel_cost_of(row: dict[str, Any], spec: GpuSpec, params: GpuParams) -> KernelCost:
    """One row (a mapping of kernel columns) as a :class:`KernelCost`."""
    b = to_batch([row])
    c, detail = batch_costs(b, spec, params)
    flops = {k: float(v[0]) for k, v in c.flops.items() if float(v[0])}
    return KernelCost(
        t_kernel_s=float(kernel_time(c, params)[0]),
        n_kernels=int(round(float(c.n_kernels[0]))),
        host_calls=(),
        dram_read_bytes=float(c.dram_read[0]),
        dram_write_bytes=float(c.dram_write[0]),
        ncu_dram_bytes=float(c.ncu_dram[0]),
        l2_bytes=float(c.l2_bytes[0]),
        flops=flops,
        detail={
            **{k: float(v[0]) for k, v in detail.items() if np.isfinite(v[0])},
            # what bounds the kernel (the plans' kernel tables)
            "t_compute_s": float(c.t_compute[0]),
            "t_memory_s": float(c.t_memory[0]),
        },
        host_ops=float(c.host_ops[0]),
    )


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
    """One FlashAttention-2 forward call (scalar :class:`~sim.gpu.tiling.KernelCost`)."""
    row = {
        "op": "attn_flash",
        "dtype": dtype,
        "B": b,
        "H": h,
        "M": m,
        "N": n,
        "K": d,
        "causal": int(causal),
        "family": "fa2",
    }
    return kernel_cost_of(row, spec, params)


def kernel_cost(row: dict[str, Any], spec: GpuSpec, params: GpuParams) -> KernelCost:
    """One kernels.csv-style row as a scalar :class:`~sim.gpu.tiling.KernelCost`."""
    return kernel_cost_of(row, spec, params)


__all__ = ["OPS", "batch_costs", "causal_kv_elems", "flash_cost", "kernel_cost", "kernel_cost_of"]

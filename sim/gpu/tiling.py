"""Scalar kernel costs: :class:`KernelCost` and single-call helpers.

The kernel model is vectorised over rows (``sim.gpu.kernels.batch_costs``);
this module gives one call's cost as a :class:`KernelCost` for code that
builds calls one at a time (the cascade lowering, ``sim.gpu.cascade``):
:func:`gemm_cost` (a cuBLAS GEMM, ``sim.gpu.gemm_select``),
 plus :func:`dtype_bytes` and
:func:`retained_bytes`.
"""

from __future__ import annotations

import numpy as np

from sim.gpu.gemm_select import gemm_costs
from sim.gpu.kernel_cost import KernelCost
from sim.gpu.rows import DTYPE_BYTES
from sim.gpu.spec import GpuModelError, GpuParams, GpuSpec
from sim.gpu.timing import kernel_time

__all__ = ["KernelCost", "dtype_bytes", "gemm_cost", "retained_bytes"]


def dtype_bytes(dtype: str) -> int:
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise GpuModelError(
            f"unknown dtype '{dtype}', expected one of {', '.join(DTYPE_BYTES)}"
        ) from None


def retained_bytes(spec: GpuSpec, params: GpuParams, inflight_reuse_bytes: float) -> float:
    """Dirty output bytes left in L2 at a kernel's end (not yet in HBM)."""
    return max(0.0, params.l2_retain_frac * spec.l2_bytes - inflight_reuse_bytes)


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
    dtype_bytes(dtype)
    c, det = gemm_costs(
        np.array([m]),
        np.array([n]),
        np.array([k]),
        np.array([dtype], dtype=object),
        spec,
        params,
        batch=np.array([batch]),
        a_bytes=None if a_bytes is None else np.array([a_bytes]),
    )
    return KernelCost(
        t_kernel_s=float(kernel_time(c, params)[0]),
        n_kernels=1,
        host_calls=(host,),
        dram_read_bytes=float(c.dram_read[0]),
        dram_write_bytes=float(c.dram_write[0]),
        ncu_dram_bytes=float(c.ncu_dram[0]),
        l2_bytes=float(c.l2_bytes[0]),
        flops={k_: float(v[0]) for k_, v in c.flops.items() if float(v[0])},
        detail={
            "tile": f"{int(det['tile_m'][0])}x{int(det['tile_n'][0])}",
            "split_k": int(det["split_k"][0]),
            "tma": bool(det["tma"][0]),
            "t_compute_s": float(c.t_compute[0]),
            "t_memory_s": float(c.t_memory[0]),
        },
    )

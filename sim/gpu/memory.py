"""Memory-system terms shared by the kernel models (vectorised over rows).

* :func:`stream_bw`: the HBM bandwidth a kernel with ``active`` busy SMs
  reaches: the card's datasheet bandwidth x ``hbm_eff``, or fewer SMs x what
  one SM keeps in flight (``sm_stream_bytes_per_s``, Little's law), whichever
  is lower.
* :func:`overlap`: compute and memory time of one kernel combined as a
  p-norm (``overlap_p``): max() far from the ridge point, more than max()
  near it, where neither side can hide the other's stalls.
* :func:`l2_resident`: the fraction of a working set that stays in L2
  between calls of a timing loop cycling ``n_sets`` copies of it.
* :func:`retained`: dirty output bytes left in L2 at a kernel's end, which
  Nsight Compute does not count as HBM writes of that kernel.
"""

from __future__ import annotations

import numpy as np

from sim.gpu.spec import GpuParams, GpuSpec

#: blocks of an elementwise kernel: 512 threads x 4 elements (PyTorch's
#: vectorised elementwise launch, aten/src/ATen/native/cuda/Loops.cuh)
ELEMS_PER_BLOCK = 2048.0


def stream_bw(active: np.ndarray | float, spec: GpuSpec, params: GpuParams) -> np.ndarray:
    """HBM bytes/s of a kernel whose work spans ``active`` SMs."""
    act = np.clip(np.asarray(active, np.float64), 1.0, spec.sm_count)
    return np.minimum(
        spec.hbm_bandwidth_bytes_per_s * params.hbm_eff, act * params.sm_stream_bytes_per_s
    )


def overlap(
    t_c: np.ndarray, t_m: np.ndarray, params: GpuParams, t_l: np.ndarray | None = None
) -> np.ndarray:
    """(t_c^p + t_m^p [+ t_l^p])^(1/p), computed without overflow."""
    p = params.overlap_p
    terms = [np.asarray(t_c, np.float64), np.asarray(t_m, np.float64)]
    if t_l is not None:
        terms.append(np.asarray(t_l, np.float64))
    hi = np.maximum.reduce(terms)
    safe = np.where(hi > 0, hi, 1.0)
    s = sum((t / safe) ** p for t in terms)
    return np.where(hi > 0, hi * s ** (1.0 / p), 0.0)


def l2_resident(
    ws_bytes: np.ndarray, n_sets: np.ndarray, spec: GpuSpec, params: GpuParams
) -> np.ndarray:
    """Fraction of the inputs served from L2 in a loop over ``n_sets`` copies.

    ``n_sets`` = 0: cold (not in L2). Otherwise the loop touches
    ``n_sets x ws_bytes`` between two uses of one copy: fully resident up to
    ``l2_reuse_frac`` of L2, none beyond L2 (a cyclic pattern larger than an
    LRU-like cache misses every time), linear in between.
    """
    cycle = np.asarray(n_sets, np.float64) * np.asarray(ws_bytes, np.float64)
    lo = params.l2_reuse_frac * spec.l2_bytes
    hi = spec.l2_bytes
    frac = np.clip((hi - cycle) / max(hi - lo, 1.0), 0.0, 1.0)
    return np.where(np.asarray(n_sets) > 0, frac, 0.0)


def retained(
    spec: GpuSpec, params: GpuParams, inflight_reuse_bytes: np.ndarray | float
) -> np.ndarray:
    """Dirty output bytes left in L2 at a kernel's end (not yet in HBM)."""
    return np.maximum(
        0.0, params.l2_retain_frac * spec.l2_bytes - np.asarray(inflight_reuse_bytes, np.float64)
    )


def elementwise_time(
    nbytes: np.ndarray, blocks: np.ndarray, ops: np.ndarray, spec: GpuSpec, params: GpuParams
) -> tuple[np.ndarray, np.ndarray]:
    """(memory time, CUDA-core time) of a streaming kernel of ``blocks`` blocks."""
    active = np.minimum(np.asarray(blocks, np.float64), spec.sm_count)
    t_mem = np.asarray(nbytes, np.float64) / stream_bw(active, spec, params)
    frac = np.clip(active / spec.sm_count, 1.0 / spec.sm_count, 1.0)
    t_ops = np.asarray(ops, np.float64) / (spec.cuda_rate("fp32") * params.cuda_eff * frac)
    return t_mem, t_ops

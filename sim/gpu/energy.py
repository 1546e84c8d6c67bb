"""Board energy of a call on a GPU (vectorised), and the scalar forms.

Energy per call = idle power (the preset's) x the time over which it accrues
(``sim.gpu.timing.energy_time``) + dynamic energy per FLOP by compute class
+ per byte moved in HBM and L2 (the per-access form of Wattchmen and of
Dally's per-access energies, docs/references.md "Energy per action"; values
calibrated on experiments/data/h100/kernels.csv). The total is capped at the
board power limit x time: a kernel that would draw more is clocked down.

The scalar functions at the end (``energy_terms``, ``gpu_time_s``,
``loop_time_s``, ``median_time_s``, ``host_ops``) take a
:class:`sim.gpu.tiling.KernelCost`; the cascade lowering uses them.
"""

from __future__ import annotations

import numpy as np

from sim.gpu.costs import FLOP_CLASSES, Costs
from sim.gpu.kernel_cost import KernelCost, host_ops
from sim.gpu.spec import GpuParams, GpuSpec

ENERGY_CLASSES: tuple[str, ...] = FLOP_CLASSES


def _per_flop(params: GpuParams) -> dict[str, float]:
    return {
        "tensor16": params.e_tensor16_pj,
        "tensor16_sync": params.e_tensor16_sync_pj,
        "tensor8": params.e_tensor8_pj,
        "tf32": params.e_tf32_pj,
        "cuda": params.e_cuda_pj,
        "rowpass": params.e_rowpass_pj,
    }


def energy_terms_v(
    c: Costs, t_s: np.ndarray, busy_s: np.ndarray, spec: GpuSpec, params: GpuParams
) -> dict[str, np.ndarray]:
    """Energy per call split by component, in pJ (arrays)."""
    out = {
        "idle": spec.idle_power_w * t_s * 1e12,
        "active": params.active_power_w * np.minimum(t_s, busy_s) * 1e12,
        "HBM": params.e_hbm_pj_per_byte * (c.dram_read + c.dram_write),
        "L2": params.e_l2_pj_per_byte * c.l2_bytes,
    }
    e = _per_flop(params)
    for cls, n in c.flops.items():
        out[f"compute.{cls}"] = e.get(cls, params.e_cuda_pj) * n
    cap = spec.tdp_w * t_s * 1e12
    total = sum(out.values())
    over = (total > cap) & (cap > out["idle"])
    f = np.where(
        over, (cap - out["idle"]) / np.where(total > out["idle"], total - out["idle"], 1.0), 1.0
    )
    return {k: (v if k == "idle" else v * f) for k, v in out.items()}


def energy_pj_v(
    c: Costs, t_s: np.ndarray, busy_s: np.ndarray, spec: GpuSpec, params: GpuParams
) -> np.ndarray:
    return sum(energy_terms_v(c, t_s, busy_s, spec, params).values())


# ------------------------------------------------------------ scalar forms


def host_time_s(cost: KernelCost, params: GpuParams) -> float:
    """Host issue time of an eager call: ``host_op_s`` per host operation."""
    return host_ops(cost) * params.host_op_s


def gpu_time_s(cost: KernelCost, params: GpuParams) -> float:
    """GPU time of an eager call: kernel durations + a launch gap per kernel."""
    return cost.t_kernel_s + cost.n_kernels * params.launch_gap_s


def median_time_s(cost: KernelCost, params: GpuParams) -> float:
    """Time of one eager call bracketed by CUDA events (``event``)."""
    g = gpu_time_s(cost, params)
    return max(g, host_time_s(cost, params) + min(g, params.event_period_s))


def loop_time_s(cost: KernelCost, params: GpuParams) -> float:
    """Time per call of back-to-back eager calls (``loop``)."""
    return max(host_time_s(cost, params), gpu_time_s(cost, params))


def energy_terms(cost: KernelCost, spec: GpuSpec, params: GpuParams) -> dict[str, float]:
    """Energy per call split by component, in pJ (eager back-to-back loop)."""
    c = cost.as_costs()
    t = np.array([loop_time_s(cost, params)])
    busy = np.array([gpu_time_s(cost, params)])
    return {k: float(v[0]) for k, v in energy_terms_v(c, t, busy, spec, params).items()}


def energy_pj(cost: KernelCost, spec: GpuSpec, params: GpuParams) -> float:
    return sum(energy_terms(cost, spec, params).values())

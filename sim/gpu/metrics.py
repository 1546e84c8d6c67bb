"""The :class:`sim.metrics.Metrics` of work on a GPU, from its summed kernel cost.

Both GPU evaluations (the single-cascade lowering in :mod:`sim.gpu.cascade`
and the kernel plans in :mod:`sim.gpu.plans`) report alike; they differ in
how they time the call, split its energy and attribute its HBM traffic.
"""

from __future__ import annotations

from typing import Any

from sim.gpu.kernel_cost import KernelCost
from sim.gpu.spec import GpuSpec
from sim.metrics import Metrics


def gpu_metrics(
    total: KernelCost,
    spec: GpuSpec,
    *,
    latency_s: float,
    energy_terms: dict[str, float],
    hbm_bytes: dict[str, float],
    busy_s: float,
    macs: float,
    notes: dict[str, Any],
) -> Metrics:
    """Metrics of a call that takes ``latency_s`` with the summed cost
    ``total``: energy by term (pJ), HBM bytes by tensor or kernel kind, the
    GPU busy for ``busy_s`` of it, ``macs`` useful multiply-accumulates."""
    return Metrics(
        cycles=latency_s * spec.clock_hz,
        latency_s=latency_s,
        energy_pj=sum(energy_terms.values()),
        energy_breakdown_pj=energy_terms,
        traffic_bytes={"HBM": hbm_bytes, "L2": {"all": total.l2_bytes}},
        utilization={"SM": min(1.0, busy_s / latency_s) if latency_s > 0 else 0.0},
        compute_cycles=total.t_kernel_s * spec.clock_hz,
        transfer_cycles={
            "HBM": (total.dram_read_bytes + total.dram_write_bytes)
            / spec.hbm_bandwidth_bytes_per_s
            * spec.clock_hz
        },
        macs=float(macs),
        padded_macs=float(macs),
        model="gpu",
        notes=notes,
    )

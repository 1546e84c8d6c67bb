"""Timing convention and board energy of one call on a GPU.

Back-to-back calls (``loop_ms``, the energy loop) overlap host and GPU: a
call takes the longer of its host issue time h and its GPU time G. h is
``host_op_s`` per host operation (device allocation or kernel launch /
memcpy) the call makes, counted per API in ``sim.gpu.spec.HOST_OPS`` from
the PyTorch source (one number for every API); G is the kernel time plus
``launch_s`` per kernel or memcpy.

A single call between CUDA events (``median_ms``): the timing loop records
the start event, issues the call and records the end event with no
synchronisation in between, so each iteration costs the host h +
``event_period_s`` (two event records: 2 x ``host_op_s``). While G + h is
shorter than that period the GPU is idle when the start event is recorded
and the events bracket h + G (the kernel starts only once the host has
issued it); a GPU busier than the host period
runs behind the host and the events bracket G alone; in between the host
period bounds the bracketed time. So
``median = max(G, min(h + G, h + event_period_s))``.

Energy per call (``energy_loop_mj / energy_calls``): board power is idle
power plus an "active" power while a stream of calls keeps the clocks up,
over the loop time, plus dynamic energy per FLOP by compute class and per
byte moved in HBM and L2 (the form of Wattchmen and of Dally's per-access
energies, see /work/shared/REFERENCES.md; values calibrated on kernels.csv).
"""

from __future__ import annotations

from sim.gpu.spec import HOST_OPS, GpuModelError, GpuParams, GpuSpec
from sim.gpu.tiling import KernelCost


def host_time_s(cost: KernelCost, params: GpuParams) -> float:
    """Host issue time of a call: ``host_op_s`` per host operation."""
    return host_ops(cost) * params.host_op_s


def host_ops(cost: KernelCost) -> int:
    """Host operations (allocations + launches) of a call's PyTorch calls."""
    try:
        return sum(HOST_OPS[h] for h in cost.host_calls)
    except KeyError as exc:
        raise GpuModelError(f"unknown host API family {exc}") from None


def gpu_time_s(cost: KernelCost, params: GpuParams) -> float:
    return cost.t_kernel_s + cost.n_kernels * params.launch_s


def median_time_s(cost: KernelCost, params: GpuParams) -> float:
    """Time of one call bracketed by CUDA events (``median_ms`` convention)."""
    host = host_time_s(cost, params)
    gpu = gpu_time_s(cost, params)
    return max(gpu, host + min(gpu, params.event_period_s))


def loop_time_s(cost: KernelCost, params: GpuParams) -> float:
    """Time per call of back-to-back calls (``loop_ms`` convention)."""
    return max(host_time_s(cost, params), gpu_time_s(cost, params))


ENERGY_CLASSES: tuple[str, ...] = (
    "tensor16",
    "tensor16_sync",
    "tensor8",
    "tf32",
    "cuda",
    "rowpass",
)


def energy_terms(cost: KernelCost, spec: GpuSpec, params: GpuParams) -> dict[str, float]:
    """Energy per call split by component, in pJ (loop convention)."""
    t = loop_time_s(cost, params)
    e_flop = {
        "tensor16": params.e_tensor16_pj,
        "tensor16_sync": params.e_tensor16_sync_pj,
        "rowpass": params.e_rowpass_pj,
        "tensor8": params.e_tensor8_pj,
        "tf32": params.e_tf32_pj,
        "cuda": params.e_cuda_pj,
    }
    out = {
        "idle": spec.idle_power_w * t * 1e12,
        # SMs busy: clocks and voltage up (a device copy runs on the copy
        # engine and leaves the SMs idle)
        "active": params.active_power_w * min(t, gpu_time_s(cost, params)) * 1e12,
        "HBM": params.e_hbm_pj_per_byte * (cost.dram_read_bytes + cost.dram_write_bytes),
        "L2": params.e_l2_pj_per_byte * cost.l2_bytes,
    }
    for cls, n in cost.flops.items():
        out[f"compute.{cls}"] = e_flop.get(cls, params.e_cuda_pj) * n
    # the board power limit (TDP): a kernel whose power would exceed it is
    # clocked down; its energy is the limit x time (non-idle terms scaled)
    cap = spec.tdp_w * t * 1e12
    total = sum(out.values())
    if total > cap > out["idle"]:
        f = (cap - out["idle"]) / (total - out["idle"])
        out = {k: (v if k == "idle" else v * f) for k, v in out.items()}
    return out


def power_capped(cost: KernelCost, spec: GpuSpec, params: GpuParams) -> bool:
    """Whether the predicted power of a back-to-back loop of calls hits the TDP."""
    t = loop_time_s(cost, params)
    e = energy_terms(cost, spec, params)
    return sum(e.values()) >= spec.tdp_w * t * 1e12 * (1 - 1e-9)


def energy_pj(cost: KernelCost, spec: GpuSpec, params: GpuParams) -> float:
    return sum(energy_terms(cost, spec, params).values())

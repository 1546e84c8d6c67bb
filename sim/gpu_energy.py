"""Timing convention and board energy of one call on a GPU.

Back-to-back calls (``loop_ms``, the energy loop) overlap host and GPU: a
call takes the longer of its host issue time (PyTorch dispatch + library,
``host_*_s`` by API family, summed over the calls of an op) and its GPU time
(kernels + ``launch_s`` each).

A single call between CUDA events (``median_ms``) shows three regimes in the
H100 data, those of a timing loop that records start, issues the call and
records end with no synchronisation in between (G the GPU time, h the host
issue time):

* G <= ``event_s``: host-bound, the events bracket h + ``event_s``;
* ``event_s`` < G < ``event_period_s``: the GPU idled while the host issued
  the call, so the kernels start only after h: h + G;
* G large: the GPU runs behind the host and the events are processed back
  to back with the kernels: G. Between the last two the host period of one
  timing iteration (h + ``event_period_s``) bounds the bracketed time.

So ``median = max(G, h + min(max(event_s, G), event_period_s))``.

Energy per call (``energy_loop_mj / energy_calls``): board power is idle
power plus an "active" power while a stream of calls keeps the clocks up,
over the loop time, plus dynamic energy per FLOP by compute class and per
byte moved in HBM and L2 (the form of Wattchmen and of Dally's per-access
energies, see /work/shared/REFERENCES.md; values calibrated on kernels.csv).
"""

from __future__ import annotations

from sim.gpu_spec import GpuParams, GpuSpec
from sim.gpu_tiling import KernelCost


def host_time_s(cost: KernelCost, params: GpuParams) -> float:
    per = {
        "cublas": params.host_cublas_s,
        "sdpa": params.host_sdpa_s,
        "eltwise": params.host_eltwise_s,
        "copy": params.host_copy_s,
    }
    return sum(per.get(h, params.host_cublas_s) for h in cost.host_calls)


def gpu_time_s(cost: KernelCost, params: GpuParams) -> float:
    return cost.t_kernel_s + cost.n_kernels * params.launch_s


def median_time_s(cost: KernelCost, params: GpuParams) -> float:
    """Time of one call bracketed by CUDA events (``median_ms`` convention)."""
    host = host_time_s(cost, params)
    gpu = gpu_time_s(cost, params)
    return max(gpu, host + min(max(params.event_s, gpu), params.event_period_s))


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

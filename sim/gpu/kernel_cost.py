"""One call's cost as a scalar record (:class:`KernelCost`).

The cascade lowering (``sim.gpu.cascade``) builds calls one at a time and
adds them up; the vectorised model (``sim.gpu.kernels.batch_costs``) gives
the same numbers for many rows at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.gpu.costs import Costs, costs
from sim.gpu.spec import HOST_OPS, GpuModelError


@dataclass(frozen=True)
class KernelCost:
    """Cost of one PyTorch-level call (one or more GPU kernels)."""

    #: GPU busy time summed over the call's kernels (kernel durations, no
    #: launch gaps), s
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
    #: host operations of an eager call when known directly (else counted
    #: from host_calls with sim.gpu.spec.HOST_OPS)
    host_ops: float | None = None

    def __add__(self, other: KernelCost) -> KernelCost:
        flops = dict(self.flops)
        for k, v in other.flops.items():
            flops[k] = flops.get(k, 0.0) + v
        ho = None
        if self.host_ops is not None or other.host_ops is not None:
            ho = host_ops(self) + host_ops(other)
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
            host_ops=ho,
        )

    def as_costs(self) -> Costs:
        """This call as a one-row :class:`sim.gpu.costs.Costs` (the kernel
        durations in ``exec_s``, no per-kernel ramp added again)."""
        return costs(
            1,
            exec_s=self.t_kernel_s,
            n_kernels=float(self.n_kernels),
            host_ops=host_ops(self),
            dram_read=self.dram_read_bytes,
            dram_write=self.dram_write_bytes,
            ncu_dram=self.ncu_dram_bytes,
            l2_bytes=self.l2_bytes,
            flops={k: np.array([v]) for k, v in self.flops.items()},
        )


def host_ops(cost: KernelCost) -> float:
    """Host operations (allocations + launches) of a call's PyTorch calls."""
    if cost.host_ops is not None:
        return float(cost.host_ops)
    try:
        return float(sum(HOST_OPS[h] for h in cost.host_calls))
    except KeyError as exc:
        raise GpuModelError(f"unknown host API family {exc}") from None

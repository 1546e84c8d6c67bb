"""Vector cost records: what each row's kernels do, before timing and energy.

Every op model (``sim.gpu.gemm_select``, ``sim.gpu.attention``,
``sim.gpu.kernels``) returns a :class:`Costs` with one entry per row: the
summed execution time of the call's kernels (without the per-kernel fixed
terms, which ``sim.gpu.timing`` adds by convention), the number of kernels,
the host operations of an eager call, HBM and L2 bytes and the useful work
by compute class (for energy).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

#: compute classes of the energy model (per-operation energies in GpuParams)
FLOP_CLASSES: tuple[str, ...] = ("tensor16", "tensor16_sync", "tensor8", "tf32", "cuda", "rowpass")

#: what bounds a call's kernels (the largest term)
BOUNDS: tuple[str, ...] = ("compute", "memory", "latency", "host")


@dataclass
class Costs:
    """Per-row arrays (length n)."""

    #: summed kernel execution time beyond each kernel's fixed ramp, s
    exec_s: np.ndarray
    #: GPU kernels (and memcpys) the call launches
    n_kernels: np.ndarray
    #: host operations of an eager call (sim.gpu.spec.HOST_OPS)
    host_ops: np.ndarray
    #: steady-state HBM traffic (every output eventually written back)
    dram_read: np.ndarray
    dram_write: np.ndarray
    #: HBM bytes as Nsight Compute counts them per kernel (cold L2 before
    #: each kernel; dirty lines still in L2 at the kernel's end not counted)
    ncu_dram: np.ndarray
    l2_bytes: np.ndarray
    #: compute-bound part and memory-bound part of exec_s (for "bound")
    t_compute: np.ndarray
    t_memory: np.ndarray
    flops: dict[str, np.ndarray] = field(default_factory=dict)
    #: 1 where the call's SMs are busy (a device copy runs on the copy engine)
    sm_busy: np.ndarray | None = None

    @classmethod
    def zeros(cls, n: int) -> Costs:
        z = np.zeros(n)
        return cls(
            exec_s=z.copy(),
            n_kernels=z.copy(),
            host_ops=z.copy(),
            dram_read=z.copy(),
            dram_write=z.copy(),
            ncu_dram=z.copy(),
            l2_bytes=z.copy(),
            t_compute=z.copy(),
            t_memory=z.copy(),
            flops={c: z.copy() for c in FLOP_CLASSES},
            sm_busy=np.ones(n),
        )

    def __add__(self, other: Costs) -> Costs:
        """The kernels of both, one after the other (same rows)."""
        out = Costs.zeros(len(self.exec_s))
        for f in fields(Costs):
            if f.name == "flops":
                out.flops = {
                    c: self.flops.get(c, 0.0) + other.flops.get(c, 0.0) for c in FLOP_CLASSES
                }
            elif f.name == "sm_busy":
                out.sm_busy = np.maximum(_ones(self), _ones(other))
            else:
                setattr(out, f.name, getattr(self, f.name) + getattr(other, f.name))
        return out

    def put(self, idx: np.ndarray, part: Costs) -> None:
        """Write ``part`` (rows ``idx`` of this record) into place."""
        for f in fields(Costs):
            if f.name == "flops":
                for c in FLOP_CLASSES:
                    self.flops[c][idx] = part.flops.get(c, 0.0)
            elif f.name == "sm_busy":
                self.sm_busy[idx] = _ones(part)
            else:
                getattr(self, f.name)[idx] = getattr(part, f.name)

    def row(self, i: int) -> dict[str, float]:
        d = {
            f.name: float(getattr(self, f.name)[i])
            for f in fields(Costs)
            if f.name not in ("flops", "sm_busy")
        }
        d["sm_busy"] = float(_ones(self)[i])
        d.update({f"flops_{c}": float(v[i]) for c, v in self.flops.items()})
        return d


def _ones(c: Costs) -> np.ndarray:
    return c.sm_busy if c.sm_busy is not None else np.ones(len(c.exec_s))


def costs(
    n: int,
    *,
    exec_s: np.ndarray,
    dram_read: np.ndarray,
    dram_write: np.ndarray,
    n_kernels: np.ndarray | float = 1.0,
    host_ops: np.ndarray | float = 0.0,
    ncu_dram: np.ndarray | None = None,
    l2_bytes: np.ndarray | None = None,
    t_compute: np.ndarray | None = None,
    t_memory: np.ndarray | None = None,
    flops: dict[str, np.ndarray] | None = None,
    sm_busy: np.ndarray | float = 1.0,
) -> Costs:
    """A :class:`Costs` with scalars broadcast to length ``n``; by default
    each row is one kernel and issues no host op of its own."""

    def arr(v: np.ndarray | float | None, default: np.ndarray | float = 0.0) -> np.ndarray:
        return np.broadcast_to(np.asarray(default if v is None else v, np.float64), (n,)).copy()

    fl = {c: arr((flops or {}).get(c)) for c in FLOP_CLASSES}
    rd, wr = arr(dram_read), arr(dram_write)
    return Costs(
        exec_s=arr(exec_s),
        n_kernels=arr(n_kernels),
        host_ops=arr(host_ops),
        dram_read=rd,
        dram_write=wr,
        ncu_dram=arr(ncu_dram, rd + wr),
        l2_bytes=arr(l2_bytes, rd + wr),
        t_compute=arr(t_compute),
        t_memory=arr(t_memory),
        flops=fl,
        sm_busy=arr(sm_busy),
    )

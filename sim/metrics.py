"""What every cost model returns (analytical, discrete-event, GPU).

Units are in the field names. Traffic is per storage level and tensor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class TensorTraffic:
    """Word-level actions of one tensor at one storage level."""

    reads: float = 0.0
    writes: float = 0.0
    #: read-modify-write of partial sums (counted once here, as one read and
    #: one write in bytes)
    updates: float = 0.0
    bytes: float = 0.0


@dataclass(frozen=True)
class Metrics:
    cycles: float
    latency_s: float
    energy_pj: float
    #: component -> pJ (e.g. "DRAM", "GlobalBuffer", "PE_array.mac", "static")
    energy_breakdown_pj: dict[str, float]
    #: level -> tensor -> bytes moved into/out of that level (reads + writes)
    traffic_bytes: dict[str, dict[str, float]]
    #: level -> tensor -> TensorTraffic (word counts)
    accesses: dict[str, dict[str, TensorTraffic]] = field(default_factory=dict)
    #: compute unit -> busy fraction of the latency (0..1)
    utilization: dict[str, float] = field(default_factory=dict)
    compute_cycles: float = 0.0
    #: level -> cycles its transfers need on their own
    transfer_cycles: dict[str, float] = field(default_factory=dict)
    macs: float = 0.0
    padded_macs: float = 0.0
    #: "analytical" | "des" | "gpu" | ...
    model: str = "analytical"
    mapping: dict[str, Any] | None = None
    #: free-form extra facts (e.g. steady-state extrapolation used)
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Metrics:
        """Inverse of :meth:`to_dict` (e.g. for metrics read back from JSON)."""
        data = dict(d)
        data["accesses"] = {
            lv: {
                t: a if isinstance(a, TensorTraffic) else TensorTraffic(**a) for t, a in ts.items()
            }
            for lv, ts in (data.get("accesses") or {}).items()
        }
        return cls(**data)

    @property
    def edp_pj_s(self) -> float:
        """Energy-delay product (pJ x s)."""
        return self.energy_pj * self.latency_s

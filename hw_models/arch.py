"""The parametric hardware description every mapper and cost model reads.

An :class:`Architecture` is a chain (a degenerate tree: one path from DRAM to
the compute units) of :class:`StorageLevel` values, outermost (DRAM, HBM)
first, with spatial fan-out between levels and :class:`ComputeUnit` values
under the innermost level. All values are SI with the unit in the field name.
``capacity_bytes = None`` means unbounded (off-chip memory).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StorageLevel:
    name: str
    #: bytes per instance; None = unbounded (DRAM/HBM)
    capacity_bytes: float | None
    word_bits: int
    read_bw_bytes_per_cycle: float
    write_bw_bytes_per_cycle: float
    read_energy_pj_per_word: float
    write_energy_pj_per_word: float
    #: read and write share one port budget (read_bw is then the total)
    shared_bw: bool = False
    banks: int = 1
    leakage_w: float = 0.0
    area_mm2: float = 0.0
    #: how many copies of this level exist (e.g. one register file per PE)
    instances: int = 1
    #: tensor names (or roles "input"/"weight"/"output") the level may hold;
    #: None means any tensor
    holds: tuple[str, ...] | None = None
    double_buffered: bool = True
    #: spatial fan-out from this level to the next one down (or to compute)
    fanout_x: int = 1
    fanout_y: int = 1
    multicast: bool = True
    spatial_reduce: bool = True

    @property
    def fanout(self) -> int:
        return self.fanout_x * self.fanout_y


@dataclass(frozen=True)
class ComputeUnit:
    name: str
    #: "array2d", "array1d", "sm", "dsp_array"
    kind: str
    #: processing elements (MAC lanes); rows x cols for a 2D array
    pes: int
    #: operations per cycle per PE, by operator class ("mac", "add", "max",
    #: "exp", "div") -- for the datatype the design is built for
    ops_per_cycle: dict[str, float]
    #: energy per operation by operator class
    energy_pj_per_op: dict[str, float]
    rows: int = 1
    cols: int = 1
    #: "os" | "ws" | "is" for systolic arrays, "" otherwise
    dataflow: str = ""
    datatype_bits: int = 16
    area_mm2: float = 0.0
    leakage_w: float = 0.0
    #: storage level that feeds this unit; "" = the innermost level. (The
    #: FuseMax 1D array reads the GlobalBuffer directly, not a PE_RF.)
    fed_by: str = ""
    #: throughput of other datatypes relative to the native one, e.g. an
    #: H100 tensor core {"bf16": 1, "fp8": 2, "tf32": 0.5}; empty = native only
    dtype_scale: dict[str, float] = field(default_factory=dict)

    def peak_ops_per_s(self, op: str, clock_hz: float, dtype: str | None = None) -> float:
        """Peak rate of operator class ``op`` over all PEs (0 if unsupported);
        ``dtype`` scales it by :attr:`dtype_scale` (0 for an unlisted dtype)."""
        rate = self.pes * self.ops_per_cycle.get(op, 0.0) * clock_hz
        if dtype is None:
            return rate
        return rate * self.dtype_scale.get(dtype, 0.0)


@dataclass(frozen=True)
class Architecture:
    name: str
    #: "gpu" | "spatial" | "fpga"
    family: str
    clock_hz: float
    #: outermost (off-chip) first
    levels: tuple[StorageLevel, ...]
    compute: tuple[ComputeUnit, ...]
    static_power_w: float = 0.0
    #: the family parameters the architecture was built from (what a sweep or
    #: ``einsim hw derive`` varies); plain JSON-able values
    params: dict[str, Any] = field(default_factory=dict)
    #: where the figures come from
    sources: tuple[str, ...] = ()
    #: explicit per-component overrides applied after the family built the
    #: tree: {level or unit name: {field: value}}; kept so that
    #: ``hw_models.derive`` can re-apply them to a rebuilt variant
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def level(self, name: str) -> StorageLevel:
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise KeyError(name)

    def unit(self, name: str) -> ComputeUnit:
        for cu in self.compute:
            if cu.name == name:
                return cu
        raise KeyError(name)

    @property
    def area_mm2(self) -> float:
        """Total area: per-instance level area x instances + compute units."""
        return sum(lv.area_mm2 * lv.instances for lv in self.levels) + sum(
            cu.area_mm2 for cu in self.compute
        )

    @property
    def leakage_w(self) -> float:
        """Static power: the architecture's own plus every component's leakage."""
        return (
            self.static_power_w
            + sum(lv.leakage_w * lv.instances for lv in self.levels)
            + sum(cu.leakage_w for cu in self.compute)
        )

    def peak_ops_per_s(self, op: str = "mac", unit: str | None = None) -> float:
        """Peak rate of operator class ``op`` (one unit, or all units summed)."""
        units = [self.unit(unit)] if unit else list(self.compute)
        return sum(cu.peak_ops_per_s(op, self.clock_hz) for cu in units)

"""What the importers share: the report, the result, and assembling the tree.

An importer turns the peer's memories into :class:`Draft` levels (outermost
first: name, memories, the fan-out below it, what that fan-out shares) and
calls :func:`assemble`, which numbers the instances (the product of the
fan-outs above), builds the levels and validates the architecture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hw_models import tables
from hw_models.arch import Architecture, ComputeUnit, Memory
from hw_models.errors import HardwareError
from hw_models.memories import memory_level
from hw_models.validate import validate

#: einsim's roles of the peers' operand names
TIMELOOP_ROLES = {"Inputs": "input", "Weights": "weight", "Outputs": "output"}
ALL_ROLES = ("input", "weight", "output")


@dataclass
class Report:
    """What an importer carried over, left out and assumed."""

    carried: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def keys(self, where: str, data: Any, known: set[str] | frozenset[str]) -> None:
        """Report every key of ``data`` that the importer does not know."""
        if isinstance(data, dict):
            for k in data:
                if k != "!" and k not in known:
                    self.left_out.append(f"{where}.{k}: not a field the importer knows")


@dataclass(frozen=True)
class ImportResult:
    arch: Architecture
    #: "zigzag" | "timeloop" | "accelforge"
    tool: str
    file: str
    carried: tuple[str, ...]
    left_out: tuple[str, ...]
    notes: tuple[str, ...]


@dataclass
class Draft:
    """One level being assembled (outermost first)."""

    name: str
    memories: list[Memory]
    fanout_x: int = 1
    fanout_y: int = 1
    share_x: tuple[str, ...] | None = None
    share_y: tuple[str, ...] | None = None


def array_shape(drafts: list[Draft]) -> tuple[int, int]:
    """(rows, cols) of the physical array: the fan-out of the innermost
    level that has one (what the analytical model treats as the 2D array)."""
    for d in reversed(drafts):
        if d.fanout_x * d.fanout_y > 1:
            return d.fanout_y, d.fanout_x
    return 1, 1


def assemble(
    name: str,
    drafts: list[Draft],
    compute: list[ComputeUnit],
    *,
    clock_hz: float,
    sources: list[str],
    family: str = "spatial",
) -> Architecture:
    """The validated architecture of ``drafts`` (instances from the fan-outs)."""
    levels = []
    instances = 1
    for d in drafts:
        levels.append(
            memory_level(
                d.name,
                d.memories,
                instances=instances,
                fanout_x=d.fanout_x,
                fanout_y=d.fanout_y,
                share_x=d.share_x,
                share_y=d.share_y,
            )
        )
        instances *= d.fanout_x * d.fanout_y
    arch = Architecture(
        name=name,
        family=family,
        clock_hz=clock_hz,
        levels=tuple(levels),
        compute=tuple(compute),
        sources=tuple(sources),
    )
    return validate(arch)


def source_line(file: str, tool: str) -> str:
    """The ``sources`` entry of an imported architecture."""
    return f"imported by `einsim hw import --from {tool}` from {Path(file).name}"


# -------------------------------------------------- estimates without a table


def estimate_pj_per_bit(kind: str, node_nm: float, bank_bytes: float, dram_kind: str) -> float:
    """einsim's own per-bit access energy of a memory the peer file gives no
    energy for: "dram" (table by kind), "sram" (Horowitz SRAM read at the
    bank size), "regfile" (Aladdin register); node-scaled like the spatial
    family (docs/hardware.md, "Tables and node scaling")."""
    node = min(max(node_nm, tables.MIN_NODE_NM), tables.MAX_NODE_NM)
    if kind == "dram":
        return tables.dram_pj_per_bit(dram_kind)
    if kind == "regfile":
        return tables.register_energy_pj_per_bit(node)
    return tables.sram_read_pj_per_bit(max(bank_bytes, 1.0), node)


def dram_kind_of(text: Any) -> str:
    """einsim's DRAM table key for a peer's DRAM type ("LPDDR4" -> lpddr4);
    unknown types fall back to lpddr4."""
    key = str(text or "").lower().replace("-", "").replace("_", "")
    return key if key in tables.dram_kinds() else "lpddr4"


def clean(x: float) -> float:
    """``x`` to 12 significant digits: unit conversions (J -> pJ, m^2 -> mm^2)
    without their binary noise (0.084e-12 * 1e12 = 0.08399999999999999)."""
    return x if not math.isfinite(x) else float(f"{x:.12g}")


def positive_int(value: Any, what: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 1:
        raise HardwareError(f"{where}: {what} must be a positive integer, got {value!r}")
    if float(value) != int(value):
        raise HardwareError(f"{where}: {what} must be a whole number, got {value!r}")
    return int(value)

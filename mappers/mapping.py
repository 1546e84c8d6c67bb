"""The mapping of one Einsum onto an Architecture (Timeloop-style loop nest).

A :class:`Mapping` has one :class:`LevelMapping` per storage level of the
architecture, outermost first and in the same order as
``Architecture.levels``. At each level every rank has a temporal factor (a
loop at that level, in ``order``) and a spatial factor (fan-out from that
level to the one below). The product of a rank's factors over all levels must
be >= the rank's size; any excess is padding, counted as wasted work.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LevelMapping:
    level: str
    #: rank -> temporal factor at this level (missing = 1)
    temporal: dict[str, int] = field(default_factory=dict)
    #: rank -> spatial factor from this level to the next one down
    spatial: dict[str, int] = field(default_factory=dict)
    #: rank -> "x" | "y": which fan-out axis a spatial rank uses
    spatial_axes: dict[str, str] = field(default_factory=dict)
    #: temporal loop order, outermost first (ranks with factor 1 may be omitted)
    order: tuple[str, ...] = ()
    #: tensors kept at this level; the others bypass it. None = keep all
    #: tensors the level may hold.
    keep: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Mapping:
    einsum: str
    levels: tuple[LevelMapping, ...]
    #: compute unit the Einsum is bound to (Architecture.compute[].name)
    unit: str = ""

    def factor(self, rank: str) -> int:
        """Product of the rank's temporal and spatial factors over all levels."""
        p = 1
        for lm in self.levels:
            p *= lm.temporal.get(rank, 1) * lm.spatial.get(rank, 1)
        return p

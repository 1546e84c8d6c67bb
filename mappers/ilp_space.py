"""The mapping space every searcher (ILP, random, exhaustive) works in.

A point of the space is

* a **tiling**: for every rank, an ordered tuple of factors, one per *slot*,
  whose product is exactly the rank size (no padding). A slot is a storage
  level's temporal loop (``kind="T"``) or one fan-out axis of a level
  (``kind="x"`` / ``"y"``, the spatial factor from that level to the next one
  down);
* a **loop order** per level (ranks with factor 1 omitted);
* the tensors each level **keeps** (``None`` = every tensor the level may hold).

Sharing one space keeps the comparison honest: the exhaustive optimum is an
optimum over exactly the points the ILP and random search can return.

Tile sizes follow Timeloop's convention: a level holds the data touched by
its own temporal loops, its fan-out and every level below it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import permutations

from hw_models.arch import Architecture
from mappers.factors import count_splits, prime_factors
from mappers.mapping import LevelMapping, Mapping
from workloads.errors import EinsimError
from workloads.ir import Access, Einsum

try:  # the analytical engineer's error type, once it exists
    from mappers.mapping import MappingError
except ImportError:  # pragma: no cover - only before mapping.py grows it

    class MappingError(EinsimError):  # type: ignore[no-redef]
        """No valid mapping of an Einsum onto an architecture."""


#: operator class an Einsum's map operator runs on
_OP_CLASS = {
    "mul": "mac",
    "add": "add",
    "sub": "add",
    "max": "max",
    "min": "max",
    "div": "div",
    "exp": "exp",
    "expdiff": "exp",
    "copy": "add",
}


@dataclass(frozen=True)
class Slot:
    level: int
    #: "T" temporal loop at the level, "x"/"y" fan-out axis below it
    kind: str
    #: fan-out bound for spatial slots, None for temporal ones
    bound: int | None


def fmt_bytes(n: float) -> str:
    """``4096 -> '4 KiB'``, ``512 -> '512 B'`` (for error messages)."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            v = n / size
            return f"{v:.3g} {unit}"
    return f"{n:.3g} B"


def tensor_role(einsum: Einsum, tensor: str) -> str:
    """"output" for the output, "input" for the first operand, "weight" for the second."""
    if tensor == einsum.output.tensor:
        return "output"
    names = [a.tensor for a in einsum.inputs]
    return "weight" if len(names) > 1 and names.index(tensor) == 1 else "input"


class MapSpace:
    """The tiling / order / bypass space of one Einsum on one architecture."""

    def __init__(self, einsum: Einsum, arch: Architecture) -> None:
        if not arch.levels:
            raise MappingError(f"architecture {arch.name!r} has no storage levels")
        self.einsum = einsum
        self.arch = arch
        self.ranks: tuple[str, ...] = tuple(r for r, _ in einsum.rank_sizes_items)
        self.sizes: dict[str, int] = dict(einsum.rank_sizes_items)
        for r, s in self.sizes.items():
            if not isinstance(s, int) or s < 1:
                raise MappingError(f"Einsum {einsum.name}: rank {r} has size {s!r}, expected a positive integer")
        # one Access per distinct tensor, output first
        seen: dict[str, Access] = {}
        for acc in einsum.accesses:
            seen.setdefault(acc.tensor, acc)
        self.accesses: tuple[Access, ...] = tuple(seen.values())
        self.tensors: tuple[str, ...] = tuple(seen)
        self.output = einsum.output.tensor
        self.relevant: dict[str, frozenset[str]] = {a.tensor: a.ranks for a in self.accesses}
        self.levels = arch.levels
        self.nlev = len(arch.levels)
        self.holdable: list[frozenset[str]] = []
        for i, lv in enumerate(arch.levels):
            if i == 0 or lv.holds is None:
                self.holdable.append(frozenset(self.tensors))
            else:
                self.holdable.append(
                    frozenset(
                        t for t in self.tensors if t in lv.holds or tensor_role(einsum, t) in lv.holds
                    )
                )
        slots: list[Slot] = []
        for i, lv in enumerate(arch.levels):
            slots.append(Slot(i, "T", None))
            if lv.fanout_x > 1:
                slots.append(Slot(i, "x", int(lv.fanout_x)))
            if lv.fanout_y > 1:
                slots.append(Slot(i, "y", int(lv.fanout_y)))
        self.slots: tuple[Slot, ...] = tuple(slots)
        self.unit = self._pick_unit()

    # ------------------------------------------------------------------ basics
    def _pick_unit(self) -> str:
        if not self.arch.compute:
            raise MappingError(f"architecture {self.arch.name!r} has no compute unit")
        cls = _OP_CLASS.get(self.einsum.map_op, "mac")
        for cu in self.arch.compute:
            if cu.ops_per_cycle.get(cls, 0) > 0:
                return cu.name
        return self.arch.compute[0].name

    def tiling_count(self) -> int:
        """Number of tilings before capacity / fan-out pruning (closed form)."""
        return math.prod(count_splits(s, len(self.slots)) for s in self.sizes.values())

    def primes(self, rank: str) -> tuple[tuple[int, int], ...]:
        return prime_factors(self.sizes[rank])

    # --------------------------------------------------------- tile geometry
    def cumulative(self, tiling: dict[str, tuple[int, ...]], level: int) -> dict[str, int]:
        """rank -> product of its factors at ``level`` and every level below."""
        out = {}
        for r in self.ranks:
            p = 1
            for s, f in zip(self.slots, tiling[r], strict=True):
                if s.level >= level:
                    p *= f
            out[r] = p
        return out

    @staticmethod
    def tile_elements(acc: Access, cum: dict[str, int]) -> int:
        return math.prod(ix.extent(cum) for ix in acc.indices)

    def tensor_bits(self, tensor: str) -> int:
        for a in self.accesses:
            if a.tensor == tensor:
                return a.bits
        raise KeyError(tensor)

    def kept(self, level: int, keep: tuple[str, ...] | None) -> frozenset[str]:
        if level == 0:
            return frozenset(self.tensors)
        if keep is None:
            return self.holdable[level]
        return frozenset(keep) & self.holdable[level]

    def level_bytes(
        self, tiling: dict[str, tuple[int, ...]], level: int, keep: tuple[str, ...] | None = None
    ) -> float:
        cum = self.cumulative(tiling, level)
        kept = self.kept(level, keep)
        return sum(self.tile_elements(a, cum) * a.bits / 8 for a in self.accesses if a.tensor in kept)

    def violation(
        self,
        tiling: dict[str, tuple[int, ...]],
        keeps: tuple[tuple[str, ...] | None, ...] | None = None,
    ) -> str | None:
        """Why a tiling is invalid (capacity, fan-out, products), or None."""
        for r in self.ranks:
            if math.prod(tiling[r]) != self.sizes[r]:
                return f"factors of rank {r} multiply to {math.prod(tiling[r])}, not {self.sizes[r]}"
        for i, s in enumerate(self.slots):
            if s.bound is not None:
                used = math.prod(tiling[r][i] for r in self.ranks)
                if used > s.bound:
                    lv = self.levels[s.level].name
                    return f"spatial factors {used} exceed fan-out {s.kind}={s.bound} of level {lv}"
        for lvl in range(self.nlev):
            # one axis per rank per level (LevelMapping has one spatial factor per rank)
            for r in self.ranks:
                axes = [
                    s.kind for i, s in enumerate(self.slots) if s.level == lvl and s.kind != "T" and tiling[r][i] > 1
                ]
                if len(axes) > 1:
                    return f"rank {r} is spread over two fan-out axes of level {self.levels[lvl].name}"
        for lvl, lv in enumerate(self.levels):
            if lv.capacity_bytes is None:
                continue
            need = self.level_bytes(tiling, lvl, None if keeps is None else keeps[lvl])
            if need > lv.capacity_bytes:
                return f"tiles need {fmt_bytes(need)} at level {lv.name} ({fmt_bytes(lv.capacity_bytes)})"
        return None

    def check_feasible(self) -> None:
        """Raise MappingError naming the constraint no mapping can meet."""
        for lvl, lv in enumerate(self.levels):
            if lv.capacity_bytes is None or lvl == 0:
                continue
            total = 0.0
            for a in self.accesses:
                if a.tensor not in self.holdable[lvl]:
                    continue
                smallest = a.bits / 8  # a 1-element tile
                total += smallest
                if smallest > lv.capacity_bytes:
                    raise MappingError(
                        f"Einsum {self.einsum.name}: the smallest tile of tensor {a.tensor} "
                        f"({fmt_bytes(smallest)}) does not fit level {lv.name} ({fmt_bytes(lv.capacity_bytes)})"
                    )
            if total > lv.capacity_bytes:
                raise MappingError(
                    f"Einsum {self.einsum.name}: the smallest tiles of tensors "
                    f"{', '.join(sorted(self.holdable[lvl]))} ({fmt_bytes(total)} together) "
                    f"do not fit level {lv.name} ({fmt_bytes(lv.capacity_bytes)})"
                )
        top = self.levels[0]
        if top.capacity_bytes is not None:
            need = sum(
                self.tile_elements(a, self.sizes) * a.bits / 8 for a in self.accesses
            )
            if need > top.capacity_bytes:
                raise MappingError(
                    f"Einsum {self.einsum.name}: its tensors ({fmt_bytes(need)}) do not fit "
                    f"the outermost level {top.name} ({fmt_bytes(top.capacity_bytes)})"
                )

    # -------------------------------------------------------------- mappings
    def default_order(self, tiling: dict[str, tuple[int, ...]], level: int) -> tuple[str, ...]:
        idx = [i for i, s in enumerate(self.slots) if s.level == level and s.kind == "T"][0]
        return tuple(r for r in self.ranks if tiling[r][idx] > 1)

    def orders(self, tiling: dict[str, tuple[int, ...]], level: int) -> list[tuple[str, ...]]:
        """Every loop order of the ranks with a temporal factor > 1 at ``level``."""
        return list(permutations(self.default_order(tiling, level)))

    def stationary_order(
        self, tiling: dict[str, tuple[int, ...]], level: int, tensor: str | None
    ) -> tuple[str, ...]:
        """Order with the ranks irrelevant to ``tensor`` innermost (it stays put)."""
        base = self.default_order(tiling, level)
        if tensor is None:
            return base
        rel = self.relevant[tensor]
        return tuple(r for r in base if r in rel) + tuple(r for r in base if r not in rel)

    def to_mapping(
        self,
        tiling: dict[str, tuple[int, ...]],
        orders: tuple[tuple[str, ...], ...] | None = None,
        keeps: tuple[tuple[str, ...] | None, ...] | None = None,
    ) -> Mapping:
        levels = []
        for lvl, lv in enumerate(self.levels):
            temporal: dict[str, int] = {}
            spatial: dict[str, int] = {}
            axes: dict[str, str] = {}
            for i, s in enumerate(self.slots):
                if s.level != lvl:
                    continue
                for r in self.ranks:
                    f = tiling[r][i]
                    if f == 1:
                        continue
                    if s.kind == "T":
                        temporal[r] = f
                    else:
                        spatial[r] = spatial.get(r, 1) * f
                        axes[r] = s.kind
            order = orders[lvl] if orders is not None else self.default_order(tiling, lvl)
            keep = None if keeps is None else keeps[lvl]
            levels.append(
                LevelMapping(
                    level=lv.name,
                    temporal=temporal,
                    spatial=spatial,
                    spatial_axes=axes,
                    order=tuple(order),
                    keep=None if keep is None else tuple(keep),
                )
            )
        return Mapping(einsum=self.einsum.name, levels=tuple(levels), unit=self.unit)

    def tiling_of(self, mapping: Mapping) -> dict[str, tuple[int, ...]]:
        """Inverse of :meth:`to_mapping` for the tiling part."""
        by_name = {lm.level: lm for lm in mapping.levels}
        out: dict[str, tuple[int, ...]] = {}
        for r in self.ranks:
            fs = []
            for s in self.slots:
                lm = by_name.get(self.levels[s.level].name)
                if lm is None:
                    fs.append(1)
                elif s.kind == "T":
                    fs.append(int(lm.temporal.get(r, 1)))
                else:
                    ax = lm.spatial_axes.get(r, "x")
                    has_axis = any(t.level == s.level and t.kind == ax for t in self.slots)
                    if not has_axis:  # the level only has the other axis
                        ax = "y" if ax == "x" else "x"
                    fs.append(int(lm.spatial.get(r, 1)) if ax == s.kind else 1)
            out[r] = tuple(fs)
        return out

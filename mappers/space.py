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
from mappers.mapping import (
    CapacityGroup,
    LevelMapping,
    Mapping,
    MappingError,
    capacity_groups,
    einsum_op_weights,
    feeding_level,
    level_may_hold,
    resolve_unit,
    spatial_limit,
    tensor_roles,
)
from workloads.ir import Access, Einsum


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
                raise MappingError(
                    f"Einsum {einsum.name}: rank {r} has size {s!r}, expected a positive integer"
                )
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
        cu = resolve_unit(einsum, arch)
        self.unit = cu.name
        self.dataflow = cu.dataflow
        #: op class -> operations per iteration point (e.g. {"mac": 1})
        self.op_weights = einsum_op_weights(einsum)
        self.pes = int(cu.pes)
        #: levels below the one feeding the unit carry no factors and keep nothing
        self.feed = feeding_level(arch, cu)
        roles = tensor_roles(einsum)
        self.holdable: list[frozenset[str]] = []
        for i, lv in enumerate(arch.levels):
            if i == 0:
                self.holdable.append(frozenset(self.tensors))
            elif i > self.feed:
                self.holdable.append(frozenset())
            else:
                self.holdable.append(
                    frozenset(t for t in self.tensors if level_may_hold(lv, t, roles[t]))
                )
        self.mult = [2 if lv.double_buffered else 1 for lv in arch.levels]
        #: per level, the capacities its kept tiles must fit (one per memory)
        self.groups: tuple[tuple[CapacityGroup, ...], ...] = capacity_groups(einsum, arch)
        self.bounded = [any(g.capacity_bytes is not None for g in gs) for gs in self.groups]
        #: per level, tensor -> 2 where the memory storing it is double buffered
        self.tensor_mult: list[dict[str, int]] = [
            {t: g.mult for g in gs for t in g.tensors} for gs in self.groups
        ]
        slots: list[Slot] = []
        for i, lv in enumerate(arch.levels):
            if i > self.feed:
                continue
            slots.append(Slot(i, "T", None))
            limit = int(spatial_limit(arch, cu, i))
            if cu.kind == "array2d":
                fx, fy = min(int(lv.fanout_x), limit), min(int(lv.fanout_y), limit)
                if fx > 1:
                    slots.append(Slot(i, "x", fx))
                if fy > 1:
                    slots.append(Slot(i, "y", fy))
                self.level_limit = getattr(self, "level_limit", {})
                self.level_limit[i] = limit
            elif limit > 1:
                slots.append(Slot(i, "s", limit))
        self.slots: tuple[Slot, ...] = tuple(slots)
        self.level_limit: dict[int, int] = getattr(self, "level_limit", {})

    # ------------------------------------------------------------------ basics
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

    def tile_elements(self, acc: Access, cum: dict[str, int]) -> int:
        """Elements of ``acc``'s tile (extents clipped to the tensor, as the model does)."""
        return math.prod(min(ix.extent(cum), ix.extent(self.sizes)) for ix in acc.indices)

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

    def tensor_bytes(
        self, tiling: dict[str, tuple[int, ...]], level: int, keep: tuple[str, ...] | None = None
    ) -> dict[str, float]:
        """tensor -> bytes its kept tile takes at ``level`` (times 2 where its
        memory is double buffered)."""
        cum = self.cumulative(tiling, level)
        kept = self.kept(level, keep)
        mult = self.tensor_mult[level]
        return {
            a.tensor: mult.get(a.tensor, self.mult[level]) * self.tile_elements(a, cum) * a.bits / 8
            for a in self.accesses
            if a.tensor in kept
        }

    def overflow(self, level: int, need: dict[str, float]) -> tuple[CapacityGroup, float] | None:
        """The first memory of ``level`` that the tiles ``need`` (tensor ->
        bytes, from :meth:`tensor_bytes`) overflow, with its total; None if all fit."""
        for g in self.groups[level]:
            if g.capacity_bytes is None:
                continue
            total = sum(b for t, b in need.items() if t in g.tensors)
            if total > g.capacity_bytes:
                return g, total
        return None

    def violation(
        self,
        tiling: dict[str, tuple[int, ...]],
        keeps: tuple[tuple[str, ...] | None, ...] | None = None,
    ) -> str | None:
        """Why a tiling is invalid (capacity, fan-out, products), or None."""
        for r in self.ranks:
            if math.prod(tiling[r]) != self.sizes[r]:
                return (
                    f"factors of rank {r} multiply to {math.prod(tiling[r])}, not {self.sizes[r]}"
                )
        total = 1
        for i, s in enumerate(self.slots):
            if s.bound is not None:
                used = math.prod(tiling[r][i] for r in self.ranks)
                total *= used
                if used > s.bound:
                    lv = self.levels[s.level].name
                    return f"spatial factors {used} exceed fan-out {s.kind}={s.bound} of level {lv}"
        for lvl, limit in self.level_limit.items():
            used = math.prod(
                tiling[r][i]
                for i, s in enumerate(self.slots)
                if s.level == lvl and s.kind != "T"
                for r in self.ranks
            )
            if used > limit:
                return f"spatial factors {used} exceed fan-out {limit} of level {self.levels[lvl].name}"
        if total > self.pes:
            return f"spatial factors use {total} PEs, the unit has {self.pes}"
        for lvl in range(self.nlev):
            # one axis per rank per level (LevelMapping has one spatial factor per rank)
            for r in self.ranks:
                axes = [
                    s.kind
                    for i, s in enumerate(self.slots)
                    if s.level == lvl and s.kind != "T" and tiling[r][i] > 1
                ]
                if len(axes) > 1:
                    return (
                        f"rank {r} is spread over two fan-out axes of level {self.levels[lvl].name}"
                    )
        for lvl in range(self.nlev):
            if not self.bounded[lvl]:
                continue
            need = self.tensor_bytes(tiling, lvl, None if keeps is None else keeps[lvl])
            over = self.overflow(lvl, need)
            if over is not None:
                g, total = over
                return (
                    f"tiles need {fmt_bytes(total)} at level {g.at(self.levels[lvl].name)} "
                    f"({fmt_bytes(g.capacity_bytes)})"
                )
        return None

    def _width_hint(self) -> str:
        """The remedy when the workload is wider than the design's datatype
        (library workloads default to 16 bits; int8 presets hold 8-bit values)."""
        native = next(cu.datatype_bits for cu in self.arch.compute if cu.name == self.unit)
        wide = max(a.bits for a in self.accesses)
        if wide <= native:
            return ""
        return (
            f"; the workload's tensors are up to {wide}-bit but {self.arch.name} computes in "
            f"{native}-bit: build the workload at {native} bits (library workloads: -p bits={native})"
        )

    def check_feasible(self) -> None:
        """Raise MappingError naming the constraint no mapping can meet."""
        for lvl in range(1, self.nlev):
            for g in self.groups[lvl]:
                if g.capacity_bytes is None:
                    continue
                where = g.at(self.levels[lvl].name)
                total = 0.0
                held = [a for a in self.accesses if a.tensor in self.holdable[lvl] & g.tensors]
                for a in held:
                    smallest = a.bits / 8 * g.mult  # a 1-element tile (double buffered: 2)
                    total += smallest
                    if smallest > g.capacity_bytes:
                        raise MappingError(
                            f"Einsum {self.einsum.name}: the smallest tile of tensor {a.tensor} "
                            f"({fmt_bytes(smallest)}) does not fit level {where} "
                            f"({fmt_bytes(g.capacity_bytes)})" + self._width_hint()
                        )
                if total > g.capacity_bytes:
                    raise MappingError(
                        f"Einsum {self.einsum.name}: the smallest tiles of tensors "
                        f"{', '.join(sorted(a.tensor for a in held))} ({fmt_bytes(total)} "
                        f"together) do not fit level {where} ({fmt_bytes(g.capacity_bytes)})"
                        + self._width_hint()
                    )
        top = self.levels[0]
        if top.capacity_bytes is not None:
            need = sum(self.tile_elements(a, self.sizes) * a.bits / 8 for a in self.accesses)
            if need > top.capacity_bytes:
                raise MappingError(
                    f"Einsum {self.einsum.name}: its tensors ({fmt_bytes(need)}) do not fit "
                    f"the outermost level {top.name} ({fmt_bytes(top.capacity_bytes)})"
                )

    def seed_tiling(self) -> dict[str, tuple[int, ...]]:
        """A valid tiling: everything on the outermost loop, then the fan-outs
        filled greedily with prime factors (a warm start that always exists
        when :meth:`check_feasible` passes)."""
        from mappers.factors import prime_list

        tiling = {r: [self.sizes[r]] + [1] * (len(self.slots) - 1) for r in self.ranks}
        for i, s in enumerate(self.slots):
            if s.kind == "T":
                continue
            for r in sorted(self.ranks, key=lambda r: -self.sizes[r]):
                for p in sorted(prime_list(self.sizes[r]), reverse=True):
                    if tiling[r][0] % p:
                        continue
                    trial = {q: tuple(v) for q, v in tiling.items()}
                    fs = list(trial[r])
                    fs[0] //= p
                    fs[i] *= p
                    trial[r] = tuple(fs)
                    if self.violation(trial) is None:
                        tiling[r] = fs
        return {r: tuple(v) for r, v in tiling.items()}

    def project(self, mapping: Mapping) -> dict[str, tuple[int, ...]] | None:
        """The nearest exact tiling below a (possibly padded) mapping: from the
        innermost slot outwards each factor becomes the largest divisor of
        what is left of the rank that does not exceed the mapping's factor;
        the rest goes to the outermost loop. None if it does not fit."""
        from mappers.factors import divisors

        target = self.tiling_of(mapping)
        out: dict[str, tuple[int, ...]] = {}
        for r in self.ranks:
            left = self.sizes[r]
            fs = [1] * len(self.slots)
            for i in reversed(range(1, len(self.slots))):
                d = max(x for x in divisors(left) if x <= max(1, target[r][i]))
                fs[i] = d
                left //= d
            fs[0] = left
            out[r] = tuple(fs)
        keeps = self.keeps_of(mapping)
        return out if self.violation(out, keeps) is None else None

    def keeps_of(self, mapping: Mapping) -> tuple[tuple[str, ...] | None, ...]:
        by_name = {lm.level: lm for lm in mapping.levels}
        return tuple(
            None if lvl == 0 or by_name.get(lv.name) is None else by_name[lv.name].keep
            for lvl, lv in enumerate(self.levels)
        )

    def keep_options(self) -> list[tuple[tuple[str, ...] | None, ...]]:
        """Every bypass choice: per level that may hold tensors, a subset of them
        (``None`` = all it may hold; the outermost level keeps everything)."""
        import itertools

        return list(itertools.product(*self.keep_choices()))

    def keep_choices(self) -> list[list[tuple[str, ...] | None]]:
        """Per level, the subsets of tensors it may keep (see :meth:`keep_options`)."""
        import itertools

        per_level: list[list[tuple[str, ...] | None]] = []
        for lvl in range(self.nlev):
            hold = [t for t in self.tensors if t in self.holdable[lvl]]
            if lvl == 0 or lvl > self.feed or not hold:
                per_level.append([None])
                continue
            subsets: list[tuple[str, ...] | None] = [None]
            for n in range(len(hold)):
                subsets.extend(itertools.combinations(hold, n))
            per_level.append(subsets)
        return per_level

    # -------------------------------------------------------------- mappings
    def default_order(self, tiling: dict[str, tuple[int, ...]], level: int) -> tuple[str, ...]:
        idx = [i for i, s in enumerate(self.slots) if s.level == level and s.kind == "T"]
        if not idx:
            return ()
        return tuple(r for r in self.ranks if tiling[r][idx[0]] > 1)

    def orders(self, tiling: dict[str, tuple[int, ...]], level: int) -> list[tuple[str, ...]]:
        """Every loop order of the ranks with a temporal factor > 1 at ``level``."""
        return list(permutations(self.default_order(tiling, level)))

    def order_classes(
        self,
        tiling: dict[str, tuple[int, ...]],
        level: int,
        keeps: tuple[tuple[str, ...] | None, ...] | None = None,
    ) -> list[tuple[str, ...]]:
        """One loop order per class of orders the cost model cannot tell apart.

        The analytical model (``sim/analytical/core.py``) sees a level's order
        only through, per tensor kept at some storage level below it, the set
        of loops inside the innermost loop indexing that tensor (those reuse
        its tile; operand delivery to the compute units counts every loop).
        Orders with the same sets give identical metrics (checked by a test),
        so an exhaustive search needs one order per class (GEMM: 3 of 6; the
        innermost storage level: 1)."""
        active = self.default_order(tiling, level)
        below_cache = self.__dict__.setdefault("_below_cache", {})
        below = below_cache.get((level, keeps))
        if below is None:
            below = below_cache[level, keeps] = tuple(
                t
                for t in self.tensors
                if any(
                    t in self.kept(c, None if keeps is None else keeps[c])
                    for c in range(level + 1, self.feed + 1)
                )
            )
        return self.order_classes_of(active, below)

    def order_classes_of(
        self, active: tuple[str, ...], below: tuple[str, ...]
    ) -> list[tuple[str, ...]]:
        """:meth:`order_classes` for the ranks ``active`` at a level and the
        tensors ``below`` kept at a storage level under it."""
        key = (active, below)
        cache = self.__dict__.setdefault("_order_cache", {})
        if key not in cache:
            seen: dict[tuple, tuple[str, ...]] = {}
            for perm in permutations(active) if below else [active]:
                sig = []
                for t in below:
                    rel = self.relevant[t]
                    last = max((i for i, r in enumerate(perm) if r in rel), default=-1)
                    sig.append(frozenset(perm[last + 1 :]))
                seen.setdefault(tuple(sig), perm)
            cache[key] = list(seen.values())
        return cache[key]

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
                        if s.kind in ("x", "y"):
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
                elif s.kind == "s":
                    fs.append(int(lm.spatial.get(r, 1)))
                else:
                    ax = lm.spatial_axes.get(r, "x")
                    has_axis = any(t.level == s.level and t.kind == ax for t in self.slots)
                    if not has_axis:  # the level only has the other axis
                        ax = "y" if ax == "x" else "x"
                    fs.append(int(lm.spatial.get(r, 1)) if ax == s.kind else 1)
            out[r] = tuple(fs)
        return out

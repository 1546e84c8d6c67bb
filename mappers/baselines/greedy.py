"""A fast greedy mapping: the default mapping, and the ILP's warm start.

1. Bind the Einsum to a unit (:func:`mappers.mapping.resolve_unit`).
2. Spatial: fill the fan-out. A 2D array takes two ranks chosen by its
   dataflow (os: an output rank of each operand; ws: a reduced rank on the
   rows and an output rank of the weight on the columns; is: a reduced rank
   on the rows and an output rank of the input on the columns), any other
   unit spreads the largest output ranks over its PEs. Factors are chosen to
   need the fewest folds with the least padding.
3. Temporal: from the innermost level outwards, grow each rank's tile as
   far as the level's capacity allows (reduced ranks first, so partial sums
   stay low in the hierarchy), then put what is left at the outermost level.
4. Loop order: output ranks outside, reduced ranks innermost.

If an evaluator is given (``Mapping -> score``, lower is better), a few
variants (loop orders at the outermost level, rank priorities) are scored
and the best is returned; without one, the first variant is returned.

Always valid when any mapping is: if the smallest tiles (all factors 1)
do not fit a level, no mapping fits and a :class:`MappingError` names the
tensor, the level and the sizes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from mappers.mapping import (
    CapacityGroup,
    LevelMapping,
    Mapping,
    MappingError,
    _fmt_bytes,
    affine_footprint,
    capacity_groups,
    feeding_level,
    level_may_hold,
    resolve_unit,
    spatial_limit,
    tensor_roles,
)
from mappers.objectives import canonical_objective

if TYPE_CHECKING:
    from hw_models.arch import Architecture, ComputeUnit
    from workloads.ir import Einsum


def _balanced(q: int, limit: int) -> int:
    """Factor <= limit covering q in the fewest steps with the least padding."""
    if limit >= q:
        return q
    steps = -(-q // limit)
    return -(-q // steps)


def _spatial_choice(
    einsum: Einsum, arch: Architecture, cu: ComputeUnit, feed: int
) -> tuple[list[dict[str, int]], list[dict[str, str]]]:
    ranks = [r for r, _ in einsum.rank_sizes_items]
    sizes = einsum.rank_sizes
    nl = len(arch.levels)
    left = dict(sizes)
    spatial: list[dict[str, int]] = [{} for _ in range(nl)]
    axes: list[dict[str, str]] = [{} for _ in range(nl)]
    out_r = [r for r in ranks if r in einsum.output.ranks]
    red_r = [r for r in ranks if r not in einsum.output.ranks]
    in0 = einsum.inputs[0].ranks if einsum.inputs else frozenset()
    in1 = einsum.inputs[1].ranks if len(einsum.inputs) > 1 else frozenset()

    def largest(cands: list[str], used: set[str]) -> str | None:
        c = [r for r in cands if r not in used and left[r] > 1]
        return max(c, key=lambda r: left[r]) if c else None

    if cu.kind == "array2d":
        df = cu.dataflow or "os"
        for i in range(feed + 1):
            lv = arch.levels[i]
            if lv.fanout <= 1:
                continue
            if df == "ws":
                prefs = ([r for r in red_r], [r for r in out_r if r in in1])
            elif df == "is":
                prefs = ([r for r in red_r], [r for r in out_r if r in in0])
            else:
                prefs = ([r for r in out_r if r in in0], [r for r in out_r if r in in1])
            used: set[str] = set()
            for axis, cap, pref in (("y", lv.fanout_y, prefs[0]), ("x", lv.fanout_x, prefs[1])):
                if cap <= 1:
                    continue
                r = largest(pref, used) or largest(ranks, used)
                if r is None:
                    continue
                f = _balanced(left[r], cap)
                spatial[i][r] = f
                axes[i][r] = axis
                left[r] = -(-left[r] // f)
                used.add(r)
    else:
        budget = cu.pes
        for i in range(feed + 1):
            cap = min(spatial_limit(arch, cu, i), budget)
            if i < feed and arch.levels[i].fanout <= 1:
                continue
            for r in sorted(out_r or ranks, key=lambda r: -left[r]):
                if cap <= 1:
                    break
                f = _balanced(left[r], cap)
                if f > 1:
                    spatial[i][r] = f
                    left[r] = -(-left[r] // f)
                    cap //= f
                    budget //= f
    return spatial, axes


class _Fit:
    """Capacity checks for one level's kept tensors, per memory
    (``mappers.mapping.capacity_groups``; a one-memory level is one group)."""

    def __init__(
        self, einsum: Einsum, keep: tuple[str, ...], groups: tuple[CapacityGroup, ...] = ()
    ):
        sizes = einsum.rank_sizes
        accs = {}
        for a in einsum.accesses:
            accs.setdefault(a.tensor, a)
        self.groups = []
        for g in groups or (CapacityGroup("", None, 1, frozenset(keep)),):
            items = []
            for t in keep:
                if t not in g.tensors:
                    continue
                a = accs[t]
                dims = [
                    (tuple((r, abs(c)) for r, c in ix.terms), ix.extent(sizes)) for ix in a.indices
                ]
                items.append((dims, a.bits / 8 * g.mult))
            cap = math.inf if g.capacity_bytes is None else g.capacity_bytes
            self.groups.append((cap, items))

    def need(self, tile: dict[str, int]) -> float:
        """Bytes of the kept tiles, all memories together."""
        return sum(self._need(items, tile) for _, items in self.groups)

    @staticmethod
    def _need(items: list, tile: dict[str, int]) -> float:
        return sum(affine_footprint(dims, tile) * b for dims, b in items)

    def fits(self, tile: dict[str, int]) -> bool:
        for cap, items in self.groups:
            if cap == math.inf:
                continue
            total = 0.0
            for dims, b in items:
                total += affine_footprint(dims, tile) * b
            if total > cap:
                return False
        return True


def greedy_mapping(
    einsum: Einsum,
    arch: Architecture,
    unit: str | None = None,
    objective: str = "edp",
    evaluator: Callable[[Mapping], float] | None = None,
) -> Mapping:
    """A valid mapping in well under a millisecond (see the module docstring)."""
    canonical_objective(objective)  # only an evaluator scores; check the name
    probe = Mapping(einsum=einsum.name, levels=(), unit=unit or "")
    cu = resolve_unit(einsum, arch, probe if unit else None)
    feed = feeding_level(arch, cu)
    ranks = [r for r, _ in einsum.rank_sizes_items]
    red = [r for r in ranks if r not in einsum.output.ranks]
    out = [r for r in ranks if r in einsum.output.ranks]
    variants = [red + out]
    if evaluator is not None and len(ranks) > 1:
        variants.append(out + red)
    results = []
    for prio in variants:
        m = _build(einsum, arch, cu, feed, prio)
        if evaluator is None:
            return m
        results.append(m)
        # loop-order variants at the outermost level
        base = m.levels[0]
        active = [r for r in ranks if base.temporal.get(r, 1) > 1]
        perms = itertools.permutations(active) if len(active) <= 4 else [tuple(active)]
        for perm in perms:
            if tuple(perm) == base.order:
                continue
            lv0 = LevelMapping(
                level=base.level,
                temporal=base.temporal,
                spatial=base.spatial,
                spatial_axes=base.spatial_axes,
                order=tuple(perm),
                keep=base.keep,
            )
            results.append(Mapping(m.einsum, (lv0, *m.levels[1:]), m.unit, m.dataflow))
    return min(results, key=evaluator)


def _stationary(einsum: Einsum, cu: ComputeUnit) -> str | None:
    """The tensor a 2D array's dataflow keeps in its PEs (None: not a 2D array)."""
    if cu.kind != "array2d":
        return None
    df = cu.dataflow or "os"
    if df == "ws" and len(einsum.inputs) > 1:
        return einsum.inputs[1].tensor
    if df == "is" and einsum.inputs:
        return einsum.inputs[0].tensor
    return einsum.output.tensor


def _build(
    einsum: Einsum, arch: Architecture, cu: ComputeUnit, feed: int, prio: list[str]
) -> Mapping:
    ranks = [r for r, _ in einsum.rank_sizes_items]
    nl = len(arch.levels)
    roles = tensor_roles(einsum)
    tensors = list(dict.fromkeys(a.tensor for a in einsum.accesses))
    stat = _stationary(einsum, cu)
    array_level = -1
    if cu.kind == "array2d":
        for i in range(feed + 1):
            if arch.levels[i].fanout > 1:
                array_level = i
    one = dict.fromkeys(ranks, 1)
    keeps: list[tuple[str, ...]] = []
    fits: list[_Fit] = []
    groups = capacity_groups(einsum, arch)
    for i, lv in enumerate(arch.levels):
        if i == 0:
            keep = tuple(tensors)
        elif i > feed:
            keep = ()
        else:
            keep = tuple(t for t in tensors if level_may_hold(lv, t, roles[t]))
            if stat is not None and array_level >= 0 and i > array_level:
                # below the array only the dataflow's stationary tensor stays
                keep = tuple(t for t in keep if t == stat)
            # bypass tensors (largest smallest-tile first, the stationary one
            # last) until the smallest tiles fit
            while keep and not _Fit(einsum, keep, groups[i]).fits(one):
                sizes_one = {t: _Fit(einsum, (t,)).need(one) for t in keep}
                drop = max(keep, key=lambda t: (t != stat, sizes_one[t]))
                keep = tuple(t for t in keep if t != drop)
        keeps.append(keep)
        fits.append(_Fit(einsum, keep, groups[i]))
    full = einsum.rank_sizes
    if not fits[0].fits(full):
        raise MappingError(
            f"no mapping of {einsum.name} fits: the tensors "
            f"{', '.join(tensors)} ({_fmt_bytes(fits[0].need(full))}) do not fit the "
            f"outermost level {arch.levels[0].name} "
            f"({_fmt_bytes(arch.levels[0].capacity_bytes or 0)})"
        )
    spatial, axes = _spatial_choice(einsum, arch, cu, feed)
    grow = [list(prio) for _ in range(nl)]
    if stat is not None and array_level >= 0:
        # below the array only the ranks that do not index the stationary
        # tensor run in time (SCALE-Sim's T); the stationary tile stays 1
        acc = next(a for a in einsum.accesses if a.tensor == stat)
        for i in range(array_level + 1, nl):
            grow[i] = [r for r in prio if r not in acc.ranks]
    while True:
        temporal = _fill_temporal(ranks, einsum.rank_sizes, nl, feed, spatial, fits, grow)
        if temporal is not None:
            break
        # the spatial tiles do not fit: halve the largest spatial factor
        cands = [(i, r) for i in range(nl) for r in spatial[i] if spatial[i][r] > 1]
        if not cands:
            raise MappingError(
                f"no mapping of {einsum.name} fits level {arch.levels[0].name} "
                f"({_fmt_bytes(arch.levels[0].capacity_bytes or 0)})"
            )
        i, r = max(cands, key=lambda ir: spatial[ir[0]][ir[1]])
        spatial[i][r] = max(1, spatial[i][r] // 2)
    out_r = [r for r in ranks if r in einsum.output.ranks]
    red_r = [r for r in ranks if r not in einsum.output.ranks]
    levels = []
    for i, lv in enumerate(arch.levels):
        t = {r: f for r, f in temporal[i].items() if f > 1}
        s = {r: f for r, f in spatial[i].items() if f > 1}
        order = tuple(r for r in (*out_r, *red_r) if r in t)
        levels.append(
            LevelMapping(
                level=lv.name,
                temporal=t,
                spatial=s,
                spatial_axes={r: a for r, a in axes[i].items() if r in s},
                order=order,
                keep=keeps[i] if i > 0 else None,
            )
        )
    return Mapping(einsum=einsum.name, levels=tuple(levels), unit=cu.name)


def _outer_fit(
    tile: dict[str, int], i: int, spatial: list[dict[str, int]], fits: list[_Fit], ranks: list[str]
) -> bool:
    """The smallest tiles of the levels above ``i`` that contain ``tile`` fit."""
    cur = tile
    for j in range(i - 1, -1, -1):
        if spatial[j]:
            cur = {r: cur[r] * spatial[j].get(r, 1) for r in ranks}
        if not fits[j].fits(cur):
            return False
    return True


def _fill_temporal(
    ranks: list[str],
    sizes: dict[str, int],
    nl: int,
    feed: int,
    spatial: list[dict[str, int]],
    fits: list[_Fit],
    grow: list[list[str]],
) -> list[dict[str, int]] | None:
    temporal: list[dict[str, int]] = [dict.fromkeys(ranks, 1) for _ in range(nl)]
    below = dict.fromkeys(ranks, 1)  # tile held by the level below (per instance)
    for i in range(nl - 1, 0, -1):
        tile = {r: below[r] * spatial[i].get(r, 1) for r in ranks}
        if i > feed:
            below = tile
            continue
        if not fits[i].fits(tile) or not _outer_fit(tile, i, spatial, fits, ranks):
            return None
        for r in grow[i]:
            outer = 1
            for j in range(i):
                outer *= spatial[j].get(r, 1)
            q = -(-sizes[r] // (tile[r] * outer))
            if q <= 1:
                continue
            lo, hi = 1, q
            base = tile[r]
            while lo < hi:
                mid = (lo + hi + 1) // 2
                tile[r] = base * mid
                if fits[i].fits(tile) and _outer_fit(tile, i, spatial, fits, ranks):
                    lo = mid
                else:
                    hi = mid - 1
            f = _balanced(q, lo)
            if -(-q // f) * f > 1.05 * q:
                # too much padding: a divisor of q at least half as large wins
                d = next((d for d in range(lo, 0, -1) if q % d == 0), 1)
                if 2 * d >= f:
                    f = d
            tile[r] = base * f
            temporal[i][r] = f
        below = tile
    if not fits[0].fits({r: below[r] * spatial[0].get(r, 1) for r in ranks}):
        # the outermost level is bounded and the whole problem does not fit
        return None
    for r in ranks:
        inner = below[r] * spatial[0].get(r, 1)
        temporal[0][r] = -(-sizes[r] // inner)
    return temporal

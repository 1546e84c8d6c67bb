"""Exhaustive enumeration of small mapping spaces (the ILP's yardstick).

Enumerates every tiling (ordered factor splits of each rank over the slots,
pruned by fan-out bounds and buffer capacity), every bypass choice (keep or
bypass, per level and tensor: the same space the ILP searches) and every loop
order at every level -- one order per class of orders the cost model cannot
tell apart (:meth:`MapSpace.order_classes`). ``bypass=False`` restricts it to
keep-all buffers. Refuses spaces larger than ``max_points`` with a message
giving the size, so it never runs for hours.
"""

from __future__ import annotations

import itertools
import math
import time

from hw_models.arch import Architecture
from mappers.factors import splits
from mappers.mapping import LevelMapping, Mapping
from mappers.objectives import canonical_objective
from mappers.scoring import BatchEvaluator, Evaluator, Scorer, SearchResult
from mappers.space import MappingError, MapSpace
from workloads.errors import EinsimError
from workloads.ir import Einsum

DEFAULT_MAX_POINTS = 1_000_000
#: spaces with more raw tilings than this times max_points are refused unpruned
PRUNE_FACTOR = 50


class SpaceTooLarge(EinsimError):
    """The mapping space is too large to enumerate."""


def valid_tilings(space: MapSpace, limit: int | None = None, bypass: bool = False):
    """Yield every valid tiling of the space (at most ``limit`` raw tilings are looked at).

    With ``bypass`` a tiling counts as valid if it fits when every inner level
    bypasses every tensor (the keep choices are checked one by one later)."""
    loosest = (None,) + ((),) * (space.nlev - 1) if bypass else None
    bounds = tuple(s.bound for s in space.slots)
    per_rank = [list(splits(space.sizes[r], len(space.slots), bounds)) for r in space.ranks]
    seen = 0
    for combo in itertools.product(*per_rank):
        seen += 1
        if limit is not None and seen > limit:
            raise SpaceTooLarge(f"more than {limit} tilings")
        tiling = dict(zip(space.ranks, combo, strict=True))
        if space.violation(tiling, loosest) is None:
            yield tiling


def _points(space: MapSpace, tiling, bypass: bool):
    """``(keeps, per-level order classes)`` for every bypass choice under which
    ``tiling`` fits every buffer (fan-outs were checked by :func:`valid_tilings`)."""
    if not bypass:
        keeps = None
        yield keeps, [space.order_classes(tiling, lvl) for lvl in range(space.nlev)]
        return
    choices = []
    for lvl, opts in enumerate(space.keep_choices()):
        if lvl == 0 or not space.bounded[lvl] or opts == [None]:
            choices.append(opts)
            continue
        need = space.tensor_bytes(tiling, lvl)
        choices.append(
            [
                k
                for k in opts
                if space.overflow(lvl, {t: need[t] for t in space.kept(lvl, k)}) is None
            ]
        )
    active = [space.default_order(tiling, lvl) for lvl in range(space.nlev)]
    for keeps in itertools.product(*choices):
        below = _below(space, keeps)
        yield keeps, [space.order_classes_of(active[lvl], below[lvl]) for lvl in range(space.nlev)]


def _builder(space: MapSpace, tiling):
    """``(orders, keeps) -> Mapping`` for one tiling, equal to
    :meth:`MapSpace.to_mapping` but sharing the per-level pieces (the
    enumeration builds millions of mappings)."""
    base = space.to_mapping(tiling)
    cache: dict = {}

    def build(orders, keeps):
        levels = []
        for lvl, lm in enumerate(base.levels):
            k = None if keeps is None else keeps[lvl]
            key = (lvl, orders[lvl], k)
            x = cache.get(key)
            if x is None:
                x = cache[key] = LevelMapping(
                    level=lm.level,
                    temporal=lm.temporal,
                    spatial=lm.spatial,
                    spatial_axes=lm.spatial_axes,
                    order=tuple(orders[lvl]),
                    keep=None if k is None else tuple(k),
                )
            levels.append(x)
        return Mapping(einsum=base.einsum, levels=tuple(levels), unit=base.unit)

    return build


def _below(space: MapSpace, keeps) -> list[tuple[str, ...]]:
    """Per level, the tensors kept at some storage level under it."""
    cache = space.__dict__.setdefault("_below_all", {})
    if keeps not in cache:
        kept = [space.kept(c, keeps[c]) for c in range(space.nlev)]
        cache[keeps] = [
            tuple(
                t
                for t in space.tensors
                if any(t in kept[c] for c in range(lvl + 1, space.feed + 1))
            )
            for lvl in range(space.nlev)
        ]
    return cache[keeps]


def space_size(space: MapSpace, max_points: int, bypass: bool = True) -> int:
    """Points (tiling x bypass x order classes) of the space; stops counting past ``max_points``."""
    total = 0
    for tiling in valid_tilings(space, limit=20 * max_points, bypass=bypass):
        for _keeps, per_level in _points(space, tiling, bypass):
            total += math.prod(len(o) for o in per_level)
        if total > max_points:
            return total
    return total


def exhaustive_search(
    einsum: Einsum,
    arch: Architecture,
    *,
    objective: str,
    evaluate: Evaluator,
    evaluate_batch: BatchEvaluator | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    chunk: int = 4096,
    bypass: bool = True,
) -> SearchResult:
    """The optimum of ``objective`` over every (tiling, bypass, loop order) point."""
    return exhaustive_optima(
        einsum,
        arch,
        objectives=(objective,),
        evaluate=evaluate,
        evaluate_batch=evaluate_batch,
        max_points=max_points,
        chunk=chunk,
        bypass=bypass,
    )[canonical_objective(objective)]


def exhaustive_optima(
    einsum: Einsum,
    arch: Architecture,
    *,
    objectives: tuple[str, ...],
    evaluate: Evaluator,
    evaluate_batch: BatchEvaluator | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    chunk: int = 4096,
    bypass: bool = True,
) -> dict[str, SearchResult]:
    """The optimum of each objective in one enumeration (each batch of
    mappings is evaluated once and scored for every objective). ``bypass``:
    also every keep/bypass choice per level and tensor (the ILP's space)."""
    t0 = time.perf_counter()
    objectives = tuple(canonical_objective(o) for o in objectives)
    space = MapSpace(einsum, arch)
    space.check_feasible()
    if space.tiling_count() > PRUNE_FACTOR * max_points:
        size = max_points + 1  # refuse at once: counting would itself take minutes
    else:
        try:
            size = space_size(space, max_points, bypass)
        except SpaceTooLarge:
            size = max_points + 1
    if size > max_points:
        raise SpaceTooLarge(
            f"Einsum {einsum.name}: the mapping space on {arch.name} has more than {max_points} points "
            f"({space.tiling_count()} tilings before pruning); use --mapper ilp or random"
        )
    scorers = {o: Scorer(einsum, arch, evaluate, o, evaluate_batch) for o in objectives}

    def flush(batch: list) -> None:
        if not batch:
            return
        if evaluate_batch is None:
            for sc in scorers.values():
                sc.score_many(batch)
            return
        res = evaluate_batch(batch)
        import numpy as np

        for sc in scorers.values():
            vals = sc.batch_values(res)
            sc.evaluations += len(batch)
            for k in np.argsort(vals, kind="stable")[:3]:
                if not np.isfinite(vals[k]) or (
                    sc.best is not None and vals[k] >= sc.best[0] * (1 + 1e-9)
                ):
                    break
                sc.score(batch[int(k)])

    batch: list = []
    for tiling in valid_tilings(space, bypass=bypass):
        build = _builder(space, tiling)
        for keeps, per_level in _points(space, tiling, bypass):
            for orders in itertools.product(*per_level):
                batch.append(build(orders, keeps))
                if len(batch) >= chunk:
                    flush(batch)
                    batch = []
    flush(batch)
    out = {}
    for o, sc in scorers.items():
        if sc.best is None:
            raise MappingError(f"Einsum {einsum.name}: no valid mapping exists on {arch.name}")
        out[o] = sc.result(
            "exhaustive", t0, bound=sc.best[0], gap=0.0, notes={"points": size, "bypass": bypass}
        )
    return out

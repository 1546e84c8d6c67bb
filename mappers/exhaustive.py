"""Exhaustive enumeration of small mapping spaces (the ILP's yardstick).

Enumerates every tiling (ordered factor splits of each rank over the slots,
pruned by fan-out bounds and buffer capacity) and, for each, every loop order
at every level. Bypass choices are fixed to "keep what the level may hold",
as in the ILP's search space. Refuses spaces larger than ``max_points`` with a
message giving the size, so it never runs for hours.
"""

from __future__ import annotations

import itertools
import math
import time

from hw_models.arch import Architecture
from mappers.factors import splits
from mappers.ilp_space import MappingError, MapSpace
from mappers.search import BatchEvaluator, Evaluator, Scorer, SearchResult
from workloads.errors import EinsimError
from workloads.ir import Einsum

DEFAULT_MAX_POINTS = 200_000
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


def space_size(space: MapSpace, max_points: int, bypass: bool = False) -> int:
    """Points (tiling x orders [x bypass]) of the space; stops counting past ``max_points``."""
    total = 0
    nkeep = len(space.keep_options()) if bypass else 1
    for tiling in valid_tilings(space, limit=20 * max_points, bypass=bypass):
        total += nkeep * math.prod(
            math.factorial(len(space.default_order(tiling, lvl))) for lvl in range(space.nlev)
        )
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
) -> SearchResult:
    """The optimum of ``objective`` over every (tiling, loop order) point."""
    t0 = time.perf_counter()
    space = MapSpace(einsum, arch)
    space.check_feasible()
    if space.tiling_count() > PRUNE_FACTOR * max_points:
        size = max_points + 1  # refuse at once: counting would itself take minutes
    else:
        try:
            size = space_size(space, max_points)
        except SpaceTooLarge:
            size = max_points + 1
    if size > max_points:
        raise SpaceTooLarge(
            f"Einsum {einsum.name}: the mapping space on {arch.name} has more than {max_points} points "
            f"({space.tiling_count()} tilings before pruning); use --mapper ilp or random"
        )
    scorer = Scorer(einsum, arch, evaluate, objective, evaluate_batch)
    batch = []
    for tiling in valid_tilings(space):
        per_level = [space.orders(tiling, lvl) for lvl in range(space.nlev)]
        for orders in itertools.product(*per_level):
            batch.append(space.to_mapping(tiling, orders))
            if len(batch) >= chunk:
                scorer.score_many(batch)
                batch = []
    scorer.score_many(batch)
    if scorer.best is None:
        raise MappingError(f"Einsum {einsum.name}: no valid mapping exists on {arch.name}")
    return scorer.result("exhaustive", t0, bound=scorer.best[0], gap=0.0, notes={"points": size})


def exhaustive_optima(
    einsum: Einsum,
    arch: Architecture,
    *,
    objectives: tuple[str, ...],
    evaluate: Evaluator,
    evaluate_batch: BatchEvaluator | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    chunk: int = 4096,
    bypass: bool = False,
) -> dict[str, SearchResult]:
    """:func:`exhaustive_search` for several objectives in one enumeration
    (each batch of mappings is evaluated once and scored for every objective)."""
    t0 = time.perf_counter()
    space = MapSpace(einsum, arch)
    space.check_feasible()
    size = (
        max_points + 1
        if space.tiling_count() > PRUNE_FACTOR * max_points
        else space_size(space, max_points, bypass)
    )
    if size > max_points:
        raise SpaceTooLarge(
            f"Einsum {einsum.name}: the mapping space on {arch.name} has more than {max_points} points"
        )
    keeps_all = space.keep_options() if bypass else [None]
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
        per_level = [space.orders(tiling, lvl) for lvl in range(space.nlev)]
        keeps_ok = [k for k in keeps_all if space.violation(tiling, k) is None]
        for orders in itertools.product(*per_level):
            for keeps in keeps_ok:
                batch.append(space.to_mapping(tiling, orders, keeps))
                if len(batch) >= chunk:
                    flush(batch)
                    batch = []
    flush(batch)
    out = {}
    for o, sc in scorers.items():
        if sc.best is None:
            raise MappingError(f"Einsum {einsum.name}: no valid mapping exists on {arch.name}")
        out[o] = sc.result("exhaustive", t0, bound=sc.best[0], gap=0.0, notes={"points": size})
    return out

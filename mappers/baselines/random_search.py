"""Random sampling of valid mappings (Timeloop's "random" mapper).

Each sample sends every prime factor of every rank to a uniformly chosen slot
(a level's temporal loop or fan-out axis), draws a random loop order at every
level, rejects tilings that overflow a buffer or a fan-out, and scores the
rest with the caller's evaluator. The budget is a number of valid samples, a
wall-clock limit, or both (whichever ends first).
"""

from __future__ import annotations

import math
import random
import time

from hw_models.arch import Architecture
from mappers.factors import prime_list
from mappers.scoring import BatchEvaluator, Evaluator, Scorer, SearchResult
from mappers.space import MappingError, MapSpace
from workloads.ir import Einsum


def sample_tiling(space: MapSpace, rng: random.Random) -> dict[str, tuple[int, ...]]:
    n = len(space.slots)
    out = {}
    for r in space.ranks:
        fs = [1] * n
        for p in prime_list(space.sizes[r]):
            fs[rng.randrange(n)] *= p
        out[r] = tuple(fs)
    return out


def random_search(
    einsum: Einsum,
    arch: Architecture,
    *,
    objective: str,
    evaluate: Evaluator,
    evaluate_batch: BatchEvaluator | None = None,
    samples: int | None = 2000,
    time_limit_s: float | None = None,
    seed: int = 0,
    max_rejects: int = 200_000,
) -> SearchResult:
    """Best of ``samples`` valid random mappings (or of what ``time_limit_s`` allows)."""
    t0 = time.perf_counter()
    space = MapSpace(einsum, arch)
    space.check_feasible()
    scorer = Scorer(einsum, arch, evaluate, objective, evaluate_batch)
    rng = random.Random(seed)
    deadline = math.inf if time_limit_s is None else t0 + time_limit_s
    budget = math.inf if samples is None else samples
    valid = rejects = 0
    pending: list = []
    # score in batches when a batch evaluator is given (one numpy pass each)
    chunk = 1 if evaluate_batch is None else 256
    while valid < budget and time.perf_counter() < deadline:
        tiling = sample_tiling(space, rng)
        if space.violation(tiling) is not None:
            rejects += 1
            if rejects >= max_rejects and valid == 0:
                break
            continue
        orders = []
        for lvl in range(space.nlev):
            o = list(space.default_order(tiling, lvl))
            rng.shuffle(o)
            orders.append(tuple(o))
        pending.append(space.to_mapping(tiling, tuple(orders)))
        valid += 1
        if len(pending) >= chunk:
            scorer.score_many(pending)
            pending = []
    scorer.score_many(pending)
    if scorer.best is None:
        # the all-at-the-top tiling is always valid when check_feasible passed
        scorer.score(space.to_mapping(trivial_tiling(space)))
    if scorer.best is None:
        raise MappingError(
            f"Einsum {einsum.name}: random search found no valid mapping on {arch.name}"
        )
    notes = {"samples": valid, "rejected": rejects, "seed": seed}
    if samples is not None and time_limit_s is not None:
        # the time limit, not the sample budget, ended it: not repeatable
        notes["wall_limit_hit"] = valid < samples and not (valid == 0 and rejects >= max_rejects)
    return scorer.result("sampled", t0, notes=notes)


def trivial_tiling(space: MapSpace) -> dict[str, tuple[int, ...]]:
    """Every factor on the outermost temporal loop (tiles of one element below)."""
    return {r: (space.sizes[r],) + (1,) * (len(space.slots) - 1) for r in space.ranks}

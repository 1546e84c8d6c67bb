"""Common front end of the mapping searches (ILP, random, exhaustive, greedy).

Mappers never import the cost model (layering: ``sim`` sits below
``mappers``). The caller passes ``evaluate(mapping) -> Metrics``; every
mapping a search returns has been scored by that function, and the reported
``objective_value`` is its score, never a solver surrogate.
"""

from __future__ import annotations

import time

from hw_models.arch import Architecture
from mappers.objectives import ALIASES, OBJECTIVES, canonical_objective  # noqa: F401
from mappers.scoring import (  # noqa: F401  (re-exported: the searches' result types)
    BatchEvaluator,
    Evaluator,
    Scorer,
    SearchResult,
    greedy_start,
    objective_of,
    validator,
)
from mappers.space import MappingError, MapSpace
from workloads.errors import EinsimError
from workloads.ir import Einsum

MAPPERS: tuple[str, ...] = ("ilp", "random", "exhaustive", "greedy")


def search(
    einsum: Einsum,
    arch: Architecture,
    *,
    mapper: str = "ilp",
    objective: str = "edp",
    evaluate: Evaluator,
    evaluate_batch: BatchEvaluator | None = None,
    time_limit_s: float | None = None,
    seed: int = 0,
    workers: int = 1,
    samples: int | None = None,
    max_points: int | None = None,
) -> SearchResult:
    """Find a mapping of ``einsum`` on ``arch`` minimising ``objective``.

    ``evaluate`` is the cost model (e.g. ``sim.analytical.model.evaluate`` bound to
    the Einsum and architecture); ``evaluate_batch`` (optional) scores a list
    of mappings in one call (``sim.analytical.model.evaluate_batch``) and speeds up
    the exhaustive and random searches and the ILP's re-ranking.
    ``time_limit_s`` bounds the ILP solve and the random search; ``samples``
    bounds the random search; ``max_points`` caps the exhaustive enumeration
    (it refuses larger spaces).
    """
    objective = canonical_objective(objective)
    if mapper == "ilp":
        from mappers.ilp.solve import ilp_search

        return ilp_search(
            einsum,
            arch,
            objective=objective,
            evaluate=evaluate,
            evaluate_batch=evaluate_batch,
            time_limit_s=1.0 if time_limit_s is None else time_limit_s,
            seed=seed,
            workers=workers,
        )
    if mapper == "random":
        from mappers.baselines.random_search import random_search

        if samples is None and time_limit_s is None:
            samples = 2000
        return random_search(
            einsum,
            arch,
            objective=objective,
            evaluate=evaluate,
            evaluate_batch=evaluate_batch,
            samples=samples,
            time_limit_s=time_limit_s,
            seed=seed,
        )
    if mapper == "exhaustive":
        from mappers.baselines.exhaustive import exhaustive_search

        kw = {} if max_points is None else {"max_points": max_points}
        return exhaustive_search(
            einsum,
            arch,
            objective=objective,
            evaluate=evaluate,
            evaluate_batch=evaluate_batch,
            **kw,
        )
    if mapper == "greedy":
        return greedy_search(einsum, arch, objective=objective, evaluate=evaluate)
    raise EinsimError(f"unknown mapper {mapper!r}; expected one of {', '.join(MAPPERS)}")


def greedy_search(
    einsum: Einsum, arch: Architecture, *, objective: str, evaluate: Evaluator
) -> SearchResult:
    """The analytical engineer's greedy heuristic, scored like the other searches."""
    t0 = time.perf_counter()
    scorer = Scorer(einsum, arch, evaluate, objective)
    m = greedy_start(einsum, arch)
    if m is None:
        raise MappingError(
            f"Einsum {einsum.name}: the greedy heuristic found no mapping on {arch.name}"
        )
    scorer.score(m)
    return scorer.result("heuristic", t0)


__all__ = ["MapSpace", "OBJECTIVES", "SearchResult", "search", "objective_of"]

"""The searches' shared scoring types: the result, the scorer and the
greedy warm start. The ILP, random and exhaustive searches import them from
here, and the front end (:mod:`mappers.search`) dispatches to the searches,
so neither imports the other (no import cycle).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hw_models.arch import Architecture
from mappers.mapping import Mapping
from mappers.objectives import canonical_objective
from mappers.space import MappingError
from workloads.errors import EinsimError
from workloads.ir import Einsum

Evaluator = Callable[[Mapping], Any]
#: many mappings at once -> ``sim.analytical.model.evaluate_batch``'s dict of arrays
BatchEvaluator = Callable[[list[Mapping]], dict[str, Any]]


@dataclass(frozen=True)
class SearchResult:
    mapping: Mapping
    #: the objective as scored by the caller's evaluator (SI units: s, pJ, pJ*s, bytes)
    objective_value: float
    #: solver lower bound on the objective (None where the search has none)
    bound: float | None
    #: relative optimality gap (objective - bound) / objective; None = unknown
    gap: float | None
    solve_time_s: float
    #: "optimal" | "feasible" (time-out, best found) | "exhaustive" | "sampled" | "heuristic"
    status: str
    #: evaluator calls made
    evaluations: int
    metrics: Any = None
    #: search-specific facts (surrogate objective, pool size, seed, ...)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def wall_limit_hit(self) -> bool:
        """Whether a wall-clock safety net, not the search's deterministic
        budget, ended the search: then the same inputs and seed may give
        another mapping on a less loaded machine."""
        return bool(self.notes.get("wall_limit_hit", False))


def search_warnings(searches: dict[str, SearchResult]) -> tuple[str, ...]:
    """One warning per Einsum whose search a wall-clock safety net ended
    (``SearchResult.wall_limit_hit``): the result is flagged, never
    silently returned as if the budget had run its course."""
    return tuple(
        f"Einsum {name}: the {r.status} search was cut by its wall-clock safety net "
        f"after {r.solve_time_s:.2f} s (machine overloaded?); the mapping may differ from "
        "a run on an idle machine. Retry, or raise --time-limit"
        for name, r in searches.items()
        if r.wall_limit_hit
    )


def objective_of(metrics: Any, objective: str, arch: Architecture) -> float:
    """The scalar a search minimises, read from a ``Metrics`` value."""
    if objective == "latency":
        return float(metrics.latency_s)
    if objective == "energy":
        return float(metrics.energy_pj)
    if objective == "edp":
        return float(metrics.energy_pj) * float(metrics.latency_s)
    if objective == "dram_traffic":
        top = arch.levels[0].name
        return float(sum(metrics.traffic_bytes.get(top, {}).values()))
    raise AssertionError(objective)  # pragma: no cover


def validator() -> Callable[..., Any] | None:
    """``mappers.mapping.validate`` when the mapping module provides it."""
    from mappers import mapping as mapping_mod

    return getattr(mapping_mod, "validate", None)


class Scorer:
    """Wraps the caller's evaluator: validates, scores, counts, remembers the best."""

    def __init__(
        self,
        einsum: Einsum,
        arch: Architecture,
        evaluate: Evaluator,
        objective: str,
        evaluate_batch: BatchEvaluator | None = None,
    ) -> None:
        objective = canonical_objective(objective)
        self.evaluate_batch = evaluate_batch
        self.einsum = einsum
        self.arch = arch
        self.evaluate = evaluate
        self.objective = objective
        self.validate = validator()
        self.evaluations = 0
        self.best: tuple[float, Mapping, Any] | None = None
        self.cache: dict[Any, float] = {}

    def key(self, m: Mapping) -> Any:
        return tuple(
            (
                tuple(sorted(lm.temporal.items())),
                tuple(sorted(lm.spatial.items())),
                tuple(sorted(lm.spatial_axes.items())),
                lm.order,
                lm.keep,
            )
            for lm in m.levels
        )

    def score(self, m: Mapping) -> float:
        """Objective of a mapping; ``inf`` when validation or the model rejects it."""
        k = self.key(m)
        if k in self.cache:
            return self.cache[k]
        try:
            if self.validate is not None:
                self.validate(m, self.einsum, self.arch)
            metrics = self.evaluate(m)
            self.evaluations += 1
            v = objective_of(metrics, self.objective, self.arch)
        except MappingError:
            v = math.inf
            metrics = None
        except EinsimError:
            v = math.inf
            metrics = None
        if not math.isfinite(v):
            v = math.inf
        self.cache[k] = v
        if v < math.inf and (self.best is None or v < self.best[0]):
            self.best = (v, m, metrics)
        return v

    def batch_values(self, res: dict[str, Any]) -> Any:
        import numpy as np

        if self.objective == "latency":
            v = np.asarray(res["latency_s"], dtype=float)
        elif self.objective == "energy":
            v = np.asarray(res["energy_pj"], dtype=float)
        elif self.objective == "edp":
            v = np.asarray(res["energy_pj"], dtype=float) * np.asarray(
                res["latency_s"], dtype=float
            )
        else:
            pre = f"traffic_bytes.{self.arch.levels[0].name}."
            v = sum(np.asarray(a, dtype=float) for k, a in res.items() if k.startswith(pre))
        return np.where(np.asarray(res.get("valid", True)), v, np.inf)

    def score_many(self, ms: list[Mapping]) -> None:
        """Score many mappings (one numpy pass when a batch evaluator was given).

        The winner of a batch is re-scored one by one (validated, full
        Metrics), so the reported value never comes from the batch path alone.
        """
        if not ms:
            return
        if self.evaluate_batch is None:
            for m in ms:
                self.score(m)
            return
        import numpy as np

        vals = self.batch_values(self.evaluate_batch(ms))
        self.evaluations += len(ms)
        order = np.argsort(vals, kind="stable")
        for k in order[:3]:
            if not np.isfinite(vals[k]):
                break
            if self.best is not None and vals[k] >= self.best[0] * (1 + 1e-9):
                break
            self.score(ms[int(k)])

    def result(self, status: str, t0: float, **kw: Any) -> SearchResult:
        if self.best is None:
            raise MappingError(
                f"Einsum {self.einsum.name}: no valid mapping found on {self.arch.name} "
                f"after {self.evaluations} evaluations"
            )
        v, m, metrics = self.best
        return SearchResult(
            mapping=m,
            objective_value=v,
            bound=kw.pop("bound", None),
            gap=kw.pop("gap", None),
            solve_time_s=time.perf_counter() - t0,
            status=status,
            evaluations=self.evaluations,
            metrics=metrics,
            notes=kw.pop("notes", {}),
        )


def greedy_start(einsum: Einsum, arch: Architecture) -> Mapping | None:
    """The greedy mapping (warm start for the ILP); None if unavailable or invalid."""
    try:
        from mappers.baselines.greedy import greedy_mapping
    except ImportError:
        return None
    try:
        return greedy_mapping(einsum, arch)
    except EinsimError:
        return None

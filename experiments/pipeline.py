"""Mapper + cost model wiring: the one function the CLI and the sweeps call.

:func:`evaluate_workload` takes a cascade (or one Einsum) and an
architecture, finds a mapping per Einsum (given, or from a mapper), and
costs it with a model. Mappers, models and per-family evaluators are
registered in the dicts below, so a new one is a one-line addition:

    MAPPERS["ilp"] = _ilp_mapper          # (einsum, arch, objective, evaluator, **opts) -> Mapping
    SIMS["des"] = _des_sim                 # (cascade, arch, mappings, **opts) -> Metrics
    FAMILY_EVALUATORS["gpu"] = _gpu_eval   # (cascade, arch, **opts) -> Metrics

Heavy imports happen inside the registered callables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mappers.mapping import Mapping, MappingError
from mappers.objectives import OBJECTIVES, ObjectiveError
from mappers.objectives import canonical_objective as _canonical
from workloads.errors import EinsimError

if TYPE_CHECKING:
    from hw_models.arch import Architecture
    from sim.metrics import Metrics
    from workloads.ir import Cascade, Einsum


class PipelineError(EinsimError):
    """An unknown mapper, model or objective, or a missing mapping."""


def canonical_objective(objective: str) -> str:
    """The objective's canonical name (``traffic`` -> ``dram_traffic``)."""
    try:
        return _canonical(objective)
    except ObjectiveError as err:
        raise PipelineError(err.message) from None


# --------------------------------------------------------------------------
# objectives (used by mappers that take an evaluator)
# --------------------------------------------------------------------------


def objective_value(metrics: Metrics, objective: str) -> float:
    """The scalar a mapper minimises."""
    objective = canonical_objective(objective)
    if objective == "edp":
        return metrics.energy_pj * metrics.latency_s
    if objective == "latency":
        return metrics.latency_s
    if objective == "energy":
        return metrics.energy_pj
    if objective == "dram_traffic":
        outer = next(iter(metrics.traffic_bytes.values()), {})
        return sum(outer.values())
    raise PipelineError(f"unknown objective {objective!r} (expected {', '.join(OBJECTIVES)})")


def analytical_evaluator(
    einsum: Einsum, arch: Architecture, objective: str
) -> Callable[[Mapping], float]:
    """Mapping -> objective, with the analytical model (for mappers)."""
    from sim.analytical.model import evaluate

    def score(m: Mapping) -> float:
        try:
            return objective_value(evaluate(einsum, arch, m, check=True), objective)
        except MappingError:
            return float("inf")

    return score


# --------------------------------------------------------------------------
# registries
# --------------------------------------------------------------------------


def _greedy(einsum: Einsum, arch: Architecture, objective: str, evaluator, **opts: Any) -> Mapping:
    from mappers.baselines.greedy import greedy_mapping

    return greedy_mapping(
        einsum, arch, unit=opts.get("unit"), objective=objective, evaluator=evaluator
    )


def _greedy_fast(
    einsum: Einsum, arch: Architecture, objective: str, evaluator, **opts: Any
) -> Mapping:
    """Greedy without scoring variants (the sweeps' fastest default)."""
    from mappers.baselines.greedy import greedy_mapping

    return greedy_mapping(einsum, arch, unit=opts.get("unit"), objective=objective)


def _search_mapper(name: str) -> Callable[..., Mapping]:
    """ILP / random / exhaustive search (mappers/search.py) on the analytical model.

    opts: ``time_limit_s``, ``seed``, ``samples`` (others are ignored)."""

    def run(einsum: Einsum, arch: Architecture, objective: str, evaluator, **opts: Any) -> Mapping:
        from mappers.search import search
        from sim.analytical.model import evaluate, evaluate_batch

        return search(
            einsum,
            arch,
            mapper=name,
            objective=objective,
            evaluate=lambda m: evaluate(einsum, arch, m),
            evaluate_batch=lambda ms: evaluate_batch(einsum, arch, ms),
            time_limit_s=opts.get("time_limit_s"),
            seed=opts.get("seed", 0),
            samples=opts.get("samples"),
        ).mapping

    return run


#: mapper name -> (einsum, arch, objective, evaluator, **opts) -> Mapping
MAPPERS: dict[str, Callable[..., Mapping]] = {
    "greedy": _greedy,
    "greedy-fast": _greedy_fast,
    "ilp": _search_mapper("ilp"),
    "random": _search_mapper("random"),
    "exhaustive": _search_mapper("exhaustive"),
}


def _analytical(
    einsums: list[Einsum], arch: Architecture, mappings: dict[str, Mapping], **opts: Any
) -> Metrics:
    from sim.analytical.model import combine_sequential, evaluate

    fill = opts.get("fill", True)
    parts = {e.name: evaluate(e, arch, mappings[e.name], fill=fill) for e in einsums}
    if len(parts) == 1:
        return next(iter(parts.values()))
    return combine_sequential(list(parts.values()), arch, parts)


def _des(
    einsums: list[Einsum], arch: Architecture, mappings: dict[str, Mapping], **opts: Any
) -> Metrics:
    """Discrete-event simulation (sim/des/simulate.py); opts: full_sim, timeline_limit, schedule."""
    from sim.des.simulate import simulate_einsums

    return simulate_einsums(einsums, arch, mappings, **opts)


#: model name -> (einsums in order, arch, {einsum: Mapping}, **opts) -> Metrics
SIMS: dict[str, Callable[..., Metrics]] = {
    "analytical": _analytical,
    "des": _des,
}

#: architecture family -> (cascade, arch, **opts) -> Metrics, for families
#: with their own model (e.g. "gpu"); other families use MAPPERS + SIMS
FAMILY_EVALUATORS: dict[str, Callable[..., Metrics]] = {}


def _gpu_eval(cascade: Cascade | Einsum, arch: Architecture, **opts: Any) -> Metrics:
    """GPU family: the calibrated kernel model (sim/gpu/model.py), no mapper needed."""
    from sim.gpu.model import evaluate_cascade

    return evaluate_cascade(cascade, arch, fused=opts.get("fused"))


FAMILY_EVALUATORS["gpu"] = _gpu_eval

#: model name -> evaluator factory (einsum, arch, objective) -> (Mapping -> score)
EVALUATORS: dict[str, Callable[..., Callable[[Mapping], float]]] = {
    "analytical": analytical_evaluator,
}


# --------------------------------------------------------------------------
# the entry point
# --------------------------------------------------------------------------


def einsums_of(workload: Cascade | Einsum) -> list[Einsum]:
    """The Einsums of a cascade in execution order (or ``[einsum]``)."""
    if hasattr(workload, "rank_sizes_items"):
        return [workload]  # type: ignore[list-item]
    return list(workload.einsums)  # type: ignore[union-attr]


def find_mappings(
    workload: Cascade | Einsum,
    arch: Architecture,
    *,
    mapping: Mapping | dict[str, Mapping] | None = None,
    mapper: str = "greedy",
    objective: str = "edp",
    sim: str = "analytical",
    **opts: Any,
) -> dict[str, Mapping]:
    """A mapping per Einsum: the given ones, the rest from ``mapper``."""
    objective = canonical_objective(objective)
    einsums = einsums_of(workload)
    given: dict[str, Mapping] = {}
    if isinstance(mapping, Mapping):
        if len(einsums) == 1:
            given[einsums[0].name] = mapping
        else:
            name = mapping.einsum
            if not name:
                raise PipelineError("a mapping for a cascade must name its Einsum")
            given[name] = mapping
    elif mapping:
        for k, m in mapping.items():
            key = k or m.einsum
            if not key and len(einsums) == 1:
                key = einsums[0].name
            given[key] = m
    names = {e.name for e in einsums}
    for k in given:
        if k not in names:
            raise PipelineError(
                f"the mapping is for Einsum {k!r}, which is not in the workload "
                f"(Einsums: {', '.join(sorted(names))})"
            )
    if mapper not in MAPPERS:
        raise PipelineError(f"unknown mapper {mapper!r} (expected {', '.join(sorted(MAPPERS))})")
    out: dict[str, Mapping] = {}
    for e in einsums:
        if e.name in given:
            m = given[e.name]
            if not m.einsum:
                m = Mapping(einsum=e.name, levels=m.levels, unit=m.unit, dataflow=m.dataflow)
            out[e.name] = m
            continue
        factory = EVALUATORS.get(sim, analytical_evaluator)
        evaluator = factory(e, arch, objective)
        out[e.name] = MAPPERS[mapper](e, arch, objective, evaluator, **opts)
    return out


def evaluate_workload(
    cascade: Cascade | Einsum,
    arch: Architecture,
    *,
    mapping: Mapping | dict[str, Mapping] | None = None,
    mapper: str = "greedy",
    objective: str = "edp",
    sim: str = "analytical",
    **opts: Any,
) -> Metrics:
    """Map (unless given) and cost a workload; the Einsums run one after another.

    ``mapping``: one Mapping (one-Einsum workloads, or naming its Einsum) or
    {einsum name: Mapping}; Einsums without one get ``mapper``'s mapping.
    Extra ``opts`` go to the mapper and the model.
    """
    family_eval = FAMILY_EVALUATORS.get(getattr(arch, "family", ""))
    if family_eval is not None and mapping is None:
        return family_eval(cascade, arch, mapper=mapper, objective=objective, sim=sim, **opts)
    if sim not in SIMS:
        raise PipelineError(f"unknown model {sim!r} (expected {', '.join(sorted(SIMS))})")
    mappings = find_mappings(
        cascade, arch, mapping=mapping, mapper=mapper, objective=objective, sim=sim, **opts
    )
    einsums = einsums_of(cascade)
    sim_opts = {k: v for k, v in opts.items() if k != "unit"}
    if len(einsums) > 1 and hasattr(cascade, "einsums"):
        sim_opts.setdefault("cascade", cascade)
    return SIMS[sim](einsums, arch, mappings, **sim_opts)

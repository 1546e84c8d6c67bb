"""The front door: every command, sweep and API call costs a design here.

    import sim
    ev = sim.evaluate("gemm", "eyeriss_like", mapper="greedy")   # -> Evaluation
    ev.metrics.latency_s, ev.metrics.energy_pj, ev.mappings, ev.parts

:func:`evaluate` takes a workload (a :class:`~workloads.ir.Cascade`, an
:class:`~workloads.ir.Einsum`, or a library name / cascade file for
:func:`workloads.load`) and a design (an
:class:`~hw_models.arch.Architecture` or a preset name / YAML file for
:func:`hw_models.load`). It picks the cost model (``model="auto"``: the
family's model from :mod:`sim.models`), finds a mapping per Einsum with a
mapper from :mod:`mappers.registry` unless ``mappings`` are given, or a
cascade schedule when ``schedule`` names a method of :mod:`sim.schedulers`
(or is a :class:`~mappers.schedule.Schedule`), and returns an
:class:`Evaluation`.

:func:`evaluate_designs` does the same for many designs of one workload at
once; a sweep chunk uses it. Both run the same code (``evaluate`` is
``evaluate_designs`` of one design), so a design gets the same numbers from
``einsim eval``, ``einsim map``, a sweep and the Python API.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hw_models.arch import Architecture
from mappers import registry as mapper_registry
from mappers.mapping import Mapping, MappingError
from mappers.objectives import canonical_objective, objective_value
from mappers.schedule import Schedule
from mappers.scoring import search_warnings
from sim import models as model_registry
from sim.metrics import Metrics
from workloads.errors import EinsimError
from workloads.ir import Cascade, Einsum

__all__ = ["Evaluation", "FrontDoorError", "evaluate", "evaluate_designs", "einsums_of"]


class FrontDoorError(EinsimError):
    """A request the front door refuses: a mapper or mapping for a model
    that does not take one, a mapping for an Einsum the workload lacks, ..."""


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` returns for one workload on one design."""

    #: the whole workload
    metrics: Metrics
    arch: Architecture
    #: the cost model that produced ``metrics``
    model: str
    objective: str
    #: per Einsum (mapping models) or per fusion group / kernel
    parts: dict[str, Metrics] = field(default_factory=dict)
    #: the mapping of each Einsum (mapping models)
    mappings: dict[str, Mapping] = field(default_factory=dict)
    #: per Einsum, the search mapper's result (bound, gap, status, evaluations)
    searches: dict[str, Any] = field(default_factory=dict)
    #: the cascade schedule, when one was asked for
    schedule: Schedule | None = None
    #: the mapper that found the mappings (None: given, or a workload model)
    mapper: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def objective_value(self) -> float:
        return objective_value(self.metrics, self.objective)


def einsums_of(workload: Cascade | Einsum) -> list[Einsum]:
    """The Einsums of a workload in execution order (or ``[einsum]``)."""
    if isinstance(workload, Einsum):
        return [workload]
    return list(workload.einsums)


def _workload(workload: Any) -> Cascade | Einsum:
    if isinstance(workload, Cascade | Einsum):
        return workload
    if isinstance(workload, str):
        import workloads

        return workloads.load(workload)
    raise FrontDoorError(
        f"a workload must be a Cascade, an Einsum or a workload name, not {type(workload).__name__}"
    )


def _arch(arch: Any) -> Architecture:
    if isinstance(arch, Architecture):
        return arch
    if isinstance(arch, str):
        import hw_models

        return hw_models.load(arch)
    raise FrontDoorError(
        f"a design must be an Architecture or a preset name, not {type(arch).__name__}"
    )


def _given_mappings(
    einsums: list[Einsum], mappings: Mapping | MappingABC[str, Mapping] | None
) -> dict[str, Mapping]:
    """{einsum: Mapping} of the given mappings, checked against the workload."""
    if mappings is None:
        return {}
    names = [e.name for e in einsums]
    given: dict[str, Mapping] = {}
    items = (
        [(mappings.einsum, mappings)] if isinstance(mappings, Mapping) else list(mappings.items())
    )
    for key, m in items:
        key = key or m.einsum
        if not key and len(names) == 1:
            key = names[0]
        if not key:
            raise FrontDoorError("a mapping for a cascade must name its Einsum")
        if key not in names:
            raise FrontDoorError(
                f"the mapping is for Einsum {key!r}, which is not in the workload "
                f"(Einsums: {', '.join(sorted(names))})"
            )
        given[key] = m if m.einsum == key else replace(m, einsum=key)
    return given


def _progress(items: Sequence[Any], show: bool, desc: str) -> Any:
    if not show or len(items) < 2:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="einsum", leave=False, dynamic_ncols=True)


def evaluate(
    workload: Cascade | Einsum | str, arch: Architecture | str, **options: Any
) -> Evaluation:
    """Cost ``workload`` on ``arch``; see the module docstring.

    Keywords (all optional), as for :func:`evaluate_designs`:
    ``mappings`` (one Mapping or {einsum: Mapping}), ``schedule`` (a method
    of :mod:`sim.schedulers` or a Schedule), ``model`` (default ``auto``),
    ``mapper`` (a name from :mod:`mappers.registry`, default
    ``mappers.registry.DEFAULT_MAPPER``, for the Einsums without a given
    mapping), ``objective`` (default ``edp``), ``units`` ({einsum: compute
    unit}), ``progress`` (a progress bar over the Einsums), and options for
    the mapper (``time_limit_s``, ``seed``, ``workers``, ``samples``), the
    schedulers (``time_limit_s``, ``seed``) and the models (DES:
    ``full_sim``, ``timeline_limit``, ``max_cycles``; GPU: ``plan``, one of
    :data:`sim.gpu.plan_registry.PLANS`, default ``library``, and the options
    of :func:`sim.gpu.plans.evaluate`). On a GPU ``schedule="ilp"`` is the
    ILP plan, its kernels returned as the schedule's fusion groups.
    Raises :class:`~workloads.errors.EinsimError` subclasses with a message.
    """
    out = evaluate_designs(workload, [arch], **options)[0]
    if isinstance(out, BaseException):
        raise out
    return out


def evaluate_designs(
    workload: Cascade | Einsum | str,
    archs: Sequence[Architecture | str],
    *,
    mappings: Mapping | MappingABC[str, Mapping] | None = None,
    schedule: str | Schedule | None = None,
    model: str = model_registry.AUTO,
    mapper: str | None = None,
    objective: str = "edp",
    units: MappingABC[str, str] | None = None,
    progress: bool = False,
    **options: Any,
) -> list[Evaluation | EinsimError]:
    """:func:`evaluate` for many designs of one workload: an
    :class:`Evaluation` or the error, per design, in order."""
    wl = _workload(workload)
    objective = canonical_objective(objective)
    designs = [_arch(a) for a in archs]
    einsums = einsums_of(wl)
    given = _given_mappings(einsums, mappings)
    results: list[Evaluation | EinsimError | None] = [None] * len(designs)
    # designs of one family share a model; resolve it per family
    by_model: dict[str, list[int]] = {}
    for k, a in enumerate(designs):
        try:
            cm = model_registry.resolve(model, a.family, a.name)
        except EinsimError as exc:
            results[k] = exc
            continue
        by_model.setdefault(cm.name, []).append(k)
    for name, idx in by_model.items():
        cm = model_registry.MODELS[name]
        sub = [designs[k] for k in idx]
        if schedule is not None:
            outs = [
                _scheduled(wl, a, cm, schedule, mapper, objective, options, progress) for a in sub
            ]
        elif cm.kind == "workload":
            outs = [_workload_model(wl, a, cm, given, mapper, objective, options) for a in sub]
        else:
            outs = _mapping_model(
                wl, einsums, sub, cm, given, mapper, objective, units or {}, options, progress
            )
        for k, r in zip(idx, outs, strict=True):
            results[k] = r
    return results  # type: ignore[return-value]


def _workload_model(
    wl: Cascade | Einsum,
    arch: Architecture,
    cm: model_registry.CostModel,
    given: dict[str, Mapping],
    mapper: str | None,
    objective: str,
    options: dict[str, Any],
) -> Evaluation | EinsimError:
    """Families whose model costs a workload itself (the GPU kernel model)."""
    if given or mapper is not None:
        what = "a mapping" if given else f"the {mapper} mapper"
        other = (
            "add --sim analytical to map it as a spatial array"
            if arch.family == "fpga"
            else "pick a spatial-array or FPGA design"
        )
        return FrontDoorError(
            f"{arch.name} is a {arch.family} design: the {cm.name} model lowers the workload "
            f"to kernels itself, so {what} does not apply (leave out --mapper/--mapping, "
            f"or {other})"
        )
    try:
        m = cm.run(wl, arch, **options)
    except EinsimError as exc:
        return exc
    return Evaluation(m, arch, cm.name, objective)


#: option names the DES reads
_DES_OPTIONS = ("full_sim", "timeline_limit", "max_cycles")


def _mapping_model(
    wl: Cascade | Einsum,
    einsums: list[Einsum],
    archs: list[Architecture],
    cm: model_registry.CostModel,
    given: dict[str, Mapping],
    mapper: str | None,
    objective: str,
    units: MappingABC[str, str],
    options: dict[str, Any],
    progress: bool,
) -> list[Evaluation | EinsimError]:
    """Map every Einsum on every design (analytical scoring), then cost the
    mappings with ``cm`` (the analytical model in the same batch, or the DES)."""
    from sim.mapped import map_designs

    mapper_name = mapper or mapper_registry.DEFAULT_MAPPER
    mapper_registry.get(mapper_name)  # unknown names fail before any work
    per_einsum = []
    for e in _progress(einsums, progress, "mapping"):
        per_einsum.append(
            map_designs(
                e,
                archs,
                mapper=mapper_name,
                objective=objective,
                unit=units.get(e.name),
                mapping=given.get(e.name),
                options=options,
            )
        )
    out: list[Evaluation | EinsimError] = []
    for k, arch in enumerate(archs):
        mapped = [col[k] for col in per_einsum]
        err = next((r for r in mapped if isinstance(r, EinsimError)), None)
        if err is not None:
            out.append(err)
            continue
        parts = {e.name: r.metrics for e, r in zip(einsums, mapped, strict=True)}
        maps = {e.name: r.mapping for e, r in zip(einsums, mapped, strict=True)}
        searches = {
            e.name: r.search for e, r in zip(einsums, mapped, strict=True) if r.search is not None
        }
        try:
            kw = {k2: options[k2] for k2 in _DES_OPTIONS if k2 in options}
            if len(einsums) > 1:
                kw["cascade"] = wl
            # every mapping model through its registry entry; the per-Einsum
            # analytical metrics of the mapping step go with it
            total = cm.run(einsums, arch, maps, parts=parts, **kw)
        except EinsimError as exc:
            out.append(exc)
            continue
        out.append(
            Evaluation(
                total,
                arch,
                cm.name,
                objective,
                parts=parts,
                mappings=maps,
                searches=searches,
                mapper=None if len(given) == len(einsums) else mapper_name,
                warnings=search_warnings(searches),
            )
        )
    return out


def _scheduled(
    wl: Cascade | Einsum,
    arch: Architecture,
    cm: model_registry.CostModel,
    schedule: str | Schedule,
    mapper: str | None,
    objective: str,
    options: dict[str, Any],
    progress: bool,
) -> Evaluation | EinsimError:
    """A cascade schedule (fusion groups, binding, residency), then its cost."""
    from sim import schedulers

    if cm.kind == "workload":
        if cm.schedule is None or isinstance(schedule, Schedule):
            return FrontDoorError(
                f"{arch.name} is a {arch.family} design: cascade schedules (fusion groups on "
                f"spatial arrays) do not apply; `einsim eval --hw {arch.name}` costs the "
                f"workload with the {cm.name} model"
            )
        try:
            sched, metrics = cm.schedule(wl, arch, schedule, **options)
        except EinsimError as exc:
            return exc
        return Evaluation(metrics, arch, cm.name, objective, schedule=sched)
    if isinstance(wl, Einsum):
        wl = Cascade(wl.name, (wl,))

    def mapped(model: model_registry.CostModel) -> Evaluation | EinsimError:
        """Every Einsum alone on its mapping, intermediates through DRAM:
        exactly what ``eval`` costs (the same mapper, the same model)."""
        return _mapping_model(
            wl, list(wl.einsums), [arch], model, {}, mapper, objective, {}, options, progress
        )[0]

    try:
        if isinstance(schedule, Schedule):
            sched, metrics = schedule, schedulers.cost_schedule(wl, arch, schedule)
        else:
            sched, metrics = schedulers.schedule_cascade(
                wl,
                arch,
                schedule,
                objective,
                time_limit_s=options.get("time_limit_s") or 10.0,
                seed=options.get("seed", 0),
            )
        if schedule == "unfused":
            ev = mapped(cm)
            return ev if isinstance(ev, EinsimError) else replace(ev, schedule=sched)
        if schedule in ("ilp", "exhaustive"):
            # the space also holds the unfused schedule on the Einsums' mappings
            unfused = mapped(model_registry.MODELS["analytical"])
            if not isinstance(unfused, EinsimError):
                sched, use_mapped = _with_mapped_unfused(wl, arch, sched, unfused, objective)
                if use_mapped:
                    ev = unfused if cm.name == "analytical" else mapped(cm)
                    return ev if isinstance(ev, EinsimError) else replace(ev, schedule=sched)
        if cm.name == "des":
            # the schedule's groups on the DES engine, with the cascade cost
            # model's work and traffic (its contention-free limit)
            from sim.des.group import simulate_schedule

            metrics = simulate_schedule(
                wl, arch, sched, full_sim=bool(options.get("full_sim", False))
            )
    except EinsimError as exc:
        return exc
    except MappingError as exc:  # pragma: no cover - MappingError is an EinsimError
        return exc
    return Evaluation(metrics, arch, cm.name, objective, schedule=sched)


def _with_mapped_unfused(
    wl: Cascade, arch: Architecture, sched: Schedule, unfused: Evaluation, objective: str
) -> tuple[Schedule, bool]:
    """``sched`` (an ILP or exhaustive schedule) with the mapped unfused
    evaluation in its space: the unfused schedule carrying the solver facts
    and True where that is better, else ``sched`` with its bound over the
    union and False. The bound stays valid: the union's is the least of the
    schedule space's bound and the mapped evaluation's exact value."""
    from sim import schedulers

    v = schedulers.fusion_units(unfused.metrics, objective)
    facts = dict(sched.solver)
    value = facts.get("objective", float("inf"))
    bound = min(facts.get("bound", v), v, value)
    use_mapped = v < value
    if use_mapped:
        base = schedulers.schedule_cascade(wl, arch, "unfused", objective)[0]
        value, sched = v, replace(base, method=sched.method)
        facts["chosen"] = "unfused (mapped)"
    facts.update(objective=value, bound=bound, gap=0.0 if value <= 0 else (value - bound) / value)
    return replace(sched, solver=facts), use_mapped

"""The cascade schedulers: fusion groups, unit binding and on-chip residency.

``schedule_cascade(cascade, arch, method=...)`` returns the
:class:`mappers.schedule.Schedule` and its :class:`sim.metrics.Metrics`
(the analytical cascade model). Commands reach it through
:func:`sim.api.evaluate` with ``schedule=METHOD``; ``METHODS`` is the one
list of method names (the CLI's choices come from it).

Methods:
  ``unfused``     every Einsum alone, intermediates through DRAM
  ``greedy``      greedy fusion (keep an intermediate on chip while it fits)
  ``ilp``         the CP-SAT residency/fusion ILP (default), over a space that
                  also holds every ``flat`` and ``fusemax`` schedule of the
                  cascade, so it is never worse than any baseline
  ``exhaustive``  every fusion pattern (small cascades only), and those
  ``flat``        FLAT's fused, double-buffered attention (3-pass cascade)
  ``fusemax``     FuseMax's streamed 1-pass attention

The ``ilp`` and ``exhaustive`` schedules carry ``solver`` facts: the
objective, a bound valid over their whole space (the fusion space's bound,
CP-SAT's or the cost terms' relaxation, or a structured candidate's exact
value where lower) and the gap, and ``chosen``: which part of the space the
schedule comes from.
"""

from __future__ import annotations

from collections.abc import Iterable

from hw_models.arch import Architecture
from mappers.cascade import attention as attention_schedules
from mappers.cascade import fusion
from mappers.objectives import objective_value
from mappers.schedule import Schedule, ScheduleError, default_binding, validate_schedule
from sim.analytical import cascade as cascade_model
from sim.metrics import Metrics
from workloads.ir import Cascade

#: method -> one line for ``--help``
METHODS: dict[str, str] = {
    "ilp": "the CP-SAT fusion/residency ILP",
    "greedy": "keep an intermediate on chip while it fits",
    "unfused": "every Einsum alone, intermediates through DRAM",
    "exhaustive": "every fusion pattern (small cascades)",
    "flat": "FLAT's fused, double-buffered attention (3-pass cascade)",
    "fusemax": "FuseMax's streamed 1-pass attention",
}


def cost_schedule(cascade: Cascade, arch: Architecture, schedule: Schedule) -> Metrics:
    """The analytical cost of a given schedule."""
    return cascade_model.evaluate_schedule(cascade, arch, schedule)


def fusion_units(m: Metrics, objective: str) -> float:
    """``objective`` in the fusion problem's units (cycles, pJ, cycles*pJ,
    bytes), which its ILP bound and a schedule's ``solver`` facts are in."""
    if objective == "latency":
        return m.cycles
    if objective == "energy":
        return m.energy_pj
    if objective == "dram_traffic":
        return sum(next(iter(m.traffic_bytes.values()), {}).values())
    return m.cycles * m.energy_pj


def schedule_cascade(
    cascade: Cascade,
    arch: Architecture,
    method: str = "ilp",
    objective: str = "edp",
    *,
    tiled_rank: str = "",
    tile_counts: Iterable[int] = (1,),
    time_limit_s: float = 10.0,
    seed: int = 0,
    workers: int = 2,
) -> tuple[Schedule, Metrics]:
    """Schedule ``cascade`` on ``arch`` with ``method``; cost it analytically."""
    if method not in METHODS:
        raise ScheduleError(
            f"unknown schedule method {method!r}; expected one of {', '.join(METHODS)}"
        )
    if method == "flat":
        # FLAT picks its granularity per workload: cost each legal schedule
        scored = []
        for sched in attention_schedules.flat_candidates(cascade, arch):
            m = cascade_model.evaluate_schedule(cascade, arch, sched)
            scored.append((objective_value(m, objective), sched, m))
        if not scored:
            raise ScheduleError(f"FLAT: no schedule of {cascade.name} fits {arch.name}")
        _, sched, m = min(scored, key=lambda x: x[0])
        return sched, m
    if method == "fusemax":
        sched = attention_schedules.fusemax_schedule(cascade, arch)
        return sched, cascade_model.evaluate_schedule(cascade, arch, sched)
    binding = default_binding(cascade, arch)
    problem = cascade_model.build_fusion_problem(
        cascade, arch, binding, tiled_rank=tiled_rank, tile_counts=tuple(tile_counts)
    )
    if method == "unfused":
        res = fusion.unfused(problem, objective)
    elif method == "greedy":
        res = fusion.greedy(problem, objective)
    elif method in ("exhaustive", "ilp"):
        if method == "exhaustive":
            res = fusion.exhaustive(problem, objective)
        else:
            res = fusion.solve_ilp(
                problem, objective, time_limit_s=time_limit_s, workers=workers, seed=seed
            )
        # the space also holds the tiled, pipelined attention schedules the
        # baselines pick from (FLAT's, FuseMax's): every one is costed
        sched, m = _fusion_schedule(cascade, arch, problem, res, binding, method, tiled_rank)
        return _best_of(cascade, arch, objective, sched, m, res.bound)
    sched, m = _fusion_schedule(cascade, arch, problem, res, binding, method, tiled_rank)
    return sched, m


def structured_candidates(cascade: Cascade, arch: Architecture) -> list[Schedule]:
    """The attention schedules of :mod:`mappers.cascade.attention` that apply
    to ``cascade``: FLAT's tiled fusions (every tile size and spill choice
    ``--method flat`` picks from) and FuseMax's streamed pass."""
    out: list[Schedule] = []
    for build in (attention_schedules.flat_candidates, attention_schedules.fusemax_schedule):
        try:
            got = build(cascade, arch)
        except ScheduleError:
            continue  # not an attention cascade, or its tiles do not fit
        out.extend(got if isinstance(got, list) else [got])
    return out


def _best_of(
    cascade: Cascade,
    arch: Architecture,
    objective: str,
    sched: Schedule,
    m: Metrics,
    bound: float,
) -> tuple[Schedule, Metrics]:
    """The best of the fusion ILP's schedule and every structured candidate;
    the bound is over their union: the fusion space's bound, or a
    candidate's value when one is lower (each is costed exactly)."""
    from dataclasses import replace

    best, best_m, value = sched, m, fusion_units(m, objective)
    for cand in structured_candidates(cascade, arch):
        cm = cascade_model.evaluate_schedule(cascade, arch, cand)
        v = fusion_units(cm, objective)
        bound = min(bound, v)
        if v < value:
            best, best_m, value = cand, cm, v
    bound = min(bound, value)
    solver = dict(sched.solver)
    solver.update(
        objective=value,
        bound=bound,
        gap=0.0 if value <= 0 else (value - bound) / value,
        chosen=best.method or "fusion",
    )
    return replace(best, method=sched.method, solver=solver), best_m


def _fusion_schedule(
    cascade: Cascade,
    arch: Architecture,
    problem: fusion.FusionProblem,
    res: fusion.FusionResult,
    binding: dict[str, str],
    method: str,
    tiled_rank: str,
) -> tuple[Schedule, Metrics]:
    """The schedule of a fusion-problem solution, validated and costed."""
    sched = cascade_model.schedule_from_fusion(
        cascade,
        problem,
        res.keep,
        res.tiles,
        binding,
        method=method,
        tiled_rank=tiled_rank,
        buffer=arch.levels[1].name,
        solver={
            "objective": res.objective_value,
            "bound": res.bound,
            "gap": res.gap,
            "solve_time_s": res.solve_time_s,
        },
    )
    footprints = {t.name: fusion.footprint(t, res.tiles) for t in problem.intermediates}
    validate_schedule(sched, cascade, problem.capacity_bytes, footprints)
    return sched, cascade_model.evaluate_schedule(cascade, arch, sched)

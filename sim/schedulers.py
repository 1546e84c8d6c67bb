"""The cascade schedulers: fusion groups, unit binding and on-chip residency.

``schedule_cascade(cascade, arch, method=...)`` returns the
:class:`mappers.schedule.Schedule` and its :class:`sim.metrics.Metrics`
(the analytical cascade model). Commands reach it through
:func:`sim.api.evaluate` with ``schedule=METHOD``; ``METHODS`` is the one
list of method names (the CLI's choices come from it).

Methods:
  ``unfused``     every Einsum alone, intermediates through DRAM
  ``greedy``      greedy fusion (keep an intermediate on chip while it fits)
  ``ilp``         the CP-SAT residency/fusion ILP (default)
  ``exhaustive``  every fusion pattern (small cascades only)
  ``flat``        FLAT's fused, double-buffered attention (3-pass cascade)
  ``fusemax``     FuseMax's streamed 1-pass attention
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
    elif method == "exhaustive":
        res = fusion.exhaustive(problem, objective)
    else:
        res = fusion.solve_ilp(
            problem, objective, time_limit_s=time_limit_s, workers=workers, seed=seed
        )
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

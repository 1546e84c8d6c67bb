"""``einsim schedule``: schedule a whole cascade (fusion, binding, residency),
through :func:`sim.evaluate` with ``schedule=METHOD``."""

from __future__ import annotations

import json

import click

from experiments.commands._common import (
    Design,
    gpu_plan_option,
    mapper_option,
    objective_option,
    workload_options,
)


def _method_option(f):
    from sim.schedulers import METHODS

    return click.option(
        "--method",
        default="ilp",
        show_default=True,
        type=click.Choice(list(METHODS)),
        help="How to schedule: " + "; ".join(f"{k}: {v}" for k, v in METHODS.items()) + ".",
    )(f)


def _model_option(f):
    from sim import models

    mapping_models = [m.name for m in models.MODELS.values() if m.kind == "mapping"]
    return click.option(
        "--sim",
        default=models.AUTO,
        show_default=True,
        type=click.Choice([models.AUTO, *mapping_models]),
        help="Cost the schedule with the analytical cascade model (auto) or the "
        "discrete-event simulator (des).",
    )(f)


@click.command(name="schedule")
@workload_options
@_method_option
@objective_option
@_model_option
@mapper_option(None)
@gpu_plan_option
@click.option("--time-limit", default=10.0, show_default=True, help="ILP time limit (s).")
@click.option("--seed", default=0, show_default=True, help="Solver random seed.")
@click.option("--json", "as_json", is_flag=True, help="Print the schedule and metrics as JSON.")
def command(
    design: Design,
    method: str,
    objective: str,
    sim: str,
    mapper: str | None,
    time_limit: float,
    seed: int,
    as_json: bool,
    gpu_plan: str | None = None,
) -> None:
    """Decide fusion groups, unit binding and on-chip residency for a cascade.

    With --sim des, each Einsum is mapped on the unit the schedule binds it
    to (by --mapper) and the schedule is simulated.

    On a GPU the schedule is a plan's kernels (fusion groups on the SMs):
    --method ilp is the cascade ILP's plan, --gpu-plan picks another
    (docs/llm.md).

    Example: einsim schedule -w transformer-layer -p model=bert -p seq=512
    --hw fusemax_cloud --method ilp --objective edp
    """
    import sim as front_door
    from experiments.report import evaluation_json, summary_lines

    cascade, arch = design.workload, design.arch
    how = {"schedule": method, "model": sim, "mapper": mapper, "objective": objective}
    if gpu_plan is not None:
        how["plan"] = gpu_plan
    ev = front_door.evaluate(
        cascade, arch, time_limit_s=time_limit, seed=seed, progress=not as_json, **how
    )
    if as_json:
        click.echo(json.dumps(evaluation_json(ev), indent=2))
        return
    sched = ev.schedule
    click.echo(f"schedule of {cascade.name} on {arch.name} ({method}, objective {ev.objective})")
    for g in sched.groups:
        units = sorted({sched.binding[e] for e in g.einsums})
        tile = f", tiled on {g.tiled_rank} by {g.tile}" if g.tiled_rank else ""
        click.echo(f"  group [{' '.join(g.einsums)}] on {'/'.join(units)}{tile}")
    spilled = sched.spilled
    click.echo(f"  spilled to DRAM: {', '.join(spilled) if spilled else 'none'}")
    if sched.solver:
        s = sched.solver
        gap = "-" if s.get("gap") is None else f"{100 * s['gap']:.2f}%"
        click.echo(f"  solver: gap {gap} to its lower bound, {s['solve_time_s']:.3f} s")
    for line in summary_lines(ev, design.name):
        click.echo(line)

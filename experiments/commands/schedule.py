"""``einsim schedule``: schedule a whole cascade (fusion, binding, residency)."""

from __future__ import annotations

import json

import click

from experiments.commands.eval import load_hw, load_workload, metrics_json, parse_params


@click.command(name="schedule")
@click.option("--workload", "-w", required=True, help="Library workload name or a cascade file.")
@click.option("--param", "-p", "params", multiple=True, help="Workload parameter NAME=VALUE.")
@click.option("--hw", required=True, help="Hardware preset name or file.")
@click.option("--hw-param", "hw_params", multiple=True, help="Hardware override NAME=VALUE.")
@click.option(
    "--method",
    default="ilp",
    show_default=True,
    type=click.Choice(["ilp", "greedy", "unfused", "exhaustive", "flat", "fusemax"]),
    help="How to schedule: the CP-SAT ILP, a baseline, or a published attention design.",
)
@click.option(
    "--objective",
    default="edp",
    show_default=True,
    type=click.Choice(["edp", "latency", "energy", "dram_traffic"]),
)
@click.option(
    "--sim",
    default="analytical",
    show_default=True,
    type=click.Choice(["analytical", "des"]),
    help="Cost the schedule with the analytical model or the discrete-event simulator.",
)
@click.option("--time-limit", default=10.0, show_default=True, help="ILP time limit (s).")
@click.option("--seed", default=0, show_default=True, help="Solver random seed.")
@click.option("--json", "as_json", is_flag=True, help="Print the schedule and metrics as JSON.")
def command(
    workload: str,
    params: tuple[str, ...],
    hw: str,
    hw_params: tuple[str, ...],
    method: str,
    objective: str,
    sim: str,
    time_limit: float,
    seed: int,
    as_json: bool,
) -> None:
    """Decide fusion groups, unit binding and on-chip residency for a cascade.

    Example: einsim schedule -w transformer-layer -p model=bert -p seq=512
    --hw fusemax_cloud --method ilp --objective edp
    """
    from dataclasses import asdict

    from experiments.cascade_pipeline import schedule_cascade, simulate_schedule

    cascade = load_workload(workload, parse_params(params))
    arch = load_hw(hw, parse_params(hw_params))
    sched, metrics = schedule_cascade(
        cascade, arch, method, objective, time_limit_s=time_limit, seed=seed
    )
    if sim == "des":
        metrics = simulate_schedule(cascade, arch, sched)
    if as_json:
        click.echo(
            json.dumps({"schedule": asdict(sched), "metrics": metrics_json(metrics)}, indent=2)
        )
        return
    click.echo(f"schedule of {cascade.name} on {arch.name} ({method}, objective {objective})")
    for g in sched.groups:
        units = sorted({sched.binding[e] for e in g.einsums})
        tile = f", tiled on {g.tiled_rank} by {g.tile}" if g.tiled_rank else ""
        click.echo(f"  group [{' '.join(g.einsums)}] on {'/'.join(units)}{tile}")
    spilled = sched.spilled
    click.echo(f"  spilled to DRAM: {', '.join(spilled) if spilled else 'none'}")
    if sched.solver:
        s = sched.solver
        click.echo(
            f"  solver: objective {s['objective']:.4g}, bound {s['bound']:.4g}, "
            f"gap {100 * s['gap']:.2f}%, {s['solve_time_s']:.3f} s"
        )
    dram = sum(next(iter(metrics.traffic_bytes.values()), {}).values())
    click.echo(
        f"  {sim}: latency {metrics.latency_s:.4g} s, energy {metrics.energy_pj:.4g} pJ, "
        f"DRAM {dram:.4g} B, utilization "
        + ", ".join(f"{u} {v:.3f}" for u, v in metrics.utilization.items())
    )

"""``einsim map``: search a mapping for every Einsum of a workload.

Runs a mapper of :mod:`mappers.registry` through :func:`sim.evaluate` (the
one front door, so ``eval`` with the same mapper prints the same numbers)
and prints each Einsum's search result, metrics and mapping, then the
workload's total. ``--json`` prints the whole evaluation in exact SI units.
"""

from __future__ import annotations

import json

import click

from experiments.commands._common import (
    Design,
    mapper_option,
    objective_option,
    workload_options,
)


@click.command(name="map")
@workload_options
@mapper_option("ilp")
@objective_option
@click.option(
    "--time-limit",
    "time_limit_s",
    type=float,
    help="Seconds per Einsum (ILP solve, random search); a safety net, see docs/mappers.md.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Solver / sampler seed.")
@click.option("--workers", default=1, show_default=True, type=int, help="CP-SAT workers.")
@click.option("--samples", type=int, help="Random search: valid samples per Einsum.")
@click.option("--json", "as_json", is_flag=True, help="Print the evaluation as JSON (SI units).")
def command(
    design: Design,
    mapper: str,
    objective: str,
    time_limit_s: float | None,
    seed: int,
    workers: int,
    samples: int | None,
    as_json: bool,
) -> None:
    """Search a mapping per Einsum and print it with its metrics.

    Example: einsim map -w gemm -p M=256 -p N=256 -p K=256 --hw tpu_like --mapper ilp
    """
    import sim as front_door
    from experiments.report import (
        evaluation_json,
        fmt_objective,
        metrics_lines,
        summary_lines,
    )
    from mappers.mapping import dump_mappings
    from mappers.objectives import canonical_objective, objective_value

    objective = canonical_objective(objective)
    arch = design.arch
    search = {"time_limit_s": time_limit_s, "seed": seed, "workers": workers, "samples": samples}
    ev = front_door.evaluate(
        design.workload, arch, mapper=mapper, objective=objective, progress=not as_json, **search
    )
    if as_json:
        click.echo(json.dumps(evaluation_json(ev), indent=2))
        return
    for name, part in ev.parts.items():
        r = ev.searches.get(name)
        value = fmt_objective(objective, objective_value(part, objective))
        if r is not None:
            gap = "-" if r.gap is None else f"{100 * r.gap:.1f}%"
            how = f"{r.status}, gap {gap}, {r.solve_time_s:.2f} s, {r.evaluations} evaluations"
        else:
            how = "heuristic"
        click.echo(f"# {name} on {arch.name}: {mapper} {objective} = {value} ({how})")
        for line in metrics_lines(part, indent="#   "):
            click.echo(line)
        click.echo(dump_mappings([ev.mappings[name]]).rstrip())
    for line in summary_lines(ev, design.name):
        click.echo(line)

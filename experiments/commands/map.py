"""``einsim map``: search a mapping for every Einsum of a workload.

Runs one of the searches of :mod:`mappers.search` (ILP on CP-SAT, random
sampling, exhaustive enumeration, greedy) with the analytical model as the
cost, and prints each Einsum's mapping and metrics (``--json`` for a
machine-readable list).
"""

from __future__ import annotations

import json
import math
from typing import Any

import click


def _fmt_si(v: float, unit: str) -> str:
    """``4.2e-05, "s" -> '42 us'`` (SI prefixes for plain units only)."""
    if v is None or not math.isfinite(v) or v == 0:
        return f"{v} {unit}"
    for scale, prefix in (
        (1e-12, "p"),
        (1e-9, "n"),
        (1e-6, "u"),
        (1e-3, "m"),
        (1.0, ""),
        (1e3, "k"),
        (1e6, "M"),
        (1e9, "G"),
    ):
        if abs(v) < scale * 1000:
            return f"{v / scale:.4g} {prefix}{unit}"
    return f"{v:.4g} {unit}"


#: objective -> (scale to SI, unit)
_UNITS = {
    "latency": (1.0, "s"),
    "energy": (1e-12, "J"),
    "edp": (1e-12, "J*s"),
    "dram_traffic": (1.0, "B"),
}


def map_workload(
    workload: Any,
    arch: Any,
    *,
    mapper: str,
    objective: str,
    time_limit_s: float | None,
    seed: int,
    workers: int,
    samples: int | None,
) -> list[Any]:
    """(Einsum, SearchResult) per Einsum of ``workload``, in execution order."""
    from experiments.pipeline import einsums_of
    from mappers.search import search
    from sim.analytical.model import evaluate, evaluate_batch

    out = []
    for e in einsums_of(workload):
        res = search(
            e,
            arch,
            mapper=mapper,
            objective=objective,
            evaluate=lambda m, e=e: evaluate(e, arch, m),
            evaluate_batch=lambda ms, e=e: evaluate_batch(e, arch, ms),
            time_limit_s=time_limit_s,
            seed=seed,
            workers=workers,
            samples=samples,
        )
        out.append((e, res))
    return out


@click.command(name="map")
@click.option("--workload", "-w", required=True, help="Workload name (library) or cascade file.")
@click.option("--param", "-p", "params", multiple=True, help="Workload parameter NAME=VALUE.")
@click.option("--hw", "hw", required=True, help="Hardware preset name or YAML file.")
@click.option("--hw-param", "hw_params", multiple=True, help="Hardware parameter NAME=VALUE.")
@click.option(
    "--mapper",
    default="ilp",
    show_default=True,
    type=click.Choice(["ilp", "random", "exhaustive", "greedy"]),
)
@click.option(
    "--objective",
    default="edp",
    show_default=True,
    type=click.Choice(["edp", "latency", "energy", "dram_traffic", "traffic"]),
)
@click.option(
    "--time-limit",
    "time_limit_s",
    type=float,
    help="Seconds per Einsum (ILP solve, random search).",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Solver / sampler seed.")
@click.option("--workers", default=2, show_default=True, type=int, help="CP-SAT workers.")
@click.option("--samples", type=int, help="Random search: valid samples per Einsum.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (one entry per Einsum).")
def command(
    workload: str,
    params: tuple[str, ...],
    hw: str,
    hw_params: tuple[str, ...],
    mapper: str,
    objective: str,
    time_limit_s: float | None,
    seed: int,
    workers: int,
    samples: int | None,
    as_json: bool,
) -> None:
    """Search a mapping per Einsum and print it with its metrics."""
    from experiments.commands.eval import load_hw, load_workload, metrics_json, parse_params
    from mappers.mapping import dump_mappings, mapping_to_dict
    from mappers.search import canonical_objective

    objective = canonical_objective(objective)
    wl = load_workload(workload, parse_params(params))
    arch = load_hw(hw, parse_params(hw_params))
    results = map_workload(
        wl,
        arch,
        mapper=mapper,
        objective=objective,
        time_limit_s=time_limit_s,
        seed=seed,
        workers=workers,
        samples=samples,
    )
    if as_json:
        rows = []
        for e, r in results:
            rows.append(
                {
                    "einsum": e.name,
                    "mapper": mapper,
                    "objective": objective,
                    "objective_value": r.objective_value,
                    "bound": r.bound,
                    "gap": r.gap,
                    "solve_time_s": r.solve_time_s,
                    "status": r.status,
                    "evaluations": r.evaluations,
                    "seed": seed,
                    "mapping": mapping_to_dict(r.mapping),
                    "metrics": metrics_json(r.metrics),
                    "notes": {
                        k: v for k, v in r.notes.items() if isinstance(v, int | float | str | bool)
                    },
                }
            )
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    scale, unit = _UNITS[objective]
    top = arch.levels[0].name
    for e, r in results:
        m = r.metrics
        gap = "-" if r.gap is None else f"{100 * r.gap:.1f}%"
        click.echo(
            f"# {e.name} on {arch.name}: {mapper} {objective} = {_fmt_si(r.objective_value * scale, unit)} "
            f"({r.status}, gap {gap}, {r.solve_time_s:.2f} s, {r.evaluations} evaluations)"
        )
        click.echo(
            f"#   latency {_fmt_si(m.latency_s, 's')}, energy {_fmt_si(m.energy_pj * 1e-12, 'J')}, "
            f"{top} traffic {_fmt_si(sum(m.traffic_bytes.get(top, {}).values()), 'B')}, "
            f"utilization {max(m.utilization.values(), default=0.0):.1%}"
        )
        click.echo(dump_mappings([r.mapping]).rstrip())

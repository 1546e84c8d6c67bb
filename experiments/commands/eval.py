"""``einsim eval``: evaluate a workload on a hardware model (one mapping per Einsum)."""

from __future__ import annotations

import json
import math
from typing import Any

import click

from experiments.commands._common import split_param
from workloads.errors import EinsimError


class EvalError(EinsimError):
    """Bad arguments to ``einsim eval``."""


def parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    """``k=v`` strings -> dict (ints, then floats, else strings)."""
    out: dict[str, Any] = {}
    for it in items:
        k, v = split_param(it, EvalError, missing="expected NAME=VALUE", empty="empty name")
        val: Any = v.strip()
        for conv in (int, float):
            try:
                val = conv(v)
                break
            except ValueError:
                continue
        out[k] = val
    return out


def load_workload(name: str, params: dict[str, Any]):
    """A library workload by name, or a cascade file (text or YAML)."""
    from pathlib import Path

    p = Path(name)
    if p.suffix in (".ein", ".txt", ".yaml", ".yml") or p.is_file():
        if params:
            raise EvalError(f"--param applies to library workloads, not to the file {name}")
        from workloads.parser import load_cascade

        return load_cascade(p)
    from workloads import library

    return library.build(name, **params)


def load_hw(name: str, overrides: dict[str, Any]):
    import hw_models

    arch = hw_models.load(name)
    if overrides:
        arch = hw_models.derive(arch, overrides)
    return arch


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def metrics_json(metrics: Any) -> dict[str, Any]:
    return _jsonable(metrics.to_dict())


def _fmt(v: float) -> str:
    return f"{v:.4g}"


@click.command(name="eval")
@click.option("--workload", "-w", required=True, help="Workload name (library) or file.")
@click.option("--param", "-p", "params", multiple=True, help="Workload parameter NAME=VALUE.")
@click.option("--hw", "hw", required=True, help="Hardware preset name or YAML file.")
@click.option("--hw-param", "hw_params", multiple=True, help="Hardware parameter NAME=VALUE.")
@click.option("--mapping", "mapping_file", type=click.Path(), help="Mapping YAML file.")
@click.option("--mapper", default="greedy", show_default=True, help="Mapper for unmapped Einsums.")
@click.option(
    "--objective",
    default="edp",
    show_default=True,
    type=click.Choice(["edp", "latency", "energy", "dram_traffic", "traffic"]),
)
@click.option("--sim", "sim", default="analytical", show_default=True, help="Cost model.")
@click.option("--json", "as_json", is_flag=True, help="Print the Metrics as JSON.")
@click.option(
    "--trace",
    "trace_file",
    type=click.Path(dir_okay=False),
    help="With --sim des: write a Chrome trace-event JSON timeline (Perfetto).",
)
@click.option(
    "--full-sim",
    is_flag=True,
    help="With --sim des: simulate every tile (no steady-state extrapolation).",
)
def command(
    workload: str,
    params: tuple[str, ...],
    hw: str,
    hw_params: tuple[str, ...],
    mapping_file: str | None,
    mapper: str,
    objective: str,
    sim: str,
    as_json: bool,
    trace_file: str | None = None,
    full_sim: bool = False,
) -> None:
    """Evaluate a workload on a hardware model with a given or default mapping."""
    from experiments.pipeline import evaluate_workload

    casc = load_workload(workload, parse_params(params))
    arch = load_hw(hw, parse_params(hw_params))
    mapping = None
    if mapping_file:
        from experiments.pipeline import einsums_of
        from mappers.mapping import check_mapping_file, load_mappings

        mapping = load_mappings(mapping_file)
        check_mapping_file(mapping_file, mapping, einsums_of(casc), arch)
    des_opts: dict[str, Any] = {}
    if trace_file or full_sim:
        if sim != "des":
            raise EvalError("--trace and --full-sim need the discrete-event model: add --sim des")
        des_opts = {"full_sim": full_sim, "timeline_limit": 500_000 if trace_file else 0}
    m = evaluate_workload(
        casc, arch, mapping=mapping, mapper=mapper, objective=objective, sim=sim, **des_opts
    )
    if trace_file:
        from sim.des.trace import write_trace

        write_trace(m, trace_file)
        m.notes.pop("timeline", None)  # in the trace file, not in the output
    if as_json:
        click.echo(json.dumps(metrics_json(m), indent=2))
        return
    click.echo(f"workload   {workload}  on {arch.name} ({m.model} model)")
    click.echo(f"cycles     {_fmt(m.cycles)}  (compute {_fmt(m.compute_cycles)})")
    click.echo(f"latency    {_fmt(m.latency_s)} s")
    click.echo(f"energy     {_fmt(m.energy_pj)} pJ")
    click.echo(f"MACs       {_fmt(m.macs)}  (padded {_fmt(m.padded_macs)})")
    for u, f in m.utilization.items():
        click.echo(f"util       {u}: {f:.3f}")
    for lv, d in m.traffic_bytes.items():
        tot = sum(d.values())
        per = ", ".join(f"{t} {_fmt(b)}" for t, b in d.items())
        tc = m.transfer_cycles.get(lv, 0.0)
        click.echo(f"traffic    {lv}: {_fmt(tot)} B ({per}); transfer {_fmt(tc)} cycles")
    for k, v in m.energy_breakdown_pj.items():
        click.echo(f"energy     {k}: {_fmt(v)} pJ")
    per = (m.notes or {}).get("per_einsum") or {}
    maps = m.mapping if isinstance(m.mapping, dict) else {}
    for name, d in per.items():
        unit = (maps.get(name) or {}).get("unit", "") if isinstance(maps.get(name), dict) else ""
        click.echo(
            f"einsum     {name}: {_fmt(d['cycles'])} cycles, {_fmt(d['energy_pj'])} pJ"
            + (f" on {unit}" if unit else "")
        )

"""``einsim eval``: evaluate a workload on a design (through :func:`sim.evaluate`)."""

from __future__ import annotations

import json
from typing import Any

import click

from experiments.commands._common import (
    Design,
    mapper_option,
    model_option,
    objective_option,
    workload_options,
)
from workloads.errors import EinsimError


class EvalError(EinsimError):
    """Bad arguments to ``einsim eval``."""


@click.command(name="eval")
@workload_options
@click.option("--mapping", "mapping_file", type=click.Path(), help="Mapping YAML file.")
@mapper_option(None)
@objective_option
@model_option
@click.option("--json", "as_json", is_flag=True, help="Print the evaluation as JSON (SI units).")
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
    design: Design,
    mapping_file: str | None,
    mapper: str | None,
    objective: str,
    sim: str,
    as_json: bool,
    trace_file: str | None = None,
    full_sim: bool = False,
) -> None:
    """Evaluate a workload on a design.

    Einsums without a --mapping get the mapper's mapping (default: the
    registry's default mapper on spatial arrays and FPGAs; GPUs need none).

    Example: einsim eval -w gemm -p M=512 -p N=64 -p K=2048 --hw eyeriss_like
    """
    import sim as front_door
    from experiments.report import evaluation_json, summary_lines

    casc, arch = design.workload, design.arch
    mapping = None
    if mapping_file:
        from mappers.mapping import check_mapping_file, load_mappings
        from sim.api import einsums_of

        mapping = load_mappings(mapping_file)
        check_mapping_file(mapping_file, mapping, einsums_of(casc), arch)
    opts: dict[str, Any] = {}
    if trace_file or full_sim:
        if sim != "des":
            raise EvalError("--trace and --full-sim need the discrete-event model: add --sim des")
        opts = {"full_sim": full_sim, "timeline_limit": 500_000 if trace_file else 0}
    ev = front_door.evaluate(
        casc,
        arch,
        mappings=mapping,
        mapper=mapper,
        objective=objective,
        model=sim,
        progress=not as_json,
        **opts,
    )
    m = ev.metrics
    if trace_file:
        from sim.des.trace import write_trace

        write_trace(m, trace_file)
        m.notes.pop("timeline", None)  # in the trace file, not in the output
    if as_json:
        click.echo(json.dumps(evaluation_json(ev), indent=2))
        return
    for line in summary_lines(ev, design.name):
        click.echo(line)

"""``einsim eval``: evaluate a workload on a design (through :func:`sim.evaluate`)."""

from __future__ import annotations

import json
from typing import Any

import click

from experiments.commands._common import (
    Design,
    gpu_plan_option,
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
@gpu_plan_option
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
@click.option(
    "--timeline",
    "timeline_file",
    type=click.Path(dir_okay=False),
    help="On a GPU: write a Plotly HTML timeline of the kernels and host launches.",
)
@click.option(
    "--no-kv-append",
    is_flag=True,
    help="On a GPU: leave the KV-cache append of a decode step out of the time "
    "(as the layer measurements do).",
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
    gpu_plan: str | None = None,
    timeline_file: str | None = None,
    no_kv_append: bool = False,
) -> None:
    """Evaluate a workload on a design.

    Einsums without a --mapping get the mapper's mapping (default: the
    registry's default mapper on spatial arrays and FPGAs; GPUs need none).

    On a GPU the workload is lowered to kernels by --gpu-plan and the report
    lists them (LLM figures for `-w llm`; docs/llm.md).

    Example: einsim eval -w gemm -p M=512 -p N=64 -p K=2048 --hw eyeriss_like

    Example: einsim eval -w decode-step -p model=llama-7b -p batch=16 -p kv_len=2048
    --hw h100 --gpu-plan fused
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
    if gpu_plan is not None or timeline_file or no_kv_append:
        if arch.family != "gpu":
            raise EvalError(
                f"--gpu-plan, --timeline and --no-kv-append are for GPU designs; {arch.name} "
                f"is a {arch.family} design"
            )
        if gpu_plan is not None:
            opts["plan"] = gpu_plan
        if no_kv_append:
            opts["include_append"] = False
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
    if timeline_file:
        from sim.gpu.llm import write_timeline

        write_timeline(m, timeline_file)
    if as_json:
        click.echo(json.dumps(evaluation_json(ev), indent=2))
        return
    for line in summary_lines(ev, design.name):
        click.echo(line)

"""``einsim workload``: list, show and check workloads (Einsum cascades)."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import click

from experiments.commands._common import load_workload, parse_params
from workloads.parser import format_cascade


@click.group(name="workload")
def command() -> None:
    """List, show and check workloads (Einsum cascades)."""


@command.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list with parameters.")
def list_cmd(as_json: bool) -> None:
    """List the library workloads and their parameters."""
    from workloads import library

    names = library.list_workloads()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": n,
                        "description": library.describe(n),
                        "parameters": library.parameters(n),
                    }
                    for n in names
                ],
                indent=2,
            )
        )
        return
    for n in names:
        params = " ".join(f"{k}={v}" for k, v in library.parameters(n).items())
        click.echo(f"{n:<18} {library.describe(n)}")
        click.echo(f"{'':<18}   {params}")


@command.command(name="show")
@click.argument("name")
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Workload parameter (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the cascade summary as JSON.")
@click.option("--text", "as_text", is_flag=True, help="Print the cascade in the text format.")
@click.option(
    "--passes",
    "passes_rank",
    default=None,
    metavar="RANK",
    help="Also report the passes over RANK.",
)
def show_cmd(
    name: str, params: tuple[str, ...], as_json: bool, as_text: bool, passes_rank: str | None
) -> None:
    """Show workload NAME (a library name or a cascade file)."""
    cascade = _load_frozen(name, parse_params(params))
    if as_json:
        data = cascade.summary()
        if passes_rank:
            data["passes"] = {passes_rank: cascade.passes(passes_rank)}
        click.echo(json.dumps(data, indent=2))
        return
    if as_text:
        click.echo(format_cascade(cascade), nl=False)
        return
    click.echo(
        f"cascade {cascade.name}: {len(cascade.einsums)} Einsums, {len(cascade.tensors)} tensors"
    )
    click.echo(f"  inputs:  {', '.join(cascade.inputs)}")
    click.echo(f"  outputs: {', '.join(cascade.outputs)}")
    ops = cascade.op_counts()
    click.echo(
        f"  total MACs: {cascade.total_macs:,}   ops: "
        + ", ".join(f"{k} {v:,}" for k, v in ops.items())
    )
    from experiments.report import fmt_si

    click.echo(f"  compulsory traffic: {fmt_si(cascade.compulsory_traffic_bytes(), 'B')}")
    if passes_rank:
        click.echo(f"  passes over {passes_rank}: {cascade.passes(passes_rank)}")
    click.echo("")
    click.echo(format_cascade(cascade), nl=False)


def _load_frozen(name: str, params: dict[str, Any]) -> Any:
    """The workload, then everything alive frozen out of the cyclic collector's reach.

    ``workload show`` is one short step: the cascade lives until the process
    exits. Left to the collector, its objects (a quarter of a million for
    30,000 Einsums) would be traversed by the next collections, as each
    promotes them a generation, while the summary and the text are made
    (about half a second for 30,000 Einsums). Frozen, they are not; reference
    counting still frees whatever becomes garbage, and the collector runs as
    usual for what is allocated afterwards. Collection is paused until the
    freeze, so that none starts between the end of parsing and the freeze.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return load_workload(name, params)
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


@command.command(name="check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def check_cmd(file: Path) -> None:
    """Parse and validate a cascade FILE (text, or YAML with a `cascade` key)."""
    from workloads.parser import load_cascade

    c = load_cascade(file)
    click.echo(
        f"{file}: ok: cascade {c.name}, {len(c.einsums)} Einsums, {len(c.tensors)} tensors, "
        f"{c.total_macs:,} MACs"
    )

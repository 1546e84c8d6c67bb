"""``einsim export DIR --out FILE.parquet``: surrogate-model training data."""

from __future__ import annotations

from pathlib import Path

import click

from experiments.commands._options import path_option


@click.command(name="export")
@click.argument("sweep_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@path_option(
    "--out",
    "out_file",
    kind="file",
    required=True,
    help="Output Parquet file (a FILE.schema.json sidecar is written next to it).",
)
@click.option(
    "--allow-missing",
    is_flag=True,
    help="Export even if points of the spec have no result (warns); default: refuse.",
)
def command(sweep_dir: Path, out_file: Path, allow_missing: bool) -> None:
    """Write the results of the sweep in DIR as one flat, typed table.

    Features: hardware parameters (hw.*), workload parameters (wl.*),
    mapping summary (map.*). Labels: latency, energy (total and per
    component), per-level traffic, area, utilisation, feasibility. A
    deterministic `split` column (train/val/test, 80/10/10 by hardware
    configuration) and a JSON schema sidecar (name, unit, dtype, role,
    description per column) come with it. Refuses (exit 2) when points of
    the spec have no result, unless --allow-missing.
    """
    from experiments.sweep.export import export

    table, schema, rows = export(sweep_dir, out_file, allow_missing=allow_missing)
    click.echo(f"wrote {rows} rows to {table} (schema: {schema})", err=True)

"""``einsim experiment gpu-validation``: the GPU model against the measured H100 kernels."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="gpu-validation")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder for the per-group CSVs, HTML figures and error table.",
)
@click.option(
    "--cv/--no-cv",
    default=True,
    show_default=True,
    help="Also run leave-one-op-group-out cross-validation (about 25 s).",
)
def command(out_dir: Path, cv: bool) -> None:
    """Predicted vs measured time, DRAM bytes and energy per op group (no GPU needed)."""
    from experiments.gpu_validation import format_table, run

    report = run(out_dir, cv=cv)
    click.echo(format_table(report))
    click.echo(f"wrote {len(report['files'])} files to {out_dir}")

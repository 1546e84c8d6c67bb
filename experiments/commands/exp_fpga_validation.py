"""``einsim experiment fpga-validation``: the hls4ml FPGA model against wa-hls4ml synthesis."""

from __future__ import annotations

from pathlib import Path

import click

from experiments.commands._options import path_option


@click.command(name="fpga-validation")
@path_option(
    "--out",
    "out_dir",
    kind="dir",
    required=True,
    help="Folder for predictions.csv, the error table and one HTML plot per resource.",
)
@path_option(
    "--data",
    "data",
    kind="file",
    help="A CSV with the wa-hls4ml columns (default: the dev rows in experiments/data/wa_hls4ml/).",
)
@click.option(
    "--folds",
    default=10,
    show_default=True,
    type=click.IntRange(2, 1000),
    help="Shape-group cross-validation folds (whole model_string groups held out).",
)
@click.option(
    "--refit",
    is_flag=True,
    help="Fit the coefficients on all the rows and write sim/fpga/coefficients.yaml (dev data only).",
)
def command(out_dir: Path, data: Path | None, folds: int, refit: bool) -> None:
    """Predicted vs synthesised latency, DSP, LUT, FF and BRAM_18K (fitted and CV)."""
    from experiments.fpga_validation import format_table, run

    report = run(out_dir, data, k=folds, refit=refit)
    click.echo(format_table(report))
    click.echo(f"wrote {len(report['files'])} files to {out_dir}")

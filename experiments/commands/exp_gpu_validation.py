"""``einsim experiment gpu-validation``: the GPU kernel model against both data sets."""

from __future__ import annotations

from pathlib import Path

import click

from experiments.commands._options import path_option


@click.command(name="gpu-validation")
@path_option(
    "--out",
    "out_dir",
    kind="any",
    required=True,
    help="Folder for the error tables, the headline figures, the per-group HTML plots and all predictions.",
)
@click.option(
    "--cv/--no-cv",
    default=True,
    show_default=True,
    help="Also re-fit with each of 5 folds of whole shape groups held out (several minutes).",
)
def command(out_dir: Path, cv: bool) -> None:
    """Predicted vs measured GPU kernel times on our H100 data and the public
    H100 data (fitted and held out), H200/A100/B200 from their presets."""
    from tqdm import tqdm

    from experiments.gpu_validation import format_table, run

    with tqdm(total=5 if cv else 0, desc="cross-validation folds", disable=not cv) as bar:
        report = run(out_dir, cv=cv, progress=lambda _f: bar.update(1))
    click.echo(format_table(report))
    click.echo(f"wrote {len(report['files'])} files to {out_dir}")

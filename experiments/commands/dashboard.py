"""``einsim dashboard DIR --out FILE.html``: the Plotly dashboard of a sweep."""

from __future__ import annotations

from pathlib import Path

import click

from experiments.commands._options import path_option


@click.command(name="dashboard")
@click.argument("sweep_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@path_option(
    "--out", "out_file", kind="file", help="Output HTML file (default DIR/dashboard.html)."
)
@click.option(
    "--baseline",
    "baseline",
    multiple=True,
    metavar="KEY=VALUE",
    help="Baseline design: design=NAME and hardware parameters, e.g. --baseline design=array --baseline rows=16 (default: the spec's dashboard.baseline, else the smallest design).",
)
def command(sweep_dir: Path, out_file: Path | None, baseline: tuple[str, ...]) -> None:
    """Write one self-contained HTML page (plotly.js embedded, no network):
    speedup and energy against a baseline design, the Pareto front of
    latency vs energy vs area, the energy breakdown, a roofline, and
    parallel coordinates of the swept parameters."""
    from experiments.sweep.dashboard import DashboardError, write_dashboard

    base = None
    if baseline:
        items = []
        for b in baseline:
            key, eq, val = b.partition("=")
            if not eq or not key:
                raise DashboardError(f"--baseline expects KEY=VALUE, got {b!r}")
            try:
                v: object = int(val)
            except ValueError:
                try:
                    v = float(val)
                except ValueError:
                    v = val
            items.append((key, v))
        base = tuple(items)
    path = write_dashboard(sweep_dir, out_file or sweep_dir / "dashboard.html", baseline=base)
    click.echo(f"dashboard: {path}", err=True)

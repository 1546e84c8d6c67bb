"""``einsim sweep SPEC --out DIR``: evaluate every point of a design sweep."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="sweep")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output directory (shards, spec copy, dashboard.html).",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="tcp://HOST:PORT",
    help="Run on an existing Dask distributed cluster.",
)
@click.option(
    "--dask-local",
    type=int,
    default=None,
    metavar="N",
    help="Start a Dask LocalCluster with N worker processes.",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    metavar="N",
    help="Local process-pool size (default: the CPUs this process may use).",
)
@click.option(
    "--chunk-size",
    type=int,
    default=None,
    metavar="N",
    help="Points per task (default: about 8 tasks per worker, at most 512).",
)
@click.option("--no-dashboard", is_flag=True, help="Do not write DIR/dashboard.html at the end.")
@click.option(
    "--progress/--no-progress", default=True, help="Show a progress bar with rate and ETA."
)
def command(
    spec_path: Path,
    out_dir: Path,
    scheduler: str | None,
    dask_local: int | None,
    workers: int | None,
    chunk_size: int | None,
    no_dashboard: bool,
    progress: bool,
) -> None:
    """Evaluate every point of the sweep SPEC; rerunning resumes.

    Results go to Parquet shards in DIR/shards as they complete; finished
    points are skipped on a rerun. A failing point is recorded with its
    error and never stops the sweep. At the end DIR/dashboard.html is
    written (see `einsim dashboard`).
    """
    from experiments.sweep.engine import run_sweep
    from experiments.sweep.spec import load_spec
    from experiments.sweep.workdir import save_spec

    spec = load_spec(spec_path)
    changed = save_spec(out_dir, spec_path)
    if changed:
        click.echo(
            f"note: {out_dir}/spec.yaml differed from {spec_path}; it was replaced (finished points of the new spec are kept)",
            err=True,
        )
    s = run_sweep(
        spec,
        out_dir,
        scheduler=scheduler,
        dask_local=dask_local,
        workers=workers,
        chunk_size=chunk_size,
        progress=progress,
    )
    rate = f" ({s.points_per_s:.0f} points/s on {s.engine})" if s.evaluated else ""
    click.echo(
        f"{s.total} points: {s.skipped} already done, {s.evaluated} evaluated in {s.wall_s:.1f} s{rate}; "
        f"ok {s.ok}, errors {s.errors}, rejected by constraints {s.rejected}",
        err=True,
    )
    if not no_dashboard:
        from experiments.sweep.dashboard import DashboardError, write_dashboard

        try:
            path = write_dashboard(out_dir, out_dir / "dashboard.html")
        except DashboardError as exc:  # the sweep itself succeeded
            click.echo(f"warning: no dashboard: {exc}", err=True)
        else:
            click.echo(f"dashboard: {path}", err=True)

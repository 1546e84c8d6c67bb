"""``einsim sweep SPEC --out DIR``: evaluate every point of a design sweep."""

from __future__ import annotations

from pathlib import Path

import click

from experiments.commands._options import count_option, path_option

#: the options that make a ``distributed.Security`` for a tls:// scheduler
TLS_OPTIONS = (
    ("--tls-ca-file", "CA certificate (PEM) the scheduler's certificate must be signed by."),
    ("--tls-cert", "This client's certificate (PEM) for a tls:// scheduler."),
    ("--tls-key", "This client's private key (PEM), if not inside --tls-cert."),
)


def _tls_options(f):
    for name, text in reversed(TLS_OPTIONS):
        f = click.option(name, default=None, type=click.Path(dir_okay=False), help=text)(f)
    return f


@click.command(name="sweep")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
@path_option(
    "--out",
    "out_dir",
    kind="dir",
    required=True,
    help="Output directory (shards, spec copy, dashboard.html).",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="tls://HOST:PORT",
    help="Run on an existing Dask distributed cluster. A scheduler runs whatever "
    "its clients send on its workers: only connect to one you trust, over tls:// "
    "with --tls-* (see docs/sweeps.md, Security).",
)
@_tls_options
@count_option(
    "--dask-local", maximum=4096, help="Start a Dask LocalCluster with N worker processes."
)
@count_option(
    "--workers",
    maximum=4096,
    help="Local process-pool size (default: the CPUs this process may use).",
)
@count_option(
    "--chunk-size",
    maximum=1_000_000,
    help="Points per task (default: about 8 tasks per worker, at most 512).",
)
@click.option("--no-dashboard", is_flag=True, help="Do not write DIR/dashboard.html at the end.")
@click.option(
    "--check",
    "check_only",
    is_flag=True,
    help="Validate the whole spec (every value, every point's hardware, every "
    "workload instance, the dashboard baseline), print the point count and stop.",
)
@click.option(
    "--progress/--no-progress", default=True, help="Show a progress bar with rate and ETA."
)
def command(
    spec_path: Path,
    out_dir: Path,
    scheduler: str | None,
    tls_ca_file: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    dask_local: int | None,
    workers: int | None,
    chunk_size: int | None,
    no_dashboard: bool,
    check_only: bool,
    progress: bool,
) -> None:
    """Evaluate every point of the sweep SPEC; rerunning resumes.

    The whole spec is validated first (exit 2 with the line to fix if it
    can never work). Results go to Parquet shards in DIR/shards as they
    complete; finished points are skipped on a rerun, and damaged shards
    are set aside and their points recomputed. A failing point is recorded
    with its error and never stops the sweep. DIR is locked while the sweep
    runs. At the end DIR/dashboard.html is written (see `einsim dashboard`).
    """
    from experiments.sweep.check import check_spec
    from experiments.sweep.engine import run_sweep, tls_security
    from experiments.sweep.spec import load_spec

    spec = load_spec(spec_path)
    report = check_spec(spec)
    for w in report.warnings:
        click.echo(f"einsim: warning: {w}", err=True)
    security = tls_security(scheduler, tls_ca_file, tls_cert, tls_key)
    if check_only:
        n = report.points
        click.echo(
            f"{spec_path}: ok: {n:,} points ({len(spec.designs)} designs, "
            f"{len(spec.workloads)} workloads)"
        )
        return
    s = run_sweep(
        spec,
        out_dir,
        scheduler=scheduler,
        dask_local=dask_local,
        workers=workers,
        chunk_size=chunk_size,
        progress=progress,
        security=security,
    )
    if s.replaced_spec:
        click.echo(
            f"note: {out_dir}/spec.yaml differed from {spec_path}; it was replaced (finished points of the new spec are kept)",
            err=True,
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
            click.echo(f"einsim: warning: no dashboard: {exc}", err=True)
        else:
            click.echo(f"dashboard: {path}", err=True)

"""The ``einsim`` command: one subcommand per job.

Each job lives in its own module under ``experiments/commands/`` and exports a
click object named ``command``. Modules are imported only when their
subcommand runs, so ``einsim --help`` stays fast and a heavy dependency of one
job (OR-Tools, Dask, Plotly) never slows another.

Bad input raises :class:`workloads.errors.EinsimError`; it is printed as one
line on stderr with no traceback and the exit status is 2. So are click's
usage errors (an unknown option, a missing argument, a bad value): one line
naming the option and pointing at ``--help``. Exit status 1 ("internal
error") is kept for bugs. Set ``EINSIM_DEBUG=1`` to see tracebacks.
"""

from __future__ import annotations

import gc
import os
import sys

import click

from experiments.commands._lazy import LazyGroup
from workloads.errors import EinsimError

#: subcommand name -> (module, short help)
COMMANDS: dict[str, tuple[str, str]] = {
    "workload": (
        "experiments.commands.workload",
        "List, show and check workloads (Einsum cascades).",
    ),
    "hw": ("experiments.commands.hw", "List, show, check and derive hardware models."),
    "eval": ("experiments.commands.eval", "Evaluate a workload on a hardware model."),
    "map": ("experiments.commands.map", "Search a mapping for a workload (ILP and baselines)."),
    "schedule": (
        "experiments.commands.schedule",
        "Schedule a cascade: fusion, binding, residency (ILP).",
    ),
    "array-predict": (
        "experiments.commands.array_predict",
        "SCALE-Sim compatible systolic-array predictions.",
    ),
    "gpu-predict": (
        "experiments.commands.gpu_predict",
        "Predict GPU kernel time, DRAM bytes and energy.",
    ),
    "sweep": ("experiments.commands.sweep", "Run a design sweep (local pool or Dask)."),
    "export": (
        "experiments.commands.export",
        "Export sweep results as surrogate-model training data.",
    ),
    "dashboard": ("experiments.commands.dashboard", "Write a Plotly dashboard of a sweep."),
    "experiment": (
        "experiments.commands.experiment",
        "Run a packaged experiment (fusemax, gpu-validation, gpu-layers, fpga-validation).",
    ),
}


class EinsimGroup(LazyGroup):
    """The ``einsim`` group: its help lists the subcommands without importing them."""

    modules = {name: module for name, (module, _) in COMMANDS.items()}

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=EinsimGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="einsim")
def cli() -> None:
    """einsim: design-space exploration for cascades of Einsums on GPUs,
    FPGAs and spatial arrays."""


def main(argv: list[str] | None = None) -> int:
    """Entry point. Returns the exit status (0 ok, 1 internal error, 2 bad input)."""
    debug = os.environ.get("EINSIM_DEBUG") == "1"
    try:
        cli.main(args=argv, prog_name="einsim", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("einsim: aborted", err=True)
        return 130
    except click.UsageError as exc:
        ctx = exc.ctx
        where = ctx.command_path if ctx is not None else "einsim"
        click.echo(
            f"einsim: error: {_one_line(exc.format_message())} (see '{where} --help')", err=True
        )
        return 2
    except click.ClickException as exc:
        click.echo(f"einsim: error: {_one_line(exc.format_message())}", err=True)
        return exc.exit_code if exc.exit_code != 1 else 2
    except EinsimError as exc:
        if debug:
            raise
        click.echo(f"einsim: error: {_one_line(str(exc))}", err=True)
        return 2
    except KeyboardInterrupt:
        click.echo("einsim: interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        if debug or not exc.filename:
            return _internal(exc, debug)
        # a path the user gave that cannot be written or read (permissions,
        # a full disk, a missing folder): their input, not a bug
        click.echo(f"einsim: error: {exc.filename}: {exc.strerror or exc}", err=True)
        return 2
    except Exception as exc:  # noqa: BLE001 - the CLI never shows a traceback
        return _internal(exc, debug)
    return 0


def _internal(exc: BaseException, debug: bool) -> int:
    """A bug: one line (exit 1), or the traceback with EINSIM_DEBUG=1."""
    if debug:
        raise exc
    click.echo(
        f"einsim: internal error: {type(exc).__name__}: {exc} (set EINSIM_DEBUG=1 for a traceback)",
        err=True,
    )
    return 1


def _one_line(msg: str) -> str:
    return " ".join(str(msg).split())


def run() -> None:
    """The ``einsim`` console script."""
    status = main()
    # The process ends here: move every object out of the cyclic collector's
    # reach, so the interpreter does not traverse a large cascade's hundreds of
    # thousands of objects again on the way out (0.6 s of 2.9 s for a
    # 10,000-Einsum `workload show`; see experiments/bench_workloads.py).
    # Reference counting still frees them, and atexit handlers still run.
    gc.freeze()
    sys.exit(status)

"""``einsim experiment NAME``: packaged reproductions and validation reports."""

from __future__ import annotations

import importlib

import click

#: experiment name -> module exporting a click command named ``command``
EXPERIMENTS: dict[str, str] = {
    "fusemax": "experiments.commands.exp_fusemax",
    "gpu-validation": "experiments.commands.exp_gpu_validation",
    "gpu-layers": "experiments.commands.exp_gpu_layers",
    "fpga-validation": "experiments.commands.exp_fpga_validation",
}


class _LazyExperiments(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(EXPERIMENTS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in EXPERIMENTS:
            return None
        return importlib.import_module(EXPERIMENTS[name]).command


@click.group(name="experiment", cls=_LazyExperiments)
def command() -> None:
    """Run a packaged experiment and write its CSV and HTML report."""

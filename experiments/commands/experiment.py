"""``einsim experiment NAME``: packaged reproductions and validation reports."""

from __future__ import annotations

import click

from experiments.commands._lazy import LazyGroup

#: experiment name -> module exporting a click command named ``command``
EXPERIMENTS: dict[str, str] = {
    "fusemax": "experiments.commands.exp_fusemax",
    "gpu-validation": "experiments.commands.exp_gpu_validation",
    "gpu-layers": "experiments.commands.exp_gpu_layers",
    "fpga-validation": "experiments.commands.exp_fpga_validation",
}


class _LazyExperiments(LazyGroup):
    modules = EXPERIMENTS


@click.group(name="experiment", cls=_LazyExperiments)
def command() -> None:
    """Run a packaged experiment and write its CSV and HTML report."""

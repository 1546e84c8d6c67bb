"""``einsim experiment gpu-layers --hw h100 --out DIR``: whole transformer layers on a GPU."""

from __future__ import annotations

from pathlib import Path

import click

from experiments.commands._options import path_option


@click.command(name="gpu-layers")
@click.option("--hw", default="h100", show_default=True, help="GPU preset (h100, h200, ...).")
@path_option(
    "--out",
    "out_dir",
    kind="dir",
    required=True,
    help="Folder for layers_pred.csv and layers_detail.csv.",
)
@click.option(
    "--ilp/--no-ilp",
    default=True,
    show_default=True,
    help="Also run the cascade ILP's plan and report its speedup over the library plan.",
)
@click.option(
    "--flash-io/--no-flash-io",
    default=True,
    show_default=True,
    help="Also check the ILP plan on attention against FlashAttention's IO count "
    "(head dims 64 and 128, 1K-64K tokens); writes DIR/flash_io.csv.",
)
def command(hw: str, out_dir: Path, ilp: bool, flash_io: bool) -> None:
    """Predict the issue-16 layers (BERT-large, LLaMA-7B, GPT-3 prefill and decode).

    Prints predicted time and energy (PyTorch eager, the library plan) next to
    any layer measurements the project has for the card, with the fused
    (TensorRT-LLM-class) and ILP plans, and writes DIR/layers_pred.csv
    (model, mode, batch, seq, pred_ms, pred_energy_mj).
    """
    from tqdm import tqdm

    from experiments import gpu_layers

    with tqdm(total=len(gpu_layers.CONFIGS), desc=f"gpu-layers {hw}", unit="layer") as bar:
        preds = gpu_layers.predict(hw, ilp=ilp, progress=bar.update)
    path = gpu_layers.write_predictions(preds, out_dir)
    click.echo(gpu_layers.table(preds, gpu_layers.measured(hw)))
    click.echo(f"wrote {path}")
    if flash_io:
        rows = gpu_layers.flash_io(hw)
        click.echo(gpu_layers.flash_table(rows))
        click.echo(f"wrote {gpu_layers.write_flash(rows, out_dir)}")

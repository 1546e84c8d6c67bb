"""``einsim gpu-predict``: GPU kernel time, DRAM bytes and energy for a CSV of kernels."""

from __future__ import annotations

import csv
from pathlib import Path

import click

from experiments.commands._options import path_option
from workloads.errors import EinsimError

#: columns IN.csv must have; every other model column is optional
#: (sim.gpu.rows.KernelRow, docs/gpu-model.md)
REQUIRED = ("op",)


class KernelCsvError(EinsimError):
    """A malformed kernels CSV."""


def read_kernels(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a kernels CSV (strings; values are checked by
    ``sim.gpu.rows.normalise_row``), read by the shared safe reader
    (``experiments.commands._csv``). Every error names file, line and column."""
    from experiments.commands._csv import read_csv

    table = read_csv(path, "kernels CSV", error=KernelCsvError)
    header = table.header
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise KernelCsvError(f"missing column(s) {', '.join(missing)}", file=str(path), line=1)
    rows: list[dict[str, str]] = []
    for lineno, fields in table.rows:
        if len(fields) != len(header):
            raise KernelCsvError(
                f"{len(fields)} fields, expected {len(header)} (as in the header)",
                file=str(path),
                line=lineno,
            )
        row = {h: f.strip() for h, f in zip(header, fields, strict=True)}
        row["_line"] = str(lineno)
        rows.append(row)
    return header, rows


def _column_of(message: str, header: list[str]) -> int | None:
    """1-based column of the CSV column a model error names, if any."""
    import re

    m = re.search(r"column '([^']+)'", message)
    if m and m.group(1) in header:
        return header.index(m.group(1)) + 1
    return None


def predict_csv(
    in_path: Path, out_path: Path, hw: str, timing: str | None = None
) -> tuple[int, int]:
    """Predict every row of ``in_path`` on preset ``hw``.

    Returns (rows, rows outside the calibration envelope).
    """
    import hw_models
    from sim.gpu.model import PRED_COLUMNS, predict_arrays
    from sim.gpu.rows import normalise_row, to_batch
    from sim.gpu.spec import resolve

    header, rows = read_kernels(in_path)
    spec, params = resolve(hw_models.load(hw))
    normal = []
    for row in rows:
        line = int(row["_line"])
        try:
            normal.append(normalise_row({k: v for k, v in row.items() if k != "_line"}, timing))
        except EinsimError as exc:
            raise KernelCsvError(
                exc.message, file=str(in_path), line=line, col=_column_of(exc.message, header)
            ) from None
    results: list[dict[str, str]] = []
    n_out = 0
    if normal:
        try:
            arrs = predict_arrays(to_batch(normal), spec, params)
        except EinsimError as exc:
            raise KernelCsvError(exc.message, file=str(in_path)) from None
        for i, row in enumerate(rows):
            row.pop("_line", None)
            pred = {
                "pred_ms": f"{arrs['time_s'][i] * 1e3:.6g}",
                "pred_kernel_ms": f"{arrs['kernel_s'][i] * 1e3:.6g}",
                "pred_loop_ms": f"{arrs['loop_s'][i] * 1e3:.6g}",
                "pred_dram_bytes": f"{arrs['dram_bytes'][i]:.6g}",
                "pred_energy_mj": f"{arrs['energy_pj'][i] * 1e-9:.6g}",
                "pred_bound": str(arrs["bound"][i]),
                "pred_family": str(arrs["family"][i]),
                "pred_timing": str(arrs["timing"][i]),
                "out_of_envelope": "1" if arrs["out_of_envelope"][i] else "0",
                "envelope_reason": str(arrs["envelope_reason"][i]),
            }
            n_out += int(bool(arrs["out_of_envelope"][i]))
            results.append({**row, **pred})
    out_cols = [h for h in header if h not in PRED_COLUMNS] + list(PRED_COLUMNS)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=out_cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(results)
    return len(results), n_out


@click.command(name="gpu-predict")
@click.option(
    "--hw", default="h100", show_default=True, help="GPU preset (h100, h200, a100, b200)."
)
@path_option(
    "--kernels",
    "kernels_csv",
    kind="any",
    required=True,
    help="IN.csv: one row per timed call; 'op' and the size columns it needs (docs/gpu-model.md).",
)
@path_option(
    "--out",
    "out_csv",
    kind="any",
    required=True,
    help="OUT.csv: the input plus pred_ms, pred_kernel_ms, pred_loop_ms, pred_dram_bytes, "
    "pred_energy_mj, pred_bound, pred_family, pred_timing, out_of_envelope, envelope_reason.",
)
@click.option(
    "--timing",
    type=click.Choice(["event", "graph", "kernel", "loop"]),
    default=None,
    help="Timing convention of rows without a 'timing' value (default event).",
)
def command(hw: str, kernels_csv: Path, out_csv: Path, timing: str | None) -> None:
    """Predict GPU kernel time, HBM bytes and energy per call under a timing convention."""
    n, n_out = predict_csv(kernels_csv, out_csv, hw, timing)
    click.echo(f"wrote {n} predictions to {out_csv}")
    if n_out:
        click.echo(
            f"warning: {n_out} of {n} rows are outside the calibration envelope "
            "(column out_of_envelope, reason in envelope_reason)"
        )

"""``einsim gpu-predict``: GPU kernel time, DRAM bytes and energy for a CSV of kernels."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import click

from workloads.errors import EinsimError

#: columns IN.csv must have (as in experiments/data/h100/kernels.csv)
REQUIRED = ("id", "op", "dtype", "B", "H", "M", "N", "K", "causal", "C", "HW", "Kc", "R", "stride")
NUMERIC = ("B", "H", "M", "N", "K", "causal", "C", "HW", "Kc", "R", "stride")
#: largest size in a numeric column (as for ranks of a cascade)
MAX_DIM = 2**48


class KernelCsvError(EinsimError):
    """A malformed kernels CSV."""


def read_kernels(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Rows of a kernels CSV, checked: every error names file, line and column."""
    from experiments.commands._csv import read_csv
    from sim.gpu.kernels import OPS
    from sim.gpu.tiling import DTYPE_BYTES

    table = read_csv(path, "kernels CSV", error=KernelCsvError)
    header = table.header
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise KernelCsvError(
            f"missing column(s) {', '.join(missing)}; expected at least {', '.join(REQUIRED)}",
            file=str(path),
            line=1,
        )
    rows: list[dict[str, str]] = []
    for lineno, fields in table.rows:
        if len(fields) != len(header):
            raise KernelCsvError(
                f"{len(fields)} fields, expected {len(header)} (as in the header)",
                file=str(path),
                line=lineno,
            )
        row = {h: f.strip() for h, f in zip(header, fields, strict=True)}
        for col in NUMERIC:
            v = row[col]
            if v == "":
                continue
            try:
                x = float(v)
            except ValueError:
                x = float("nan")
            if not math.isfinite(x) or x < 0 or x != int(x) or x > MAX_DIM:
                raise KernelCsvError(
                    f"column '{col}': expected a whole number from 0 to 2^48 or empty, got {v[:40]!r}",
                    file=str(path),
                    line=lineno,
                    col=header.index(col) + 1,
                )
        if row["op"] not in OPS:
            raise KernelCsvError(
                f"column 'op': unknown op {row['op']!r}, expected one of {', '.join(OPS)}",
                file=str(path),
                line=lineno,
                col=header.index("op") + 1,
            )
        if row["dtype"] not in DTYPE_BYTES:
            raise KernelCsvError(
                f"column 'dtype': unknown dtype {row['dtype']!r}, expected one of "
                f"{', '.join(DTYPE_BYTES)}",
                file=str(path),
                line=lineno,
                col=header.index("dtype") + 1,
            )
        row["_line"] = str(lineno)
        rows.append(row)
    return header, rows


def predict_csv(in_path: Path, out_path: Path, hw: str) -> int:
    """Predict every row of ``in_path`` on preset ``hw``; returns the row count."""
    import hw_models
    from sim.gpu.model import PRED_COLUMNS, predict_row, resolve

    header, rows = read_kernels(in_path)
    spec, params = resolve(hw_models.load(hw))
    out_cols = [h for h in header if h not in PRED_COLUMNS] + list(PRED_COLUMNS)
    results = []
    for row in rows:
        line = int(row.pop("_line"))
        typed = {k: (float(v) if k in NUMERIC and v != "" else v) for k, v in row.items()}
        try:
            pred, _ = predict_row(typed, spec, params)
        except EinsimError as exc:
            raise KernelCsvError(exc.message, file=str(in_path), line=line) from None
        results.append({**row, **{k: f"{v:.6g}" for k, v in pred.items()}})
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=out_cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(results)
    return len(results)


@click.command(name="gpu-predict")
@click.option("--hw", default="h100", show_default=True, help="GPU preset (h100, a100, h200).")
@click.option(
    "--kernels",
    "kernels_csv",
    required=True,
    type=click.Path(path_type=Path),
    help="IN.csv: id, op, dtype, B, H, M, N, K, causal, C, HW, Kc, R, stride.",
)
@click.option(
    "--out",
    "out_csv",
    required=True,
    type=click.Path(path_type=Path),
    help="OUT.csv: the input plus pred_ms, pred_loop_ms, pred_dram_bytes, pred_energy_mj.",
)
def command(hw: str, kernels_csv: Path, out_csv: Path) -> None:
    """Predict GPU kernel time (pred_ms, as median_ms), HBM bytes and energy per call."""
    n = predict_csv(kernels_csv, out_csv, hw)
    click.echo(f"wrote {n} predictions to {out_csv}")

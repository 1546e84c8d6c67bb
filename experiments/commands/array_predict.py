"""``einsim array-predict``: SCALE-Sim compatible systolic-array predictions.

Reads a layer table with the descriptive columns of SCALE-Sim's reference
data (``experiments/data/scalesim/reference.csv``), predicts every layer with
:mod:`sim.systolic.scalesim` and writes the input columns plus ``pred_*`` columns.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import click

from sim.systolic.scalesim import MEMORY_FIELDS
from workloads.errors import EinsimError


class LayerTableError(EinsimError):
    """A malformed layer table (file, line and column are named)."""


ARRAY_COLUMNS = ("config", "array_rows", "array_cols", "dataflow", *MEMORY_FIELDS)
GEMM_COLUMNS = ("M", "N", "K")
CONV_COLUMNS = ("ifmap_h", "ifmap_w", "filt_h", "filt_w", "channels", "num_filters", "stride")
#: output column -> field of sim.systolic.scalesim.predict_many
PRED_COLUMNS = {
    "pred_total_cycles": "total_cycles",
    "pred_stall_cycles": "stall_cycles",
    "pred_compute_cycles_no_stall": "compute_cycles_no_stall",
    "pred_compute_util_pct": "compute_util_pct",
    "pred_overall_util_pct": "overall_util_pct",
    "pred_mapping_eff_pct": "mapping_eff_pct",
    "pred_sram_ifmap_reads": "sram_ifmap_reads",
    "pred_sram_filter_reads": "sram_filter_reads",
    "pred_sram_ofmap_writes": "sram_ofmap_writes",
    "pred_dram_ifmap_reads": "dram_ifmap_reads",
    "pred_dram_filter_reads": "dram_filter_reads",
    "pred_dram_ofmap_writes": "dram_ofmap_writes",
}
#: largest lowered convolution ifmap (M x K words) the SRAM model walks:
#: it holds ~100 bytes per word, so 2^22 words stay under ~0.5 GB (the largest
#: row of SCALE-Sim's reference data, ResNet-50 conv1, has 1.9 M)
MAX_CONV_IFMAP_WORDS = 1 << 22
#: most array rows of demand (stall-free cycles) per layer: the memory model
#: holds ~80 bytes per row, so 2^21 rows stay under ~0.2 GB (SCALE-Sim's
#: reference data needs at most 0.33 M)
MAX_DEMAND_ROWS = 1 << 21
#: largest value of a numeric column (layer sizes, SRAM sizes, bandwidths)
MAX_VALUE = 2**48
#: columns written as integers
_INT_FIELDS = {c for c in PRED_COLUMNS if "util" not in c and "eff" not in c}


def _number(
    path: str, line: int, col: str, text: str | None, *, integer: bool, positive: bool = True
) -> Any:
    raw = (text or "").strip()
    what = "a positive integer" if integer else "a positive number"
    if not raw:
        raise LayerTableError(f"column {col!r} is empty; expected {what}", file=path, line=line)
    try:
        val = float(raw)
    except ValueError:
        raise LayerTableError(
            f"column {col!r} is {raw!r}; expected {what}", file=path, line=line
        ) from None
    if not math.isfinite(val) or (positive and val <= 0) or (integer and val != int(val)):
        raise LayerTableError(f"column {col!r} is {raw!r}; expected {what}", file=path, line=line)
    if val > MAX_VALUE:
        raise LayerTableError(
            f"column {col!r} is {raw!r}; expected {what} up to 2^48", file=path, line=line
        )
    return int(val) if integer else val


def _require_columns(path: str, header: list[str], kind: str, columns: tuple[str, ...]) -> None:
    """A ``kind`` row needs all of ``columns`` in the header."""
    cols = [c for c in columns if c not in header]
    if cols:
        raise LayerTableError(
            f"a {kind} row needs column {cols[0]!r}, which the header lacks", file=path, line=1
        )


def read_layers(path: str | Path) -> tuple[list[str], list[dict[str, str]], dict[str, Any]]:
    """Parse a layer table. Returns (header, raw rows, parsed columns).

    Parsed columns: ``M``, ``N``, ``K`` (lists of int; SCALE-Sim's lowering
    for conv rows), ``configs`` (list of :class:`sim.systolic.scalesim.ArrayConfig`)
    and ``convs`` (:class:`sim.systolic.scalesim.ConvShape` of conv rows, else None).
    """
    from experiments.commands._csv import read_csv
    from sim.systolic.scalesim import ArrayConfig, ConvShape, SystolicError, conv_to_gemm

    p = str(path)
    with read_csv(p, "layer table", error=LayerTableError) as reader:  # a DictReader's face
        header = list(reader.fieldnames or [])
        if not header:
            raise LayerTableError("empty file; expected a CSV header line", file=p, line=1)
        need = ("layer", "kind", *ARRAY_COLUMNS)
        missing = [c for c in need if c not in header]
        if missing:
            raise LayerTableError(
                f"missing column(s) {', '.join(missing)} in the header", file=p, line=1
            )
        rows: list[dict[str, str]] = []
        ms: list[int] = []
        ns: list[int] = []
        ks: list[int] = []
        cfgs: list[ArrayConfig] = []
        convs: list[ConvShape | None] = []
        lines: list[int] = []
        for row in reader:
            line = reader.line_num
            if None in row:
                raise LayerTableError(
                    f"{len(header) + len(row[None])} fields, the header has {len(header)}",
                    file=p,
                    line=line,
                )
            kind = (row.get("kind") or "").strip().lower()
            if kind == "gemm":
                _require_columns(p, header, "gemm", GEMM_COLUMNS)
                m, n, k = (_number(p, line, c, row[c], integer=True) for c in GEMM_COLUMNS)
                conv = None
            elif kind == "conv":
                _require_columns(p, header, "conv", CONV_COLUMNS)
                v = {c: _number(p, line, c, row[c], integer=True) for c in CONV_COLUMNS}
                if v["filt_h"] > v["ifmap_h"] or v["filt_w"] > v["ifmap_w"]:
                    raise LayerTableError(
                        f"filter {v['filt_h']}x{v['filt_w']} is larger than the ifmap "
                        f"{v['ifmap_h']}x{v['ifmap_w']}; expected a (padded) ifmap at least "
                        "as large as the filter",
                        file=p,
                        line=line,
                    )
                mm, nn, kk = conv_to_gemm(*(v[c] for c in CONV_COLUMNS))
                if mm * kk > MAX_CONV_IFMAP_WORDS:
                    raise LayerTableError(
                        f"the convolution's lowered ifmap is {int(mm)}x{int(kk)} = "
                        f"{int(mm * kk):,} words; array-predict accepts at most "
                        f"{MAX_CONV_IFMAP_WORDS:,} (its SRAM model walks every word)",
                        file=p,
                        line=line,
                    )
                conv = ConvShape(*(v[c] for c in CONV_COLUMNS))
                m, n, k = int(mm), int(nn), int(kk)
            else:
                raise LayerTableError(
                    f"column 'kind' is {row.get('kind')!r}; expected gemm or conv",
                    file=p,
                    line=line,
                )
            df = (row.get("dataflow") or "").strip().lower()
            if df not in ("os", "ws", "is"):
                raise LayerTableError(
                    f"column 'dataflow' is {row.get('dataflow')!r}; expected os, ws or is",
                    file=p,
                    line=line,
                )
            kw: dict[str, Any] = {"dataflow": df}
            for c in ARRAY_COLUMNS:
                if c in ("config", "dataflow"):
                    continue
                integer = c in ("array_rows", "array_cols") or c.endswith("_bw_words")
                kw[c.replace("array_", "")] = _number(p, line, c, row[c], integer=integer)
            try:
                cfgs.append(ArrayConfig(**kw))
            except SystolicError as exc:
                raise LayerTableError(str(exc), file=p, line=line) from None
            rows.append(row)
            lines.append(line)
            convs.append(conv)
            ms.append(m)
            ns.append(n)
            ks.append(k)
    if not rows:
        raise LayerTableError(
            "no layers after the header; expected one row per layer", file=p, line=2
        )
    return (
        header,
        rows,
        {"M": ms, "N": ns, "K": ks, "configs": cfgs, "convs": convs, "lines": lines},
    )


def _check_demand(path: str, parsed: dict[str, Any], scalesim_compat: bool) -> None:
    """Refuse a layer whose array rows of demand exceed :data:`MAX_DEMAND_ROWS`."""
    from sim.systolic.scalesim import closed_forms

    for i, cfg in enumerate(parsed["configs"]):
        m, n, k = parsed["M"][i], parsed["N"][i], parsed["K"][i]
        cf = closed_forms(m, n, k, cfg.rows, cfg.cols, cfg.dataflow, scalesim_compat)
        rows = int(cf["demand_rows"])
        if rows > MAX_DEMAND_ROWS:
            raise LayerTableError(
                f"layer M={m} N={n} K={k} on a {cfg.rows}x{cfg.cols} {cfg.dataflow} array "
                f"needs {rows} array rows of demand; array-predict accepts at most "
                f"{MAX_DEMAND_ROWS:,} (its memory model walks every row)",
                file=path,
                line=parsed["lines"][i],
            )


def predict_file(in_path: str | Path, out_path: str | Path, *, scalesim_compat: bool = True) -> int:
    """Predict every layer of ``in_path`` and write ``out_path``. Returns the row count."""
    from sim.systolic.scalesim import SystolicError, predict_many

    header, rows, parsed = read_layers(in_path)
    _check_demand(str(in_path), parsed, scalesim_compat)
    try:
        res = predict_many(
            parsed["M"],
            parsed["N"],
            parsed["K"],
            parsed["configs"],
            scalesim_compat=scalesim_compat,
            convs=parsed["convs"],
        )
    except SystolicError as exc:
        i = getattr(exc, "layer_index", None)
        if i is None:
            raise
        msg = exc.message.split(": ", 1)[1]
        raise LayerTableError(msg, file=str(in_path), line=parsed["lines"][i]) from None
    out_cols = [c for c in header if not c.startswith("pred_")] + list(PRED_COLUMNS)
    try:
        fh = open(out_path, "w", newline="")
    except OSError as exc:
        raise LayerTableError(f"cannot write: {exc.strerror}", file=str(out_path)) from None
    with fh:
        w = csv.DictWriter(fh, fieldnames=out_cols, extrasaction="ignore")
        w.writeheader()
        for i, row in enumerate(rows):
            rec = {c: row.get(c, "") for c in header if not c.startswith("pred_")}
            for col, field in PRED_COLUMNS.items():
                v = float(res[field][i])
                rec[col] = str(int(round(v))) if col in _INT_FIELDS else f"{v:.6f}"
            w.writerow(rec)
    return len(rows)


@click.command(name="array-predict")
@click.option(
    "--layers", "layers", required=True, type=click.Path(dir_okay=False), help="Input layer CSV."
)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Output CSV.")
@click.option(
    "--scalesim-compat/--no-scalesim-compat",
    default=True,
    show_default=True,
    help="Reproduce SCALE-Sim's double-counted stalls and OS ofmap write count.",
)
def command(layers: str, out: str, scalesim_compat: bool) -> None:
    """Predict SCALE-Sim's cycles and SRAM/DRAM accesses for every layer of LAYERS.

    LAYERS has the descriptive columns of SCALE-Sim's reference data (layer,
    kind, M, N, K or the conv shape, config, array_rows, array_cols,
    dataflow, *_sram_kb, *_dram_bw_words); other columns are copied through.
    """
    n = predict_file(layers, out, scalesim_compat=scalesim_compat)
    click.echo(f"wrote {n} layer predictions to {out}")

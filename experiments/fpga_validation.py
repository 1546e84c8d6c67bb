"""FPGA (hls4ml) model validation against the wa-hls4ml synthesis results.

``run(out_dir, data=None)`` predicts every row of the data (default: the
dev rows in ``experiments/data/wa_hls4ml/``, any CSV with the same columns
otherwise) with the shipped coefficients (``sim/fpga/coefficients.yaml``),
re-fits with whole network shapes (``model_string``) held out in ``k`` folds
(shape-group cross-validation), and writes

* ``predictions.csv``: the input columns plus ``pred_latency_cycles``,
  ``pred_dsp``, ``pred_lut``, ``pred_ff``, ``pred_bram18k`` (in the input's
  BRAM unit: 36 Kb tiles, a BRAM_18K counting 0.5), ``pred_clock_ns``, the
  CV predictions (``cv_pred_*``) and ``pred_note`` (why a row is not
  predicted);
* ``errors.csv`` / ``errors.md``: the error table (fitted and CV side by side);
* ``<resource>.html``: predicted against synthesised, one Plotly figure per
  resource (latency, dsp, lut, ff, bram18k).

``refit=True`` also writes the coefficients fitted on all the rows to
``sim/fpga/coefficients.yaml`` (do this on the dev data only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.validation_plots import identity_line, points
from workloads.errors import EinsimError

DATA_DIR = Path(__file__).resolve().parent / "data" / "wa_hls4ml"
DEV_FILES = ("dense2.csv", "dense3.csv", "conv2d.csv")

#: metric -> (label, limit on the dev data, "<=" or ">=")
LIMITS: dict[str, tuple[str, float, str]] = {
    "latency_median": ("latency (cycles) median abs. error", 0.05, "<="),
    "latency_p90": ("latency (cycles) p90 abs. error", 0.15, "<="),
    "dsp_exact": ("DSP exact", 0.90, ">="),
    "lut_median": ("LUT median abs. error", 0.10, "<="),
    "ff_median": ("FF median abs. error", 0.10, "<="),
    "bram18k_median": ("BRAM_18K median abs. error", 0.15, "<="),
    "lut_p90": ("LUT p90 abs. error", float("nan"), ""),
    "ff_p90": ("FF p90 abs. error", float("nan"), ""),
    "bram18k_p90": ("BRAM_18K p90 abs. error", float("nan"), ""),
    "clock_median": ("estimated clock median abs. error", float("nan"), ""),
}
#: prediction key -> (column in predictions.csv, synthesised column, axis title)
PLOTS: dict[str, tuple[str, str, str]] = {
    "latency_cycles": ("pred_latency_cycles", "BestLatency_hls", "latency (cycles)"),
    "dsp": ("pred_dsp", "DSP_hls", "DSP"),
    "lut": ("pred_lut", "LUT_hls", "LUT"),
    "ff": ("pred_ff", "FF_hls", "FF"),
    "bram18k": ("pred_bram18k", "BRAM_18K_hls", "BRAM_18K (36 Kb tiles, as in the data)"),
}


class FPGAValidationError(EinsimError):
    """Bad input to the FPGA validation."""


def load_data(path: Path | str | None = None) -> Any:
    """The dev rows (all three files) or one CSV with the wa-hls4ml columns."""
    import pandas as pd

    from sim.fpga.calibration import INPUT_COLUMNS, TARGET_COLUMNS

    if path is None:
        frame = pd.concat([pd.read_csv(DATA_DIR / f) for f in DEV_FILES], ignore_index=True)
    else:
        p = Path(path)
        if not p.is_file():
            raise FPGAValidationError(f"{p}: no such file")
        try:
            frame = pd.read_csv(p)
        except Exception as exc:  # noqa: BLE001 - any parse failure is bad input
            raise FPGAValidationError(f"{p}: not a readable CSV ({exc})") from None
        need = list(INPUT_COLUMNS) + list(TARGET_COLUMNS.values())
        missing = [c for c in need if c not in frame.columns]
        if missing:
            raise FPGAValidationError(
                f"{p}, line 1: missing column(s) {', '.join(missing)}; expected the "
                f"wa-hls4ml columns ({', '.join(need)})"
            )
        if frame.empty:
            raise FPGAValidationError(f"{p}: no rows")
    return frame


def build_report(frame: Any, *, k: int = 10, progress: bool = True) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from sim.fpga import calibration as cal
    from sim.fpga import coefficients

    runs = cal.runs_of(frame)
    shipped = coefficients.load()
    pred = cal.predict(runs, shipped)
    groups = {r.group for r in runs if r.layers is not None}
    k_eff = max(2, min(k, len(groups)))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=k_eff, desc="shape-group CV folds", unit="fold", leave=False)
    cvp, fold_fits = cal.group_cv(
        runs, frame, k=k_eff, base=shipped, progress=(lambda _i: bar.update(1)) if bar else None
    )
    if bar is not None:
        bar.close()
    out = frame.copy()
    out["pred_latency_cycles"] = pred["latency_cycles"]
    out["pred_dsp"] = pred["dsp"]
    out["pred_lut"] = pred["lut"]
    out["pred_ff"] = pred["ff"]
    out["pred_bram18k"] = pred["bram_tiles"]
    out["pred_clock_ns"] = pred["clock_s"] * 1e9
    out["cv_pred_latency_cycles"] = cvp["latency_cycles"]
    out["cv_pred_dsp"] = cvp["dsp"]
    out["cv_pred_lut"] = cvp["lut"]
    out["cv_pred_ff"] = cvp["ff"]
    out["cv_pred_bram18k"] = cvp["bram_tiles"]
    out["pred_note"] = [r.reason for r in runs]
    fitted = cal.error_stats(frame, pred)
    held = cal.error_stats(frame, cvp)
    rows = []
    for key, (label, limit, sense) in LIMITS.items():
        ok_f = _meets(fitted[key], limit, sense)
        ok_c = _meets(held[key], limit, sense)
        rows.append(
            {
                "metric": label,
                "limit": "" if sense == "" else f"{sense} {limit:.0%}",
                "fitted": fitted[key],
                "cv": held[key],
                "pass": "" if sense == "" else ("yes" if ok_f and ok_c else "NO"),
            }
        )
    table = pd.DataFrame(rows)
    n_skip = int(np.sum([r.layers is None for r in runs]))
    return {
        "pred": out,
        "table": table,
        "fitted": fitted,
        "cv": held,
        "rows": len(runs),
        "skipped": n_skip,
        "skip_reasons": sorted({r.reason for r in runs if r.layers is None}),
        "folds": k_eff,
        "coefficients": cal.describe(shipped),
        "fold_coefficients": [cal.describe(c) for c in fold_fits],
    }


def _meets(value: float, limit: float, sense: str) -> bool:
    if sense == "<=":
        return value <= limit
    if sense == ">=":
        return value >= limit
    return True


def format_table(report: dict[str, Any]) -> str:
    lines = [
        f"FPGA model vs wa-hls4ml synthesis: {report['rows'] - report['skipped']} rows predicted"
        f" of {report['rows']}; CV: {report['folds']} folds, whole network shapes held out",
        "",
        "| metric | limit | fitted | CV (held-out shapes) | pass |",
        "|---|---|---|---|---|",
    ]
    for r in report["table"].to_dict("records"):
        lines.append(
            f"| {r['metric']} | {r['limit']} | {r['fitted']:.1%} | {r['cv']:.1%} | {r['pass']} |"
        )
    if report["skipped"]:
        lines.append("")
        lines.append(
            f"not predicted: {report['skipped']} rows ({'; '.join(report['skip_reasons'])})"
        )
    return "\n".join(lines)


def _figure(frame: Any, key: str) -> Any:
    import plotly.graph_objects as go

    pcol, tcol, title = PLOTS[key]
    d = frame.dropna(subset=[pcol])
    text = (
        d["model_string"].astype(str)
        + " prec="
        + d["prec"].astype(str)
        + " rf="
        + d["rf"].astype(str)
    )
    fig = go.Figure()
    fig.add_trace(points(d[tcol], d[pcol], "shipped fit", text))
    fig.add_trace(
        points(d[tcol], d["cv_" + pcol], "held-out shapes (CV)", text, marker={"symbol": "x"})
    )
    vals = [v for v in list(d[tcol]) + list(d[pcol]) if v > 0]
    lo, hi = (min(vals) * 0.8, max(vals) * 1.25) if vals else (0.1, 1.0)
    fig.add_trace(identity_line(lo, hi, "predicted = synthesised"))
    log = key != "dsp"
    fig.update_xaxes(type="log" if log else "linear", title_text=f"synthesised {title}")
    fig.update_yaxes(type="log" if log else "linear", title_text=f"predicted {title}")
    fig.update_layout(
        title=f"einsim FPGA model vs Vitis HLS (wa-hls4ml): {title}", height=560, width=760
    )
    return fig


def write_report(report: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "predictions.csv", out_dir / "errors.csv", out_dir / "errors.md"]
    report["pred"].to_csv(written[0], index=False)
    report["table"].to_csv(written[1], index=False)
    written[2].write_text(format_table(report) + "\n")
    for key in PLOTS:
        h = out_dir / f"{key}.html"
        _figure(report["pred"], key).write_html(h, include_plotlyjs=True, full_html=True)
        written.append(h)
    return written


def refit_and_save(frame: Any) -> Any:
    """Fit on every modelled row and write ``sim/fpga/coefficients.yaml``."""
    from sim.fpga import calibration as cal
    from sim.fpga import coefficients

    co = cal.fit(cal.runs_of(frame), frame, base=coefficients.load())
    co = co.with_fit(source=_SOURCE, meaning=dict(MEANING))
    coefficients.save(co)
    return co


_SOURCE = (
    "fitted by `einsim experiment fpga-validation --out DIR --refit` on the dev rows of "
    "experiments/data/wa_hls4ml/ (dense2.csv, dense3.csv; conv rows are not modelled)"
)
MEANING: dict[str, str] = {
    "lut.rom_lut6": "LUTs per LUT6 cell of a weight LUT-ROM (the 64-bit cell plus its share of the depth multiplexers)",
    "lut.mult_pp_bits": "LUTs per partial-product bit (a x w) of a multiplier built from LUTs",
    "lut.mult_acc_bits": "LUTs per accumulator bit per multiplier (its adder and accumulator read/write multiplexers)",
    "lut.in_bits": "LUTs per bit of a layer's input array (the data[in_index] select multiplexer)",
    "lut.acc_bits": "LUTs per bit of a layer's accumulators acc[n_out] (init, write enables, output cast)",
    "lut.chan_bits": "LUTs per bit of an inter-layer channel (dataflow ping-pong select)",
    "lut.layers": "LUTs per dense/conv layer (loop counters, FSM, control)",
    "lut.act_bits": "fixed 1: one LUT per bit of an unrolled activation (compare + select)",
    "lut.srl_lut": "fixed 1: a line-buffer SRL32 shift register is one LUT",
    "lut.lutram_lut6": "fixed 1: a LUTRAM cell is one LUT",
    "ff.in_bits": "FFs per bit of a layer's input array (registered input)",
    "ff.acc_bits": "FFs per bit of a layer's accumulators and output",
    "ff.chan_bits": "FFs per bit of an inter-layer channel (ping-pong copies)",
    "ff.mult_pp_bits": "FFs per partial-product bit of a LUT multiplier (pipeline registers)",
    "ff.layers": "FFs per dense/conv layer (counters, FSM)",
    "ff.act_bits": "fixed 1: the registered output of an activation",
    "ff.kernel_bits": "fixed 1: a conv window (kernel_data) register",
    "layer_depth_cycles": "pipeline depth of a layer's ReuseLoop beyond its R iterations",
    "channel_cycles": "cycles per hand-over between dataflow processes",
    "top_cycles": "fixed 0: cycles of the top function outside its layers",
    "dsp_min_bits": "narrowest weight width bound to a DSP48E2 (narrower: LUT multiplier)",
    "rom_bram_min_multipliers": "layers with at least this many multipliers keep their weight ROM in BRAM",
    "lutram_max_bits": "memories under this many bits go to LUTRAM instead of BRAM",
    "clock_estimate_s": "Vitis HLS estimated clock period of these kernels (median)",
}


def run(
    out_dir: Path,
    data: Path | str | None = None,
    *,
    k: int = 10,
    refit: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    frame = load_data(data)
    if refit:
        refit_and_save(frame)
    report = build_report(frame, k=k, progress=progress)
    report["files"] = write_report(report, out_dir)
    return report

"""GPU model validation report against the measured H100 kernels.

``run(out_dir)`` predicts every kernel of ``experiments/data/h100/kernels.csv``
with the shipped parameters (``sim/gpu/params/h100.yaml``), optionally re-fits
with one op group held out at a time (leave-one-group-out cross-validation),
and writes, per op group, ``<group>.csv`` and a self-contained Plotly figure
``<group>.html`` (predicted against measured time, DRAM bytes, energy), plus
``errors.csv`` / ``errors.md`` (the error table, also returned for printing)
and ``all_kernels.csv``. Needs no GPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data" / "h100"


def load_data(data_dir: Path = DATA_DIR) -> tuple[Any, Any]:
    import pandas as pd

    kernels = pd.read_csv(data_dir / "kernels.csv")
    ncu = pd.read_csv(data_dir / "traffic_ncu.csv")
    return kernels, ncu


def _table_rows(name: str, stats: dict[str, float]) -> dict[str, Any]:
    return {"model": name, **{k: round(float(v), 2) for k, v in stats.items()}}


def build_report(kernels: Any, ncu: Any, arch: Any, *, cv: bool = True) -> dict[str, Any]:
    """Predictions, cross-validated predictions and the error table."""
    import pandas as pd

    from sim.gpu import calibration as gc
    from sim.gpu.model import resolve

    spec, params = resolve(arch)
    pred = gc.predict_frame(kernels, spec, params)
    pred["group"] = pred["op"].map(gc.group_of)
    pred["energy_per_call_mj"] = pred["energy_loop_mj"] / pred["energy_calls"]
    calls = gc.ncu_calls(ncu)
    pred = pred.merge(
        calls[["id", "dram_bytes"]].rename(columns={"dram_bytes": "ncu_dram_bytes"}),
        on="id",
        how="left",
    )
    pred["roofline_ms"] = gc.roofline_baseline(kernels, spec)
    pred["roofline_measured_peaks_ms"] = gc.roofline_baseline(
        kernels, spec, measured_peaks=True, launch_s=5e-6
    )
    rows = []
    e = pred["energy_per_call_mj"]
    rows.append(
        _table_rows(
            "einsim GPU model (all groups)",
            gc.error_table(pred["median_ms"], pred["pred_ms"], e, pred["pred_energy_mj"]),
        )
    )
    if cv:
        cvp = gc.leave_one_group_out(kernels, ncu, spec).reset_index(drop=True)
        pred["cv_pred_ms"] = cvp["pred_ms"].to_numpy()
        pred["cv_pred_energy_mj"] = cvp["pred_energy_mj"].to_numpy()
        rows.append(
            _table_rows(
                "leave-one-group-out CV (strict)",
                gc.error_table(pred["median_ms"], pred["cv_pred_ms"], e, pred["cv_pred_energy_mj"]),
            )
        )
    rows.append(
        _table_rows("datasheet roofline", gc.error_table(pred["median_ms"], pred["roofline_ms"]))
    )
    rows.append(
        _table_rows(
            "roofline, measured peaks + 5 us launch",
            gc.error_table(pred["median_ms"], pred["roofline_measured_peaks_ms"]),
        )
    )
    for g, sub in pred.groupby("group"):
        rows.append(
            _table_rows(
                f"group {g}",
                gc.error_table(
                    sub["median_ms"],
                    sub["pred_ms"],
                    sub["energy_per_call_mj"],
                    sub["pred_energy_mj"],
                ),
            )
        )
        if cv:
            rows.append(
                _table_rows(
                    f"group {g} (CV)",
                    gc.error_table(
                        sub["median_ms"],
                        sub["cv_pred_ms"],
                        sub["energy_per_call_mj"],
                        sub["cv_pred_energy_mj"],
                    ),
                )
            )
    table = pd.DataFrame(rows)
    errs = gc.traffic_errors(calls, spec, params)
    traffic = calls[["id", "op", "dram_bytes"]].copy()
    traffic["pred_dram_bytes"] = traffic["dram_bytes"] * (1 + errs)
    traffic["err_pct"] = errs * 100
    return {"pred": pred, "table": table, "traffic": traffic}


def _figure(sub: Any, group: str, cv: bool) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=("time per call (ms)", "HBM bytes (Nsight Compute)", "energy per call (mJ)"),
    )
    panels = [
        ("median_ms", "pred_ms", "cv_pred_ms"),
        ("ncu_dram_bytes", "pred_dram_bytes", None),
        ("energy_per_call_mj", "pred_energy_mj", "cv_pred_energy_mj"),
    ]
    for i, (mcol, pcol, cvcol) in enumerate(panels, start=1):
        d = sub.dropna(subset=[mcol])
        if d.empty:
            continue
        text = d["id"] + " " + d["dtype"] + " M=" + d["M"].astype(str) + " N=" + d["N"].astype(str)
        fig.add_trace(
            go.Scatter(
                x=d[mcol],
                y=d[pcol],
                mode="markers",
                name=f"model ({pcol})",
                text=text,
                showlegend=i == 1,
            ),
            row=1,
            col=i,
        )
        if cv and cvcol and cvcol in d:
            fig.add_trace(
                go.Scatter(
                    x=d[mcol],
                    y=d[cvcol],
                    mode="markers",
                    name="held out (CV)",
                    marker={"symbol": "x"},
                    text=text,
                    showlegend=i == 1,
                ),
                row=1,
                col=i,
            )
        lo = float(min(d[mcol].min(), d[pcol].min())) * 0.8
        hi = float(max(d[mcol].max(), d[pcol].max())) * 1.25
        fig.add_trace(
            go.Scatter(
                x=[lo, hi],
                y=[lo, hi],
                mode="lines",
                name="measured = predicted",
                line={"dash": "dash", "color": "gray"},
                showlegend=i == 1,
            ),
            row=1,
            col=i,
        )
        fig.update_xaxes(type="log", title_text="measured", row=1, col=i)
        fig.update_yaxes(type="log", title_text="predicted", row=1, col=i)
    fig.update_layout(
        title=f"einsim GPU model vs H100 measurements: {group}", height=480, width=1400
    )
    return fig


def write_report(report: dict[str, Any], out_dir: Path, *, cv: bool = True) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    pred = report["pred"]
    written = []
    for g, sub in pred.groupby("group"):
        p = out_dir / f"{g}.csv"
        sub.to_csv(p, index=False)
        h = out_dir / f"{g}.html"
        _figure(sub, str(g), cv).write_html(h, include_plotlyjs=True, full_html=True)
        written += [p, h]
    pred.to_csv(out_dir / "all_kernels.csv", index=False)
    report["table"].to_csv(out_dir / "errors.csv", index=False)
    report["traffic"].to_csv(out_dir / "traffic_ncu_errors.csv", index=False)
    (out_dir / "errors.md").write_text(format_table(report) + "\n")
    written += [
        out_dir / "all_kernels.csv",
        out_dir / "errors.csv",
        out_dir / "traffic_ncu_errors.csv",
        out_dir / "errors.md",
    ]
    return written


def format_table(report: dict[str, Any]) -> str:
    t = report["table"]
    cols = [
        c
        for c in (
            "model",
            "n_slow",
            "n_fast",
            "time_mape_slow_pct",
            "time_median_ape_slow_pct",
            "fast_median_abs_us",
            "fast_p90_abs_us",
            "energy_mape_slow_pct",
        )
        if c in t
    ]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in t.iterrows():
        lines.append(
            "| " + " | ".join("" if str(r[c]) == "nan" else str(r[c]) for c in cols) + " |"
        )
    tr = report["traffic"]
    lines.append("")
    lines.append(
        f"Nsight Compute DRAM bytes: {len(tr)} profiled calls, max |error| "
        f"{tr['err_pct'].abs().max():.1f}%, mean |error| {tr['err_pct'].abs().mean():.1f}%"
    )
    return "\n".join(lines)


def run(out_dir: Path, *, hw: str = "h100", cv: bool = True) -> dict[str, Any]:
    import hw_models

    kernels, ncu = load_data()
    report = build_report(kernels, ncu, hw_models.load(hw), cv=cv)
    report["files"] = write_report(report, out_dir, cv=cv)
    return report

"""The dashboard's FPGA view: what an hls4ml design costs of its device.

An FPGA design has no silicon area of its own; its budget is the fraction
of the device's DSP, LUT, FF, BRAM and URAM it uses (``device_fraction``,
the largest of the ``fpga.<resource>_fraction`` columns of a sweep row, as
:mod:`sim.fpga` reports it) and its power (``power_w``: static plus dynamic).
This figure plots latency against that fraction per workload instance,
coloured by power, with the limiting resource in the hover text.
"""

from __future__ import annotations

import html
from typing import Any

#: resource columns of a sweep row, in the order the hover text lists them
RESOURCES = ("dsp", "lut", "ff", "bram_18k", "uram")


def limiting_resource(row: Any) -> str:
    """The resource whose device fraction is largest in ``row`` ('' if none)."""
    best, name = -1.0, ""
    for r in RESOURCES:
        v = row.get(f"fpga.{r}_fraction")
        if v is not None and v == v and float(v) > best:  # v == v: not NaN
            best, name = float(v), r
    return name


def fpga_figure(ok: Any, hw_cols: list[str]) -> tuple[str, Any] | None:
    """``(heading, figure)`` of the successful FPGA points of a sweep, or
    ``None`` when the sweep has none costed by the hls4ml model."""
    import plotly.graph_objects as go

    if "device_fraction" not in ok.columns:
        return None
    rows = ok[ok["device_fraction"].notna()]
    if rows.empty:
        return None
    fig = go.Figure()
    lo, hi = float(rows["power_w"].min()), float(rows["power_w"].max())
    symbols = ("circle", "square", "diamond", "triangle-up", "x", "cross")
    for k, (wk, g) in enumerate(rows.groupby("wl_key", sort=True)):
        text = []
        for _, r in g.iterrows():
            params = [f"{c[3:]}: {r[c]:g}" for c in hw_cols if c in g and r[c] == r[c]]
            text.append(
                "<br>".join(
                    [f"<b>{html.escape(str(r['design']))}</b>", *params]
                    + [
                        f"latency {r['latency_s']:.3g} s",
                        f"device {r['device_fraction']:.1%} (limited by {limiting_resource(r)})",
                        f"power {r['power_w']:.3g} W",
                    ]
                )
            )
        fig.add_trace(
            go.Scatter(
                x=g["device_fraction"] * 100.0,
                y=g["latency_s"],
                mode="markers",
                name=str(wk),
                text=text,
                hoverinfo="text",
                marker={
                    "size": 9,
                    "symbol": symbols[k % len(symbols)],
                    "color": g["power_w"],
                    "cmin": lo,
                    "cmax": hi,
                    "colorscale": "Plasma",
                    "colorbar": {"title": "power (W)"} if k == 0 else None,
                    "showscale": k == 0,
                },
            )
        )
    fig.update_layout(
        xaxis_title="device used (% of the most used resource)",
        yaxis_title="latency (s)",
        yaxis_type="log",
        legend_title="workload",
        margin={"l": 70, "r": 30, "t": 40, "b": 50},
    )
    n = rows["hw_id"].nunique()
    return (
        f"FPGA designs as hls4ml builds them: latency vs device fraction "
        f"({n} designs; colour = power, W)",
        fig,
    )

"""One self-contained Plotly HTML page for a sweep.

plotly.js is embedded in the page (no CDN, no network), followed by one div
per figure:

1. speedup and energy of every design against a baseline design, per
   workload instance;
2. the Pareto front of latency vs energy vs area (designs aggregated over
   the whole workload suite; Pareto-optimal in all three);
3. the energy breakdown by component of the baseline and the Pareto designs;
4. a roofline: achieved MAC rate vs operational intensity (MACs per DRAM
   byte), with the roofs of the baseline and of the fastest design;
5. parallel coordinates of the swept parameters (one per design).

A *design* here is one hardware configuration (``hw_id``). The baseline is
the spec's ``dashboard.baseline`` (design name plus parameter values; the
first configuration that matches), else the smallest-area configuration
that ran every workload instance.
"""

from __future__ import annotations

import html as htmlmod
import math
from pathlib import Path
from typing import Any

from experiments.sweep.fpga_figure import fpga_figure
from workloads.errors import EinsimError

#: most points a scatter figure draws; most lines a parallel-coordinates view draws
MAX_SCATTER = 20_000
MAX_PARCOORDS = 5_000


class DashboardError(EinsimError):
    """No results to draw, or a bad baseline."""


def _wl_key(df: Any) -> Any:
    wl_cols = sorted(c for c in df.columns if c.startswith("wl."))

    import pandas as pd

    cols = [[f"{c[3:]}={_fmt(v)}" if _present(v) else "" for v in df[c].tolist()] for c in wl_cols]
    keys = []
    for label, *ps in zip(df["workload_label"].tolist(), *cols, strict=True):
        joined = ",".join(p for p in ps if p)
        keys.append(f"{label}({joined})" if joined else str(label))
    return pd.Series(keys, index=df.index, dtype=object)


def _present(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.4g}"
    return str(v)


_SUFFIXES = ("_bytes_per_s", "_bytes", "_hz")


def _si(v: Any) -> str:
    """Compact number for labels: 1048576 -> 1Mi (binary for powers of two),
    1e11 -> 100G."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    x = float(v)
    if x >= 1024 and x.is_integer() and int(x) & (int(x) - 1) == 0:
        for unit, scale in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
            if x >= scale:
                return f"{x / scale:g}{unit}"
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale * 10:
            return f"{x / scale:.3g}{unit}"
    return _fmt(v)


#: energy units for axes and hovers: (name, pJ per unit), largest first
_ENERGY_UNITS = (("J", 1e12), ("mJ", 1e9), ("µJ", 1e6), ("nJ", 1e3), ("pJ", 1.0))
#: per-unit scaling of hardware parameters in parallel coordinates
_PARAM_UNITS = (
    ("_bytes_per_s", (("TB/s", 1e12), ("GB/s", 1e9), ("MB/s", 1e6), ("B/s", 1.0))),
    ("_bytes", (("GiB", 2.0**30), ("MiB", 2.0**20), ("KiB", 2.0**10), ("B", 1.0))),
    ("_hz", (("GHz", 1e9), ("MHz", 1e6), ("Hz", 1.0))),
)
#: marker symbol per hardware family (the speedup plot tells them apart)
FAMILY_SYMBOLS = {"spatial": "circle", "fpga": "diamond", "gpu": "square"}


def energy_unit(values: Any) -> tuple[str, float]:
    """(unit, pJ per unit) that puts the median of ``values`` (pJ) in [1, 1000)."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    mid = float(np.median(v)) if len(v) else 1.0
    return next(((u, f) for u, f in _ENERGY_UNITS if mid >= f), _ENERGY_UNITS[-1])


def param_unit(column: str, values: Any) -> tuple[str, float]:
    """(unit, scale) for a hardware parameter column (``hw.dram_bandwidth_bytes_per_s``
    -> GB/s); ('', 1) when the name carries no known unit."""
    import numpy as np

    for suffix, units in _PARAM_UNITS:
        if column.endswith(suffix):
            v = np.asarray(values, dtype=float)
            v = v[np.isfinite(v) & (v > 0)]
            mid = float(np.median(v)) if len(v) else 1.0
            return next(((u, f) for u, f in units if mid >= f), units[-1])
    return "", 1.0


def distinct_colours(n: int) -> list[str]:
    """``n`` colours, all different (Plotly's Dark24 then Light24, then hues)."""
    import colorsys

    from plotly.colors import qualitative

    base = list(dict.fromkeys(qualitative.Dark24 + qualitative.Light24))
    out = base[:n]
    k = n - len(out)
    for i in range(k):  # beyond 48: evenly spaced hues
        r, g, b = colorsys.hsv_to_rgb(i / max(k, 1), 0.65, 0.8)
        out.append(f"rgb({int(r * 255)},{int(g * 255)},{int(b * 255)})")
    return out


def _short(name: str) -> str:
    for suf in _SUFFIXES:
        if name.endswith(suf):
            return name[: -len(suf)]
    return name


def pareto_mask(values: Any) -> Any:
    """Boolean mask of the rows of ``values`` (n x k, minimise all) that no
    other row dominates (<= in every column, < in one).

    Rows are visited in lexicographic order, so a row can only be dominated
    by an earlier one, and (domination being transitive) only the front
    found so far needs checking: O(n x front) instead of O(n^2).
    """
    import numpy as np

    v = np.asarray(values, dtype=float)
    n = len(v)
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    order = np.lexsort(v.T[::-1])
    front: list[int] = []
    for i in order:
        if front:
            f = v[front]
            if np.any(np.all(f <= v[i], axis=1) & np.any(f < v[i], axis=1)):
                continue
        front.append(int(i))
    keep[front] = True
    return keep


def choose_baseline(designs: Any, baseline: tuple[tuple[str, Any], ...]) -> str:
    """The ``hw_id`` of the baseline among complete designs."""
    if baseline:
        sel = designs
        for k, v in baseline:
            col = "design" if k == "design" else f"hw.{k}"
            if col not in sel.columns:
                raise DashboardError(
                    f"baseline parameter {k!r} is not a hardware parameter of this sweep"
                )
            sel = (
                sel[sel[col].astype(str) == str(v)]
                if k == "design"
                else sel[sel[col].astype(float) == float(v)]
                if isinstance(v, (int, float))
                else sel[sel[col].astype(str) == str(v)]
            )
        if len(sel) == 0:
            want = ", ".join(f"{k}={v}" for k, v in baseline)
            raise DashboardError(f"no design that ran every workload matches the baseline ({want})")
        return str(sel.iloc[0]["hw_id"])
    return str(designs.sort_values(["area_mm2", "hw_id"]).iloc[0]["hw_id"])


def flagged_rows(df: Any) -> Any:
    """Rows with a non-empty ``warning`` (all False without the column)."""
    if "warning" not in df:
        return df["status"] != df["status"]
    return df["warning"].fillna("").astype(str) != ""


def build_figures(
    df: Any, *, baseline: tuple[tuple[str, Any], ...] = (), title: str = "sweep"
) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """The dashboard's figures ``[(heading, plotly Figure)]`` and summary facts."""
    import numpy as np
    import plotly.graph_objects as go

    facts: dict[str, Any] = {
        "points": len(df),
        "ok": int((df["status"] == "ok").sum()),
        "errors": int((df["status"] == "error").sum()),
        "rejected": int((df["status"] == "rejected").sum()),
        # ok points whose result is flagged (e.g. a search cut by its
        # wall-clock safety net; results from before the column: none)
        "flagged": int(((df["status"] == "ok") & flagged_rows(df)).sum()),
    }
    ok = df[df["status"] == "ok"].copy()
    if ok.empty:
        first = df["error"].iloc[0] if len(df) else "no points"
        raise DashboardError(
            f"no successful points to draw ({facts['errors']} errors, {facts['rejected']} rejected; first: {first})"
        )
    ok["wl_key"] = _wl_key(ok)
    hw_cols = sorted(c for c in df.columns if c.startswith("hw."))
    varied = [c for c in hw_cols if ok[c].nunique(dropna=True) > 1]
    n_wl = ok["wl_key"].nunique()
    energy_cols = sorted(c for c in ok.columns if c.startswith("energy.") and c.endswith("_pj"))

    # --- designs aggregated over the workload suite (complete ones only)
    agg = {
        "latency_s": "sum",
        "energy_pj": "sum",
        "area_mm2": "first",
        "design": "first",
        "wl_key": "nunique",
        "macs": "sum",
    }
    if "family" in ok.columns:
        agg["family"] = "first"
    agg.update({c: "sum" for c in energy_cols})
    agg.update({c: "first" for c in hw_cols})
    designs = ok.groupby("hw_id", sort=False).agg(agg).reset_index()
    designs = designs[designs["wl_key"] == n_wl].reset_index(drop=True)
    # energies are shown in the unit that suits them (mJ, µJ, ...), not in pJ
    e_unit, e_scale = energy_unit(designs["energy_pj"])
    designs["energy_u"] = designs["energy_pj"] / e_scale
    if designs.empty:
        raise DashboardError("no design ran every workload instance; nothing to compare")
    lab_cols = varied or hw_cols
    designs["label"] = [
        f"{d} "
        + " ".join(
            f"{_short(c[3:])}={_si(v)}" for c, v in zip(lab_cols, vals, strict=True) if _present(v)
        )
        for d, *vals in zip(
            designs["design"].tolist(), *(designs[c].tolist() for c in lab_cols), strict=True
        )
    ]
    designs["label"] = designs["label"].str.strip()
    base_id = choose_baseline(designs, baseline)
    base = designs[designs["hw_id"] == base_id].iloc[0]
    facts["baseline"] = base["label"]
    facts["designs"] = len(designs)
    labels = dict(zip(designs["hw_id"], designs["label"], strict=True))

    def hover(frame: Any, extra: list[str]) -> list[str]:
        """Hover text per row: design, its parameters, then ``extra``
        templates (``{column}`` with dots as underscores), column-wise."""
        import re as _re

        parts = [[f"<b>{htmlmod.escape(str(d))}</b>" for d in frame["design"].tolist()]]
        for c in hw_cols:
            if c in frame.columns:
                parts.append(
                    [f"{c[3:]}: {_fmt(v)}" if _present(v) else "" for v in frame[c].tolist()]
                )
        for e in extra:
            names = _re.findall(r"\{(\w+)", e)
            cols = {
                n: frame[n.replace("_", ".", 1) if n not in frame.columns else n].tolist()
                for n in names
            }
            parts.append([e.format(**{n: cols[n][i] for n in names}) for i in range(len(frame))])
        return ["<br>".join(p for p in row if p) for row in zip(*parts, strict=True)]

    def points(
        frame: Any, x: Any, y: Any, name: str, extra: list[str], marker: dict[str, Any]
    ) -> Any:
        """A marker per row of ``frame`` at (``x``, ``y``), with its :func:`hover` text."""
        return go.Scatter(
            x=x,
            y=y,
            mode="markers",
            name=name,
            text=hover(frame, extra),
            hoverinfo="text",
            marker=marker,
        )

    figs: list[tuple[str, Any]] = []

    # scatter figures show at most MAX_SCATTER points (a seeded sample), so
    # a 100k-point sweep still gives a page a browser can open
    shown = ok if len(ok) <= MAX_SCATTER else ok.sample(MAX_SCATTER, random_state=0)
    note = (
        "" if len(shown) == len(ok) else f" (a random sample of {len(shown)} of {len(ok)} points)"
    )

    # 1. speedup and energy vs the baseline, per workload instance; colour =
    # workload, symbol = hardware family (a legend entry per family)
    b_rows = ok[ok["hw_id"] == base_id].set_index("wl_key")
    f1 = go.Figure()
    families = sorted(ok["family"].astype(str).unique()) if "family" in ok else []
    for wk, g in shown.groupby("wl_key", sort=True):
        if wk not in b_rows.index:
            continue
        b = b_rows.loc[wk]
        g = g.assign(
            speedup=float(b["latency_s"]) / g["latency_s"],
            rel_energy=g["energy_pj"] / float(b["energy_pj"]),
            energy_u=g["energy_pj"] / e_scale,
        )
        f1.add_trace(
            points(
                g,
                g["speedup"],
                g["rel_energy"],
                str(wk),
                [
                    "speedup {speedup:.3g}x",
                    "energy {rel_energy:.3g}x baseline",
                    "latency {latency_s:.3g} s",
                    "energy {energy_u:.3g} " + e_unit,
                    "area {area_mm2:.3g} mm2",
                ],
                {
                    "size": 8,
                    "opacity": 0.75,
                    "symbol": [
                        FAMILY_SYMBOLS.get(str(f), "x") for f in g.get("family", [""] * len(g))
                    ],
                },
            )
        )
    if len(families) > 1:
        for fam in families:  # legend of the symbols
            f1.add_trace(
                go.Scatter(
                    x=[None],
                    y=[None],
                    mode="markers",
                    name=f"{fam} design",
                    marker={"symbol": FAMILY_SYMBOLS.get(fam, "x"), "size": 9, "color": "grey"},
                    hoverinfo="skip",
                )
            )
    f1.add_vline(x=1, line_dash="dot", line_color="grey")
    f1.add_hline(y=1, line_dash="dot", line_color="grey")
    f1.update_layout(
        xaxis={"title": "speedup over baseline (x, higher is better)", "type": "log"},
        yaxis={"title": "energy relative to baseline (lower is better)", "type": "log"},
        legend_title="workload (colour), family (symbol)",
    )
    figs.append((f"Speedup and energy against the baseline: {base['label']}{note}", f1))

    # 2. Pareto front latency / energy / area over the suite. An FPGA design
    # has no silicon area (its budget is a device fraction, drawn in the FPGA
    # view), so only the designs with an area compete on this front.
    silicon = (
        designs[designs["family"].astype(str) != "fpga"].reset_index(drop=True)
        if "family" in designs.columns
        else designs
    )
    mask = pareto_mask(silicon[["latency_s", "energy_pj", "area_mm2"]].to_numpy())
    f2 = go.Figure()
    rest, front = silicon[~mask], silicon[mask].sort_values("latency_s")
    if len(rest) > MAX_SCATTER:  # every Pareto design is drawn; the others sampled
        rest = rest.sample(MAX_SCATTER, random_state=0)
    hx = [
        "suite latency {latency_s:.3g} s",
        "suite energy {energy_u:.3g} " + e_unit,
        "area {area_mm2:.3g} mm2",
    ]
    # the front is Pareto-optimal in three objectives: in this 2-D view its
    # members are not ordered along a curve, so they are drawn as markers
    # (colour = area), never joined by a line
    amin, amax = float(silicon["area_mm2"].min()), float(silicon["area_mm2"].max())
    common = {"colorscale": "Viridis", "cmin": amin, "cmax": amax}
    f2.add_trace(
        points(
            rest,
            rest["latency_s"],
            rest["energy_pj"] / e_scale,
            "dominated",
            hx,
            {"size": 6, "opacity": 0.45, "color": rest["area_mm2"], **common},
        )
    )
    f2.add_trace(
        points(
            front,
            front["latency_s"],
            front["energy_pj"] / e_scale,
            "Pareto-optimal (latency, energy, area)",
            hx,
            {
                "size": 11,
                "color": front["area_mm2"],
                "line": {"color": "crimson", "width": 2},
                "colorbar": {"title": "area (mm2)"},
                **common,
            },
        )
    )
    f2.add_trace(
        go.Scatter(
            x=[base["latency_s"]],
            y=[base["energy_pj"] / e_scale],
            mode="markers",
            name="baseline",
            marker={"symbol": "star", "size": 16, "color": "black"},
            hoverinfo="text",
            text=[f"baseline: {base['label']}"],
        )
    )
    f2.update_layout(
        xaxis={"title": f"latency over the {n_wl} workload instance(s) (s)", "type": "log"},
        yaxis={"title": f"energy over the suite ({e_unit})", "type": "log"},
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
    )
    figs.append(
        (
            f"Pareto front: latency vs energy vs area ({int(mask.sum())} of {len(silicon)} designs; colour = area)"
            + (
                f"; {len(designs) - len(silicon)} FPGA designs are in the FPGA view"
                if len(silicon) < len(designs)
                else ""
            ),
            f2,
        )
    )
    facts["pareto"] = int(mask.sum())

    # 3. energy breakdown by component: baseline + Pareto designs
    show = [base_id] + [h for h in front.sort_values("latency_s")["hw_id"] if h != base_id][:24]
    sub = designs.set_index("hw_id").loc[show]
    xl = [("baseline: " if h == base_id else "") + labels[h] for h in show]
    f3 = go.Figure()
    drawn = [c for c in energy_cols if np.any(sub[c].fillna(0.0).to_numpy() > 0)]
    for c, colour in zip(drawn, distinct_colours(len(drawn)), strict=True):
        vals = sub[c].fillna(0.0).to_numpy() / e_scale
        f3.add_trace(
            go.Bar(x=xl, y=vals, name=c[len("energy.") : -len("_pj")], marker_color=colour)
        )
    f3.update_layout(
        barmode="stack",
        yaxis={"title": f"energy over the suite ({e_unit})"},
        xaxis={"tickangle": -30},
        legend_title="component",
    )
    figs.append(("Energy breakdown by component (baseline and Pareto designs)", f3))

    # 4. roofline (per point: MACs per DRAM byte vs achieved MACs/s)
    rf = (
        shown[(shown["macs"] > 0) & (shown["dram_bytes"] > 0)].copy()
        if "dram_bytes" in shown
        else shown.iloc[0:0]
    )
    f4 = go.Figure()
    if len(rf):
        rf["intensity"] = rf["macs"] / rf["dram_bytes"]
        rf["achieved"] = rf["macs"] / rf["latency_s"]
        for wk, g in rf.groupby("wl_key", sort=True):
            f4.add_trace(
                points(
                    g,
                    g["intensity"],
                    g["achieved"],
                    str(wk),
                    [
                        "{intensity:.3g} MAC/DRAM byte",
                        "{achieved:.3g} MAC/s of peak {peak_macs_per_s:.3g}",
                        "DRAM bandwidth {dram_bw_bytes_per_s:.3g} B/s",
                    ],
                    {"size": 6, "opacity": 0.7},
                )
            )
        xs = np.logspace(
            math.log10(rf["intensity"].min() / 4), math.log10(rf["intensity"].max() * 4), 200
        )
        fastest = rf.loc[rf["peak_macs_per_s"].idxmax()]
        b_any = rf[rf["hw_id"] == base_id]
        roofs = [
            ("baseline roof", b_any.iloc[0] if len(b_any) else None, "black"),
            ("highest-peak design roof", fastest, "crimson"),
        ]
        for name, r, color in roofs:
            if r is None:
                continue
            ys = np.minimum(float(r["peak_macs_per_s"]), float(r["dram_bw_bytes_per_s"]) * xs)
            f4.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    name=f"{name}: {labels.get(r['hw_id'], r['design'])}",
                    line={"color": color, "width": 2},
                    hoverinfo="skip",
                )
            )
    f4.update_layout(
        xaxis={"title": "operational intensity (MACs per DRAM byte)", "type": "log"},
        yaxis={"title": "achieved MACs/s", "type": "log"},
        legend_title="workload / roof",
    )
    figs.append((f"Roofline (each point: one design on one workload instance){note}", f4))

    # 5. parallel coordinates, one per design family of the spec
    for dname, g in designs.groupby("design", sort=False):
        if len(g) > MAX_PARCOORDS:
            g = g.sample(MAX_PARCOORDS, random_state=0)
        dims = []
        for c in hw_cols:
            col = g[c]
            if col.isna().all() or col.nunique() < 2:
                continue
            if col.dtype == object or str(col.dtype).startswith(("string", "str")):
                cats = sorted(col.astype(str).unique())
                code = {v: i for i, v in enumerate(cats)}
                dims.append(
                    {
                        "label": c[3:],
                        "values": col.astype(str).map(code),
                        "tickvals": list(range(len(cats))),
                        "ticktext": cats,
                    }
                )
            else:
                unit, scale = param_unit(c, col)
                vals = col.astype(float) / scale
                name = f"{_short(c[3:])} ({unit})" if unit else c[3:]
                logv = vals.min() > 0 and vals.max() / vals.min() > 50
                dims.append(
                    {
                        "label": f"log10 {name}" if logv else name,
                        "values": np.log10(vals) if logv else vals,
                    }
                )
        dims.append(
            {"label": "log10 latency (s)", "values": np.log10(g["latency_s"].astype(float))}
        )
        dims.append(
            {
                "label": f"log10 energy ({e_unit})",
                "values": np.log10(g["energy_pj"].astype(float) / e_scale),
            }
        )
        if g["area_mm2"].nunique() > 1:
            dims.append({"label": "area (mm2)", "values": g["area_mm2"].astype(float)})
        edp = np.log10(g["latency_s"].astype(float) * g["energy_pj"].astype(float))
        f5 = go.Figure(
            go.Parcoords(
                dimensions=dims,
                line={
                    "color": edp,
                    "colorscale": "Viridis",
                    "showscale": True,
                    "colorbar": {"title": "log10 EDP"},
                },
            )
        )
        f5.update_layout(margin={"l": 70, "r": 30, "t": 90, "b": 40})
        figs.append(
            (
                f"Parallel coordinates of the swept parameters: {dname} ({len(g)} designs; colour = log10 energy-delay product)",
                f5,
            )
        )
    fpga = fpga_figure(ok, hw_cols)
    if fpga is not None:
        figs.append(fpga)
    return figs, facts


def render_html(
    figs: list[tuple[str, Any]],
    facts: dict[str, Any],
    title: str,
    errors: list[tuple[str, int]] | None = None,
    warnings: list[tuple[str, int]] | None = None,
) -> str:
    """The page: plotly.js inline, then each figure (no external resources);
    the most common errors and flagged results as ``(message, count)``."""
    from plotly.offline import get_plotlyjs

    parts = []
    for i, (heading, fig) in enumerate(figs):
        if not fig.layout.margin.t:
            fig.update_layout(margin={"l": 70, "r": 30, "t": 30, "b": 70})
        fig.update_layout(height=520, template="plotly_white")
        fig.update_xaxes(exponentformat="power")
        fig.update_yaxes(exponentformat="power")
        div = fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"fig{i + 1}",
            config={"displaylogo": False, "responsive": True},
        )
        parts.append(f"<section><h2>{htmlmod.escape(heading)}</h2>{div}</section>")
    flagged = f" ({facts['flagged']} flagged)" if facts.get("flagged") else ""
    summary = (
        f"{facts['points']} points: {facts['ok']} ok{flagged}, {facts['errors']} errors, {facts['rejected']} rejected by constraints; "
        f"{facts.get('designs', 0)} designs ran every workload; {facts.get('pareto', 0)} Pareto-optimal; baseline: {htmlmod.escape(str(facts.get('baseline', '')))}"
    )
    err_html = ""
    if facts.get("missing"):
        err_html += (
            "<p style='background:#fde2e1;border:1px solid #c0392b;padding:8px'>"
            f"<b>Incomplete sweep:</b> {htmlmod.escape(str(facts['missing']))}</p>"
        )
    if errors:
        items = "".join(f"<li>{n} x {htmlmod.escape(msg)}</li>" for msg, n in errors)
        err_html += f"<details><summary>most common errors and rejections</summary><ul>{items}</ul></details>"
    if warnings:
        items = "".join(f"<li>{n} x {htmlmod.escape(msg)}</li>" for msg, n in warnings)
        err_html += (
            "<details><summary>flagged results (the <code>warning</code> column)</summary>"
            f"<ul>{items}</ul></details>"
        )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>einsim: {htmlmod.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:16px 28px;color:#222}h1{font-size:22px}"
        "h2{font-size:16px;margin:22px 0 4px}section{border-top:1px solid #ddd}</style>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
        f"<h1>einsim sweep: {htmlmod.escape(title)}</h1><p>{summary}</p>{err_html}"
        + "".join(parts)
        + "</body></html>"
    )


def write_dashboard(
    out_dir: str | Path,
    out_file: str | Path,
    *,
    baseline: tuple[tuple[str, Any], ...] | None = None,
) -> Path:
    """Read a sweep directory and write its dashboard; returns the path."""
    from experiments.sweep.shards import warn
    from experiments.sweep.workdir import load_run

    run = load_run(out_dir)
    spec, df = run.spec, run.df
    missing = run.missing_message()
    if missing:
        warn(f"{missing}; the dashboard shows the others")
    figs, facts = build_figures(
        df, baseline=spec.baseline if baseline is None else baseline, title=spec.name
    )
    facts["missing"] = missing
    bad = df[df["status"] != "ok"]
    errors = (
        [(str(k), int(v)) for k, v in bad["error"].value_counts().head(10).items()]
        if len(bad)
        else []
    )
    warned = df[(df["status"] == "ok") & flagged_rows(df)]
    warnings = (
        [(str(k), int(v)) for k, v in warned["warning"].value_counts().head(10).items()]
        if len(warned)
        else []
    )
    page = render_html(figs, facts, spec.name, errors, warnings)
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out

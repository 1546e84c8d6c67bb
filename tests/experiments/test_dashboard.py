"""The sweep dashboard: figures computed right, and the page renders in
headless Chromium with no console errors and no network requests."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

from experiments.sweep.dashboard import (
    _ENERGY_UNITS,
    FAMILY_SYMBOLS,
    build_figures,
    distinct_colours,
    energy_unit,
    param_unit,
    pareto_mask,
    render_html,
    write_dashboard,
)
from experiments.sweep.engine import run_sweep
from experiments.sweep.spec import parse_spec
from experiments.sweep.workdir import load_sweep

SPEC = textwrap.dedent(
    """\
    name: dash-test
    mapper: greedy-fast
    hardware:
      - name: arr
        base: tpu_like
        vary:
          rows: [8, 16, 32, 64]
          cols: [8, 32]
          global_buffer_bytes: [65536, 1048576]
          dataflow: [ws, os]
        constraints: {max_area_mm2: 1.5}
      - name: fp
        base: u280
        vary:
          precision: [8, 16]
          reuse_factor: [16, 32]
    workloads:
      - name: gemm
        params: {M: 128, N: 128, K: [64, 256]}
      - name: attention-3pass
        params: {B: 1, H: 1, E: 32, F: 32, M: 64, P: 64}
    dashboard:
      baseline: {design: arr, rows: 16, cols: 8, global_buffer_bytes: 65536, dataflow: ws}
    """
)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dash")
    (out / "spec.yaml").write_text(SPEC)
    run_sweep(parse_spec(SPEC, "spec.yaml"), out, workers=2, progress=False)
    return out


def test_pareto_mask_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    for _ in range(60):
        n = int(rng.integers(1, 50))
        v = rng.integers(0, 6, size=(n, 3)).astype(float)  # many ties and duplicates
        expect = [
            not any(np.all(v[j] <= v[i]) and np.any(v[j] < v[i]) for j in range(n))
            for i in range(n)
        ]
        assert list(pareto_mask(v)) == expect


def test_figures_against_the_table(sweep_dir: Path) -> None:
    spec, df = load_sweep(sweep_dir)
    figs, facts = build_figures(df, baseline=spec.baseline, title=spec.name)
    ok = df[df["status"] == "ok"]
    assert facts["rejected"] == int((df["status"] == "rejected").sum()) > 0
    assert facts["baseline"] == "arr cols=8 dataflow=ws global_buffer=64Ki rows=16"
    # figure 1: speedup of every design on gemm K=64 against the baseline's latency
    f1 = figs[0][1]
    tr = next(t for t in f1.data if t.name == "gemm(K=64,M=128,N=128)")
    g = ok[(ok["workload"] == "gemm") & (ok["wl.K"] == 64)]
    b = g[
        (g["design"] == "arr")
        & (g["hw.rows"] == 16)
        & (g["hw.cols"] == 8)
        & (g["hw.global_buffer_bytes"] == 65536)
        & (g["hw.dataflow"] == "ws")
    ]
    assert len(b) == 1
    np.testing.assert_allclose(
        sorted(tr.x), sorted(b["latency_s"].iloc[0] / g["latency_s"]), rtol=1e-12
    )
    np.testing.assert_allclose(
        sorted(tr.y), sorted(g["energy_pj"] / b["energy_pj"].iloc[0]), rtol=1e-12
    )
    # figure 2: the Pareto trace is the brute-force front of suite totals of
    # the designs with a silicon area (the FPGA's are in the FPGA view)
    assert figs[1][0].endswith("; 4 FPGA designs are in the FPGA view")
    suite = (
        ok[ok["family"] != "fpga"]
        .groupby("hw_id")
        .agg(
            lat=("latency_s", "sum"),
            en=("energy_pj", "sum"),
            area=("area_mm2", "first"),
            n=("point_id", "size"),
        )
    )
    suite = suite[suite["n"] == 3]
    v = suite[["lat", "en", "area"]].to_numpy()
    front = [
        i
        for i in range(len(v))
        if not any(np.all(v[j] <= v[i]) and np.any(v[j] < v[i]) for j in range(len(v)))
    ]
    pareto = figs[1][1].data[1]
    assert sorted(pareto.x) == pytest.approx(sorted(v[front, 0]), rel=1e-12)
    # figure 3: stacked components add up to the suite energy of each design
    # (shown in the unit the axis names)
    f3 = figs[2][1]
    unit = f3.layout.yaxis.title.text.split("(")[-1].rstrip(")")
    scale = dict(_ENERGY_UNITS)[unit]
    totals = np.sum([np.asarray(t.y, dtype=float) for t in f3.data], axis=0) * scale
    base_suite = ok[ok["hw_id"] == b["hw_id"].iloc[0]]["energy_pj"].sum()
    assert totals[0] == pytest.approx(base_suite, rel=1e-9)  # first bar: the baseline
    assert len(totals) == 1 + len([i for i in front if suite.index[i] != b["hw_id"].iloc[0]])
    # one parallel-coordinates view per design
    assert [h for h, _ in figs if h.startswith("Parallel")] == [
        "Parallel coordinates of the swept parameters: arr ("
        + f"{(suite.index.isin(ok[ok['design'] == 'arr']['hw_id'])).sum()} designs; colour = log10 energy-delay product)",
        "Parallel coordinates of the swept parameters: fp (4 designs; colour = log10 energy-delay product)",
    ]
    # the FPGA view: every hls4ml point at (100 x device fraction, latency),
    # coloured by its power, the fraction being its most used resource's
    heading, f7 = figs[-1]
    fp = ok[ok["design"] == "fp"]
    assert heading.startswith("FPGA designs as hls4ml builds them") and "(4 designs;" in heading
    xs = np.concatenate([np.asarray(t.x, dtype=float) for t in f7.data])
    ys = np.concatenate([np.asarray(t.y, dtype=float) for t in f7.data])
    cs = np.concatenate([np.asarray(t.marker.color, dtype=float) for t in f7.data])
    fractions = fp[[c for c in fp.columns if c.startswith("fpga.") and c.endswith("_fraction")]]
    np.testing.assert_allclose(sorted(xs), sorted(100 * fractions.max(axis=1)), rtol=1e-12)
    np.testing.assert_allclose(sorted(ys), sorted(fp["latency_s"]), rtol=1e-12)
    np.testing.assert_allclose(sorted(cs), sorted(fp["power_w"]), rtol=1e-12)
    assert (fp["power_w"] > 0).all() and (
        (fp["device_fraction"] > 0) & (fp["device_fraction"] <= 1)
    ).all()


def test_units_colours_and_symbols(sweep_dir: Path) -> None:
    """What a reader needs to tell things apart: distinct colours per energy
    component, a symbol per family, no line through a 3-objective front,
    bandwidths in GB/s and energies in a unit that puts them in [1, 1000)."""
    spec, df = load_sweep(sweep_dir)
    figs, _ = build_figures(df, baseline=spec.baseline, title=spec.name)
    f1, f2, f3 = (f for _, f in figs[:3])
    colours = [t.marker.color for t in f3.data]
    assert len(colours) >= 5 and len(set(colours)) == len(colours)
    assert len(set(distinct_colours(60))) == 60
    # speedup: spatial and FPGA points have different symbols, and a legend for them
    ok = df[df["status"] == "ok"]
    sym = {s for t in f1.data if t.x[0] is not None for s in t.marker.symbol}
    assert sym == {FAMILY_SYMBOLS[f] for f in ok["family"].unique()} == {"circle", "diamond"}
    assert {t.name for t in f1.data if t.x[0] is None} == {"spatial design", "fpga design"}
    # the Pareto front: markers only
    assert all(t.mode == "markers" for t in f2.data)
    # energies: the unit is the one whose scale puts the median suite energy in [1, 1000)
    unit = f2.layout.yaxis.title.text.split("(")[-1].rstrip(")")
    assert unit in ("mJ", "µJ", "nJ") and unit != "pJ"
    g = ok.groupby("hw_id")["energy_pj"]
    suite = g.sum()[g.size() == 3]  # designs that ran all three workload instances
    assert 1 <= float(np.median(suite)) / dict(_ENERGY_UNITS)[unit] < 1000
    assert energy_unit([2.5e10]) == ("mJ", 1e9) and energy_unit([3e6]) == ("µJ", 1e6)
    assert energy_unit([5.0]) == ("pJ", 1.0)
    # bandwidths in GB/s, buffer sizes in KiB/MiB
    assert param_unit("hw.dram_bandwidth_bytes_per_s", [1e11, 4e11]) == ("GB/s", 1e9)
    assert param_unit("hw.global_buffer_bytes", [65536, 1048576]) == ("KiB", 1024.0)
    assert param_unit("hw.rows", [8, 16]) == ("", 1.0)
    par = next(f for h, f in figs if h.startswith("Parallel") and "arr" in h)
    labels = [d.label for d in par.data[0].dimensions]
    assert "global_buffer (KiB)" in labels and "log10 energy (" + unit + ")" in labels


def test_flagged_results_are_counted_and_listed(sweep_dir: Path) -> None:
    """An ok point with a ``warning`` (a search cut by its wall-clock net)
    is counted in the summary and listed with its message."""
    spec, df = load_sweep(sweep_dir)
    assert build_figures(df, baseline=spec.baseline, title=spec.name)[1]["flagged"] == 0
    df = df.copy()
    i = df.index[df["status"] == "ok"][0]
    df.loc[i, "warning"] = "Einsum C: the feasible search was cut by its wall-clock safety net"
    figs, facts = build_figures(df, baseline=spec.baseline, title=spec.name)
    assert facts["flagged"] == 1
    page = render_html(figs, facts, spec.name, [], [(df.loc[i, "warning"], 1)])
    assert f"{facts['ok']} ok (1 flagged)" in page
    assert "1 x Einsum C: the feasible search was cut" in page


def test_html_is_self_contained(sweep_dir: Path) -> None:
    out = write_dashboard(sweep_dir, sweep_dir / "d.html")
    page = out.read_text()
    assert len(page) > 3_000_000  # plotly.js is inlined
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=", page)
    assert page.count("Plotly.newPlot(") == 7


@pytest.mark.slow
@pytest.mark.browser
def test_dashboard_renders_in_headless_chromium(sweep_dir: Path) -> None:
    from experiments.sweep.browser import find_chromium, inspect_page

    if not find_chromium():
        # .ci/run installs Chromium and sets EINSIM_REQUIRE_BROWSER=1, so CI
        # always runs this test; elsewhere a missing system browser is not a failure
        # of einsim.
        if os.environ.get("EINSIM_REQUIRE_BROWSER") == "1":
            pytest.fail("headless Chromium is needed: apt-get install -y chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    out = write_dashboard(sweep_dir, sweep_dir / "dashboard.html")
    r = inspect_page(out)
    assert r.plotly_loaded
    assert r.console_errors == []
    assert r.network_requests == []
    assert [p["id"] for p in r.plots] == [f"fig{i}" for i in range(1, 8)]
    for p in r.plots:
        assert p["traces"] >= 1, p
        # drawn: SVG trace groups, or WebGL canvases for parallel coordinates
        assert p["svgTraces"] >= 1, p
        if p["id"] in ("fig5", "fig6"):
            assert p["canvases"] >= 1, p

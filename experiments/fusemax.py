"""Reproduction of the FuseMax study (Nayak et al., MICRO 2024).

Attention for BERT, TrXL, T5 and XLM at 1K..1M tokens (batch 64) on three
designs, and the full transformer layer on FLAT and FuseMax:

* ``unfused`` -- the 3-pass cascade, every Einsum alone, on ``flat_cloud``;
* ``flat``    -- the 3-pass cascade fused FLAT-style, on ``flat_cloud``;
* ``fusemax`` -- the 1-pass cascade with FuseMax's binding, on ``fusemax_cloud``.

Published means over the 24 (model, length) points (docs/references.md, from the
FuseMax paper): attention 6.7x faster than FLAT at 0.79 of its energy;
end-to-end layer 5.3x at 0.83.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import hw_models
from sim.metrics import Metrics
from sim.schedulers import schedule_cascade
from workloads import library
from workloads.ir import Cascade

#: FuseMax paper, Section 6 / docs/references.md
MODELS = ("bert", "trxl", "t5", "xlm")
SEQ_LENGTHS = (1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20)
BATCH = 64
#: published arithmetic means (FuseMax, MICRO 2024; docs/references.md)
PUBLISHED = {
    ("attention", "speedup"): 6.7,
    ("attention", "energy"): 0.79,
    ("layer", "speedup"): 5.3,
    ("layer", "energy"): 0.83,
}
COLUMNS = (
    "model",
    "seq",
    "design",
    "scope",
    "latency_s",
    "energy_pj",
    "dram_bytes",
    "util_2d",
    "util_1d",
)


@dataclass(frozen=True)
class Row:
    model: str
    seq: int
    design: str
    scope: str
    latency_s: float
    energy_pj: float
    dram_bytes: float
    util_2d: float
    util_1d: float


def model_dims(model: str) -> dict[str, int]:
    """Heads, head dim, model dim and FFN dim from the workload library."""
    return library.load_models()[model]


def _util(arch: hw_models.Architecture, m: Metrics, kind: str) -> float:
    units = [u.name for u in arch.compute if u.kind == kind]
    return m.utilization.get(units[0], 0.0) if units else 0.0


def _row(model: str, seq: int, design: str, scope: str, arch, m: Metrics) -> Row:
    dram = sum(m.traffic_bytes.get(arch.levels[0].name, {}).values())
    return Row(
        model,
        seq,
        design,
        scope,
        m.latency_s,
        m.energy_pj,
        dram,
        _util(arch, m, "array2d"),
        _util(arch, m, "array1d"),
    )


def _combine(arch, parts: list[Metrics]) -> Metrics:
    """Run cascades one after another: add times, energies and traffic."""
    cycles = sum(p.cycles for p in parts)
    busy: dict[str, float] = {}
    breakdown: dict[str, float] = {}
    traffic: dict[str, dict[str, float]] = {}
    for p in parts:
        for u, f in p.utilization.items():
            busy[u] = busy.get(u, 0.0) + f * p.cycles
        for k, v in p.energy_breakdown_pj.items():
            breakdown[k] = breakdown.get(k, 0.0) + v
        for lv, d in p.traffic_bytes.items():
            for t, v in d.items():
                traffic.setdefault(lv, {})
                traffic[lv][t] = traffic[lv].get(t, 0.0) + v
    return Metrics(
        cycles=cycles,
        latency_s=cycles / arch.clock_hz,
        energy_pj=sum(breakdown.values()),
        energy_breakdown_pj=breakdown,
        traffic_bytes=traffic,
        utilization={u: b / cycles for u, b in busy.items()} if cycles else {},
        model="analytical-cascade",
    )


def attention_cascades(model: str, seq: int) -> tuple[Cascade, Cascade]:
    d = model_dims(model)
    common = dict(B=BATCH, H=d["heads"], E=d["head_dim"], F=d["head_dim"], M=seq, P=seq)
    three = library.build("attention-3pass", **common)
    one = library.build("attention-1pass", **common, M0=256)
    return three, one


#: the attention core inside the library's transformer layer (3-pass cascade)
ATTENTION_EINSUMS = ("QK", "MX", "SN", "SD", "A", "AV")


def linear_cascade(model: str, seq: int) -> Cascade:
    """The transformer layer without its attention core (projections, FFN,
    norms, residuals): the Einsums both designs run the same way."""
    layer = library.build("transformer-layer", model=model, batch=BATCH, seq=seq)
    return sub_cascade(layer, [e.name for e in layer.einsums if e.name not in ATTENTION_EINSUMS])


def sub_cascade(cascade: Cascade, names: list[str]) -> Cascade:
    """The cascade of the named Einsums; tensors they read but do not produce
    become its inputs."""
    keep = [e for e in cascade.einsums if e.name in set(names)]
    used = {a.tensor for e in keep for a in e.accesses}
    tensors = tuple(t for t in cascade.tensors if t.name in used)
    return Cascade(name=f"{cascade.name}-part", tensors=tensors, einsums=tuple(keep))


def run(
    out_dir: Path | None = None,
    models: tuple[str, ...] = MODELS,
    seqs: tuple[int, ...] = SEQ_LENGTHS,
    progress: Callable[[int], None] | None = None,
) -> list[Row]:
    flat_arch = hw_models.load("flat_cloud")
    fm_arch = hw_models.load("fusemax_cloud")
    rows: list[Row] = []
    for model in models:
        for seq in seqs:
            three, one = attention_cascades(model, seq)
            _, m_unf = schedule_cascade(three, flat_arch, "unfused")
            _, m_flat = schedule_cascade(three, flat_arch, "flat")
            _, m_fm = schedule_cascade(one, fm_arch, "fusemax")
            rows.append(_row(model, seq, "unfused", "attention", flat_arch, m_unf))
            rows.append(_row(model, seq, "flat", "attention", flat_arch, m_flat))
            rows.append(_row(model, seq, "fusemax", "attention", fm_arch, m_fm))
            lin = linear_cascade(model, seq)
            _, lin_flat = schedule_cascade(lin, flat_arch, "unfused")
            _, lin_fm = schedule_cascade(lin, fm_arch, "unfused")
            rows.append(
                _row(
                    model, seq, "flat", "layer", flat_arch, _combine(flat_arch, [lin_flat, m_flat])
                )
            )
            rows.append(
                _row(model, seq, "fusemax", "layer", fm_arch, _combine(fm_arch, [lin_fm, m_fm]))
            )
            if progress:
                progress(1)
    if out_dir is not None:
        write_csv(rows, Path(out_dir) / "fusemax.csv")
    return rows


def write_csv(rows: list[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([getattr(r, c) for c in COLUMNS])


def ratios(rows: list[Row]) -> dict[tuple[str, str], list[tuple[str, int, float]]]:
    """FuseMax over FLAT per (model, seq): speedup and energy ratio, by scope."""
    by = {(r.model, r.seq, r.design, r.scope): r for r in rows}
    out: dict[tuple[str, str], list[tuple[str, int, float]]] = {}
    for (model, seq, design, scope), r in by.items():
        if design != "fusemax":
            continue
        flat = by.get((model, seq, "flat", scope))
        if flat is None:
            continue
        out.setdefault((scope, "speedup"), []).append((model, seq, flat.latency_s / r.latency_s))
        out.setdefault((scope, "energy"), []).append((model, seq, r.energy_pj / flat.energy_pj))
    return out


def summary(rows: list[Row]) -> dict[tuple[str, str], float]:
    """Arithmetic means of the ratios (the paper's averaging)."""
    return {k: sum(v for _, _, v in vals) / len(vals) for k, vals in ratios(rows).items() if vals}


def write_html(rows: list[Row], path: Path) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rat = ratios(rows)
    fig = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=(
            "Attention speedup of FuseMax over FLAT",
            "Attention energy of FuseMax / FLAT",
            "Layer speedup of FuseMax over FLAT",
            "Layer energy of FuseMax / FLAT",
        ),
    )
    pos = {
        ("attention", "speedup"): (1, 1),
        ("attention", "energy"): (1, 2),
        ("layer", "speedup"): (2, 1),
        ("layer", "energy"): (2, 2),
    }
    for key, (r, c) in pos.items():
        vals = rat.get(key, [])
        for model in sorted({m for m, _, _ in vals}):
            pts = sorted((s, v) for m, s, v in vals if m == model)
            fig.add_trace(
                go.Bar(
                    x=[_seq_label(s) for s, _ in pts],
                    y=[v for _, v in pts],
                    name=f"{model} ({key[0]} {key[1]})",
                    legendgroup=model,
                ),
                row=r,
                col=c,
            )
        mean = sum(v for _, _, v in vals) / len(vals) if vals else math.nan
        fig.add_hline(
            y=PUBLISHED[key],
            line_dash="dash",
            line_color="black",
            annotation_text=f"published mean {PUBLISHED[key]}",
            row=r,
            col=c,
        )
        fig.add_hline(
            y=mean,
            line_dash="dot",
            line_color="red",
            annotation_text=f"einsim mean {mean:.2f}",
            annotation_position="bottom right",
            row=r,
            col=c,
        )
    fig.update_layout(
        title="FuseMax vs FLAT (einsim reproduction; dashed: published means)",
        barmode="group",
        height=900,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)


def _seq_label(s: int) -> str:
    return f"{s >> 20}M" if s >= 1 << 20 else f"{s >> 10}K"

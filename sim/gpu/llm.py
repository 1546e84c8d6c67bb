"""LLM inference figures of a whole-model cascade, its text report and Plotly timeline.

A cascade built by the ``llm`` workload carries its description on the
embedding Einsum (``llm_model``, ``llm_phase``, ``llm_batch``,
``llm_tokens``, ``llm_kv_len``, ``llm_layers``). From the plan's simulated
forward pass:

* prefill: time to first token (TTFT) = the prompt's forward pass, prompt
  tokens/s = batch x prompt / TTFT;
* decode: time per output token (TPOT) = one decode step's forward pass,
  tokens/s = batch x new tokens / TPOT;
* energy per token = energy per forward / tokens processed;
* memory: weights (every cascade input but the token ids, the rotary tables
  and the KV cache), the KV cache (decode: the cache read plus the appended
  entries; prefill: the keys and values the prompt writes), against the
  card's HBM capacity; a model that does not fit is told the tensor-parallel
  degree (a power of two) whose per-GPU share would fit. Activations are not
  counted (they are small next to weights and cache at inference).
"""

from __future__ import annotations

import math
from typing import Any

from sim.gpu.regions import Region, find_regions
from sim.gpu.spec import GpuSpec
from workloads.ir import Cascade

#: bytes of one token id (int32) in place of the one-hot TOK tensor
TOKEN_ID_BYTES = 4


def llm_meta(cascade: Cascade) -> dict[str, str] | None:
    for e in cascade.einsums:
        a = e.attr
        if "llm_model" in a:
            return {k[4:]: v for k, v in a.items() if k.startswith("llm_")}
    return None


def memory(cascade: Cascade, regions: tuple[Region, ...] | None = None) -> dict[str, float]:
    """Weight, KV-cache and token-id bytes of a cascade (see the module docstring)."""
    cache_in: set[str] = set()
    cache_written = 0.0
    for r in regions if regions is not None else find_regions(cascade):
        if r.kind != "attention":
            continue
        for t in (*r.dims["keys"], *r.dims["values"]):
            if t in cascade.inputs:
                cache_in.add(t)
            else:
                cache_written += cascade.tensor(t).bytes
    tables = {"TOK", "COS", "SIN"}
    weights = sum(
        cascade.tensor(t).bytes for t in cascade.inputs if t not in cache_in and t not in tables
    )
    kv = sum(cascade.tensor(t).bytes for t in cache_in) + cache_written
    tok = cascade.tensor("TOK").shape if "TOK" in cascade.inputs else (0, 0)
    return {
        "weights_bytes": float(weights),
        "kv_cache_bytes": float(kv),
        "token_id_bytes": float(math.prod(tok[:2]) * TOKEN_ID_BYTES),
    }


def tp_degree(total_bytes: float, capacity_bytes: float) -> int:
    """Smallest power-of-two tensor-parallel degree whose share fits one card."""
    tp = 1
    while total_bytes / tp > capacity_bytes and tp < 1 << 16:
        tp *= 2
    return tp


def llm_figures(
    cascade: Cascade,
    spec: GpuSpec,
    forward_s: float,
    energy_pj: float,
    layers: dict[str, dict[str, float]],
    regions: tuple[Region, ...] | None = None,
) -> dict[str, Any] | None:
    """The LLM report's figures, or None for a cascade that is not a whole model."""
    meta = llm_meta(cascade)
    if meta is None:
        return None
    phase = meta.get("phase", "prefill")
    batch, tokens = int(meta.get("batch", 1)), int(meta.get("tokens", 1))
    n_tok = batch * tokens
    mem = memory(cascade, regions)
    total = mem["weights_bytes"] + mem["kv_cache_bytes"]
    cap = float(spec.hbm_bytes)
    fits = total <= cap
    tp = tp_degree(total, cap)
    layer_spans = {k: v["span_s"] for k, v in layers.items() if k not in ("embed", "head", "")}
    out: dict[str, Any] = {
        "model": meta.get("model", ""),
        "phase": phase,
        "batch": batch,
        "tokens": tokens,
        "kv_len": int(meta.get("kv_len", tokens)),
        "layers": int(meta.get("layers", len(layer_spans))),
        "forward_s": forward_s,
        "ttft_s" if phase == "prefill" else "tpot_s": forward_s,
        "tokens_per_s": n_tok / forward_s if forward_s > 0 else 0.0,
        "energy_per_token_j": energy_pj * 1e-12 / n_tok,
        "layer_s": (sum(layer_spans.values()) / len(layer_spans)) if layer_spans else 0.0,
        "layer_spans_s": layer_spans,
        "embed_s": layers.get("embed", {}).get("span_s", 0.0),
        "head_s": layers.get("head", {}).get("span_s", 0.0),
        **mem,
        "hbm_capacity_bytes": cap,
        "fits": fits,
        "tp_needed": tp,
    }
    if not fits:
        out["message"] = (
            f"{out['model']} does not fit in one {spec.name}: weights "
            f"{mem['weights_bytes'] / 1e9:.1f} GB + KV cache {mem['kv_cache_bytes'] / 1e9:.1f} GB "
            f"= {total / 1e9:.1f} GB > {cap / 1e9:.1f} GB of HBM; it needs tensor parallelism "
            f"over {tp} GPUs (TP={tp}, {total / tp / 1e9:.1f} GB each). The times above are "
            "for one GPU holding everything (not possible) and leave out TP communication."
        )
    return out


# ------------------------------------------------------------------ report


def _ms(s: float) -> str:
    return f"{s * 1e3:.3f} ms"


def _fmt_num(x: float) -> str:
    for unit, f in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= f:
            return f"{x / f:.3g}{unit}"
    return f"{x:.3g}"


def format_report(metrics: Any, max_kernels: int = 40) -> str:
    """The text report of ``einsim eval`` for a GPU plan (LLM figures when present)."""
    n = metrics.notes
    lines = [
        f"plan       {n.get('plan')} ({n.get('timing')} timing), {n.get('n_kernels')} kernels",
        f"time       {_ms(metrics.latency_s)} per call (CUDA events, median); "
        f"{_ms(n['forward_s'])} from idle; {_ms(n['loop_s'])} back to back",
        f"host       {_ms(n['host_s'])} of launches; GPU busy {_ms(n['gpu_busy_s'])}",
        f"energy     {metrics.energy_pj * 1e-9:.3f} mJ per call",
    ]
    if "ilp" in n:
        il = n["ilp"]
        lines.append(
            f"ilp        {il['speedup_vs_library']:.2f}x faster than the library plan "
            f"({_ms(il['library_s'])}); {il['groups']} kernels chosen from {il['options']} options, "
            f"status {il['status']}"
        )
    llm = n.get("llm")
    if llm:
        lines += _llm_lines(llm)
    lines.append("")
    lines.append(f"{'kernel':34s} {'kind':10s} {'layer':>5s} {'time':>10s} {'HBM bytes':>10s} "
                 f"{'FLOPs':>9s} {'bound':>7s}")  # fmt: skip
    rows = n["kernels"]
    shown = rows if len(rows) <= max_kernels else _top(rows, max_kernels)
    for r in shown:
        lines.append(
            f"{r['name'][:34]:34s} {r['kind']:10s} {r['layer']:>5s} {r['gpu_s'] * 1e6:8.1f}us "
            f"{_fmt_num(r['hbm_bytes']):>10s} {_fmt_num(r['flops']):>9s} {r['bound']:>7s}"
        )
    if len(rows) > len(shown):
        lines.append(f"... {len(rows) - len(shown)} more kernels (the longest are shown)")
    return "\n".join(lines)


def _top(rows: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    keep = sorted(range(len(rows)), key=lambda i: -rows[i]["gpu_s"])[:k]
    return [rows[i] for i in sorted(keep)]


def _llm_lines(llm: dict[str, Any]) -> list[str]:
    out = [
        f"model      {llm['model']} {llm['phase']}: batch {llm['batch']}, "
        + (f"prompt {llm['tokens']}" if llm["phase"] == "prefill" else f"KV cache {llm['kv_len']}")
        + f", {llm['layers']} layers",
    ]
    key = "ttft_s" if llm["phase"] == "prefill" else "tpot_s"
    name = "TTFT" if llm["phase"] == "prefill" else "TPOT"
    out.append(
        f"{name:10s} {_ms(llm[key])}  ({llm['tokens_per_s']:.1f} tokens/s, "
        f"{llm['energy_per_token_j'] * 1e3:.3f} mJ per token)"
    )
    out.append(
        f"per layer  {_ms(llm['layer_s'])}; embedding {_ms(llm['embed_s'])}, "
        f"final norm + LM head {_ms(llm['head_s'])}"
    )
    out.append(
        f"memory     weights {llm['weights_bytes'] / 1e9:.2f} GB + KV cache "
        f"{llm['kv_cache_bytes'] / 1e9:.2f} GB of {llm['hbm_capacity_bytes'] / 1e9:.1f} GB HBM"
        + ("" if llm["fits"] else "  (does NOT fit)")
    )
    if not llm["fits"]:
        out.append(f"warning    {llm['message']}")
    return out


def timeline_figure(metrics: Any, max_kernels: int = 5000) -> Any:
    """A Plotly figure of the forward pass: GPU kernels and host launches over time."""
    import plotly.graph_objects as go

    rows = metrics.notes["kernels"][:max_kernels]
    kinds = sorted({r["kind"] for r in rows})
    fig = go.Figure()
    for kind in kinds:
        sel = [r for r in rows if r["kind"] == kind]
        fig.add_trace(
            go.Bar(
                y=["GPU"] * len(sel),
                x=[(r["end_s"] - r["start_s"]) * 1e6 for r in sel],
                base=[r["start_s"] * 1e6 for r in sel],
                orientation="h",
                name=kind,
                text=[r["name"] for r in sel],
                hovertemplate="%{text}<br>start %{base:.1f} us<br>%{x:.1f} us<extra>"
                + kind
                + "</extra>",
            )
        )
    fig.add_trace(
        go.Bar(
            y=["host"] * len(rows),
            x=[r["host_s"] * 1e6 for r in rows],
            base=[(r["enqueue_s"] - r["host_s"]) * 1e6 for r in rows],
            orientation="h",
            name="host launch",
            marker_color="lightgrey",
            text=[r["name"] for r in rows],
            hovertemplate="%{text}: host %{x:.1f} us<extra></extra>",
        )
    )
    fig.update_layout(
        barmode="overlay",
        title=f"{metrics.notes.get('plan')} plan: {len(rows)} kernels",
        xaxis_title="time (us)",
        height=320,
    )
    return fig


def write_timeline(metrics: Any, path: str) -> None:
    """Write :func:`timeline_figure` as a self-contained HTML file."""
    timeline_figure(metrics).write_html(path, include_plotlyjs="cdn")

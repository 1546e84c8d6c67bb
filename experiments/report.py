"""Text and JSON reports of an :class:`sim.api.Evaluation`, shared by
``einsim eval``, ``map`` and ``schedule``: the same design prints the same
text whichever command evaluated it.

Numbers are printed with SI prefixes (``6.88 ms``, ``456 uJ``, ``12.6 MB``);
``--json`` keeps exact SI values (seconds, joules, bytes).
"""

from __future__ import annotations

import math
from typing import Any

_PREFIXES = (
    (1e-15, "f"),
    (1e-12, "p"),
    (1e-9, "n"),
    (1e-6, "u"),
    (1e-3, "m"),
    (1.0, ""),
    (1e3, "k"),
    (1e6, "M"),
    (1e9, "G"),
    (1e12, "T"),
    (1e15, "P"),
)


def fmt_si(value: float | None, unit: str) -> str:
    """``4.2e-05, "s"`` -> ``'42 us'``; zero, inf and NaN print as they are."""
    if value is None:
        return f"- {unit}"
    v = float(value)
    if v == 0 or not math.isfinite(v):
        return f"{v:g} {unit}"
    for scale, prefix in _PREFIXES:
        if abs(v) < scale * 1000:
            return f"{v / scale:.4g} {prefix}{unit}"
    return f"{v:.4g} {unit}"


def fmt_count(value: float) -> str:
    """A plain count with an SI prefix (``67.1 M``)."""
    return fmt_si(value, "").rstrip()


#: objective -> (factor from the model's SI-ish unit to SI, unit)
OBJECTIVE_UNITS: dict[str, tuple[float, str]] = {
    "latency": (1.0, "s"),
    "energy": (1e-12, "J"),
    "edp": (1e-12, "J*s"),
    "dram_traffic": (1.0, "B"),
}


def fmt_objective(objective: str, value: float) -> str:
    scale, unit = OBJECTIVE_UNITS[objective]
    return fmt_si(value * scale, unit)


def jsonable(x: Any) -> Any:
    """Plain JSON types; inf/NaN as strings/null (JSON has neither)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def metrics_json(metrics: Any) -> dict[str, Any]:
    return jsonable(metrics.to_dict())


def dram_bytes(metrics: Any) -> float:
    return float(sum(next(iter(metrics.traffic_bytes.values()), {}).values()))


def metrics_lines(m: Any, *, indent: str = "") -> list[str]:
    """The metrics of one design (or one Einsum) as aligned lines."""
    out = [
        f"{indent}latency    {fmt_si(m.latency_s, 's')}  ({fmt_count(m.cycles)} cycles, "
        f"compute {fmt_count(m.compute_cycles)})",
        f"{indent}energy     {fmt_si(m.energy_pj * 1e-12, 'J')}  "
        f"(EDP {fmt_si(m.energy_pj * 1e-12 * m.latency_s, 'J*s')})",
    ]
    if m.macs:
        out.append(f"{indent}MACs       {fmt_count(m.macs)}  (padded {fmt_count(m.padded_macs)})")
    for u, f in m.utilization.items():
        out.append(f"{indent}util       {u}: {f:.1%}")
    for lv, d in m.traffic_bytes.items():
        per = ", ".join(f"{t} {fmt_si(b, 'B')}" for t, b in d.items())
        tc = m.transfer_cycles.get(lv)
        tail = f"; transfer {fmt_count(tc)} cycles" if tc else ""
        out.append(
            f"{indent}traffic    {lv}: {fmt_si(sum(d.values()), 'B')}"
            + (f" ({per})" if per else "")
            + tail
        )
    for k, v in m.energy_breakdown_pj.items():
        out.append(f"{indent}energy     {k}: {fmt_si(v * 1e-12, 'J')}")
    return out


def fpga_lines(notes: dict[str, Any]) -> list[str]:
    """Resources against the device, and power, of an FPGA design (hls4ml model)."""
    f = notes.get("fpga")
    if not isinstance(f, dict) or "used" not in f:
        return []
    parts = []
    for r, used in f["used"].items():
        avail = f["available"].get(r)
        frac = f["fractions"].get(r)
        parts.append(
            f"{r} {used:,.0f}"
            + (f" / {avail:,.0f} ({frac:.1%})" if avail and frac is not None else "")
        )
    lines = [
        f"resources  {', '.join(parts)}",
        f"device     {f.get('device_fraction', 0.0):.1%} of {f.get('device', 'the device')} "
        f"(limited by {f.get('limiting_resource', '-')}); II {f.get('ii_cycles')} cycles, "
        f"reuse factor {f.get('reuse_factor')}, {f.get('weight_bits')}-bit weights",
    ]
    if "power_w" in f:
        lines.append(
            f"power      {fmt_si(f['power_w'], 'W')} (static {fmt_si(f['static_power_w'], 'W')}, "
            f"dynamic {fmt_si(f['dynamic_power_w'], 'W')})"
        )
    return lines


def gpu_lines(metrics: Any, max_kernels: int = 40) -> list[str]:
    """A GPU plan's kernels (and LLM figures): :func:`sim.gpu.llm.format_report`."""
    rows = (metrics.notes or {}).get("kernels")
    if not rows or not isinstance(rows[0], dict) or "plan" not in metrics.notes:
        return []
    from sim.gpu.llm import format_report

    return format_report(metrics, max_kernels=max_kernels).splitlines()


def header(ev: Any, workload: str) -> str:
    how = [f"{ev.model} model"]
    if ev.mapper:
        how.append(f"mapper {ev.mapper}")
    elif ev.mappings:
        how.append("given mappings")
    how.append(f"objective {ev.objective}")
    return f"workload   {workload}  on {ev.arch.name} ({', '.join(how)})"


def summary_lines(ev: Any, workload: str) -> list[str]:
    """The whole-workload report ``eval`` prints (and ``map``/``schedule`` end with)."""
    lines = [
        header(ev, workload),
        *metrics_lines(ev.metrics),
        *fpga_lines(ev.metrics.notes or {}),
        *gpu_lines(ev.metrics),
    ]
    if len(ev.parts) > 1:
        for name, p in ev.parts.items():
            unit = (p.notes or {}).get("unit", "")
            lines.append(
                f"einsum     {name}: {fmt_si(p.latency_s, 's')}, {fmt_si(p.energy_pj * 1e-12, 'J')}"
                + (f" on {unit}" if unit else "")
            )
        lines.append(
            f"total      {len(ev.parts)} Einsums: {fmt_si(ev.metrics.latency_s, 's')}, "
            f"{fmt_si(ev.metrics.energy_pj * 1e-12, 'J')}, "
            f"DRAM {fmt_si(dram_bytes(ev.metrics), 'B')}"
        )
    for w in ev.warnings:
        lines.append(f"warning    {w}")
    return lines


def evaluation_json(ev: Any) -> dict[str, Any]:
    """Everything of an evaluation in exact SI-based units (s, pJ, bytes)."""
    from mappers.mapping import mapping_to_dict

    searches = {}
    for name, r in ev.searches.items():
        searches[name] = {
            "objective_value": r.objective_value,
            "bound": r.bound,
            "gap": r.gap,
            "status": r.status,
            "evaluations": r.evaluations,
            "solve_time_s": r.solve_time_s,
            "notes": {k: v for k, v in r.notes.items() if isinstance(v, int | float | str | bool)},
        }
    out: dict[str, Any] = {
        "arch": ev.arch.name,
        "model": ev.model,
        "mapper": ev.mapper,
        "objective": ev.objective,
        "objective_value": ev.objective_value,
        "metrics": ev.metrics.to_dict(),
        "einsums": {
            name: {
                "metrics": p.to_dict(),
                "mapping": mapping_to_dict(ev.mappings[name]) if name in ev.mappings else None,
                "search": searches.get(name),
            }
            for name, p in ev.parts.items()
        },
        "warnings": list(ev.warnings),
    }
    if ev.schedule is not None:
        from dataclasses import asdict

        out["schedule"] = asdict(ev.schedule)
    return jsonable(out)

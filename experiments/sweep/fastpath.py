"""Batched evaluation of a chunk of points with the vectorised analytical
model (``sim.analytical.model.evaluate_batch``).

The per-point path (:func:`experiments.sweep.evaluate.evaluate_point`) calls
``experiments.pipeline.evaluate_workload``, whose cost is dominated by numpy
overhead on tiny arrays. Here the points of a chunk that share a workload
instance and an architecture *structure* (level and unit names, holds,
multicast, ...; everything that is not a number the model reads as an
array) are costed in one ``evaluate_batch`` call: each point's mapping comes
from the same mapper the pipeline uses, and each point's hardware numbers
(capacities, bandwidths, energies, fan-outs, clock, PEs, rates) are passed
as per-point overrides, read from its own derived ``Architecture``.

Only one-Einsum workloads with the analytical model and the greedy mappers
take this path. ``greedy-fast`` gives one mapping per point; ``greedy``
gives a few candidate mappings that it would score with the analytical
model one by one: here all candidates of all points are scored in the same
batch and each point keeps its first minimum, as the mapper does. The
candidates depend only on the architecture's structure and capacities, so
points that differ only in bandwidth, clock or energies share them. Every
other point (cascades, other mappers, the GPU family with its own model),
and any point whose best candidate the batch marks invalid, goes through
the per-point path, so failing points get the same error message.
``tests/test_sweep_fastpath.py`` checks that both paths give the same rows.
"""

from __future__ import annotations

import math
from typing import Any

from experiments.sweep.evaluate import (
    _base_row,
    _deadline,
    _describe,
    alarm_scope,
    build_cascade,
    checked_arch,
    evaluate_point,
    mapping_summary,
)
from experiments.sweep.sampling import Point

#: mappers whose candidate mappings do not depend on the cost model:
#: ``greedy-fast`` has one, ``greedy`` scores a few with the analytical model
BATCH_MAPPERS = ("greedy-fast", "greedy")


def arch_signature(arch: Any) -> tuple:
    """What ``sim.analytical.compile.compile_structure`` reads from an
    architecture other than the numbers ``hardware_arrays`` can override."""
    from sim.analytical.compile import arch_structure_key

    return (arch.family, *arch_structure_key(arch))


def mapping_key(arch: Any) -> tuple:
    """What a mapper without an evaluator (``greedy-fast``) reads from an
    architecture: names, holds, capacities, fan-outs, double buffering and
    the units' kinds, dataflows, PEs and operator classes -- not bandwidths,
    clocks or energies. Points that differ only in those share a mapping
    (the equality test against the per-point path guards this)."""
    levels = tuple(
        (
            lv.name,
            lv.holds,
            lv.capacity_bytes,
            lv.fanout_x,
            lv.fanout_y,
            lv.double_buffered,
            lv.instances,
            lv.word_bits,
        )
        for lv in arch.levels
    )
    units = tuple(
        (
            cu.name,
            cu.kind,
            getattr(cu, "fed_by", ""),
            cu.dataflow,
            cu.pes,
            cu.rows,
            cu.cols,
            tuple(sorted(c for c, v in cu.ops_per_cycle.items() if v > 0)),
        )
        for cu in arch.compute
    )
    return (arch.family, levels, units)


_MAPPINGS: dict[tuple, Any] = {}


def hw_overrides(archs: list[Any], st: Any) -> dict[str, Any]:
    """Per-point hardware arrays for ``evaluate_batch``."""
    import numpy as np

    from sim.analytical.compile import LEVEL_FIELDS, UNIT_FIELDS

    a0 = archs[0]
    ov: dict[str, Any] = {}
    for k, lv in enumerate(a0.levels):
        for f in LEVEL_FIELDS:
            vals = []
            for a in archs:
                v = getattr(a.levels[k], f)
                vals.append(math.inf if v is None else v)
            ov[f"{lv.name}.{f}"] = np.asarray(vals, dtype=float)
    ov["clock_hz"] = np.asarray([a.clock_hz for a in archs], dtype=float)
    ov["static_power_w"] = np.asarray([a.static_power_w for a in archs], dtype=float)
    for j, cu in enumerate(a0.compute):
        for f in UNIT_FIELDS:
            ov[f"{cu.name}.{f}"] = np.asarray(
                [getattr(a.compute[j], f) for a in archs], dtype=float
            )
        if cu.name == st.unit:
            for c in st.classes:
                ov[f"{cu.name}.ops_per_cycle.{c}"] = np.asarray(
                    [a.compute[j].ops_per_cycle.get(c, 0.0) for a in archs], dtype=float
                )
                ov[f"{cu.name}.energy_pj_per_op.{c}"] = np.asarray(
                    [a.compute[j].energy_pj_per_op.get(c, 0.0) for a in archs], dtype=float
                )
    return ov


def _batch_columns(res: dict[str, Any], st: Any) -> dict[str, list[Any]]:
    """The batch result arrays ``_rows_from_batch`` reads, as Python lists
    (one ``tolist`` per array instead of a numpy scalar per point and
    column; ``float`` of an element is the same number either way)."""
    keys = ["latency_s", "energy_pj", "cycles", "compute_cycles", "macs", "padded_macs"]
    keys += [f"energy_pj.{lv}" for lv in st.levels]
    keys += [f"energy_pj.{st.unit}.{c}" for c in st.classes]
    keys += ["energy_pj.static", "utilization"]
    keys += [f"traffic_bytes.{lv}.{t}" for lv in st.levels for t in st.tensors]
    keys += [f"transfer_cycles.{lv}" for lv in st.levels]
    return {k: res[k].tolist() for k in keys}


def _rows_from_batch(res: dict[str, Any], st: Any, j: int) -> dict[str, Any]:
    """Row ``j`` of a batch result (``res``: arrays, or the lists of
    ``_batch_columns``), with the same columns and values as
    ``evaluate.metrics_row`` gives for the per-point ``Metrics``."""
    lat = float(res["latency_s"][j])
    en = float(res["energy_pj"][j])
    row: dict[str, Any] = {
        "latency_s": lat,
        "cycles": float(res["cycles"][j]),
        "energy_pj": en,
        "edp_pj_s": en * lat,
        "compute_cycles": float(res["compute_cycles"][j]),
        "macs": float(res["macs"][j]),
        "padded_macs": float(res["padded_macs"][j]),
    }
    comps: dict[str, float] = {lv: float(res[f"energy_pj.{lv}"][j]) for lv in st.levels}
    for c in st.classes:
        comps[f"{st.unit}.{c}"] = float(res[f"energy_pj.{st.unit}.{c}"][j])
    comps["static"] = float(res["energy_pj.static"][j])
    for comp in sorted(comps):
        row[f"energy.{comp}_pj"] = comps[comp]
    for lv in st.levels:
        total = 0.0
        for t in st.tensors:
            b = float(res[f"traffic_bytes.{lv}.{t}"][j])
            if b != 0.0:
                total += b
        row[f"traffic.{lv}_bytes"] = total
    for lv in st.levels:
        row[f"transfer.{lv}_cycles"] = float(res[f"transfer_cycles.{lv}"][j])
    util = dict.fromkeys(st.unit_names, 0.0)
    util[st.unit] = float(res["utilization"][j])
    for u in sorted(util):
        row[f"util.{u}"] = util[u]
    return row


def _candidates(mapper: str, objective: str, e: Any, arch: Any) -> list[Any]:
    """The mappings the mapper would score, in the order it scores them.

    ``greedy-fast`` returns one mapping. ``greedy`` builds a few variants and
    keeps the one its evaluator scores lowest (``min(variants, key=...)``);
    a recording evaluator collects them in that order, so that the batch can
    score them all at once and pick the first minimum, as ``min`` does.
    """
    from experiments.pipeline import MAPPERS

    if mapper == "greedy-fast":
        return [MAPPERS[mapper](e, arch, objective, None)]
    seen: list[Any] = []

    def record(m: Any) -> float:
        seen.append(m)
        return 0.0

    first = MAPPERS[mapper](e, arch, objective, record)
    return seen or [first]


def _objective(res: dict[str, Any], st: Any, objective: str) -> Any:
    """``experiments.pipeline.objective_value`` over a batch result."""
    import numpy as np

    from experiments.pipeline import canonical_objective

    objective = canonical_objective(objective)
    if objective == "edp":
        v = res["energy_pj"] * res["latency_s"]
    elif objective == "latency":
        v = np.asarray(res["latency_s"], dtype=float)
    elif objective == "energy":
        v = np.asarray(res["energy_pj"], dtype=float)
    elif objective == "dram_traffic":  # bytes at the outermost level
        v = sum(res[f"traffic_bytes.{st.levels[0]}.{t}"] for t in st.tensors)
    else:
        raise ValueError(f"no batched form of objective {objective!r}")
    return np.where(res["valid"], v, np.inf)


def evaluate_chunk_batched(points: list[Point]) -> list[dict[str, Any]]:
    """Rows for a chunk, in order; batched where possible (see module doc)."""
    with alarm_scope():  # one SIGALRM handler for the chunk's deadlines
        return _evaluate_chunk_batched(points)


def _evaluate_chunk_batched(points: list[Point]) -> list[dict[str, Any]]:
    import numpy as np

    from experiments.pipeline import FAMILY_EVALUATORS, MAPPERS, einsums_of
    from mappers.mapping import mapping_to_dict
    from sim.analytical.compile import STRUCTURES
    from sim.analytical.model import evaluate_batch

    rows: list[dict[str, Any] | None] = [None] * len(points)
    groups: dict[tuple, list[tuple[int, Any, list[Any], dict[str, Any], Any]]] = {}
    for i, p in enumerate(points):
        if p.model != "analytical" or p.mapper not in BATCH_MAPPERS or p.mapper not in MAPPERS:
            rows[i] = evaluate_point(p)
            continue
        row = _base_row(p)
        try:
            with _deadline(p.timeout_s):
                arch = checked_arch(p, row)
                if arch is None:
                    rows[i] = row
                    continue
                cascade = build_cascade(p.workload, p.wl)
                einsums = einsums_of(cascade)
                if len(einsums) != 1 or arch.family in FAMILY_EVALUATORS:
                    # cascades, and families with their own model (GPU)
                    rows[i] = evaluate_point(p)
                    continue
                e = einsums[0]
                mkey = (p.workload, p.wl, p.mapper, p.objective, mapping_key(arch))
                cands = _MAPPINGS.get(mkey)
                if cands is None:
                    if len(_MAPPINGS) > 65536:
                        _MAPPINGS.clear()
                    cands = _MAPPINGS[mkey] = _candidates(p.mapper, p.objective, e, arch)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - a failing point is data
            row["status"] = "error"
            row["error"] = _describe(exc)
            rows[i] = row
            continue
        key = (p.workload, p.wl, p.objective, arch_signature(arch), cands[0].unit)
        groups.setdefault(key, []).append((i, arch, cands, row, e))

    as_dict: dict[int, tuple[Any, Any]] = {}  # id(mapping) -> (mapping, its dict form)
    for (_w, _wl, objective, _sig, _u), items in groups.items():
        idx = [it[0] for it in items]
        e = items[0][4]
        counts = [len(it[2]) for it in items]
        maps = [m for it in items for m in it[2]]
        try:
            st = STRUCTURES.get(e, items[0][1], maps[0])
            per_point = hw_overrides([it[1] for it in items], st)
            ov = {k: np.repeat(v, counts) for k, v in per_point.items()}
            res = evaluate_batch(e, items[0][1], maps, hw_overrides=ov)
            score = _objective(res, st, objective)
        except Exception:  # noqa: BLE001 - fall back point by point
            for i in idx:
                rows[i] = evaluate_point(points[i])
            continue
        valid = res["valid"]
        try:
            cols = _batch_columns(res, st)
        except Exception:  # noqa: BLE001 - read the arrays point by point
            cols = res
        start = 0
        for (i, arch, cands, row, _e), n in zip(items, counts, strict=True):
            j = start + int(np.argmin(score[start : start + n]))  # first minimum, like min()
            chosen = cands[j - start]
            start += n
            if not bool(valid[j]):
                rows[i] = evaluate_point(points[i])  # same error message as the slow path
                continue
            row.update(_rows_from_batch(cols, st, j))
            row["dram_bytes"] = row.get(f"traffic.{st.levels[0]}_bytes", math.nan)
            hit = as_dict.get(id(chosen))
            if hit is None or hit[0] is not chosen:  # one mapping_to_dict per mapping
                hit = as_dict[id(chosen)] = (chosen, mapping_to_dict(chosen))
            row.update(mapping_summary(row, 1, hit[1], arch))
            rows[i] = row
    return rows  # type: ignore[return-value]

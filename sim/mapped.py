"""Map an Einsum on many designs and cost the mappings with the analytical
model, in as few numpy passes as possible.

This is the only way ``sim.api`` costs mappings with the analytical model,
for one design (``einsim eval``) or ten thousand (a sweep chunk):

1. every design gets its candidate mappings: the given mapping, the
   candidates of a candidate mapper (greedy), or the winner of a search
   mapper (ILP, random, exhaustive, which score with the scalar model);
2. the candidates of all designs that share a compiled structure are costed
   in one :func:`sim.analytical.core.evaluate_arrays` call, each design with
   its own hardware numbers;
3. each design keeps its first minimum of the objective among the valid
   candidates (as ``min`` over the candidates would), which is validated and
   turned into :class:`~sim.metrics.Metrics` by the one builder,
   :func:`sim.analytical.model.metrics_from_arrays`.

So a design gets bit-for-bit the same numbers whether it is evaluated alone
or in a batch, by any command.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from hw_models.arch import Architecture
from mappers import registry as mapper_registry
from mappers.mapping import Mapping, MappingError, mapping_to_dict, validate
from mappers.objectives import objective_values
from sim.analytical.compile import (
    LEVEL_FIELDS,
    STRUCTURES,
    UNIT_FIELDS,
    Hardware,
    arch_structure_key,
    hardware_arrays,
    mapping_arrays,
    stack_per_tensor,
    structure_key,
)
from sim.analytical.core import evaluate_arrays
from sim.analytical.model import ArrayRows, evaluate_batch, metrics_from_arrays
from sim.analytical.model import evaluate as evaluate_scalar
from sim.metrics import Metrics
from workloads.errors import EinsimError
from workloads.ir import Einsum
from workloads.memo import BoundedCache


@dataclass(frozen=True)
class Mapped:
    """One Einsum on one design: its mapping, cost and (search mappers) the search."""

    mapping: Mapping
    metrics: Metrics
    search: Any = None


def mapping_key(arch: Architecture) -> tuple:
    """What a candidate mapper reads from an architecture: names, holds,
    capacities (of each memory too), fan-outs, double buffering and the units' kinds, dataflows,
    PEs and operator classes -- not bandwidths, clocks or energies. Designs
    that differ only in those share their candidates."""
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
            tuple((m.name, m.serves, m.capacity_bytes, m.double_buffered) for m in lv.memories),
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


#: (id(einsum), mapper, objective, unit, mapping_key) -> (einsum, candidate mappings)
_CANDIDATES: BoundedCache[tuple] = BoundedCache(65536, lru=True)


def _candidates(
    einsum: Einsum, arch: Architecture, mapper: str, objective: str, unit: str | None
) -> list[Mapping]:
    info = mapper_registry.get(mapper)
    # keyed by the Einsum's identity (hashing a frozen Einsum walks it all);
    # the entry keeps the Einsum, so the id cannot be reused while it lives
    key = (id(einsum), mapper, objective, unit or "", mapping_key(arch))
    hit = _CANDIDATES.get_or_make(
        key, lambda: (einsum, info.candidates(einsum, arch, unit, objective))
    )
    if hit[0] is not einsum:  # pragma: no cover - stale id
        hit = _CANDIDATES.put(key, (einsum, info.candidates(einsum, arch, unit, objective)))
    return hit[1]


def _search(
    einsum: Einsum, arch: Architecture, mapper: str, objective: str, options: dict[str, Any]
) -> Any:
    info = mapper_registry.get(mapper)
    kw = {k: options[k] for k in info.options if options.get(k) is not None}
    return info.search(
        einsum,
        arch,
        objective=objective,
        evaluate=lambda m: evaluate_scalar(einsum, arch, m),
        evaluate_batch=lambda ms: evaluate_batch(einsum, arch, ms),
        **kw,
    )


def _hardware(st: Any, archs: list[Architecture], counts: list[int]) -> Hardware:
    """One :class:`Hardware` whose rows are the designs' numbers, design ``k``
    repeated ``counts[k]`` times (once per candidate). The numbers are read
    from each design's own levels and units (the fields
    :func:`hardware_arrays` reads), passed as its per-point overrides."""
    a0 = archs[0]
    if len(archs) == 1:
        hw = hardware_arrays(st, a0)
    else:
        ov: dict[str, Any] = {}
        for k, lv in enumerate(a0.levels):
            for f in LEVEL_FIELDS:
                vals = [getattr(a.levels[k], f) for a in archs]
                ov[f"{lv.name}.{f}"] = np.asarray(
                    [math.inf if v is None else v for v in vals], dtype=float
                )
        ov["clock_hz"] = np.asarray([a.clock_hz for a in archs], dtype=float)
        ov["static_power_w"] = np.asarray([a.static_power_w for a in archs], dtype=float)
        for j, cu in enumerate(a0.compute):
            for f in UNIT_FIELDS:
                ov[f"{cu.name}.{f}"] = np.asarray([getattr(a.compute[j], f) for a in archs], float)
            if cu.name == st.unit:
                for c in st.classes:
                    ov[f"{cu.name}.ops_per_cycle.{c}"] = np.asarray(
                        [a.compute[j].ops_per_cycle.get(c, 0.0) for a in archs], dtype=float
                    )
                    ov[f"{cu.name}.energy_pj_per_op.{c}"] = np.asarray(
                        [a.compute[j].energy_pj_per_op.get(c, 0.0) for a in archs], dtype=float
                    )
        hw = hardware_arrays(st, a0, ov)
        # each design's own per-tensor memories and networks (the overrides
        # are level figures)
        if any(lv.memories or lv.network_energy_pj_per_word for a in archs for lv in a.levels):
            own = [hardware_arrays(st, a) for a in archs]
            for f, v in stack_per_tensor(st, own).items():
                setattr(hw, f, v)
            hw.net = np.concatenate([h.net for h in own], axis=0)
    n = sum(counts)
    reps = np.asarray(counts)
    out: dict[str, Any] = {}
    for f in fields(Hardware):
        v = getattr(hw, f.name)
        if v is None:
            out[f.name] = None
        elif isinstance(v, dict):
            out[f.name] = {c: _rows(x, len(archs), reps, n) for c, x in v.items()}
        else:
            out[f.name] = _rows(v, len(archs), reps, n)
    return Hardware(**out)


def _rows(x: Any, n_designs: int, reps: np.ndarray, n: int) -> np.ndarray:
    """``x`` (one value for all designs, or one row per design) as one row per candidate."""
    a = np.asarray(x, dtype=float)
    if a.ndim == 0 or a.shape[0] != n_designs or n_designs == 1:
        if a.ndim >= 1 and a.shape[0] == 1 and n > 1:
            return np.repeat(a, n, axis=0)
        return a
    return np.repeat(a, reps, axis=0)


def _cost(
    einsum: Einsum,
    archs: list[Architecture],
    cands: list[list[Mapping]],
    objective: str,
) -> list[tuple[Mapping, Metrics] | EinsimError]:
    """First minimum of ``objective`` per design over its candidates
    (all designs share ``archs[0]``'s structure and the candidates' structure)."""
    if len({structure_key(m) for m in cands[0]}) > 1:
        return [_cost_mixed(einsum, archs[0], cands[0], objective)]
    st = STRUCTURES.get(einsum, archs[0], cands[0][0])
    counts = [len(c) for c in cands]
    flat = [m for c in cands for m in c]
    tf, sf, pos = mapping_arrays(st, flat)
    hw = _hardware(st, archs, counts)
    res = evaluate_arrays(st, hw, tf, sf, pos, n_total=len(flat))
    byte_w = st.bits / 8.0
    dram = ((res["reads"] + res["writes"] + 2 * res["updates"])[:, 0, :] * byte_w).sum(axis=1)
    score = objective_values(
        objective, latency_s=res["latency_s"], energy_pj=res["energy_pj"], dram_bytes=dram
    )
    score = np.where(res["valid"], score, np.inf)
    rows = ArrayRows(res)
    as_dict: dict[int, tuple[Mapping, dict[str, Any]]] = {}
    out: list[tuple[Mapping, Metrics] | EinsimError] = []
    start = 0
    for arch, n, cand in zip(archs, counts, cands, strict=True):
        j = start + int(np.argmin(score[start : start + n]))  # first minimum, like min()
        chosen = cand[j - start]
        start += n
        if not np.isfinite(score[j]):
            try:  # every candidate is invalid: the validator says why
                validate(chosen, einsum, arch)
                raise MappingError(
                    f"Einsum {einsum.name}: no valid mapping among the {n} candidates on {arch.name}"
                )
            except EinsimError as exc:
                out.append(exc)
                continue
        hit = as_dict.get(id(chosen))
        if hit is None or hit[0] is not chosen:  # one mapping_to_dict per mapping
            hit = as_dict[id(chosen)] = (chosen, mapping_to_dict(chosen))
        out.append((chosen, metrics_from_arrays(st, arch, rows, j, chosen, hit[1])))
    return out


def _cost_mixed(
    einsum: Einsum, arch: Architecture, cands: list[Mapping], objective: str
) -> tuple[Mapping, Metrics] | EinsimError:
    """One design whose candidates differ in structure: each costed on its own,
    the first minimum kept."""
    best: tuple[float, Mapping, Metrics] | None = None
    first_error: EinsimError | None = None
    for m in cands:
        r = _cost(einsum, [arch], [[m]], objective)[0]
        if isinstance(r, EinsimError):
            first_error = first_error or r
            continue
        v = float(
            objective_values(
                objective,
                latency_s=r[1].latency_s,
                energy_pj=r[1].energy_pj,
                dram_bytes=sum(next(iter(r[1].traffic_bytes.values()), {}).values()),
            )
        )
        if best is None or v < best[0]:
            best = (v, r[0], r[1])
    if best is None:
        return first_error or MappingError(f"Einsum {einsum.name}: no candidate mapping")
    return best[1], best[2]


def map_designs(
    einsum: Einsum,
    archs: list[Architecture],
    *,
    mapper: str,
    objective: str,
    unit: str | None = None,
    mapping: Mapping | None = None,
    options: dict[str, Any] | None = None,
) -> list[Mapped | EinsimError]:
    """Map ``einsum`` on every design and cost it; an error per design that fails."""
    options = options or {}
    info = mapper_registry.get(mapper) if mapping is None else None
    cands: list[list[Mapping] | EinsimError] = []
    searches: list[Any] = []
    for arch in archs:
        try:
            if mapping is not None:
                validate(mapping, einsum, arch)
                cands.append([mapping])
                searches.append(None)
            elif info is not None and info.candidates is not None:
                cands.append(_candidates(einsum, arch, mapper, objective, unit))
                searches.append(None)
            else:
                res = _search(einsum, arch, mapper, objective, options)
                cands.append([res.mapping])
                searches.append(res)
        except EinsimError as exc:
            cands.append(exc)
            searches.append(None)
    # batch the designs that share a compiled structure
    groups: dict[tuple, list[int]] = {}
    for k, c in enumerate(cands):
        if isinstance(c, EinsimError):
            continue
        skeys = {structure_key(m) for m in c}
        if len(skeys) > 1:  # candidates of several structures: cost this design alone
            key = ("alone", k)
        else:
            key = (arch_structure_key(archs[k]), skeys.pop())
        groups.setdefault(key, []).append(k)
    out: list[Mapped | EinsimError | None] = [
        c if isinstance(c, EinsimError) else None for c in cands
    ]
    for idx in groups.values():
        costed = _cost(einsum, [archs[k] for k in idx], [cands[k] for k in idx], objective)  # type: ignore[misc]
        for k, r in zip(idx, costed, strict=True):
            out[k] = r if isinstance(r, EinsimError) else Mapped(r[0], r[1], searches[k])
    return out  # type: ignore[return-value]

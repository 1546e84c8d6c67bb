"""Discrete-event simulation of a mapped Einsum or cascade: the public API.

``simulate(einsum, arch, mapping)`` and ``simulate_cascade(...)`` return the
same :class:`~sim.metrics.Metrics` as the analytical model, with
``model="des"``. The event engine is in :mod:`sim.des_engine`, the tile
structure of a mapping in :mod:`sim.des_nest`.

Steady state. A long loop nest repeats one pattern: the steps are grouped in
*periods* (one iteration of a loop of the nest) and the engine records when
each period's last tile is computed. The simulator runs a prefix of ``N``
periods (and drains it); once the last three period durations agree, the
rest is extrapolated: ``T = T_prefix + (periods - N) * d``, never below what
the remaining bytes need on each channel and the remaining steps need on the
compute unit (transfers at boundaries of outer loops the prefix did not
reach). Traffic is counted exactly for the whole nest, not extrapolated. What
was done is reported in ``Metrics.notes["steady_state"]``; ``full_sim=True``
simulates every tile.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping as MappingABC
from typing import Any

from hw_models.arch import Architecture
from mappers.mapping import Mapping
from sim.des_engine import Engine
from sim.des_nest import Buffer, DeadlockError, Nest, SimTimeLimitError, SimulationError, build_nest
from sim.metrics import Metrics, TensorTraffic
from workloads.ir import Einsum

__all__ = [
    "DeadlockError",
    "SimTimeLimitError",
    "SimulationError",
    "simulate",
    "simulate_cascade",
    "simulate_nests",
]

#: nests with at most this many steps are always simulated in full
FULL_SIM_STEPS = 4096
#: most steps a steady-state prefix may simulate before giving up on steadiness
MAX_PREFIX_STEPS = 200_000
#: relative tolerance on equal period durations
STEADY_RTOL = 1e-6


# ---------------------------------------------------------------------------
# exact traffic of a whole nest (the same rule the engine follows tile by tile)
# ---------------------------------------------------------------------------


def _first_visits(b: Buffer, steps: int, full: int) -> int:
    n = b.tiles(steps)
    if not b.revisit_loops:
        return n
    if steps == full:
        return n // math.prod(lp.factor for lp in b.revisit_loops)
    return b.first_visits(steps)


def buffer_transfers(b: Buffer, steps: int, full: int) -> tuple[int, int]:
    """(tile fetches from the parent, tile write-backs to the parent) over ``steps``."""
    n = b.tiles(steps)
    if not b.is_output:
        return n, 0
    return n - _first_visits(b, steps, full), n


def nest_traffic(nest: Nest, steps: int | None = None) -> dict[tuple[int, str], tuple[float, float]]:
    """(level, tensor) -> (bytes fetched from the parent, bytes written back)."""
    s = nest.steps if steps is None else steps
    out = {}
    for b in nest.buffers:
        f, w = buffer_transfers(b, s, nest.steps)
        out[(b.level, b.tensor)] = (f * b.transfer_bytes, w * b.transfer_bytes)
    return out


# ---------------------------------------------------------------------------
# steady state
# ---------------------------------------------------------------------------


def _choose_period(nest: Nest, max_period_steps: int) -> int:
    """Steps of one iteration of the outermost loop that is short enough."""
    for lp in nest.loops:
        if lp.inner_steps <= max_period_steps and nest.steps // lp.inner_steps >= 2:
            return lp.inner_steps
    return 0


def _steady(bounds: list[float], k: int = 3) -> float | None:
    if len(bounds) < k + 1:
        return None
    d = [bounds[i + 1] - bounds[i] for i in range(len(bounds) - k - 1, len(bounds) - 1)]
    ref = d[-1]
    if ref <= 0:
        return None
    if all(abs(x - ref) <= STEADY_RTOL * ref for x in d):
        return ref
    return None


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------


def _channel_bw(arch: Architecture) -> tuple[list[float], list[float]]:
    rd, wr = [], []
    for lv in arch.levels:
        inst = max(1, lv.instances)
        rd.append(lv.read_bw_bytes_per_cycle * inst)
        wr.append(lv.write_bw_bytes_per_cycle * inst)
    return rd, wr


def _metrics(
    arch: Architecture,
    nests: list[Nest],
    cycles: float,
    unit_busy: dict[str, float],
    notes: dict[str, Any],
    mappings: dict[str, Mapping] | None,
) -> Metrics:
    names = [lv.name for lv in arch.levels]
    traffic: dict[str, dict[str, float]] = {n: {} for n in names}
    acc: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    xfer_bytes_rd = [0.0] * len(names)
    xfer_bytes_wr = [0.0] * len(names)
    for nest in nests:
        for b in nest.buffers:
            f, w = buffer_transfers(b, nest.steps, nest.steps)
            wbits = b.transfer_bytes * 8 / max(b.transfer_words, 1e-30)
            words = b.transfer_words
            p, c = names[b.parent], names[b.level]
            moved = (f + w) * b.transfer_bytes
            for lvl in (p, c):
                traffic[lvl][b.tensor] = traffic[lvl].get(b.tensor, 0.0) + moved
            ap = acc[p].setdefault(b.tensor, [0.0, 0.0, 0.0, 0.0])
            ac = acc[c].setdefault(b.tensor, [0.0, 0.0, 0.0, 0.0])
            # parent: reads for fetches, writes (updates when partial) for write-backs
            ap[0] += f * words
            if b.is_output:
                partial = f  # write-backs that update partial sums already there
                ap[1] += (w - partial) * words
                ap[2] += partial * words
            ap[3] += moved
            ac[1] += f * words
            ac[0] += w * words
            ac[3] += moved
            xfer_bytes_rd[b.parent] += f * b.transfer_bytes
            xfer_bytes_wr[b.parent] += w * b.transfer_bytes
            del wbits
    rd_bw, wr_bw = _channel_bw(arch)
    transfer_cycles = {}
    for i, lv in enumerate(arch.levels):
        if lv.shared_bw:
            tc = (xfer_bytes_rd[i] + xfer_bytes_wr[i]) / rd_bw[i] if rd_bw[i] else 0.0
        else:
            tc = max(
                xfer_bytes_rd[i] / rd_bw[i] if rd_bw[i] else 0.0,
                xfer_bytes_wr[i] / wr_bw[i] if wr_bw[i] else 0.0,
            )
        transfer_cycles[lv.name] = tc
    # energy: actions x energy per action (per word of the level), compute
    # ops x energy per op, leakage x time
    energy: dict[str, float] = {}
    for i, lv in enumerate(arch.levels):
        e = 0.0
        for rec in acc[lv.name].values():
            word_scale = 1.0
            e += (rec[0] + rec[2]) * lv.read_energy_pj_per_word * word_scale
            e += (rec[1] + rec[2]) * lv.write_energy_pj_per_word * word_scale
        if e:
            energy[lv.name] = e
    macs = 0.0
    padded = 0.0
    compute_cycles = 0.0
    for nest in nests:
        cu = arch.unit(nest.unit)
        macs += nest.macs
        padded += nest.padded_macs
        compute_cycles += nest.steps * nest.cycles_per_step
        for op in _op_classes(nest):
            key = f"{cu.name}.{op}"
            energy[key] = energy.get(key, 0.0) + nest.padded_macs * cu.energy_pj_per_op.get(op, 0.0)
    latency_s = cycles / arch.clock_hz if arch.clock_hz else 0.0
    static = arch.leakage_w if hasattr(arch, "leakage_w") else arch.static_power_w
    if static:
        energy["static"] = static * latency_s * 1e12
    util = {cu.name: (unit_busy.get(cu.name, 0.0) / cycles if cycles else 0.0) for cu in arch.compute}
    accesses = {
        lvl: {t: TensorTraffic(reads=r[0], writes=r[1], updates=r[2], bytes=r[3]) for t, r in d.items()}
        for lvl, d in acc.items()
    }
    mapping_dict = None
    if mappings:
        try:
            from mappers.mapping import mapping_to_dict

            mapping_dict = {k: mapping_to_dict(m) for k, m in mappings.items()}
        except ImportError:  # pragma: no cover - older mappers
            mapping_dict = None
    return Metrics(
        cycles=cycles,
        latency_s=latency_s,
        energy_pj=sum(energy.values()),
        energy_breakdown_pj=energy,
        traffic_bytes=traffic,
        accesses=accesses,
        utilization=util,
        compute_cycles=compute_cycles,
        transfer_cycles=transfer_cycles,
        macs=macs,
        padded_macs=padded,
        model="des",
        mapping=mapping_dict,
        notes=notes,
    )


_OPS: dict[str, tuple[str, ...]] = {}


def _op_classes(nest: Nest) -> tuple[str, ...]:
    return _OPS.get(nest.einsum, ("mac",))


# ---------------------------------------------------------------------------
# simulation drivers
# ---------------------------------------------------------------------------


def _run(
    arch: Architecture,
    nests: list[Nest],
    deps: MappingABC[str, Iterable[str]],
    steps: dict[str, int],
    periods: dict[str, int],
    max_cycles: float,
    timeline_limit: int,
) -> Engine:
    eng = Engine(arch, max_cycles=max_cycles, timeline_limit=timeline_limit)
    for nest in nests:
        eng.add(
            nest,
            steps=steps.get(nest.einsum),
            deps=tuple(deps.get(nest.einsum, ())),
            period=periods.get(nest.einsum, 0),
        )
    eng.run()
    return eng


def _default_bound(arch: Architecture, nests: list[Nest]) -> float:
    """A generous bound on simulated cycles: 10x the fully serial execution."""
    rd, wr = _channel_bw(arch)
    serial = 0.0
    for nest in nests:
        serial += nest.steps * nest.cycles_per_step
        for b in nest.buffers:
            f, w = buffer_transfers(b, nest.steps, nest.steps)
            bw = min(rd[b.parent], wr[b.parent]) or 1e-30
            serial += (f + w) * b.transfer_bytes / bw
    return 10.0 * serial + 1e6


def simulate_nests(
    arch: Architecture,
    nests: list[Nest],
    *,
    deps: MappingABC[str, Iterable[str]] | None = None,
    full_sim: bool = False,
    max_cycles: float | None = None,
    timeline_limit: int = 0,
    max_period_steps: int = 2048,
    min_prefix_periods: int = 8,
    mappings: dict[str, Mapping] | None = None,
) -> Metrics:
    """Simulate already-built nests (one per Einsum) and return Metrics."""
    deps = deps or {}
    bound = max_cycles if max_cycles is not None else _default_bound(arch, nests)
    wall0 = time.perf_counter()
    total_steps = sum(n.steps for n in nests)
    steady_note: dict[str, Any] = {"used": False, "full_sim": True}
    # Steady-state extrapolation only for one Einsum on its own; a cascade
    # is extrapolated Einsum by Einsum only when it is a chain (each Einsum
    # waits for the previous one), where times add up.
    if full_sim or total_steps <= FULL_SIM_STEPS:
        eng = _run(arch, nests, deps, {}, {}, bound, timeline_limit)
        cycles = max((es.t_end for es in eng.einsums.values()), default=0.0)
        busy = {u.name: u.busy_cycles for u in eng.units.values()}
        events = eng.events
        notes: dict[str, Any] = {}
    else:
        cycles, busy, events, steady_note, eng = _extrapolated(
            arch, nests, deps, bound, timeline_limit, max_period_steps, min_prefix_periods
        )
        notes = {}
    wall = time.perf_counter() - wall0
    notes["steady_state"] = steady_note
    notes["events"] = events
    notes["wall_s"] = wall
    notes["events_per_s"] = events / wall if wall > 0 else 0.0
    if timeline_limit:
        notes["timeline"] = {
            "clock_hz": arch.clock_hz,
            "slices": [list(s) for s in eng.timeline.slices],
            "dropped": eng.timeline.dropped,
        }
    return _metrics(arch, nests, cycles, busy, notes, mappings)


def _extrapolated(arch, nests, deps, bound, timeline_limit, max_period_steps, min_prefix_periods):
    """Simulate a prefix of every nest, then extrapolate each Einsum's time."""
    periods = {n.einsum: _choose_period(n, max_period_steps) for n in nests}
    nper = {n.einsum: max(min_prefix_periods, 4) for n in nests}
    while True:
        steps = {}
        for n in nests:
            p = periods[n.einsum]
            if p:
                steps[n.einsum] = min(n.steps, nper[n.einsum] * p)
            else:
                steps[n.einsum] = min(n.steps, MAX_PREFIX_STEPS)
        eng = _run(arch, nests, deps, steps, periods, bound, timeline_limit)
        retry = False
        for n in nests:
            es = eng.einsums[n.einsum]
            p = periods[n.einsum]
            if p and es.steps < n.steps and _steady(es.boundaries) is None:
                if (2 * nper[n.einsum]) * p <= MAX_PREFIX_STEPS:
                    nper[n.einsum] *= 2
                    retry = True
        if not retry:
            break
    rd, wr = _channel_bw(arch)
    # extrapolate each Einsum's own duration, then compose them along the
    # dependency order (Einsums on different units overlap when independent)
    extra: dict[str, float] = {}
    per_einsum: dict[str, dict[str, Any]] = {}
    busy = {u.name: u.busy_cycles for u in eng.units.values()}
    for n in nests:
        es = eng.einsums[n.einsum]
        remaining_steps = n.steps - es.steps
        if remaining_steps <= 0:
            extra[n.einsum] = 0.0
            per_einsum[n.einsum] = {"simulated_steps": es.steps, "total_steps": n.steps, "extrapolated": False}
            continue
        p = periods[n.einsum]
        d = _steady(es.boundaries) if p else None
        steady = d is not None
        if d is None:
            # no steady state reached: the mean rate over the second half of the prefix
            b = es.boundaries
            if p and len(b) >= 2:
                h = len(b) // 2
                d = (b[-1] - b[h - 1]) / (len(b) - h) if len(b) > h else b[-1] / len(b)
            else:
                d = (es.t_end - es.t_start) / max(es.steps, 1) * (p or 1)
        rem_periods = remaining_steps / (p or 1)
        t = rem_periods * d
        # never below what the remaining transfers and steps need
        full = nest_traffic(n)
        part = nest_traffic(n, es.steps)
        by_ch: dict[tuple[int, str], float] = {}
        for b in n.buffers:
            f1, w1 = full[(b.level, b.tensor)]
            f0, w0 = part[(b.level, b.tensor)]
            lv = arch.levels[b.parent]
            kr = (b.parent, "rw" if lv.shared_bw else "r")
            kw = (b.parent, "rw" if lv.shared_bw else "w")
            by_ch[kr] = by_ch.get(kr, 0.0) + (f1 - f0)
            by_ch[kw] = by_ch.get(kw, 0.0) + (w1 - w0)
        bw_floor = 0.0
        for (lvl, kind), nbytes in by_ch.items():
            bw = wr[lvl] if kind == "w" else rd[lvl]
            if bw > 0:
                bw_floor = max(bw_floor, nbytes / bw)
        t = max(t, bw_floor, remaining_steps * n.cycles_per_step)
        extra[n.einsum] = t
        busy[n.unit] = busy.get(n.unit, 0.0) + remaining_steps * n.cycles_per_step
        per_einsum[n.einsum] = {
            "simulated_steps": es.steps,
            "total_steps": n.steps,
            "period_steps": p,
            "periods_simulated": len(es.boundaries),
            "period_cycles": d,
            "steady": steady,
            "extrapolated": True,
        }
    # compose: an Einsum's end moves by its own extra time plus the largest
    # shift among the Einsums it waits for
    shift: dict[str, float] = {}
    order = _topo(nests, deps)
    unit_shift: dict[str, float] = {}
    for name in order:
        es = eng.einsums[name]
        s0 = max([shift[d] for d in deps.get(name, ())] + [unit_shift.get(es.unit, 0.0)])
        shift[name] = s0 + extra[name]
        unit_shift[es.unit] = shift[name]
    cycles = max(eng.einsums[n].t_end + shift[n] for n in order)
    note = {
        "used": any(v.get("extrapolated") for v in per_einsum.values()),
        "full_sim": False,
        "all_steady": all(v.get("steady", True) for v in per_einsum.values()),
        "einsums": per_einsum,
    }
    return cycles, busy, eng.events, note, eng


def _topo(nests: list[Nest], deps: MappingABC[str, Iterable[str]]) -> list[str]:
    names = [n.einsum for n in nests]
    seen: set[str] = set()
    out: list[str] = []

    def visit(x: str) -> None:
        if x in seen:
            return
        seen.add(x)
        for d in deps.get(x, ()):
            visit(d)
        out.append(x)

    for x in names:
        visit(x)
    return out


def simulate(
    einsum: Einsum,
    arch: Architecture,
    mapping: Mapping,
    *,
    full_sim: bool = False,
    max_cycles: float | None = None,
    timeline_limit: int = 0,
    max_period_steps: int = 2048,
) -> Metrics:
    """Simulate one mapped Einsum; returns Metrics with ``model="des"``.

    ``full_sim`` simulates every tile (no steady-state extrapolation);
    ``max_cycles`` bounds simulated time (default: 10x fully serial
    execution); ``timeline_limit`` > 0 records up to that many timeline
    slices (for :mod:`sim.trace`).
    """
    nest = build_nest(einsum, arch, mapping)
    from mappers.mapping import einsum_op_classes

    _OPS[nest.einsum] = einsum_op_classes(einsum)
    return simulate_nests(
        arch,
        [nest],
        full_sim=full_sim,
        max_cycles=max_cycles,
        timeline_limit=timeline_limit,
        max_period_steps=max_period_steps,
        mappings={einsum.name: mapping},
    )


def simulate_cascade(
    cascade: Any,
    arch: Architecture,
    mappings: MappingABC[str, Mapping],
    *,
    schedule: Any = None,
    full_sim: bool = False,
    max_cycles: float | None = None,
    timeline_limit: int = 0,
) -> Metrics:
    """Simulate a cascade: one mapping per Einsum, dependencies from the DAG.

    An Einsum starts when the Einsums producing its inputs have finished.
    Intermediates whose residency in ``schedule`` is an on-chip level (or,
    without a schedule, none) are handed over on chip: the consumer does not
    fetch them from DRAM and the producer does not write them there.
    """
    from mappers.mapping import einsum_op_classes

    einsums = list(cascade.einsums)
    order = list(schedule.order) if schedule is not None else [e.name for e in einsums]
    by_name = {e.name: e for e in einsums}
    producer: dict[str, str] = {}
    for e in einsums:
        producer.setdefault(e.output.tensor, e.name)
    residency = dict(getattr(schedule, "residency", {}) or {})
    binding = dict(getattr(schedule, "binding", {}) or {})
    on_chip = {t for t, lv in residency.items() if lv != arch.levels[0].name}
    nests = []
    deps: dict[str, set[str]] = {}
    for name in order:
        e = by_name[name]
        m = mappings.get(name)
        if m is None:
            raise SimulationError(f"no mapping for Einsum {name} of the cascade")
        if binding.get(name) and not m.unit:
            from dataclasses import replace

            m = replace(m, unit=binding[name])
        fused_in = frozenset(a.tensor for a in e.inputs if a.tensor in on_chip and a.tensor in producer)
        nest = build_nest(e, arch, m, on_chip_inputs=fused_in)
        if e.output.tensor in on_chip:
            nest = _output_on_chip(nest)
        _OPS[nest.einsum] = einsum_op_classes(e)
        nests.append(nest)
        deps[name] = {producer[a.tensor] for a in e.inputs if a.tensor in producer and producer[a.tensor] != name}
    return simulate_nests(
        arch,
        nests,
        deps=deps,
        full_sim=full_sim,
        max_cycles=max_cycles,
        timeline_limit=timeline_limit,
        mappings=dict(mappings),
    )


def _output_on_chip(nest: Nest) -> Nest:
    """A fused output stays on chip: drop its write-back to the outermost level."""
    from dataclasses import replace

    bufs = []
    for b in nest.buffers:
        if b.is_output and b.parent == 0:
            b = replace(b, transfer_bytes=0.0, transfer_words=0.0)
        bufs.append(b)
    return replace(nest, buffers=tuple(bufs))

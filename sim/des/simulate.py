"""Discrete-event simulation of a mapped Einsum or cascade: the public API.

``simulate(einsum, arch, mapping)`` and ``simulate_cascade(...)`` return the
same :class:`~sim.metrics.Metrics` as the analytical model, with
``model="des"``. The event engine is in :mod:`sim.des.engine`, the tile
structure of a mapping in :mod:`sim.des.nest`.

Steady state. A long loop nest repeats one pattern: the steps are grouped in
*periods* (one iteration of a loop of the nest) and the engine records when
each period's last tile is computed. The simulator runs a prefix of ``N``
periods (and drains it); once the three periods before the last agree
(within 0.2%), the rest is extrapolated: ``T = T_prefix + (periods - N) *
d``, never below what the remaining bytes need on each port and the
remaining steps need on the compute unit (transfers at boundaries of outer
loops the prefix did not reach). In a cascade, the Einsum-level schedule of
the prefix run is replayed with each Einsum lengthened by its extrapolated
time; a cascade whose Einsums overlap on different units is simulated in
full up to CASCADE_FULL_SIM_STEPS. Traffic is counted exactly for the whole
nest, not extrapolated. What was done is reported in
``Metrics.notes["steady_state"]``; ``full_sim=True`` simulates every tile.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from collections.abc import Mapping as MappingABC
from typing import Any

from hw_models.arch import Architecture
from mappers.mapping import Mapping
from sim.des.engine import Engine, Stream
from sim.des.nest import (
    Buffer,
    DeadlockError,
    Nest,
    SimTimeLimitError,
    SimulationError,
    build_nest,
)
from sim.metrics import Metrics, TensorTraffic
from workloads.ir import Einsum

__all__ = [
    "DeadlockError",
    "SimTimeLimitError",
    "SimulationError",
    "simulate",
    "simulate_cascade",
    "simulate_einsums",
    "simulate_nests",
]

#: nests with at most this many steps are always simulated in full
FULL_SIM_STEPS = 4096
#: most steps ``full_sim=True`` simulates (about a minute at the ~40k events/s
#: measured on a loaded 2-core machine); beyond it the run is refused
MAX_FULL_SIM_STEPS = 2_000_000
#: most steps a steady-state prefix may simulate before giving up on steadiness
MAX_PREFIX_STEPS = 200_000
#: a cascade whose Einsums overlap on different units is simulated in full up
#: to this many steps (their contention over the extrapolated part is unseen)
CASCADE_FULL_SIM_STEPS = 300_000
#: fewest steps a steady-state prefix simulates
MIN_PREFIX_STEPS = 512
#: relative tolerance on equal period durations
STEADY_RTOL = 2e-3
#: most tile events (compute steps plus tile transfers) a full simulation may
#: have: 4-12 s of one core (90-250k events/s, fewer where many transfers
#: share ports); beyond it ``full_sim`` is refused with a
#: :class:`SimulationError` naming the count (the steady-state run needs a
#: few thousand). ``simulate_nests(..., max_events=)`` raises it.
FULL_SIM_MAX_EVENTS = 1_000_000


# ---------------------------------------------------------------------------
# exact access counts of a whole nest (the rule the engine follows tile by tile)
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


def nest_accesses(nest: Nest, steps: int | None = None) -> dict[tuple[int, str], list[float]]:
    """(level, tensor) -> [reads, writes, updates] in elements over ``steps`` steps."""
    s = nest.steps if steps is None else steps
    out: dict[tuple[int, str], list[float]] = {}
    for b in nest.buffers:
        f, w = buffer_transfers(b, s, nest.steps)
        xfer, fill = b.transfer_bytes / b.elem_bytes, b.fill_bytes / b.elem_bytes
        ap = out.setdefault((b.parent, b.tensor), [0.0, 0.0, 0.0])
        ac = out.setdefault((b.level, b.tensor), [0.0, 0.0, 0.0])
        ap[0] += f * xfer
        ap[1] += w * xfer
        ac[1] += f * fill
        ac[0] += w * fill
    for key, (r, w, u) in nest.step_accesses.items():
        o = out.setdefault(key, [0.0, 0.0, 0.0])
        o[0] += r * s
        o[1] += w * s
        o[2] += u * s
    return out


def port_bytes(nest: Nest, steps: int | None = None) -> dict[str, float]:
    """Port key -> bytes over ``steps`` steps (transfers and the unit's own accesses)."""
    s = nest.steps if steps is None else steps
    out: dict[str, float] = {}
    for b in nest.buffers:
        f, w = buffer_transfers(b, s, nest.steps)
        for key, nb in (
            (b.parent_rd, f * b.transfer_bytes),
            (b.child_wr, f * b.fill_bytes),
            (b.child_rd, w * b.fill_bytes),
            (b.parent_wr, w * b.transfer_bytes),
        ):
            out[key] = out.get(key, 0.0) + nb
    for key, nb in nest.step_bytes.items():
        out[key] = out.get(key, 0.0) + nb * s
    return out


def _add(into: dict, other: dict, scale: float = 1.0) -> None:
    for k, v in other.items():
        o = into.setdefault(k, [0.0, 0.0, 0.0])
        for i in range(3):
            o[i] += scale * v[i]


# ---------------------------------------------------------------------------
# steady state
# ---------------------------------------------------------------------------


def _period_candidates(nest: Nest, max_period_steps: int, min_periods: int = 8) -> list[int]:
    """Period lengths to try, shortest first: the steps of one iteration of a
    loop of the nest, short enough and repeated often enough for
    extrapolation to save work. A longer period takes in the variation of
    the loops inside it (a tile that changes every few periods)."""
    out: list[int] = []
    for lp in reversed(nest.loops):
        p = lp.inner_steps
        if p <= max_period_steps and nest.steps // p >= min_periods and p not in out:
            out.append(p)
    return out


def _steady(bounds: list[float], k: int = 3) -> float | None:
    """The period duration if the ``k`` periods before the last one took the
    same time (within STEADY_RTOL); their mean. The last period of a
    truncated run is left out: nothing is prefetched after it."""
    if len(bounds) < k + 2:
        return None
    b = bounds[-(k + 2) : -1]
    d = [b[i + 1] - b[i] for i in range(k)]
    ref = sum(d) / k
    if ref <= 0:
        return None
    if all(abs(x - ref) <= STEADY_RTOL * ref for x in d):
        return ref
    return None


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------


def _metrics(
    arch: Architecture,
    nests: list[Nest],
    cycles: float,
    acc: dict[tuple[int, str], list[float]],
    notes: dict[str, Any],
    mappings: MappingABC[str, Mapping] | None,
) -> Metrics:
    """Metrics from simulated cycles and access counts, with the analytical
    model's conventions: traffic = (reads + writes + 2 updates) x element
    bytes; energy = actions x energy per word + ops x energy per op +
    leakage x time; utilisation = useful work / (PEs x cycles)."""
    names = [lv.name for lv in arch.levels]
    bits: dict[str, float] = {}
    for nest in nests:
        bits.update(nest.tensor_bits)
    traffic: dict[str, dict[str, float]] = {n: {} for n in names}
    accesses: dict[str, dict[str, TensorTraffic]] = {n: {} for n in names}
    energy: dict[str, float] = {}
    for (lvl, t), (r, w, u) in sorted(acc.items()):
        if r == 0 and w == 0 and u == 0:
            continue
        lv = arch.levels[lvl]
        eb = bits.get(t, 16.0) / 8
        nbytes = (r + w + 2 * u) * eb
        traffic[lv.name][t] = nbytes
        accesses[lv.name][t] = TensorTraffic(reads=r, writes=w, updates=u, bytes=nbytes)
        per_word = eb * 8 / lv.word_bits
        e = (
            r * lv.read_energy_pj_per_word
            + w * lv.write_energy_pj_per_word
            + u * (lv.read_energy_pj_per_word + lv.write_energy_pj_per_word)
        ) * per_word
        energy[lv.name] = energy.get(lv.name, 0.0) + e
    # transfer cycles: every port's bytes over its bandwidth, as if alone
    port_cycles: dict[str, float] = {}
    for nest in nests:
        for key, nb in port_bytes(nest).items():
            port_cycles[key] = port_cycles.get(key, 0.0) + nb / nest.channel_bw[key]
    transfer_cycles = dict.fromkeys(names, 0.0)
    for key, c in port_cycles.items():
        lvl = key.rsplit(".", 1)[0] if "@" not in key else key.split("@")[0].rsplit(".", 1)[0]
        transfer_cycles[lvl] = max(transfer_cycles.get(lvl, 0.0), c)
    macs = padded = compute_cycles = 0.0
    work: dict[str, float] = {}
    for nest in nests:
        cu = arch.unit(nest.unit)
        macs += nest.macs
        padded += nest.padded_macs
        compute_cycles += nest.compute_cycles
        cpp = sum(1.0 / cu.ops_per_cycle[op] for op in nest.op_classes)
        work[cu.name] = work.get(cu.name, 0.0) + nest.macs * cpp / max(cu.pes, 1)
        for op in nest.op_classes:
            key = f"{cu.name}.{op}"
            energy[key] = energy.get(key, 0.0) + nest.padded_macs * cu.energy_pj_per_op.get(op, 0.0)
    latency_s = cycles / arch.clock_hz if arch.clock_hz else 0.0
    static_w = (
        arch.static_power_w
        + sum(lv.leakage_w * lv.instances for lv in arch.levels)
        + sum(cu.leakage_w for cu in arch.compute)
    )
    energy["static"] = static_w * latency_s * 1e12
    util = {
        cu.name: (min(1.0, work.get(cu.name, 0.0) / cycles) if cycles else 0.0)
        for cu in arch.compute
    }
    mapping_dict: dict[str, Any] | None = None
    if mappings:
        from mappers.mapping import mapping_to_dict

        mapping_dict = {k: mapping_to_dict(m) for k, m in mappings.items()}
        if len(mapping_dict) == 1:
            mapping_dict = next(iter(mapping_dict.values()))
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
    streams: MappingABC[str, Iterable[Stream]] | None = None,
) -> Engine:
    eng = Engine(arch, max_cycles=max_cycles, timeline_limit=timeline_limit)
    streams = streams or {}
    for nest in nests:
        eng.add(
            nest,
            steps=steps.get(nest.einsum),
            deps=tuple(deps.get(nest.einsum, ())),
            period=periods.get(nest.einsum, 0),
            streams=tuple(streams.get(nest.einsum, ())),
        )
    eng.run()
    return eng


def tile_events(nests: list[Nest]) -> int:
    """Tile events of a full simulation: every step and every tile moved."""
    total = 0
    for n in nests:
        total += n.steps
        for b in n.buffers:
            f, w = buffer_transfers(b, n.steps, n.steps)
            total += f + w
    return total


def _check_event_budget(nests: list[Nest], max_events: int) -> None:
    n = tile_events(nests)
    if n > max_events:
        raise SimulationError(
            f"a full simulation of {', '.join(x.einsum for x in nests[:4])}"
            f"{' ...' if len(nests) > 4 else ''} has {n:,} tile events, over the budget of "
            f"{max_events:,} (FULL_SIM_MAX_EVENTS, 4-12 s of one core); "
            "drop --full-sim (the steady-state run extrapolates), or map to larger tiles"
        )


def default_bound(nests: list[Nest]) -> float:
    """A generous bound on simulated cycles: 10x fully serial execution
    (every step and every transfer one after another, each alone)."""
    serial = 0.0
    for nest in nests:
        serial += nest.compute_cycles
        for key, nb in port_bytes(nest).items():
            serial += nb / nest.channel_bw[key]
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
    mappings: MappingABC[str, Mapping] | None = None,
    streams: MappingABC[str, Iterable[Stream]] | None = None,
    max_events: int = FULL_SIM_MAX_EVENTS,
) -> Metrics:
    """Simulate already-built nests (one per Einsum) and return Metrics.

    ``deps``: Einsum -> Einsums it waits for (finished); ``streams``:
    Einsum -> fused producers it is pipelined with (a name: proportional
    hand-over; see :data:`sim.des.engine.Stream`). ``full_sim`` refuses nests
    of more than ``max_events`` tile events.
    """
    deps = deps or {}
    streams = streams or {}
    bound = max_cycles if max_cycles is not None else default_bound(nests)
    wall0 = time.perf_counter()
    total_steps = sum(n.steps for n in nests)
    if full_sim and total_steps > MAX_FULL_SIM_STEPS:
        raise SimulationError(
            f"a full simulation would run {total_steps:,} tile steps; the limit is "
            f"{MAX_FULL_SIM_STEPS:,}: leave out --full-sim (steady-state extrapolation) "
            "or simulate a smaller problem"
        )
    if full_sim:
        _check_event_budget(nests, max_events)
    if full_sim or total_steps <= FULL_SIM_STEPS:
        eng = _run(arch, nests, deps, {}, {}, bound, timeline_limit, streams)
        cycles = max((es.t_end for es in eng.einsums.values()), default=0.0)
        acc = eng.accesses()
        steady_note: dict[str, Any] = {"used": False, "full_sim": True}
    else:
        cycles, acc, steady_note, eng = _extrapolated(
            arch, nests, deps, bound, timeline_limit, max_period_steps, min_prefix_periods, streams
        )
        if steady_note.get("concurrent") and total_steps <= CASCADE_FULL_SIM_STEPS:
            # Einsums on different units overlapped and one was extrapolated:
            # per-Einsum extrapolation cannot see their contention over the
            # rest of the run, so a cascade this small is simulated in full
            eng = _run(arch, nests, deps, {}, {}, bound, timeline_limit, streams)
            cycles = max((es.t_end for es in eng.einsums.values()), default=0.0)
            acc = eng.accesses()
            steady_note = {
                "used": False,
                "full_sim": True,
                "reason": "concurrent Einsums on different units: simulated in full",
            }
    wall = time.perf_counter() - wall0
    notes: dict[str, Any] = {
        "steady_state": steady_note,
        "events": eng.events,
        "wall_s": wall,
        "events_per_s": eng.events / wall if wall > 0 else 0.0,
        "unit_busy_cycles": {u.name: u.busy_cycles for u in eng.units.values()},
        "contention": _contention(eng, nests),
    }
    if timeline_limit:
        notes["timeline"] = {
            "clock_hz": arch.clock_hz,
            "slices": [list(x) for x in eng.timeline.slices],
            "dropped": eng.timeline.dropped,
            "simulated_cycles": max((es.t_end for es in eng.einsums.values()), default=0.0),
        }
    return _metrics(arch, nests, cycles, acc, notes, mappings)


def _contention(eng: Engine, nests: list[Nest]) -> dict[str, float]:
    """Cycles lost to shared ports, scaled from a simulated prefix to the
    whole nest: ``step_stretch_cycles``, the time compute steps took beyond
    their time alone on their ports; ``wait_stretch_cycles``, the time a unit
    waited for a tile whose transfer took longer than alone (capped at the
    wait). Their sum bounds how much slower than the contention-free limit
    (the analytical model) the run is because of sharing."""
    step = wait = 0.0
    for n in nests:
        es = eng.einsums[n.einsum]
        scale = n.steps / es.steps if es.steps else 1.0
        step += es.stretch * scale
        wait += es.wait_stretch * scale
    return {
        "step_stretch_cycles": step,
        "wait_stretch_cycles": wait,
        "total_cycles": step + wait,
    }


def _extrapolated(
    arch, nests, deps, bound, timeline_limit, max_period_steps, min_prefix_periods, streams
):
    """Simulate a prefix of every nest, then extrapolate each Einsum's time.

    For every Einsum, period lengths are tried shortest first; the prefix
    covers ``min_prefix_periods`` periods (and at least MIN_PREFIX_STEPS
    steps). An Einsum whose last three periods took the same time is
    steady; otherwise the next longer period is tried. With no candidate
    left, an Einsum that fits MAX_PREFIX_STEPS is simulated in full, and a
    longer one is extrapolated from the mean period of its prefix (and
    reported as not steady).
    """
    cands = {n.einsum: _period_candidates(n, max_period_steps) for n in nests}
    pick = dict.fromkeys(cands, 0)  # index into the candidates

    def plan(n: Nest) -> tuple[int, int]:
        c = cands[n.einsum]
        if pick[n.einsum] >= len(c):
            return min(n.steps, MAX_PREFIX_STEPS), 0
        p = c[pick[n.einsum]]
        k = max(min_prefix_periods, 4, -(-MIN_PREFIX_STEPS // p))
        return min(n.steps, k * p), p

    while True:
        steps, periods = {}, {}
        for n in nests:
            steps[n.einsum], periods[n.einsum] = plan(n)
        eng = _run(arch, nests, deps, steps, periods, bound, timeline_limit, streams)
        retry = False
        for n in nests:
            es = eng.einsums[n.einsum]
            p = periods[n.einsum]
            if p and es.steps < n.steps and _steady(es.boundaries) is None:
                pick[n.einsum] += 1
                retry = True
        if not retry:
            break
    acc = eng.accesses()
    extra: dict[str, float] = {}
    per_einsum: dict[str, dict[str, Any]] = {}
    for n in nests:
        es = eng.einsums[n.einsum]
        remaining = n.steps - es.steps
        if remaining <= 0:
            extra[n.einsum] = 0.0
            per_einsum[n.einsum] = {
                "simulated_steps": es.steps,
                "total_steps": n.steps,
                "extrapolated": False,
            }
            continue
        # the rest of the nest's accesses, counted exactly
        _add(acc, nest_accesses(n))
        _add(acc, nest_accesses(n, es.steps), -1.0)
        p = periods[n.einsum]
        b = es.boundaries
        d = _steady(b) if p else None
        steady = d is not None
        if d is None:
            # no steady state within the budget: the mean period of the
            # second half of the prefix
            if p and len(b) >= 2:
                h = len(b) // 2
                d = (b[-1] - b[h - 1]) / (len(b) - h)
            else:
                d = (es.t_end - es.t_start) / max(es.steps, 1) * (p or 1)
        t = remaining / (p or 1) * d
        # never below what the remaining bytes need on any port, nor the
        # remaining steps on the unit
        full, part = port_bytes(n), port_bytes(n, es.steps)
        floor = max(((full[k] - part.get(k, 0.0)) / n.channel_bw[k] for k in full), default=0.0)
        floor = max(floor, remaining * n.cycles_per_step)
        bound_by_bw = floor > t * (1 + 1e-9)
        t = max(t, floor)
        extra[n.einsum] = t
        per_einsum[n.einsum] = {
            "simulated_steps": es.steps,
            "total_steps": n.steps,
            "period_steps": p,
            "periods_simulated": len(b),
            "period_cycles": d,
            "steady": steady,
            "extrapolated": True,
            "raised_to_bandwidth_floor": bound_by_bw,
        }
    # compose: replay the Einsum-level schedule of the prefix run with every
    # Einsum lengthened by its extrapolated time. An Einsum starts when what
    # it depends on has finished and the previous Einsum on its unit is
    # done; slack it had in the prefix run (e.g. waiting for a longer
    # sibling) absorbs delays instead of adding them up.
    new_end: dict[str, float] = {}
    prev_on_unit: dict[str, str] = {}
    for name in _topo(nests, deps, streams):
        es = eng.einsums[name]
        prev = prev_on_unit.get(es.unit)
        start_old = max(es.t_start, eng.einsums[prev].t_end if prev else 0.0)
        start_new = max(
            [new_end[d] for d in deps.get(name, ())] + ([new_end[prev]] if prev else []) + [0.0]
        )
        start_new = max(start_new, start_old) if not deps.get(name) and not prev else start_new
        end = start_new + (es.t_end - start_old) + extra[name]
        for spec in streams.get(name, ()):
            # a pipelined consumer ends no earlier than its producer did
            p = spec if isinstance(spec, str) else spec[0]
            end = max(end, new_end[p] + max(0.0, es.t_end - eng.einsums[p].t_end))
        new_end[name] = end
        prev_on_unit[es.unit] = name
    cycles = max(new_end.values())
    # did Einsums on different units overlap while one of them was cut short?
    ivals = [
        (es.t_start, es.t_end, es.unit, per_einsum[n].get("extrapolated", False))
        for n, es in eng.einsums.items()
    ]
    concurrent = any(
        a[2] != b[2] and (a[3] or b[3]) and a[0] < b[1] and b[0] < a[1]
        for i, a in enumerate(ivals)
        for b in ivals[i + 1 :]
    )
    note = {
        "concurrent": concurrent,
        "used": any(v.get("extrapolated") for v in per_einsum.values()),
        "full_sim": False,
        "all_steady": all(v.get("steady", True) for v in per_einsum.values()),
        "einsums": per_einsum,
    }
    return cycles, acc, note, eng


def _topo(
    nests: list[Nest],
    deps: MappingABC[str, Iterable[str]],
    streams: MappingABC[str, Iterable[Stream]] | None = None,
) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []

    def visit(x: str) -> None:
        if x in seen:
            return
        seen.add(x)
        for d in deps.get(x, ()):
            visit(d)
        for d in (streams or {}).get(x, ()):
            visit(d if isinstance(d, str) else d[0])
        out.append(x)

    for n in nests:
        visit(n.einsum)
    return out


def _analytical_compute_cycles(
    einsum: Einsum, arch: Architecture, mapping: Mapping
) -> float | None:
    """The analytical model's compute cycles (with systolic fill and drain)."""
    try:
        from sim.analytical.model import evaluate
    except ImportError:  # pragma: no cover - analytical model absent
        return None
    return evaluate(einsum, arch, mapping, check=False).compute_cycles


def simulate(
    einsum: Einsum,
    arch: Architecture,
    mapping: Mapping,
    *,
    full_sim: bool = False,
    max_cycles: float | None = None,
    timeline_limit: int = 0,
    max_period_steps: int = 2048,
    check: bool = True,
) -> Metrics:
    """Simulate one mapped Einsum; returns Metrics with ``model="des"``.

    ``full_sim`` simulates every tile (no steady-state extrapolation);
    ``max_cycles`` bounds simulated time (default: 10x fully serial
    execution); ``timeline_limit`` > 0 records up to that many timeline
    slices (for :mod:`sim.des.trace`). ``check`` validates the mapping first
    (an unchecked mapping whose tiles do not fit may deadlock, which is
    reported as :class:`DeadlockError`).
    """
    if check:
        from mappers.mapping import validate

        validate(mapping, einsum, arch)
    nest = build_nest(
        einsum, arch, mapping, compute_cycles=_analytical_compute_cycles(einsum, arch, mapping)
    )
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
    check: bool = True,
) -> Metrics:
    """Simulate a cascade: one mapping per Einsum, dependencies from the DAG.

    An Einsum starts when the Einsums producing its inputs have finished;
    Einsums bound to different units overlap when independent, and share
    the ports they both use. Intermediates whose residency in ``schedule``
    is an on-chip level are handed over on chip: the producer does not write
    them to the outermost level and the consumer does not fetch them from
    it. A spilled intermediate is written out by its producer; a consumer in
    the same fusion group and in the producer's pass still takes it on chip,
    later passes reload it. When producer and consumer are in one pipelined fusion group
    (``FusionGroup.pipelined``) and on different units, they run together:
    the consumer's step ``s`` waits until the producer has done
    ``(s+1)/steps`` of its steps (both walk the intermediate in the same
    order, which the schedule's common tiling guarantees). Without a
    schedule every intermediate goes through the outermost level (unfused).
    """
    einsums = list(cascade.einsums)
    by_name = {e.name: e for e in einsums}
    order = list(schedule.order) if schedule is not None else [e.name for e in einsums]
    producer: dict[str, str] = {}
    for e in einsums:
        producer.setdefault(e.output.tensor, e.name)
    residency = dict(getattr(schedule, "residency", None) or {})
    binding = dict(getattr(schedule, "binding", None) or {})
    on_chip = {t for t, lv in residency.items() if lv != arch.levels[0].name}
    nests = []
    deps: dict[str, set[str]] = {}
    used: dict[str, Mapping] = {}
    unit_of: dict[str, str] = {}
    for name in order:
        e = by_name[name]
        m = mappings.get(name)
        if m is None:
            raise SimulationError(f"no mapping for Einsum {name} of the cascade")
        if binding.get(name) and not m.unit:
            from dataclasses import replace

            m = replace(m, unit=binding[name])
        if check:
            from mappers.mapping import validate

            validate(m, e, arch)
        used[name] = m
        fused_in = frozenset(
            a.tensor
            for a in e.inputs
            if a.tensor in producer
            and (
                a.tensor in on_chip or _same_pass_spill(cascade, schedule, a.tensor, producer, name)
            )
        )
        nest = build_nest(
            e,
            arch,
            m,
            on_chip_inputs=fused_in,
            compute_cycles=_analytical_compute_cycles(e, arch, m),
        )
        if e.output.tensor in on_chip:
            nest = _output_on_chip(nest)
        nests.append(nest)
        unit_of[name] = nest.unit
        deps[name] = {
            producer[a.tensor]
            for a in e.inputs
            if a.tensor in producer and producer[a.tensor] != name
        }
    deps = _break_cycles(deps)
    streams: dict[str, set[str]] = {}
    for name in order:
        e = by_name[name]
        for a in e.inputs:
            p = producer.get(a.tensor)
            if (
                p is not None
                and p in deps[name]
                and (
                    a.tensor in on_chip
                    or _same_pass_spill(cascade, schedule, a.tensor, producer, name)
                )
                and unit_of[p] != unit_of[name]
                and _pipelined(schedule, p, name)
            ):
                deps[name].discard(p)
                streams.setdefault(name, set()).add(p)
    return simulate_nests(
        arch,
        nests,
        deps=deps,
        streams=streams,
        full_sim=full_sim,
        max_cycles=max_cycles,
        timeline_limit=timeline_limit,
        mappings=used,
    )


def _same_pass_spill(
    cascade: Any, schedule: Any, tensor: str, producer: dict[str, str], consumer: str
) -> bool:
    """A spilled tensor read by an Einsum of its producer's fusion group in
    the producer's pass: it reaches the consumer on chip before the spill
    (the cost model's rule, :func:`mappers.schedule.later_pass_readers`)."""
    if schedule is None or schedule.residency.get(tensor) is None:
        return False
    from mappers.schedule import later_pass_readers

    for g in getattr(schedule, "groups", None) or ():
        if producer[tensor] in g.einsums and consumer in g.einsums and len(g.einsums) > 1:
            return not later_pass_readers(cascade, tensor, [consumer], g.tiled_rank)
    return False


def _pipelined(schedule: Any, producer: str, consumer: str) -> bool:
    """Producer and consumer are in one pipelined fusion group of the schedule."""
    for g in getattr(schedule, "groups", None) or ():
        if producer in g.einsums and consumer in g.einsums:
            return bool(getattr(g, "pipelined", True))
    return False


def _break_cycles(deps: dict[str, set[str]]) -> dict[str, set[str]]:
    """Einsums that depend on each other (an iterative cascade: a running max
    read at ``m1`` and written at ``m1+1``) run as one group: inside a
    strongly connected component the dependencies are dropped, and the
    group waits for what any of its members waits for."""
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(deps)
    for x, ds in deps.items():
        for d in ds:
            g.add_edge(d, x)
    comp: dict[str, int] = {}
    for i, scc in enumerate(nx.strongly_connected_components(g)):
        for x in scc:
            comp[x] = i
    out: dict[str, set[str]] = {}
    for x, ds in deps.items():
        out[x] = {d for d in ds if comp[d] != comp[x]}
    return out


def _output_on_chip(nest: Nest) -> Nest:
    """A fused output stays on chip: its write-back to the outermost level
    moves nothing (the consumer reads it where it is)."""
    from dataclasses import replace

    bufs = []
    for b in nest.buffers:
        if b.is_output and b.parent == 0:
            b = replace(b, transfer_bytes=0.0, fill_bytes=0.0)
        bufs.append(b)
    return replace(nest, buffers=tuple(bufs))


def simulate_einsums(
    einsums: list[Einsum],
    arch: Architecture,
    mappings: MappingABC[str, Mapping],
    *,
    cascade: Any = None,
    schedule: Any = None,
    full_sim: bool = False,
    timeline_limit: int = 0,
    max_cycles: float | None = None,
    **_ignored: Any,
) -> Metrics:
    """The front door's entry point (``sim.models.MODELS["des"]``):
    one Einsum, or a cascade (its DAG gives the dependencies)."""
    if len(einsums) == 1 and cascade is None:
        e = einsums[0]
        return simulate(
            e,
            arch,
            mappings[e.name],
            full_sim=full_sim,
            max_cycles=max_cycles,
            timeline_limit=timeline_limit,
        )

    class _Seq:
        pass

    src = cascade
    if src is None:
        src = _Seq()
        src.einsums = tuple(einsums)  # type: ignore[attr-defined]
    return simulate_cascade(
        src,
        arch,
        mappings,
        schedule=schedule,
        full_sim=full_sim,
        max_cycles=max_cycles,
        timeline_limit=timeline_limit,
    )

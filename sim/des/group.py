"""Discrete-event simulation of a cascade schedule (``einsim schedule --sim des``).

The schedule's cost model (:mod:`sim.analytical.cascade`) works per fusion
group; this module runs the same groups on the DES engine
(:mod:`sim.des.engine`), with the cost model's work and traffic, so that the
analytical figure is the contention-free limit of the simulated one:

* every Einsum is one nest of steps on the unit the schedule binds it to; a
  step costs the Einsum's operations at the unit's full rate
  (:func:`sim.analytical.cascade.einsum_cycles` / steps, as the cost model);
* DRAM traffic is the cost model's, tensor by tensor, in tiles on the DRAM
  port (double-buffered in the global buffer, whose ports the cost model
  does not limit either): :func:`sim.analytical.cascade.grouped_dram_terms`
  for grouped schedules, the fusion problem's terms for generic ones;
* the groups run one after another (each is simulated on its own and the
  times add up, as in the cost model).

How a group's Einsums share the units, by kind of group:

* **generic** (the fusion ILP's and its baselines'): the Einsums run one
  after another, each streamed in :data:`CHUNKS` steps whose DRAM reads and
  writes overlap its compute: ``max(cycles, dram / bw)`` plus one chunk in
  and one out;
* **pipelined across tiles** (FLAT): a step is one tile of the tiled rank
  (per outer batch/head slice); an Einsum's step ``s`` waits for step ``s``
  of the Einsums it reads; a unit takes the ready step least far along, so
  the units work on different tiles at once;
* **tiled, not pipelined**: the same, and tile ``s + 1`` of the group's first
  Einsums waits for tile ``s`` of its last ones;
* **streamed** (FuseMax): a step of the body (the Einsums over the streamed
  rank, ``m1``) is one pass tile at one ``m1``, nested as outer slice, buffer
  tile, ``m1``, pass tile; the body Einsums pipeline step by step across the
  units (a read of the previous ``m1`` step, such as ``SPD`` reading ``RD``,
  waits for that step), the epilogue (``AV``) of a buffer tile waits for its
  whole body, and the next buffer tile's body waits for that epilogue (the
  units' registers are reused).

A group of more than :data:`GROUP_FULL_SIM_STEPS` steps is simulated with
fewer identical blocks (outer slices x buffer tiles) and, when streamed,
fewer ``m1`` steps, and extrapolated linearly in both (``T = c0 + B (c1 + M
c2)``, from three runs; a fourth checks it): ``notes["groups"]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from hw_models.arch import Architecture
from mappers.schedule import OUTER_RANKS, FusionGroup, Schedule, later_pass_readers
from sim.analytical.cascade import (
    DramTerm,
    einsum_cycles,
    generic_problem,
    grouped_dram_terms,
    is_generic,
)
from sim.des.engine import Stream
from sim.des.nest import Buffer, Loop, Nest, channel_key
from sim.des.simulate import simulate_nests
from sim.metrics import Metrics
from workloads.ir import Cascade, Einsum

__all__ = ["CHUNKS", "GROUP_FULL_SIM_STEPS", "simulate_schedule"]

#: steps an Einsum of a generic group is streamed in (its fill and drain,
#: one chunk in and one out, are 2/CHUNKS of its DRAM time)
CHUNKS = 256
#: steps a group may have before it is extrapolated from smaller runs
GROUP_FULL_SIM_STEPS = 200_000


@dataclass(frozen=True)
class _Shape:
    """The loop structure of a grouped schedule's group."""

    outer: int  # outer (batch, head) slices
    n_bt: int  # buffer tiles of the tiled rank
    n_pt: int  # pass tiles per buffer tile
    m1: int  # steps of the streamed rank (1 if none)

    @property
    def blocks(self) -> int:
        return self.outer * self.n_bt


@dataclass
class _Spec:
    """One Einsum's nest in the making."""

    einsum: Einsum
    unit: str
    steps: int
    loops: tuple[Loop, ...]
    #: (tensor, total bytes, write, steps per tile)
    dram: list[tuple[str, float, bool, int]]
    #: the cycles of these steps (the Einsum's share when fewer are simulated)
    cycles: float = 0.0


def _sizes(members: list[Einsum]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in members:
        out.update(e.rank_sizes)
    return out


def _loops(factors: list[tuple[str, int]]) -> tuple[Loop, ...]:
    """Loops (outermost first) of the given factors, with their inner steps."""
    out: list[Loop] = []
    inner = 1
    for rank, f in reversed(factors):
        if f > 1:
            out.append(Loop(rank, 0, f, inner))
            inner *= f
    return tuple(reversed(out))


def _nest(spec: _Spec, arch: Architecture, cycles: float) -> Nest:
    """A nest of ``spec.steps`` steps of ``cycles / steps`` each, with a
    DRAM -> buffer tile stream per input term and one back per output term."""
    name = spec.einsum.name
    dram_port = channel_key(arch, 0, "rd", name)
    dram_wport = channel_key(arch, 0, "wr", name)
    lv0 = arch.levels[0]
    bw = {
        dram_port: lv0.read_bw_bytes_per_cycle,
        dram_wport: lv0.read_bw_bytes_per_cycle if lv0.shared_bw else lv0.write_bw_bytes_per_cycle,
        "buffer": math.inf,  # the cost model does not limit the buffer's ports
    }
    buffers = []
    for tensor, nbytes, write, period in spec.dram:
        tiles = -(-spec.steps // period)
        per_tile = nbytes / tiles
        buffers.append(
            Buffer(
                tensor=tensor,
                is_output=write,
                level=1,
                parent=0,
                period=period,
                tile_bytes=0.0,
                transfer_bytes=per_tile,
                fill_bytes=per_tile,
                elem_bytes=1.0,
                parent_rd=dram_port,
                parent_wr=dram_wport,
                child_rd="buffer",
                child_wr="buffer",
            )
        )
    e = spec.einsum
    return Nest(
        einsum=name,
        unit=spec.unit,
        loops=spec.loops,
        steps=spec.steps,
        buffers=tuple(buffers),
        leaf={b.tensor: 1 for b in buffers},
        cycles_per_step=cycles / spec.steps,
        step_bytes={},
        step_accesses={},
        channel_bw=bw,
        macs=float(e.iteration_points),
        padded_macs=float(e.iteration_points),
        compute_cycles=cycles,
        level_names=tuple(lv.name for lv in arch.levels),
        tensor_bits={b.tensor: 8.0 for b in buffers},  # tile sizes are in bytes
    )


# ------------------------------------------------------------------ generic


def _generic_specs(
    cascade: Cascade, arch: Architecture, schedule: Schedule
) -> list[tuple[list[_Spec], dict[str, set[str]], dict[str, list[Stream]]]]:
    """Every Einsum of a generic schedule, one after another, streamed in
    CHUNKS steps with the fusion problem's DRAM bytes."""
    p, keep, tiles = generic_problem(cascade, arch, schedule)
    tiled = next((g.tiled_rank for g in schedule.groups if g.tiled_rank), "")
    index = {name: i for i, name in enumerate(p.einsums)}
    fused = [False] * len(p.einsums)
    terms: list[list[tuple[str, float, bool, int]]] = [[] for _ in p.einsums]
    for t, k in zip(p.intermediates, keep, strict=True):
        if k:
            fused[t.producer] = True
            for c in t.consumers:
                fused[c] = True
        else:
            terms[t.producer].append((t.name, t.bytes, True, 1))
            for c in t.consumers:
                terms[c].append((t.name, t.bytes, False, 1))
    for e in cascade.einsums:
        i = index[e.name]
        seen: set[str] = set()
        for acc in e.inputs:
            x = acc.tensor
            if x in seen or x == e.output.tensor or x not in cascade.inputs:
                continue
            seen.add(x)
            size = cascade.tensor(x).bytes
            reread = fused[i] and tiled and tiled not in cascade.tensor(x).ranks
            terms[i].append((x, size * (tiles if reread else 1), False, 1))
        out = e.output.tensor
        first = next(x.name for x in cascade.einsums if x.output.tensor == out)
        if out in cascade.outputs and first == e.name:
            terms[i].append((out, cascade.tensor(out).bytes, True, 1))
    specs = []
    chunk = _loops([("chunk", CHUNKS)])
    for name in p.einsums:
        e = cascade.einsum(name)
        unit = schedule.binding[name]
        cycles = einsum_cycles(e, arch.unit(unit))
        spec = _Spec(e, unit, CHUNKS, chunk, terms[index[name]], cycles)
        specs.append(([spec], {}, {}))
    return specs


# ------------------------------------------------------------------ grouped


def _shape(group: FusionGroup, members: list[Einsum]) -> _Shape:
    sizes = _sizes(members)
    outer = math.prod(sizes[r] for r in OUTER_RANKS if r in sizes)
    n_pass = n_bt = 1
    if group.tiled_rank:
        n = sizes.get(group.tiled_rank, 1)
        n_pass = math.ceil(n / max(1, group.tile))
        n_bt = math.ceil(n / max(1, group.buffer_tile or group.tile))
    m1 = sizes.get(group.streamed_rank, 1) if group.streamed_rank else 1
    return _Shape(outer, n_bt, math.ceil(n_pass / n_bt), m1)


def _per_block(spec: _Spec, shape: _Shape, chunked: bool) -> int:
    """Steps of one block (outer slice x buffer tile) of an Einsum's nest."""
    return 1 if chunked else spec.steps // shape.blocks


def _grouped_specs(
    cascade: Cascade,
    arch: Architecture,
    schedule: Schedule,
    group: FusionGroup,
    terms: list[DramTerm],
    shape: _Shape,
) -> tuple[list[_Spec], dict[str, set[str]], dict[str, list[Stream]]]:
    """Nests, dependencies and streams of a grouped schedule's group (see the
    module doc); ``shape`` may have fewer blocks or m1 steps than the group."""
    members = [cascade.einsum(n) for n in group.einsums]
    full = _shape(group, members)
    streamed = group.streamed_rank
    tiled = bool(group.tiled_rank)
    specs: dict[str, _Spec] = {}
    for e in members:
        body = not streamed or streamed in e.rank_sizes
        m1 = shape.m1 if body else 1
        factors = [("outer", shape.outer), ("bt", shape.n_bt), ("m1", m1), ("pt", shape.n_pt)]
        steps = shape.blocks * m1 * shape.n_pt
        share = steps / (full.blocks * (full.m1 if body else 1) * full.n_pt)
        if not tiled and not streamed:
            factors, steps, share = [("chunk", CHUNKS)], CHUNKS, 1.0  # stream it in chunks
        unit = schedule.binding[e.name]
        cycles = einsum_cycles(e, arch.unit(unit)) * share
        specs[e.name] = _Spec(e, unit, steps, _loops(factors), [], cycles)
    chunked = not tiled and not streamed
    for term in terms:
        size = cascade.tensor(term.tensor).bytes
        if not chunked:
            size *= shape.outer / full.outer  # the outer slices simulated
        readers = [
            s for s in specs.values() if any(a.tensor == term.tensor for a in s.einsum.inputs)
        ]
        writer = next((s for s in specs.values() if s.einsum.output.tensor == term.tensor), None)
        if term.kind in ("output", "spill") and writer is not None:
            writer.dram.append((term.tensor, size, True, _per_block(writer, shape, chunked)))
        if term.kind == "output":
            continue
        if term.kind == "spill":
            later = set(
                later_pass_readers(
                    cascade, term.tensor, [s.einsum.name for s in readers], group.tiled_rank
                )
            )
            for r in readers:
                if r.einsum.name in later:
                    r.dram.append((term.tensor, size, False, _per_block(r, shape, chunked)))
            continue
        r = readers[0]  # read once into the buffer, then shared on chip
        period = _per_block(r, shape, chunked)
        nbytes = size * term.reads
        if term.kind == "resident" and not chunked:
            period = r.steps // shape.outer  # once per outer slice
        elif term.kind == "reread" and streamed in r.einsum.rank_sizes:
            period = shape.n_pt  # one m1 chunk per buffer tile
            nbytes *= shape.m1 / full.m1
        r.dram.append((term.tensor, nbytes, False, period))
    deps: dict[str, set[str]] = {}
    streams: dict[str, list[Stream]] = {}
    if chunked:  # one after another, as the cost model sums them
        for a, b in zip(members, members[1:], strict=False):
            deps.setdefault(b.name, set()).add(a.name)
    carried = cascade.carried_reads()
    producer = {e.output.tensor: e.name for e in members}
    for e in members:
        me = specs[e.name]
        for acc in e.inputs:
            p = producer.get(acc.tensor)
            if p is None or p == e.name:
                continue
            src = specs[p]
            if not tiled and not streamed:
                deps.setdefault(e.name, set()).add(p)  # one after another
            elif src.steps == me.steps:
                lag = 1 if (e.name, acc.tensor) in carried else 0
                streams.setdefault(e.name, []).append((p, 1, 1, lag))
            elif src.steps > me.steps:  # an epilogue: the whole body of its block
                a, b = me.steps // shape.blocks, src.steps // shape.blocks
                streams.setdefault(e.name, []).append((p, a, b, 0))
            else:
                streams.setdefault(e.name, []).append(p)
    if streamed:
        # the running state is kept in the units' registers: its writers
        # start the next buffer tile once the epilogue has read it
        epilogue = [e for e in members if specs[e.name].steps < specs[members[0].name].steps]
        for k in epilogue:
            for t in {a.tensor for a in k.inputs}:
                w = producer.get(t)
                if w is None or w == k.name or specs[w].steps == specs[k.name].steps:
                    continue
                a, b = specs[w].steps // shape.blocks, specs[k.name].steps // shape.blocks
                streams.setdefault(w, []).append((k.name, a, b, b))
    elif tiled and not group.pipelined:
        # each tile drains before the next one starts
        fed = {x if isinstance(x, str) else x[0] for ss in streams.values() for x in ss}
        roots = [e.name for e in members if e.name not in streams]
        for k in (e.name for e in members if e.name not in fed):
            for r in roots:
                if r != k:
                    streams.setdefault(r, []).append((k, 1, 1, 1))
    return list(specs.values()), deps, streams


# ------------------------------------------------------------------ driver


def _run(
    arch: Architecture,
    specs: list[_Spec],
    deps: dict[str, set[str]],
    streams: dict[str, list[Stream]],
    full_sim: bool,
) -> tuple[float, dict[str, Any], dict[str, float]]:
    """Simulate one group's nests: (cycles, notes, DRAM bytes per tensor)."""
    nests = [_nest(sp, arch, sp.cycles) for sp in specs]
    m = simulate_nests(arch, nests, deps=deps, streams=streams, full_sim=True)
    dram = {t: x.bytes for t, x in m.accesses.get(arch.levels[0].name, {}).items()}
    return m.cycles, m.notes, dram


def _fit(t: dict[tuple[int, int], float], a: int, b: int) -> tuple[float, float, float]:
    """(c0, c1, c2) of ``T(o, m) = c0 + o (c1 + m c2)`` from T(1,a), T(1,b), T(2,a)."""
    c2 = (t[1, b] - t[1, a]) / (b - a) if b > a else 0.0
    c1 = t[2, a] - t[1, a] - a * c2
    return t[1, a] - c1 - a * c2, c1, c2


def _simulate_group(
    cascade: Cascade,
    arch: Architecture,
    schedule: Schedule,
    group: FusionGroup,
    full_sim: bool,
) -> tuple[float, dict[str, Any]]:
    members = [cascade.einsum(n) for n in group.einsums]
    terms = grouped_dram_terms(cascade, arch, schedule, group)
    full = _shape(group, members)
    specs, deps, streams = _grouped_specs(cascade, arch, schedule, group, terms, full)
    steps = sum(sp.steps for sp in specs)
    if full_sim or steps <= GROUP_FULL_SIM_STEPS or full.outer < 3:
        cycles, notes, dram = _run(arch, specs, deps, streams, full_sim)
        return cycles, {
            "steps": steps,
            "extrapolated": False,
            "events": notes["events"],
            "contention": notes["contention"],
            "dram_bytes": dram,
        }
    a, b = min(full.m1, 2), min(full.m1, 3)
    t: dict[tuple[int, int], float] = {}
    events = 0
    for o, m in ((1, a), (1, b), (2, a), (2, b)):
        if (o, m) in t:
            continue
        sp, d, st = _grouped_specs(
            cascade, arch, schedule, group, terms, replace(full, outer=o, m1=m)
        )
        t[o, m], notes, _ = _run(arch, sp, d, st, False)
        events += notes["events"]
    c0, c1, c2 = _fit(t, a, b)
    check = c0 + 2 * (c1 + b * c2)
    cycles = c0 + full.outer * (c1 + full.m1 * c2)
    dram: dict[str, float] = {}
    for sp in specs:  # the whole group's, as the runs move it per block
        for tensor, nbytes, _w, _p in sp.dram:
            dram[tensor] = dram.get(tensor, 0.0) + nbytes
    return cycles, {
        "steps": steps,
        "extrapolated": True,
        "events": events,
        "simulated": {f"outer={o},m1={m}": v for (o, m), v in t.items()},
        "check_error": abs(check - t[2, b]) / t[2, b] if t[2, b] else 0.0,
        "dram_bytes": dram,
    }


def simulate_schedule(
    cascade: Cascade, arch: Architecture, schedule: Schedule, *, full_sim: bool = False
) -> Metrics:
    """Simulate ``schedule`` group by group (see the module doc).

    Returns the cost model's Metrics (:func:`sim.analytical.cascade.evaluate_schedule`)
    with the simulated latency, the leakage energy and utilisation that
    follow from it, ``model="des"``, and per group in ``notes["groups"]``:
    steps, events, whether it was extrapolated, the contention the engine
    measured and the DRAM bytes it moved. ``full_sim`` simulates every step
    of every group (bounded by the engine's event budget).
    """
    from sim.analytical.cascade import evaluate_schedule

    base = evaluate_schedule(cascade, arch, schedule)
    cycles = 0.0
    groups: list[dict[str, Any]] = []
    if is_generic(schedule):
        for specs, deps, streams in _generic_specs(cascade, arch, schedule):
            c, notes, dram = _run(arch, specs, deps, streams, full_sim)
            cycles += c
            groups.append(
                {
                    "einsums": [specs[0].einsum.name],
                    "cycles": c,
                    "events": notes["events"],
                    "contention": notes["contention"],
                    "dram_bytes": dram,
                }
            )
    else:
        for g in schedule.groups:
            c, info = _simulate_group(cascade, arch, schedule, g, full_sim)
            cycles += c
            groups.append({"einsums": list(g.einsums), "cycles": c, **info})
    dram: dict[str, float] = {}
    for g in groups:
        for tensor, nbytes in g["dram_bytes"].items():
            dram[tensor] = dram.get(tensor, 0.0) + nbytes
    traffic = dict(base.traffic_bytes)
    traffic[arch.levels[0].name] = dram
    ratio = cycles / base.cycles if base.cycles else 1.0
    breakdown = dict(base.energy_breakdown_pj)
    leak = breakdown.get("leakage", 0.0) * ratio
    energy = base.energy_pj - breakdown.get("leakage", 0.0) + leak
    breakdown["leakage"] = leak
    util = {u: v / ratio for u, v in base.utilization.items()}
    notes = dict(base.notes)
    notes.update({"groups": groups, "analytical_cycles": base.cycles})
    return replace(
        base,
        cycles=cycles,
        latency_s=cycles / arch.clock_hz,
        energy_pj=energy,
        energy_breakdown_pj=breakdown,
        utilization=util,
        traffic_bytes=traffic,
        model="des",
        notes=notes,
    )

"""Analytical cost of a scheduled cascade (fusion groups on spatial arrays).

The model works at the granularity of fusion groups (see
:mod:`mappers.schedule`). Per Einsum ``e`` bound to unit ``u``:

    cycles_e = sum over operator classes c of ops_e[c] / (PEs_u * rate_u[c])

Group timing, by kind of group:

* **generic** (``pipelined=False``, no streamed rank): the group's Einsums run
  one after another, each overlapping its own DRAM transfers with compute:
  ``sum_e max(cycles_e, dram_e / bw)``. This is exactly the objective of the
  fusion ILP (:func:`mappers.cascade.fusion.evaluate`).
* **pipelined across tiles** (FLAT: intermediates double-buffered in the
  global buffer): the units work on different tiles at once, so the group
  takes ``max_u W_u`` plus one tile of pipeline fill, where ``W_u`` is the
  unit's total work.
* **streamed** (FuseMax: a rank such as ``m1`` is streamed inside each tile,
  the running state lives in the units' registers): per tile, the body
  (Einsums that iterate the streamed rank) runs pipelined across units, and
  the epilogue (Einsums that do not, such as the final division) runs after
  it, because the next tile reuses the same registers.

Then ``group time = max(compute time, group DRAM bytes / bandwidth)``
(double-buffered DMA overlaps compute).

Energy = sum of ops x energy per op on the bound unit + DRAM bytes x energy
per byte + global-buffer traffic x energy per byte + register traffic for
intermediates handed over inside one unit + leakage x time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from hw_models.arch import Architecture, ComputeUnit
from mappers.cascade.fusion import FusionProblem, Intermediate
from mappers.cascade.fusion import evaluate as fusion_evaluate
from mappers.schedule import (
    OUTER_RANKS,
    FusionGroup,
    Schedule,
    ScheduleError,
    default_binding,
    later_pass_readers,
)
from sim.metrics import Metrics
from workloads.ir import Cascade, Einsum

# ------------------------------------------------------------------ binding


def einsum_cycles(e: Einsum, unit: ComputeUnit) -> float:
    """Cycles the unit needs for the Einsum's operations (full parallelism)."""
    cycles = 0.0
    for cls, n in e.op_counts().items():
        if n == 0:
            continue
        rate = unit.ops_per_cycle.get(cls, 0.0)
        if rate <= 0:
            raise ScheduleError(
                f"Einsum {e.name} needs {cls} operations but unit {unit.name} "
                f"does not support them (rates: {sorted(unit.ops_per_cycle)})"
            )
        cycles += n / (unit.pes * rate)
    return cycles


def einsum_ops_energy_pj(e: Einsum, unit: ComputeUnit) -> float:
    return sum(n * unit.energy_pj_per_op.get(cls, 0.0) for cls, n in e.op_counts().items())


# ------------------------------------------------------------ arch helpers


@dataclass(frozen=True)
class _ArchTerms:
    dram: str
    buffer: str
    rf: str | None
    capacity_bytes: float
    dram_bytes_per_cycle: float
    dram_pj_per_byte: float
    buffer_pj_per_byte: float
    rf_pj_per_byte: float
    leakage_w: float


def arch_terms(arch: Architecture) -> _ArchTerms:
    levels = arch.levels
    if len(levels) < 2:
        raise ScheduleError(
            f"architecture {arch.name} needs an off-chip level and an on-chip buffer "
            f"for cascade scheduling (it has {[lv.name for lv in levels]})"
        )
    dram, buf = levels[0], levels[1]
    rf = levels[2] if len(levels) > 2 else None

    def per_byte(lv, write: bool = False) -> float:
        word_bytes = lv.word_bits / 8
        e = lv.write_energy_pj_per_word if write else lv.read_energy_pj_per_word
        return e / word_bytes

    bw = dram.read_bw_bytes_per_cycle
    if bw <= 0:
        raise ScheduleError(f"level {dram.name} of {arch.name} has no bandwidth")
    return _ArchTerms(
        dram=dram.name,
        buffer=buf.name,
        rf=rf.name if rf else None,
        capacity_bytes=float(buf.capacity_bytes or math.inf),
        dram_bytes_per_cycle=bw,
        dram_pj_per_byte=0.5 * (per_byte(dram) + per_byte(dram, True)),
        buffer_pj_per_byte=0.5 * (per_byte(buf) + per_byte(buf, True)),
        rf_pj_per_byte=(0.5 * (per_byte(rf) + per_byte(rf, True)) if rf else 0.0),
        leakage_w=arch.leakage_w,
    )


# -------------------------------------------------------- fusion problem


def _producers(cascade: Cascade) -> dict[str, int]:
    order = {e.name: i for i, e in enumerate(cascade.einsums)}
    prod: dict[str, int] = {}
    for e in cascade.einsums:
        prod.setdefault(e.output.tensor, order[e.name])
    return prod


def build_fusion_problem(
    cascade: Cascade,
    arch: Architecture,
    binding: dict[str, str] | None = None,
    *,
    tiled_rank: str = "",
    tile_counts: Iterable[int] = (1,),
) -> FusionProblem:
    """Cost terms of ``cascade`` on ``arch`` for the fusion ILP (fixed order)."""
    binding = binding or default_binding(cascade, arch)
    terms = arch_terms(arch)
    einsums = cascade.einsums
    index = {e.name: i for i, e in enumerate(einsums)}
    prod = _producers(cascade)
    external = set(cascade.inputs) | set(cascade.outputs)
    compute = []
    io = []
    untiled = []
    fixed = 0.0
    for e in einsums:
        unit = arch.unit(binding[e.name])
        compute.append(einsum_cycles(e, unit))
        fixed += einsum_ops_energy_pj(e, unit)
        b = 0.0
        w = 0.0
        seen = set()
        for acc in e.inputs:
            t = acc.tensor
            if t in seen or t == e.output.tensor:
                continue
            seen.add(t)
            if t in cascade.inputs:
                size = cascade.tensor(t).bytes
                b += size
                if tiled_rank and tiled_rank not in cascade.tensor(t).ranks:
                    w += size
        if e.output.tensor in cascade.outputs and prod.get(e.output.tensor) == index[e.name]:
            b += cascade.tensor(e.output.tensor).bytes
        io.append(b)
        untiled.append(w)
    inter = []
    for t in cascade.intermediates:
        if t in external:
            continue
        consumers = sorted(
            {
                index[e.name]
                for e in einsums
                if any(a.tensor == t for a in e.inputs) and e.output.tensor != t
            }
        )
        if not consumers:
            continue
        tensor = cascade.tensor(t)
        inter.append(
            Intermediate(
                name=t,
                producer=prod[t],
                consumers=tuple(consumers),
                bytes=tensor.bytes,
                tiled=bool(tiled_rank) and tiled_rank in tensor.ranks,
            )
        )
    return FusionProblem(
        einsums=tuple(e.name for e in einsums),
        compute_cycles=tuple(compute),
        io_bytes=tuple(io),
        untiled_input_bytes=tuple(untiled),
        intermediates=tuple(inter),
        capacity_bytes=terms.capacity_bytes,
        dram_bytes_per_cycle=terms.dram_bytes_per_cycle,
        dram_pj_per_byte=terms.dram_pj_per_byte,
        buffer_pj_per_byte=terms.buffer_pj_per_byte,
        fixed_energy_pj=fixed,
        static_pj_per_cycle=terms.leakage_w / arch.clock_hz * 1e12,
        tile_counts=tuple(tile_counts),
    )


def schedule_from_fusion(
    cascade: Cascade,
    problem: FusionProblem,
    keep: tuple[bool, ...],
    tiles: int,
    binding: dict[str, str],
    *,
    method: str,
    tiled_rank: str = "",
    buffer: str = "GlobalBuffer",
    solver: dict[str, float] | None = None,
) -> Schedule:
    from mappers.cascade.fusion import groups_from_keep

    groups = []
    for idx in groups_from_keep(problem, keep):
        names = tuple(problem.einsums[i] for i in idx)
        groups.append(
            FusionGroup(
                einsums=names,
                keep_level=buffer,
                tiled_rank=tiled_rank if len(names) > 1 else "",
                tile=tiles if len(names) > 1 else 0,
                pipelined=False,
            )
        )
    residency = {
        t.name: (buffer if k else "DRAM") for t, k in zip(problem.intermediates, keep, strict=True)
    }
    return Schedule(
        cascade=cascade.name,
        order=problem.einsums,
        groups=tuple(groups),
        binding=dict(binding),
        residency=residency,
        method=method,
        solver=dict(solver or {}),
    )


# ---------------------------------------------------------- schedule cost


def evaluate_schedule(cascade: Cascade, arch: Architecture, schedule: Schedule) -> Metrics:
    """Cost a scheduled cascade; returns the same Metrics as the per-Einsum model."""
    terms = arch_terms(arch)
    if is_generic(schedule):
        return _evaluate_generic(cascade, arch, schedule, terms)
    return _evaluate_grouped(cascade, arch, schedule, terms)


def is_generic(schedule: Schedule) -> bool:
    """A schedule of the fusion problem's kind (Einsums one after another,
    each overlapping its own DRAM transfers), not of pipelined, streamed or
    buffer-tiled groups."""
    return all(
        not g.pipelined and not g.streamed_rank and not g.buffer_bytes_per_tile
        for g in schedule.groups
    )


def generic_problem(
    cascade: Cascade, arch: Architecture, schedule: Schedule
) -> tuple[FusionProblem, tuple[bool, ...], int]:
    """The fusion problem of a generic schedule, its keep decisions and tiles."""
    tiled = next((g.tiled_rank for g in schedule.groups if g.tiled_rank), "")
    tiles = next((g.tile for g in schedule.groups if g.tiled_rank), 1) or 1
    p = build_fusion_problem(
        cascade, arch, schedule.binding, tiled_rank=tiled, tile_counts=(tiles,)
    )
    keep = tuple(schedule.residency.get(t.name, "DRAM") != "DRAM" for t in p.intermediates)
    return p, keep, tiles


def _evaluate_generic(
    cascade: Cascade, arch: Architecture, schedule: Schedule, terms: _ArchTerms
) -> Metrics:
    p, keep, tiles = generic_problem(cascade, arch, schedule)
    cost = fusion_evaluate(p, keep, tiles)
    # utilisation and breakdown
    busy: dict[str, float] = {u.name: 0.0 for u in arch.compute}
    ops_pj: dict[str, float] = {}
    for e in cascade.einsums:
        unit = arch.unit(schedule.binding[e.name])
        busy[unit.name] += einsum_cycles(e, unit)
        ops_pj[unit.name] = ops_pj.get(unit.name, 0.0) + einsum_ops_energy_pj(e, unit)
    kept_bytes = sum(
        t.bytes * (1 + len(t.consumers)) for t, k in zip(p.intermediates, keep, strict=True) if k
    )
    breakdown = {f"{u}.ops": v for u, v in ops_pj.items()}
    breakdown[terms.dram] = cost.dram_bytes * terms.dram_pj_per_byte
    breakdown[terms.buffer] = (kept_bytes + cost.dram_bytes) * terms.buffer_pj_per_byte
    breakdown["leakage"] = p.static_pj_per_cycle * cost.latency_cycles
    return _metrics(
        arch,
        cost.latency_cycles,
        breakdown,
        dram_bytes=cost.dram_bytes,
        buffer_bytes=kept_bytes + cost.dram_bytes,
        busy=busy,
        notes={"schedule": schedule.method, "groups": len(schedule.groups)},
    )


def _rank_sizes(members: list[Einsum]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for e in members:
        sizes.update(e.rank_sizes)
    return sizes


@dataclass(frozen=True)
class DramTerm:
    """A tensor's DRAM traffic in a fused group (grouped schedules)."""

    tensor: str
    #: times the whole tensor is read from / written to DRAM
    reads: int
    writes: int
    #: "input" (with the tiled rank, read once), "resident" (without it, kept
    #: in the buffer for all tiles), "reread" (without it, read once per
    #: buffer tile), "output" (written once), "spill" (an intermediate
    #: written once and reloaded by its later-pass consumers)
    kind: str = "input"


def group_dram_terms(
    cascade: Cascade, schedule: Schedule, group: FusionGroup, room_bytes: float
) -> list[DramTerm]:
    """Every DRAM transfer of a grouped schedule's group, tensor by tensor.

    Inputs that carry the tiled rank are read once. Inputs that lack it are
    read once per buffer tile, unless their slice for one iteration of the
    outer (batch) ranks fits in ``room_bytes``, the buffer left next to the
    tiles; then they stay resident and are read once. Outputs (and tensors
    consumed outside the group) are written once. A spilled intermediate is
    written once and reloaded by each consumer in a later pass
    (:func:`mappers.schedule.later_pass_readers`).
    """
    names = set(group.einsums)
    members = [e for e in cascade.einsums if e.name in names]
    produced = {e.output.tensor for e in members}
    sizes = _rank_sizes(members)
    n_buffer_tiles = 1
    if group.tiled_rank:
        per_buffer = group.buffer_tile or group.tile
        n_buffer_tiles = math.ceil(sizes.get(group.tiled_rank, 1) / max(1, per_buffer))
    out: list[DramTerm] = []
    seen: set[str] = set()
    for e in members:
        for acc in e.inputs:
            t = acc.tensor
            if t in produced or t in seen:
                continue
            seen.add(t)
            tensor = cascade.tensor(t)
            if not group.tiled_rank or group.tiled_rank in tensor.ranks:
                out.append(DramTerm(t, 1, 0))
                continue
            outer = math.prod(sizes.get(r, 1) for r in tensor.ranks if r in OUTER_RANKS)
            slice_bytes = tensor.bytes / max(1, outer)
            if slice_bytes <= room_bytes:
                room_bytes -= slice_bytes
                out.append(DramTerm(t, 1, 0, "resident"))
            else:
                out.append(DramTerm(t, n_buffer_tiles, 0, "reread"))
    for e in members:
        t = e.output.tensor
        outside = any(
            any(a.tensor == t for a in x.inputs) for x in cascade.einsums if x.name not in names
        )
        if t in cascade.outputs or outside:
            out.append(DramTerm(t, 0, 1, "output"))
            continue
        consumers = [x for x in members if x is not e and any(a.tensor == t for a in x.inputs)]
        if consumers and schedule.residency.get(t) == "DRAM":
            reload = later_pass_readers(cascade, t, [x.name for x in consumers], group.tiled_rank)
            if reload:
                out.append(DramTerm(t, len(reload), 1, "spill"))
    return out


def grouped_dram_terms(
    cascade: Cascade, arch: Architecture, schedule: Schedule, group: FusionGroup
) -> list[DramTerm]:
    """:func:`group_dram_terms` with the buffer left next to the group's tiles
    (two slots of them when pipelined); raises when the tiles do not fit."""
    terms = arch_terms(arch)
    need = (2 if group.pipelined else 1) * group.buffer_bytes_per_tile
    if need > terms.capacity_bytes:
        raise ScheduleError(
            f"the tiles of group {list(group.einsums)} need {need:.0f} B in {terms.buffer} "
            f"but it holds {terms.capacity_bytes:.0f} B; use a smaller tile of "
            f"{group.tiled_rank or 'the tiled rank'}"
        )
    return group_dram_terms(cascade, schedule, group, terms.capacity_bytes - need)


def _group_buffer_bytes(cascade: Cascade, group: FusionGroup, terms: list[DramTerm]) -> float:
    """Buffer traffic of a group's external operands: every DRAM byte passes
    the buffer once, and inputs without the tiled rank are streamed from the
    buffer into the units once per pass tile."""
    sizes = _rank_sizes([cascade.einsum(n) for n in group.einsums])
    n_pass_tiles = 1
    if group.tiled_rank:
        n_pass_tiles = math.ceil(sizes.get(group.tiled_rank, 1) / max(1, group.tile))
    buf = 0.0
    for term in terms:
        size = cascade.tensor(term.tensor).bytes
        if term.kind in ("resident", "reread"):
            buf += size * n_pass_tiles
        elif term.kind in ("input", "output"):
            buf += size
    return buf


def _evaluate_grouped(
    cascade: Cascade, arch: Architecture, schedule: Schedule, terms: _ArchTerms
) -> Metrics:
    total_cycles = 0.0
    dram_bytes = 0.0
    buffer_bytes = 0.0
    rf_bytes = 0.0
    busy: dict[str, float] = {u.name: 0.0 for u in arch.compute}
    ops_pj: dict[str, float] = {}
    notes: dict[str, float | str] = {"schedule": schedule.method}
    reread_total = 0.0
    for g in schedule.groups:
        members = [cascade.einsum(n) for n in g.einsums]
        work: dict[str, float] = {}
        body: dict[str, float] = {}
        epi: dict[str, float] = {}
        for e in members:
            unit = arch.unit(schedule.binding[e.name])
            c = einsum_cycles(e, unit)
            work[unit.name] = work.get(unit.name, 0.0) + c
            busy[unit.name] += c
            ops_pj[unit.name] = ops_pj.get(unit.name, 0.0) + einsum_ops_energy_pj(e, unit)
            if g.streamed_rank and g.streamed_rank not in e.rank_sizes:
                epi[unit.name] = epi.get(unit.name, 0.0) + c
            else:
                body[unit.name] = body.get(unit.name, 0.0) + c
        sizes = _rank_sizes(members)
        n_pass_tiles = 1
        if g.tiled_rank:
            n_pass_tiles = math.ceil(sizes.get(g.tiled_rank, 1) / max(1, g.tile))
        if g.streamed_rank:
            # per tile: body pipelined across units, then the epilogue
            compute = max(body.values(), default=0.0) + max(epi.values(), default=0.0)
        elif g.pipelined and len(work) > 1:
            longest = max(work.values())
            # units overlap on different tiles; one tile of fill/drain
            compute = longest + (sum(work.values()) - longest) / max(1, n_pass_tiles)
        else:
            compute = sum(work.values())
        dram_terms = grouped_dram_terms(cascade, arch, schedule, g)
        g_dram = sum(cascade.tensor(x.tensor).bytes * (x.reads + x.writes) for x in dram_terms)
        reread_total += sum(
            cascade.tensor(x.tensor).bytes * (x.reads - 1) for x in dram_terms if x.kind == "reread"
        )
        dram_bytes += g_dram
        buffer_bytes += _group_buffer_bytes(cascade, g, dram_terms)
        # intermediates inside the group: registers when producer and all
        # consumers sit on one unit of a streamed group, else the buffer (a
        # spilled one too: consumers in the producer's pass take it on chip)
        for e in members:
            t = e.output.tensor
            consumers = [x for x in members if x is not e and any(a.tensor == t for a in x.inputs)]
            if not consumers:
                continue
            size = cascade.tensor(t).bytes
            if schedule.residency.get(t) == "DRAM":
                buffer_bytes += size * (1 + len(consumers))
                continue
            same_unit = all(schedule.binding[x.name] == schedule.binding[e.name] for x in consumers)
            if g.streamed_rank and same_unit:
                rf_bytes += size * (1 + len(consumers))
            else:
                buffer_bytes += size * (1 + len(consumers))
        total_cycles += max(compute, g_dram / terms.dram_bytes_per_cycle)
    notes["dram_reread_bytes"] = reread_total
    breakdown = {f"{u}.ops": v for u, v in ops_pj.items()}
    breakdown[terms.dram] = dram_bytes * terms.dram_pj_per_byte
    breakdown[terms.buffer] = buffer_bytes * terms.buffer_pj_per_byte
    if terms.rf:
        breakdown[terms.rf] = rf_bytes * terms.rf_pj_per_byte
    breakdown["leakage"] = terms.leakage_w * total_cycles / arch.clock_hz * 1e12
    return _metrics(
        arch,
        total_cycles,
        breakdown,
        dram_bytes=dram_bytes,
        buffer_bytes=buffer_bytes,
        busy=busy,
        notes=notes,
    )


def _metrics(
    arch: Architecture,
    cycles: float,
    breakdown: dict[str, float],
    *,
    dram_bytes: float,
    buffer_bytes: float,
    busy: dict[str, float],
    notes: dict,
) -> Metrics:
    terms = arch_terms(arch)
    util = {u: (b / cycles if cycles > 0 else 0.0) for u, b in busy.items()}
    return Metrics(
        cycles=cycles,
        latency_s=cycles / arch.clock_hz,
        energy_pj=sum(breakdown.values()),
        energy_breakdown_pj=breakdown,
        traffic_bytes={terms.dram: {"total": dram_bytes}, terms.buffer: {"total": buffer_bytes}},
        utilization=util,
        compute_cycles=max(busy.values(), default=0.0),
        model="analytical-cascade",
        notes=notes,
    )

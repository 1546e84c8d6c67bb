"""Cascade-level fusion and residency: an ILP on CP-SAT and its baselines.

The problem (:class:`FusionProblem`) is time-indexed residency with a fixed
Einsum order: each intermediate tensor either stays on chip from its producer
to its last consumer (``keep = 1``: the Einsums around it are fused) or is
spilled to DRAM (written once, reloaded by every consumer). At every step
the kept, live intermediates plus the step's own working set must fit the
buffer. Fusing an Einsum into a group tiled on a rank into ``T`` tiles cuts
the kept intermediates to one tile each, but re-reads the group's inputs that
lack that rank ``T`` times; the solver is run for each candidate tile count
and the best is kept, so tiling and fusion are decided together and the
tiles of fused Einsums agree on the tiled rank.

Costs per Einsum ``i`` (the same terms the cascade cost model uses):

* ``dram_i = io_i + sum(spilled tensors it writes or reads) + (T-1) * w_i * fused_i``
* ``latency = sum_i max(compute_i, dram_i / bw)`` (DMA overlaps compute)
* ``energy = fixed + dram_pj * sum_i dram_i + buf_pj * (kept traffic + DRAM bytes) + static_pj * latency``
  (every DRAM byte also passes through the buffer once)

Objectives: ``latency``, ``energy``, ``edp``, ``dram_traffic``.
Mappers never import ``sim``: the caller builds the problem's cost terms.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from mappers.schedule import ScheduleError

OBJECTIVES = ("latency", "energy", "edp", "dram_traffic")

#: beyond this many Einsums the problem is solved in segments
SEGMENT_EINSUMS = 30

#: spaces of at most this many (keep pattern, tile count) points are also
#: enumerated, which gives the ILP's result an exact bound
EXACT_POINTS = 1 << 12


@dataclass(frozen=True)
class Intermediate:
    name: str
    producer: int
    consumers: tuple[int, ...]
    bytes: float
    #: the tensor has the tiled rank, so a tile holds bytes / T
    tiled: bool = True


@dataclass(frozen=True)
class FusionProblem:
    einsums: tuple[str, ...]
    compute_cycles: tuple[float, ...]
    #: compulsory DRAM bytes of each Einsum (cascade inputs read, outputs written)
    io_bytes: tuple[float, ...]
    #: bytes of each Einsum's cascade inputs that lack the tiled rank
    #: (re-read once per tile when the Einsum is fused into a tiled group)
    untiled_input_bytes: tuple[float, ...]
    intermediates: tuple[Intermediate, ...]
    capacity_bytes: float
    dram_bytes_per_cycle: float
    #: on-chip working set each Einsum needs for itself (double-buffered tiles)
    work_bytes: tuple[float, ...] = ()
    dram_pj_per_byte: float = 0.0
    buffer_pj_per_byte: float = 0.0
    fixed_energy_pj: float = 0.0
    static_pj_per_cycle: float = 0.0
    #: tile counts to try for the shared tiled rank
    tile_counts: tuple[int, ...] = (1,)


@dataclass(frozen=True)
class FusionCost:
    latency_cycles: float
    energy_pj: float
    dram_bytes: float

    def objective(self, name: str) -> float:
        if name == "latency":
            return self.latency_cycles
        if name == "energy":
            return self.energy_pj
        if name == "edp":
            return self.latency_cycles * self.energy_pj
        if name == "dram_traffic":
            return self.dram_bytes
        raise ScheduleError(f"unknown objective {name!r}; expected one of {', '.join(OBJECTIVES)}")


@dataclass(frozen=True)
class FusionResult:
    keep: tuple[bool, ...]
    tiles: int
    cost: FusionCost
    objective: str
    objective_value: float
    bound: float
    gap: float
    solve_time_s: float
    method: str
    status: str = "OPTIMAL"
    notes: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------- costs


def _fused_flags(p: FusionProblem, keep: Sequence[bool]) -> list[bool]:
    fused = [False] * len(p.einsums)
    for t, k in zip(p.intermediates, keep, strict=True):
        if k:
            fused[t.producer] = True
            for c in t.consumers:
                fused[c] = True
    return fused


def live_steps(t: Intermediate) -> range:
    return range(t.producer, max(t.consumers) + 1)


def footprint(t: Intermediate, tiles: int) -> float:
    return t.bytes / tiles if t.tiled else t.bytes


def feasible(p: FusionProblem, keep: Sequence[bool], tiles: int) -> bool:
    work = p.work_bytes or (0.0,) * len(p.einsums)
    load = list(work)
    for t, k in zip(p.intermediates, keep, strict=True):
        if k:
            for s in live_steps(t):
                load[s] += footprint(t, tiles)
    return all(x <= p.capacity_bytes * (1 + 1e-12) for x in load)


def evaluate(p: FusionProblem, keep: Sequence[bool], tiles: int = 1) -> FusionCost:
    """Exact cost of a residency decision (what the ILP optimises)."""
    dram = list(p.io_bytes)
    fused = _fused_flags(p, keep)
    kept_traffic = 0.0
    for t, k in zip(p.intermediates, keep, strict=True):
        if k:
            kept_traffic += t.bytes * (1 + len(t.consumers))
        else:
            dram[t.producer] += t.bytes
            for c in t.consumers:
                dram[c] += t.bytes
    for i, f in enumerate(fused):
        if f:
            dram[i] += (tiles - 1) * p.untiled_input_bytes[i]
    latency = sum(
        max(c, d / p.dram_bytes_per_cycle) for c, d in zip(p.compute_cycles, dram, strict=True)
    )
    dram_total = sum(dram)
    energy = (
        p.fixed_energy_pj
        + p.dram_pj_per_byte * dram_total
        + p.buffer_pj_per_byte * (kept_traffic + dram_total)
        + p.static_pj_per_cycle * latency
    )
    return FusionCost(latency, energy, dram_total)


def _result(
    p: FusionProblem,
    keep: Sequence[bool],
    tiles: int,
    objective: str,
    method: str,
    t0: float,
    bound: float | None = None,
    status: str = "OPTIMAL",
) -> FusionResult:
    cost = evaluate(p, keep, tiles)
    value = cost.objective(objective)
    b = value if bound is None else min(bound, value)
    gap = 0.0 if value <= 0 else max(0.0, (value - b) / value)
    return FusionResult(
        tuple(bool(k) for k in keep),
        tiles,
        cost,
        objective,
        value,
        b,
        gap,
        time.perf_counter() - t0,
        method,
        status,
    )


def relaxation_bound(p: FusionProblem, objective: str) -> float:
    """A lower bound on ``objective`` over every keep pattern and tile count,
    from the cost terms alone (no solver): each Einsum moves at least its
    compulsory bytes (every intermediate kept, no re-reads, capacity
    ignored), so ``latency >= sum_i max(compute_i, io_i / bw)``; each
    intermediate costs at least its kept traffic on the buffer (a spill
    adds DRAM energy on top); EDP is the product of the two bounds."""
    bw = p.dram_bytes_per_cycle
    lat = sum(max(c, d / bw) for c, d in zip(p.compute_cycles, p.io_bytes, strict=True))
    io = sum(p.io_bytes)
    kept = sum(t.bytes * (1 + len(t.consumers)) for t in p.intermediates)
    energy = (
        p.fixed_energy_pj
        + (p.dram_pj_per_byte + p.buffer_pj_per_byte) * io
        + p.buffer_pj_per_byte * kept
        + p.static_pj_per_cycle * lat
    )
    return FusionCost(lat, energy, io).objective(objective)


# ----------------------------------------------------------------- baselines


def unfused(p: FusionProblem, objective: str = "edp") -> FusionResult:
    """Every intermediate through DRAM."""
    t0 = time.perf_counter()
    keep = [False] * len(p.intermediates)
    if not feasible(p, keep, 1):
        _explain_infeasible(p)
    return _result(p, keep, 1, objective, "unfused", t0)


def greedy(p: FusionProblem, objective: str = "edp") -> FusionResult:
    """Walk the order; keep each intermediate if it still fits (largest first
    among those produced at the same step), for each tile count; best wins."""
    t0 = time.perf_counter()
    best: tuple[float, list[bool], int] | None = None
    for tiles in p.tile_counts:
        keep = [False] * len(p.intermediates)
        if not feasible(p, keep, tiles):
            continue
        for j in sorted(
            range(len(p.intermediates)),
            key=lambda j: (p.intermediates[j].producer, -p.intermediates[j].bytes),
        ):
            keep[j] = True
            if not feasible(p, keep, tiles):
                keep[j] = False
        value = evaluate(p, keep, tiles).objective(objective)
        if best is None or value < best[0]:
            best = (value, keep, tiles)
    if best is None:
        _explain_infeasible(p)
    return _result(p, best[1], best[2], objective, "greedy", t0)


def exhaustive(p: FusionProblem, objective: str = "edp", limit: int = 1 << 16) -> FusionResult:
    """Try every keep pattern and tile count (small cascades only)."""
    n = len(p.intermediates)
    if (1 << n) * len(p.tile_counts) > limit:
        raise ScheduleError(
            f"exhaustive fusion search over {n} intermediates x {len(p.tile_counts)} tile "
            f"counts is {(1 << n) * len(p.tile_counts)} points, over the limit {limit}; "
            "use the ILP"
        )
    t0 = time.perf_counter()
    best: tuple[float, tuple[bool, ...], int] | None = None
    for tiles in p.tile_counts:
        for keep in itertools.product((False, True), repeat=n):
            if not feasible(p, keep, tiles):
                continue
            value = evaluate(p, keep, tiles).objective(objective)
            if best is None or value < best[0] - 1e-12 * abs(value):
                best = (value, keep, tiles)
    if best is None:
        _explain_infeasible(p)
    return _result(p, best[1], best[2], objective, "exhaustive", t0)


def _explain_infeasible(p: FusionProblem) -> None:
    work = p.work_bytes or (0.0,) * len(p.einsums)
    i = max(range(len(work)), key=lambda i: work[i])
    raise ScheduleError(
        f"Einsum {p.einsums[i]} needs {work[i]:.0f} B of working set on chip but the "
        f"buffer holds {p.capacity_bytes:.0f} B, even with every intermediate spilled to DRAM"
    )


# ----------------------------------------------------------------------- ILP


def solve_ilp(
    p: FusionProblem,
    objective: str = "edp",
    *,
    time_limit_s: float = 10.0,
    workers: int = 2,
    seed: int = 0,
    hint: Sequence[bool] | None = None,
) -> FusionResult:
    """Solve the residency ILP with CP-SAT for every tile count; keep the best.

    Cascades longer than :data:`SEGMENT_EINSUMS` are solved in segments of
    consecutive Einsums (intermediates crossing a segment boundary are
    decided by the segment that produces them), warm-started with greedy.
    """
    if objective not in OBJECTIVES:
        raise ScheduleError(
            f"unknown objective {objective!r}; expected one of {', '.join(OBJECTIVES)}"
        )
    t0 = time.perf_counter()
    if len(p.einsums) > SEGMENT_EINSUMS:
        return _solve_segmented(p, objective, time_limit_s, workers, seed)
    warm = greedy(p, objective)
    best: FusionResult | None = None
    per_tile_limit = max(0.5, time_limit_s / max(1, len(p.tile_counts)))
    for tiles in p.tile_counts:
        if not feasible(p, [False] * len(p.intermediates), tiles):
            continue
        h = hint if hint is not None else (warm.keep if warm.tiles == tiles else None)
        res = _solve_one(p, objective, tiles, per_tile_limit, workers, seed, h)
        if res is None:
            continue
        keep, status = res
        r = _result(p, keep, tiles, objective, "ilp", t0, status=status)
        if best is None or r.objective_value < best.objective_value:
            best = r
    # never worse than the warm start (feasible: greedy raises otherwise),
    # which also stands in where CP-SAT found nothing in its budget
    if best is None or warm.objective_value < best.objective_value:
        best = replace(warm, method="ilp", status="FEASIBLE")
    # CP-SAT's own bound is over its integer model, whose byte and energy
    # coefficients are rounded: it is not a bound on the true costs. The
    # bound is the space's exact optimum where it can be enumerated, else
    # the cost terms' relaxation.
    bound, status = relaxation_bound(p, objective), "FEASIBLE"
    if (1 << len(p.intermediates)) * len(p.tile_counts) <= EXACT_POINTS:
        exact = exhaustive(p, objective, limit=EXACT_POINTS)
        if exact.objective_value < best.objective_value:
            best = replace(exact, method="ilp")
        bound, status = exact.objective_value, "OPTIMAL"
    value = best.objective_value
    bound = min(bound, value)
    gap = 0.0 if value <= 0 else max(0.0, (value - bound) / value)
    return replace(
        best,
        bound=bound,
        gap=gap,
        status=status if gap == 0 else "FEASIBLE",
        solve_time_s=time.perf_counter() - t0,
    )


def _solve_one(
    p: FusionProblem,
    objective: str,
    tiles: int,
    time_limit_s: float,
    workers: int,
    seed: int,
    hint: Sequence[bool] | None,
) -> tuple[list[bool], str] | None:
    from ortools.sat.python import cp_model

    n_e = len(p.einsums)
    # integer units: bytes scaled so the largest per-Einsum figure is ~1e6
    scale_b = max(1.0, max(list(p.io_bytes) + [t.bytes for t in p.intermediates] + [1.0]) / 1e6)
    bw = p.dram_bytes_per_cycle
    scale_c = max(
        1.0, max(list(p.compute_cycles) + [sum(p.io_bytes) / bw if bw else 0.0, 1.0]) / 1e6
    )

    def b(x: float) -> int:  # bytes -> integer units, rounded up (conservative)
        return int(math.ceil(x / scale_b - 1e-9))

    m = cp_model.CpModel()
    keep = [m.NewBoolVar(f"keep_{t.name}") for t in p.intermediates]
    fused = [m.NewBoolVar(f"fused_{e}") for e in p.einsums]
    for j, t in enumerate(p.intermediates):
        m.AddImplication(keep[j], fused[t.producer])
        for c in t.consumers:
            m.AddImplication(keep[j], fused[c])
    for i in range(n_e):  # fused only if some incident intermediate is kept
        inc = [
            keep[j] for j, t in enumerate(p.intermediates) if t.producer == i or i in t.consumers
        ]
        if inc:
            m.AddBoolOr(inc).OnlyEnforceIf(fused[i])
        else:
            m.Add(fused[i] == 0)

    # capacity at every step (rounded so an accepted solution always fits)
    cap_units = int(math.floor(p.capacity_bytes / scale_b + 1e-9))
    work = p.work_bytes or (0.0,) * n_e
    for s in range(n_e):
        terms = [
            b(footprint(t, tiles)) * keep[j]
            for j, t in enumerate(p.intermediates)
            if s in live_steps(t)
        ]
        m.Add(sum(terms) + b(work[s]) <= cap_units)

    # DRAM bytes per Einsum (integer units)
    dram = []
    for i in range(n_e):
        expr = b(p.io_bytes[i]) + b((tiles - 1) * p.untiled_input_bytes[i]) * fused[i]
        for j, t in enumerate(p.intermediates):
            if t.producer == i or i in t.consumers:
                mult = (1 if t.producer == i else 0) + t.consumers.count(i)
                expr = expr + b(t.bytes) * mult * (1 - keep[j])
        dram.append(expr)
    max_dram = (
        sum(b(x) for x in p.io_bytes)
        + sum(b(t.bytes) * (1 + len(t.consumers)) for t in p.intermediates)
        + sum(b((tiles - 1) * x) for x in p.untiled_input_bytes)
    )
    dram_total = m.NewIntVar(0, max_dram, "dram_total")
    m.Add(dram_total == sum(dram))

    # latency_i >= compute_i and >= dram_i / bw  (in cycle units of scale_c)
    lat = []
    cyc_per_unit = scale_b / bw / scale_c  # cycles (scaled) per byte unit
    ub_lat = int(
        sum(math.ceil(c / scale_c) for c in p.compute_cycles)
        + math.ceil(max_dram * cyc_per_unit)
        + 1
    )
    # dram_i * cyc_per_unit as an integer ratio
    num, den = _ratio(cyc_per_unit)
    for i in range(n_e):
        li = m.NewIntVar(0, ub_lat, f"lat_{i}")
        m.Add(li >= int(math.ceil(p.compute_cycles[i] / scale_c)))
        m.Add(den * li >= num * dram[i])
        lat.append(li)
    lat_total = m.NewIntVar(0, ub_lat * n_e + 1, "latency")
    m.Add(lat_total == sum(lat))

    kept_bytes = sum(
        b(t.bytes * (1 + len(t.consumers))) * keep[j] for j, t in enumerate(p.intermediates)
    )
    # energy in units of scale_e pJ
    e_fixed = p.fixed_energy_pj
    scale_e = max(
        1.0,
        (
            e_fixed
            + p.dram_pj_per_byte * max_dram * scale_b
            + p.static_pj_per_cycle * ub_lat * scale_c
        )
        / 1e7,
    )
    c_dram = p.dram_pj_per_byte * scale_b / scale_e
    c_buf = p.buffer_pj_per_byte * scale_b / scale_e
    c_stat = p.static_pj_per_cycle * scale_c / scale_e
    # CP-SAT needs integer coefficients: scale them by 1000
    k = 1000
    energy_expr = (
        int(round(k * e_fixed / scale_e))
        + int(round(k * c_dram)) * dram_total
        + int(round(k * c_buf)) * (kept_bytes + dram_total)
        + int(round(k * c_stat)) * lat_total
    )
    if objective == "dram_traffic":
        m.Minimize(dram_total)
    elif objective == "latency":
        m.Minimize(lat_total)
    elif objective == "energy":
        m.Minimize(energy_expr)
    else:  # edp: product of two integer variables
        e_ub = int(k * 1e7 * 4 + k * 10)
        e_var = m.NewIntVar(0, e_ub, "energy")
        m.Add(e_var == energy_expr)
        edp = m.NewIntVar(0, e_ub * (ub_lat * n_e + 1), "edp")
        m.AddMultiplicationEquality(edp, [e_var, lat_total])
        m.Minimize(edp)

    if hint is not None:
        for v, h in zip(keep, hint, strict=True):
            m.AddHint(v, bool(h))
    solver = cp_model.CpSolver()
    # a deterministic budget (CP-SAT's work units, about seconds on one core):
    # the same inputs give the same schedule on any machine load
    solver.parameters.max_deterministic_time = float(time_limit_s)
    solver.parameters.num_workers = int(workers)
    solver.parameters.random_seed = int(seed)
    status = solver.Solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    chosen = [bool(solver.Value(v)) for v in keep]
    return chosen, "OPTIMAL" if status == cp_model.OPTIMAL else "FEASIBLE"


def _ratio(x: float, max_den: int = 1 << 20) -> tuple[int, int]:
    from fractions import Fraction

    f = Fraction(x).limit_denominator(max_den)
    if f == 0:
        f = Fraction(1, max_den)
    return f.numerator, f.denominator


def _solve_segmented(
    p: FusionProblem, objective: str, time_limit_s: float, workers: int, seed: int
) -> FusionResult:
    """Solve consecutive segments of at most SEGMENT_EINSUMS Einsums.

    An intermediate is decided by the segment holding its producer; one whose
    consumers lie beyond the segment is forced to DRAM (a conservative,
    always-feasible choice). Starts from greedy and keeps whichever is better.
    """
    t0 = time.perf_counter()
    n = len(p.einsums)
    keep = [False] * len(p.intermediates)
    per_seg = max(0.5, time_limit_s / math.ceil(n / SEGMENT_EINSUMS))
    tiles = p.tile_counts[0]
    best_value = math.inf
    for tiles_try in p.tile_counts:
        keep_try = [False] * len(p.intermediates)
        for start in range(0, n, SEGMENT_EINSUMS):
            stop = min(n, start + SEGMENT_EINSUMS)
            idx = [
                j
                for j, t in enumerate(p.intermediates)
                if start <= t.producer < stop and max(t.consumers) < stop
            ]
            sub = _subproblem(p, start, stop, idx)
            res = _solve_one(sub, objective, tiles_try, per_seg, workers, seed, None)
            if res is None:
                continue
            for local, j in enumerate(idx):
                keep_try[j] = res[0][local]
        if not feasible(p, keep_try, tiles_try):
            continue
        value = evaluate(p, keep_try, tiles_try).objective(objective)
        if value < best_value:
            best_value, keep, tiles = value, keep_try, tiles_try
    warm = greedy(p, objective)
    if warm.objective_value < best_value:
        keep, tiles = list(warm.keep), warm.tiles
    # segments are solved one by one: no solver bound over the whole space,
    # the cost terms' relaxation bounds it
    r = _result(
        p,
        keep,
        tiles,
        objective,
        "ilp",
        t0,
        bound=relaxation_bound(p, objective),
        status="FEASIBLE",
    )
    return replace(r, notes={"segments": math.ceil(n / SEGMENT_EINSUMS)})


def _subproblem(p: FusionProblem, start: int, stop: int, idx: list[int]) -> FusionProblem:
    """The segment [start, stop) with its own intermediates; every other
    intermediate touching it is spilled, so its bytes join the io terms."""
    io = list(p.io_bytes[start:stop])
    inside = set(idx)
    for j, t in enumerate(p.intermediates):
        if j in inside:
            continue
        if start <= t.producer < stop:
            io[t.producer - start] += t.bytes
        for c in t.consumers:
            if start <= c < stop:
                io[c - start] += t.bytes
    shifted = tuple(
        replace(
            p.intermediates[j],
            producer=p.intermediates[j].producer - start,
            consumers=tuple(c - start for c in p.intermediates[j].consumers),
        )
        for j in idx
    )
    return replace(
        p,
        einsums=p.einsums[start:stop],
        compute_cycles=p.compute_cycles[start:stop],
        io_bytes=tuple(io),
        untiled_input_bytes=p.untiled_input_bytes[start:stop],
        work_bytes=(p.work_bytes[start:stop] if p.work_bytes else ()),
        intermediates=shifted,
        fixed_energy_pj=0.0,
    )


def groups_from_keep(p: FusionProblem, keep: Sequence[bool]) -> list[list[int]]:
    """Fusion groups: runs of consecutive Einsums joined by kept intermediates."""
    joined = [False] * len(p.einsums)  # joined[i]: Einsum i fused with i-1
    for t, k in zip(p.intermediates, keep, strict=True):
        if k:
            for c in t.consumers:
                for s in range(t.producer + 1, c + 1):
                    joined[s] = True
    groups: list[list[int]] = []
    for i in range(len(p.einsums)):
        if i > 0 and joined[i]:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups

"""The ILP mapper: CP-SAT over prime-factor placement (CoSA-style), then
re-ranking with the caller's cost model.

Variables (see docs/mappers.md):

* ``n[r, i, j]``: how many copies of the i-th distinct prime of rank ``r`` go
  to slot ``j`` (a level's temporal loop or a fan-out axis); the exponents of
  a rank sum to its multiplicity, so every tiling is an exact factorisation;
* ``st[l, T]``: tensor ``T`` is stationary at level ``l`` (the loops
  irrelevant to it are innermost there), which fixes the loop order;
* ``ax[l, r]``: which fan-out axis rank ``r`` uses at level ``l``.

Constraints are exact: every cumulative tile factor is an integer variable
tied to the exponents by an element constraint over the rank's divisors,
sliding-window extents are linear in them, tile sizes are their products and
buffer capacity is checked on the exact byte count, so the solver never
accepts an overflowing tile. Fan-out products are exact in the same way.

Objective: every traffic term is a product of loop factors, so its log is a
linear expression ``x`` of ``n`` (log2 of primes scaled to integers). The
linear-domain value ``2**x`` enters the objective through tangent lines of the
convex exponential (a tight under-estimator, within ~1.5 % at the grid used).
Latency is a max of such sums, energy a weighted sum, EDP the product of the
two (a CP-SAT multiplication constraint). The solver thus optimises the
surrogate of :mod:`mappers.ilp_model`; its best solutions (the solution pool
of improving solutions) are then re-ranked by the caller's cost model, loop
orders and single-factor moves are polished with that model, and the reported
objective is always the caller's model.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from hw_models.arch import Architecture
from mappers.ilp_model import innermost_keeper, op_rate, transfers, words
from mappers.ilp_space import MappingError, MapSpace
from mappers.mapping import Mapping
from mappers.search import Evaluator, Scorer, SearchResult, greedy_start
from workloads.ir import Einsum

#: log2 scale: a factor p contributes round(LOG_SCALE * log2(p)) to a log term
LOG_SCALE = 256
#: tangent grid spacing of the exponential, in log2 units (<= ~1.5 % error)
TANGENT_STEP = 0.5
#: integer range of linear objectives and of each factor of the EDP product
LINEAR_RANGE = 2**36
EDP_RANGE = 2**30


@dataclass
class _Term:
    """A log-linear term: value = coef * 2**(expr / LOG_SCALE)."""

    expr: object  # cp_model.LinearExpr
    lo: int
    hi: int


class IlpModel:
    """Builds the CP-SAT model of one Einsum on one architecture."""

    def __init__(self, space: MapSpace, objective: str) -> None:
        from ortools.sat.python import cp_model

        self.cp_model = cp_model
        self.space = space
        self.objective = objective
        self.m = cp_model.CpModel()
        sp = space
        m = self.m
        self.lg: dict[int, int] = {}
        # ---------------------------------------------------- factor placement
        self.n: dict[tuple[str, int, int], object] = {}
        self.ub: dict[object, int] = {}
        for r in sp.ranks:
            for i, (p, mult) in enumerate(sp.primes(r)):
                self.lg[p] = round(LOG_SCALE * math.log2(p))
                vs = []
                for j, s in enumerate(sp.slots):
                    cap = mult
                    if s.bound is not None:
                        cap = min(mult, int(math.floor(math.log(s.bound) / math.log(p) + 1e-9)))
                    v = m.new_int_var(0, cap, f"n_{r}_{p}_{j}")
                    self.n[r, i, j] = v
                    vs.append(v)
                m.add(sum(vs) == mult)
        # log2 (scaled) of each slot factor, as linear expressions
        self.L: dict[tuple[int, str], object] = {}
        self.Lmax: dict[tuple[int, str], int] = {}
        for j, _ in enumerate(sp.slots):
            for r in sp.ranks:
                terms = [(self.n[r, i, j], self.lg[p]) for i, (p, _m) in enumerate(sp.primes(r))]
                self.L[j, r] = sum(v * c for v, c in terms) if terms else 0
                self.Lmax[j, r] = sum(round(LOG_SCALE * math.log2(p)) * mm for p, mm in sp.primes(r))
        self._axes()
        self._capacity()
        self._stationarity()
        self._objective()

    # ------------------------------------------------------------ helpers
    def _slot_factor(self, r: str, slots: list[int], name: str):
        """Integer variable = product of rank ``r``'s factors over ``slots``."""
        from mappers.factors import divisors

        sp, m = self.space, self.m
        primes = sp.primes(r)
        if not primes:
            return 1
        divs = divisors(sp.sizes[r])
        strides, stride = [], 1
        for _p, mult in primes:
            strides.append(stride)
            stride *= mult + 1
        table = [0] * stride
        for idx in range(stride):
            val, rest = 1, idx
            for p, mult in primes:
                e = rest % (mult + 1)
                rest //= mult + 1
                val *= p**e
            table[idx] = val
        idx_expr = sum(
            strides[i] * sum(self.n[r, i, j] for j in slots) for i in range(len(primes))
        )
        idx = m.new_int_var(0, stride - 1, f"idx_{name}")
        m.add(idx == idx_expr)
        f = m.new_int_var_from_domain(self.cp_model.Domain.from_values(list(divs)), f"f_{name}")
        m.add_element(idx, table, f)
        return f

    def _axes(self) -> None:
        sp, m = self.space, self.m
        for lvl in range(sp.nlev):
            xs = [j for j, s in enumerate(sp.slots) if s.level == lvl and s.kind == "x"]
            ys = [j for j, s in enumerate(sp.slots) if s.level == lvl and s.kind == "y"]
            for j in xs + ys:  # exact fan-out product
                fs = [self._slot_factor(r, [j], f"sp{j}_{r}") for r in sp.ranks]
                fs = [f for f in fs if not isinstance(f, int)]
                if len(fs) == 1:
                    m.add(fs[0] <= sp.slots[j].bound)
                elif fs:
                    prod = m.new_int_var(1, sp.slots[j].bound, f"fan{j}")
                    m.add_multiplication_equality(prod, fs)
            if xs and ys:
                for r in sp.ranks:
                    a = m.new_bool_var(f"ax_{lvl}_{r}")
                    for i, (_p, mult) in enumerate(sp.primes(r)):
                        m.add(self.n[r, i, xs[0]] <= mult * a)
                        m.add(self.n[r, i, ys[0]] <= mult * (1 - a))

    def _capacity(self) -> None:
        sp, m = self.space, self.m
        for lvl in range(1, sp.nlev):
            lv = sp.levels[lvl]
            if lv.capacity_bytes is None:
                continue
            inner = [j for j, s in enumerate(sp.slots) if s.level >= lvl]
            cum = {r: self._slot_factor(r, inner, f"c{lvl}_{r}") for r in sp.ranks}
            total = []
            for acc in sp.accesses:
                if acc.tensor not in sp.holdable[lvl]:
                    continue
                exts = []
                for k, ix in enumerate(acc.indices):
                    full = ix.extent(sp.sizes)
                    if len(ix.terms) == 1 and ix.terms[0][1] == 1:
                        exts.append(cum[ix.terms[0][0]])
                        continue
                    e = m.new_int_var(1, full, f"ext{lvl}_{acc.tensor}_{k}")
                    m.add(e == sum(abs(c) * (cum[r] - 1) for r, c in ix.terms) + 1)
                    exts.append(e)
                var_exts = [e for e in exts if not isinstance(e, int)]
                const = math.prod(e for e in exts if isinstance(e, int))
                full_elems = math.prod(ix.extent(sp.sizes) for ix in acc.indices)
                if not var_exts:
                    tile = const
                elif len(var_exts) == 1:
                    tile = var_exts[0] * const
                else:
                    t = m.new_int_var(1, full_elems, f"tile{lvl}_{acc.tensor}")
                    m.add_multiplication_equality(t, var_exts)
                    tile = t * const
                total.append(acc.bits * tile)
            if total:
                m.add(sum(total) <= int(math.floor(8 * lv.capacity_bytes)))

    def _stationarity(self) -> None:
        """``u[l, T]``: log of the loops at level l that tensor T re-uses."""
        sp, m = self.space, self.m
        self.st: dict[tuple[int, str], object] = {}
        self.u: dict[tuple[int, str], object] = {}
        self.u_max: dict[tuple[int, str], int] = {}
        self.tslot = {s.level: j for j, s in enumerate(sp.slots) if s.kind == "T"}
        for lvl in range(sp.nlev - 1):
            j = self.tslot[lvl]
            bs = []
            for t in sp.tensors:
                irr = [r for r in sp.ranks if r not in sp.relevant[t]]
                if not irr:
                    continue
                hi = sum(self.Lmax[j, r] for r in irr)
                if hi == 0:
                    continue
                b = m.new_bool_var(f"st_{lvl}_{t}")
                u = m.new_int_var(0, hi, f"u_{lvl}_{t}")
                m.add(u <= sum(self.L[j, r] for r in irr))
                m.add(u <= hi * b)
                self.st[lvl, t] = b
                self.u[lvl, t] = u
                self.u_max[lvl, t] = hi
                bs.append(b)
            if bs:
                m.add(sum(bs) <= 1)

    # ----------------------------------------------------------- objective
    def _log_terms(self) -> None:
        """Log expressions of every transfer (parent side, child side) and of compute."""
        sp = self.space
        self.terms: list[tuple[object, dict]] = []
        for tr in transfers(sp):
            rel = sp.relevant[tr.tensor]
            acc = next(a for a in sp.accesses if a.tensor == tr.tensor)
            parts, hi = [], 0
            for ix in acc.indices:  # tile: product of cumulative factors (>= extent)
                for r, _c in ix.terms:
                    for j, s in enumerate(sp.slots):
                        if s.level >= tr.child:
                            parts.append(self.L[j, r])
                            hi += self.Lmax[j, r]
            for lvl in range(tr.child):  # outer temporal trips
                for r in sp.ranks:
                    parts.append(self.L[self.tslot[lvl], r])
                    hi += self.Lmax[self.tslot[lvl], r]
            reuse = self.u.get((tr.child - 1, tr.tensor))
            irr_parts, irr_hi = [], 0
            for j, s in enumerate(sp.slots):
                if s.kind != "T" and s.level < tr.child:
                    for r in sp.ranks:
                        if r in rel:
                            parts.append(self.L[j, r])
                            hi += self.Lmax[j, r]
                        else:
                            irr_parts.append(self.L[j, r])
                            irr_hi += self.Lmax[j, r]
            x_parent = sum(parts) - (reuse if reuse is not None else 0)
            lo = -(self.u_max.get((tr.child - 1, tr.tensor), 0))
            self.terms.append(
                (
                    tr,
                    {
                        "parent": _Term(x_parent, lo, hi),
                        "child": _Term(x_parent + sum(irr_parts), lo, hi + irr_hi),
                    },
                )
            )
        comp = [self.L[self.tslot[lvl], r] for lvl in range(sp.nlev) for r in sp.ranks]
        comp_hi = sum(self.Lmax[self.tslot[lvl], r] for lvl in range(sp.nlev) for r in sp.ranks)
        self.compute_term = _Term(sum(comp), 0, comp_hi)

    def _exp(self, term: _Term, k: float, name: str):
        """IntVar y >= k * 2**(x/S) (tangent under-estimator); k in objective units."""
        m = self.m
        lo = max(term.lo, 0) / LOG_SCALE
        hi = term.hi / LOG_SCALE
        ymax = k * 2**hi
        y = m.new_int_var(0, max(1, int(math.ceil(ymax)) + 1), name)
        if k <= 0:
            return y, 0.0
        a = math.floor(lo / TANGENT_STEP) * TANGENT_STEP
        while a <= hi + 1e-9:
            val = k * 2**a
            if val >= 1.0:
                slope = val * math.log(2) / LOG_SCALE  # per unit of x
                mult = max(1, math.ceil(1e4 / slope)) if slope < 1e4 else 1
                const = val * (1 - a * math.log(2))
                m.add(mult * y >= math.floor(mult * const) + math.floor(mult * slope) * term.expr)
            a += TANGENT_STEP
        return y, ymax

    def _latency(self, k_per_cycle: float, tag: str):
        """IntVar >= k * cycles (max of compute and per-level transfer cycles)."""
        sp, m = self.space, self.m
        opc, _ = op_rate(sp)
        parts, ub = [], 0.0
        yc, ycmax = self._exp(self.compute_term, k_per_cycle / opc, f"lat_c_{tag}")
        parts.append([yc])
        ub = max(ub, ycmax)
        per_level: dict[int, list] = {}
        per_level_ub: dict[int, float] = {}
        for tr, t in self.terms:
            bits = sp.tensor_bits(tr.tensor)
            for side, lvl in (("parent", tr.parent), ("child", tr.child)):
                lv = sp.levels[lvl]
                bw = lv.read_bw_bytes_per_cycle + (0 if lv.shared_bw else lv.write_bw_bytes_per_cycle)
                if bw <= 0:
                    continue
                k = k_per_cycle * bits / 8 / bw / lv.instances
                y, ymax = self._exp(t[side], k, f"lat_{tag}_{tr.tensor}_{side}_{lvl}")
                per_level.setdefault(lvl, []).append(y)
                per_level_ub[lvl] = per_level_ub.get(lvl, 0.0) + ymax
        for lvl, ys in per_level.items():
            parts.append(ys)
            ub = max(ub, per_level_ub[lvl])
        lat = m.new_int_var(0, int(math.ceil(ub)) + 2, f"lat_{tag}")
        for ys in parts:
            m.add(lat >= sum(ys))
        return lat, ub

    def _energy(self, unit: float, tag: str):
        """(IntVar-expression, constant) of energy in ``unit`` pJ."""
        sp = self.space
        ys, ub = [], 0.0
        for tr, t in self.terms:
            pl, cl = sp.levels[tr.parent], sp.levels[tr.child]
            out = tr.tensor == sp.output
            e_p = pl.write_energy_pj_per_word if out else pl.read_energy_pj_per_word
            e_c = cl.read_energy_pj_per_word if out else cl.write_energy_pj_per_word
            for side, lvl, e in (("parent", tr.parent, e_p), ("child", tr.child, e_c)):
                k = words(sp, tr.tensor, lvl, 1.0) * e / unit
                y, ymax = self._exp(t[side], k, f"e_{tag}_{tr.tensor}_{side}")
                ys.append(y)
                ub += ymax
        const = self._energy_const() / unit
        expr = sum(ys)
        static_pj_per_cycle = sp.arch.static_power_w / sp.arch.clock_hz * 1e12
        if static_pj_per_cycle > 0:
            lat, lub = self._latency(static_pj_per_cycle / unit, f"static_{tag}")
            expr = expr + lat
            ub += lub
        return expr, const, ub + const

    def _energy_const(self) -> float:
        sp = self.space
        _, e_op = op_rate(sp)
        points = sp.einsum.iteration_points
        e = points * e_op
        for t in sp.tensors:
            lvl = innermost_keeper(sp, t)
            lv = sp.levels[lvl]
            ea = lv.write_energy_pj_per_word if t == sp.output else lv.read_energy_pj_per_word
            e += words(sp, t, lvl, points) * ea
        return e

    def _objective(self) -> None:
        self._log_terms()
        m, sp = self.m, self.space
        # choose units so the worst case stays inside the integer range
        probe_e = self._hi_energy()
        probe_c = self._hi_cycles()
        if self.objective == "latency":
            self.unit = probe_c / LINEAR_RANGE
            lat, _ = self._latency(1.0 / self.unit, "obj")
            m.minimize(lat)
            self.offset = 0.0
        elif self.objective == "energy":
            self.unit = probe_e / LINEAR_RANGE
            expr, const, _ = self._energy(self.unit, "obj")
            m.minimize(expr)
            self.offset = const
        elif self.objective == "dram_traffic":
            top = sp.levels[0].name
            total_hi = sum(
                2 ** (t["parent"].hi / LOG_SCALE) * sp.tensor_bits(tr.tensor) / 8
                for tr, t in self.terms
                if tr.parent == 0
            )
            self.unit = max(total_hi, 1.0) / LINEAR_RANGE
            ys = []
            for tr, t in self.terms:
                if tr.parent == 0:
                    k = sp.tensor_bits(tr.tensor) / 8 / self.unit
                    y, _ = self._exp(t["parent"], k, f"dram_{tr.tensor}")
                    ys.append(y)
            m.minimize(sum(ys) if ys else 0)
            self.offset = 0.0
            self.top = top
        elif self.objective == "edp":
            self.unit_e = probe_e / EDP_RANGE
            self.unit_c = probe_c / EDP_RANGE
            expr, const, eub = self._energy(self.unit_e, "edp")
            e = m.new_int_var(0, int(math.ceil(eub)) + 2, "E")
            m.add(e >= expr + int(math.floor(const)))
            lat, lub = self._latency(1.0 / self.unit_c, "edp")
            prod = m.new_int_var(0, (int(math.ceil(eub)) + 2) * (int(math.ceil(lub)) + 2), "EDP")
            m.add_multiplication_equality(prod, [e, lat])
            m.minimize(prod)
            self.offset = 0.0
            self.unit = self.unit_e * self.unit_c
        else:  # pragma: no cover - checked by the front end
            raise ValueError(self.objective)

    def _hi_cycles(self) -> float:
        sp = self.space
        opc, _ = op_rate(sp)
        hi = 2 ** (self.compute_term.hi / LOG_SCALE) / opc
        per_level: dict[int, float] = {}
        for tr, t in self.terms:
            for side, lvl in (("parent", tr.parent), ("child", tr.child)):
                lv = sp.levels[lvl]
                bw = lv.read_bw_bytes_per_cycle + (0 if lv.shared_bw else lv.write_bw_bytes_per_cycle)
                if bw > 0:
                    b = 2 ** (t[side].hi / LOG_SCALE) * sp.tensor_bits(tr.tensor) / 8 / bw / lv.instances
                    per_level[lvl] = per_level.get(lvl, 0.0) + b
        return max([hi, *per_level.values(), 1.0])

    def _hi_energy(self) -> float:
        sp = self.space
        e = self._energy_const()
        for tr, t in self.terms:
            for side, lvl in (("parent", tr.parent), ("child", tr.child)):
                lv = sp.levels[lvl]
                e += words(sp, tr.tensor, lvl, 2 ** (t[side].hi / LOG_SCALE)) * max(
                    lv.read_energy_pj_per_word, lv.write_energy_pj_per_word
                )
        static_pj_per_cycle = sp.arch.static_power_w / sp.arch.clock_hz * 1e12
        e += static_pj_per_cycle * self._hi_cycles()
        return max(e, 1.0)

    # --------------------------------------------------------- solutions
    def hint(self, tiling: dict[str, tuple[int, ...]]) -> None:
        sp = self.space
        for r in sp.ranks:
            for i, (p, _mult) in enumerate(sp.primes(r)):
                for j, f in enumerate(tiling[r]):
                    e = 0
                    while f % p == 0:
                        f //= p
                        e += 1
                    self.m.add_hint(self.n[r, i, j], e)

    def decode(self, value) -> tuple[dict[str, tuple[int, ...]], tuple[str | None, ...]]:
        sp = self.space
        tiling = {}
        for r in sp.ranks:
            fs = []
            for j in range(len(sp.slots)):
                f = 1
                for i, (p, _m) in enumerate(sp.primes(r)):
                    f *= p ** int(value(self.n[r, i, j]))
                fs.append(f)
            tiling[r] = tuple(fs)
        stat: list[str | None] = []
        for lvl in range(sp.nlev):
            chosen = None
            for t in sp.tensors:
                b = self.st.get((lvl, t))
                if b is not None and value(b):
                    chosen = t
            stat.append(chosen)
        return tiling, tuple(stat)


def _solve(model: IlpModel, time_limit_s: float, seed: int, workers: int, pool: int):
    cp_model = model.cp_model
    solver = cp_model.CpSolver()
    prm = solver.parameters
    prm.max_time_in_seconds = max(0.05, time_limit_s)
    prm.random_seed = seed
    prm.num_workers = max(1, workers)
    # the portfolio is interleaved deterministically in one thread when asked for
    # repeatability across runs (workers > 1 races otherwise)
    prm.interleave_search = True
    prm.log_search_progress = False

    found: list[tuple[float, tuple]] = []

    class Pool(cp_model.CpSolverSolutionCallback):
        def on_solution_callback(self) -> None:
            found.append((self.objective_value, model.decode(self.value)))
            if len(found) > 4 * pool:
                del found[: len(found) - 2 * pool]

    status = solver.solve(model.m, Pool())
    return solver, status, found


def orders_for(space: MapSpace, tiling, stat) -> tuple[tuple[str, ...], ...]:
    return tuple(space.stationary_order(tiling, lvl, stat[lvl]) for lvl in range(space.nlev))


def ilp_search(
    einsum: Einsum,
    arch: Architecture,
    *,
    objective: str,
    evaluate: Evaluator,
    time_limit_s: float = 2.0,
    seed: int = 0,
    workers: int = 2,
    pool: int = 6,
    polish_evals: int = 400,
) -> SearchResult:
    """Solve the CP-SAT model, then re-rank and polish with ``evaluate``.

    ``pool`` best solver solutions are scored by the caller's model, each with
    every per-level choice of stationary tensor; the best is then improved by
    moving single prime factors between slots (at most ``polish_evals``
    evaluations, deterministic). The returned objective is the caller's.
    """
    t0 = time.perf_counter()
    space = MapSpace(einsum, arch)
    space.check_feasible()
    scorer = Scorer(einsum, arch, evaluate, objective)
    model = IlpModel(space, objective)
    warm = greedy_start(einsum, arch)
    if warm is not None:
        try:
            wt = space.tiling_of(warm)
            if space.violation(wt) is None:
                model.hint(wt)
        except (KeyError, ValueError):
            pass
    solver, status, found = _solve(model, time_limit_s, seed, workers, pool)
    cp_model = model.cp_model
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE) or not found:
        if status == cp_model.INFEASIBLE:
            raise MappingError(
                f"Einsum {einsum.name}: no tiling meets the capacity and fan-out constraints of {arch.name}"
            )
        raise MappingError(
            f"Einsum {einsum.name}: the ILP found no mapping on {arch.name} within {time_limit_s:g} s "
            "(raise --time-limit)"
        )
    solve_s = time.perf_counter() - t0
    # the solver's best solutions, best first, distinct tilings
    cands: list[tuple[dict, tuple]] = []
    keys = set()
    for _obj, (tiling, stat) in sorted(found, key=lambda x: x[0]):
        k = tuple(tiling[r] for r in space.ranks)
        if k in keys or space.violation(tiling) is not None:
            continue
        keys.add(k)
        cands.append((tiling, stat))
        if len(cands) >= pool:
            break
    if warm is not None:
        scorer.score(warm)
    best_tiling, best_stat = cands[0]
    best_v = math.inf
    for tiling, stat in cands:
        v, st = _best_orders(space, scorer, tiling, stat)
        if v < best_v:
            best_v, best_tiling, best_stat = v, tiling, st
    _polish(space, scorer, best_tiling, best_stat, polish_evals)
    ilp_status = "optimal" if status == cp_model.OPTIMAL else "feasible"
    obj = solver.objective_value
    bound = solver.best_objective_bound
    gap = 0.0 if obj <= 0 else max(0.0, (obj - bound) / obj)
    res = scorer.result(
        ilp_status,
        t0,
        gap=gap,
        notes={
            "surrogate_objective": (obj * model.unit + model.offset),
            "surrogate_bound": (bound * model.unit + model.offset),
            "cp_sat_status": solver.status_name(status),
            "cp_sat_wall_s": solver.wall_time,
            "solve_phase_s": solve_s,
            "pool": len(cands),
            "seed": seed,
            "workers": workers,
        },
    )
    return res


def _stat_options(space: MapSpace, lvl: int) -> list[str | None]:
    return [None, *space.tensors]


def _best_orders(space: MapSpace, scorer: Scorer, tiling, stat) -> tuple[float, tuple]:
    """Coordinate descent over the stationary tensor of each level (real model)."""
    stat = list(stat)
    v = scorer.score(space.to_mapping(tiling, orders_for(space, tiling, stat)))
    for _sweep in range(2):
        improved = False
        for lvl in range(space.nlev):
            for opt in _stat_options(space, lvl):
                if opt == stat[lvl]:
                    continue
                trial = list(stat)
                trial[lvl] = opt
                tv = scorer.score(space.to_mapping(tiling, orders_for(space, tiling, trial)))
                if tv < v:
                    v, stat, improved = tv, trial, True
        if not improved:
            break
    return v, tuple(stat)


def _polish(space: MapSpace, scorer: Scorer, tiling, stat, budget: int) -> None:
    """First-improvement hill climb: move one prime factor between two slots."""
    start = scorer.evaluations
    cur = dict(tiling)
    stat = tuple(stat)
    v = scorer.score(space.to_mapping(cur, orders_for(space, cur, stat)))
    improved = True
    while improved and scorer.evaluations - start < budget:
        improved = False
        for r in space.ranks:
            for p, _m in space.primes(r):
                for a in range(len(space.slots)):
                    if cur[r][a] % p:
                        continue
                    for b in range(len(space.slots)):
                        if a == b:
                            continue
                        fs = list(cur[r])
                        fs[a] //= p
                        fs[b] *= p
                        trial = dict(cur)
                        trial[r] = tuple(fs)
                        if space.violation(trial) is not None:
                            continue
                        tv, tstat = _best_orders_quick(space, scorer, trial, stat)
                        if tv < v * (1 - 1e-9):
                            v, cur, stat, improved = tv, trial, tstat, True
                        if scorer.evaluations - start >= budget:
                            return


def _best_orders_quick(space: MapSpace, scorer: Scorer, tiling, stat) -> tuple[float, tuple]:
    return scorer.score(space.to_mapping(tiling, orders_for(space, tiling, stat))), stat


def surrogate_value(mapping: Mapping) -> None:  # pragma: no cover - documentation aid
    """See :func:`mappers.ilp_model.surrogate_metrics`."""

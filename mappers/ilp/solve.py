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
two (a CP-SAT multiplication constraint). The solver thus optimises a
surrogate built from the analytical model's terms; its best solutions (the
pool of improving solutions) are then re-ranked by the caller's cost model and
polished with it (:mod:`mappers.ilp.polish`: steepest descent over factor
moves, bypass flips and stationarity, an iterated descent with seeded kicks,
every loop-order class of the winner). The reported objective is always the
caller's model's value of the returned, validated mapping; ``bound`` / ``gap``
come from :mod:`mappers.ilp.bounds` (valid for the model over the whole
space), not from the surrogate.

Work limits are deterministic (CP-SAT deterministic time, evaluation counts),
so the same inputs and seed give the same mapping; wall-clock limits are only
safety nets (``notes["wall_limit_hit"]``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from hw_models.arch import Architecture
from mappers.ilp.bounds import lower_bounds
from mappers.ilp.polish import (
    best_keeps,
    best_order_classes,
    best_stationarity,
    descend,
    iterated_descent,
    mapping_of,
)
from mappers.scoring import BatchEvaluator, Evaluator, Scorer, SearchResult, greedy_start
from mappers.space import MappingError, MapSpace
from workloads.ir import Einsum

#: log2 scale: a factor p contributes round(LOG_SCALE * log2(p)) to a log term
LOG_SCALE = 256
#: tangent grid spacing of the exponential, in log2 units (<= ~3.5 % error)
TANGENT_STEP = 0.75
#: integer range of linear objectives and of each factor of the EDP product
LINEAR_RANGE = 2**36
EDP_RANGE = 2**30
#: solver solutions the local search starts from (besides the projected greedy)
POLISH_STARTS = 2
#: local-search evaluations per start, and for the iterated (kicked) descent,
#: per second of ``time_limit_s`` (counts, not seconds: runs repeat exactly)
POLISH_EVALS_PER_S = 20_000
KICK_EVALS_PER_S = 2_000
#: the local search stops at this many times max(1 s, time_limit_s) after the
#: start (a safety net; normally the evaluation budgets end it long before).
#: 60, not 10: a 1 s small problem takes ~6 s idle, and with two test runs
#: sharing 2 cores (CI under load) a 10x net fired and returned a mapping 6 %
#: and 33 % above the optimum (problems 16 and 19 of the ILP-vs-exhaustive test)
POLISH_WALL_FACTOR = 60.0
#: CP-SAT's wall-clock safety net, in multiples of ``time_limit_s`` (wide for
#: the same reason: 0.6 deterministic units took 2.8 s idle, so 10 s fired
#: under load)
WALL_NET_FACTOR = 60.0
#: small spaces (bypass in the model): CP-SAT work and kick budget multipliers
#: (6x: the 20 small problems of the ILP-vs-exhaustive test within 2 % of the
#: optimum at 1 s; 3x left a conv 4 % above it once latency modelled port overlap)
SMALL_SPACE_DET_FACTOR = 6.0
SMALL_SPACE_KICK_FACTOR = 2
#: spaces up to this many tilings get bypass variables in the CP-SAT model
BYPASS_MAX_TILINGS = 10**6
#: CP-SAT deterministic time units per second of budget (measured on the 2-core
#: dev machine: ~0.32 units/s idle, ~0.1 units/s with 8 jobs sharing it)
DET_PER_WALL_S = 0.1
#: integer steps the smallest possible objective value is resolved into (coarse on
#: purpose: finer units let CP-SAT waste its budget on 0.01 % slack steps)
RESOLUTION = 300.0


#: most distinct tile extents of one tensor dimension the ILP tabulates
MAX_EXTENT_VALUES = 1 << 20


def _extent_values(terms: tuple, sizes: dict[str, int]) -> list[int]:
    """Every extent ``1 + sum |c| (f_r - 1)`` of an index whose ranks ``r``
    take tile factors ``f_r`` (divisors of their sizes), sorted."""
    from mappers.factors import divisors

    vals = {1}
    for r, c in terms:
        vals = {v + abs(c) * (d - 1) for v in vals for d in divisors(sizes[r])}
        if len(vals) > MAX_EXTENT_VALUES:
            raise MappingError(
                f"the ILP cannot tabulate the {len(vals):,}+ tile extents of an index over "
                f"{', '.join(r for r, _c in terms)}; expected at most {MAX_EXTENT_VALUES:,} "
                "(use the greedy mapper for ranks with this many divisors)"
            )
    return sorted(vals)


def _too_large(space: MapSpace) -> MappingError:
    sizes = ", ".join(f"{r}={n:,}" for r, n in space.sizes.items())
    return MappingError(
        f"the ILP mapper's model overflows 64-bit integers on this Einsum ({sizes}); "
        "use the greedy mapper for problems this large"
    )


@dataclass
class _Term:
    """A log-linear term: value = coef * 2**(expr / LOG_SCALE)."""

    expr: object  # cp_model.LinearExpr
    lo: int
    hi: int


class IlpModel:
    """Builds the CP-SAT model of one Einsum on one architecture."""

    def __init__(self, space: MapSpace, objective: str, bypass: bool = True) -> None:
        from ortools.sat.python import cp_model

        self.cp_model = cp_model
        self.space = space
        self.objective = objective
        self.bypass = bypass
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
                self.Lmax[j, r] = sum(
                    round(LOG_SCALE * math.log2(p)) * mm for p, mm in sp.primes(r)
                )
        self._xvars: dict[tuple, object] = {}
        self._cum_cache: dict[int, dict[str, object]] = {}
        self._ext_cache: dict[tuple, tuple] = {}
        self.total_log = sum(self.lg[p] * mm for r in sp.ranks for p, mm in sp.primes(r))
        self.Lmax_total_spatial = sum(
            self.Lmax[j, r] for j, s in enumerate(sp.slots) if s.kind != "T" for r in sp.ranks
        )
        self._axes()
        self._keeps()
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
        idx_expr = sum(strides[i] * sum(self.n[r, i, j] for j in slots) for i in range(len(primes)))
        idx = m.new_int_var(0, stride - 1, f"idx_{name}")
        m.add(idx == idx_expr)
        f = m.new_int_var_from_domain(self.cp_model.Domain.from_values(list(divs)), f"f_{name}")
        m.add_element(idx, table, f)
        return f

    def _axes(self) -> None:
        sp, m = self.space, self.m
        fans = []
        for lvl in range(sp.nlev):
            xs = [j for j, s in enumerate(sp.slots) if s.level == lvl and s.kind in ("x", "s")]
            ys = [j for j, s in enumerate(sp.slots) if s.level == lvl and s.kind == "y"]
            for j in xs + ys:  # exact fan-out product
                fs = [self._slot_factor(r, [j], f"sp{j}_{r}") for r in sp.ranks]
                fs = [f for f in fs if not isinstance(f, int)]
                if len(fs) == 1:
                    m.add(fs[0] <= sp.slots[j].bound)
                    fans.append((fs[0], sp.slots[j].bound, lvl))
                elif fs:
                    prod = m.new_int_var(1, sp.slots[j].bound, f"fan{j}")
                    m.add_multiplication_equality(prod, fs)
                    fans.append((prod, sp.slots[j].bound, lvl))
            if xs and ys:  # one fan-out axis per rank and level
                for r in sp.ranks:
                    a = m.new_bool_var(f"ax_{lvl}_{r}")
                    for i, (_p, mult) in enumerate(sp.primes(r)):
                        m.add(self.n[r, i, xs[0]] <= mult * a)
                        m.add(self.n[r, i, ys[0]] <= mult * (1 - a))
            limit = sp.level_limit.get(lvl)
            lvl_fans = [(f, b) for f, b, lv_ in fans if lv_ == lvl]
            if (
                limit is not None
                and len(lvl_fans) > 1
                and math.prod(b for _f, b in lvl_fans) > limit
            ):
                used = m.new_int_var(1, limit, f"fan_level{lvl}")
                m.add_multiplication_equality(used, [f for f, _b in lvl_fans])
        if len(fans) > 1 and math.prod(b for _f, b, _l in fans) > sp.pes:
            total = m.new_int_var(1, sp.pes, "pes_used")
            m.add_multiplication_equality(total, [f for f, _b, _l in fans])

    def _cum(self, lvl: int) -> dict[str, object]:
        """rank -> integer variable: its cumulative tile factor at level ``lvl``."""
        if lvl not in self._cum_cache:
            sp = self.space
            inner = [j for j, s in enumerate(sp.slots) if s.level >= lvl]
            self._cum_cache[lvl] = {r: self._slot_factor(r, inner, f"c{lvl}_{r}") for r in sp.ranks}
        return self._cum_cache[lvl]

    def _extent(self, lvl: int, acc, k: int):
        """(integer extent variable, log2-scaled variable) of dimension ``k`` of
        ``acc``'s tile at level ``lvl`` (sliding windows are exact: an element
        constraint over a log table)."""
        key = (lvl, acc.tensor, k)
        if key not in self._ext_cache:
            sp, m = self.space, self.m
            ix = acc.indices[k]
            cum = self._cum(lvl)
            full = ix.extent(sp.sizes)
            if len(ix.terms) == 1 and ix.terms[0][1] == 1:
                e = cum[ix.terms[0][0]]
            else:
                e = m.new_int_var(1, full, f"ext{lvl}_{acc.tensor}_{k}")
                m.add(e == sum(abs(c) * (cum[r] - 1) for r, c in ix.terms) + 1)
            if isinstance(e, int):
                lg = round(LOG_SCALE * math.log2(e))
            else:
                # log2 of every extent the tile factors can give (not of every
                # integer up to the rank size: memory stays bounded for ranks
                # up to 2^48, which have at most a few thousand divisors)
                values = _extent_values(ix.terms, sp.sizes)
                lg = m.new_int_var(
                    0, round(LOG_SCALE * math.log2(full)), f"lext{lvl}_{acc.tensor}_{k}"
                )
                m.add_allowed_assignments(
                    [e, lg], [(v, round(LOG_SCALE * math.log2(v))) for v in values]
                )
            self._ext_cache[key] = (e, lg, round(LOG_SCALE * math.log2(full)))
        return self._ext_cache[key]

    def _keeps(self) -> None:
        """``keep[l, T]``: level l keeps tensor T (bypass choices; levels that may
        hold it, above the unit's feeding level; the outermost keeps all)."""
        sp, m = self.space, self.m
        self.keep: dict[tuple[int, str], object] = {}
        for lvl in range(1, sp.feed + 1):
            for t in sp.tensors:
                if t in sp.holdable[lvl]:
                    self.keep[lvl, t] = m.new_bool_var(f"keep_{lvl}_{t}") if self.bypass else 1

    def _capacity(self) -> None:
        """Kept tiles fit each memory's capacity (one constraint per memory
        of a level with per-tensor memories, ``MapSpace.groups``)."""
        sp, m = self.space, self.m
        for lvl in range(1, sp.feed + 1):
            groups = [g for g in sp.groups[lvl] if g.capacity_bytes is not None]
            if not groups:
                continue
            bits: dict[str, object] = {}
            for acc in sp.accesses:
                if acc.tensor not in sp.holdable[lvl] or not any(
                    acc.tensor in g.tensors for g in groups
                ):
                    continue
                exts = [self._extent(lvl, acc, k)[0] for k in range(len(acc.indices))]
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
                k = self.keep[lvl, acc.tensor]
                if isinstance(k, int):
                    bits[acc.tensor] = acc.bits * tile
                else:  # a bypassed tensor takes no space: te >= tile when kept
                    te = m.new_int_var(0, full_elems * const, f"tkept{lvl}_{acc.tensor}")
                    m.add(te >= tile - full_elems * const * (1 - k))
                    bits[acc.tensor] = acc.bits * te
            for g in groups:
                total = [b for t, b in bits.items() if t in g.tensors]
                if total:
                    m.add(g.mult * sum(total) <= int(math.floor(8 * g.capacity_bytes)))

    def _stationarity(self) -> None:
        """Loop-order variables: ``st[l, T]`` (T's irrelevant loops innermost at
        level l) and ``w[l, T]`` (level l has no active loop indexing T)."""
        sp, m = self.space, self.m
        self.st: dict[tuple[int, str], object] = {}
        self.w: dict[tuple[int, str], object] = {}
        self.tslot = {s.level: j for j, s in enumerate(sp.slots) if s.kind == "T"}
        self.tlevels = sorted(self.tslot)
        for lvl in self.tlevels:
            j = self.tslot[lvl]
            bs = []
            for t in sp.tensors:
                rel = [r for r in sp.ranks if r in sp.relevant[t]]
                irr = [r for r in sp.ranks if r not in sp.relevant[t]]
                rel_hi = sum(self.Lmax[j, r] for r in rel)
                w = m.new_bool_var(f"w_{lvl}_{t}")
                if rel_hi:
                    m.add(sum(self.L[j, r] for r in rel) <= rel_hi * (1 - w))
                self.w[lvl, t] = w
                if irr and sum(self.Lmax[j, r] for r in irr):
                    b = m.new_bool_var(f"st_{lvl}_{t}")
                    self.st[lvl, t] = b
                    bs.append(b)
            if bs:
                m.add(sum(bs) <= 1)

    def _reuse(self, t: str, c: int) -> tuple[list, int]:
        """Variables (log-scaled) of the loops above level ``c`` that do not
        refetch tensor ``t``: the trailing irrelevant loops (see sim.analytical.core)."""
        sp, m = self.space, self.m
        irr = [r for r in sp.ranks if r not in sp.relevant[t]]
        out, hi_total = [], 0
        chain = None  # g: every level between l+1 and c-1 has no loop indexing t
        above = [lvl for lvl in self.tlevels if lvl < c]
        for lvl in reversed(above):
            j = self.tslot[lvl]
            hi = sum(self.Lmax[j, r] for r in irr)
            if hi:
                v = m.new_int_var(0, hi, f"v_{t}_{c}_{lvl}")
                m.add(v <= sum(self.L[j, r] for r in irr))
                st = self.st.get((lvl, t))
                m.add(v <= hi * (self.w[lvl, t] + (st if st is not None else 0)))
                if chain is not None:
                    m.add(v <= hi * chain)
                out.append(v)
                hi_total += hi
            g = m.new_bool_var(f"g_{t}_{c}_{lvl}")
            m.add(g <= self.w[lvl, t])
            if chain is not None:
                m.add(g <= chain)
            chain = g
        return out, hi_total

    # ----------------------------------------------------------- objective
    def _term(self, coefs: dict[tuple[int, str], int], minus=(), lo: int = 0, plus=()) -> _Term:
        """Log term from slot-rank coefficients (plus ``(var, max)`` log variables,
        minus variables); ``hi`` bounds it rank by rank."""
        sp = self.space
        expr = sum(c * self.L[j, r] for (j, r), c in coefs.items() if c) - sum(minus)
        expr = expr + sum(v for v, _h in plus)
        hi = sum(h for _v, h in plus)
        for r in sp.ranks:
            cmax = max([c for (j, rr), c in coefs.items() if rr == r] or [0])
            hi += max(cmax, 0) * sum(self.lg[p] * mm for p, mm in sp.primes(r))
        return _Term(expr, lo, hi)

    def _log_terms(self) -> None:
        """Per (tensor, child, parent) pair the log of its counts (elements):
        ``fills = F*R*S``, ``xfer = fills/MC``, ``dist = F*Dist*S/MC`` (outputs)."""
        sp = self.space
        nl = sp.nlev
        self.pairs = []
        spatial = [(j, s) for j, s in enumerate(sp.slots) if s.kind != "T"]
        for t in sp.tensors:
            rel = sp.relevant[t]
            acc = next(a for a in sp.accesses if a.tensor == t)
            out = t == sp.output
            for c, p, active in self._pair_choices(t):
                base: dict[tuple[int, str], int] = {}
                plus = []
                if c < nl:  # footprint: product of the (exact) extents of the tile
                    for k, ix in enumerate(acc.indices):
                        if len(ix.terms) == 1 and ix.terms[0][1] == 1:
                            for j, s in enumerate(sp.slots):
                                if s.level >= c:
                                    base[j, ix.terms[0][0]] = base.get((j, ix.terms[0][0]), 0) + 1
                        else:
                            _e, lg, lg_hi = self._extent(c, acc, k)
                            plus.append((lg, lg_hi))
                for j, s in spatial:  # spatial instances above c
                    if s.level < c:
                        for r in sp.ranks:
                            base[j, r] = base.get((j, r), 0) + 1
                mc = {}
                for j, s in spatial:  # multicast / spatial reduction between p and c
                    lv = sp.levels[s.level]
                    flag = lv.spatial_reduce if out else lv.multicast
                    if p <= s.level < c and flag:
                        for r in sp.ranks:
                            if r not in rel:
                                mc[j, r] = -1
                fills = dict(base)
                dist = dict(base)
                irr_counted: dict[tuple[int, str], int] = {}
                for lvl in self.tlevels:
                    if lvl < c:
                        j = self.tslot[lvl]
                        for r in sp.ranks:
                            fills[j, r] = fills.get((j, r), 0) + 1
                            if r in rel:
                                dist[j, r] = dist.get((j, r), 0) + 1
                            else:
                                irr_counted[j, r] = 1
                if c < nl:
                    reuse, lo = self._reuse(t, c)
                else:  # at the compute units every temporal loop counts
                    reuse, lo = [], 0
                xfer = dict(fills)
                for k, v in mc.items():
                    xfer[k] = xfer.get(k, 0) + v
                    dist[k] = dist.get(k, 0) + v
                pair = {
                    "t": t,
                    "c": c,
                    "p": p,
                    "out": out,
                    "fills": self._term(fills, reuse, -lo, plus),
                    "xfer": self._term(xfer, reuse, -lo, plus),
                    "dist": self._term(dist),
                    "mc": mc,
                    "refill": None,
                    "active": active,
                }
                if out and irr_counted:
                    # g = 1 when some irrelevant loop refetches the output tile
                    # (partial sums are then read back: <= xfer reads)
                    g = self.m.new_bool_var(f"refill_{t}_{c}_{p}")
                    ih = self._term(irr_counted, reuse)
                    self.m.add(ih.expr <= max(ih.hi, 1) * g)
                    pair["refill"] = g
                self.pairs.append(pair)
        # compute: every temporal loop; folds of a 2D array pay fill and drain
        self.t_all = self._term({(j, r): 1 for j in self.tslot.values() for r in sp.ranks})
        cu = sp.arch.unit(sp.unit)
        self.array_level = -1
        if cu.kind == "array2d":
            for lvl in range(sp.feed + 1):
                if sp.levels[lvl].fanout > 1:
                    self.array_level = lvl
        if self.array_level >= 0:
            self.folds = self._term(
                {
                    (self.tslot[lvl], r): 1
                    for lvl in self.tlevels
                    if lvl <= self.array_level
                    for r in sp.ranks
                }
            )
            if sp.dataflow in ("ws", "is"):
                self.skew = 2.0 * cu.rows + cu.cols - 2.0
            else:
                self.skew = cu.rows + cu.cols - 2.0
        self.cpp = sum(k / cu.ops_per_cycle[cl] for cl, k in sp.op_weights.items())

    def _pair_choices(self, t: str) -> list[tuple[int, int, object]]:
        """(child, parent, active literal) for every way tensor ``t`` can move:
        ``c`` fills from ``p`` when both keep it and every level between bypasses it."""
        sp, m = self.space, self.m
        nl = sp.nlev

        def kv(lvl: int):
            if lvl == 0 or lvl == nl:
                return 1
            return self.keep.get((lvl, t), 0)

        def const(x) -> bool:
            return isinstance(x, int)

        out = []
        for c in range(1, nl + 1):
            if c < nl and const(kv(c)) and kv(c) == 0:
                continue
            for p in range(c):
                if const(kv(p)) and kv(p) == 0:
                    continue
                between = [kv(q) for q in range(p + 1, c)]
                if any(const(x) and x == 1 for x in between):
                    continue
                lits = [x for x in (kv(c), kv(p)) if not const(x)]
                lits += [x.negated() for x in between if not const(x)]
                if not lits:
                    out.append((c, p, None))
                    continue
                a = m.new_bool_var(f"pair_{t}_{c}_{p}")
                for lit in lits:
                    m.add_implication(a, lit)
                m.add_bool_or([a] + [lit.negated() for lit in lits])
                out.append((c, p, a))
        return out

    def _actions(self):
        """(level, kind, pair, count-key, gate literals) for every level action.

        kind: "r" read, "w" write, "u" update (read + write)."""
        acts = []
        for pr in self.pairs:
            c, p = pr["c"], pr["p"]
            a = [pr["active"]] if pr["active"] is not None else []
            g = a + [pr["refill"]] if pr["refill"] is not None else None
            a = a or None
            if not pr["out"]:
                acts.append((p, "r", pr, "xfer", a))
                if c < self.space.nlev:
                    acts.append((c, "w", pr, "fills", a))
            elif c == self.space.nlev:
                if g is not None:
                    acts.append((p, "u", pr, "xfer", g))
                acts.append((p, "w", pr, "dist", a))
            else:
                acts.append((p, "w", pr, "xfer", a))
                if g is not None:
                    acts.append((p, "r", pr, "xfer", g))
                acts.append((c, "r", pr, "fills", a))
                if g is not None:
                    acts.append((c, "w", pr, "fills", g))
        return acts

    def _exp(self, term: _Term, k: float, name: str, shift=(), gate=None):
        """IntVar y >= k * 2**((x - shift)/S) (tangent under-estimator), y >= 0.

        ``shift``: extra log variables subtracted (e.g. instances used);
        ``gate``: a Boolean; when false the term is 0."""
        m = self.m
        lo = max(term.lo, 0) / LOG_SCALE
        hi = term.hi / LOG_SCALE
        ymax = k * 2**hi
        y = m.new_int_var(0, max(1, min(int(math.ceil(ymax)) + 1, self.cap)), name)
        if k <= 0:
            return y, 0.0
        key = (id(term), tuple(id(v) for v in shift) if shift else ())
        expr = self._xvars.get(key)
        if expr is None:  # one variable per log term keeps tangent rows 2-sparse
            full = term.expr - sum(shift) if shift else term.expr
            # a safe lower bound: every log factor subtracted at most a few times
            lo_v = -4 * self.total_log - self.Lmax_total_spatial - 1
            expr = m.new_int_var(lo_v, term.hi + 1, f"x{len(self._xvars)}")
            m.add(expr == full)
            self._xvars[key] = expr
        a = math.floor(lo / TANGENT_STEP) * TANGENT_STEP - (TANGENT_STEP * 8 if shift else 0)
        while a <= hi + 1e-9:
            val = k * 2**a
            if val >= 1.0:
                slope = val * math.log(2) / LOG_SCALE  # per unit of x
                mult = max(1, math.ceil(1e4 / slope)) if slope < 1e4 else 1
                const = val * (1 - a * math.log(2))
                ct = m.add(mult * y >= math.floor(mult * const) + math.floor(mult * slope) * expr)
                if gate is not None:
                    ct.only_enforce_if(gate)
            a += TANGENT_STEP
        return y, ymax

    def _spatial_above(self, lvl: int) -> list:
        sp = self.space
        return [
            self.L[j, r]
            for j, s in enumerate(sp.slots)
            if s.kind != "T" and s.level < lvl
            for r in sp.ranks
        ]

    def _latency(self, k_per_cycle: float, tag: str):
        """IntVar >= k * cycles: max(compute + single-buffered tile moves, every
        level's transfers) + pipeline fill (the analytical model's latency)."""
        sp, m = self.space, self.m
        ub_parts = []
        comp = []
        y, ub = self._exp(self.t_all, k_per_cycle * self.cpp, f"lat_c_{tag}")
        comp.append(y)
        cub = ub
        if self.array_level >= 0:
            y, ub = self._exp(self.folds, k_per_cycle * self.skew, f"lat_f_{tag}")
            comp.append(y)
            cub += ub
        ub_parts.append(cub)
        rd: dict[int, list] = {}
        wr: dict[int, list] = {}
        rub: dict[int, float] = {}
        wub: dict[int, float] = {}
        fills: dict[tuple[int, bool], list] = {}
        #: single-buffered child level -> side ("p" parent, "c" child) -> terms
        moves: dict[int, dict[str, list]] = {}
        #: upper bounds of ``moves``
        moves_ub: dict[int, dict[str, float]] = {}
        for lvl, kind, pr, key, gate in self._actions():
            lv = sp.levels[lvl]
            bytes_ = sp.tensor_bits(pr["t"]) / 8
            shift = self._spatial_above(lvl)
            sides = ("r", "w") if kind == "u" else (kind,)
            for side in sides:
                if lv.shared_bw:
                    bw, dest, dub = lv.read_bw_bytes_per_cycle, rd, rub
                elif side == "r":
                    bw, dest, dub = lv.read_bw_bytes_per_cycle, rd, rub
                else:
                    bw, dest, dub = lv.write_bw_bytes_per_cycle, wr, wub
                if bw <= 0:
                    continue
                y, ub = self._exp(
                    pr[key],
                    k_per_cycle * bytes_ / bw,
                    f"lat_{tag}_{pr['t']}{pr['c']}{kind}{side}{lvl}",
                    shift=shift,
                    gate=gate,
                )
                dest.setdefault(lvl, []).append(y)
                dub[lvl] = dub.get(lvl, 0.0) + ub
                c = pr["c"]
                if c < sp.nlev and not sp.levels[c].double_buffered:
                    side_key = "c" if lvl == c else "p"
                    moves.setdefault(c, {}).setdefault(side_key, []).append(y)
                    mu = moves_ub.setdefault(c, {})
                    mu[side_key] = mu.get(side_key, 0.0) + ub
                if lv.double_buffered and lvl == 0:  # pipeline fill: the first DRAM tile
                    iters = [
                        self.L[self.tslot[q], r] for q in self.tlevels if q <= lvl for r in sp.ranks
                    ]
                    yf, _ = self._exp(
                        pr[key],
                        k_per_cycle * bytes_ / bw,
                        f"fill_{tag}_{pr['t']}{pr['c']}{kind}{side}{lvl}",
                        shift=shift + iters,
                        gate=gate,
                    )
                    fills.setdefault((lvl, dest is rd), []).append(yf)
        serial, overlapped, sub = [], [], 0.0
        for lvl in set(rd) | set(wr):
            overlapped.extend(x for x in (rd.get(lvl), wr.get(lvl)) if x)
            ub_parts.append(max(rub.get(lvl, 0.0), wub.get(lvl, 0.0)))
        moved = []
        for c, sides in moves.items():
            mub = max(moves_ub[c].values())
            s = m.new_int_var(0, int(min(mub, 4.0 * self.cap)) + 2, f"mv_{tag}_{c}")
            for ys in sides.values():
                m.add(s >= sum(ys))
            moved.append(s)
            cub += mub
        ub_parts[0] = cub
        for lvl in {lv_ for lv_, _r in fills}:
            f = m.new_int_var(
                0,
                int(min(max(rub.get(lvl, 0.0), wub.get(lvl, 0.0)), 4.0 * self.cap)) + 2,
                f"fl_{tag}_{lvl}",
            )
            for is_rd in (True, False):
                if (lvl, is_rd) in fills:
                    m.add(f >= sum(fills[lvl, is_rd]))
            serial.append(f)
            sub += max(rub.get(lvl, 0.0), wub.get(lvl, 0.0))
        ub = min(max(ub_parts) + sub, 8.0 * self.cap)
        lat = m.new_int_var(0, int(math.ceil(ub)) + 2, f"lat_{tag}")
        ser = sum(serial) if serial else 0
        # the pipeline fill (first tiles in, last out) delays the compute;
        # transfers that bound the latency hide it
        m.add(lat >= sum(comp) + sum(moved) + ser)
        for ys in overlapped:
            m.add(lat >= sum(ys))
        return lat, ub

    def _energy(self, unit: float, tag: str):
        """(expression, constant, upper bound) of energy in ``unit`` pJ."""
        sp = self.space
        ys, ub = [], 0.0
        for lvl, kind, pr, key, gate in self._actions():
            lv = sp.levels[lvl]
            e = {"r": lv.read_energy_pj_per_word, "w": lv.write_energy_pj_per_word}.get(
                kind, lv.read_energy_pj_per_word + lv.write_energy_pj_per_word
            )
            k = sp.tensor_bits(pr["t"]) / lv.word_bits * e / unit
            y, ymax = self._exp(pr[key], k, f"e_{tag}_{pr['t']}{pr['c']}{kind}{lvl}", gate=gate)
            ys.append(y)
            ub += ymax
        const = self._energy_const() / unit
        expr = sum(ys)
        static = self._static_pj_per_cycle()
        if static > 0:
            lat, lub = self._latency(static / unit, f"static_{tag}")
            expr = expr + lat
            ub += lub
        return expr, const, min(ub + const, 16.0 * self.cap)

    def _static_pj_per_cycle(self) -> float:
        a = self.space.arch
        w = a.static_power_w + sum(lv.leakage_w * lv.instances for lv in a.levels)
        w += sum(cu.leakage_w for cu in a.compute)
        return w / a.clock_hz * 1e12

    def _energy_const(self) -> float:
        sp = self.space
        cu = sp.arch.unit(sp.unit)
        points = sp.einsum.iteration_points
        return sum(points * k * cu.energy_pj_per_op.get(cl, 0.0) for cl, k in sp.op_weights.items())

    def _objective(self) -> None:
        self._log_terms()
        m, sp = self.m, self.space
        # units: the worst case fits the integer range, and the best case
        # (a lower bound) still has RESOLUTION integer steps
        self.cap = EDP_RANGE if self.objective == "edp" else LINEAR_RANGE
        probe_c = self._hi_cycles()
        probe_e = self._hi_energy(probe_c)
        fan = math.prod(s.bound for s in sp.slots if s.bound is not None)
        lb_c = max(1.0, sp.einsum.iteration_points * self.cpp / min(fan, sp.pes))
        lb_e = self._energy_const() or self._lb_move_energy() or probe_e / self.cap
        unit_c = min(probe_c / self.cap, lb_c / RESOLUTION)
        unit_e = min(probe_e / self.cap, lb_e / RESOLUTION)
        self.offset = 0.0
        if self.objective == "latency":
            self.unit = unit_c
            lat, _ = self._latency(1.0 / self.unit, "obj")
            m.minimize(lat)
        elif self.objective == "energy":
            self.unit = unit_e
            expr, const, _ = self._energy(self.unit, "obj")
            m.minimize(expr)
            self.offset = const * self.unit
        elif self.objective == "dram_traffic":
            lb_t = sum(
                math.prod(ix.extent(sp.sizes) for ix in a.indices) * a.bits / 8 for a in sp.accesses
            )
            hi_t = sum(
                2 ** (pr[key].hi / LOG_SCALE)
                * sp.tensor_bits(pr["t"])
                / 8
                * (2 if kind == "u" else 1)
                for lvl, kind, pr, key, _g in self._actions()
                if lvl == 0
            )
            self.unit = min(max(hi_t, 1.0) / self.cap, lb_t / RESOLUTION)
            ys = []
            for lvl, kind, pr, key, gate in self._actions():
                if lvl == 0:
                    k = sp.tensor_bits(pr["t"]) / 8 * (2 if kind == "u" else 1) / self.unit
                    y, _ = self._exp(pr[key], k, f"dram_{pr['t']}{pr['c']}{kind}", gate=gate)
                    ys.append(y)
            m.minimize(sum(ys) if ys else 0)
        elif self.objective == "edp":
            expr, const, eub = self._energy(unit_e, "edp")
            eub = min(eub, 16.0 * self.cap)
            e = m.new_int_var(0, int(math.ceil(eub)) + 2, "E")
            m.add(e >= expr + int(math.floor(const)))
            lat, lub = self._latency(1.0 / unit_c, "edp")
            lub = min(lub, 8.0 * self.cap)
            prod = m.new_int_var(
                0, min((int(math.ceil(eub)) + 2) * (int(math.ceil(lub)) + 2), 2**61), "EDP"
            )
            m.add_multiplication_equality(prod, [e, lat])
            m.minimize(prod)
            self.unit = unit_e * unit_c / self.space.arch.clock_hz
        else:  # pragma: no cover - checked by the front end
            raise ValueError(self.objective)

    def _hi_cycles(self) -> float:
        sp = self.space
        hi = 2 ** (self.t_all.hi / LOG_SCALE) * self.cpp
        if self.array_level >= 0:
            hi += 2 ** (self.folds.hi / LOG_SCALE) * self.skew
        tot = hi
        for lvl, _kind, pr, key, _g in self._actions():
            lv = sp.levels[lvl]
            bw = min(lv.read_bw_bytes_per_cycle, lv.write_bw_bytes_per_cycle)
            if bw > 0:
                tot += 2 ** (pr[key].hi / LOG_SCALE) * sp.tensor_bits(pr["t"]) / 8 / bw * 2
        return max(tot, 1.0)

    def _hi_energy(self, hi_cycles: float) -> float:
        sp = self.space
        e = self._energy_const()
        for lvl, _kind, pr, key, _g in self._actions():
            lv = sp.levels[lvl]
            e += (
                2 ** (pr[key].hi / LOG_SCALE)
                * sp.tensor_bits(pr["t"])
                / lv.word_bits
                * (lv.read_energy_pj_per_word + lv.write_energy_pj_per_word)
            )
        e += self._static_pj_per_cycle() * hi_cycles
        return max(e, 1.0)

    def _lb_move_energy(self) -> float:
        """Energy of moving each tensor once through DRAM (a lower bound)."""
        sp = self.space
        lv = sp.levels[0]
        return sum(
            math.prod(ix.extent(sp.sizes) for ix in a.indices)
            * a.bits
            / lv.word_bits
            * lv.read_energy_pj_per_word
            for a in sp.accesses
        )

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
        for k in self.keep.values():  # the warm start keeps everything it may
            if not isinstance(k, int):
                self.m.add_hint(k, 1)

    def decode(self, value) -> tuple[dict[str, tuple[int, ...]], tuple[str | None, ...], tuple]:
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
        keeps: list[tuple[str, ...] | None] = []
        for lvl in range(sp.nlev):
            hold = [t for t in sp.tensors if (lvl, t) in self.keep]
            kept = tuple(
                t for t in hold if isinstance(self.keep[lvl, t], int) or value(self.keep[lvl, t])
            )
            keeps.append(None if kept == tuple(hold) else kept)
        return tiling, tuple(stat), tuple(keeps)


def _solve(model: IlpModel, time_limit_s: float, seed: int, workers: int, pool: int, det: float):
    cp_model = model.cp_model
    solver = cp_model.CpSolver()
    prm = solver.parameters
    # Repeatability: the worker portfolio is interleaved in one thread and the
    # search is cut by CP-SAT's *deterministic* time, so the same inputs and
    # seed give the same mapping whatever the machine load. The wall-clock
    # limit is a safety net only (wide, so that a loaded machine, e.g. CI with
    # another pytest beside it, still ends on the deterministic budget); if it
    # fires, notes["wall_limit_hit"].
    prm.max_deterministic_time = det
    prm.max_time_in_seconds = max(2.0, WALL_NET_FACTOR * time_limit_s)
    prm.random_seed = seed
    prm.num_workers = max(1, workers)
    prm.interleave_search = workers > 1
    # presolve costs more than it saves at 1 s budgets (measured: first solution
    # 0.54 s without vs 0.96 s with it on a 64^3 GEMM, loaded 2-core machine)
    prm.cp_model_presolve = time_limit_s >= 5.0
    prm.log_search_progress = False
    # the surrogate is within a few % of the model; proving the last 1 % buys nothing
    prm.relative_gap_limit = 0.01

    found: list[tuple[float, tuple]] = []

    class Pool(cp_model.CpSolverSolutionCallback):
        def on_solution_callback(self) -> None:
            found.append((self.objective_value, model.decode(self.value)))
            if len(found) > 4 * pool:
                del found[: len(found) - 2 * pool]

    status = solver.solve(model.m, Pool())
    if status == cp_model.MODEL_INVALID:
        why = model.m.validate()
        if "overflow" in why:  # ranks too large for CP-SAT's 64-bit integers
            raise _too_large(model.space)
        raise RuntimeError(f"CP-SAT model invalid: {why}")  # pragma: no cover - a bug
    return solver, status, found


def ilp_search(
    einsum: Einsum,
    arch: Architecture,
    *,
    objective: str,
    evaluate: Evaluator,
    evaluate_batch: BatchEvaluator | None = None,
    time_limit_s: float = 1.0,
    seed: int = 0,
    workers: int = 1,
    pool: int = 6,
    polish_evals: int | None = None,
    kick_evals: int | None = None,
    bypass: bool | None = None,
) -> SearchResult:
    """Solve the CP-SAT model, then re-rank and polish with ``evaluate``.

    ``pool`` best solver solutions are scored by the caller's model, each with
    every per-level choice of stationary tensor; the best is then improved by
    moving single prime factors between slots (at most ``polish_evals``
    evaluations, deterministic). The returned objective is the caller's.
    """
    t0 = time.perf_counter()
    # local-search budgets are evaluation counts (repeatable); they grow with
    # time limits above 1 s and never shrink below the 1 s amount
    if polish_evals is None:
        polish_evals = int(POLISH_EVALS_PER_S * max(1.0, time_limit_s))
    kick_evals_default = kick_evals is None
    if kick_evals is None:
        kick_evals = int(KICK_EVALS_PER_S * max(1.0, time_limit_s))
    space = MapSpace(einsum, arch)
    space.check_feasible()
    scorer = Scorer(einsum, arch, evaluate, objective, evaluate_batch)
    if bypass is None:
        # bypass variables in the model pay off on small spaces; on large ones
        # they slow CP-SAT's first improvements past a 1 s budget (measured on
        # ResNet-50 layers), so bypass is then chosen by re-ranking only
        bypass = space.tiling_count() <= BYPASS_MAX_TILINGS
    try:
        model = IlpModel(space, objective, bypass=bypass)
    except (TypeError, OverflowError):  # a variable's bound is past 64 bits
        if max(space.sizes.values(), default=1) < 2**20:
            raise  # pragma: no cover - a bug, not a large problem
        raise _too_large(space) from None
    warm = greedy_start(einsum, arch)
    hint = None
    if warm is not None:
        try:  # the greedy mapping, rounded down to an exact factorisation
            hint = space.project(warm)
        except (KeyError, ValueError):
            hint = None
    hint_keeps = space.keeps_of(warm) if hint is not None else None
    if hint is not None and space.violation(hint) is None:
        start = hint
    else:  # the solver's model keeps everything: start from a tiling valid for that
        start = space.seed_tiling()
    model.hint(start)
    # CP-SAT's work limit in deterministic units (repeatable): small spaces
    # (bypass in the model) get more, as the solver finds their optimum; on
    # large ones the local search does most of the work
    det = max(0.02, time_limit_s * DET_PER_WALL_S * (SMALL_SPACE_DET_FACTOR if bypass else 1.0))
    if bypass and kick_evals_default:
        kick_evals *= SMALL_SPACE_KICK_FACTOR
    solver, status, found = _solve(model, time_limit_s, seed, workers, pool, det)
    cp_model = model.cp_model
    if status == cp_model.INFEASIBLE:
        raise MappingError(
            f"Einsum {einsum.name}: no tiling meets the capacity and fan-out constraints of {arch.name}"
        )
    if not found:
        # time-out before the first solution: fall back on the warm-start tiling
        # (valid by construction), re-ranked and polished like a solver solution
        found = [(math.inf, (start, (None,) * space.nlev, (None,) * space.nlev))]
    solve_s = time.perf_counter() - t0
    # the solver's best solutions, best first, distinct (tiling, bypass) choices
    cands: list[tuple[dict, tuple, tuple]] = []
    keys = set()
    for _obj, (tiling, stat, keeps) in sorted(found, key=lambda x: x[0]):
        k = (tuple(tiling[r] for r in space.ranks), keeps)
        if k in keys or space.violation(tiling, keeps) is not None:
            continue
        keys.add(k)
        cands.append((tiling, stat, keeps))
        if len(cands) >= pool:
            break
    if warm is not None:
        scorer.score(warm)
    # re-rank with the caller's model (each with its best stationarity choice)
    ranked = []
    for tiling, stat, keeps in cands:
        v, st = best_stationarity(space, scorer, tiling, stat, keeps)
        ranked.append((v, len(ranked), tiling, st, keeps))
    ranked.sort(key=lambda x: (x[0], x[1]))
    starts = [(t, st, kp) for _v, _i, t, st, kp in ranked[:POLISH_STARTS]]
    if hint is not None:  # the greedy mapping, exactly factorised
        starts.append((hint, (None,) * space.nlev, hint_keeps))
    # polish each start: its best bypass choice, then steepest descent over
    # factor moves, bypass flips and stationarity (the caller's model)
    # wall-clock safety net for the local search (its budgets are evaluation
    # counts; this only fires on a heavily loaded machine: notes["wall_limit_hit"])
    deadline = t0 + POLISH_WALL_FACTOR * max(1.0, time_limit_s)
    best = None
    for tiling, st, keeps in starts:
        v = scorer.score(mapping_of(space, tiling, st, keeps))
        kv, k2 = best_keeps(space, scorer, tiling, st)
        if kv < v:
            keeps = k2
        res = descend(space, scorer, tiling, st, keeps, polish_evals, deadline)
        if best is None or res[0] < best[0]:
            best = res
    if best is not None and kick_evals > 0:  # escape the local optimum
        best = iterated_descent(space, scorer, best, kick_evals, seed, deadline=deadline)
    if best is not None:  # out of the last local optimum by exchanges of factors
        _v, tiling, st, keeps = best
        best = descend(space, scorer, tiling, st, keeps, polish_evals, deadline, exchanges=True)
    if best is not None:  # every loop-order class of each level for the winner
        _v, tiling, st, keeps = best
        best_order_classes(space, scorer, tiling, st, keeps)
    polish_s = time.perf_counter() - t0 - solve_s
    ilp_status = {cp_model.OPTIMAL: "optimal", cp_model.FEASIBLE: "feasible"}.get(status, "timeout")
    if ilp_status == "timeout":
        sur_obj = sur_bound = math.nan
    else:
        sur_obj = solver.objective_value * model.unit + model.offset
        sur_bound = solver.best_objective_bound * model.unit + model.offset
    # an honest bound: valid for the caller's analytical model over the whole
    # space (mappers.ilp.bounds), not the surrogate's
    bound = lower_bounds(space)[scorer.objective]
    obj = scorer.best[0] if scorer.best is not None else math.inf
    gap = None if not math.isfinite(obj) or obj <= 0 else min(1.0, max(0.0, (obj - bound) / obj))
    res = scorer.result(
        ilp_status,
        t0,
        gap=gap,
        bound=bound,
        notes={
            "surrogate_objective": sur_obj,
            # CP-SAT's bound on the surrogate (not a bound on the model's optimum)
            "surrogate_bound": sur_bound,
            "cp_sat_status": solver.status_name(status),
            "cp_sat_wall_s": solver.wall_time,
            "cp_sat_deterministic_time": solver.deterministic_time,
            # the wall-clock safety net fired: the run may not be repeatable
            "wall_limit_hit": (
                status != cp_model.OPTIMAL and solver.deterministic_time < det * 0.99
            )
            or time.perf_counter() > deadline,
            "solve_phase_s": solve_s,
            "polish_s": polish_s,
            "pool": len(cands),
            "seed": seed,
            "workers": workers,
            "bypass_in_model": bypass,
        },
    )
    return res

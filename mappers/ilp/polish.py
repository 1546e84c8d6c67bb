"""Local search with the caller's cost model around the ILP's solutions.

The CP-SAT model optimises a surrogate built from the analytical model's
terms (tangent under-estimates of products of loop factors, stationarity
instead of every loop order, bypass only on small spaces). These helpers
re-rank and polish its solutions with the *caller's* model:

* :func:`descend`: steepest descent over one move at a time -- one prime
  factor of a rank moved to another slot, one keep/bypass bit flipped (level,
  tensor), or one level's stationary tensor changed. Each step scores the
  whole neighbourhood in one batch (``evaluate_batch``) and takes the best
  move; the budget is a count of evaluations, so runs repeat exactly.
* :func:`best_order_classes`: coordinate descent over every loop-order class
  of each level (:meth:`MapSpace.order_classes`), the orders the stationarity
  choice does not cover.
* :func:`best_keeps`: every bypass choice for one tiling, in one batch.
"""

from __future__ import annotations

import math
import time

from mappers.scoring import Scorer
from mappers.space import MapSpace

#: relative improvement a move must bring (guards against float noise)
EPS = 1e-9
#: exchanges are tried with every bypass choice up to this many choices
EXCHANGE_KEEP_CHOICES = 64


def _late(deadline: float) -> bool:
    return time.perf_counter() > deadline


def orders_for(space: MapSpace, tiling, stat) -> tuple[tuple[str, ...], ...]:
    return tuple(space.stationary_order(tiling, lvl, stat[lvl]) for lvl in range(space.nlev))


def mapping_of(space: MapSpace, tiling, stat, keeps):
    return space.to_mapping(tiling, orders_for(space, tiling, stat), keeps)


def batch_scores(scorer: Scorer, ms: list) -> list[float]:
    """The model's value of each mapping (one numpy pass when possible; the
    batch path does not validate: callers re-score the winner)."""
    if scorer.evaluate_batch is not None:
        vals = scorer.batch_values(scorer.evaluate_batch(ms))
        scorer.evaluations += len(ms)
        return [float(x) for x in vals]
    return [scorer.score(m) for m in ms]


def factor_moves(space: MapSpace, tiling, keeps, check: bool = True) -> list[dict]:
    """Tilings one prime-factor move away (a factor p of rank r moved from
    slot a to slot b); only valid ones with ``check``."""
    out = []
    for r in space.ranks:
        for p, _m in space.primes(r):
            for a in range(len(space.slots)):
                if tiling[r][a] % p:
                    continue
                for b in range(len(space.slots)):
                    if a == b:
                        continue
                    fs = list(tiling[r])
                    fs[a] //= p
                    fs[b] *= p
                    trial = dict(tiling)
                    trial[r] = tuple(fs)
                    if not check or space.violation(trial, keeps) is None:
                        out.append(trial)
    return out


def factor_swaps(space: MapSpace, tiling) -> list[dict]:
    """Tilings one exchange away: a factor p of rank r (a prime, or all of r's
    factor in that slot) moved from slot a to slot b while such a factor q of
    another rank s moves out of b, to a (a swap) or on to a third slot (a
    spatial axis or a level's loop handed from one rank to another, which no
    single move reaches without passing an invalid or worse tiling).
    Unchecked: the batch model flags overflow."""
    out = []
    nslots = len(space.slots)
    # a prime factor of a slot, or the slot's whole factor (a rank handed over
    # entirely: n's 4 PEs to k)
    moves = sorted(
        {
            (r, d, a)
            for r in space.ranks
            for p, _m in space.primes(r)
            for a in range(nslots)
            if tiling[r][a] % p == 0
            for d in (p, tiling[r][a])
        }
    )
    for r, p, a in moves:
        for s, q, b in moves:
            if s == r or a == b:
                continue
            for c in range(nslots):  # c == a: a swap; else a chain a -> b -> c
                if c == b:
                    continue
                fr, fs = list(tiling[r]), list(tiling[s])
                fr[a] //= p
                fr[b] *= p
                fs[b] //= q
                fs[c] *= q
                trial = dict(tiling)
                trial[r], trial[s] = tuple(fr), tuple(fs)
                out.append(trial)
    return out


def keep_flips(space: MapSpace, tiling, keeps, check: bool = True) -> list[tuple]:
    """Bypass choices one keep/bypass bit away (only valid ones with ``check``)."""
    keeps = tuple(keeps) if keeps is not None else (None,) * space.nlev
    out = []
    for lvl in range(1, space.feed + 1):
        hold = [t for t in space.tensors if t in space.holdable[lvl]]
        if not hold:
            continue
        kept = set(space.kept(lvl, keeps[lvl]))
        for t in hold:
            new = kept ^ {t}
            entry = None if new == set(hold) else tuple(x for x in hold if x in new)
            trial = keeps[:lvl] + (entry,) + keeps[lvl + 1 :]
            if not check or space.violation(tiling, trial) is None:
                out.append(trial)
    return out


def descend(
    space: MapSpace,
    scorer: Scorer,
    tiling,
    stat,
    keeps,
    budget: int,
    deadline: float = math.inf,
    exchanges: bool = False,
):
    """Steepest descent from ``(tiling, stat, keeps)``; returns the local
    optimum ``(value, tiling, stat, keeps)`` (at most ``budget`` evaluations;
    ``deadline``, a ``time.perf_counter()`` value, is a safety net only).
    With ``exchanges``, a local optimum of single moves is left through the
    best improving :func:`factor_swaps` exchange (with each keep flip), as long
    as that neighbourhood fits the budget left."""
    start = scorer.evaluations
    keeps = tuple(keeps) if keeps is not None else (None,) * space.nlev
    stat = tuple(stat)
    cur = (dict(tiling), stat, keeps)
    v = scorer.score(mapping_of(space, *cur))
    tlevels = [lvl for lvl in range(space.nlev) if any(s.level == lvl for s in space.slots)]
    while scorer.evaluations - start < budget and not _late(deadline):
        t, st, kp = cur
        # unchecked moves: the batch model flags capacity / fan-out overflow
        # (inf), and the best ones are checked against the space's rules below
        cands = [(x, st, kp) for x in factor_moves(space, t, kp, check=False)]
        cands += [(t, st, k) for k in keep_flips(space, t, kp, check=False)]
        for lvl in tlevels:
            for opt in (None, *space.tensors):
                if opt != st[lvl]:
                    cands.append((t, st[:lvl] + (opt,) + st[lvl + 1 :], kp))
        if not cands:
            break
        better = _best_move(space, scorer, cands, v)
        if better is None and exchanges:
            # at a local optimum of single moves: the wider exchange
            # neighbourhood (variable-neighbourhood descent), within budget
            left = budget - (scorer.evaluations - start)
            # an exchange often pays only with other tensors kept (the rank
            # that now spans the PEs changes which operand is reused): every
            # bypass choice where there are few, else one flip away
            kps = space.keep_options()
            if len(kps) > EXCHANGE_KEEP_CHOICES:
                kps = [kp, *keep_flips(space, t, kp, check=False)]
            swaps = [(x, st, k) for x in factor_swaps(space, t) for k in kps]
            if not swaps or len(swaps) > left:
                break
            better = _best_move(space, scorer, swaps, v)
        if better is None:
            break
        v, cur = better
    return (v, *cur)


def _best_move(space: MapSpace, scorer: Scorer, cands: list, v: float):
    """The best candidate better than ``v`` that the space allows, as
    ``(value, candidate)``, or None (one batch; the best 8 are validated)."""
    ms = [mapping_of(space, *c) for c in cands]
    vals = batch_scores(scorer, ms)
    for i in sorted(range(len(ms)), key=lambda j: vals[j])[:8]:
        if not vals[i] < v * (1 - EPS):
            break
        if space.violation(cands[i][0], cands[i][2]) is not None:
            continue
        tv = scorer.score(ms[i])  # validated, full metrics
        if tv < v * (1 - EPS):
            return tv, cands[i]
    return None


def best_order_classes(space: MapSpace, scorer: Scorer, tiling, stat, keeps, cap: int = 256):
    """Coordinate descent over each level's loop-order classes (at most
    ``cap`` per level); returns ``(value, orders)``."""
    orders = list(orders_for(space, tiling, stat))
    v = scorer.score(space.to_mapping(tiling, tuple(orders), keeps))
    for _sweep in range(2):
        improved = False
        for lvl in range(space.nlev):
            opts = space.order_classes(tiling, lvl, keeps)[:cap]
            if len(opts) < 2:
                continue
            ms = [
                space.to_mapping(tiling, tuple(orders[:lvl] + [o] + orders[lvl + 1 :]), keeps)
                for o in opts
            ]
            vals = batch_scores(scorer, ms)
            i = min(range(len(ms)), key=lambda j: vals[j])
            if vals[i] < v * (1 - EPS):
                tv = scorer.score(ms[i])
                if tv < v * (1 - EPS):
                    v, orders[lvl], improved = tv, opts[i], True
        if not improved:
            break
    return v, tuple(orders)


def best_keeps(space: MapSpace, scorer: Scorer, tiling, stat, limit: int = 4096):
    """The best bypass choice for a tiling (one batch; ``math.inf, None`` when
    none fits, or when there are more than ``limit`` choices)."""
    opts = space.keep_options()
    if len(opts) > limit:
        return math.inf, None
    orders = orders_for(space, tiling, stat)
    opts = [k for k in opts if space.violation(tiling, k) is None]
    if not opts:
        return math.inf, None
    ms = [space.to_mapping(tiling, orders, k) for k in opts]
    vals = batch_scores(scorer, ms)
    i = min(range(len(ms)), key=lambda j: vals[j])
    return scorer.score(ms[i]), opts[i]


def best_stationarity(space: MapSpace, scorer: Scorer, tiling, stat, keeps):
    """Coordinate descent over the stationary tensor of each level."""
    stat = list(stat)
    v = scorer.score(mapping_of(space, tiling, stat, keeps))
    for _sweep in range(2):
        improved = False
        for lvl in range(space.nlev):
            for opt in (None, *space.tensors):
                if opt == stat[lvl]:
                    continue
                trial = list(stat)
                trial[lvl] = opt
                tv = scorer.score(mapping_of(space, tiling, trial, keeps))
                if tv < v:
                    v, stat, improved = tv, trial, True
        if not improved:
            break
    return v, tuple(stat)


def iterated_descent(
    space: MapSpace,
    scorer: Scorer,
    state,
    budget: int,
    seed: int,
    kick: int = 3,
    deadline: float = math.inf,
):
    """Iterated local search: from the best state so far, apply ``kick``
    random single moves (factor moves and bypass flips; a seeded generator, so
    runs repeat) and descend again; keep the result when it is better. Stops
    after ``budget`` evaluations. ``state`` = ``(value, tiling, stat, keeps)``."""
    import random

    rng = random.Random(seed)
    start = scorer.evaluations
    best = state
    while scorer.evaluations - start < budget and not _late(deadline):
        _v, t, st, kp = best
        for _k in range(kick):
            moves = [(x, kp) for x in factor_moves(space, t, kp)]
            moves += [(t, k) for k in keep_flips(space, t, kp)]
            if not moves:
                break
            t, kp = moves[rng.randrange(len(moves))]
        left = budget - (scorer.evaluations - start)
        res = descend(space, scorer, t, st, kp, max(1, left), deadline)
        if res[0] < best[0] * (1 - EPS):
            best = res
    return best

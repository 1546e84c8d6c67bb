"""Valid lower bounds on the analytical model's objectives over a mapping space.

The ILP reports ``bound`` and ``gap`` against these, not against its
surrogate: every term below is a quantity the analytical model
(``sim/analytical/core.py``) can never go under for *any* mapping of the
space (exact factorisations, any bypass choice, any loop order), in the
model's own units (seconds, pJ, pJ*s, bytes). The arguments:

* **Compulsory traffic.** A tensor moves from the outermost level to the
  first level below that keeps it (or to the compute units) at least once:
  the model's count is the child's tile footprint times the loops above it,
  and the loops above include every factor of the tensor's ranks, so the
  count is at least ``min over tile shapes of (tiles x clipped extents)``,
  minimised dimension by dimension (ranks shared between dimensions: no
  bound). Outputs are written back at least once (their full size).
* **Compute.** The temporal loops run ``points / S`` times where ``S``, the
  spatial product, divides the iteration count and is at most the PEs /
  fan-outs; a 2D array pays at least one fill-and-drain skew.
* **Latency** = the max of compute and every level's transfers (the
  analytical model adds a single-buffered level's tile moves to the compute).
* **Energy** = compute energy (exact: no padding) + compulsory outermost
  traffic + per input, the cheapest way to deliver its ``points / multicast``
  operands (from the outermost level, or from a level that must first be
  filled with at least the compulsory traffic) + static power x the latency
  bound. **EDP** = energy bound x latency bound (both are minimised
  independently, so the product bounds every mapping's product).

A test checks ``bound <= exhaustive optimum`` on the 20 small problems.
"""

from __future__ import annotations

import itertools
import math

from mappers.factors import divisors
from mappers.space import MapSpace
from workloads.ir import Access


def compulsory_elements(space: MapSpace, acc: Access) -> float:
    """Fewest elements of ``acc`` any mapping moves between two levels."""
    ranks_seen: set[str] = set()
    total = 1.0
    for ix in acc.indices:
        rs = [r for r, _c in ix.terms]
        if ranks_seen & set(rs) or len(set(rs)) != len(rs):
            return 0.0  # a rank in two dimensions: no per-dimension argument
        ranks_seen |= set(rs)
        full = ix.extent(space.sizes)
        best = math.inf
        for ds in itertools.product(*(divisors(space.sizes[r]) for r in rs)):
            tiles = math.prod(space.sizes[r] // d for r, d in zip(rs, ds, strict=True))
            ext = 1 + sum(abs(c) * (d - 1) for (_r, c), d in zip(ix.terms, ds, strict=True))
            best = min(best, tiles * min(ext, full))
        total *= best
    return total


def _max_spatial(space: MapSpace) -> int:
    """Largest spatial product any tiling can have (a divisor of the
    iteration count within the PEs and the fan-out bounds)."""
    cap = space.pes
    bounds = [s.bound for s in space.slots if s.bound is not None]
    cap = min(cap, math.prod(bounds)) if bounds else 1
    if space.level_limit:
        cap = min(cap, math.prod(space.level_limit.values()))
    points = math.prod(space.sizes.values())
    # a divisor of points, built from the ranks' divisors
    cands = {1}
    for r in space.ranks:
        cands = {c * d for c in cands for d in divisors(space.sizes[r]) if c * d <= cap}
    best = max(cands) if cands else 1
    return min(best, points)


def _multicast_cap(space: MapSpace, tensor: str, level: int) -> float:
    """Most instances one read at ``level`` can feed (multicast over ranks
    irrelevant to ``tensor`` on the fan-outs below ``level``)."""
    irr = [r for r in space.ranks if r not in space.relevant[tensor]]
    out = tensor == space.output
    cap = 1.0
    for s in space.slots:
        if s.bound is None or s.level < level:
            continue
        lv = space.levels[s.level]
        if lv.spatial_reduce if out else lv.multicast:
            cap *= s.bound
    return float(min(cap, space.pes, math.prod(space.sizes[r] for r in irr)))


def _transfer_cycles_bound(
    space: MapSpace, compute: float, fold, comp, bytes_, inputs, points
) -> float:
    """Fewest cycles given the compute bound: per input, the level ``p`` that
    feeds the compute units (the innermost level keeping it) reads
    ``points / multicast`` operands over at most the instances above it, and
    was filled with at least the compulsory traffic; the outermost level reads
    every input and writes the output at least once. Transfers at double
    buffered levels overlap compute, the others add (as in the model);
    minimised over every choice of ``p`` per input.

    On a 2D array every fold pays the skew (``folds * (t_in * cpp + skew) - 1``)
    and the pipeline fill of a double-buffered level at or above the array is
    its transfer over at most ``folds`` iterations: the bound is minimised over
    the number of folds (a divisor of the iteration count)."""
    array, skew = fold
    folds = [1] if array < 0 else [d for d in divisors(points)]
    nl_feed = space.feed
    inst_cap = []
    for lvl in range(space.nlev):
        bounds = [s.bound for s in space.slots if s.bound is not None and s.level < lvl]
        inst_cap.append(float(min(space.pes, math.prod(bounds))) if bounds else 1.0)
    options = []
    for t in inputs:
        opts = [0] + [lvl for lvl in range(1, nl_feed + 1) if t in space.holdable[lvl]]
        options.append(opts)
    best = math.inf
    for choice in itertools.product(*options):
        rd = [0.0] * space.nlev
        wr = [0.0] * space.nlev
        wr[0] = comp[space.output] * bytes_[space.output]
        for t, p in zip(inputs, choice, strict=True):
            deliver = points / _multicast_cap(space, t, p) * bytes_[t]
            if p == 0:
                rd[0] += max(comp[t] * bytes_[t], deliver)
            else:
                rd[0] += comp[t] * bytes_[t]
                rd[p] += deliver
                wr[p] += comp[t] * bytes_[t]
        over = 0.0
        for lvl, lv in enumerate(space.levels):
            if rd[lvl] == 0 and wr[lvl] == 0:
                continue
            inst = inst_cap[lvl]
            rbw, wbw = lv.read_bw_bytes_per_cycle, lv.write_bw_bytes_per_cycle
            if lv.shared_bw:
                x = (rd[lvl] + wr[lvl]) / (inst * rbw) if rbw > 0 else 0.0
            else:
                x = max(
                    rd[lvl] / (inst * rbw) if rbw > 0 else 0.0,
                    wr[lvl] / (inst * wbw) if wbw > 0 else 0.0,
                )
            # every level's port time bounds the latency (the pipeline fill
            # and a single-buffered level's tile moves only add to it)
            over = max(over, x)
        if array < 0:
            best = min(best, max(compute, over))
            continue
        for f in folds:
            best = min(best, max(compute + f * skew - 1.0, over))
    return best


def lower_bounds(space: MapSpace) -> dict[str, float]:
    """``{objective: lower bound}`` in the analytical model's units."""
    arch = space.arch
    cu = arch.unit(space.unit)
    points = space.einsum.iteration_points
    top = space.levels[0]
    # ---------------------------------------------------------- traffic
    comp = {a.tensor: compulsory_elements(space, a) for a in space.accesses}
    bytes_ = {a.tensor: a.bits / 8 for a in space.accesses}
    inputs = [t for t in space.tensors if t != space.output]
    rd_b = sum(comp[t] * bytes_[t] for t in inputs)
    wr_b = comp[space.output] * bytes_[space.output]
    traffic = rd_b + wr_b
    # ---------------------------------------------------------- latency
    cpp = sum(k / cu.ops_per_cycle[cl] for cl, k in space.op_weights.items())
    compute = points / _max_spatial(space) * cpp
    array = -1  # the level whose temporal loops (and those above) are folds
    if cu.kind == "array2d" and cpp > 0:
        for lvl in range(space.feed + 1):
            if space.levels[lvl].fanout > 1:
                array = lvl
    # fill and drain of a fold (the space's mappings use the unit's dataflow)
    skew = (2.0 * cu.rows if cu.dataflow in ("ws", "is") else cu.rows) + cu.cols - 2.0
    cycles = _transfer_cycles_bound(space, compute, (array, skew), comp, bytes_, inputs, points)
    latency = cycles / arch.clock_hz

    # ----------------------------------------------------------- energy
    def per_word(t: str, lvl: int) -> float:
        return bytes_[t] * 8 / space.levels[lvl].word_bits

    energy = sum(
        points * k * cu.energy_pj_per_op.get(cl, 0.0) for cl, k in space.op_weights.items()
    )
    energy += comp[space.output] * per_word(space.output, 0) * top.write_energy_pj_per_word
    for t in inputs:
        e0 = top.read_energy_pj_per_word * per_word(t, 0)
        best = e0 * max(comp[t], points / _multicast_cap(space, t, 0))
        for lvl in range(1, space.feed + 1):
            if t not in space.holdable[lvl]:
                continue
            lv = space.levels[lvl]
            w = per_word(t, lvl)
            best = min(
                best,
                e0 * comp[t]
                + lv.write_energy_pj_per_word * w * comp[t]
                + lv.read_energy_pj_per_word * w * points / _multicast_cap(space, t, lvl),
            )
        energy += best
    static_w = arch.static_power_w + sum(lv.leakage_w * lv.instances for lv in arch.levels)
    static_w += sum(c.leakage_w for c in arch.compute)
    energy += static_w * latency * 1e12
    return {
        "latency": latency,
        "energy": energy,
        "edp": energy * latency,
        "dram_traffic": traffic,
    }

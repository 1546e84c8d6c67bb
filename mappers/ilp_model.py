"""The cost terms the ILP optimises, evaluated in plain Python.

The ILP minimises a log-domain *surrogate* of the analytical model: every
traffic term is ``tile x (outer loop trips) x (spatial copies)``, i.e. a
product of loop factors, so its logarithm is linear in the factor-assignment
variables. This module computes the same terms for a concrete mapping, so the
solver's formulation can be checked against brute force (tests) and so the
mapper can run without a cost model for debugging. The mapper always *reports*
the caller's model (``sim.analytical``), never this surrogate.

Terms (Timeloop conventions, simplified):

* a tensor moves from its parent (the next outer level that keeps it) into a
  level that keeps it once per iteration of the temporal loops above that
  level, except the innermost loops of the level just above that are
  irrelevant to it (they re-use the tile: "stationarity");
* the parent reads one copy per distinct tile across the fan-out
  (multicast); each child instance writes its own copy;
* compute reads every operand from its innermost keeping level once per
  operation, and updates the output there;
* latency = max(compute cycles, per-level transfer cycles = bytes / bandwidth);
* energy = actions x energy per action + MACs x energy per op + static power x time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mappers.ilp_space import _OP_CLASS, MapSpace


@dataclass(frozen=True)
class Transfer:
    """One tensor's move from level ``parent`` into level ``child``."""

    tensor: str
    parent: int
    child: int


def transfers(space: MapSpace, keeps=None) -> list[Transfer]:
    out = []
    for t in space.tensors:
        prev = 0
        for lvl in range(1, space.nlev):
            if t in space.kept(lvl, None if keeps is None else keeps[lvl]):
                out.append(Transfer(t, prev, lvl))
                prev = lvl
    return out


def innermost_keeper(space: MapSpace, tensor: str, keeps=None) -> int:
    lvl = 0
    for i in range(space.nlev):
        if tensor in space.kept(i, None if keeps is None else keeps[i]):
            lvl = i
    return lvl


def words(space: MapSpace, tensor: str, level: int, elements: float) -> float:
    return elements * space.tensor_bits(tensor) / space.levels[level].word_bits


def op_rate(space: MapSpace) -> tuple[float, float]:
    """(ops per cycle per PE, pJ per op) of the unit the Einsum runs on."""
    cu = space.arch.unit(space.unit)
    cls = _OP_CLASS.get(space.einsum.map_op, "mac")
    return float(cu.ops_per_cycle.get(cls, 1.0) or 1.0), float(cu.energy_pj_per_op.get(cls, 0.0))


@dataclass
class SurrogateMetrics:
    """Duck-typed like ``sim.metrics.Metrics`` for the fields searches read."""

    cycles: float
    latency_s: float
    energy_pj: float
    traffic_bytes: dict[str, dict[str, float]]


def surrogate_metrics(space: MapSpace, tiling, orders, keeps=None) -> SurrogateMetrics:
    """The ILP's cost terms for a concrete (tiling, orders, keeps)."""
    t_slots = {s.level: i for i, s in enumerate(space.slots) if s.kind == "T"}
    traffic: dict[str, dict[str, float]] = {lv.name: {} for lv in space.levels}
    level_bytes = [0.0] * space.nlev
    energy = 0.0
    for tr in transfers(space, keeps):
        acc = next(a for a in space.accesses if a.tensor == tr.tensor)
        rel = space.relevant[tr.tensor]
        tile = space.tile_elements(acc, space.cumulative(tiling, tr.child))
        trips = 1
        for lvl in range(tr.child):
            trips *= math.prod(tiling[r][t_slots[lvl]] for r in space.ranks)
        # trailing irrelevant loops of the level just above the child
        for r in reversed(orders[tr.child - 1]):
            if r in rel:
                break
            trips //= tiling[r][t_slots[tr.child - 1]]
        s_rel = s_all = 1
        for i, s in enumerate(space.slots):
            if s.kind != "T" and s.level < tr.child:
                for r in space.ranks:
                    s_all *= tiling[r][i]
                    if r in rel:
                        s_rel *= tiling[r][i]
        bits = space.tensor_bits(tr.tensor)
        parent_elems = tile * trips * s_rel
        child_elems = tile * trips * s_all
        pl, cl = space.levels[tr.parent], space.levels[tr.child]
        e_p = pl.write_energy_pj_per_word if tr.tensor == space.output else pl.read_energy_pj_per_word
        e_c = cl.read_energy_pj_per_word if tr.tensor == space.output else cl.write_energy_pj_per_word
        energy += words(space, tr.tensor, tr.parent, parent_elems) * e_p
        energy += words(space, tr.tensor, tr.child, child_elems) * e_c
        pb, cb = parent_elems * bits / 8, child_elems * bits / 8
        traffic[pl.name][tr.tensor] = traffic[pl.name].get(tr.tensor, 0.0) + pb
        traffic[cl.name][tr.tensor] = traffic[cl.name].get(tr.tensor, 0.0) + cb
        level_bytes[tr.parent] += pb / pl.instances
        level_bytes[tr.child] += cb / cl.instances
    opc, e_op = op_rate(space)
    points = space.einsum.iteration_points
    energy += points * e_op
    for t in space.tensors:
        lvl = innermost_keeper(space, t, keeps)
        lv = space.levels[lvl]
        e = lv.write_energy_pj_per_word if t == space.output else lv.read_energy_pj_per_word
        energy += words(space, t, lvl, points) * e
    compute = math.prod(tiling[r][i] for r in space.ranks for i in t_slots.values()) / opc
    cycles = compute
    for lvl, lv in enumerate(space.levels):
        bw = lv.read_bw_bytes_per_cycle + (0 if lv.shared_bw else lv.write_bw_bytes_per_cycle)
        if bw > 0:
            cycles = max(cycles, level_bytes[lvl] / bw)
    latency = cycles / space.arch.clock_hz
    energy += space.arch.static_power_w * latency * 1e12
    return SurrogateMetrics(cycles, latency, energy, traffic)

"""Choose the GPU kernels of a cascade: a set-partition ILP over fusion groups.

On a GPU every kernel is a fusion group of consecutive Einsums (in a
dependence order): its intermediates stay on chip (shared memory and
registers of each SM), its inputs come from HBM (through L2) and its
outputs go back. The cost model (``sim.gpu.ilp_plan``) prices each
candidate group at its best tiling; this module picks the groups:

* one boolean per candidate kernel (:class:`KernelOption`, Einsums
  ``[start, stop)``);
* every Einsum is covered by exactly one chosen kernel;
* the objective is the time of back-to-back calls, ``max(sum GPU time, sum
  host time)``: the GPU runs its kernels one after another, the host issues
  them one after another and the two overlap (ties broken by total GPU plus
  host time).

The residency ILP of :mod:`mappers.cascade.fusion` cannot express this: a
kernel's cost depends on its own tiling (query block, CTA tile) and on ranks
streamed inside it (a FlashAttention kernel streams keys through a
recurrence), and each kernel pays a launch and host cost. Solved with CP-SAT
(deterministic work limit, one worker); :func:`solve_dp` (exact for the
GPU-time sum) and :func:`brute_force` are the baselines the tests compare
against.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from mappers.schedule import ScheduleError


@dataclass(frozen=True)
class KernelOption:
    """A candidate kernel covering Einsums ``start .. stop - 1``."""

    start: int
    stop: int
    gpu_s: float
    host_s: float
    label: str = ""


@dataclass(frozen=True)
class GroupingProblem:
    n: int
    options: tuple[KernelOption, ...]


@dataclass(frozen=True)
class GroupingResult:
    chosen: tuple[int, ...]
    gpu_s: float
    host_s: float
    objective_s: float
    bound_s: float
    status: str
    method: str


def objective_s(p: GroupingProblem, chosen: Sequence[int]) -> tuple[float, float, float]:
    """(max(GPU, host), GPU, host) seconds of a choice."""
    g = sum(p.options[i].gpu_s for i in chosen)
    h = sum(p.options[i].host_s for i in chosen)
    return max(g, h), g, h


def check(p: GroupingProblem, chosen: Sequence[int]) -> None:
    """Raise unless ``chosen`` covers every Einsum exactly once."""
    cover = [0] * p.n
    for i in chosen:
        o = p.options[i]
        for j in range(o.start, o.stop):
            cover[j] += 1
    bad = [j for j, k in enumerate(cover) if k != 1]
    if bad:
        raise ScheduleError(f"kernel choice covers Einsum {bad[0]} {cover[bad[0]]} times")


def _result(p: GroupingProblem, chosen: Sequence[int], status: str, method: str,
            bound: float | None = None) -> GroupingResult:  # fmt: skip
    check(p, chosen)
    t, g, h = objective_s(p, chosen)
    ordered = tuple(sorted(chosen, key=lambda i: p.options[i].start))
    return GroupingResult(ordered, g, h, t, t if bound is None else min(bound, t), status, method)


def _by_start(p: GroupingProblem) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in range(p.n)]
    for i, o in enumerate(p.options):
        if not 0 <= o.start < o.stop <= p.n:
            raise ScheduleError(f"kernel option {i} spans {o.start}..{o.stop} outside 0..{p.n}")
        out[o.start].append(i)
    return out


def solve_dp(p: GroupingProblem) -> GroupingResult:
    """Least total GPU time (shortest path over Einsum positions; host time ignored)."""
    starts = _by_start(p)
    best = [math.inf] * (p.n + 1)
    back: list[int | None] = [None] * (p.n + 1)
    best[0] = 0.0
    for j in range(p.n):
        if best[j] == math.inf:
            continue
        for i in starts[j]:
            o = p.options[i]
            v = best[j] + o.gpu_s
            if v < best[o.stop]:
                best[o.stop], back[o.stop] = v, i
    if best[p.n] == math.inf:
        raise ScheduleError("no choice of kernels covers every Einsum")
    chosen = []
    j = p.n
    while j > 0:
        i = back[j]
        assert i is not None
        chosen.append(i)
        j = p.options[i].start
    return _result(p, chosen, "OPTIMAL", "dp")


def brute_force(p: GroupingProblem, limit: int = 1 << 18) -> GroupingResult:
    """Every partition into options (small problems only); exact for the ILP's objective."""
    starts = _by_start(p)
    best: tuple[float, float, tuple[int, ...]] | None = None
    count = 0

    def walk(j: int, chosen: tuple[int, ...]) -> None:
        nonlocal best, count
        if j == p.n:
            count += 1
            if count > limit:
                raise ScheduleError(f"brute force over more than {limit} partitions")
            t, g, h = objective_s(p, chosen)
            key = (t, g + h, chosen)
            if best is None or key[:2] < best[:2]:
                best = key
            return
        for i in starts[j]:
            walk(p.options[i].stop, (*chosen, i))

    walk(0, ())
    if best is None:
        raise ScheduleError("no choice of kernels covers every Einsum")
    return _result(p, best[2], "OPTIMAL", "brute_force")


#: integer time unit of the CP-SAT model (seconds per unit): 10 ns keeps the
#: lexicographic objective (time x (2 x bound + 1) + tie-break) well inside 2^62
_UNIT_S = 1e-8


def solve(
    p: GroupingProblem,
    *,
    hint: Sequence[int] | None = None,
    work_limit: float = 10.0,
    seed: int = 0,
) -> GroupingResult:
    """The ILP (CP-SAT, deterministic work limit); never worse than ``hint``."""
    from ortools.sat.python import cp_model

    starts = _by_start(p)
    if not starts or not starts[0]:
        raise ScheduleError("no kernel option starts at the first Einsum")
    m = cp_model.CpModel()
    x = [m.NewBoolVar(f"k{i}") for i in range(len(p.options))]
    cover: list[list[int]] = [[] for _ in range(p.n)]
    for i, o in enumerate(p.options):
        for j in range(o.start, o.stop):
            cover[j].append(i)
    for j, opts in enumerate(cover):
        if not opts:
            raise ScheduleError(f"no kernel option covers Einsum {j}")
        m.AddExactlyOne(x[i] for i in opts)

    def units(s: float) -> int:
        return int(math.ceil(s / _UNIT_S - 1e-9))

    gs = [units(o.gpu_s) for o in p.options]
    hs = [units(o.host_s) for o in p.options]
    # bound the time by a feasible choice (the hint, or the least-GPU-time one)
    warm = list(hint) if hint is not None else list(solve_dp(p).chosen)
    ub = max(sum(gs[i] for i in warm), sum(hs[i] for i in warm))
    g = m.NewIntVar(0, sum(gs), "gpu")
    h = m.NewIntVar(0, sum(hs), "host")
    t = m.NewIntVar(0, ub, "time")
    m.Add(g == sum(gi * xi for gi, xi in zip(gs, x, strict=True)))
    m.Add(h == sum(hi * xi for hi, xi in zip(hs, x, strict=True)))
    m.Add(t >= g)
    m.Add(t >= h)
    # lexicographic: time first, then total GPU + host time (at most 2 ub when t <= ub)
    scale = 2 * ub + 1
    m.Minimize(t * scale + g + h)
    if hint is not None:
        chosen = set(hint)
        for i, xi in enumerate(x):
            m.AddHint(xi, i in chosen)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = int(seed)
    solver.parameters.max_deterministic_time = float(work_limit)
    status = solver.Solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        if hint is not None:
            return _result(p, list(hint), "HINT", "ilp")
        raise ScheduleError("the kernel-grouping ILP found no solution within its work limit")
    chosen = [i for i, xi in enumerate(x) if solver.Value(xi)]
    bound_units = solver.BestObjectiveBound() / scale
    res = _result(
        p,
        chosen,
        "OPTIMAL" if status == cp_model.OPTIMAL else "FEASIBLE",
        "ilp",
        bound=bound_units * _UNIT_S,
    )
    if hint is not None:
        warm = _result(p, list(hint), "FEASIBLE", "ilp")
        if warm.objective_s < res.objective_s - 1e-12:
            return warm
    return res

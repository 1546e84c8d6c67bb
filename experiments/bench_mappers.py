"""Mapper benchmark: ILP (CP-SAT) vs random sampling, greedy and exhaustive search.

Two parts, each printing a table:

* ``small``: GEMMs and convolutions small enough to enumerate. For every
  objective, the ILP's analytical-model value over the exhaustive optimum
  over the same space (exact factorisations x every keep/bypass choice x
  every loop-order class), the ILP's time and its reported gap (against a
  valid lower bound, ``mappers/ilp/bounds.py``).
* ``large``: ResNet-50 layers, BERT-base layer GEMMs and attention Einsums
  on ``eyeriss_like``, ``tpu_like`` and ``fusemax_cloud``. Per Einsum the
  ILP's EDP and solve time, the best EDP of random sampling given 10x the
  ILP's wall time, and the greedy mapping's EDP; then the geometric-mean
  advantage of the ILP over random search, the median / worst solve time
  and the median gap.

Run: ``python -m experiments.bench_mappers [--part small|large|all] [--quick]``.
Times are wall-clock on whatever machine runs it (CP-SAT with one worker,
cut by deterministic time; the local search by evaluation counts).
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import sys
import time
from typing import Any

from experiments.problem_sets import (  # noqa: F401 - re-exported for scripts
    ARCHS,
    SMALL_PROBLEMS,
    bert_einsums,
    resnet_layers,
)
from hw_models.arch import Architecture
from workloads.ir import Einsum

OBJECTIVES = ("latency", "energy", "edp", "dram_traffic")


# --------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------
def _evaluators(e: Einsum, a: Architecture):
    from sim.analytical.model import evaluate, evaluate_batch

    return (lambda m: evaluate(e, a, m)), (lambda ms: evaluate_batch(e, a, ms))


def run_small(problems=SMALL_PROBLEMS, time_limit_s: float = 1.0, out=sys.stdout) -> dict[str, Any]:
    """ILP / exhaustive ratio per problem and objective."""
    from mappers.baselines.exhaustive import exhaustive_optima
    from mappers.search import search

    print("\n## ILP vs exhaustive (analytical model; ratio = ILP / optimum)", file=out)
    print(
        f"{'#':>2} {'problem':32} {'points':>7} {'exh_s':>6} "
        + " ".join(f"{o[:7]:>8} {'t_s':>5} {'gap':>4}" for o in OBJECTIVES),
        file=out,
    )
    ratios: dict[str, list[float]] = {o: [] for o in OBJECTIVES}
    gaps: dict[str, list[float]] = {o: [] for o in OBJECTIVES}
    times: list[float] = []
    ex_times: list[float] = []
    bad_bounds = 0
    for i, (e, a) in enumerate(problems):
        ev, evb = _evaluators(e, a)
        t0 = time.perf_counter()
        ex = exhaustive_optima(
            e, a, objectives=OBJECTIVES, evaluate=ev, evaluate_batch=evb, max_points=10**6
        )
        t_ex = time.perf_counter() - t0
        ex_times.append(t_ex)
        cells = []
        for o in OBJECTIVES:
            r = search(
                e,
                a,
                mapper="ilp",
                objective=o,
                evaluate=ev,
                evaluate_batch=evb,
                time_limit_s=time_limit_s,
            )
            ratio = r.objective_value / ex[o].objective_value
            ratios[o].append(ratio)
            gaps[o].append(r.gap)
            bad_bounds += r.bound > ex[o].objective_value * (1 + 1e-9)
            times.append(r.solve_time_s)
            cells.append(f"{ratio:8.4f} {r.solve_time_s:5.2f} {100 * r.gap:3.0f}%")
        dims = "x".join(str(s) for s in e.rank_sizes.values())
        label = f"{e.name} {dims} f{a.levels[1].fanout_x}x{a.levels[1].fanout_y}"
        print(
            f"{i:2d} {label:32} {ex['edp'].notes['points']:7d} {t_ex:6.1f} " + " ".join(cells),
            file=out,
            flush=True,
        )
    worst = {o: max(v) for o, v in ratios.items()}
    print(
        "worst ratio per objective: " + ", ".join(f"{o} {v:.4f}" for o, v in worst.items()),
        file=out,
    )
    print(
        "median gap per objective: "
        + ", ".join(f"{o} {100 * statistics.median(v):.0f}%" for o, v in gaps.items())
        + f"; bounds above the optimum: {bad_bounds}",
        file=out,
    )
    print(
        f"ILP time: median {statistics.median(times):.2f} s, worst {max(times):.2f} s; "
        f"exhaustive time: median {statistics.median(ex_times):.1f} s, worst {max(ex_times):.1f} s",
        file=out,
    )
    return {"ratios": ratios, "times": times, "gaps": gaps, "exhaustive_times": ex_times}


def run_large(
    archs=ARCHS,
    quick: bool = False,
    time_limit_s: float = 1.0,
    random_factor: float = 10.0,
    out=sys.stdout,
) -> dict[str, Any]:
    """ILP vs random (10x the ILP's time) vs greedy on ResNet-50 / BERT Einsums (EDP)."""
    import hw_models
    from mappers.search import search
    from workloads.errors import EinsimError

    work = resnet_layers(quick) + bert_einsums(quick)
    print("\n## EDP (pJ*s) per Einsum: ILP vs random (10x ILP time) vs greedy", file=out)
    print(
        f"{'arch':14} {'einsum':20} {'ilp_edp':>10} {'t_s':>5} {'status':8} {'gap':>6} "
        f"{'rnd_edp':>10} {'samples':>7} {'greedy':>10} {'rnd/ilp':>8}",
        file=out,
    )
    adv: list[float] = []
    times: list[float] = []
    gaps: list[float] = []
    for an in archs:
        a = hw_models.load(an)
        for name, e in work:
            ev, evb = _evaluators(e, a)
            # the ILP and random searches: same Einsum, objective and evaluators
            timed = functools.partial(
                search, e, a, objective="edp", evaluate=ev, evaluate_batch=evb
            )
            try:
                r = timed(mapper="ilp", time_limit_s=time_limit_s)
            except EinsimError as err:
                print(f"{an:14} {name:20} ILP: {err}", file=out)
                continue
            times.append(r.solve_time_s)
            if r.gap is not None:
                gaps.append(r.gap)
            rnd_budget = random_factor * r.solve_time_s
            try:
                rr = timed(mapper="random", time_limit_s=rnd_budget, samples=None, seed=1)
                rv, ns = rr.objective_value, rr.notes["samples"]
            except EinsimError:
                rv, ns = math.inf, 0
            try:
                g = search(e, a, mapper="greedy", objective="edp", evaluate=ev).objective_value
            except EinsimError:
                g = math.nan
            ratio = rv / r.objective_value
            adv.append(ratio)
            gap = "-" if r.gap is None else f"{100 * r.gap:.0f}%"
            print(
                f"{an:14} {name:20} {r.objective_value:10.4g} {r.solve_time_s:5.2f} {r.status:8} {gap:>6} "
                f"{rv:10.4g} {ns:7d} {g:10.4g} {ratio:8.3g}",
                file=out,
                flush=True,
            )
    finite = [min(x, 1e6) for x in adv]  # random found nothing valid: capped at 1e6
    geo = math.exp(statistics.fmean(math.log(x) for x in finite)) if finite else math.nan
    print(
        f"geomean random/ILP EDP: {geo:.3g} over {len(adv)} Einsums "
        f"(ILP better on {sum(x > 1 for x in adv)}); ILP time median {statistics.median(times):.2f} s, "
        f"worst {max(times):.2f} s; median gap {100 * statistics.median(gaps):.0f}%",
        file=out,
    )
    return {"advantage": adv, "geomean": geo, "times": times, "gaps": gaps}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("small", "large", "all"), default="all")
    ap.add_argument("--quick", action="store_true", help="a subset of layers")
    ap.add_argument("--time-limit", type=float, default=1.0, help="ILP seconds per Einsum")
    ap.add_argument("--arch", action="append", help="restrict the large part to these presets")
    args = ap.parse_args(argv)
    # warm the imports (OR-Tools pulls in pandas) so they do not count as solve time
    from ortools.sat.python import cp_model  # noqa: F401

    from mappers.ilp.solve import IlpModel  # noqa: F401

    if args.part in ("small", "all"):
        probs = SMALL_PROBLEMS[::4] if args.quick else SMALL_PROBLEMS
        run_small(probs, args.time_limit)
    if args.part in ("large", "all"):
        run_large(tuple(args.arch) if args.arch else ARCHS, args.quick, args.time_limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ILP mapper against the exhaustive optimum of the same space (shared by
the tests of ``tests/mappers/ilp``).

Enumerating a problem takes about 20 s of CPU, so the optima of the 20 small
problems are recorded by ``experiments/record_exhaustive_optima.py`` in
``tests/mappers/ilp/exhaustive_optima.json``. The record is trusted only as
far as it is checked:

* each problem's fingerprint (its Einsum and every architecture field) must
  match, else the problem set changed;
* each recorded optimum is re-evaluated with today's cost model and must give
  the recorded value, else the model changed;
* a few problems (:data:`LIVE`) are enumerated live on every run and must
  give the recorded space size and optima, so the record and the enumerator
  are checked against each other;
* the ILP may never beat a recorded optimum (its space is the exhaustive
  one), which also catches a model change that opened better mappings.
"""

from __future__ import annotations

import functools
import json

import pytest

from experiments.record_exhaustive_optima import (
    DEFAULT_OUT,
    problem_fingerprint,
    solve_exhaustively,
)
from hw_models.arch import Architecture
from mappers.mapping import mapping_from_dict, validate
from mappers.search import OBJECTIVES, objective_of, search
from sim.analytical.model import evaluate, evaluate_batch
from workloads.ir import Einsum

RERUN = "rerun: python experiments/record_exhaustive_optima.py --only {idx}"

#: problems enumerated live on every run: the cheapest of each test file
#: (problems 0-9 and 10-19), one GEMM and one convolution
LIVE: tuple[int, ...] = (5, 14)


@functools.cache
def _records() -> dict:
    return json.loads(DEFAULT_OUT.read_text())["problems"]


def recorded_optima(idx: int, e: Einsum, a: Architecture) -> dict[str, float]:
    """The recorded optimum of each objective, after checking that the record
    still describes this problem under today's cost model."""
    rec = _records().get(str(idx))
    assert rec is not None, f"problem {idx} has no record; " + RERUN.format(idx=idx)
    assert rec["fingerprint"] == problem_fingerprint(e, a), (
        f"problem {idx} ({e.name} on {a.name}) changed since it was recorded; "
        + RERUN.format(idx=idx)
    )
    out = {}
    for obj in OBJECTIVES:
        opt = rec["optima"][obj]
        m = mapping_from_dict(opt["mapping"])
        validate(m, e, a)
        now = objective_of(evaluate(e, a, m), obj, a)
        assert now == pytest.approx(opt["value"], rel=1e-9), (
            f"problem {idx} {obj}: the recorded optimum now costs {now:.9g}, "
            f"recorded {opt['value']:.9g} (the cost model changed); " + RERUN.format(idx=idx)
        )
        out[obj] = opt["value"]
    return out


def recorded_space_size(idx: int) -> int:
    """The number of points of the problem's (bypass) space, as recorded."""
    return int(_records()[str(idx)]["points"])


def check_live_enumeration(idx: int, e: Einsum, a: Architecture) -> None:
    """Enumerate the problem now: the same space size and optima as recorded."""
    rec = _records()[str(idx)]
    live = solve_exhaustively(e, a)
    assert live["points"] == rec["points"]
    for obj in OBJECTIVES:
        assert live["optima"][obj]["value"] == pytest.approx(
            rec["optima"][obj]["value"], rel=1e-12
        ), (idx, obj)


def check_against_exhaustive(
    e: Einsum,
    a: Architecture,
    optima: dict[str, float],
    objectives: tuple[str, ...] = OBJECTIVES,
    time_limit_s: float = 1.0,
) -> list[float]:
    """ILP <= 1.02 x the exhaustive optimum over the same space (every tiling,
    bypass choice and loop-order class), and bound <= optimum <= ILP value."""
    ev, evb = (lambda m: evaluate(e, a, m)), (lambda ms: evaluate_batch(e, a, ms))
    ratios = []
    for obj in objectives:
        r = search(
            e,
            a,
            mapper="ilp",
            objective=obj,
            evaluate=ev,
            evaluate_batch=evb,
            time_limit_s=time_limit_s,
        )
        validate(r.mapping, e, a)
        # the reported value is the analytical model's value for the returned mapping
        assert r.objective_value == pytest.approx(
            objective_of(evaluate(e, a, r.mapping), obj, a), rel=1e-12
        )
        opt = optima[obj]
        # the bound is valid for the model over the whole space, the gap honest
        assert r.bound is not None and r.bound <= opt * (1 + 1e-9), (e.name, obj, r.bound, opt)
        assert r.gap == pytest.approx((r.objective_value - r.bound) / r.objective_value)
        ratio = r.objective_value / opt
        assert ratio >= 1 - 1e-9  # the ILP's space is the exhaustive one
        assert ratio <= 1.02, f"{e.name} {obj}: ILP {r.objective_value:.6g} vs exhaustive {opt:.6g}"
        ratios.append(ratio)
    return ratios

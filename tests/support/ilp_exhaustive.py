"""The ILP mapper against the exhaustive optimum of the same space (shared by
the tests of ``tests/mappers/ilp``)."""

from __future__ import annotations

import pytest

from mappers.baselines.exhaustive import exhaustive_optima
from mappers.mapping import validate
from mappers.search import OBJECTIVES, objective_of, search
from sim.analytical.model import evaluate, evaluate_batch


def check_against_exhaustive(e, a, objectives=OBJECTIVES, time_limit_s=1.0) -> list[float]:
    """ILP <= 1.02 x the exhaustive optimum over the same space (every tiling,
    bypass choice and loop-order class), and bound <= optimum <= ILP value."""
    ev, evb = (lambda m: evaluate(e, a, m)), (lambda ms: evaluate_batch(e, a, ms))
    # "small": exhaustive search covers the space (at most a million points,
    # else SpaceTooLarge)
    ex = exhaustive_optima(
        e, a, objectives=objectives, evaluate=ev, evaluate_batch=evb, max_points=10**6, bypass=True
    )
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
        opt = ex[obj].objective_value
        # the bound is valid for the model over the whole space, the gap honest
        assert r.bound is not None and r.bound <= opt * (1 + 1e-9), (e.name, obj, r.bound, opt)
        assert r.gap == pytest.approx((r.objective_value - r.bound) / r.objective_value)
        ratio = r.objective_value / opt
        assert ratio >= 1 - 1e-9  # the ILP's space is the exhaustive one
        assert ratio <= 1.02, f"{e.name} {obj}: ILP {r.objective_value:.6g} vs exhaustive {opt:.6g}"
        ratios.append(ratio)
    return ratios

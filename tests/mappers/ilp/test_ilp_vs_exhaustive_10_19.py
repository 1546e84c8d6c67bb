"""The ILP within 2 % of the exhaustive optimum: small problems 10-19 of
``experiments.problem_sets.SMALL_PROBLEMS`` (every objective), against the
recorded optima (checked as :mod:`ilp_exhaustive` says), one problem of
them enumerated live. The 20 are split over two files so that two test
workers share them."""

from __future__ import annotations

import pytest
from ilp_exhaustive import LIVE, check_against_exhaustive, check_live_enumeration, recorded_optima

from experiments.problem_sets import SMALL_PROBLEMS


@pytest.mark.slow
@pytest.mark.parametrize("idx", range(10, 20))
def test_ilp_within_2pct_of_exhaustive(idx: int) -> None:
    e, a = SMALL_PROBLEMS[idx]
    check_against_exhaustive(e, a, recorded_optima(idx, e, a))


@pytest.mark.slow
@pytest.mark.parametrize("idx", LIVE[1:])
def test_recorded_optima_match_a_live_enumeration(idx: int) -> None:
    e, a = SMALL_PROBLEMS[idx]
    check_live_enumeration(idx, e, a)

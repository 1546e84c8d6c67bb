"""The ILP within 2 % of the exhaustive optimum: small problems 10-19 of
``experiments.problem_sets.SMALL_PROBLEMS`` (every objective). The 20 are
split over two files so that two test workers share them."""

from __future__ import annotations

import pytest
from ilp_exhaustive import check_against_exhaustive

from experiments.problem_sets import SMALL_PROBLEMS


@pytest.mark.slow
@pytest.mark.parametrize("idx", range(10, 20))
def test_ilp_within_2pct_of_exhaustive(idx: int) -> None:
    e, a = SMALL_PROBLEMS[idx]
    check_against_exhaustive(e, a)

"""hls4ml's reuse-factor rules against a literal transcription of its loop."""

from __future__ import annotations

import math

import pytest

from sim.fpga.reuse import block_factor, closest_reuse_factor, is_valid, valid_reuse_factors


def _hls4ml_valid(n_in: int, n_out: int) -> list[int]:
    """fpga_backend.py get_valid_reuse_factors / _validate_reuse_factor, as written there."""
    out = []
    for rf in range(1, n_in * n_out + 1):
        multfactor = min(n_in, rf)
        multiplier_limit = int(math.ceil((n_in * n_out) / float(multfactor)))
        ok = ((multiplier_limit % n_out) == 0) or (rf >= n_in)
        ok = ok and (((rf % n_in) == 0) or (rf < n_in))
        ok = ok and (((n_in * n_out) % rf) == 0)
        if ok:
            out.append(rf)
    return out


@pytest.mark.parametrize("n_in,n_out", [(8, 8), (24, 120), (80, 24), (16, 10), (7, 13), (120, 8)])
def test_valid_set_matches_hls4ml_loop(n_in: int, n_out: int) -> None:
    assert list(valid_reuse_factors(n_in, n_out)) == _hls4ml_valid(n_in, n_out)
    for rf in range(1, n_in * n_out + 1):
        assert is_valid(n_in, n_out, rf) == (rf in _hls4ml_valid(n_in, n_out))


def test_closest_picks_the_nearer_and_the_smaller_on_a_tie() -> None:
    # 80 x 24: valid above n_in are the multiples of 80 dividing 1920 (.., 960, 1920)
    assert closest_reuse_factor(80, 24, 1024) == 960
    assert closest_reuse_factor(80, 24, 1500) == 1920
    # 24 x 120: multiples of 24 dividing 2880: 960 and 1440 around 1200 (tie -> 960)
    assert closest_reuse_factor(24, 120, 1200) == 960
    assert closest_reuse_factor(24, 120, 4093) == 2880  # beyond the largest: n_in * n_out
    assert closest_reuse_factor(24, 120, 1) == 1


def test_block_factor_is_macs_over_reuse() -> None:
    assert block_factor(80, 24, 960) == 2
    assert block_factor(64, 32, 16) == 64 * 32 // 16

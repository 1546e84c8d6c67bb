"""hls4ml's reuse-factor rules for a layer of ``n_in x n_out`` multiplies.

Source: ``hls4ml/backends/fpga/fpga_backend.py`` (fastmachinelearning/hls4ml),
``FPGABackend._validate_reuse_factor``, ``get_valid_reuse_factors``,
``get_closest_reuse_factor`` and ``set_closest_reuse_factor``; the Vivado and
Vitis backends call ``set_closest_reuse_factor`` for every Dense/Conv layer of
the ``resource`` strategy (``vivado_backend.py``, ``init_dense``), the
``latency`` strategy keeps the requested value. A reuse factor ``R`` is valid
when

* ``(n_in * n_out) % R == 0`` ("for QoR and execution time"), and
* ``R < n_in`` or ``R % n_in == 0``, and
* ``ceil(n_in * n_out / min(n_in, R)) % n_out == 0`` or ``R >= n_in``
  (functional correctness of the dense kernels).

An invalid request is replaced by the closest valid one, the smaller on a tie.
``block_factor = ceil(n_in * n_out / R)`` is the number of multipliers the
resource kernels instantiate (``nnet_dense_resource.h``).
"""

from __future__ import annotations

import bisect
import functools
import math


def is_valid(n_in: int, n_out: int, rf: int) -> bool:
    """hls4ml's ``_validate_reuse_factor`` (see the module docstring)."""
    if rf < 1:
        return False
    multfactor = min(n_in, rf)
    multiplier_limit = math.ceil(n_in * n_out / multfactor)
    ok = multiplier_limit % n_out == 0 or rf >= n_in
    ok = ok and (rf % n_in == 0 or rf < n_in)
    return ok and (n_in * n_out) % rf == 0


@functools.lru_cache(maxsize=4096)
def valid_reuse_factors(n_in: int, n_out: int) -> tuple[int, ...]:
    """Every valid reuse factor, ascending (hls4ml tries ``1 .. n_in*n_out``;
    only divisors of ``n_in*n_out`` can pass, so only those are tried)."""
    n = n_in * n_out
    divisors: set[int] = set()
    for d in range(1, math.isqrt(n) + 1):
        if n % d == 0:
            divisors.update((d, n // d))
    return tuple(r for r in sorted(divisors) if is_valid(n_in, n_out, r))


def closest_reuse_factor(n_in: int, n_out: int, requested: int) -> int:
    """The reuse factor hls4ml uses for ``requested`` (``get_closest_reuse_factor``)."""
    valid = valid_reuse_factors(n_in, n_out)
    pos = bisect.bisect_left(valid, requested)
    if pos == 0:
        return valid[0]
    if pos == len(valid):
        return valid[-1]
    before, after = valid[pos - 1], valid[pos]
    return after if after - requested < requested - before else before


def block_factor(n_in: int, n_out: int, rf: int) -> int:
    """Multipliers of a resource-strategy kernel: ``ceil(n_in * n_out / rf)``."""
    return math.ceil(n_in * n_out / rf)

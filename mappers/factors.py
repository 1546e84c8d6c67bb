"""Integer helpers for tiling: prime factorisation, divisors, ordered splits.

A mapping splits every rank's size into a product of factors, one per
"slot" (a storage level's temporal loop or a fan-out axis). These helpers
enumerate those splits; the ILP works on the prime factors directly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache


@lru_cache(maxsize=4096)
def prime_factors(n: int) -> tuple[tuple[int, int], ...]:
    """``((prime, multiplicity), ...)`` of ``n`` in increasing order (``()`` for 1)."""
    if n < 1:
        raise ValueError(f"prime_factors expects a positive integer, got {n}")
    out: list[tuple[int, int]] = []
    p = 2
    while p * p <= n:
        m = 0
        while n % p == 0:
            n //= p
            m += 1
        if m:
            out.append((p, m))
        p += 1 if p == 2 else 2
    if n > 1:
        out.append((n, 1))
    return tuple(out)


def prime_list(n: int) -> list[int]:
    """Prime factors of ``n`` with repetition, e.g. ``12 -> [2, 2, 3]``."""
    return [p for p, m in prime_factors(n) for _ in range(m)]


@lru_cache(maxsize=4096)
def divisors(n: int) -> tuple[int, ...]:
    """All divisors of ``n`` in increasing order."""
    divs = [1]
    for p, m in prime_factors(n):
        divs = [d * p**k for d in divs for k in range(m + 1)]
    return tuple(sorted(divs))


def count_splits(n: int, k: int) -> int:
    """Number of ordered ``k``-tuples of positive integers whose product is ``n``.

    Closed form: for each prime of multiplicity ``m`` the exponents are a
    weak composition of ``m`` into ``k`` parts, ``C(m + k - 1, k - 1)`` ways.
    """
    if k <= 0:
        return 1 if n == 1 else 0
    return math.prod(math.comb(m + k - 1, k - 1) for _, m in prime_factors(n))


def splits(
    n: int, k: int, bounds: tuple[int | None, ...] | None = None
) -> Iterator[tuple[int, ...]]:
    """Ordered ``k``-tuples of factors whose product is exactly ``n``.

    ``bounds[i]`` (if given and not None) caps factor ``i``; tuples violating a
    cap are pruned during the enumeration, not after.
    """
    if k == 0:
        if n == 1:
            yield ()
        return
    cap = None if bounds is None else bounds[0]
    rest = None if bounds is None else bounds[1:]
    if k == 1:
        if cap is None or n <= cap:
            yield (n,)
        return
    for d in divisors(n):
        if cap is not None and d > cap:
            break
        for tail in splits(n // d, k - 1, rest):
            yield (d, *tail)

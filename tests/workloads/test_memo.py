"""The bounded memo the cost models, mappers and sweeps share between the
threads of a Dask worker: its bound, its eviction order, and no failure
when threads evict at once (a plain dict evicted from two threads raised
``dictionary changed size during iteration``: an error row on Dask only)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from workloads.memo import BoundedCache


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads every microsecond, so races show within a second."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def _hammer(n_threads: int, work: Callable[[int], None]) -> list[str]:
    errors: list[str] = []

    def run(t: int) -> None:
        try:
            work(t)
        except Exception as exc:  # noqa: BLE001 - collected and asserted empty
            errors.append(repr(exc))

    threads = [threading.Thread(target=run, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return errors


def test_oldest_entry_goes_first() -> None:
    c: BoundedCache[int] = BoundedCache(3)
    for k in "abcd":
        c.put(k, ord(k))
    assert len(c) == 3 and "a" not in c and c.get("d") == ord("d")
    c.get("b")  # not an LRU: a hit does not keep "b"
    c.put("e", 0)
    assert "b" not in c and "c" in c


def test_least_recently_used_goes_first_with_lru() -> None:
    c: BoundedCache[int] = BoundedCache(3, lru=True)
    for k in "abc":
        c.put(k, 0)
    c.get("a")
    c.put("d", 0)
    assert "a" in c and "b" not in c


def test_get_or_make_builds_once_and_keeps_the_first_value() -> None:
    c: BoundedCache[list] = BoundedCache(2)
    calls = []
    first = c.get_or_make("k", lambda: calls.append(1) or [1])
    again = c.get_or_make("k", lambda: calls.append(2) or [2])
    assert first is again and calls == [1]
    with pytest.raises(ValueError, match="at least 1 entry"):
        BoundedCache(0)


@pytest.mark.parametrize("lru", [False, True])
def test_threads_evicting_at_once_never_fail(fast_switching: None, lru: bool) -> None:
    c: BoundedCache[tuple] = BoundedCache(4, lru=lru)

    def work(t: int) -> None:
        for i in range(20_000):
            key = (t, i % 37)
            value = c.get_or_make(key, lambda key=key: key)
            assert value == key
            c.put((t, -i), (t, -i))
            c.get((1 - t, i % 37))

    assert _hammer(2, work) == []
    assert len(c) <= 4


def test_the_analytical_structure_cache_is_thread_safe(
    fast_switching: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two threads costing distinct mappings through a 4-entry structure
    cache: no failure, and every result equals the one-thread result."""
    import hw_models
    from mappers.baselines.greedy import greedy_mapping
    from sim.analytical.compile import STRUCTURES
    from sim.analytical.model import evaluate
    from workloads.library import build

    arch = hw_models.load("tpu_like")
    cases = []
    for m in (16, 32, 48, 64, 96, 128):
        e = build("gemm", M=m, N=32, K=64).einsums[0]
        cases.append((e, greedy_mapping(e, arch)))
    expected = [evaluate(e, arch, mp).latency_s for e, mp in cases]
    monkeypatch.setattr(STRUCTURES, "by_id", BoundedCache(4))
    monkeypatch.setattr(STRUCTURES, "by_value", BoundedCache(4))
    orders = {0: cases, 1: cases[::-1]}
    got: dict[int, list[float]] = {0: [], 1: []}

    def work(t: int) -> None:
        for _ in range(30):
            got[t].extend(evaluate(e, arch, mp).latency_s for e, mp in orders[t])

    assert _hammer(2, work) == []
    assert got[0] == expected * 30
    assert got[1] == expected[::-1] * 30

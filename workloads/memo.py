"""The one bounded memo every layer uses: safe to share between threads.

Dask runs sweep points in the threads of one worker process, so every cache
of the cost models, the mappers and the hardware builder is shared by
threads. A plain dict evicted by two threads at once fails: one thread's
``next(iter(d))`` sees the other's insertion (``RuntimeError: dictionary
changed size during iteration``), or both pop the same oldest key
(``KeyError``). Such a failure becomes an error row on Dask that the process
pool never shows. :class:`BoundedCache` holds its lock while it looks up,
stores and evicts; the values are built outside the lock, so two threads may
build the same value, and the first one stored is the one both get.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

_MISSING = object()


class BoundedCache(Generic[V]):
    """At most ``size`` entries. When full, the oldest entry goes first
    (with ``lru=True`` the least recently used one)."""

    __slots__ = ("size", "lru", "_data", "_lock")

    def __init__(self, size: int, *, lru: bool = False) -> None:
        if size < 1:
            raise ValueError(f"a cache holds at least 1 entry, got size={size}")
        self.size = size
        self.lru = lru
        self._data: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, default: V | None = None) -> V | None:
        with self._lock:
            value = self._data.get(key, _MISSING)
            if value is _MISSING:
                return default
            if self.lru:
                self._data.move_to_end(key)
            return value  # type: ignore[return-value]

    def put(self, key: Hashable, value: V) -> V:
        """Store ``value`` (replacing an entry under ``key``) and return it."""
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            self._trim()
        return value

    def get_or_make(self, key: Hashable, make: Callable[[], V]) -> V:
        """The entry under ``key``, built by ``make()`` and stored if missing."""
        hit = self.get(key, _MISSING)  # type: ignore[arg-type]
        if hit is not _MISSING:
            return hit  # type: ignore[return-value]
        value = make()
        with self._lock:
            first = self._data.get(key, _MISSING)
            if first is not _MISSING:  # another thread stored it meanwhile
                return first  # type: ignore[return-value]
            self._data[key] = value
            self._trim()
        return value

    def _trim(self) -> None:
        """Drop the oldest entries down to ``size`` (the lock is held)."""
        while len(self._data) > self.size:
            self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._data

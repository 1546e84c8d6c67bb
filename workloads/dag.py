"""Orders of groups of a cascade's Einsums (recurrences, GPU regions)."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence


def group_order(
    edges: Iterable[tuple[str, str]], owner: Mapping[str, int], first: Sequence[int]
) -> list[int]:
    """The groups ``0 .. len(first) - 1`` of a DAG's nodes (``owner``: node
    -> its group) in a dependence order: each group after every group with
    an edge into it, ties broken by ``first`` (the group's place, smallest
    first; Kahn's algorithm). Shorter than ``first`` when groups depend on
    each other in a cycle."""
    n = len(first)
    succ: dict[int, set[int]] = {k: set() for k in range(n)}
    indeg = [0] * n
    for u, v in edges:
        a, b = owner[u], owner[v]
        if a != b and b not in succ[a]:
            succ[a].add(b)
            indeg[b] += 1
    heap = [(first[k], k) for k in range(n) if indeg[k] == 0]
    heapq.heapify(heap)
    out: list[int] = []
    while heap:
        _, k = heapq.heappop(heap)
        out.append(k)
        for j in succ[k]:
            indeg[j] -= 1
            if indeg[j] == 0:
                heapq.heappush(heap, (first[j], j))
    return out

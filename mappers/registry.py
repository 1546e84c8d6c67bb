"""The one registry of mappers: every command, sweep and API call picks a
mapper here, and the CLI's choices and help text are generated from it.

A mapper comes in one of two forms:

* **candidates**: ``candidates(einsum, arch, unit, objective) -> [Mapping]``,
  the mappings it chooses among. The caller (``sim.api``) scores them with
  its cost model and keeps the first minimum. The greedy mappers take this
  form, so a sweep can score the candidates of many design points in one
  vectorised call and an ``eval`` of one point scores them the same way.
* **search**: ``search(einsum, arch, *, objective, evaluate, evaluate_batch,
  **options) -> SearchResult`` (the ILP, random and exhaustive searches of
  :mod:`mappers.search`), scored by the evaluators the caller passes.

Adding a mapper is one function and one :func:`register` call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mappers.mapping import Mapping, MappingError

#: the mapper every command and sweep uses unless told otherwise
DEFAULT_MAPPER = "greedy"


@dataclass(frozen=True)
class MapperInfo:
    name: str
    #: one line for ``--help``
    summary: str
    candidates: Callable[..., list[Mapping]] | None = None
    search: Callable[..., Any] | None = None
    #: the search options it reads (``time_limit_s``, ``seed``, ``workers``, ``samples``)
    options: tuple[str, ...] = ()


MAPPERS: dict[str, MapperInfo] = {}


class UnknownMapperError(MappingError):
    """A mapper name the registry does not hold."""


def register(info: MapperInfo) -> MapperInfo:
    if (info.candidates is None) == (info.search is None):
        raise ValueError(f"mapper {info.name}: give exactly one of candidates= or search=")
    MAPPERS[info.name] = info
    return info


def get(name: str) -> MapperInfo:
    try:
        return MAPPERS[name]
    except KeyError:
        raise UnknownMapperError(
            f"unknown mapper {name!r} (expected one of {', '.join(MAPPERS)})"
        ) from None


def names() -> tuple[str, ...]:
    return tuple(MAPPERS)


def help_text() -> str:
    """``name: summary`` lines for the CLI's ``--mapper`` help."""
    return "; ".join(f"{m.name}: {m.summary}" for m in MAPPERS.values())


# ---------------------------------------------------------------- mappers


def _greedy_candidates(einsum: Any, arch: Any, unit: str | None, objective: str) -> list[Mapping]:
    """The variants the greedy heuristic compares (tiling priorities and
    outer loop orders), in the order it compares them."""
    from mappers.baselines.greedy import greedy_mapping

    seen: list[Mapping] = []

    def record(m: Mapping) -> float:
        seen.append(m)
        return 0.0

    first = greedy_mapping(einsum, arch, unit=unit, objective=objective, evaluator=record)
    return seen or [first]


def _greedy_fast_candidates(
    einsum: Any, arch: Any, unit: str | None, objective: str
) -> list[Mapping]:
    from mappers.baselines.greedy import greedy_mapping

    return [greedy_mapping(einsum, arch, unit=unit, objective=objective)]


def _search(name: str) -> Callable[..., Any]:
    def run(einsum: Any, arch: Any, **kw: Any) -> Any:
        from mappers.search import search

        return search(einsum, arch, mapper=name, **kw)

    run.__name__ = f"search_{name}"
    return run


register(
    MapperInfo(
        "greedy",
        "analytical engineer's heuristic, best of a few tiling and loop-order variants",
        candidates=_greedy_candidates,
    )
)
register(
    MapperInfo(
        "greedy-fast",
        "the greedy heuristic's first variant only (fastest)",
        candidates=_greedy_fast_candidates,
    )
)
for _name, _summary, _options in (
    (
        "ilp",
        "CP-SAT over prime-factor placement, re-ranked and polished with the cost model",
        ("time_limit_s", "seed", "workers"),
    ),
    (
        "random",
        "best of N valid random mappings (Timeloop-style)",
        ("time_limit_s", "seed", "samples"),
    ),
    ("exhaustive", "every tiling, bypass choice and loop-order class (small problems only)", ()),
):
    register(MapperInfo(_name, _summary, search=_search(_name), options=_options))

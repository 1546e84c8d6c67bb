"""The objectives every mapper and scheduler minimises, and their spellings."""

from __future__ import annotations

from mappers.mapping import MappingError

OBJECTIVES: tuple[str, ...] = ("edp", "latency", "energy", "dram_traffic")
#: other spellings accepted on input
ALIASES: dict[str, str] = {"traffic": "dram_traffic", "delay": "latency"}


class ObjectiveError(MappingError):
    """An objective name einsim does not know."""


def canonical_objective(objective: str) -> str:
    """The canonical name of ``objective``; unknown names raise ObjectiveError."""
    name = ALIASES.get(objective, objective)
    if name not in OBJECTIVES:
        raise ObjectiveError(f"unknown objective {objective!r} (expected {', '.join(OBJECTIVES)})")
    return name


def objective_value(metrics: object, objective: str) -> float:
    """The scalar a mapper or scheduler minimises, read from a ``Metrics``.

    This is the one definition every mapper, scheduler and command uses
    (``mappers`` sits above ``sim``, so ``metrics`` is read by attribute):
    latency in s, energy in pJ, EDP in pJ*s, DRAM traffic in bytes moved at
    the outermost storage level (the first level of ``traffic_bytes``).
    """
    name = canonical_objective(objective)
    latency = float(metrics.latency_s)  # type: ignore[attr-defined]
    energy = float(metrics.energy_pj)  # type: ignore[attr-defined]
    if name == "latency":
        return latency
    if name == "energy":
        return energy
    if name == "edp":
        return energy * latency
    traffic = metrics.traffic_bytes  # type: ignore[attr-defined]
    outer = next(iter(traffic.values()), {})
    return float(sum(outer.values()))


def objective_values(
    objective: str, *, latency_s: object, energy_pj: object, dram_bytes: object
) -> object:
    """:func:`objective_value` over arrays (numpy) of the same quantities."""
    name = canonical_objective(objective)
    if name == "latency":
        return latency_s
    if name == "energy":
        return energy_pj
    if name == "edp":
        return energy_pj * latency_s  # type: ignore[operator]
    return dram_bytes

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

"""The schedule of a whole cascade: order, fusion groups, binding, residency.

A :class:`Schedule` says, for a cascade of Einsums on an architecture:

* the order in which the Einsums run;
* the fusion groups: consecutive Einsums that run as one pipelined pass, with
  the level at which their shared intermediates stay (``keep_level``), the
  rank they are tiled on together and the tile size, so that the tiles of the
  fused Einsums agree on that rank;
* the binding of every Einsum to a compute unit (FuseMax's 2D array for the
  MAC-heavy Einsums, the 1D array for the rest);
* for every tensor, where it lives: ``DRAM`` (spilled: written out by its
  producer and reloaded by each consumer that runs in a later pass, see
  :func:`later_pass_readers`) or an on-chip level.

:func:`validate_schedule` checks that every tensor is produced before it is
consumed and that the on-chip working set fits the capacity at every step.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field

from hw_models.arch import Architecture
from mappers.mapping import resolve_unit
from workloads.errors import EinsimError
from workloads.ir import Cascade


class ScheduleError(EinsimError):
    """A schedule is invalid, or no schedule of the cascade fits the hardware."""


@dataclass(frozen=True)
class FusionGroup:
    """Einsums that run as one pass, their intermediates held on chip."""

    einsums: tuple[str, ...]
    #: level that holds the intermediates passed inside the group
    keep_level: str = "GlobalBuffer"
    #: the rank the group is tiled on (its tiles agree on it), "" if untiled
    tiled_rank: str = ""
    #: tile size of ``tiled_rank`` per pass through the compute units (the
    #: whole rank when untiled)
    tile: int = 0
    #: tile of ``tiled_rank`` held in the buffer at once (>= ``tile``); inputs
    #: that lack the tiled rank are re-read from DRAM once per buffer tile
    #: unless they stay resident. 0 = same as ``tile``.
    buffer_tile: int = 0
    #: on-chip bytes one buffer tile needs (per outer batch slice), as worked
    #: out by the scheduler from the tensor shapes
    buffer_bytes_per_tile: float = 0.0
    #: rank streamed inside each tile (e.g. FuseMax's m1); "" if none
    streamed_rank: str = ""
    #: True when consecutive tiles overlap (intermediates double-buffered in
    #: ``keep_level``); False when each tile's epilogue drains before the
    #: next tile starts (state held in the units' registers)
    pipelined: bool = True


@dataclass(frozen=True)
class Schedule:
    cascade: str
    order: tuple[str, ...]
    groups: tuple[FusionGroup, ...]
    #: einsum name -> compute unit name
    binding: dict[str, str]
    #: tensor name -> level where it lives between producer and consumers
    residency: dict[str, str] = field(default_factory=dict)
    #: which method produced it ("unfused", "greedy", "flat", "ilp", ...)
    method: str = ""
    #: solver facts: objective, bound, gap, solve time
    solver: dict[str, float] = field(default_factory=dict)

    def group_of(self, einsum: str) -> FusionGroup:
        for g in self.groups:
            if einsum in g.einsums:
                return g
        raise KeyError(einsum)

    @property
    def spilled(self) -> tuple[str, ...]:
        """Intermediates that go through DRAM."""
        return tuple(t for t, lv in self.residency.items() if lv == "DRAM")


def default_binding(cascade: Cascade, arch: Architecture) -> dict[str, str]:
    """Each Einsum's compute unit: its ``unit``/``unit_class`` attribute (FuseMax's
    binding) where the unit can run it, else MAC-heavy Einsums on the 2D array
    and the rest on the 1D array (:func:`mappers.mapping.resolve_unit`)."""
    return {e.name: resolve_unit(e, arch).name for e in cascade.einsums}


def validate_schedule(
    schedule: Schedule,
    cascade: Cascade,
    capacity_bytes: float,
    footprint_bytes: MappingABC[str, float] | None = None,
) -> None:
    """Check a schedule against its cascade and an on-chip capacity.

    ``footprint_bytes`` gives the on-chip bytes each kept intermediate needs
    (its tile when the group is tiled); by default the whole tensor. Raises
    :class:`ScheduleError` naming the tensor, the step and the numbers.
    """
    names = [e.name for e in cascade.einsums]
    if sorted(schedule.order) != sorted(names):
        missing = sorted(set(names) - set(schedule.order))
        extra = sorted(set(schedule.order) - set(names))
        raise ScheduleError(
            f"schedule order must list every Einsum once; missing {missing}, unknown {extra}"
        )
    grouped = [e for g in schedule.groups for e in g.einsums]
    if sorted(grouped) != sorted(names):
        raise ScheduleError("every Einsum must be in exactly one fusion group")
    for e in names:
        if e not in schedule.binding:
            raise ScheduleError(f"Einsum {e} is not bound to a compute unit")
    position = {e: i for i, e in enumerate(schedule.order)}
    for g in schedule.groups:
        pos = sorted(position[e] for e in g.einsums)
        if pos != list(range(pos[0], pos[0] + len(pos))):
            raise ScheduleError(f"fusion group {list(g.einsums)} is not contiguous in the order")

    producer: dict[str, str] = {}
    for e in cascade.einsums:
        out = e.output.tensor
        if out not in producer:
            producer[out] = e.name
    produced: set[str] = set(cascade.inputs)
    carried = cascade.carried_reads()  # e.g. SPD reads RD[m1] before RD writes RD[m1+1]
    for name in schedule.order:
        e = cascade.einsum(name)
        for acc in e.inputs:
            t = acc.tensor
            if t == e.output.tensor or (name, t) in carried:  # a recurrence's earlier step
                continue
            if t not in produced:
                raise ScheduleError(
                    f"tensor {t} is consumed by {name} (step {position[name]}) "
                    f"before it is produced by {producer.get(t, '?')}"
                )
        produced.add(e.output.tensor)

    # capacity: tensors kept on chip are live from producer to last consumer
    sizes = dict(footprint_bytes or {})
    last_use: dict[str, int] = {}
    first_def: dict[str, int] = {}
    for name in schedule.order:
        e = cascade.einsum(name)
        i = position[name]
        first_def.setdefault(e.output.tensor, i)
        for acc in e.inputs:
            last_use[acc.tensor] = max(last_use.get(acc.tensor, -1), i)
    for step, name in enumerate(schedule.order):
        live = [
            t
            for t, lv in schedule.residency.items()
            if lv != "DRAM" and first_def.get(t, -1) <= step <= last_use.get(t, -1)
        ]
        used = sum(sizes.get(t, cascade.tensor(t).bytes) for t in live)
        if used > capacity_bytes * (1 + 1e-9):
            biggest = max(live, key=lambda t: sizes.get(t, cascade.tensor(t).bytes))
            raise ScheduleError(
                f"at step {step} ({name}) the on-chip tensors {sorted(live)} need "
                f"{used:.0f} B but the buffer holds {capacity_bytes:.0f} B "
                f"(largest: {biggest}, {sizes.get(biggest, cascade.tensor(biggest).bytes):.0f} B)"
            )


#: ranks iterated outside a fused group's tiles (one batch/head slice at a time)
OUTER_RANKS = ("b", "h", "n", "g")


def _root_rank(cascade: Cascade, rank: str) -> str:
    """The rank ``rank`` was split from (``m`` for ``m1`` and ``m0``)."""
    parents = {c: parent for parent, children in cascade.splits for c in children}
    while rank in parents:
        rank = parents[rank]
    return rank


def streamed_ranks(cascade: Cascade, tensor: str, tiled_rank: str = "") -> tuple[str, ...]:
    """Ranks of ``tensor`` a fused group walks inside each tile: all but the
    outer (batch/head) ranks and the tiled rank, split ranks named by the
    rank they were split from."""
    tiled = _root_rank(cascade, tiled_rank) if tiled_rank else ""
    out: list[str] = []
    for r in cascade.tensor(tensor).ranks:
        root = _root_rank(cascade, r)
        if r not in OUTER_RANKS and root != tiled and root not in out:
            out.append(root)
    return tuple(out)


def later_pass_readers(
    cascade: Cascade, tensor: str, consumers: list[str] | tuple[str, ...], tiled_rank: str = ""
) -> list[str]:
    """The consumers of ``tensor`` that run in a later pass than its producer.

    Passes follow the cascade's pass analysis (:meth:`Cascade.pass_of`) over
    each rank the group streams. A consumer in the producer's pass reads the
    values as they are produced (the softmax max reads each score while QK
    writes it), so a spilled tensor reaches it on chip, before the spill; a
    consumer in a later pass needs values whose production finished a pass
    ago, so it reloads them from where they were spilled. This is what lets
    FLAT at long sequences spill the score matrix at one write and one read
    per later pass, instead of one read per consumer.
    """
    producer = next((e.name for e in cascade.einsums if e.output.tensor == tensor), None)
    ranks = streamed_ranks(cascade, tensor, tiled_rank)
    if producer is None or not ranks:
        return list(consumers)
    later = set()
    for r in ranks:
        pass_of = cascade.pass_of(r)
        later |= {c for c in consumers if pass_of[c] > pass_of[producer]}
    return [c for c in consumers if c in later]

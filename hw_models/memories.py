"""Per-tensor memories of a level: building them and reading them back.

What a cost model calls to read "level L, tensor T" (the phase-2 contract):

* :func:`memory_for` -- the :class:`~hw_models.arch.Memory` at level L that
  stores tensor T (capacity, word bits, bandwidths, energies, ports), or
  None when T bypasses L. On a one-memory level it is the level's own
  figures, so today's presets give today's per-level values exactly.
* :func:`memory_table` -- the same for every level and tensor at once;
  :func:`memory_figures` its numbers as ``[level][tensor]`` lists, and
  :func:`tensors_by_memory` the tensors sharing each memory's capacity.
* :func:`tensor_bits` -- the bits T occupies at level L (the memory's
  precision, else the compute unit's, else the workload's).
* :func:`shared_along` -- whether the fan-out network below L multicasts
  (or, for the output, reduces) T along an axis.

Roles are the operand roles of ``mappers.mapping.tensor_roles``:
``output``, ``input`` (first operand), ``weight`` (second), ``input2``...

:func:`with_memories` / :func:`memory_level` build a level from its
memories and fill the level's own fields with their summary (the view of
code that still reads one memory per level): capacities, bandwidths, banks,
areas and leakage add up; the word is the widest; the energy per word is
the capacity-weighted mean energy per bit times that word; the level is
double buffered if any memory is; it holds what its memories serve.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from hw_models.arch import (
    Architecture,
    ComputeUnit,
    Memory,
    Precision,
    StorageLevel,
    level_memories,
)
from hw_models.errors import HardwareError

__all__ = [
    "ROLES",
    "SUMMARY_FIELDS",
    "level_memories",
    "FIGURES",
    "memory_figures",
    "memory_for",
    "memory_level",
    "memory_table",
    "role_bits",
    "serves",
    "serving_memory",
    "shared_along",
    "summary_fields",
    "tensor_bits",
    "tensors_by_memory",
    "with_memories",
]

#: the operand roles a memory may serve by name (besides tensor names)
ROLES = ("input", "weight", "output")

#: the size, bandwidth and energy fields a Memory shares with a StorageLevel
_COST_FIELDS = (
    "capacity_bytes",
    "word_bits",
    "read_bw_bytes_per_cycle",
    "write_bw_bytes_per_cycle",
    "read_energy_pj_per_word",
    "write_energy_pj_per_word",
)

#: level fields that a level with memories takes from them
SUMMARY_FIELDS = _COST_FIELDS + (
    "shared_bw",
    "banks",
    "leakage_w",
    "area_mm2",
    "holds",
    "double_buffered",
    "precision",
)


def _mean_pj_per_bit(memories: Sequence[Memory], key: str) -> float:
    caps = [m.capacity_bytes for m in memories]
    per_bit = [getattr(m, key) / m.word_bits for m in memories]
    if any(c is None for c in caps) or sum(caps) <= 0:  # type: ignore[arg-type]
        return sum(per_bit) / len(per_bit)
    total = float(sum(caps))  # type: ignore[arg-type]
    return sum(e * c / total for e, c in zip(per_bit, caps, strict=True))  # type: ignore[operator]


def summary_fields(memories: Sequence[Memory]) -> dict[str, Any]:
    """The level fields that summarise ``memories`` (see the module doc)."""
    if not memories:
        raise HardwareError("a level with memories needs at least one", field="memories")
    caps = [m.capacity_bytes for m in memories]
    word = max(m.word_bits for m in memories)
    holds: tuple[str, ...] | None = ()
    for m in memories:
        if m.serves is None:
            holds = None
            break
        holds = tuple(dict.fromkeys((*holds, *m.serves)))  # type: ignore[misc]
    return {
        "capacity_bytes": None if any(c is None for c in caps) else float(sum(caps)),  # type: ignore[arg-type]
        "word_bits": word,
        "read_bw_bytes_per_cycle": float(sum(m.read_bw_bytes_per_cycle for m in memories)),
        "write_bw_bytes_per_cycle": float(sum(m.write_bw_bytes_per_cycle for m in memories)),
        "read_energy_pj_per_word": _mean_pj_per_bit(memories, "read_energy_pj_per_word") * word,
        "write_energy_pj_per_word": _mean_pj_per_bit(memories, "write_energy_pj_per_word") * word,
        "shared_bw": all(m.shared_bw for m in memories),
        "banks": sum(m.banks for m in memories),
        "leakage_w": float(sum(m.leakage_w for m in memories)),
        "area_mm2": float(sum(m.area_mm2 for m in memories)),
        "holds": holds,
        "double_buffered": any(m.double_buffered for m in memories),
        "precision": None,
    }


def with_memories(level: StorageLevel, memories: Sequence[Memory]) -> StorageLevel:
    """``level`` holding ``memories``, its own memory fields their summary."""
    mems = tuple(memories)
    return dataclasses.replace(level, memories=mems, **summary_fields(mems))


def memory_level(name: str, memories: Sequence[Memory], **fields: Any) -> StorageLevel:
    """A level of several memories; ``fields`` are the level-wide ones
    (``instances``, ``fanout_x``, ``fanout_y``, ``multicast``,
    ``spatial_reduce``, ``share_x``, ``share_y``, ``network_energy_pj_per_word``)."""
    bad = [k for k in fields if k in SUMMARY_FIELDS or k in ("name", "memories")]
    if bad:
        raise HardwareError(
            f"level {name}: {bad[0]} comes from its memories, not from the level",
            field=bad[0],
        )
    mems = tuple(memories)
    return StorageLevel(name=name, memories=mems, **summary_fields(mems), **fields)


# ------------------------------------------------------------------ reading


def serves(memory: Memory, tensor: str, roles: Sequence[str] = ()) -> int:
    """How ``memory`` matches ``tensor``: 2 by name, 1 by role, 0 not at all
    (a memory serving every tensor matches by role)."""
    if memory.serves is None:
        return 1
    if tensor in memory.serves:
        return 2
    return 1 if any(r in memory.serves for r in roles) else 0


def _level_of(arch: Architecture, level: int | str) -> StorageLevel:
    if isinstance(level, str):
        try:
            return arch.level(level)
        except KeyError:
            names = ", ".join(lv.name for lv in arch.levels)
            raise HardwareError(f"unknown level {level!r}; levels are {names}") from None
    return arch.levels[level]


def memory_for(
    arch: Architecture, level: int | str, tensor: str, roles: Sequence[str] = ()
) -> Memory | None:
    """The memory of ``level`` (index or name) that stores ``tensor``
    (matched by name first, then by one of its ``roles``); None when no
    memory there serves it (the tensor bypasses the level)."""
    return serving_memory(_level_of(arch, level), tensor, roles)


def serving_memory(lv: StorageLevel, tensor: str, roles: Sequence[str] = ()) -> Memory | None:
    """:func:`memory_for` of a level given as a :class:`StorageLevel`."""
    best: Memory | None = None
    rank = 0
    for m in level_memories(lv):
        r = serves(m, tensor, roles)
        if r == 0:
            continue
        if r == rank and best is not None:
            raise HardwareError(
                f"level {lv.name}: tensor {tensor!r} is served by both memory "
                f"{best.name!r} and memory {m.name!r}; give it to one of them by name"
            )
        if r > rank:
            best, rank = m, r
    return best


def memory_table(
    arch: Architecture, roles: Mapping[str, Sequence[str]]
) -> list[dict[str, Memory | None]]:
    """Per level (outermost first), tensor -> the memory storing it (or None).

    ``roles``: tensor -> its roles (``mappers.mapping.tensor_roles(einsum)``).
    """
    return [{t: serving_memory(lv, t, rs) for t, rs in roles.items()} for lv in arch.levels]


#: the Memory fields :func:`memory_figures` tabulates
FIGURES = _COST_FIELDS + ("leakage_w",)


def memory_figures(
    arch: Architecture, roles: Mapping[str, Sequence[str]], fields: Sequence[str] = FIGURES
) -> dict[str, list[list[float | None]]]:
    """``field -> [level][tensor]`` of the memory storing each tensor (tensors
    in the order of ``roles``): what a vectorised cost model turns into
    ``[levels, tensors]`` arrays. None where the tensor bypasses the level;
    an unbounded capacity is ``inf``. On a one-memory level every tensor it
    holds gets the level's own figures."""
    table = memory_table(arch, roles)
    out: dict[str, list[list[float | None]]] = {}
    for f in fields:
        rows = []
        for row in table:
            vals: list[float | None] = []
            for t in roles:
                m = row[t]
                v = None if m is None else getattr(m, f)
                vals.append(float("inf") if f == "capacity_bytes" and m and v is None else v)
            rows.append(vals)
        out[f] = rows
    return out


def tensors_by_memory(
    arch: Architecture, roles: Mapping[str, Sequence[str]]
) -> list[dict[str, tuple[str, ...]]]:
    """Per level, memory name -> the tensors (of ``roles``) it stores: the
    groups whose tiles share one capacity (the ILP's capacity constraint
    per memory instance). A one-memory level is one group."""
    out = []
    for row in memory_table(arch, roles):
        groups: dict[str, tuple[str, ...]] = {}
        for t, m in row.items():
            if m is not None:
                groups[m.name] = (*groups.get(m.name, ()), t)
        out.append(groups)
    return out


def role_bits(precision: Precision | None, roles: Sequence[str], *, partial: bool) -> int | None:
    """Bits ``precision`` gives an operand of ``roles`` (None: not fixed)."""
    if precision is None:
        return None
    for r in roles:
        if r == "output":
            return precision.psum_bits if partial else precision.output_bits
        if r == "weight":
            return precision.weight_bits
        if r.startswith("input"):
            return precision.input_bits
    return None


def tensor_bits(
    arch: Architecture,
    level: int | str,
    tensor: str,
    roles: Sequence[str],
    *,
    default_bits: int,
    partial: bool = False,
    unit: ComputeUnit | str | None = None,
) -> int:
    """Bits one element of ``tensor`` occupies at ``level``: the serving
    memory's precision, else the compute unit's (``unit``: the bound unit,
    default the first), else ``default_bits`` (the workload's width).
    ``partial``: the output is still a partial sum there."""
    mem = memory_for(arch, level, tensor, roles)
    bits = role_bits(mem.precision if mem else None, roles, partial=partial)
    if bits is None:
        cu = arch.unit(unit) if isinstance(unit, str) else (unit or arch.compute[0])
        bits = role_bits(cu.precision, roles, partial=partial)
    return default_bits if bits is None else bits


def shared_along(level: StorageLevel, tensor: str, roles: Sequence[str], axis: str | None) -> bool:
    """Whether the fan-out network below ``level`` shares ``tensor`` along
    ``axis`` ("x", "y"; None = a spatial factor with no axis, which needs
    both): a read tensor is multicast, the output reduced spatially.
    Respects the level-wide ``multicast`` / ``spatial_reduce`` switches."""
    is_out = "output" in roles
    if not (level.spatial_reduce if is_out else level.multicast):
        return False
    axes = ("x", "y") if axis is None else (axis,)
    for a in axes:
        share = level.share_x if a == "x" else level.share_y
        if share is not None and tensor not in share and not any(r in share for r in roles):
            return False
    return True

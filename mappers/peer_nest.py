"""A peer's loop nest with per-tensor cuts as an einsim :class:`Mapping`.

ZigZag (one nest, cut per operand at its own memories) and Timeloop (one
nest, cut at each of its storage levels, several of which einsim's tree
puts side by side in one level) both come down to: one loop nest
(innermost first) and, per tensor, how many of its loops lie inside the
tensor's tile at each einsim level. :func:`mapping_from_nest` puts a
level's boundary where the innermost of the tensors stored there cuts the
nest (so every tile fits), gives the tensors that a peer keeps over more
loops those loops as :attr:`~mappers.mapping.Mapping.resident` loops, keeps
at each level the tensors that have a memory there, and sets the spatial
factors on the level whose fan-out is the array.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mappers.mapping import LevelMapping, Mapping, MappingError

if TYPE_CHECKING:
    from hw_models.arch import Architecture
    from workloads.ir import Einsum

__all__ = ["ImportedMapping", "level_of_memory", "mapping_from_nest"]


@dataclass(frozen=True)
class ImportedMapping:
    mapping: Mapping
    #: what einsim's mapping could not say, by level and rank
    left_out: tuple[str, ...]


def level_of_memory(arch: Architecture, memory: str, tool: str) -> int:
    """Index of the level of ``arch`` that is, or holds, memory ``memory``."""
    for j, lv in enumerate(arch.levels):
        if lv.name == memory or any(m.name == memory for m in lv.memories):
            return j
    raise MappingError(
        f"{tool} memory {memory!r} is not in architecture {arch.name} "
        f"(levels: {', '.join(lv.name for lv in arch.levels)})"
    )


def mapping_from_nest(
    einsum: Einsum,
    arch: Architecture,
    nest: Sequence[tuple[str, int]],
    cuts: MappingABC[str, MappingABC[int, int]],
    spatial: MappingABC[str, tuple[int, str]] | MappingABC[int, MappingABC[str, tuple[int, str]]],
    *,
    tool: str,
) -> ImportedMapping:
    """``nest``: (rank, factor) loops, innermost first, factors > 1;
    ``cuts``: tensor -> {einsim level index: loops of ``nest`` inside the
    tensor's tile there} for every level below the outermost that stores
    it; ``spatial``: rank -> (factor, axis "x"/"y") on the array level, or
    einsim level index -> such a dict (several fan-outs)."""
    nest = list(nest)
    nl = len(arch.levels)
    base = [len(nest)] * nl  # base[j]: loops inside level j's tiles
    inner = 0
    for j in range(nl - 1, 0, -1):
        here = [c[j] for c in cuts.values() if j in c]
        inner = max(inner, min(here)) if here else inner
        base[j] = inner
    left_out: list[str] = []

    def level_of_loop(i: int) -> int:
        return next(j for j in range(nl - 1, 0, -1) if i < base[j]) if i < base[1] else 0

    resident: dict[str, dict[str, tuple[str, ...]]] = {}
    for tensor, cut in cuts.items():
        for j, c in sorted(cut.items()):
            if j > 0 and c > base[j]:
                # the tensor's memory at j keeps its tile over these loops too
                loops = [
                    f"{arch.levels[level_of_loop(i)].name}:{nest[i][0]}" for i in range(base[j], c)
                ]
                resident.setdefault(tensor, {})[arch.levels[j].name] = tuple(loops)
    level_maps = []
    array_level = max((j for j, lv in enumerate(arch.levels) if lv.fanout > 1), default=-1)
    by_level: dict = (
        dict(spatial) if all(isinstance(k, int) for k in spatial) else {array_level: spatial}
    )
    for j, lv in enumerate(arch.levels):
        lo = base[j + 1] if j + 1 < nl else 0
        loops = nest[lo : base[j]] if j > 0 else nest[lo:]
        temporal_f: dict[str, int] = {}
        for r, f in loops:
            if r in temporal_f:
                left_out.append(
                    f"level {lv.name}: rank {r} has two loops in {tool}'s nest; einsim "
                    f"merges them into one loop of {temporal_f[r] * f}"
                )
            temporal_f[r] = temporal_f.get(r, 1) * f
        order = tuple(dict.fromkeys(r for r, _ in reversed(loops)))
        sp: dict[str, int] = {}
        axes: dict[str, str] = {}
        for r, (f, axis) in by_level.get(j, {}).items():
            sp[r] = int(f)
            axes[r] = axis
        keep = None if j == 0 else tuple(t for t, c in cuts.items() if j in c)
        level_maps.append(LevelMapping(lv.name, temporal_f, sp, axes, order, keep))
    return ImportedMapping(
        Mapping(einsum=einsum.name, levels=tuple(level_maps), resident=resident),
        tuple(left_out),
    )

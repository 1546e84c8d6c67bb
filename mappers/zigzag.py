"""ZigZag's chosen mapping as an einsim :class:`~mappers.mapping.Mapping`.

ZigZag (3.9.1) describes a mapping by one loop nest shared by all operands
(its temporal mapping, innermost loop first) that each operand cuts at its
own memory levels, plus a spatial mapping onto the array dimensions D1, D2.
einsim's mapping has one cut per storage level of the tree, shared by every
tensor the level keeps. :func:`from_zigzag` puts a level's cut where the
innermost of the tensors stored there cuts the nest (so every tile fits),
keeps at each level the tensors that have a memory there, and sets the
spatial factors on the level whose fan-out is the array.

A tensor that ZigZag keeps across more loops than that cut (an operand's
memory "staying" over loops that another operand's memory at the same
level does not) gets them as :attr:`~mappers.mapping.Mapping.resident`
loops. What einsim's mapping cannot say (a rank with two loops at one
level, merged) is reported by name in ``left_out``.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mappers.mapping import MappingError
from mappers.peer_nest import ImportedMapping, level_of_memory, mapping_from_nest

if TYPE_CHECKING:
    from hw_models.arch import Architecture
    from workloads.ir import Einsum

__all__ = ["ImportedMapping", "from_zigzag", "parse_spatial"]

#: ZigZag's array dimensions -> einsim fan-out axes
AXES = {"D1": "x", "D2": "y"}


def parse_spatial(spatial: MappingABC[str, Sequence[str]]) -> dict[str, dict[str, int]]:
    """ZigZag's mapping-file spatial form (``D1: ["K, 32"]``) -> {D: {dim: factor}}."""
    out: dict[str, dict[str, int]] = {}
    for d, entries in spatial.items():
        out[d] = {}
        for e in entries:
            dim, _, f = str(e).partition(",")
            try:
                out[d][dim.strip()] = int(f)
            except ValueError:
                raise MappingError(
                    f"ZigZag spatial mapping {d}: {e!r} is not 'DIM, FACTOR'"
                ) from None
    return out


def from_zigzag(
    einsum: Einsum,
    arch: Architecture,
    *,
    temporal: MappingABC[str, Sequence[Sequence[Sequence]]],
    memories: MappingABC[str, Sequence[str]],
    spatial: MappingABC[str, MappingABC[str, int]],
    operands: MappingABC[str, str],
    dims: MappingABC[str, str],
) -> ImportedMapping:
    """An einsim mapping of ``einsum`` on ``arch`` (imported from ZigZag's
    hardware file, :mod:`hw_models.importers.zigzag`) from ZigZag's mapping.

    ``temporal``: operand -> per memory level (innermost first) the loops
    ``[dim, factor]`` it holds, innermost first (ZigZag's
    ``temporal_mapping.mapping_dic_stationary``); ``memories``: operand ->
    its memory names, innermost first; ``spatial``: {D1|D2: {dim: factor}};
    ``operands``: ZigZag operand (O, W, I) -> einsim tensor; ``dims``:
    ZigZag loop dimension -> einsim rank.
    """
    where = f"ZigZag mapping of {einsum.name}"
    nest: list[tuple[str, int]] | None = None
    cuts: dict[str, dict[int, int]] = {}  # tensor -> {einsim level: loops inside}
    for op, levels in temporal.items():
        if op not in operands or op not in memories:
            raise MappingError(f"{where}: operand {op!r} has no tensor or no memories given")
        tensor = operands[op]
        if len(memories[op]) < len(levels):
            raise MappingError(
                f"{where}: operand {op} has {len(levels)} levels of loops "
                f"but {len(memories[op])} memories"
            )
        flat: list[tuple[str, int]] = []
        cut: dict[int, int] = {}
        for mem, loops in zip(memories[op], levels, strict=False):
            for dim, f in loops:
                if dim not in dims:
                    raise MappingError(f"{where}: loop dimension {dim!r} has no einsim rank")
                if int(f) > 1:
                    flat.append((dims[dim], int(f)))
            cut[level_of_memory(arch, mem, "ZigZag")] = len(flat)
        if nest is None:
            nest = flat
        elif flat != nest:
            raise MappingError(f"{where}: operand {op}'s loops differ from the other operands'")
        cuts[tensor] = cut
    if nest is None:
        raise MappingError(f"{where}: no temporal mapping given")
    sp: dict[str, tuple[int, str]] = {}
    for d, facs in spatial.items():
        for dim, f in facs.items():
            if int(f) > 1:
                old = sp.get(dims[dim], (1, AXES.get(d, "x")))
                sp[dims[dim]] = (old[0] * int(f), old[1])
    return mapping_from_nest(einsum, arch, nest, cuts, sp, tool="ZigZag")

"""Timeloop's mapping (``timeloop-mapper.map.yaml``, v0.4) as an einsim
:class:`~mappers.mapping.Mapping`.

Timeloop's mapping lists, per storage level (innermost first), its
temporal factors with their permutation (innermost first), the spatial
factors of the fan-out containers (``split``: the first ``split`` ranks of
the permutation go along x, the rest along y) and which dataspaces each
level keeps. Timeloop's levels nest one inside another; einsim's tree may
put several of them side by side in one level (Eyeriss's three PE
scratchpads), so a scratchpad that is outer in Timeloop keeps its tensor
over the loops of the inner ones: :func:`mappers.peer_nest.mapping_from_nest`
carries that as resident loops.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mappers.mapping import MappingError
from mappers.peer_nest import ImportedMapping, level_of_memory, mapping_from_nest

if TYPE_CHECKING:
    from hw_models.arch import Architecture
    from workloads.ir import Einsum

__all__ = ["DATASPACES", "from_timeloop", "load_timeloop_map"]

#: Timeloop's conv dataspaces -> einsim's conv2d tensors (workloads.library)
DATASPACES = {"Weights": "W", "Inputs": "I", "Outputs": "O"}
#: Timeloop's conv dimensions -> einsim's conv2d ranks
CONV_DIMS = {"C": "c", "M": "k", "R": "r", "S": "s", "N": "n", "P": "p", "Q": "q"}


def load_timeloop_map(path: str | Path) -> list[dict[str, Any]]:
    """The ``mapping:`` list of a Timeloop map file."""
    from workloads.yamlio import load_yaml

    p = Path(path)
    data = load_yaml(p, "Timeloop mapping", error=MappingError)[0]
    if not isinstance(data, dict) or not isinstance(data.get("mapping"), list):
        raise MappingError("a Timeloop map file has a 'mapping:' list", file=str(p))
    return data["mapping"]


def _factors(text: str, where: str) -> list[tuple[str, int]]:
    out = []
    for item in str(text).split():
        dim, num = item[:1], item[1:]
        if not num.isdigit():
            raise MappingError(f"{where}: factor {item!r} is not DIM<number>")
        out.append((dim, int(num)))
    return out


def from_timeloop(
    einsum: Einsum,
    arch: Architecture,
    entries: list[dict[str, Any]],
    *,
    dataspaces: MappingABC[str, str] = DATASPACES,
    dims: MappingABC[str, str] = CONV_DIMS,
) -> ImportedMapping:
    """An einsim mapping of ``einsum`` on ``arch`` (imported with
    ``einsim hw import --from timeloop``) from Timeloop's mapping entries."""
    where = f"Timeloop mapping of {einsum.name}"
    keeps: dict[str, list[str]] = {}
    spatial_of: dict[str, dict[str, tuple[int, str]]] = {}  # container -> rank -> (f, axis)
    order: list[str] = []
    temporal: dict[str, list[tuple[str, int]]] = {}
    for e in entries:
        target, kind = e.get("target"), e.get("type")
        if kind == "datatype":
            keeps[target] = [dataspaces[d] for d in e.get("keep") or []]
            continue
        facs = dict(_factors(e.get("factors", ""), f"{where}, {target}"))
        perm = [d for d in str(e.get("permutation", "")) if d in facs]
        perm += [d for d in facs if d not in perm]
        if kind == "temporal":
            order.append(target)
            temporal[target] = [(dims[d], facs[d]) for d in perm if facs[d] > 1]
        elif kind == "spatial":
            split = int(e.get("split", len(perm)))
            for i, d in enumerate(perm):
                if facs[d] > 1:
                    spatial_of.setdefault(target, {})[dims[d]] = (
                        facs[d],
                        "x" if i < split else "y",
                    )
        else:
            raise MappingError(f"{where}: unknown mapping entry type {kind!r} at {target}")
    nest: list[tuple[str, int]] = []
    cuts: dict[str, dict[int, int]] = {}
    # a fan-out belongs to the einsim level of the next storage level out
    spatial: dict[int, dict[str, tuple[int, str]]] = {}
    pending: list[str] = []
    for target in order:
        if target in keeps and keeps[target] or target not in keeps:
            if target in keeps and keeps[target]:
                j = level_of_memory(arch, target, "Timeloop")
                for c in pending:
                    spatial.setdefault(j, {}).update(spatial_of.get(c, {}))
                pending = []
        if not keeps.get(target):
            pending.append(target)
        elif target in spatial_of:  # a storage level with its own fan-out
            spatial.setdefault(level_of_memory(arch, target, "Timeloop"), {}).update(
                spatial_of[target]
            )
    for target in order:  # innermost level first, as Timeloop writes them
        nest += temporal[target]
        kept = keeps.get(target, [])
        if not kept:
            continue  # a fan-out container (no storage)
        j = level_of_memory(arch, target, "Timeloop")
        for t in kept:
            if j > 0:
                cuts.setdefault(t, {})[j] = len(nest)
    return mapping_from_nest(einsum, arch, nest, cuts, spatial, tool="Timeloop")

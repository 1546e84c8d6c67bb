"""The mapping of one Einsum onto an Architecture (Timeloop-style loop nest).

A :class:`Mapping` has one :class:`LevelMapping` per storage level of the
architecture, outermost first and in the same order as
``Architecture.levels``. At each level every rank has a temporal factor (a
loop at that level, in ``order``) and a spatial factor (fan-out from that
level to the one below). The product of a rank's factors over all levels must
be >= the rank's size; any excess is padding, counted as wasted work.

Conventions (shared by the analytical model, the greedy mapper, the ILP):

* The tile a level *holds* (per instance) spans, for every rank, the product
  of the temporal and spatial factors at that level and every level below it.
  The tile of a tensor is the product over its dimensions of
  ``AffineIndex.extent`` of that rank tile, clipped to the tensor's size.
* The outermost level keeps every tensor. A level keeps a tensor when
  ``keep`` lists it (``keep=None``: every tensor its ``holds`` allows).
* Capacity: the kept tiles, times 2 where the memory is double buffered, must
  fit ``capacity_bytes`` (``None`` = unbounded): of the level, or on a level
  with per-tensor memories of each memory, counting the tiles of the tensors
  that memory stores (:func:`capacity_groups`).
* Spatial factors at a level must fit its fan-out (per axis where
  ``spatial_axes`` names one); the product of all spatial factors must not
  exceed the bound compute unit's PEs. For a unit that is not an
  ``array2d`` (a 1D vector array, an SM), a level with no fan-out may still
  spread over the unit's PEs.
* Roles in ``StorageLevel.holds``: ``output`` is the output, ``input`` the
  first operand, ``weight`` the second (SCALE-Sim's ifmap and filter).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from hw_models.memories import serving_memory
from workloads.errors import EinsimError

if TYPE_CHECKING:
    from hw_models.arch import Architecture, ComputeUnit, StorageLevel
    from workloads.ir import Access, Einsum


class MappingError(EinsimError):
    """A mapping does not fit its Einsum or its architecture."""


@dataclass(frozen=True)
class LevelMapping:
    level: str
    #: rank -> temporal factor at this level (missing = 1)
    temporal: dict[str, int] = field(default_factory=dict)
    #: rank -> spatial factor from this level to the next one down
    spatial: dict[str, int] = field(default_factory=dict)
    #: rank -> "x" | "y": which fan-out axis a spatial rank uses
    spatial_axes: dict[str, str] = field(default_factory=dict)
    #: temporal loop order, outermost first (ranks with factor 1 may be
    #: omitted; ranks with a factor > 1 that are not listed go innermost, in
    #: the Einsum's rank order)
    order: tuple[str, ...] = ()
    #: tensors kept at this level; the others bypass it. None = keep all
    #: tensors the level may hold.
    keep: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Mapping:
    einsum: str
    levels: tuple[LevelMapping, ...]
    #: compute unit the Einsum is bound to (Architecture.compute[].name);
    #: "" = the architecture's first unit that can run the Einsum's ops
    unit: str = ""
    #: systolic dataflow this mapping implements ("os" | "ws" | "is"); ""
    #: = the unit's own dataflow. Only changes the fill/drain skew.
    dataflow: str = ""
    #: tensor -> level -> temporal loops ("LEVEL:RANK") of levels above it
    #: that the tensor's tile at that level also spans: its memory keeps
    #: the tile over them (ZigZag's per-operand loop boundaries; e.g. an
    #: input register staying over a loop the output register does not).
    #: They must be the innermost active loops above the level. Empty =
    #: one loop boundary per level for every tensor.
    resident: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    def factor(self, rank: str) -> int:
        """Product of the rank's temporal and spatial factors over all levels."""
        p = 1
        for lm in self.levels:
            p *= lm.temporal.get(rank, 1) * lm.spatial.get(rank, 1)
        return p


# --------------------------------------------------------------------------
# helpers shared with the cost model and the mappers
# --------------------------------------------------------------------------


class CapacityGroup(NamedTuple):
    """Tensors whose tiles share one capacity at a level: one memory of a
    level with per-tensor memories, or the whole of a one-memory level (a
    named tuple: the mappers build these on every call)."""

    #: the memory's name (a one-memory level: the level's name)
    memory: str
    #: bytes per copy; None = unbounded
    capacity_bytes: float | None
    #: 2 when the memory is double buffered, else 1
    mult: int
    #: the Einsum's tensors this memory stores
    tensors: frozenset[str]

    def at(self, level_name: str) -> str:
        """Where an error points: ``'L'`` for a one-memory level,
        ``'L (memory M)'`` for a memory of a level with several."""
        return level_name if self.memory == level_name else f"{level_name} (memory {self.memory})"


def capacity_groups(einsum: Einsum, arch: Architecture) -> tuple[tuple[CapacityGroup, ...], ...]:
    """Per level (outermost first), the capacities its kept tiles must fit.

    The one capacity rule of every mapper, :func:`validate`, the ILP and the
    vectorised model (``sim.analytical.compile``, through
    :func:`groups_by_memory`). A one-memory level is one group holding every
    tensor, at the level's own capacity and double buffering (today's
    shared-level presets); a level with ``memories`` has one group per
    memory that stores one of the Einsum's tensors
    (``hw_models.memories.serving_memory``), so a tile must fit its own
    scratchpad, not the level's total."""
    if any(lv.memories for lv in arch.levels):
        return groups_by_memory(arch, tensor_roles(einsum))
    # no memories: the roles are not needed (the mappers call this often)
    every = frozenset(a.tensor for a in einsum.accesses)
    return tuple((_whole_level(lv, every),) for lv in arch.levels)


def _whole_level(lv: StorageLevel, tensors: frozenset[str]) -> CapacityGroup:
    return CapacityGroup(lv.name, lv.capacity_bytes, 2 if lv.double_buffered else 1, tensors)


def groups_by_memory(
    arch: Architecture, roles: dict[str, tuple[str, ...]]
) -> tuple[tuple[CapacityGroup, ...], ...]:
    """:func:`capacity_groups` for the tensors of ``roles`` (tensor -> its
    roles, :func:`tensor_roles`)."""
    every = frozenset(roles)
    out: list[tuple[CapacityGroup, ...]] = []
    for lv in arch.levels:
        if not lv.memories:
            out.append((_whole_level(lv, every),))
            continue
        by_memory: dict[str, list[str]] = {}
        memory = {}
        for t, rs in roles.items():
            m = serving_memory(lv, t, rs)
            if m is not None:
                by_memory.setdefault(m.name, []).append(t)
                memory[m.name] = m
        out.append(
            tuple(
                CapacityGroup(
                    name,
                    memory[name].capacity_bytes,
                    2 if memory[name].double_buffered else 1,
                    frozenset(ts),
                )
                for name, ts in by_memory.items()
            )
        )
    return tuple(out)


def tensor_roles(einsum: Einsum) -> dict[str, tuple[str, ...]]:
    """tensor -> the role names ``StorageLevel.holds`` may use for it."""
    roles: dict[str, tuple[str, ...]] = {einsum.output.tensor: ("output",)}
    for i, acc in enumerate(einsum.inputs):
        role = "input" if i == 0 else "weight" if i == 1 else f"input{i}"
        roles.setdefault(acc.tensor, (role,))
    return roles


def level_may_hold(level: StorageLevel, tensor: str, roles: tuple[str, ...]) -> bool:
    if level.holds is None:
        return True
    return tensor in level.holds or any(r in level.holds for r in roles)


def kept_tensors(einsum: Einsum, arch: Architecture, mapping: Mapping) -> list[tuple[str, ...]]:
    """Per level (outermost first) the tensors it keeps (outermost: all)."""
    roles = tensor_roles(einsum)
    names = [a.tensor for a in einsum.accesses]
    names = list(dict.fromkeys(names))
    feed = feeding_level(arch, resolve_unit(einsum, arch, mapping))
    out: list[tuple[str, ...]] = []
    for i, (lv, lm) in enumerate(zip(arch.levels, mapping.levels, strict=True)):
        if i == 0:
            out.append(tuple(names))
        elif i > feed:
            out.append(())
        elif lm.keep is None:
            out.append(tuple(t for t in names if level_may_hold(lv, t, roles[t])))
        else:
            out.append(tuple(t for t in names if t in lm.keep))
    return out


def tile_footprint(acc: Access, tile: dict[str, int], rank_sizes: dict[str, int]) -> int:
    """Elements of ``acc``'s tile for a rank tile (clipped to the tensor's size)."""
    n = 1
    for ix in acc.indices:
        n *= min(ix.extent(tile), ix.extent(rank_sizes))
    return n


def affine_footprint(dims: Any, tile: Any) -> int:
    """Elements of a tensor for a rank tile, from its dimensions given as
    ``[(terms, full extent)]`` with ``terms = [(rank, |coefficient|)]``:
    per dimension ``1 + sum c*(tile[rank]-1)``, clipped to the full extent.
    ``tile`` is indexed like the ranks of ``terms`` (names or positions)."""
    n = 1
    for terms, full in dims:
        e = 1
        for r, c in terms:
            e += c * (tile[r] - 1)
        n *= e if e < full else full
    return n


def level_tiles(einsum: Einsum, mapping: Mapping) -> list[dict[str, int]]:
    """Per level (outermost first) the rank tile one instance of it holds."""
    ranks = [r for r, _ in einsum.rank_sizes_items]
    tiles: list[dict[str, int]] = []
    cur = dict.fromkeys(ranks, 1)
    for lm in reversed(mapping.levels):
        cur = {r: cur[r] * lm.temporal.get(r, 1) * lm.spatial.get(r, 1) for r in ranks}
        tiles.append(cur)
    tiles.reverse()
    return tiles


def padded_points(einsum: Einsum, mapping: Mapping) -> int:
    """Iteration points including padding (>= ``einsum.iteration_points``)."""
    return math.prod(mapping.factor(r) for r, _ in einsum.rank_sizes_items)


def einsum_op_weights(einsum: Einsum) -> dict[str, int]:
    """Operations per iteration point by op class, e.g. ``{"mac": 1}`` for a GEMM.

    From ``workloads.ir.MAP_OP_COUNTS`` / ``REDUCE_OP_COUNTS`` (the same rule
    as ``Einsum.op_counts``): ``mul`` reduced by ``sum`` is one fused MAC;
    otherwise the map operator's ops plus the reduce operator's when ranks
    are reduced. A pure copy costs no compute (only data movement).
    """
    from workloads import ir

    w: dict[str, int] = {}
    for cls, k in ir.MAP_OP_COUNTS.get(einsum.map_op, {einsum.map_op: 1}).items():
        w[cls] = w.get(cls, 0) + k
    if einsum.reduced_ranks and not (einsum.reduce_op == "sum" and einsum.map_op == "mul"):
        for cls, k in ir.REDUCE_OP_COUNTS.get(einsum.reduce_op, {einsum.reduce_op: 1}).items():
            w[cls] = w.get(cls, 0) + k
    return {c: k for c, k in w.items() if k}


def einsum_op_classes(einsum: Einsum) -> tuple[str, ...]:
    """Op classes an iteration point costs, e.g. ``("mac",)`` for a GEMM."""
    return tuple(einsum_op_weights(einsum))


def resolve_unit(einsum: Einsum, arch: Architecture, mapping: Mapping | None = None) -> ComputeUnit:
    """The compute unit an Einsum runs on (the mapping's, else the default binding).

    Default: an Einsum attribute ``unit=NAME`` or ``unit_class=2d|1d``
    (FuseMax's binding) picks the unit when it can run the Einsum's ops;
    otherwise MAC-heavy Einsums go to the first ``array2d`` unit that does
    MACs, other Einsums to the first ``array1d`` unit that can do their op
    classes, else to any unit that can.
    """
    if mapping is not None and mapping.unit:
        try:
            return arch.unit(mapping.unit)
        except KeyError:
            known = ", ".join(cu.name for cu in arch.compute) or "none"
            raise MappingError(
                f"mapping of {einsum.name}: unknown compute unit {mapping.unit!r} "
                f"(architecture {arch.name} has: {known})"
            ) from None
    if not arch.compute:
        raise MappingError(f"architecture {arch.name} has no compute unit")
    classes = einsum_op_classes(einsum)

    def can(cu: ComputeUnit) -> bool:
        return all(cu.ops_per_cycle.get(c, 0) > 0 for c in classes)

    capable = [cu for cu in arch.compute if can(cu)]
    if not capable:
        raise MappingError(
            f"no compute unit of {arch.name} can run {einsum.name} "
            f"(needs op classes {', '.join(classes)})"
        )
    attrs = dict(einsum.attrs)
    if attrs.get("unit"):
        for cu in capable:
            if cu.name == attrs["unit"]:
                return cu
    hint = _UNIT_CLASS.get(attrs.get("unit_class", ""))
    if hint:
        for cu in capable:
            if cu.kind == hint:
                return cu
    mac_heavy = "mac" in classes
    pref = ("array2d",) if mac_heavy else ("array1d",)
    for cu in capable:
        if cu.kind in pref:
            return cu
    return capable[0]


#: Einsum attribute ``unit_class`` (FuseMax binding hints) -> unit kind
_UNIT_CLASS = {"2d": "array2d", "1d": "array1d"}


def feeding_level(arch: Architecture, unit: ComputeUnit) -> int:
    """Index of the storage level that feeds ``unit`` (``ComputeUnit.fed_by``).

    Levels below it are not on the unit's path: they keep nothing and carry
    no factors for Einsums bound to the unit.
    """
    fed_by = getattr(unit, "fed_by", "")
    if fed_by:
        for i, lv in enumerate(arch.levels):
            if lv.name == fed_by:
                return i
        raise MappingError(
            f"compute unit {unit.name} is fed by {fed_by!r}, which is not a level of {arch.name}"
        )
    return len(arch.levels) - 1


def spatial_limit(arch: Architecture, unit: ComputeUnit, index: int) -> int:
    """Largest spatial factor product allowed at level ``index`` for ``unit``.

    A 2D array's fan-out is the levels' own. Any other unit (a 1D array, an
    SM) spreads over its PEs at its feeding level; above it the levels'
    fan-out applies; below it nothing.
    """
    feed = feeding_level(arch, unit)
    if index > feed:
        return 1
    if unit.kind != "array2d" and index == feed:
        return unit.pes
    return arch.levels[index].fanout


def _fmt_bytes(n: float) -> str:
    if n >= 1 << 20 and n % (1 << 10) == 0:
        return f"{n / (1 << 20):g} MiB"
    if n >= 1 << 10 and n % (1 << 10) == 0:
        return f"{n / (1 << 10):g} KiB"
    return f"{n:g} B"


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------


def validate(mapping: Mapping, einsum: Einsum, arch: Architecture) -> None:
    """Raise :class:`MappingError` naming rank, level and numbers if invalid.

    Padding (factors whose product exceeds the rank size) is allowed.
    """
    where = f"mapping of {einsum.name}"
    if mapping.einsum and mapping.einsum != einsum.name:
        raise MappingError(f"{where}: the mapping is for Einsum {mapping.einsum!r}")
    sizes = einsum.rank_sizes
    level_names = [lv.name for lv in arch.levels]
    got = [lm.level for lm in mapping.levels]
    for name in got:
        if name not in level_names:
            raise MappingError(
                f"{where}: unknown level {name!r} (architecture {arch.name} has "
                f"{', '.join(level_names)})"
            )
    if got != level_names:
        raise MappingError(
            f"{where}: levels must be {', '.join(level_names)} in that order, got {', '.join(got)}"
        )
    unit = resolve_unit(einsum, arch, mapping)
    if mapping.dataflow not in ("", "os", "ws", "is"):
        raise MappingError(f"{where}: dataflow {mapping.dataflow!r} is not one of os, ws, is")

    tensors = list(dict.fromkeys(a.tensor for a in einsum.accesses))
    roles = tensor_roles(einsum)
    feed = feeding_level(arch, unit)
    total_spatial = 1
    for lv, lm in zip(arch.levels, mapping.levels, strict=True):
        for kind, facs in (("temporal", lm.temporal), ("spatial", lm.spatial)):
            for r, f in facs.items():
                if r not in sizes:
                    raise MappingError(
                        f"{where}: unknown rank {r!r} in the {kind} factors of level "
                        f"{lv.name} (ranks: {', '.join(sizes)})"
                    )
                if not isinstance(f, numbers.Real) or f != int(f) or f < 1:
                    raise MappingError(
                        f"{where}: {kind} factor of rank {r} at level {lv.name} is {f!r}; "
                        "expected a positive integer"
                    )
        seen: set[str] = set()
        for r in lm.order:
            if r not in sizes:
                raise MappingError(
                    f"{where}: unknown rank {r!r} in the loop order of level {lv.name}"
                )
            if r in seen:
                raise MappingError(
                    f"{where}: rank {r} appears twice in the loop order of {lv.name}"
                )
            seen.add(r)
        for r, ax in lm.spatial_axes.items():
            if ax not in ("x", "y"):
                raise MappingError(
                    f"{where}: spatial axis of rank {r} at level {lv.name} is {ax!r}; "
                    "expected x or y"
                )
        # fan-out
        sp = math.prod(int(f) for f in lm.spatial.values())
        total_spatial *= sp
        lv_i = level_names.index(lv.name)
        if lv_i > feed and any(f > 1 for f in (*lm.temporal.values(), *lm.spatial.values())):
            raise MappingError(
                f"{where}: level {lv.name} is below {arch.levels[feed].name}, which feeds "
                f"unit {unit.name}; it cannot carry loop factors"
            )
        limit = spatial_limit(arch, unit, lv_i)
        if sp > limit:
            detail = " x ".join(f"{r}={f}" for r, f in lm.spatial.items() if f > 1)
            raise MappingError(
                f"{where}: spatial factors at level {lv.name} ({detail} = {sp}) exceed "
                f"its fan-out of {limit}"
            )
        for axis, cap in (("x", lv.fanout_x), ("y", lv.fanout_y)):
            on_axis = [r for r, a in lm.spatial_axes.items() if a == axis]
            if not on_axis or unit.kind != "array2d":
                continue
            prod_axis = math.prod(int(lm.spatial.get(r, 1)) for r in on_axis)
            if prod_axis > cap:
                raise MappingError(
                    f"{where}: spatial factors on axis {axis} at level {lv.name} "
                    f"({', '.join(on_axis)}: {prod_axis}) exceed its fan-out_{axis} of {cap}"
                )
        if lm.keep is not None:
            for t in lm.keep:
                if t not in tensors:
                    raise MappingError(
                        f"{where}: unknown tensor {t!r} kept at level {lv.name} "
                        f"(tensors: {', '.join(tensors)})"
                    )
                if lv_i > feed:
                    raise MappingError(
                        f"{where}: level {lv.name} is below {arch.levels[feed].name}, which "
                        f"feeds unit {unit.name}; it cannot keep {t}"
                    )
                if not level_may_hold(lv, t, roles[t]):
                    raise MappingError(
                        f"{where}: level {lv.name} cannot hold tensor {t} "
                        f"(it holds only {', '.join(lv.holds or ())})"
                    )
    if mapping.levels and mapping.levels[0].keep is not None:
        missing = [t for t in tensors if t not in mapping.levels[0].keep]
        if missing:
            raise MappingError(
                f"{where}: the outermost level {arch.levels[0].name} must keep every "
                f"tensor; {', '.join(missing)} bypass it"
            )
    if total_spatial > unit.pes:
        raise MappingError(
            f"{where}: spatial factors use {total_spatial} PEs but unit {unit.name} has {unit.pes}"
        )
    for t, per_level in mapping.resident.items():
        if t not in tensors:
            raise MappingError(f"{where}: resident loops of unknown tensor {t!r}")
        for lv_name in per_level:
            if lv_name not in level_names:
                raise MappingError(f"{where}: resident loops of {t} at unknown level {lv_name!r}")
            resident_loops(einsum, mapping, t, level_names.index(lv_name))
    # coverage
    for r, size in einsum.rank_sizes_items:
        f = mapping.factor(r)
        if f < size:
            parts = []
            for lm in mapping.levels:
                if lm.temporal.get(r, 1) > 1:
                    parts.append(f"{lm.level}:{lm.temporal[r]}")
                if lm.spatial.get(r, 1) > 1:
                    parts.append(f"{lm.level}:spatial {lm.spatial[r]}")
            detail = " x ".join(parts) or "1"
            raise MappingError(
                f"{where}: factors of rank {r} ({detail} = {f}) do not cover its size {size}"
            )
    # capacity
    tiles = level_tiles(einsum, mapping)
    kept = kept_tensors(einsum, arch, mapping)
    acc_by_tensor = {a.tensor: a for a in reversed(einsum.accesses)}
    groups = capacity_groups(einsum, arch)
    for lv, tile, keep, level_groups in zip(arch.levels, tiles, kept, groups, strict=True):
        for g in level_groups:
            if g.capacity_bytes is None:
                continue
            need_t = {
                t: tile_footprint(acc_by_tensor[t], tile, sizes)
                * acc_by_tensor[t].bits
                / 8
                * g.mult
                for t in keep
                if t in g.tensors
            }
            need = sum(need_t.values())
            if need > g.capacity_bytes:
                parts = [f"{t} {_fmt_bytes(b)}" for t, b in need_t.items()]
                db = ", double buffered" if g.mult == 2 else ""
                tile_s = " ".join(f"{r}={n}" for r, n in tile.items() if n > 1) or "1"
                raise MappingError(
                    f"{where}: tiles at level {g.at(lv.name)} ({tile_s}: {', '.join(parts)}{db}) "
                    f"need {_fmt_bytes(need)} but it has {_fmt_bytes(g.capacity_bytes)}"
                )


def resident_loops(
    einsum: Einsum, mapping: Mapping, tensor: str, level: int
) -> set[tuple[int, str]]:
    """The (level index, rank) loops tensor's tile at ``level`` also spans
    (:attr:`Mapping.resident`); checked to be the innermost active temporal
    loops above ``level``."""
    spec = mapping.resident.get(tensor, {}).get(mapping.levels[level].level, ())
    if not spec:
        return set()
    where = f"mapping of {einsum.name}: resident loops of {tensor} at {mapping.levels[level].level}"
    names = [lm.level for lm in mapping.levels]
    ranks = [r for r, _ in einsum.rank_sizes_items]
    above = [
        (i, r)
        for i in range(level)
        for r in loop_order(mapping.levels[i], ranks)
        if mapping.levels[i].temporal.get(r, 1) > 1
    ]
    want: set[tuple[int, str]] = set()
    for item in spec:
        lv, sep, r = str(item).rpartition(":")
        if not sep or lv not in names[:level] or (names.index(lv), r) not in above:
            raise MappingError(
                f"{where}: {item!r} is not a temporal loop LEVEL:RANK of a level above it"
            )
        want.add((names.index(lv), r))
    if set(above[len(above) - len(want) :]) != want:
        raise MappingError(f"{where}: they must be the innermost active loops above the level")
    return want


def loop_order(lm: LevelMapping, ranks: list[str]) -> list[str]:
    """The full temporal order at a level, outermost first (see ``LevelMapping.order``)."""
    listed = [r for r in lm.order if r in ranks]
    rest = [r for r in ranks if r not in listed]
    return listed + rest


# --------------------------------------------------------------------------
# serialisation
# --------------------------------------------------------------------------


def mapping_to_dict(mapping: Mapping) -> dict[str, Any]:
    """A plain JSON/YAML-able dict (inverse of :func:`mapping_from_dict`)."""
    levels = []
    for lm in mapping.levels:
        d: dict[str, Any] = {"level": lm.level}
        d["temporal"] = {r: int(f) for r, f in lm.temporal.items() if f != 1}
        d["spatial"] = {r: int(f) for r, f in lm.spatial.items() if f != 1}
        if lm.spatial_axes:
            d["spatial_axes"] = dict(lm.spatial_axes)
        d["order"] = list(lm.order)
        if lm.keep is not None:
            d["keep"] = list(lm.keep)
        levels.append(d)
    out: dict[str, Any] = {"einsum": mapping.einsum, "unit": mapping.unit}
    if mapping.dataflow:
        out["dataflow"] = mapping.dataflow
    out["levels"] = levels
    if mapping.resident:
        out["resident"] = {
            t: {lv: list(loops) for lv, loops in d.items()} for t, d in mapping.resident.items()
        }
    return out


_LEVEL_KEYS = {"level", "temporal", "spatial", "spatial_axes", "order", "keep"}
_TOP_KEYS = {"einsum", "unit", "dataflow", "levels", "resident"}


def mapping_from_dict(
    d: Any,
    *,
    file: str | None = None,
    lines: dict[tuple, int] | None = None,
    path: tuple = (),
) -> Mapping:
    """Build a :class:`Mapping` from :func:`mapping_to_dict`'s form.

    ``lines`` maps a key path (e.g. ``("levels", 1, "temporal")``) to its line
    in ``file`` so errors can point at it.
    """
    lines = lines or {}

    def err(msg: str, p: tuple) -> MappingError:
        q = p
        while q and q not in lines:
            q = q[:-1]
        return MappingError(msg, file=file, line=lines.get(q))

    if not isinstance(d, dict):
        raise err(f"a mapping must be a mapping of keys, got {type(d).__name__}", path)
    for k in d:
        if k not in _TOP_KEYS:
            raise err(
                f"unknown key {k!r} in a mapping (expected {', '.join(sorted(_TOP_KEYS))})",
                (*path, k),
            )
    if "levels" not in d or not isinstance(d["levels"], list):
        raise err("a mapping needs 'levels': a list, one entry per storage level", path)

    def factors(v: Any, p: tuple) -> dict[str, int]:
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise err(f"expected rank: factor pairs, got {v!r}", p)
        out = {}
        for r, f in v.items():
            if isinstance(f, bool) or not isinstance(f, int) or f < 1:
                raise err(f"factor of rank {r} is {f!r}; expected a positive integer", (*p, r))
            out[str(r)] = int(f)
        return out

    def names(v: Any, p: tuple) -> tuple[str, ...]:
        if v is None:
            return ()
        if isinstance(v, str):
            v = [s for s in v.replace(",", " ").split()]
        if not isinstance(v, list | tuple):
            raise err(f"expected a list of names, got {v!r}", p)
        return tuple(str(x) for x in v)

    lms = []
    for i, ld in enumerate(d["levels"]):
        p = (*path, "levels", i)
        if not isinstance(ld, dict) or "level" not in ld:
            raise err("each entry of 'levels' needs a 'level' name", p)
        for k in ld:
            if k not in _LEVEL_KEYS:
                raise err(
                    f"unknown key {k!r} in level {ld['level']} "
                    f"(expected {', '.join(sorted(_LEVEL_KEYS))})",
                    (*p, k),
                )
        axes = ld.get("spatial_axes") or {}
        if not isinstance(axes, dict):
            raise err("spatial_axes must map rank -> x or y", (*p, "spatial_axes"))
        keep = ld.get("keep")
        lms.append(
            LevelMapping(
                level=str(ld["level"]),
                temporal=factors(ld.get("temporal"), (*p, "temporal")),
                spatial=factors(ld.get("spatial"), (*p, "spatial")),
                spatial_axes={str(r): str(a) for r, a in axes.items()},
                order=names(ld.get("order"), (*p, "order")),
                keep=None if keep is None else names(keep, (*p, "keep")),
            )
        )
    res = d.get("resident") or {}
    if not isinstance(res, dict) or not all(isinstance(v, dict) for v in res.values()):
        raise err("resident must map tensor -> level -> [LEVEL:RANK, ...]", (*path, "resident"))
    return Mapping(
        einsum=str(d.get("einsum", "") or ""),
        levels=tuple(lms),
        unit=str(d.get("unit", "") or ""),
        dataflow=str(d.get("dataflow", "") or ""),
        resident={
            str(t): {str(lv): names(v, (*path, "resident", t, lv)) for lv, v in lvs.items()}
            for t, lvs in res.items()
        },
    )


def load_mappings(path: str | Path) -> dict[str, Mapping]:
    """Load a YAML mapping file: Einsum name -> Mapping.

    The file holds either one mapping (the form of :func:`mapping_to_dict`)
    or ``mappings:`` followed by a list of them (one per Einsum of a
    cascade). Errors name the file and the line.
    """
    from workloads.yamlio import load_yaml

    p = Path(path)
    data, lines = load_yaml(p, "mapping file", error=MappingError)
    if data is None:
        raise MappingError("the mapping file is empty", file=str(p))
    if isinstance(data, dict) and "mappings" in data:
        items = data["mappings"]
        if not isinstance(items, list):
            raise MappingError(
                "'mappings' must be a list", file=str(p), line=lines.get(("mappings",))
            )
        ms = [
            mapping_from_dict(it, file=str(p), lines=lines, path=("mappings", i))
            for i, it in enumerate(items)
        ]
    else:
        ms = [mapping_from_dict(data, file=str(p), lines=lines)]
    out: dict[str, Mapping] = {}
    for i, m in enumerate(ms):
        key = m.einsum or ("" if len(ms) == 1 else f"#{i}")
        out[key] = m
    return out


def check_mapping_file(
    path: str | Path, mappings: dict[str, Mapping], einsums: list[Einsum], arch: Architecture
) -> None:
    """Validate mappings read by :func:`load_mappings` from ``path`` against
    their Einsums and ``arch``; an error names the file and the line where
    the offending mapping starts (``validate`` itself knows neither)."""
    from workloads.yamlio import load_yaml

    data, lines = load_yaml(path, "mapping file", error=MappingError)
    many = isinstance(data, dict) and isinstance(data.get("mappings"), list)
    by_name = {e.name: e for e in einsums}
    for i, (key, m) in enumerate(mappings.items()):
        line = lines.get(("mappings", i)) if many else lines.get(())
        name = m.einsum or (key if not key.startswith("#") else "")
        if not name and len(einsums) == 1:
            name = einsums[0].name
        e = by_name.get(name)
        if e is None:
            raise MappingError(
                f"the mapping is for Einsum {name!r}, which is not in the workload "
                f"(Einsums: {', '.join(sorted(by_name))})",
                file=str(path),
                line=line,
            )
        try:
            validate(m if m.einsum else dataclasses.replace(m, einsum=name), e, arch)
        except MappingError as exc:
            raise MappingError(exc.message, file=str(path), line=line) from None


def load_mapping(path: str | Path) -> Mapping:
    """Load a YAML file holding exactly one mapping."""
    ms = load_mappings(path)
    if len(ms) != 1:
        raise MappingError(f"expected one mapping, the file holds {len(ms)}", file=str(path))
    return next(iter(ms.values()))


def dump_mappings(mappings: dict[str, Mapping] | list[Mapping]) -> str:
    """YAML text that :func:`load_mappings` reads back."""
    import yaml

    ms = list(mappings.values()) if isinstance(mappings, dict) else list(mappings)
    if len(ms) == 1:
        data: Any = mapping_to_dict(ms[0])
    else:
        data = {"mappings": [mapping_to_dict(m) for m in ms]}
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)

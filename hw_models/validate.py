"""Structural checks of an :class:`Architecture` (whatever built it)."""

from __future__ import annotations

import math

from hw_models.arch import (
    PORT_DIRECTIONS,
    PORT_KINDS,
    Architecture,
    Memory,
    Precision,
    StorageLevel,
)
from hw_models.errors import HardwareError
from hw_models.memories import SUMMARY_FIELDS, summary_fields

#: operator classes a compute unit may be rated in (workloads.ir.OP_CLASSES)
OP_CLASSES = ("mac", "add", "max", "exp", "div")


def _pos(value: float, field: str, what: str = "> 0") -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise HardwareError(f"{field} must be {what}, got {value!r}", field=field)


def _bw(value: float, field: str) -> None:
    """A bandwidth: > 0, finite or .inf (no limit)."""
    if not (isinstance(value, int | float) and value > 0 and not math.isnan(value)):
        raise HardwareError(f"{field} must be > 0 (or null: no limit), got {value!r}", field=field)


def _nonneg(value: float, field: str) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise HardwareError(f"{field} must be >= 0, got {value!r}", field=field)


#: exact numeric types the quick check accepts (not bool, not numpy scalars)
_NUM = (int, float)
#: the quick check accepts magnitudes below this (``math.isfinite`` of a
#: larger int overflows; those go through the full checks)
_BIG = 1e300


def _quick_ok(arch: Architecture) -> bool:
    """True when every check of :func:`validate` passes, tested with exact
    types and plain comparisons (sweeps validate every derived point).
    Stricter than :func:`validate`: anything unusual (a numpy scalar, a
    bool, a huge value, a malformed tree) returns False and goes through
    the full checks, which raise the error or accept the tree."""
    try:
        return _quick(arch)
    except Exception:  # noqa: BLE001 - the full checks report it
        return False


def _quick(arch: Architecture) -> bool:
    num, big = _NUM, _BIG
    v = arch.clock_hz
    if type(v) not in num or not 0 < v < big:
        return False
    v = arch.static_power_w
    if type(v) not in num or not 0 <= v < big:
        return False
    levels, units = arch.levels, arch.compute
    if not levels or not units:
        return False
    names = [lv.name for lv in levels]
    if not all(names) or len(set(names)) != len(names):
        return False
    for i, lv in enumerate(levels):
        if (
            lv.memories
            or lv.precision is not None
            or lv.share_x is not None
            or lv.share_y is not None
            or lv.network_energy_pj_per_word != 0.0
        ):
            return False  # the architecture tree's fields: the full checks
        wb = lv.word_bits
        if type(wb) not in num or not 0 < wb < big:
            return False
        cap = lv.capacity_bytes
        if cap is None:
            if i != 0:
                return False
        elif type(cap) not in num or not (0 < cap < big and cap >= wb / 8):
            return False
        for v in (lv.read_bw_bytes_per_cycle, lv.write_bw_bytes_per_cycle):
            if type(v) not in num or not 0 < v < big:
                return False
        for v in (
            lv.read_energy_pj_per_word,
            lv.write_energy_pj_per_word,
            lv.leakage_w,
            lv.area_mm2,
        ):
            if type(v) not in num or not 0 <= v < big:
                return False
        for v in (lv.banks, lv.instances, lv.fanout_x, lv.fanout_y):
            if type(v) is not int or v < 1:
                return False
    unames = [cu.name for cu in units]
    if not all(unames) or len(set(unames)) != len(unames):
        return False
    for cu in units:
        if cu.precision is not None or cu.systolic_axes:
            return False
        for v in (cu.pes, cu.rows, cu.cols, cu.datatype_bits):
            if type(v) is not int or v < 1:
                return False
        ops, energy = cu.ops_per_cycle, cu.energy_pj_per_op
        if type(ops) is not dict or type(energy) is not dict or not ops:
            return False
        for op, v in ops.items():
            if op not in OP_CLASSES or type(v) not in num or not 0 < v < big or op not in energy:
                return False
        for v in energy.values():
            if type(v) not in num or not 0 <= v < big:
                return False
        for v in cu.dtype_scale.values():
            if type(v) not in num or not 0 < v < big:
                return False
        for v in (cu.area_mm2, cu.leakage_w):
            if type(v) not in num or not 0 <= v < big:
                return False
        if cu.fed_by and cu.fed_by not in names:
            return False
    return True


def validate(arch: Architecture) -> Architecture:
    """Raise :class:`HardwareError` naming the first bad field; return ``arch``.

    Checks: positive clock, at least one level and one compute unit, unique
    names, capacities > 0 and >= one word (None only allowed on the outermost
    level), bandwidths > 0 (.inf = no limit), energies/areas/leakage >= 0,
    fan-outs and instance counts >= 1, compute rates > 0 for known operator
    classes, and that ``fed_by`` names an existing level. A level with
    memories: each memory as a level, unique memory names, no tensor or role
    given to two memories of one level, ports of a known kind whose
    bandwidths add up to the memory's, and the level's own fields equal to
    the summary of its memories.
    """
    if _quick_ok(arch):
        return arch
    return _validate_full(arch)


def _validate_full(arch: Architecture) -> Architecture:
    """The checks of :func:`validate`, one field at a time."""
    _pos(arch.clock_hz, "clock_hz")
    _nonneg(arch.static_power_w, "static_power_w")
    if not arch.levels:
        raise HardwareError("levels must hold at least one storage level", field="levels")
    if not arch.compute:
        raise HardwareError("compute must hold at least one compute unit", field="compute")
    names = [lv.name for lv in arch.levels]
    mem_names: dict[str, str] = {}
    for i, lv in enumerate(arch.levels):
        f = f"levels[{i}]"
        if not lv.name or names.count(lv.name) > 1:
            raise HardwareError(
                f"{f}.name must be a unique non-empty name, got {lv.name!r}", field=f"{f}.name"
            )
        _tree_fields(lv, f)
        if lv.memories:
            _memory_level(lv, i, f, mem_names)
            continue
        mem_names[lv.name] = f"{f}.name"
        _storage(lv, f, outermost=i == 0)
        for key in ("instances", "fanout_x", "fanout_y"):
            _int_at_least(getattr(lv, key), f"{f}.{key}", 1)
    units = [cu.name for cu in arch.compute]
    for i, cu in enumerate(arch.compute):
        f = f"compute[{i}]"
        if not cu.name or units.count(cu.name) > 1:
            raise HardwareError(
                f"{f}.name must be a unique non-empty name, got {cu.name!r}", field=f"{f}.name"
            )
        for key in ("pes", "rows", "cols", "datatype_bits"):
            _int_at_least(getattr(cu, key), f"{f}.{key}", 1)
        _precision(cu.precision, f"{f}.precision")
        if not (isinstance(cu.systolic_axes, tuple) and set(cu.systolic_axes) <= {"x", "y"}):
            raise HardwareError(
                f"{f}.systolic_axes must be a list of fan-out axes (x, y), got {cu.systolic_axes!r}",
                field=f"{f}.systolic_axes",
            )
        if not cu.ops_per_cycle:
            raise HardwareError(
                f"{f}.ops_per_cycle must rate at least one operator class",
                field=f"{f}.ops_per_cycle",
            )
        for op, rate in cu.ops_per_cycle.items():
            if op not in OP_CLASSES:
                raise HardwareError(
                    f"{f}.ops_per_cycle.{op}: operator class must be one of {', '.join(OP_CLASSES)}",
                    field=f"{f}.ops_per_cycle.{op}",
                )
            _pos(rate, f"{f}.ops_per_cycle.{op}")
            if op not in cu.energy_pj_per_op:
                raise HardwareError(
                    f"{f}.energy_pj_per_op.{op} is missing", field=f"{f}.energy_pj_per_op.{op}"
                )
        for op, e in cu.energy_pj_per_op.items():
            _nonneg(e, f"{f}.energy_pj_per_op.{op}")
        for dt, scale in cu.dtype_scale.items():
            _pos(scale, f"{f}.dtype_scale.{dt}")
        _nonneg(cu.area_mm2, f"{f}.area_mm2")
        _nonneg(cu.leakage_w, f"{f}.leakage_w")
        if cu.fed_by and cu.fed_by not in names:
            raise HardwareError(
                f"{f}.fed_by: unknown level {cu.fed_by!r}; levels are {', '.join(names)}",
                field=f"{f}.fed_by",
            )
    return arch


def _int_at_least(v: object, field: str, lo: int) -> None:
    if not (isinstance(v, int) and not isinstance(v, bool) and v >= lo):
        raise HardwareError(f"{field} must be an integer >= {lo}, got {v!r}", field=field)


def _precision(p: Precision | None, field: str) -> None:
    if p is None:
        return
    if not isinstance(p, Precision):
        raise HardwareError(
            f"{field} must be a precision (input_bits, ...), got {p!r}", field=field
        )
    for key in ("input_bits", "weight_bits", "psum_bits", "output_bits"):
        v = getattr(p, key)
        if v is not None:
            _int_at_least(v, f"{field}.{key}", 1)


def _names(value: object, field: str) -> None:
    if value is None:
        return
    if not isinstance(value, tuple) or not all(isinstance(h, str) and h for h in value):
        raise HardwareError(
            f"{field} must be a list of tensor names or roles, got {value!r}", field=field
        )


def _tree_fields(lv, f: str) -> None:
    """The fields every level has since the architecture tree."""
    _names(lv.share_x, f"{f}.share_x")
    _names(lv.share_y, f"{f}.share_y")
    _nonneg(lv.network_energy_pj_per_word, f"{f}.network_energy_pj_per_word")
    if not lv.memories:
        _names(lv.holds, f"{f}.holds")
        _precision(lv.precision, f"{f}.precision")


def _storage(m: StorageLevel | Memory, f: str, outermost: bool) -> None:
    """The memory fields of a one-memory level or of a memory: word,
    capacity (null only on the outermost level), bandwidths, energies,
    leakage, area, banks."""
    _pos(m.word_bits, f"{f}.word_bits")
    if m.capacity_bytes is None:
        if not outermost:
            raise HardwareError(
                f"{f}.capacity_bytes may be null (unbounded) only on the outermost level",
                field=f"{f}.capacity_bytes",
            )
    else:
        _pos(m.capacity_bytes, f"{f}.capacity_bytes")
        word = m.word_bits / 8
        if m.capacity_bytes < word:
            raise HardwareError(
                f"{f}.capacity_bytes must be >= {word:g} (one {m.word_bits}-bit word), "
                f"got {m.capacity_bytes:g}",
                field=f"{f}.capacity_bytes",
            )
    _bw(m.read_bw_bytes_per_cycle, f"{f}.read_bw_bytes_per_cycle")
    _bw(m.write_bw_bytes_per_cycle, f"{f}.write_bw_bytes_per_cycle")
    for key in ("read_energy_pj_per_word", "write_energy_pj_per_word", "leakage_w", "area_mm2"):
        _nonneg(getattr(m, key), f"{f}.{key}")
    _int_at_least(m.banks, f"{f}.banks", 1)


def _memory(m: Memory, f: str, outermost: bool) -> None:
    """One memory's own fields (path ``f`` = levels[i].memories[j])."""
    if not isinstance(m, Memory):
        raise HardwareError(f"{f} must be a memory, got {type(m).__name__}", field=f)
    if not isinstance(m.name, str) or not m.name:
        raise HardwareError(f"{f}.name must be a non-empty name, got {m.name!r}", field=f"{f}.name")
    _names(m.serves, f"{f}.serves")
    if m.serves is not None and not m.serves:
        raise HardwareError(
            f"{f}.serves must name at least one tensor or role (input, weight, output)",
            field=f"{f}.serves",
        )
    _storage(m, f, outermost)
    _int_at_least(m.latency_cycles, f"{f}.latency_cycles", 0)
    _precision(m.precision, f"{f}.precision")
    _ports(m, f)


def _ports(m: Memory, f: str) -> None:
    read = write = 0.0
    for k, p in enumerate(m.ports):
        pf = f"{f}.ports[{k}]"
        if p.kind not in PORT_KINDS:
            raise HardwareError(
                f"{pf}.kind must be one of {', '.join(PORT_KINDS)}, got {p.kind!r}",
                field=f"{pf}.kind",
            )
        _bw(p.bw_bytes_per_cycle, f"{pf}.bw_bytes_per_cycle")
        _int_at_least(p.min_access_bits, f"{pf}.min_access_bits", 0)
        for e in p.serves:
            direction = e.partition(":")[2]
            if direction and direction not in PORT_DIRECTIONS:
                raise HardwareError(
                    f"{pf}.serves: direction of {e!r} must be one of {', '.join(PORT_DIRECTIONS)}",
                    field=f"{pf}.serves",
                )
        if p.kind in ("read", "readwrite"):
            read += p.bw_bytes_per_cycle
        if p.kind in ("write", "readwrite"):
            write += p.bw_bytes_per_cycle
    if not m.ports:
        return
    for key, total in (("read_bw_bytes_per_cycle", read), ("write_bw_bytes_per_cycle", write)):
        have = getattr(m, key)
        if not math.isclose(have, total, rel_tol=1e-9):
            raise HardwareError(
                f"{f}.{key} must be the sum of its ports' bandwidths ({total:g}), got {have:g}",
                field=f"{f}.{key}",
            )


def _memory_level(lv, i: int, f: str, mem_names: dict[str, str]) -> None:
    """A level with memories: each memory, their names and what they serve,
    and the level's own fields as their summary."""
    if not isinstance(lv.memories, tuple):
        raise HardwareError(f"{f}.memories must be a list of memories", field=f"{f}.memories")
    given: dict[str, str] = {}
    for j, m in enumerate(lv.memories):
        mf = f"{f}.memories[{j}]"
        _memory(m, mf, outermost=i == 0)
        if m.name in mem_names and mem_names[m.name] != f"{f}.name":
            raise HardwareError(
                f"{mf}.name {m.name!r} is already used by {mem_names[m.name]}; memory names "
                "must be unique in the architecture",
                field=f"{mf}.name",
            )
        mem_names[m.name] = f"{mf}.name"
        if m.serves is None and len(lv.memories) > 1:
            raise HardwareError(
                f"{mf}.serves must name its tensors or roles (the level has "
                f"{len(lv.memories)} memories)",
                field=f"{mf}.serves",
            )
        for t in m.serves or ():
            if t in given:
                raise HardwareError(
                    f"{mf}.serves: {t!r} is already served by memory {given[t]!r} of this level",
                    field=f"{mf}.serves",
                )
            given[t] = m.name
    want = summary_fields(lv.memories)
    for key in SUMMARY_FIELDS:
        if getattr(lv, key) != want[key]:
            raise HardwareError(
                f"{f}.{key} must be the summary of the level's memories ({want[key]!r}), got "
                f"{getattr(lv, key)!r}; build the level with hw_models.memory_level",
                field=f"{f}.{key}",
            )
    for key in ("instances", "fanout_x", "fanout_y"):
        _int_at_least(getattr(lv, key), f"{f}.{key}", 1)

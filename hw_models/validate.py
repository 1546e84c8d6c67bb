"""Structural checks of an :class:`Architecture` (whatever built it)."""

from __future__ import annotations

import math

from hw_models.arch import Architecture
from hw_models.errors import HardwareError

#: operator classes a compute unit may be rated in (workloads.ir.OP_CLASSES)
OP_CLASSES = ("mac", "add", "max", "exp", "div")


def _pos(value: float, field: str, what: str = "> 0") -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise HardwareError(f"{field} must be {what}, got {value!r}", field=field)


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
    level), bandwidths > 0, energies/areas/leakage >= 0, fan-outs and
    instance counts >= 1, compute rates > 0 for known operator classes, and
    that ``fed_by`` names an existing level.
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
    for i, lv in enumerate(arch.levels):
        f = f"levels[{i}]"
        if not lv.name or names.count(lv.name) > 1:
            raise HardwareError(
                f"{f}.name must be a unique non-empty name, got {lv.name!r}", field=f"{f}.name"
            )
        _pos(lv.word_bits, f"{f}.word_bits")
        if lv.capacity_bytes is None:
            if i != 0:
                raise HardwareError(
                    f"{f}.capacity_bytes may be null (unbounded) only on the outermost level",
                    field=f"{f}.capacity_bytes",
                )
        else:
            _pos(lv.capacity_bytes, f"{f}.capacity_bytes")
            word = lv.word_bits / 8
            if lv.capacity_bytes < word:
                raise HardwareError(
                    f"{f}.capacity_bytes must be >= {word:g} (one {lv.word_bits}-bit word), got {lv.capacity_bytes:g}",
                    field=f"{f}.capacity_bytes",
                )
        _pos(lv.read_bw_bytes_per_cycle, f"{f}.read_bw_bytes_per_cycle")
        _pos(lv.write_bw_bytes_per_cycle, f"{f}.write_bw_bytes_per_cycle")
        for key in ("read_energy_pj_per_word", "write_energy_pj_per_word", "leakage_w", "area_mm2"):
            _nonneg(getattr(lv, key), f"{f}.{key}")
        for key in ("banks", "instances", "fanout_x", "fanout_y"):
            v = getattr(lv, key)
            if not (isinstance(v, int) and v >= 1):
                raise HardwareError(
                    f"{f}.{key} must be an integer >= 1, got {v!r}", field=f"{f}.{key}"
                )
    units = [cu.name for cu in arch.compute]
    for i, cu in enumerate(arch.compute):
        f = f"compute[{i}]"
        if not cu.name or units.count(cu.name) > 1:
            raise HardwareError(
                f"{f}.name must be a unique non-empty name, got {cu.name!r}", field=f"{f}.name"
            )
        for key in ("pes", "rows", "cols", "datatype_bits"):
            v = getattr(cu, key)
            if not (isinstance(v, int) and v >= 1):
                raise HardwareError(
                    f"{f}.{key} must be an integer >= 1, got {v!r}", field=f"{f}.{key}"
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

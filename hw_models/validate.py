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


def validate(arch: Architecture) -> Architecture:
    """Raise :class:`HardwareError` naming the first bad field; return ``arch``.

    Checks: positive clock, at least one level and one compute unit, unique
    names, capacities > 0 and >= one word (None only allowed on the outermost
    level), bandwidths > 0, energies/areas/leakage >= 0, fan-outs and
    instance counts >= 1, compute rates > 0 for known operator classes, and
    that ``fed_by`` names an existing level.
    """
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

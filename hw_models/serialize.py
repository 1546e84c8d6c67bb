"""Architecture <-> plain dict (the YAML/JSON form), with strict checking.

``arch_to_dict`` writes every field (units are in the key names);
``arch_from_dict`` accepts exactly those keys and reports a bad one as
``HardwareError`` naming its path (``levels[1].capacity_bytes``), so
the loader can attach the file line.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any

from hw_models.arch import Architecture, ComputeUnit, StorageLevel
from hw_models.errors import HardwareError


def numpy_bool_types() -> tuple[type, ...]:
    """numpy.bool_ if numpy is already imported (never imports it)."""
    import sys

    np = sys.modules.get("numpy")
    return (np.bool_,) if np is not None else ()


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None:
        return None
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (bool, *numpy_bool_types())):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def arch_to_dict(arch: Architecture) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(arch):
        v = getattr(arch, f.name)
        if f.name == "levels":
            out[f.name] = [_plain(dataclasses.asdict(lv)) for lv in v]
        elif f.name == "compute":
            out[f.name] = [_plain(dataclasses.asdict(cu)) for cu in v]
        else:
            out[f.name] = _plain(v)
    return out


_TYPES = {
    "str": (str,),
    "int": (numbers.Integral,),
    "float": (numbers.Real,),
    "bool": (bool,),
}


def _expect(
    kind: str, value: Any, path: str, *, positive: bool = False, nonneg: bool = False
) -> Any:
    ok = isinstance(value, _TYPES[kind]) and (kind == "bool" or not isinstance(value, bool))
    if ok and kind in ("int", "float"):
        ok = math.isfinite(float(value))
    if not ok:
        raise HardwareError(f"{path} must be {_KIND_TEXT[kind]}, got {value!r}", field=path)
    if positive and value <= 0:
        raise HardwareError(f"{path} must be > 0, got {value!r}", field=path)
    if nonneg and value < 0:
        raise HardwareError(f"{path} must be >= 0, got {value!r}", field=path)
    return int(value) if kind == "int" else (float(value) if kind == "float" else value)


_KIND_TEXT = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false"}

_LEVEL_FIELDS: dict[str, tuple[str, dict[str, bool]]] = {
    "name": ("str", {}),
    "word_bits": ("int", {"positive": True}),
    "read_bw_bytes_per_cycle": ("float", {"positive": True}),
    "write_bw_bytes_per_cycle": ("float", {"positive": True}),
    "read_energy_pj_per_word": ("float", {"nonneg": True}),
    "write_energy_pj_per_word": ("float", {"nonneg": True}),
    "shared_bw": ("bool", {}),
    "banks": ("int", {"positive": True}),
    "leakage_w": ("float", {"nonneg": True}),
    "area_mm2": ("float", {"nonneg": True}),
    "instances": ("int", {"positive": True}),
    "double_buffered": ("bool", {}),
    "fanout_x": ("int", {"positive": True}),
    "fanout_y": ("int", {"positive": True}),
    "multicast": ("bool", {}),
    "spatial_reduce": ("bool", {}),
}

_UNIT_FIELDS: dict[str, tuple[str, dict[str, bool]]] = {
    "name": ("str", {}),
    "kind": ("str", {}),
    "pes": ("int", {"positive": True}),
    "rows": ("int", {"positive": True}),
    "cols": ("int", {"positive": True}),
    "dataflow": ("str", {}),
    "datatype_bits": ("int", {"positive": True}),
    "area_mm2": ("float", {"nonneg": True}),
    "leakage_w": ("float", {"nonneg": True}),
    "fed_by": ("str", {}),
}


def _check_keys(data: Mapping, allowed: set[str], path: str) -> None:
    for k in data:
        if k not in allowed:
            raise HardwareError(
                f"{path}{'.' if path else ''}{k} is not a known field; allowed: {', '.join(sorted(allowed))}",
                field=f"{path}{'.' if path else ''}{k}",
            )


def _typed_fields(data: Any, path: str, cls: type, specs: dict, what: str) -> dict[str, Any]:
    """Check that ``data`` is a mapping of ``cls``'s fields; the ``specs``
    fields it has, checked and converted."""
    if not isinstance(data, Mapping):
        raise HardwareError(f"{path} must be a mapping of {what} fields", field=path)
    names = {f.name for f in dataclasses.fields(cls)}
    _check_keys(data, names, path)
    kw: dict[str, Any] = {}
    for key, (kind, opts) in specs.items():
        if key in data:
            kw[key] = _expect(kind, data[key], f"{path}.{key}", **opts)
    return kw


def _level(data: Any, path: str) -> StorageLevel:
    kw = _typed_fields(data, path, StorageLevel, _LEVEL_FIELDS, "level")
    for key in (
        "name",
        "word_bits",
        "read_bw_bytes_per_cycle",
        "write_bw_bytes_per_cycle",
        "read_energy_pj_per_word",
        "write_energy_pj_per_word",
    ):
        if key not in kw:
            raise HardwareError(f"{path}.{key} is required", field=f"{path}.{key}")
    if "capacity_bytes" not in data:
        raise HardwareError(
            f"{path}.capacity_bytes is required (null = unbounded)", field=f"{path}.capacity_bytes"
        )
    cap = data["capacity_bytes"]
    kw["capacity_bytes"] = (
        None if cap is None else _expect("float", cap, f"{path}.capacity_bytes", positive=True)
    )
    holds = data.get("holds")
    if holds is not None:
        if not isinstance(holds, list | tuple) or not all(isinstance(h, str) for h in holds):
            raise HardwareError(
                f"{path}.holds must be a list of tensor names or roles, or null",
                field=f"{path}.holds",
            )
        kw["holds"] = tuple(holds)
    return StorageLevel(**kw)


def _rates_quick(data: dict, positive: bool) -> dict[str, float] | None:
    """``_rates`` of a plain dict of str to finite int/float values (what
    the family builders and YAML give), or None when anything is unusual
    and the full checks must run (they give the result or the error)."""
    out: dict[str, float] = {}
    for k, v in data.items():
        if type(k) is not str or (type(v) is not float and type(v) is not int):
            return None
        if not ((0 < v < 1e300) if positive else (0 <= v < 1e300)):
            return None
        out[k] = float(v)
    return out


def _rates(data: Any, path: str, *, positive: bool) -> dict[str, float]:
    if type(data) is dict:
        out = _rates_quick(data, positive)
        if out is not None:
            return out
    if not isinstance(data, Mapping):
        raise HardwareError(f"{path} must be a mapping of operator class to number", field=path)
    opts = {"positive": True} if positive else {"nonneg": True}
    return {str(k): _expect("float", v, f"{path}.{k}", **opts) for k, v in data.items()}


def _unit(data: Any, path: str) -> ComputeUnit:
    kw = _typed_fields(data, path, ComputeUnit, _UNIT_FIELDS, "compute-unit")
    for key in ("name", "kind", "pes", "ops_per_cycle", "energy_pj_per_op"):
        if key not in data:
            raise HardwareError(f"{path}.{key} is required", field=f"{path}.{key}")
    kw["ops_per_cycle"] = _rates(data["ops_per_cycle"], f"{path}.ops_per_cycle", positive=True)
    kw["energy_pj_per_op"] = _rates(
        data["energy_pj_per_op"], f"{path}.energy_pj_per_op", positive=False
    )
    if "dtype_scale" in data:
        kw["dtype_scale"] = _rates(data["dtype_scale"], f"{path}.dtype_scale", positive=True)
    return ComputeUnit(**kw)


def coerce_field(kind_of: str, key: str, value: Any, path: str) -> Any:
    """Check and convert one level ("level") or unit ("unit") field value."""
    specs = _LEVEL_FIELDS if kind_of == "level" else _UNIT_FIELDS
    if key in specs:
        kind, opts = specs[key]
        return _expect(kind, value, path, **opts)
    if kind_of == "level" and key == "capacity_bytes":
        return None if value is None else _expect("float", value, path, positive=True)
    if kind_of == "level" and key == "holds":
        if value is None:
            return None
        if not isinstance(value, list | tuple) or not all(isinstance(h, str) for h in value):
            raise HardwareError(
                f"{path} must be a list of tensor names or roles, or null", field=path
            )
        return tuple(value)
    if kind_of == "unit" and key in ("ops_per_cycle", "energy_pj_per_op", "dtype_scale"):
        return _rates(value, path, positive=key != "energy_pj_per_op")
    raise HardwareError(f"{path} is not a known field", field=path)


def arch_from_dict(data: Any) -> Architecture:
    if not isinstance(data, Mapping):
        raise HardwareError("an architecture must be a mapping", field="")
    names = {f.name for f in dataclasses.fields(Architecture)}
    _check_keys(data, names, "")
    for key in ("name", "family", "clock_hz", "levels", "compute"):
        if key not in data:
            raise HardwareError(f"{key} is required", field=key)
    levels = data["levels"]
    compute = data["compute"]
    if not isinstance(levels, list | tuple) or not levels:
        raise HardwareError("levels must be a non-empty list of storage levels", field="levels")
    if not isinstance(compute, list | tuple) or not compute:
        raise HardwareError("compute must be a non-empty list of compute units", field="compute")
    params = data.get("params", {})
    if not isinstance(params, Mapping):
        raise HardwareError("params must be a mapping", field="params")
    sources = data.get("sources", ())
    if not isinstance(sources, list | tuple) or not all(isinstance(s, str) for s in sources):
        raise HardwareError("sources must be a list of strings", field="sources")
    overrides = data.get("overrides", {})
    if not isinstance(overrides, Mapping):
        raise HardwareError("overrides must be a mapping", field="overrides")
    return Architecture(
        name=_expect("str", data["name"], "name"),
        family=_expect("str", data["family"], "family"),
        clock_hz=_expect("float", data["clock_hz"], "clock_hz", positive=True),
        levels=tuple(_level(lv, f"levels[{i}]") for i, lv in enumerate(levels)),
        compute=tuple(_unit(cu, f"compute[{i}]") for i, cu in enumerate(compute)),
        static_power_w=_expect(
            "float", data.get("static_power_w", 0.0), "static_power_w", nonneg=True
        ),
        params=dict(params),
        sources=tuple(sources),
        overrides={str(k): dict(v) if isinstance(v, Mapping) else v for k, v in overrides.items()},
    )

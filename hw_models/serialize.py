"""Architecture <-> plain dict (the YAML/JSON form), with strict checking.

``arch_to_dict`` writes every field (units are in the key names), except
the fields of the architecture tree (``memories``, ``precision``,
``share_x``/``share_y``, ``network_energy_pj_per_word``) where they keep
their default, so that a one-memory level writes what it always wrote; a
level with memories writes its memories instead of its summary figures.
``arch_from_dict`` accepts exactly those keys and reports a bad one as
``HardwareError`` naming its path (``levels[1].memories[0].word_bits``),
so the loader can attach the file line.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any

from hw_models.arch import (
    PORT_DIRECTIONS,
    PORT_KINDS,
    Architecture,
    ComputeUnit,
    Memory,
    Port,
    Precision,
    StorageLevel,
)
from hw_models.errors import HardwareError
from hw_models.memories import SUMMARY_FIELDS, memory_level


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


#: fields written only when they differ from their default (added with the
#: architecture tree; a file without them means what it always meant)
_TREE_FIELDS = frozenset(
    ("memories", "precision", "share_x", "share_y", "network_energy_pj_per_word")
)


def precision_to_dict(p: Precision) -> dict[str, int]:
    return {f.name: int(v) for f in dataclasses.fields(p) if (v := getattr(p, f.name)) is not None}


def _fields_to_dict(obj: Any, skip: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    """A dataclass's fields as plain values; those in ``skip`` are written
    only when they differ from their default."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if f.name in skip and v == f.default:
            continue
        if isinstance(v, Precision):
            out[f.name] = precision_to_dict(v)
        elif f.name in _BANDWIDTHS and v == math.inf:
            out[f.name] = None  # no limit (JSON has no infinity)
        elif f.name in ("memories", "ports"):
            out[f.name] = [_fields_to_dict(x, _OPTIONAL[type(x)]) for x in v]
        else:
            out[f.name] = _plain(v)
    return out


#: bandwidth fields, written as null when unlimited
_BANDWIDTHS = frozenset(
    ("read_bw_bytes_per_cycle", "write_bw_bytes_per_cycle", "bw_bytes_per_cycle")
)

#: per class, the optional fields written only when not at their default
_OPTIONAL: dict[type, frozenset[str]] = {
    Memory: frozenset(
        (
            "shared_bw",
            "banks",
            "ports",
            "leakage_w",
            "area_mm2",
            "double_buffered",
            "precision",
            "latency_cycles",
        )
    ),
    Port: frozenset(("min_access_bits", "serves")),
}


def level_to_dict(lv: StorageLevel) -> dict[str, Any]:
    out = _fields_to_dict(lv, _TREE_FIELDS)
    if lv.memories:
        for key in SUMMARY_FIELDS:
            out.pop(key, None)
    return out


def unit_to_dict(cu: ComputeUnit) -> dict[str, Any]:
    return _fields_to_dict(cu, frozenset(("precision", "systolic_axes", "operand_registers")))


def arch_to_dict(arch: Architecture) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(arch):
        v = getattr(arch, f.name)
        if f.name == "levels":
            out[f.name] = [level_to_dict(lv) for lv in v]
        elif f.name == "compute":
            out[f.name] = [unit_to_dict(cu) for cu in v]
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
    kind: str,
    value: Any,
    path: str,
    *,
    positive: bool = False,
    nonneg: bool = False,
    inf_ok: bool = False,
) -> Any:
    if inf_ok and value is None:
        return math.inf  # a bandwidth of null: no limit
    ok = isinstance(value, _TYPES[kind]) and (kind == "bool" or not isinstance(value, bool))
    if ok and kind in ("int", "float"):
        x = float(value)
        ok = math.isfinite(x) or (inf_ok and x == math.inf)
    if not ok:
        what = _KIND_TEXT[kind] + (" (or null: no limit)" if inf_ok else "")
        raise HardwareError(f"{path} must be {what}, got {value!r}", field=path)
    if positive and value <= 0:
        raise HardwareError(f"{path} must be > 0, got {value!r}", field=path)
    if nonneg and value < 0:
        raise HardwareError(f"{path} must be >= 0, got {value!r}", field=path)
    return int(value) if kind == "int" else (float(value) if kind == "float" else value)


_KIND_TEXT = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false"}

_LEVEL_FIELDS: dict[str, tuple[str, dict[str, bool]]] = {
    "name": ("str", {}),
    "word_bits": ("int", {"positive": True}),
    "read_bw_bytes_per_cycle": ("float", {"positive": True, "inf_ok": True}),
    "write_bw_bytes_per_cycle": ("float", {"positive": True, "inf_ok": True}),
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
    "network_energy_pj_per_word": ("float", {"nonneg": True}),
}

#: the memory fields of a Memory (a level's own memory fields less the
#: level-wide ones), plus its access latency
_MEMORY_FIELDS: dict[str, tuple[str, dict[str, bool]]] = {
    k: v
    for k, v in _LEVEL_FIELDS.items()
    if k not in ("instances", "fanout_x", "fanout_y", "multicast", "spatial_reduce")
    and k != "network_energy_pj_per_word"
} | {"latency_cycles": ("int", {"nonneg": True})}

_PORT_FIELDS: dict[str, tuple[str, dict[str, bool]]] = {
    "name": ("str", {}),
    "kind": ("str", {}),
    "bw_bytes_per_cycle": ("float", {"positive": True, "inf_ok": True}),
    "min_access_bits": ("int", {"nonneg": True}),
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
    "operand_registers": ("bool", {}),
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


def _names(value: Any, path: str, *, null_ok: bool = True) -> tuple[str, ...] | None:
    """A list of tensor names or roles (or null where ``null_ok``)."""
    if value is None and null_ok:
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(h, str) for h in value):
        more = ", or null" if null_ok else ""
        raise HardwareError(f"{path} must be a list of tensor names or roles{more}", field=path)
    return tuple(value)


def precision_from(data: Any, path: str) -> Precision | None:
    """A :class:`Precision` from ``{input_bits: 8, ..., psum_bits: 24}`` (or null)."""
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise HardwareError(
            f"{path} must be a mapping of input_bits, weight_bits, psum_bits, output_bits",
            field=path,
        )
    names = [f.name for f in dataclasses.fields(Precision)]
    _check_keys(data, set(names), path)
    kw = {
        k: None if data[k] is None else _expect("int", data[k], f"{path}.{k}", positive=True)
        for k in names
        if k in data
    }
    return Precision(**kw)


def _require(given: Mapping, keys: tuple[str, ...], path: str) -> None:
    """A ``HardwareError`` naming the first of ``keys`` missing from ``given``."""
    for key in keys:
        if key not in given:
            raise HardwareError(f"{path}.{key} is required", field=f"{path}.{key}")


def _port(data: Any, path: str) -> Port:
    kw = _typed_fields(data, path, Port, _PORT_FIELDS, "port")
    _require(kw, ("name", "kind", "bw_bytes_per_cycle"), path)
    if kw["kind"] not in PORT_KINDS:
        raise HardwareError(
            f"{path}.kind must be one of {', '.join(PORT_KINDS)}, got {kw['kind']!r}",
            field=f"{path}.kind",
        )
    if "serves" in data:
        entries = _names(data["serves"], f"{path}.serves", null_ok=False) or ()
        for i, e in enumerate(entries):
            what, _, direction = e.partition(":")
            if not what or (direction and direction not in PORT_DIRECTIONS):
                raise HardwareError(
                    f"{path}.serves[{i}] must be TENSOR_OR_ROLE or TENSOR_OR_ROLE:DIRECTION "
                    f"with DIRECTION one of {', '.join(PORT_DIRECTIONS)}, got {e!r}",
                    field=f"{path}.serves[{i}]",
                )
        kw["serves"] = entries
    return Port(**kw)


def _capacity(data: Mapping, path: str) -> float | None:
    if "capacity_bytes" not in data:
        raise HardwareError(
            f"{path}.capacity_bytes is required (null = unbounded)", field=f"{path}.capacity_bytes"
        )
    cap = data["capacity_bytes"]
    return None if cap is None else _expect("float", cap, f"{path}.capacity_bytes", positive=True)


_REQUIRED_MEMORY = (
    "name",
    "word_bits",
    "read_bw_bytes_per_cycle",
    "write_bw_bytes_per_cycle",
    "read_energy_pj_per_word",
    "write_energy_pj_per_word",
)


def memory_from(data: Any, path: str) -> Memory:
    """A :class:`Memory` from its dict form (errors name ``path``)."""
    kw = _typed_fields(data, path, Memory, _MEMORY_FIELDS, "memory")
    _require(kw, _REQUIRED_MEMORY, path)
    if "serves" not in data:
        raise HardwareError(
            f"{path}.serves is required (the tensor names or roles it stores: "
            "input, weight, output)",
            field=f"{path}.serves",
        )
    kw["serves"] = _names(data["serves"], f"{path}.serves")
    kw["capacity_bytes"] = _capacity(data, path)
    if "ports" in data:
        ports = data["ports"]
        if not isinstance(ports, list | tuple):
            raise HardwareError(f"{path}.ports must be a list of ports", field=f"{path}.ports")
        kw["ports"] = tuple(_port(p, f"{path}.ports[{i}]") for i, p in enumerate(ports))
    if "precision" in data:
        kw["precision"] = precision_from(data["precision"], f"{path}.precision")
    return Memory(**kw)


def memories_from(data: Any, path: str) -> tuple[Memory, ...]:
    if not isinstance(data, list | tuple) or not data:
        raise HardwareError(f"{path} must be a non-empty list of memories", field=path)
    return tuple(memory_from(m, f"{path}[{i}]") for i, m in enumerate(data))


def _tree_level_fields(data: Mapping, path: str, kw: dict[str, Any]) -> None:
    """The architecture-tree fields of a level (precision, share_x/y)."""
    for key in ("share_x", "share_y"):
        if key in data:
            kw[key] = _names(data[key], f"{path}.{key}")


def _level_of_memories(data: Mapping, path: str, kw: dict[str, Any]) -> StorageLevel:
    for key in SUMMARY_FIELDS:
        if key in data:
            raise HardwareError(
                f"{path}.{key}: a level with memories takes {key} from them "
                "(give it to each memory)",
                field=f"{path}.{key}",
            )
    _require(kw, ("name",), path)
    mems = memories_from(data["memories"], f"{path}.memories")
    _tree_level_fields(data, path, kw)
    name = kw.pop("name")
    return memory_level(name, mems, **kw)


def _level(data: Any, path: str) -> StorageLevel:
    kw = _typed_fields(data, path, StorageLevel, _LEVEL_FIELDS, "level")
    if "memories" in data:
        return _level_of_memories(data, path, kw)
    _tree_level_fields(data, path, kw)
    if "precision" in data:
        kw["precision"] = precision_from(data["precision"], f"{path}.precision")
    _require(kw, _REQUIRED_MEMORY, path)
    kw["capacity_bytes"] = _capacity(data, path)
    kw["holds"] = _names(data.get("holds"), f"{path}.holds")
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
    _require(data, ("name", "kind", "pes", "ops_per_cycle", "energy_pj_per_op"), path)
    kw["ops_per_cycle"] = _rates(data["ops_per_cycle"], f"{path}.ops_per_cycle", positive=True)
    kw["energy_pj_per_op"] = _rates(
        data["energy_pj_per_op"], f"{path}.energy_pj_per_op", positive=False
    )
    if "dtype_scale" in data:
        kw["dtype_scale"] = _rates(data["dtype_scale"], f"{path}.dtype_scale", positive=True)
    if "precision" in data:
        kw["precision"] = precision_from(data["precision"], f"{path}.precision")
    if "systolic_axes" in data:
        kw["systolic_axes"] = _axes(data["systolic_axes"], f"{path}.systolic_axes")
    return ComputeUnit(**kw)


def _axes(value: Any, path: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(a in ("x", "y") for a in value):
        raise HardwareError(
            f"{path} must be a list of fan-out axes (x, y), got {value!r}", field=path
        )
    return tuple(value)


def coerce_field(kind_of: str, key: str, value: Any, path: str) -> Any:
    """Check and convert one field value of a level ("level"), a compute
    unit ("unit") or a memory ("memory")."""
    specs = {"level": _LEVEL_FIELDS, "unit": _UNIT_FIELDS, "memory": _MEMORY_FIELDS}[kind_of]
    if key in specs:
        kind, opts = specs[key]
        return _expect(kind, value, path, **opts)
    if kind_of in ("level", "memory") and key == "capacity_bytes":
        return None if value is None else _expect("float", value, path, positive=True)
    if key == "precision":
        return precision_from(value, path)
    if (kind_of == "level" and key in ("holds", "share_x", "share_y")) or (
        kind_of == "memory" and key == "serves"
    ):
        return _names(value, path)
    if kind_of == "level" and key == "memories":
        return memories_from(value, path)
    if kind_of == "memory" and key == "ports":
        if not isinstance(value, list | tuple):
            raise HardwareError(f"{path} must be a list of ports", field=path)
        return tuple(_port(p, f"{path}[{i}]") for i, p in enumerate(value))
    if kind_of == "unit" and key == "systolic_axes":
        return _axes(value, path)
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

"""Presets, files and families: ``load``, ``build``, ``derive``, ``save``.

A hardware file is either a **spec** (what presets are)::

    name: h100
    family: gpu                 # gpu | spatial | fpga
    description: ...
    sources: [...]
    params: {sm_count: 132, ...}          # the family's parameters
    overrides:                            # optional, per level or unit
      L2: {read_energy_pj_per_word: 20.0}
    constraints:                          # optional
      - {level: GlobalBuffer, holds: [input, weight]}

or a **tree** (what ``einsim hw show --json`` prints and ``to_dict`` gives):
``name, family, clock_hz, levels: [...], compute: [...], ...``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hw_models import fpga as _fpga
from hw_models import gpu as _gpu
from hw_models import spatial as _spatial
from hw_models.arch import Architecture
from hw_models.errors import HardwareError
from hw_models.serialize import arch_from_dict, arch_to_dict, coerce_field
from hw_models.validate import validate
from hw_models.yamlio import Lines, line_of, read_file, write_file

PRESET_DIR = Path(__file__).resolve().parent / "presets"

FAMILIES: dict[str, Callable[..., Architecture]] = {
    "gpu": _gpu.gpu,
    "spatial": _spatial.spatial_array,
    "fpga": _fpga.fpga,
}
_ALIASES = {"spatial_array": "spatial"}
SPEC_KEYS = ("name", "family", "description", "sources", "params", "overrides", "constraints")


def schema(family: str) -> dict[str, Any]:
    """The parameter schema of a family (name -> ``params.Param``)."""
    fam = _family(family)
    return {"gpu": _gpu.SCHEMA, "spatial": _spatial.SCHEMA, "fpga": _fpga.SCHEMA}[fam]


def _family(family: Any) -> str:
    fam = _ALIASES.get(family, family) if isinstance(family, str) else family
    if fam not in FAMILIES:
        raise HardwareError(
            f"family must be one of {', '.join(FAMILIES)}, got {family!r}", field="family"
        )
    return fam


def list_presets() -> list[str]:
    """Names of the preset files in ``hw_models/presets/``."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def build(family: str, params: Mapping[str, Any]) -> Architecture:
    """Build and validate an architecture of ``family`` from ``params``."""
    return validate(_build(family, params))


def _build(family: str, params: Mapping[str, Any]) -> Architecture:
    """Build without the final structural check (callers validate once)."""
    fam = _family(family)
    if not isinstance(params, Mapping):
        raise HardwareError(
            f"params must be a mapping, got {type(params).__name__}", field="params"
        )
    bad = [k for k in params if not isinstance(k, str)]
    if bad:
        raise HardwareError(f"params keys must be names, got {bad[0]!r}", field="params")
    return FAMILIES[fam](**params)


# --------------------------------------------------------------- overrides


def apply_overrides(arch: Architecture, overrides: Mapping[str, Any]) -> Architecture:
    """Replace fields of named levels/units: ``{name: {field: value}}``.

    A mapping field (``energy_pj_per_op``, ``ops_per_cycle``) is updated
    entry by entry, so ``{pe_array: {energy_pj_per_op: {mac: 0.084}}}``
    changes only the MAC energy.
    """
    if not overrides:
        return arch
    if not isinstance(overrides, Mapping):
        raise HardwareError(
            "overrides must be a mapping of level or unit name to fields", field="overrides"
        )
    levels = list(arch.levels)
    units = list(arch.compute)
    level_names = [lv.name for lv in levels]
    unit_names = [cu.name for cu in units]
    for name, fields in overrides.items():
        if name in level_names:
            kind_of, items, idx = "level", levels, level_names.index(name)
        elif name in unit_names:
            kind_of, items, idx = "unit", units, unit_names.index(name)
        else:
            raise HardwareError(
                f"overrides.{name}: unknown level or compute unit {name!r}; levels are "
                f"{', '.join(level_names)}; units are {', '.join(unit_names)}",
                field=f"overrides.{name}",
            )
        if not isinstance(fields, Mapping):
            raise HardwareError(
                f"overrides.{name} must be a mapping of field to value", field=f"overrides.{name}"
            )
        target = items[idx]
        allowed = [f.name for f in dataclasses.fields(target) if f.name != "name"]
        changes: dict[str, Any] = {}
        for key, value in fields.items():
            path = f"overrides.{name}.{key}"
            if key not in allowed:
                raise HardwareError(
                    f"{path} is not an overridable field; allowed: {', '.join(allowed)}", field=path
                )
            old = getattr(target, key)
            if isinstance(old, dict) and isinstance(value, Mapping):
                value = {**old, **value}
            changes[key] = coerce_field(kind_of, key, value, path)
        items[idx] = dataclasses.replace(target, **changes)
    merged = {k: dict(v) for k, v in overrides.items()}
    out = dataclasses.replace(arch, levels=tuple(levels), compute=tuple(units), overrides=merged)
    try:
        return validate(out)
    except HardwareError as err:
        fld = _override_field(err, out)
        msg = err.message.replace(err.field, fld, 1) if fld and err.field else err.message
        raise HardwareError(msg, field=fld) from None


def _override_field(err: HardwareError, arch: Architecture) -> str | None:
    m = re.match(r"(levels|compute)\[(\d+)\]\.(\w+)", err.field or "")
    if not m:
        return err.field
    seq = arch.levels if m.group(1) == "levels" else arch.compute
    return f"overrides.{seq[int(m.group(2))].name}.{m.group(3)}"


def _constraints_to_overrides(constraints: Any, arch: Architecture) -> dict[str, dict[str, Any]]:
    if constraints is None:
        return {}
    if not isinstance(constraints, list):
        raise HardwareError(
            "constraints must be a list of {level: NAME, holds: [...]}", field="constraints"
        )
    names = [lv.name for lv in arch.levels]
    out: dict[str, dict[str, Any]] = {}
    for i, c in enumerate(constraints):
        f = f"constraints[{i}]"
        if not isinstance(c, Mapping) or "level" not in c:
            raise HardwareError(f"{f} must be a mapping with a 'level' key", field=f)
        extra = [k for k in c if k not in ("level", "holds", "keep")]
        if extra:
            raise HardwareError(
                f"{f}.{extra[0]} is not a constraint key; allowed: level, holds",
                field=f"{f}.{extra[0]}",
            )
        level = c["level"]
        if level not in names:
            raise HardwareError(
                f"{f}.level: unknown level name {level!r}; levels are {', '.join(names)}",
                field=f"{f}.level",
            )
        holds = c.get("holds", c.get("keep"))
        if holds is not None and (
            not isinstance(holds, list) or not all(isinstance(h, str) for h in holds)
        ):
            raise HardwareError(
                f"{f}.holds must be a list of tensor names or roles", field=f"{f}.holds"
            )
        out.setdefault(level, {})["holds"] = holds
    return out


# ------------------------------------------------------------------ loading


def _path_of(field: str | None) -> tuple:
    if not field:
        return ()
    out: list[Any] = []
    for part in field.split("."):
        m = re.fullmatch(r"([^\[]*)((?:\[\d+\])*)", part)
        if not m:
            out.append(part)
            continue
        if m.group(1):
            out.append(m.group(1))
        out.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return tuple(out)


def from_spec(data: Any, *, file: str | None = None, lines: Lines | None = None) -> Architecture:
    """Build an architecture from a parsed spec or tree (see module doc)."""
    lines = lines or {}
    try:
        return _from_spec(data, file)
    except HardwareError as err:
        if err.file is not None:
            raise
        raise err.located(file, line_of(lines, _path_of(err.field))) from None


def _from_spec(data: Any, file: str | None) -> Architecture:
    if not isinstance(data, Mapping):
        raise HardwareError(
            "a hardware file must be a mapping with 'family' and 'params' (or a full 'levels' tree)",
            field="",
        )
    if "levels" in data:
        tree = {k: v for k, v in data.items() if k != "description"}
        return validate(arch_from_dict(tree))
    for key in data:
        if key not in SPEC_KEYS:
            raise HardwareError(
                f"{key} is not a hardware-file key; allowed: {', '.join(SPEC_KEYS)}", field=str(key)
            )
    if "family" not in data:
        raise HardwareError(f"family is required (one of {', '.join(FAMILIES)})", field="")
    if "params" not in data:
        raise HardwareError("params is required (the family's parameters)", field="")
    arch = build(data["family"], data["params"] if data["params"] is not None else {})
    overrides = data.get("overrides") or {}
    if not isinstance(overrides, Mapping):
        raise HardwareError(
            "overrides must be a mapping of level or unit name to fields", field="overrides"
        )
    merged = {k: dict(v) if isinstance(v, Mapping) else v for k, v in overrides.items()}
    cons = _constraints_to_overrides(data.get("constraints"), arch)
    for k, v in cons.items():
        merged.setdefault(k, {}).update(v)
    arch = apply_overrides(arch, merged)
    name = data.get("name")
    if name is None:
        name = Path(file).stem if file else arch.name
    if not isinstance(name, str) or not name:
        raise HardwareError(f"name must be a non-empty string, got {name!r}", field="name")
    sources = data.get("sources") or []
    if isinstance(sources, str):
        sources = [sources]
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise HardwareError("sources must be a list of strings", field="sources")
    return dataclasses.replace(arch, name=name, sources=tuple(sources) + arch.sources)


@functools.lru_cache(maxsize=64)
def _load_preset(name: str) -> Architecture:
    path = PRESET_DIR / f"{name}.yaml"
    return load_file(path)


def load_file(path: str | Path) -> Architecture:
    data, lines = read_file(path)
    return from_spec(data, file=str(path), lines=lines)


def load(name_or_path: str | Path) -> Architecture:
    """A preset by name (``"h100"``) or a YAML/JSON file by path."""
    if isinstance(name_or_path, Architecture):
        return name_or_path
    if not isinstance(name_or_path, str | Path):
        raise HardwareError(f"expected a preset name or a file path, got {name_or_path!r}")
    s = str(name_or_path)
    if s in list_presets():
        return _load_preset(s)
    p = Path(s)
    if p.suffix.lower() in (".yaml", ".yml", ".json") or p.exists():
        return load_file(p)
    raise HardwareError(
        f"unknown hardware {s!r}: not a preset ({', '.join(list_presets())}) and not a file"
    )


# ------------------------------------------------------------------ derive


def _set_dotted(params: dict[str, Any], key: str, value: Any) -> None:
    if not isinstance(key, str) or not key:
        raise HardwareError(f"override keys must be parameter names, got {key!r}", field="params")
    head, _, rest = key.partition(".")
    if not rest:
        params[head] = value
        return
    sub = params.get(head)
    if not isinstance(sub, Mapping):
        raise HardwareError(
            f"params.{head} is not a mapping, so {key!r} cannot be set", field=f"params.{head}"
        )
    sub = dict(sub)
    _set_dotted(sub, rest, value)
    params[head] = sub


def derive(arch_or_name: Architecture | str, overrides: Mapping[str, Any]) -> Architecture:
    """Rebuild ``arch`` from its ``params`` with some of them replaced.

    Keys are family parameter names; a dotted key sets one entry of a
    mapping parameter (``tensor_flops_per_s.bf16``). The file-level
    overrides of the original (``arch.overrides``) are re-applied. This is
    what sweeps call for every design point, so it does no file I/O when
    given an Architecture (presets are cached).
    """
    base = load(arch_or_name) if not isinstance(arch_or_name, Architecture) else arch_or_name
    if base.family not in FAMILIES:
        raise HardwareError(
            f"cannot derive from {base.name!r}: family {base.family!r} has no builder"
        )
    if not isinstance(overrides, Mapping):
        raise HardwareError(
            "derive overrides must be a mapping of parameter to value", field="params"
        )
    params = dict(base.params)
    for key, value in overrides.items():
        _set_dotted(params, key, value)
    if base.overrides:
        arch = apply_overrides(_build(base.family, params), base.overrides)  # validates
    else:
        arch = build(base.family, params)
    return dataclasses.replace(arch, name=base.name, sources=base.sources)


# -------------------------------------------------------------------- save


def to_spec(arch: Architecture) -> dict[str, Any]:
    """The compact, rebuildable form: name, family, params (+ overrides)."""
    out: dict[str, Any] = {"name": arch.name, "family": arch.family}
    tree = arch_to_dict(arch)
    out["params"] = tree["params"]
    if arch.overrides:
        out["overrides"] = tree["overrides"]
    out["sources"] = list(arch.sources)
    return out


def save(arch: Architecture, path: str | Path, *, tree: bool = False) -> None:
    """Write ``arch`` as YAML or JSON (by suffix); spec form unless ``tree``
    or the architecture has no family builder."""
    data = arch_to_dict(arch) if tree or arch.family not in FAMILIES else to_spec(arch)
    write_file(path, data)

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

import copy
import dataclasses
import functools
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hw_models import fpga as _fpga
from hw_models import gpu as _gpu
from hw_models import spatial as _spatial
from hw_models.arch import Architecture, ComputeUnit, StorageLevel
from hw_models.errors import HardwareError
from hw_models.memories import SUMMARY_FIELDS, with_memories
from hw_models.params import check_params, check_value
from hw_models.serialize import _rates, arch_from_dict, arch_to_dict, coerce_field
from hw_models.validate import validate
from hw_models.yamlio import Lines, line_of, read_file, write_file
from workloads.memo import BoundedCache

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
    if not isinstance(fam, str) or fam not in FAMILIES:
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
    changes only the MAC energy. A name may also be a memory of a level
    with memories (``{ifmap_spad: {capacity_bytes: 48}}``); a level's
    ``memories`` field gives it per-tensor memories (``{PE_RF: {memories:
    [...]}}``), and the level's own figures become their summary.
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
        mems = {m.name: i for i, lv in enumerate(levels) for m in lv.memories}
        if name in level_names:
            kind_of, idx = "level", level_names.index(name)
            target: Any = levels[idx]
        elif name in unit_names:
            kind_of, idx = "unit", unit_names.index(name)
            target = units[idx]
        elif name in mems:
            kind_of, idx = "memory", mems[name]
            target = next(m for m in levels[idx].memories if m.name == name)
        else:
            memo = f"; memories are {', '.join(mems)}" if mems else ""
            raise HardwareError(
                f"overrides.{name}: unknown level or compute unit {name!r}; levels are "
                f"{', '.join(level_names)}; units are {', '.join(unit_names)}{memo}",
                field=f"overrides.{name}",
            )
        if not isinstance(fields, Mapping):
            raise HardwareError(
                f"overrides.{name} must be a mapping of field to value", field=f"overrides.{name}"
            )
        changes = _changes(kind_of, name, target, fields)
        if kind_of == "unit":
            units[idx] = dataclasses.replace(target, **changes)
        elif kind_of == "memory":
            lv = levels[idx]
            new = dataclasses.replace(target, **changes)
            levels[idx] = with_memories(lv, [new if m is target else m for m in lv.memories])
        else:
            levels[idx] = _level_changed(target, name, changes)
    merged = {k: dict(v) for k, v in overrides.items()}
    out = dataclasses.replace(arch, levels=tuple(levels), compute=tuple(units), overrides=merged)
    try:
        return validate(out)
    except HardwareError as err:
        fld = _override_field(err, out)
        msg = err.message.replace(err.field, fld, 1) if fld and err.field else err.message
        raise HardwareError(msg, field=fld) from None


def _changes(kind_of: str, name: str, target: Any, fields: Mapping) -> dict[str, Any]:
    """The checked field changes of one override entry."""
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
    return changes


def _level_changed(target: StorageLevel, name: str, changes: dict[str, Any]) -> StorageLevel:
    """``target`` with ``changes``; a level with memories keeps its summary."""
    mems = changes.get("memories", target.memories)
    if mems:
        bad = [k for k in changes if k in SUMMARY_FIELDS]
        if bad:
            names = ", ".join(m.name for m in mems)
            raise HardwareError(
                f"overrides.{name}.{bad[0]}: level {name} has memories ({names}); "
                "override one of them by name",
                field=f"overrides.{name}.{bad[0]}",
            )
        return with_memories(dataclasses.replace(target, **changes), mems)
    return dataclasses.replace(target, **changes)


def _override_field(err: HardwareError, arch: Architecture) -> str | None:
    m = re.match(r"levels\[(\d+)\]\.memories\[(\d+)\]\.?(.*)", err.field or "")
    if m:
        lv = arch.levels[int(m.group(1))]
        mem = lv.memories[int(m.group(2))]
        rest = f".{m.group(3)}" if m.group(3) else ""
        if mem.name in arch.overrides:
            return f"overrides.{mem.name}{rest}"
        return f"overrides.{lv.name}.memories[{m.group(2)}]{rest}"
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
    if not base.params and base.family in FAMILIES:
        # a tree without family parameters (an imported design): nothing to rebuild
        if not overrides:
            return base
        raise HardwareError(
            f"cannot derive from {base.name!r}: it is a tree without {base.family} family "
            "parameters; change its levels or memories with overrides instead",
            field="params",
        )
    if base.family not in FAMILIES:
        raise HardwareError(
            f"cannot derive from {base.name!r}: family {base.family!r} has no builder"
        )
    if not isinstance(overrides, Mapping):
        raise HardwareError(
            "derive overrides must be a mapping of parameter to value", field="params"
        )
    try:
        return _derive_fast(base, overrides)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - the reference path below reports it
        pass
    return _derive_slow(base, overrides)


def _derive_slow(base: Architecture, overrides: Mapping[str, Any]) -> Architecture:
    """The reference form of :func:`derive`: merge, check and build all the
    parameters, re-apply the file-level overrides field by field, validate.
    It gives every error its message; the fast path defers to it."""
    params = dict(base.params)
    for key, value in overrides.items():
        _set_dotted(params, key, value)
    if base.overrides:
        arch = apply_overrides(_build(base.family, params), base.overrides)  # validates
    else:
        arch = build(base.family, params)
    return dataclasses.replace(arch, name=base.name, sources=base.sources)


# What ``derive`` can reuse across the variants of one base architecture
# (a sweep derives thousands from the same preset): the base's parameters,
# checked once; the file-level overrides, checked and converted once per
# tree structure (level and unit names). Only the changed parameters are
# checked per call, the family builds the tree from the complete checked
# parameters, the overrides are applied without re-checking their values,
# and the result is validated once. Any error sends the call to
# ``_derive_slow``, so messages are those of the reference path, and a
# result is returned only where the reference path returns the same one
# (the same builder, values and checks; ``tests/test_hw_errors.py`` and the
# sweep equality tests cover both).


class _Fallback(Exception):
    """The fast path does not handle this input (the reference path will)."""


#: family -> (the public builder, its schema, the builder of checked params)
_CHECKED: dict[str, tuple[Callable[..., Architecture], dict[str, Any], Callable[..., Any]]] = {
    "gpu": (_gpu.gpu, _gpu.SCHEMA, _gpu.build_checked),
    "spatial": (_spatial.spatial_array, _spatial.SCHEMA, _spatial.build_checked),
    "fpga": (_fpga.fpga, _fpga.SCHEMA, _fpga.build_checked),
}

#: the dict-valued fields of a compute unit (a mapping override merges into them)
_MERGED_FIELDS = frozenset(("ops_per_cycle", "energy_pj_per_op", "dtype_scale"))


class _Plan:
    """What ``_derive_fast`` reuses for one base architecture."""

    __slots__ = (
        "build",
        "schema",
        "params",
        "rate_keys",
        "overrides",
        "by_shape",
        "seen_params",
        "seen_overrides",
    )

    def __init__(self, base: Architecture) -> None:
        fam = base.family
        public, schema_, build_checked = _CHECKED[fam]
        if FAMILIES.get(fam) is not public:  # a replaced builder: use it as is
            raise _Fallback
        if not isinstance(base.params, Mapping) or not all(isinstance(k, str) for k in base.params):
            raise _Fallback
        self.build = build_checked
        self.schema = schema_
        self.params = check_params(fam, schema_, base.params)
        self.rate_keys = tuple(n for n, p in schema_.items() if p.kind == "rates")
        ov = base.overrides
        if ov and not isinstance(ov, Mapping):
            raise _Fallback
        self.overrides = ov
        # what the plan was made from: an Architecture is frozen but its dicts
        # are not, so each call checks that they still hold these values
        self.seen_params = copy.deepcopy(dict(base.params))
        self.seen_overrides = copy.deepcopy(dict(ov)) if ov else ov
        #: (level names, unit names) -> compiled overrides for that tree shape
        self.by_shape: BoundedCache[list[tuple]] = BoundedCache(64)

    def compiled(self, arch: Architecture) -> list[tuple]:
        """The overrides as ``(kind, index, fixed changes, merged fields)``
        for trees of ``arch``'s shape, checked and converted once."""
        level_names = tuple(lv.name for lv in arch.levels)
        unit_names = tuple(cu.name for cu in arch.compute)
        shape = (level_names, unit_names)
        plan = self.by_shape.get(shape)
        if plan is not None:
            return plan
        plan = []
        for name, fields in self.overrides.items():
            if name in level_names:
                kind_of, idx, target = "level", level_names.index(name), arch.levels
            elif name in unit_names:
                kind_of, idx, target = "unit", unit_names.index(name), arch.compute
            else:
                raise _Fallback
            if not isinstance(fields, Mapping):
                raise _Fallback
            obj = target[idx]
            if type(obj) not in (StorageLevel, ComputeUnit):
                raise _Fallback
            allowed = [f.name for f in dataclasses.fields(obj) if f.name != "name"]
            fixed: dict[str, Any] = {}
            merged: list[tuple[str, dict[str, Any], str]] = []
            for key, value in fields.items():
                path = f"overrides.{name}.{key}"
                if key not in allowed:
                    raise _Fallback
                if kind_of == "unit" and key in _MERGED_FIELDS and isinstance(value, Mapping):
                    # {**old, **value}: checked per call (old comes from the build)
                    coerce_field(kind_of, key, value, path)  # the override's own entries
                    merged.append((key, dict(value), path))
                else:
                    fixed[key] = coerce_field(kind_of, key, value, path)
            plan.append((kind_of, idx, fixed, merged))
        return self.by_shape.put(shape, plan)


#: id(base) -> (base, its plan or None when the fast path cannot serve it);
#: holding the base keeps its id from being reused while cached
_PLANS: BoundedCache[tuple[Architecture, _Plan | None]] = BoundedCache(256)


def _plan_of(base: Architecture) -> _Plan:
    hit = _PLANS.get(id(base))
    if hit is None or hit[0] is not base:
        try:
            plan: _Plan | None = _Plan(base)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # noqa: BLE001 - the reference path handles it
            plan = None
        hit = _PLANS.put(id(base), (base, plan))
    plan = hit[1]
    if plan is None or base.params != plan.seen_params or base.overrides != plan.seen_overrides:
        raise _Fallback
    return plan


def _replaced(obj: Any, changes: Mapping[str, Any]) -> Any:
    """``dataclasses.replace(obj, **changes)`` for the plain frozen
    dataclasses of :mod:`hw_models.arch` (no ``__post_init__``, no derived
    fields), without re-running ``__init__``: same fields, same order."""
    new = object.__new__(type(obj))
    d = new.__dict__
    d.update(obj.__dict__)
    d.update(changes)
    return new


def _derive_fast(base: Architecture, overrides: Mapping[str, Any]) -> Architecture:
    plan = _plan_of(base)
    params = dict(base.params)
    for key, value in overrides.items():
        _set_dotted(params, key, value)
    schema_ = plan.schema
    p = dict(plan.params)
    for k in plan.rate_keys:  # fresh dicts, as check_params gives
        if isinstance(p[k], dict):
            p[k] = dict(p[k])
    for key in overrides:
        head = key.partition(".")[0]
        if head not in schema_:
            raise _Fallback
        p[head] = check_value(schema_[head], params[head])
    arch = plan.build(p)
    changes: dict[str, Any] = {"name": base.name, "sources": base.sources}
    if plan.overrides:
        levels = list(arch.levels)
        units = list(arch.compute)
        for kind_of, idx, fixed, merged in plan.compiled(arch):
            items = levels if kind_of == "level" else units
            target = items[idx]
            upd = dict(fixed)
            for key, value, path in merged:
                old = getattr(target, key)
                if not isinstance(old, dict):
                    raise _Fallback
                # = coerce_field("unit", key, ...): the merged entries, checked
                upd[key] = _rates({**old, **value}, path, positive=key != "energy_pj_per_op")
            new = _replaced(target, upd)
            if kind_of == "level" and new.memories:
                if any(k in SUMMARY_FIELDS for k in upd):
                    raise _Fallback  # the reference path names the error
                new = with_memories(new, new.memories)
            items[idx] = new
        changes["levels"] = tuple(levels)
        changes["compute"] = tuple(units)
        changes["overrides"] = {k: dict(v) for k, v in plan.overrides.items()}
    return validate(_replaced(arch, changes))


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

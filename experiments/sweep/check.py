"""Validate a whole sweep before evaluating anything.

:func:`experiments.sweep.spec.parse_spec` checks the spec's form, names and
ranges. :func:`check_spec` then checks what only building things can tell,
so a spec that can never work stops with exit 2 and the line to fix
instead of running to the end:

* every point's hardware is built (up to :data:`MAX_CHECKED_CONFIGS` per
  design; an evenly spread sample beyond): a parameter value the family
  refuses (out of range, wrong type) is an error at that value's line. A
  design that does not fit its FPGA is *data* (a rejected or failed point),
  not an error; a design none of whose configurations fits, or whose every
  configuration breaks ``max_area_mm2``, is an error;
* every workload instance is built (up to :data:`MAX_CHECKED_WORKLOADS`):
  a bad size (``LAYERS: 1e15``, ``M: 0``) is an error at its line;
* the dashboard baseline must match at least one configuration the sweep
  evaluates.

Returns a :class:`CheckReport`: the point count, and warnings for what is
suspicious but not fatal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from experiments.sweep.spec import Design, SpecError, SweepSpec
from workloads.errors import EinsimError

#: hardware configurations built per design (an evenly spread sample beyond)
MAX_CHECKED_CONFIGS = 4096
#: workload instances built per workload entry (an evenly spread sample beyond)
MAX_CHECKED_WORKLOADS = 256


@dataclass(frozen=True)
class CheckReport:
    #: points the sweep will evaluate (hardware configurations x workload instances)
    points: int
    warnings: tuple[str, ...] = ()


def _spread(items: list[Any], n: int) -> list[Any]:
    """At most ``n`` items, evenly spread, first and last included."""
    if len(items) <= n:
        return items
    step = (len(items) - 1) / (n - 1)
    return [items[round(i * step)] for i in range(n)]


def _fail(spec: SweepSpec, path: tuple, key: str, msg: str) -> SpecError:
    return SpecError(f"key `{key}`: {msg}", file=spec.source, line=spec.line_of(path))


def _param_path(i: int, d: Design, name: str, value: Any) -> tuple[tuple, str]:
    """Spec path (and dotted key) of the value ``name = value`` of design ``i``."""
    for ps in d.vary:
        if ps.name == name:
            p: tuple = ("hardware", i, "vary", name)
            if ps.values is not None and value in ps.values:
                # a list gives each value its own line; a range has one
                return (*p, ps.values.index(value)), f"hardware[{i}].vary.{name}"
            return p, f"hardware[{i}].vary.{name}"
    return ("hardware", i, "params", name), f"hardware[{i}].params.{name}"


def _check_design(spec: SweepSpec, i: int, d: Design, configs: list[dict]) -> list[str]:
    import hw_models
    from hw_models.errors import FPGAFitError, HardwareError

    where = f"hardware[{i}]"
    base = hw_models.load(d.load_as or d.base)
    no_fit = over_area = built = 0
    smallest = None
    checked = _spread(configs, MAX_CHECKED_CONFIGS)
    for cfg in checked:
        try:
            arch = hw_models.derive(base, cfg) if cfg else base
        except FPGAFitError:
            no_fit += 1
            continue
        except HardwareError as exc:
            name = (exc.field or "").removeprefix("params.").split(".")[0].split("[")[0]
            if name in cfg:
                path, key = _param_path(i, d, name, cfg[name])
            else:
                path, key = ("hardware", i), where
            shown = ", ".join(f"{k}={v!r}" for k, v in cfg.items())
            raise _fail(
                spec, path, key, f"design {d.name!r} ({shown}) cannot be built: {exc.message}"
            ) from None
        built += 1
        if d.max_area_mm2 is not None and arch.area_mm2 > d.max_area_mm2:
            over_area += 1
            smallest = arch.area_mm2 if smallest is None else min(smallest, arch.area_mm2)
    warnings: list[str] = []
    if no_fit == len(checked):
        msg = (
            f"none of the {len(checked):,} configurations of design {d.name!r} fits "
            f"its FPGA ({base.name})"
        )
        if d.fits_fpga:
            raise _fail(spec, ("hardware", i), where, msg + "; every point would be rejected")
        warnings.append(f"{msg}: every point will fail (add `constraints: {{fits_fpga: true}}`)")
    if built and over_area == built:
        raise _fail(
            spec,
            ("hardware", i, "constraints", "max_area_mm2"),
            f"{where}.constraints.max_area_mm2",
            f"every configuration of design {d.name!r} is larger than {d.max_area_mm2:g} mm2 "
            f"(the smallest is {smallest:.4g} mm2); every point would be rejected",
        )
    return warnings


def _check_workloads(spec: SweepSpec) -> None:
    import workloads
    from experiments.sweep.sampling import workload_instances

    for j, w in enumerate(spec.workloads):
        for inst in _spread(workload_instances(w), MAX_CHECKED_WORKLOADS):
            try:
                workloads.load(w.load_as or w.name, **inst)
            except EinsimError as exc:
                msg = getattr(exc, "message", str(exc))
                shown = ", ".join(f"{k}={v!r}" for k, v in inst.items())
                raise _fail(
                    spec,
                    ("workloads", j, "params"),
                    f"workloads[{j}].params",
                    f"workload {w.label!r} ({shown}) cannot be built: {msg}",
                ) from None


def _matches(cfg: dict[str, Any], key: str, want: Any) -> bool:
    """The dashboard's rule: numbers compare as floats, the rest as text."""
    if key not in cfg:
        return False
    have = cfg[key]
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        try:
            return float(have) == float(want)
        except (TypeError, ValueError):
            return False
    return str(have) == str(want)


def _check_baseline(spec: SweepSpec, configs: dict[str, list[dict]]) -> None:
    if not spec.baseline:
        return
    want = dict(spec.baseline)
    names = [want["design"]] if "design" in want else list(configs)
    params = {k: v for k, v in want.items() if k != "design"}
    for n in names:
        if any(all(_matches(c, k, v) for k, v in params.items()) for c in configs[n]):
            return
    shown = ", ".join(f"{k}={v!r}" for k, v in want.items())
    example = next((c for n in names for c in configs[n]), {})
    hint = ", ".join(f"{k}={v!r}" for k, v in example.items() if k in params) or "-"
    raise _fail(
        spec,
        ("dashboard", "baseline"),
        "dashboard.baseline",
        f"({shown}) matches no configuration the sweep evaluates; expected values of "
        f"the design's parameters, such as {hint}",
    )


def check_spec(spec: SweepSpec) -> CheckReport:
    """Raise :class:`SpecError` if the sweep can never work; else the point
    count and warnings."""
    from experiments.sweep.sampling import hardware_configs, workload_instances

    warnings: list[str] = []
    configs: dict[str, list[dict]] = {}
    for i, d in enumerate(spec.designs):
        configs[d.name] = hardware_configs(spec, i, d)
        warnings += _check_design(spec, i, d, configs[d.name])
    _check_workloads(spec)
    _check_baseline(spec, configs)
    n_wl = sum(len(workload_instances(w)) for w in spec.workloads)
    return CheckReport(sum(map(len, configs.values())) * n_wl, tuple(warnings))

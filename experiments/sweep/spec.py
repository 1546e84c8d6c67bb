"""The sweep spec: a YAML file, validated into a frozen :class:`SweepSpec`.

A spec has four parts (see ``docs/sweeps.md`` for the full format):

* ``hardware``: a list of designs, each a base preset plus parameters to
  vary (a list, a ``range`` or a ``log_range``) and constraints
  (``max_area_mm2``, ``fits_fpga``) that filter points before evaluation;
* ``workloads``: workload library names with their parameters (a scalar or
  a list of values to sweep);
* ``mapper`` / ``objective`` / ``model``, and ``gpu_plan`` (how GPU designs
  lower a workload to kernels: :data:`sim.gpu.plan_registry.PLANS`);
* ``sampling``: ``grid``, ``random``, ``lhs`` or ``sobol`` with a ``seed``.

The YAML is composed into nodes first, so every error names the key path
and the file, line and column of the offending node.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from workloads.errors import EinsimError


class SpecError(EinsimError):
    """A sweep spec is malformed (the message names the key and the line)."""


SAMPLING_METHODS = ("grid", "random", "lhs", "sobol")
CONSTRAINT_KEYS = ("max_area_mm2", "fits_fpga")


@dataclass(frozen=True)
class ParamSpace:
    """One swept parameter.

    ``values`` is the finite list of values (lists, ranges with ``step`` or
    ``num``); it is ``None`` for a continuous range, which only the random,
    LHS and Sobol samplers accept.
    """

    name: str
    values: tuple[Any, ...] | None
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    def at(self, u: float) -> Any:
        """The value at quantile ``u`` in [0, 1) of this parameter's space."""
        if self.values is not None:
            i = min(int(u * len(self.values)), len(self.values) - 1)
            return self.values[i]
        assert self.low is not None and self.high is not None
        if self.log:
            x = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            x = self.low + u * (self.high - self.low)
        if self.integer:
            return int(min(max(round(x), self.low), self.high))
        return float(x)


@dataclass(frozen=True)
class Design:
    """One hardware design space: a preset, the swept params, constraints."""

    name: str
    base: str
    fixed: tuple[tuple[str, Any], ...]
    vary: tuple[ParamSpace, ...]
    max_area_mm2: float | None = None
    fits_fpga: bool = False


@dataclass(frozen=True)
class WorkloadSpace:
    name: str
    #: label used in tables (defaults to ``name``)
    label: str
    fixed: tuple[tuple[str, Any], ...]
    vary: tuple[ParamSpace, ...]


@dataclass(frozen=True)
class SweepSpec:
    name: str
    designs: tuple[Design, ...]
    workloads: tuple[WorkloadSpace, ...]
    mapper: str = "greedy"  # mappers.registry.DEFAULT_MAPPER
    objective: str = "edp"
    model: str = "auto"
    #: GPU designs: the plan of kernels (None: the GPU model's default)
    gpu_plan: str | None = None
    method: str = "grid"
    #: hardware samples per design (random, lhs, sobol)
    samples: int = 0
    seed: int = 0
    timeout_s: float = 60.0
    #: dashboard baseline: design name + hardware params (may be partial)
    baseline: tuple[tuple[str, Any], ...] = ()
    source: str = "<spec>"
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


# --------------------------------------------------------------------------
# YAML with marks


class _Node:
    """A plain value plus the YAML mark of where it was written."""

    __slots__ = ("value", "line", "col")

    def __init__(self, value: Any, line: int, col: int) -> None:
        self.value = value
        self.line = line
        self.col = col


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e9`` and ``2.5e-3`` as floats (YAML 1.2;
    PyYAML's YAML 1.1 rules would make them strings)."""


_Loader.yaml_implicit_resolvers = {
    k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _compose(text: str, source: str) -> _Node:
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(
            f"invalid YAML: {problem}",
            file=source,
            line=mark.line + 1 if mark else None,
            col=mark.column + 1 if mark else None,
        ) from None
    finally:
        loader.dispose()
    if root is None:
        raise SpecError(
            "the spec is empty; expected a mapping with `hardware` and `workloads`", file=source
        )

    def conv(node: yaml.Node) -> _Node:
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, _Node] = {}
            for k, v in node.value:
                key = loader.construct_object(k, deep=True)
                if not isinstance(key, str):
                    raise SpecError(
                        f"keys must be strings, got {key!r}",
                        file=source,
                        line=k.start_mark.line + 1,
                        col=k.start_mark.column + 1,
                    )
                if key in out:
                    raise SpecError(
                        f"duplicate key `{key}`",
                        file=source,
                        line=k.start_mark.line + 1,
                        col=k.start_mark.column + 1,
                    )
                out[key] = conv(v)
            return _Node(out, line, col)
        if isinstance(node, yaml.SequenceNode):
            return _Node([conv(v) for v in node.value], line, col)
        return _Node(loader.construct_object(node, deep=True), line, col)

    return conv(root)


def _plain(n: _Node) -> Any:
    if isinstance(n.value, dict):
        return {k: _plain(v) for k, v in n.value.items()}
    if isinstance(n.value, list):
        return [_plain(v) for v in n.value]
    return n.value


class _Ctx:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: _Node, path: str, expected: str) -> SpecError:
        return SpecError(
            f"key `{path}`: {expected}", file=self.source, line=node.line, col=node.col
        )

    def mapping(
        self, node: _Node, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, _Node]:
        if not isinstance(node.value, dict):
            raise self.fail(node, path, f"expected a mapping with keys {', '.join(allowed)}")
        for k in node.value:
            if k not in allowed:
                sub = node.value[k]
                raise self.fail(
                    sub,
                    f"{path}.{k}" if path else k,
                    f"unknown key; expected one of {', '.join(allowed)}",
                )
        for k in required:
            if k not in node.value:
                raise self.fail(node, path or "<top>", f"missing required key `{k}`")
        return node.value

    def string(self, node: _Node, path: str) -> str:
        if not isinstance(node.value, str) or not node.value:
            raise self.fail(node, path, f"expected a non-empty string, got {node.value!r}")
        return node.value

    def number(self, node: _Node, path: str, *, positive: bool = False) -> float | int:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.fail(node, path, f"expected a number, got {v!r}")
        if positive and v <= 0:
            raise self.fail(node, path, f"expected a positive number, got {v!r}")
        return v

    def integer(self, node: _Node, path: str, *, minimum: int = 0) -> int:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise self.fail(node, path, f"expected an integer >= {minimum}, got {v!r}")
        return v

    def scalar(self, node: _Node, path: str) -> Any:
        if isinstance(node.value, (dict, list)) or node.value is None:
            raise self.fail(node, path, "expected a scalar (number, string or boolean)")
        return node.value


def _param_space(ctx: _Ctx, name: str, node: _Node, path: str) -> ParamSpace | None:
    """A swept parameter, or ``None`` when the node is a fixed scalar."""
    if isinstance(node.value, list):
        if not node.value:
            raise ctx.fail(node, path, "expected a non-empty list of values")
        vals = tuple(ctx.scalar(v, f"{path}[{i}]") for i, v in enumerate(node.value))
        if len(set(map(repr, vals))) != len(vals):
            raise ctx.fail(node, path, "the list of values has duplicates")
        return ParamSpace(name, vals)
    if isinstance(node.value, dict):
        kind = (
            "range" if "range" in node.value else "log_range" if "log_range" in node.value else None
        )
        if kind is None:
            raise ctx.fail(
                node,
                path,
                "expected a list, `{range: [lo, hi], step|num: ..}` or `{log_range: [lo, hi], num|factor: ..}`",
            )
        allowed = (
            (kind, "step", "num", "integer")
            if kind == "range"
            else (kind, "num", "factor", "integer")
        )
        m = ctx.mapping(node, path, allowed)
        b = m[kind]
        if not isinstance(b.value, list) or len(b.value) != 2:
            raise ctx.fail(b, f"{path}.{kind}", "expected [low, high]")
        lo = ctx.number(b.value[0], f"{path}.{kind}[0]", positive=kind == "log_range")
        hi = ctx.number(b.value[1], f"{path}.{kind}[1]", positive=kind == "log_range")
        if hi < lo:
            raise ctx.fail(b, f"{path}.{kind}", f"expected low <= high, got [{lo}, {hi}]")
        is_int = isinstance(lo, int) and isinstance(hi, int)
        if "integer" in m:
            if not isinstance(m["integer"].value, bool):
                raise ctx.fail(m["integer"], f"{path}.integer", "expected true or false")
            is_int = m["integer"].value
        vals: list[Any] | None = None
        if "step" in m and "num" in m:
            raise ctx.fail(m["num"], f"{path}.num", "give either `step` or `num`, not both")
        if "factor" in m and "num" in m:
            raise ctx.fail(m["num"], f"{path}.num", "give either `factor` or `num`, not both")
        if "step" in m:
            step = ctx.number(m["step"], f"{path}.step", positive=True)
            is_int = is_int and isinstance(step, int)
            n = int(math.floor((hi - lo) / step + 1e-9)) + 1
            vals = [lo + i * step for i in range(n)]
        elif "num" in m:
            n = ctx.integer(m["num"], f"{path}.num", minimum=1)
            if n == 1:
                vals = [lo]
            elif kind == "range":
                vals = [lo + (hi - lo) * i / (n - 1) for i in range(n)]
            else:
                vals = [
                    math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * i / (n - 1))
                    for i in range(n)
                ]
        elif "factor" in m:
            f = ctx.number(m["factor"], f"{path}.factor", positive=True)
            if f <= 1:
                raise ctx.fail(m["factor"], f"{path}.factor", f"expected a factor > 1, got {f}")
            vals, x = [], lo
            while x <= hi * (1 + 1e-9):
                vals.append(x)
                x *= f
        if vals is None:
            return ParamSpace(name, None, low=lo, high=hi, log=kind == "log_range", integer=is_int)
        if is_int:
            vals = [int(round(v)) for v in vals]
        else:
            vals = [float(v) for v in vals]
        vals = list(dict.fromkeys(vals))  # de-duplicate rounded values, keep order
        return ParamSpace(name, tuple(vals))
    if node.value is None:
        raise ctx.fail(node, path, "expected a value, a list, a range or a log range")
    return None


def _params(
    ctx: _Ctx, node: _Node, path: str
) -> tuple[tuple[tuple[str, Any], ...], tuple[ParamSpace, ...]]:
    if not isinstance(node.value, dict):
        raise ctx.fail(node, path, "expected a mapping of parameter name -> value, list or range")
    fixed: list[tuple[str, Any]] = []
    vary: list[ParamSpace] = []
    for k, v in node.value.items():
        ps = _param_space(ctx, k, v, f"{path}.{k}")
        if ps is None:
            fixed.append((k, ctx.scalar(v, f"{path}.{k}")))
        else:
            vary.append(ps)
    return tuple(fixed), tuple(vary)


def _known_params(ctx: _Ctx, base_node: _Node, path: str) -> tuple[str, set[str]]:
    """(family, parameter names) of a hardware preset or file, or a
    SpecError at the ``base`` key when it does not load."""
    import hw_models

    try:
        arch = hw_models.load(base_node.value)
        return arch.family, set(hw_models.schema(arch.family))
    except EinsimError as exc:
        presets = ", ".join(hw_models.list_presets())
        raise ctx.fail(
            base_node,
            path,
            f"cannot load hardware {base_node.value!r} ({exc.message}); presets: {presets}",
        ) from None


def _check_hw_names(ctx: _Ctx, d: dict[str, _Node], p: str, family: str, known: set[str]) -> None:
    for section in ("params", "vary"):
        if section not in d or not isinstance(d[section].value, dict):
            continue
        for k, v in d[section].value.items():
            if k.split(".", 1)[0] not in known:
                raise ctx.fail(
                    v,
                    f"{p}.{section}.{k}",
                    f"unknown {family} parameter {k!r}; expected one of {', '.join(sorted(known))}",
                )


def _check_workload(ctx: _Ctx, w: dict[str, _Node], p: str, name: str) -> None:
    from workloads import library
    from workloads.loader import is_cascade_file

    if is_cascade_file(name):
        _check_workload_file(ctx, w, p, name)
        return
    if name not in library.list_workloads():
        raise ctx.fail(
            w["name"],
            f"{p}.name",
            f"unknown workload {name!r}; expected one of {', '.join(library.list_workloads())}",
        )
    known = library.parameters(name)
    if "params" in w and isinstance(w["params"].value, dict):
        for k, v in w["params"].value.items():
            if k not in known:
                raise ctx.fail(
                    v,
                    f"{p}.params.{k}",
                    f"unknown parameter {k!r} of workload {name}; expected one of {', '.join(known)}",
                )


def _check_workload_file(ctx: _Ctx, w: dict[str, _Node], p: str, path: str) -> None:
    """A cascade file: it must load, and its parameters (``param`` lines)
    must include every swept one."""
    from workloads.loader import parameters

    try:
        known = parameters(path)
    except EinsimError as exc:
        raise ctx.fail(w["name"], f"{p}.name", str(exc)) from None
    if "params" in w and isinstance(w["params"].value, dict):
        for k, v in w["params"].value.items():
            if k not in known:
                raise ctx.fail(
                    v,
                    f"{p}.params.{k}",
                    f"unknown parameter {k!r} of {path}; it declares {', '.join(known) or 'none'}",
                )


def parse_spec(text: str, source: str = "<spec>", *, check_names: bool = True) -> SweepSpec:
    """Validate a YAML sweep spec. Raises :class:`SpecError` on bad input.

    With ``check_names`` (the default) presets, hardware and workload
    parameter names, the mapper and the objective are checked against the
    hardware models, the workload library and the pipeline, so a typo fails
    before the sweep starts, with its line."""
    root = _compose(text, source)
    ctx = _Ctx(source)
    top = ctx.mapping(
        root,
        "",
        (
            "name",
            "hardware",
            "workloads",
            "mapper",
            "objective",
            "model",
            "gpu_plan",
            "sampling",
            "timeout_s",
            "dashboard",
            "description",
        ),
        required=("hardware", "workloads"),
    )
    name = ctx.string(top["name"], "name") if "name" in top else Path(source).stem
    from mappers.registry import DEFAULT_MAPPER, MAPPERS
    from sim.models import AUTO, choices

    mapper = ctx.string(top["mapper"], "mapper") if "mapper" in top else DEFAULT_MAPPER
    objective = ctx.string(top["objective"], "objective") if "objective" in top else "edp"
    model = ctx.string(top["model"], "model") if "model" in top else AUTO
    if check_names:
        from mappers.objectives import OBJECTIVES, canonical_objective

        if model not in choices():
            raise ctx.fail(
                top["model"],
                "model",
                f"unknown model {model!r}; expected one of {', '.join(choices())}",
            )
        if mapper not in MAPPERS:
            raise ctx.fail(
                top["mapper"],
                "mapper",
                f"unknown mapper {mapper!r}; expected one of {', '.join(sorted(MAPPERS))}",
            )
        try:
            canonical_objective(objective)
        except EinsimError:
            raise ctx.fail(
                top["objective"],
                "objective",
                f"unknown objective {objective!r}; expected one of {', '.join(OBJECTIVES)}",
            ) from None
    gpu_plan = ctx.string(top["gpu_plan"], "gpu_plan") if "gpu_plan" in top else None
    if gpu_plan is not None:
        from sim.gpu.plan_registry import PLANS

        if gpu_plan not in PLANS:
            raise ctx.fail(
                top["gpu_plan"],
                "gpu_plan",
                f"unknown GPU plan {gpu_plan!r}; expected one of {', '.join(PLANS)}",
            )
    timeout_s = (
        float(ctx.number(top["timeout_s"], "timeout_s", positive=True))
        if "timeout_s" in top
        else 60.0
    )

    method, samples, seed = "grid", 0, 0
    if "sampling" in top:
        s = ctx.mapping(top["sampling"], "sampling", ("method", "samples", "seed"))
        if "method" in s:
            method = ctx.string(s["method"], "sampling.method")
            if method not in SAMPLING_METHODS:
                raise ctx.fail(
                    s["method"],
                    "sampling.method",
                    f"expected one of {', '.join(SAMPLING_METHODS)}, got {method!r}",
                )
        if "seed" in s:
            seed = ctx.integer(s["seed"], "sampling.seed")
        if "samples" in s:
            samples = ctx.integer(s["samples"], "sampling.samples", minimum=1)
            if method == "grid":
                raise ctx.fail(
                    s["samples"],
                    "sampling.samples",
                    "`samples` is for random, lhs and sobol sampling; grid takes every combination",
                )
        elif method != "grid":
            raise ctx.fail(
                top["sampling"],
                "sampling",
                f"`{method}` sampling needs `samples` (hardware points per design)",
            )

    hw = top["hardware"]
    if not isinstance(hw.value, list) or not hw.value:
        raise ctx.fail(
            hw, "hardware", "expected a non-empty list of designs (each with `base` and `vary`)"
        )
    designs: list[Design] = []
    for i, dn in enumerate(hw.value):
        p = f"hardware[{i}]"
        d = ctx.mapping(
            dn, p, ("name", "base", "params", "vary", "constraints"), required=("base",)
        )
        base = ctx.string(d["base"], f"{p}.base")
        dname = ctx.string(d["name"], f"{p}.name") if "name" in d else base
        if any(x.name == dname for x in designs):
            raise ctx.fail(d.get("name", dn), f"{p}.name", f"design name {dname!r} is used twice")
        fixed: tuple[tuple[str, Any], ...] = ()
        if "params" in d:
            if not isinstance(d["params"].value, dict):
                raise ctx.fail(
                    d["params"], f"{p}.params", "expected a mapping of fixed parameter values"
                )
            fixed = tuple(
                (k, ctx.scalar(v, f"{p}.params.{k}")) for k, v in d["params"].value.items()
            )
        vary: tuple[ParamSpace, ...] = ()
        if "vary" in d:
            f2, vary = _params(ctx, d["vary"], f"{p}.vary")
            fixed = fixed + f2
        family = ""
        if check_names:
            family, known = _known_params(ctx, d["base"], f"{p}.base")
            _check_hw_names(ctx, d, p, family, known)
        names = [k for k, _ in fixed] + [v.name for v in vary]
        if len(set(names)) != len(names):
            raise ctx.fail(dn, p, "a parameter is both fixed (`params`) and varied (`vary`)")
        if method == "grid":
            for ps in vary:
                if ps.values is None:
                    node = d["vary"].value[ps.name]
                    raise ctx.fail(
                        node,
                        f"{p}.vary.{ps.name}",
                        "grid sampling needs finite values: give `step` or `num` (or use random, lhs or sobol sampling)",
                    )
        max_area, fits = None, False
        if "constraints" in d:
            c = ctx.mapping(d["constraints"], f"{p}.constraints", CONSTRAINT_KEYS)
            if "max_area_mm2" in c:
                max_area = float(
                    ctx.number(c["max_area_mm2"], f"{p}.constraints.max_area_mm2", positive=True)
                )
            if "fits_fpga" in c:
                if not isinstance(c["fits_fpga"].value, bool):
                    raise ctx.fail(
                        c["fits_fpga"], f"{p}.constraints.fits_fpga", "expected true or false"
                    )
                fits = c["fits_fpga"].value
                if fits and check_names and family != "fpga":
                    raise ctx.fail(
                        c["fits_fpga"],
                        f"{p}.constraints.fits_fpga",
                        f"applies to FPGA designs; {base!r} is a {family} design",
                    )
        designs.append(Design(dname, base, fixed, vary, max_area, fits))

    wl = top["workloads"]
    if not isinstance(wl.value, list) or not wl.value:
        raise ctx.fail(
            wl,
            "workloads",
            "expected a non-empty list of workloads (each with `name` and `params`)",
        )
    workloads: list[WorkloadSpace] = []
    for i, wn in enumerate(wl.value):
        p = f"workloads[{i}]"
        w = ctx.mapping(wn, p, ("name", "label", "params"), required=("name",))
        wname = ctx.string(w["name"], f"{p}.name")
        if check_names:
            _check_workload(ctx, w, p, wname)
        label = ctx.string(w["label"], f"{p}.label") if "label" in w else wname
        fixed, vary = ((), ())
        if "params" in w:
            fixed, vary = _params(ctx, w["params"], f"{p}.params")
            for ps in vary:
                if ps.values is None:
                    raise ctx.fail(
                        w["params"].value[ps.name],
                        f"{p}.params.{ps.name}",
                        "workload parameters need finite values: give a list, or a range with `step` or `num`",
                    )
        workloads.append(WorkloadSpace(wname, label, fixed, vary))
    labels = [w.label for w in workloads]
    if len(set(labels)) != len(labels):
        # same workload with different fixed params: label must disambiguate
        dup = next(lb for lb in labels if labels.count(lb) > 1)
        raise ctx.fail(
            wl, "workloads", f"workload label {dup!r} is used twice; give each a distinct `label`"
        )

    baseline: tuple[tuple[str, Any], ...] = ()
    if "dashboard" in top:
        dsh = ctx.mapping(top["dashboard"], "dashboard", ("baseline",))
        if "baseline" in dsh:
            b = ctx.mapping(
                dsh["baseline"],
                "dashboard.baseline",
                tuple(
                    ["design"]
                    + sorted(
                        {
                            n
                            for d in designs
                            for n in [k for k, _ in d.fixed] + [v.name for v in d.vary]
                        }
                    )
                ),
            )
            if "design" in b and b["design"].value not in {d.name for d in designs}:
                raise ctx.fail(
                    b["design"],
                    "dashboard.baseline.design",
                    f"expected one of the design names {', '.join(d.name for d in designs)}",
                )
            baseline = tuple((k, ctx.scalar(v, f"dashboard.baseline.{k}")) for k, v in b.items())

    return SweepSpec(
        name=name,
        designs=tuple(designs),
        workloads=tuple(workloads),
        mapper=mapper,
        objective=objective,
        model=model,
        gpu_plan=gpu_plan,
        method=method,
        samples=samples,
        seed=seed,
        timeout_s=timeout_s,
        baseline=baseline,
        source=source,
        raw=_plain(root),
    )


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a spec file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read the sweep spec: {exc.strerror}", file=str(p)) from None
    return parse_spec(text, str(p))

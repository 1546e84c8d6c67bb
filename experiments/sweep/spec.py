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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workloads.errors import EinsimError
from workloads.yamlio import Lines, Node, parse_nodes, plain, read_input_file


class SpecError(EinsimError):
    """A sweep spec is malformed (the message names the key and the line)."""


SAMPLING_METHODS = ("grid", "random", "lhs", "sobol")

#: most values one swept parameter may take (a list, a range with step/num/factor)
MAX_VALUES = 100_000
#: most hardware samples per design (random, lhs, sobol)
MAX_SAMPLES = 1_000_000
#: most points a sweep may have (hardware configurations x workload instances);
#: the driver holds every point (~0.9 KB each): 500,000 stay under ~0.5 GB
MAX_POINTS = 500_000
#: longest per-point time-out (s): one day
MAX_TIMEOUT_S = 86_400.0
#: largest sampling seed (numpy's SeedSequence takes any; 64 bits is plenty)
MAX_SEED = 2**64 - 1
#: suffixes of hardware files a design's ``base`` may name
HW_SUFFIXES = (".yaml", ".yml", ".json")
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
    #: what to load: the preset name, or the hardware file's resolved path
    #: (``base`` stays as written: it is part of every point's id)
    load_as: str = ""


@dataclass(frozen=True)
class WorkloadSpace:
    name: str
    #: label used in tables (defaults to ``name``)
    label: str
    fixed: tuple[tuple[str, Any], ...]
    vary: tuple[ParamSpace, ...]
    #: what to load: the library name, or the cascade file's resolved path
    #: (``name`` stays as written: it is part of every point's id)
    load_as: str = ""


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
    #: the YAML text the spec was parsed from (stored in the run directory)
    text: str = field(default="", compare=False, repr=False)
    #: line of every key path of the spec (``("hardware", 0, "vary", "rows")``)
    lines: Any = field(default=None, compare=False, repr=False)
    #: hardware files the designs load: written ``base`` -> file path to read
    hardware_files: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    #: cascade files the workloads load: written ``name`` -> file path to read
    workload_files: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def line_of(self, path: tuple) -> int | None:
        """Line of ``path`` in the spec file (or of its nearest ancestor)."""
        from workloads.yamlio import line_of

        return None if self.lines is None else line_of(self.lines, path)


# --------------------------------------------------------------------------
# YAML with marks (the one loader: workloads.yamlio)


def _compose(text: str, source: str) -> Node:
    root = parse_nodes(text, source, error=SpecError)
    if root is None:
        raise SpecError(
            "the spec is empty; expected a mapping with `hardware` and `workloads`", file=source
        )
    todo = [root]
    while todo:  # keys are names: strings only
        n = todo.pop()
        if isinstance(n.value, dict):
            for k, v in n.value.items():
                if not isinstance(k, str):
                    line, col = n.key_marks[k]  # type: ignore[index]
                    raise SpecError(
                        f"keys must be strings, got {k!r}", file=source, line=line, col=col
                    )
                todo.append(v)
        elif isinstance(n.value, list):
            todo.extend(n.value)
    return root


def _short(v: Any, n: int = 40) -> str:
    """``repr(v)``, clipped (a value may be a 300-digit number)."""
    r = repr(v)
    return r if len(r) <= n else f"{r[:n]}... ({len(r)} characters)"


def _too_many(ctx: _Ctx, node: Node, path: str, n: float) -> SpecError:
    return ctx.fail(
        node,
        path,
        f"gives {_count(n)} values; expected at most {MAX_VALUES:,} per parameter "
        "(use a coarser step, fewer points, or random/lhs/sobol sampling)",
    )


def _count(n: float) -> str:
    return f"{int(n):,}" if math.isfinite(n) and n < 1e18 else f"{n:.3g}"


class _Ctx:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: Node, path: str, expected: str) -> SpecError:
        return SpecError(
            f"key `{path}`: {expected}", file=self.source, line=node.line, col=node.col
        )

    def mapping(
        self, node: Node, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, Node]:
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

    def string(self, node: Node, path: str) -> str:
        if not isinstance(node.value, str) or not node.value:
            raise self.fail(node, path, f"expected a non-empty string, got {_short(node.value)}")
        return node.value

    def number(self, node: Node, path: str, *, positive: bool = False) -> float | int:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.fail(node, path, f"expected a finite number, got {_short(v)}")
        if positive and v <= 0:
            raise self.fail(node, path, f"expected a positive number, got {_short(v)}")
        return v

    def integer(
        self, node: Node, path: str, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise self.fail(node, path, f"expected an integer >= {minimum}, got {_short(v)}")
        if maximum is not None and v > maximum:
            raise self.fail(
                node, path, f"expected an integer from {minimum} to {maximum:,}, got {_short(v)}"
            )
        return v

    def scalar(self, node: Node, path: str) -> Any:
        if isinstance(node.value, (dict, list)) or node.value is None:
            raise self.fail(node, path, "expected a scalar (number, string or boolean)")
        return node.value


def _param_space(ctx: _Ctx, name: str, node: Node, path: str) -> ParamSpace | None:
    """A swept parameter, or ``None`` when the node is a fixed scalar."""
    if isinstance(node.value, list):
        if not node.value:
            raise ctx.fail(node, path, "expected a non-empty list of values")
        if len(node.value) > MAX_VALUES:
            raise _too_many(ctx, node, path, len(node.value))
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
            nf = math.floor((float(hi) - float(lo)) / float(step) + 1e-9) + 1.0
            if not math.isfinite(nf) or nf > MAX_VALUES:
                raise _too_many(ctx, node, path, nf)
            n = int(nf)
            vals = [lo + i * step for i in range(n)]
        elif "num" in m:
            n = ctx.integer(m["num"], f"{path}.num", minimum=1, maximum=MAX_VALUES)
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
            nf = math.floor(math.log(hi / lo) / math.log(f) + 1e-9) + 1.0
            if not math.isfinite(nf) or nf > MAX_VALUES:
                raise _too_many(ctx, node, path, nf)
            vals, x = [], lo
            while x <= hi * (1 + 1e-9) and len(vals) < nf + 1:
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
    ctx: _Ctx, node: Node, path: str
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


def _resolve(
    ctx: _Ctx,
    node: Node,
    path: str,
    base_dir: Path | None,
    files: dict[str, str] | None,
    check: bool,
    resolve: Callable[[_Ctx, Node, str, Path | None, bool], str],
) -> str:
    """What a design's ``base`` or a workload's ``name`` loads: the file
    ``files`` maps it to (as written -> path), else what ``resolve`` makes
    of it."""
    if files and node.value in files:
        return str(files[node.value])
    return resolve(ctx, node, path, base_dir, check)


def _beside_spec(name: str, base_dir: Path | None) -> str:
    """A file name as written in the spec, resolved against the spec's
    folder (not the current directory)."""
    p = Path(name).expanduser()
    if not p.is_absolute():
        p = (base_dir or Path.cwd()) / p
    return str(p)


def _resolve_base(ctx: _Ctx, node: Node, path: str, base_dir: Path | None, check: bool) -> str:
    """What a design's ``base`` loads: a preset name, or a hardware file
    resolved against the spec's folder."""
    base = node.value
    if not check:
        return base
    import hw_models

    if base in hw_models.list_presets():
        return base
    if Path(base).suffix.lower() not in HW_SUFFIXES:
        raise ctx.fail(
            node,
            path,
            f"cannot load hardware {_short(base)}: expected a preset "
            f"({', '.join(hw_models.list_presets())}) or a hardware file ending in "
            f"{', '.join(HW_SUFFIXES)}",
        )
    return _beside_spec(base, base_dir)


def _resolve_workload(ctx: _Ctx, node: Node, path: str, base_dir: Path | None, check: bool) -> str:
    """What a workload ``name`` loads: a library name, or a cascade file
    resolved against the spec's folder."""
    from workloads import library
    from workloads.loader import CASCADE_SUFFIXES

    name = node.value
    if name in library.list_workloads():
        return name
    if Path(name).expanduser().suffix.lower() not in CASCADE_SUFFIXES:
        if check:
            raise ctx.fail(
                node,
                path,
                f"unknown workload {_short(name)}; expected one of "
                f"{', '.join(library.list_workloads())} or a cascade file ending in "
                f"{', '.join(CASCADE_SUFFIXES)}",
            )
        return name
    return _beside_spec(name, base_dir)


def _known_params(ctx: _Ctx, base_node: Node, load_as: str, path: str) -> tuple[str, set[str]]:
    """(family, parameter names) of a hardware preset or file, or a
    SpecError at the ``base`` key when it does not load."""
    import hw_models

    try:
        arch = hw_models.load(load_as)
        return arch.family, set(hw_models.schema(arch.family))
    except EinsimError as exc:
        presets = ", ".join(hw_models.list_presets())
        raise ctx.fail(
            base_node,
            path,
            f"cannot load hardware {base_node.value!r} ({exc.message}); presets: {presets}",
        ) from None


def _check_hw_names(ctx: _Ctx, d: dict[str, Node], p: str, family: str, known: set[str]) -> None:
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


def _check_workload(ctx: _Ctx, w: dict[str, Node], p: str, name: str) -> None:
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


def _check_workload_file(ctx: _Ctx, w: dict[str, Node], p: str, path: str) -> None:
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


def parse_spec(
    text: str,
    source: str = "<spec>",
    *,
    check_names: bool = True,
    base_dir: str | Path | None = None,
    hardware_files: dict[str, str] | None = None,
    workload_files: dict[str, str] | None = None,
) -> SweepSpec:
    """Validate a YAML sweep spec. Raises :class:`SpecError` on bad input.

    With ``check_names`` (the default) presets, hardware and workload
    parameter names, the mapper and the objective are checked against the
    hardware models, the workload library and the pipeline, so a typo fails
    before the sweep starts, with its line. A hardware file named by a
    design's ``base`` is resolved against ``base_dir`` (the spec's folder;
    default the current directory) unless ``hardware_files`` maps it.
    :func:`experiments.sweep.check.check_spec` validates the rest (every
    value, every point's hardware, every workload instance)."""
    root = _compose(text, source)
    bdir = Path(base_dir) if base_dir is not None else None
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
    timeout_s = 60.0
    if "timeout_s" in top:
        timeout_s = float(ctx.number(top["timeout_s"], "timeout_s", positive=True))
        if timeout_s > MAX_TIMEOUT_S:
            raise ctx.fail(
                top["timeout_s"],
                "timeout_s",
                f"expected at most {MAX_TIMEOUT_S:g} s (one day) per point, got {timeout_s:g}",
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
            seed = ctx.integer(s["seed"], "sampling.seed", maximum=MAX_SEED)
        if "samples" in s:
            samples = ctx.integer(s["samples"], "sampling.samples", minimum=1, maximum=MAX_SAMPLES)
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
        load_as = _resolve(
            ctx, d["base"], f"{p}.base", bdir, hardware_files, check_names, _resolve_base
        )
        if check_names:
            family, known = _known_params(ctx, d["base"], load_as, f"{p}.base")
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
        designs.append(Design(dname, base, fixed, vary, max_area, fits, load_as))

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
        wload = _resolve(
            ctx, w["name"], f"{p}.name", bdir, workload_files, check_names, _resolve_workload
        )
        if check_names:
            _check_workload(ctx, w, p, wload)
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
        workloads.append(WorkloadSpace(wname, label, fixed, vary, wload))
    labels = [w.label for w in workloads]
    if len(set(labels)) != len(labels):
        # same workload with different fixed params: label must disambiguate
        dup = next(lb for lb in labels if labels.count(lb) > 1)
        raise ctx.fail(
            wl, "workloads", f"workload label {dup!r} is used twice; give each a distinct `label`"
        )

    n_hw = sum(
        math.prod(len(ps.values or ()) for ps in d.vary) if method == "grid" else samples
        for d in designs
    )
    n_wl = sum(math.prod(len(ps.values or ()) for ps in w.vary) for w in workloads)
    if n_hw * n_wl > MAX_POINTS:
        raise ctx.fail(
            hw,
            "hardware",
            f"the sweep has {_count(float(n_hw) * n_wl)} points ({_count(float(n_hw))} hardware "
            f"configurations x {n_wl:,} workload instances); expected at most {MAX_POINTS:,}",
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
            if "design" in b and ctx.scalar(b["design"], "dashboard.baseline.design") not in {
                d.name for d in designs
            }:
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
        raw=plain(root),
        text=text,
        lines=Lines(root),
        hardware_files=tuple(
            (d.base, d.load_as) for d in designs if d.load_as and d.load_as != d.base
        ),
        workload_files=tuple(
            dict.fromkeys(
                (w.name, w.load_as) for w in workloads if w.load_as and w.load_as != w.name
            )
        ),
    )


def load_spec(
    path: str | Path,
    *,
    hardware_files: dict[str, str] | None = None,
    workload_files: dict[str, str] | None = None,
    check_names: bool = True,
) -> SweepSpec:
    """Read and validate a spec file (safely: see ``workloads.yamlio``).

    Hardware files (``base``) and cascade files (workload ``name``) are
    resolved against the spec file's folder; ``hardware_files`` and
    ``workload_files`` (as written -> path) override that, as for the
    copies stored in a run directory."""
    p = Path(path)
    text = read_input_file(p, "sweep spec", error=SpecError)
    return parse_spec(
        text,
        str(p),
        check_names=check_names,
        base_dir=p.parent,
        hardware_files=hardware_files,
        workload_files=workload_files,
    )

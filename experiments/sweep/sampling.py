"""Expand a :class:`SweepSpec` into the list of points to evaluate.

A point is one hardware configuration (a design's preset plus one value per
swept parameter) evaluated on one workload instance. Hardware configurations
come from the full grid or from ``samples`` draws per design (random, Latin
hypercube, Sobol; scipy.stats.qmc), seeded by ``sampling.seed`` and the
design's index so that adding a design does not reshuffle the others.
Workload parameters are always a full grid: every hardware configuration is
evaluated on every workload instance (so speedups against a baseline design
compare like with like).

A point's id is a stable hash (SHA-256 of its canonical JSON) of everything
that determines its result: design, preset, hardware parameters, workload,
workload parameters, mapper, objective and model. Resume relies on it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from experiments.sweep.spec import Design, ParamSpace, SweepSpec, WorkloadSpace


@dataclass(frozen=True)
class Point:
    """One design point; plain values only, so it pickles cheaply."""

    point_id: str
    #: hash of the hardware configuration alone (design + params)
    hw_id: str
    design: str
    base: str
    hw: tuple[tuple[str, Any], ...]
    workload: str
    workload_label: str
    wl: tuple[tuple[str, Any], ...]
    mapper: str
    objective: str
    model: str
    timeout_s: float
    max_area_mm2: float | None
    fits_fpga: bool
    #: GPU designs: the plan of kernels (None: the model's default)
    gpu_plan: str | None = None
    #: the hardware file ``base`` names, resolved ('' for a preset); rows
    #: keep ``base`` as written, so they do not depend on the run directory
    base_file: str = ""
    #: the cascade file ``workload`` names, resolved ('' for a library workload)
    workload_file: str = ""

    @property
    def base_source(self) -> str:
        """What to load the hardware from: the preset or the file."""
        return self.base_file or self.base

    @property
    def workload_source(self) -> str:
        """What to load the workload from: the library name or the file."""
        return self.workload_file or self.workload


def _canon(v: Any) -> Any:
    # ints and integral floats hash the same only if the user wrote the same
    # thing; that is fine (the point is the same only if the spec is).
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


#: the canonical JSON of ids: what ``json.dumps(obj, sort_keys=True,
#: separators=(",", ":"), default=str)`` gives, with one encoder for all calls
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def _sha(text: str, n: int = 16) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def stable_hash(obj: Any, n: int = 16) -> str:
    return _sha(_ENCODER.encode(obj), n)


def _unit_samples(method: str, n: int, d: int, seed: int, index: int) -> np.ndarray:
    """``n`` x ``d`` samples in [0, 1)."""
    from scipy.stats import qmc

    rng = np.random.default_rng([seed, index])
    if d == 0:
        return np.zeros((1, 0))
    if method == "random":
        return rng.random((n, d))
    if method == "lhs":
        return qmc.LatinHypercube(d, rng=rng).random(n)
    if method == "sobol":
        with warnings.catch_warnings():
            # a non-power-of-two count loses a little balance; it is still a
            # valid low-discrepancy sample
            warnings.simplefilter("ignore")
            return qmc.Sobol(d, scramble=True, rng=rng).random(n)
    raise ValueError(method)


def hardware_configs(spec: SweepSpec, index: int, design: Design) -> list[dict[str, Any]]:
    """The hardware parameter dicts of one design, fixed params included."""
    fixed = dict(design.fixed)
    vary: tuple[ParamSpace, ...] = design.vary
    if spec.method == "grid":
        combos = itertools.product(*(ps.values or () for ps in vary)) if vary else [()]
        rows = [dict(zip((ps.name for ps in vary), c, strict=True)) for c in combos]
    else:
        u = _unit_samples(spec.method, spec.samples, len(vary), spec.seed, index)
        rows = [{ps.name: ps.at(float(x)) for ps, x in zip(vary, r, strict=True)} for r in u]
    out = []
    seen = set()
    for r in rows:
        cfg = {**fixed, **{k: _canon(v) for k, v in r.items()}}
        key = stable_hash(cfg)
        if key not in seen:  # random draws of discrete params may repeat
            seen.add(key)
            out.append(cfg)
    return out


def workload_instances(w: WorkloadSpace) -> list[dict[str, Any]]:
    fixed = dict(w.fixed)
    combos = itertools.product(*(ps.values or () for ps in w.vary)) if w.vary else [()]
    return [
        {**fixed, **{ps.name: _canon(v) for ps, v in zip(w.vary, c, strict=True)}} for c in combos
    ]


def _point_hash(
    spec: SweepSpec, d: Design, cfg: dict[str, Any], w: WorkloadSpace, inst: dict[str, Any]
) -> str:
    """A point's id, the reference form (``expand`` builds the same JSON)."""
    key = {
        "design": d.name,
        "base": d.base,
        "hw": cfg,
        "workload": w.name,
        "label": w.label,
        "wl": inst,
        "mapper": spec.mapper,
        "objective": spec.objective,
        "model": spec.model,
    }
    if spec.gpu_plan is not None:  # ids of specs without one stay as they were
        key["gpu_plan"] = spec.gpu_plan
    return stable_hash(key)


def expand(spec: SweepSpec) -> list[Point]:
    """Every point of the sweep, in a deterministic order, ids unique."""
    enc = _ENCODER.encode
    # A point's id is stable_hash of {design, base, hw, workload, label, wl,
    # mapper, objective, model}; its canonical JSON (keys sorted) is built
    # here from the encoded parts, encoding each configuration once:
    # '{"base":B,"design":D,"hw":HW' + ',"label":L,...,"workload":W}'
    # (checked against stable_hash on the first point).
    wls = []
    for w in spec.workloads:
        for inst in workload_instances(w):
            tail = (
                f',"label":{enc(w.label)},"mapper":{enc(spec.mapper)},"model":{enc(spec.model)}'
                f',"objective":{enc(spec.objective)},"wl":{enc(inst)},"workload":{enc(w.name)}}}'
            )
            wls.append((w, inst, tuple(sorted(inst.items())), tail))
    points: list[Point] = []
    seen: set[str] = set()
    for i, d in enumerate(spec.designs):
        head = f'{{"base":{enc(d.base)},"design":{enc(d.name)},"hw":'
        # a spec's GPU plan is part of its points' ids (keys sorted: after "design")
        plan = "" if spec.gpu_plan is None else f'"gpu_plan":{enc(spec.gpu_plan)},'
        point_head = f'{{"base":{enc(d.base)},"design":{enc(d.name)},{plan}"hw":'
        for cfg in hardware_configs(spec, i, d):
            hw = tuple(sorted(cfg.items()))
            cfg_json = enc(cfg)
            hw_id = _sha(head + cfg_json + "}")  # = stable_hash({"design", "base", "hw"})
            for w, inst, wl, tail in wls:
                pid = _sha(point_head + cfg_json + tail)
                if not points and pid != _point_hash(spec, d, cfg, w, inst):
                    raise AssertionError("expand: point id construction differs from stable_hash")
                if pid in seen:
                    continue
                seen.add(pid)
                points.append(
                    Point(
                        point_id=pid,
                        hw_id=hw_id,
                        design=d.name,
                        base=d.base,
                        base_file=d.load_as,
                        hw=hw,
                        workload=w.name,
                        workload_file=w.load_as,
                        workload_label=w.label,
                        wl=wl,
                        mapper=spec.mapper,
                        objective=spec.objective,
                        model=spec.model,
                        timeout_s=spec.timeout_s,
                        max_area_mm2=d.max_area_mm2,
                        fits_fpga=d.fits_fpga,
                        gpu_plan=spec.gpu_plan,
                    )
                )
    return points

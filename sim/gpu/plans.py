"""Cost a cascade on a GPU as a plan of kernels: the GPU family's ``evaluate``.

``evaluate(cascade, arch, plan="library"|"fused"|"ilp")`` lowers the cascade
to kernels (:mod:`sim.gpu.lowering` for the framework plans,
:mod:`sim.gpu.ilp_plan` for the cascade ILP's own plan), costs every kernel
with the calibrated kernel model, runs the host/GPU timeline
(:mod:`sim.gpu.timeline`) and returns :class:`sim.metrics.Metrics`:

* ``latency_s``: one call as the layer measurements time it (CUDA events
  around each call, the median of back-to-back calls); ``notes["forward_s"]``
  is one call from an idle GPU and ``notes["loop_s"]`` back-to-back calls;
* ``energy_pj``: board energy per call in a back-to-back loop (the NVML
  convention of the data), from the kernel model's per-FLOP and per-byte
  energies and idle power over the loop time;
* ``notes["kernels"]``: the kernel table (name, kind, layer, Einsums, time,
  HBM bytes, FLOPs, what bounds it, start/end on the GPU);
* ``notes["llm"]``: for a whole-model cascade (``einsim workload show llm``),
  time to first token or time per output token, tokens/s, energy per token,
  per-layer times and weight/KV-cache memory against HBM capacity
  (:mod:`sim.gpu.llm`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mappers.schedule import FusionGroup, Schedule
from sim.gpu.energy import energy_terms, gpu_time_s, host_time_s
from sim.gpu.lowering import Kernel, Plan, fused_plan, library_plan, plan_steps
from sim.gpu.metrics import gpu_metrics
from sim.gpu.plan_registry import DEFAULT_PLAN, OPTIONS, PLANS, SCHEDULE_PLANS, check_plan
from sim.gpu.spec import GpuModelError, GpuParams, GpuSpec
from sim.gpu.tiling import KernelCost
from sim.gpu.timeline import Step, event_median_s, forward_s, loop_s, simulate
from sim.metrics import Metrics
from workloads.ir import Cascade, Einsum, Tensor

__all__ = ["PLANS", "DEFAULT_PLAN", "evaluate", "make_plan", "plan_schedule", "schedule"]


def make_plan(
    cascade: Cascade, spec: GpuSpec, params: GpuParams, plan: str = DEFAULT_PLAN, **opts: Any
) -> Plan:
    """The kernels of ``plan`` for ``cascade`` (see :data:`PLANS`)."""
    plan = check_plan(plan)
    if plan == "library":
        return library_plan(cascade, spec, params, pack=bool(opts.get("pack", True)))
    if plan == "fused":
        return fused_plan(cascade, spec, params)
    from sim.gpu.ilp_plan import ilp_plan

    return ilp_plan(cascade, spec, params, **opts)


def steps(plan: Plan, params: GpuParams, *, include_untimed: bool = True) -> list[Step]:
    """Timeline steps of a plan's kernels (host time dropped under graph replay)."""
    ks = [k for k in plan.kernels if include_untimed or k.timed]
    return plan_steps(ks, plan.timing, params)


def total_cost(kernels: list[Kernel] | tuple[Kernel, ...]) -> KernelCost:
    it = iter(kernels)
    total = next(it).cost
    for k in it:
        total = total + k.cost
    return total


def _bound(k: Kernel, waited_s: float) -> str:
    d = k.cost.detail
    if waited_s > 0.5 * k.cost.t_kernel_s and waited_s > 1e-6:
        return "host"
    tc, tm = float(d.get("t_compute_s", 0.0)), float(d.get("t_memory_s", 0.0))
    if not tc and not tm:
        return "memory"
    return "compute" if tc >= tm else "memory"


def kernel_table(
    plan: Plan, params: GpuParams, include_untimed: bool = True
) -> list[dict[str, Any]]:
    """One row per kernel with its place on the simulated forward timeline."""
    ks = [k for k in plan.kernels if include_untimed or k.timed]
    st = steps(replace(plan, kernels=tuple(ks)), params)
    tr = simulate(st)
    rows = []
    prev_end = 0.0
    for k, s, enq, start, end in zip(ks, st, tr.enqueue_s, tr.start_s, tr.end_s, strict=True):
        waited = max(0.0, start - prev_end)  # GPU idle before it: waiting for the host
        flops = sum(k.cost.flops.values())
        rows.append(
            {
                "name": k.name,
                "kind": k.kind,
                "layer": k.layer,
                "einsums": list(k.einsums),
                "time_s": k.cost.t_kernel_s,
                "gpu_s": s.gpu_s,
                "host_s": s.host_s,
                "enqueue_s": enq,
                "start_s": start,
                "end_s": end,
                "hbm_bytes": k.cost.dram_read_bytes + k.cost.dram_write_bytes,
                "flops": flops,
                "bound": _bound(k, waited),
                "timed": k.timed,
                "row": dict(k.row),
            }
        )
        prev_end = end
    return rows


def plan_metrics(
    cascade: Cascade,
    plan: Plan,
    spec: GpuSpec,
    params: GpuParams,
    *,
    include_untimed: bool = True,
) -> Metrics:
    """Metrics of a plan (see the module docstring)."""
    ks = [k for k in plan.kernels if include_untimed or k.timed]
    if not ks:
        raise GpuModelError(f"cascade {cascade.name}: the plan has no kernel to time")
    sub = replace(plan, kernels=tuple(ks))
    st = steps(sub, params)
    t_event = event_median_s(st, params.event_period_s)
    t_fwd = forward_s(st)
    t_loop = loop_s(st)
    total = total_cost(ks)
    if plan.timing == "graph":
        total = replace(total, host_calls=())
    terms = energy_terms(total, spec, params)
    # energy_terms charges idle power over max(host, GPU) of the summed cost;
    # the simulated loop time accounts for host/GPU overlap kernel by kernel
    t_energy = max(t_loop, 1e-12)
    base_t = max(host_time_s(total, params), gpu_time_s(total, params))
    if base_t > 0:
        terms["idle"] = terms["idle"] * t_energy / base_t
    table = kernel_table(sub, params)
    busy = sum(r["gpu_s"] for r in table)
    hbm: dict[str, float] = {}
    for r in table:
        hbm[r["kind"]] = hbm.get(r["kind"], 0.0) + r["hbm_bytes"]
    macs = float(sum(e.macs for e in cascade.einsums))
    notes: dict[str, Any] = {
        "plan": plan.name,
        "timing": plan.timing,
        "kernels": table,
        "n_kernels": len(table),
        "forward_s": t_fwd,
        "event_median_s": t_event,
        "loop_s": t_loop,
        "host_s": sum(s.host_s for s in st),
        "gpu_busy_s": busy,
        "layers": _layers(table),
        **plan.notes,
    }
    from sim.gpu.llm import llm_figures

    llm = llm_figures(
        cascade, spec, t_fwd, sum(terms.values()), notes["layers"], plan.regions or None
    )
    if llm:
        notes["llm"] = llm
    return gpu_metrics(
        total,
        spec,
        latency_s=t_event,
        energy_terms=terms,
        hbm_bytes=hbm,
        busy_s=busy,
        macs=macs,
        notes=notes,
    )


def _layers(table: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per layer: wall span on the forward timeline, GPU busy time, kernel count."""
    out: dict[str, dict[str, float]] = {}
    prev_end = 0.0
    for r in table:
        lv = out.setdefault(r["layer"], {"span_s": 0.0, "gpu_s": 0.0, "kernels": 0})
        lv["span_s"] += r["end_s"] - prev_end
        lv["gpu_s"] += r["gpu_s"]
        lv["kernels"] += 1
        prev_end = r["end_s"]
    return out


def einsum_cascade(e: Einsum) -> Cascade:
    """A one-Einsum cascade (tensor shapes from the index ranges of its accesses)."""
    sizes = e.rank_sizes
    tensors: dict[str, Tensor] = {}
    for a in (*e.inputs, e.output):
        shape = tuple(ix.bounds(sizes)[1] + 1 for ix in a.indices)
        ranks = tuple(
            ix.terms[0][0] if ix.terms else f"{a.tensor}_{k}" for k, ix in enumerate(a.indices)
        )
        old = tensors.get(a.tensor)
        if old is not None:
            shape = tuple(max(x, y) for x, y in zip(old.shape, shape, strict=True))
        tensors[a.tensor] = Tensor(a.tensor, ranks, shape, a.bits)
    return Cascade(name=e.name, tensors=tuple(tensors.values()), einsums=(e,))


def evaluate(cascade: Any, arch: Any, *, plan: str | None = None, **opts: Any) -> Metrics:
    """Cost ``cascade`` on GPU ``arch`` as ``plan``; the GPU family's evaluator,
    and what the front door (``sim.evaluate``, model ``gpu``) runs.

    ``plan`` is one of :data:`PLANS` (``None``: :data:`DEFAULT_PLAN`).
    Options: ``params`` (a :class:`GpuParams`; default the card's calibrated
    file), ``include_append`` (time the KV-cache append, default True; the
    layer measurements leave it out), ``pack`` (library plan: pack Q|K|V and
    gate|up GEMMs, default True), and for ``plan="ilp"`` the ILP's
    ``timing`` (``event`` or ``graph``), ``max_group`` and ``work_limit``
    (see :mod:`sim.gpu.ilp_plan`). Other options are refused by name.
    """
    from sim.gpu.model import resolve

    unknown = sorted(set(opts) - set(OPTIONS))
    if unknown:
        raise GpuModelError(
            f"unknown GPU option(s) {', '.join(unknown)}; expected {', '.join(OPTIONS)}"
        )
    plan = check_plan(plan)
    if isinstance(cascade, Einsum):
        cascade = einsum_cascade(cascade)
    if not isinstance(cascade, Cascade):
        raise GpuModelError(
            f"the GPU plans cost a cascade or an Einsum, got {type(cascade).__name__}"
        )
    spec, params = resolve(arch, opts.pop("params", None))
    include = bool(opts.pop("include_append", True))
    p = make_plan(cascade, spec, params, plan, **opts)
    return plan_metrics(cascade, p, spec, params, include_untimed=include)


#: where an intermediate lives in a GPU plan's schedule: on chip inside a
#: kernel, through HBM (``Schedule.spilled`` calls off-chip "DRAM") between kernels
ON_CHIP, OFF_CHIP = "SMEM", "DRAM"


def plan_schedule(cascade: Cascade, metrics: Metrics, method: str = "") -> Schedule:
    """The kernels of a costed plan as a cascade schedule: one fusion group per
    kernel (its Einsums, intermediates in shared memory), every Einsum on the
    SMs, an intermediate in HBM when its producer and a consumer are different
    kernels. A kernel whose Einsums an earlier kernel already holds (the eager
    MoE block's gather, expert GEMMs and scatter) adds no group."""
    owner: dict[str, int] = {}
    groups: list[tuple[str, ...]] = []
    for row in metrics.notes["kernels"]:
        names = tuple(n for n in row["einsums"] if n not in owner)
        if not names:
            continue
        for n in names:
            owner[n] = len(groups)
        groups.append(names)
    producer = {e.output.tensor: e.name for e in cascade.einsums}
    residency: dict[str, str] = {}
    for e in cascade.einsums:
        for a in e.inputs:
            src = producer.get(a.tensor)
            if src is None or src == e.name:
                continue
            off = owner.get(src) != owner.get(e.name)
            if off or a.tensor not in residency:
                residency[a.tensor] = OFF_CHIP if off else ON_CHIP
    n = metrics.notes
    solver: dict[str, Any] = {}
    if "ilp" in n:
        il = n["ilp"]
        solver = {
            "objective": metrics.latency_s,
            "library_s": il["library_s"],
            "speedup_vs_library": il["speedup_vs_library"],
            "options": il["options"],
            "bound": il["bound_s"],
            "gap": (il["objective_s"] - il["bound_s"]) / il["objective_s"]
            if il["objective_s"] > 0
            else 0.0,
            "solve_time_s": il["solve_time_s"],
        }
    return Schedule(
        cascade=cascade.name,
        order=tuple(e.name for e in cascade.einsums),
        groups=tuple(FusionGroup(g, keep_level=ON_CHIP) for g in groups),
        binding={e.name: "SM" for e in cascade.einsums},
        residency=residency,
        method=f"gpu-{n.get('plan')}" if not method else method,
        solver=solver,
    )


def schedule(cascade: Any, arch: Any, method: str = "ilp", **opts: Any) -> tuple[Schedule, Metrics]:
    """``einsim schedule`` on a GPU: the plan ``method`` stands for
    (:data:`SCHEDULE_PLANS`; ``plan=`` overrides it), costed, and its kernels
    as a :class:`~mappers.schedule.Schedule`."""
    plan = opts.pop("plan", None) or SCHEDULE_PLANS.get(method)
    if plan is None:
        raise GpuModelError(
            f"schedule method {method!r} is a spatial-array schedule; on a GPU the cascade "
            f"is lowered to kernels by a plan: use --method "
            f"{' or '.join(SCHEDULE_PLANS)} (the cascade ILP's kernels) or --gpu-plan "
            f"{'|'.join(PLANS)}"
        )
    if isinstance(cascade, Einsum):
        cascade = einsum_cascade(cascade)
    m = evaluate(cascade, arch, plan=plan, **{k: v for k, v in opts.items() if k in OPTIONS})
    return plan_schedule(cascade, m, f"gpu-{plan}"), m

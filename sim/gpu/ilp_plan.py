"""The ``ilp`` plan: the cascade ILP's own kernels on the GPU hierarchy.

The Einsums are put in the library plan's dependence order (framework
operations in order, each operation's Einsums in cascade order). Candidate
kernels are

* every framework operation as the library plan runs it (cuBLAS GEMM,
  SDPA, the norm kernel, the MoE block...), so the ILP can always fall back
  to what the framework does, and
* every run of up to ``max_group`` consecutive Einsums (connected by their
  dataflow, or sharing an input) as one fused kernel at its best tiling
  (:mod:`sim.gpu.fused_cost`: the IO-aware speed of light of a custom kernel,
  costed with the calibrated efficiencies of the kernel model).

:func:`mappers.cascade.gpu_groups.solve` (CP-SAT) picks the kernels that
cover every Einsum once at the least back-to-back time. Layers with the same
structure (the ``layer`` attribute) share one solution: the candidates of a
layer are costed once. The result is never slower than the library plan: the
library kernels are feasible candidates and the ILP is warm-started with them
(and, should the timeline of the chosen kernels come out slower, the library
plan is kept; the notes say so).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from mappers.cascade.gpu_groups import GroupingProblem, KernelOption, solve
from sim.gpu.energy import host_time_s
from sim.gpu.fused_cost import FusedKernel, fused_kernel, splits_recurrence
from sim.gpu.lowering import Ctx, Kernel, Plan, kernel_gpu_s, library_kernels, plan_steps
from sim.gpu.regions import CascadeIndex
from sim.gpu.spec import GpuModelError, GpuParams, GpuSpec
from sim.gpu.timeline import event_median_s
from workloads.ir import Cascade

#: longest run of Einsums one fused kernel may cover
MAX_GROUP = 16


def _signature(names: list[str], idx: CascadeIndex) -> tuple:
    """The structure of a run of Einsums with its tensors renamed in order of first
    use and the ``layer`` tag dropped: runs with equal signatures cost the same."""
    members = set(names)
    rename: dict[str, int] = {}

    def t(name: str) -> tuple[int, tuple[int, ...], int, bool]:
        k = rename.setdefault(name, len(rename))
        ten = idx.tensors[name]
        return (k, ten.shape, ten.bits, idx.read_outside(name, members))

    out = []
    for n in names:
        e = idx.einsum[n]
        attrs = tuple((a, v) for a, v in e.attrs if a != "layer")
        ins = tuple((t(a.tensor), a.indices) for a in e.inputs)
        out.append((e.map_op, e.reduce_op, e.rank_sizes_items, e.scalar, attrs, ins,
                    (t(e.output.tensor), e.output.indices)))  # fmt: skip
    return tuple(out)


def _connected(idx: CascadeIndex, names: list[str]) -> bool:
    """Each Einsum after the first reads a tensor made or read earlier in the run."""
    seen: set[str] = set()
    for i, n in enumerate(names):
        e = idx.einsum[n]
        reads = {a.tensor for a in e.inputs}
        if i and not reads & seen:
            return False
        seen |= reads | {e.output.tensor}
    return True


def _blocks(order: list[str], idx: CascadeIndex) -> list[list[str]]:
    """Consecutive Einsums of one layer (the ``layer`` attribute)."""
    out: list[list[str]] = []
    prev = None
    for n in order:
        layer = idx.einsum[n].attr.get("layer", "")
        if out and layer == prev:
            out[-1].append(n)
        else:
            out.append([n])
        prev = layer
    return out


def _options(
    c: Cascade,
    block: list[str],
    lib: list[tuple[tuple[str, ...], list[Kernel]]],
    spec: GpuSpec,
    params: GpuParams,
    idx: CascadeIndex,
    max_group: int,
    graph: bool,
) -> tuple[list[KernelOption], list[Any], list[int]]:
    """Candidate kernels of one block: (options, payloads, the library choice)."""
    pos = {n: i for i, n in enumerate(block)}
    options: list[KernelOption] = []
    payload: list[Any] = []
    hint: list[int] = []
    for names, ks in lib:
        i = pos[names[0]]
        g = sum(kernel_gpu_s(k.cost, params, graph) for k in ks)
        h = 0.0 if graph else sum(host_time_s(k.cost, params) for k in ks)
        hint.append(len(options))
        options.append(KernelOption(i, i + len(names), g, h, "library"))
        payload.append(ks)
    no_fuse = {n for n in block if idx.einsum[n].attr.get("kind") == "embedding"}
    for i in range(len(block)):
        for j in range(i + 1, min(len(block), i + max_group) + 1):
            names = block[i:j]
            if no_fuse & set(names):
                break
            if not _connected(idx, names) or splits_recurrence(idx, names):
                continue
            fk = fused_kernel(c, tuple(names), spec, params, idx)
            if fk is None:
                if j - i > 1:
                    break  # a longer run needs more on chip: it does not fit either
                continue
            g = kernel_gpu_s(fk.cost, params, graph)
            h = 0.0 if graph else host_time_s(fk.cost, params)
            options.append(KernelOption(i, j, g, h, "fused"))
            payload.append(fk)
    return options, payload, hint


def ilp_plan(
    c: Cascade,
    spec: GpuSpec,
    params: GpuParams,
    *,
    max_group: int = MAX_GROUP,
    work_limit: float = 10.0,
    timing: str = "event",
    **_: Any,
) -> Plan:
    """The cascade ILP's kernels (see the module docstring); ``timing="graph"`` costs
    every candidate as replayed from a CUDA graph (no host time)."""
    if timing not in ("event", "graph"):
        raise GpuModelError(f"ILP plan timing {timing!r}; expected event or graph")
    graph = timing == "graph"
    ctx = Ctx(c, spec, params, timing=timing)
    idx = ctx.ix
    regions = library_kernels(ctx)
    order = [n for r, _ in regions for n in r.einsums]
    owner = {r.einsums[0]: (r.einsums, ks) for r, ks in regions}
    kernels: list[Kernel] = []
    solved: dict[tuple, tuple[list[int], list[KernelOption], list[Any], str, tuple]] = {}
    n_options = 0
    statuses: set[str] = set()
    # the ILP's objective and bound over the blocks (a repeated block counts each time)
    objective_s = bound_s = solve_s = 0.0
    for block in _blocks(order, idx):
        lib = [owner[n] for n in block if n in owner]
        sig = _signature(block, idx)
        if sig in solved:
            # the same structure as a block solved already: the same kernels, on this
            # block's Einsums (library kernels are this block's own)
            chosen, opts, payload, status, obj_b = solved[sig]
            pos = {n: i for i, n in enumerate(block)}
            mine = {pos[names[0]]: ks for names, ks in lib}
            payload = [
                mine[o.start] if o.label == "library" else p
                for o, p in zip(opts, payload, strict=True)
            ]
        else:
            opts, payload, hint = _options(c, block, lib, spec, params, idx, max_group, graph)
            t0 = time.perf_counter()
            res = solve(GroupingProblem(len(block), tuple(opts)), hint=hint, work_limit=work_limit)
            solve_s += time.perf_counter() - t0
            chosen, status = list(res.chosen), res.status
            obj_b = (res.objective_s, res.bound_s)
            solved[sig] = (chosen, opts, payload, status, obj_b)
            n_options += len(opts)
        objective_s += obj_b[0]
        bound_s += obj_b[1]
        statuses.add(status)
        for i in chosen:
            o, p = opts[i], payload[i]
            if isinstance(p, FusedKernel):
                kernels.append(_fused(p, block[o.start : o.stop], idx))
            else:
                kernels.extend(p)
    lib_kernels = [k for _, ks in regions for k in ks]
    t_ilp = _event(kernels, timing, params)
    t_lib = _event(lib_kernels, timing, params)
    notes = {
        "library_s": t_lib,
        "options": n_options,
        "groups": len(kernels),
        "fused": sum(1 for k in kernels if k.kind == "fused"),
        "status": "OPTIMAL" if statuses == {"OPTIMAL"} else "/".join(sorted(statuses)),
        "fell_back": False,
        "objective_s": objective_s,
        "bound_s": bound_s,
        #: wall time of the CP-SAT calls (reported, never used: the work limit bounds them)
        "solve_time_s": solve_s,
    }
    if t_ilp > t_lib:
        kernels, t_ilp = lib_kernels, t_lib
        notes.update(fell_back=True, groups=len(kernels), fused=0)
    notes["speedup_vs_library"] = t_lib / t_ilp if t_ilp > 0 else 1.0
    return Plan("ilp", tuple(kernels), timing, {"ilp": notes}, tuple(r for r, _ in regions))


def _fused(fk: FusedKernel, names: list[str], idx: CascadeIndex) -> Kernel:
    layer = idx.einsum[names[0]].attr.get("layer", "")
    label = "+".join(names) if len(names) <= 3 else f"{names[0]}..{names[-1]}"
    return Kernel(
        f"fused:{label}",
        "fused",
        tuple(names),
        layer,
        replace(fk.cost, detail={**fk.cost.detail, "tiles": fk.tiles}),
        row={"tiles": dict(fk.tiles), "ctas": fk.ctas, "smem_bytes": fk.smem_bytes},
    )


def _event(kernels: list[Kernel], timing: str, params: GpuParams) -> float:
    return event_median_s(plan_steps(kernels, timing, params), params.event_period_s)

"""Lower a cascade to GPU kernels as a framework runs it (the ``library`` and ``fused`` plans).

A GPU kernel is a fusion group of the cascade's Einsums. The ``library``
plan is PyTorch eager (what ``experiments/measure_gpu_layers.py`` times):

* one cuBLAS GEMM per contraction; consecutive contractions reading the same
  activation with the same reduction are one packed GEMM (Q|K|V, gate|up),
  as the measured layers and most frameworks pack their weights;
* one ``scaled_dot_product_attention`` (FlashAttention-2) per attention
  region, causal or not, GQA included (a decode step's one query row per KV
  head packs the group's query heads, as FlashAttention's
  ``seqlenq_ngroups_swapped`` path does);
* one ``F.layer_norm`` / ``F.rms_norm`` per norm region;
* one kernel per other Einsum (activation, residual add, rotary pieces),
  a copy per KV-cache append, a gather for the embedding;
* an MoE layer as Hugging Face's eager Mixtral block runs it: router GEMM,
  softmax, top-k, normalise, one-hot, then per expert ``torch.where`` (a
  device-to-host sync), a row gather, the expert's GEMMs and activation, the
  gate multiply and ``index_add_``; each expert gets the load-balanced
  ``tokens x top_k / experts`` tokens (at most its capacity).

Each kernel is costed by the calibrated kernel model
(``sim.gpu.kernels.kernel_cost`` on a kernels.csv-style row) with the host
operations of its PyTorch call (``sim.gpu.spec.HOST_OPS``).

The ``fused`` plan is what TensorRT-LLM-class stacks run: GEMM epilogues
(activation, gated SwiGLU, residual add), residual add fused into the next
norm, elementwise chains (rotary, scale, cache append) as one kernel, a fused
MoE (top-k softmax, grouped GEMMs), all replayed from a CUDA graph (no host
time per kernel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from sim.gpu.energy import gpu_time_s, host_time_s
from sim.gpu.kernels import kernel_cost
from sim.gpu.regions import CascadeIndex, Region, find_regions
from sim.gpu.spec import HOST_OPS, GpuModelError, GpuParams, GpuSpec
from sim.gpu.tiling import KernelCost
from sim.gpu.timeline import Step
from workloads.ir import Cascade, Einsum

_DTYPE = {8: "fp8", 16: "bf16", 32: "fp32"}


def dtype_of(bits: int) -> str:
    return _DTYPE.get(int(bits), "bf16")


@dataclass(frozen=True)
class Kernel:
    """One GPU kernel of a plan: a fusion group of Einsums and its cost."""

    name: str
    kind: str
    einsums: tuple[str, ...]
    layer: str
    cost: KernelCost
    #: the host waits for this kernel to finish (a device-to-host copy)
    sync: bool = False
    #: part of the region a layer measurement times (the KV-cache append is not)
    timed: bool = True
    #: the kernel-model row it was costed from (library kernels)
    row: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """Kernels in issue order, with the timing convention they run under."""

    name: str
    kernels: tuple[Kernel, ...]
    #: "event": eager launches with host time; "graph": CUDA-graph replay
    timing: str = "event"
    notes: dict[str, Any] = field(default_factory=dict)
    #: the framework operations found in the cascade (sim.gpu.regions)
    regions: tuple[Region, ...] = ()


class Ctx:
    """What lowering one cascade needs: its index, the card, and a cost cache
    (the layers of a model repeat the same kernel rows)."""

    def __init__(
        self,
        c: Cascade,
        spec: GpuSpec,
        params: GpuParams,
        ix: CascadeIndex | None = None,
        timing: str = "event",
    ) -> None:
        self.c = c
        self.ix = ix or CascadeIndex(c)
        self.spec = spec
        self.params = params
        #: the rows' timing convention: it picks the kernel families (eager
        #: PyTorch's for "event", the serving frameworks' for "graph")
        self.timing = timing
        self._cache: dict[tuple, KernelCost] = {}

    def cost(self, row: dict[str, Any]) -> KernelCost:
        row.setdefault("timing", self.timing)
        key = tuple(sorted(row.items()))
        if key not in self._cache:
            self._cache[key] = kernel_cost(row, self.spec, self.params)
        return self._cache[key]


def kernel_gpu_s(cost: KernelCost, params: GpuParams, graph: bool) -> float:
    """GPU time of a call: its kernels plus the gap between kernels of its convention
    (an eager launch, or a CUDA-graph node when the kernel model has that term)."""
    if graph and hasattr(params, "graph_node_s"):
        return cost.t_kernel_s + cost.n_kernels * float(params.graph_node_s)
    return gpu_time_s(cost, params)


def plan_steps(kernels: Any, timing: str, params: GpuParams) -> list[Step]:
    """Timeline steps of kernels issued eagerly ("event") or replayed from a graph."""
    graph = timing == "graph"
    out = [
        Step(
            0.0 if graph else host_time_s(k.cost, params),
            kernel_gpu_s(k.cost, params, graph),
            k.sync and not graph,
        )
        for k in kernels
    ]
    if graph and out:
        # one graph launch before the first kernel (the kernel model's term, else
        # one host operation)
        launch = float(getattr(params, "graph_launch_s", params.host_op_s))
        out[0] = replace(out[0], host_s=out[0].host_s + launch)
    return out


def _row_kernel(name: str, kind: str, region: Region, row: dict[str, Any], ctx: Ctx) -> Kernel:
    return Kernel(name, kind, region.einsums, region.layer, ctx.cost(row), row=row)


def attention_row(d: dict[str, Any]) -> dict[str, Any]:
    """The SDPA row of an attention region (``attn_flash`` in kernels.csv terms)."""
    b, h, hkv, m = d["B"], d["H"], d["Hkv"], d["M"]
    row = {
        "op": "attn_flash",
        "dtype": dtype_of(d["bits"]),
        "kv_dtype": dtype_of(d["kv_bits"]),
        "B": b,
        "H": h,
        "Hkv": hkv,
        "M": m,
        "N": d["N"],
        "K": d["D"],
        "causal": int(bool(d["causal"]) and m > 1),
    }
    # M = 1 is a decode step: the kernel model's split-KV path packs the query
    # heads of each KV head (GQA) as FlashAttention does
    return row


def gemm_row(d: dict[str, Any], m: int | None = None, batch: int | None = None) -> dict[str, Any]:
    b = d["B"] if batch is None else batch
    return {
        "op": "bmm" if b > 1 else "gemm",
        "dtype": dtype_of(d["bits"]),
        "B": b,
        "M": d["M"] if m is None else m,
        "N": d["N"],
        "K": d["K"],
    }


def with_host(cost: KernelCost, *families: str) -> KernelCost:
    """``cost`` issued by these PyTorch call families (``sim.gpu.spec.HOST_OPS``)."""
    if hasattr(cost, "host_ops"):  # the kernel model may carry the count directly
        n = float(sum(HOST_OPS[f] for f in families))
        return replace(cost, host_calls=tuple(families), host_ops=n)  # type: ignore[call-arg]
    return replace(cost, host_calls=tuple(families))


def hbm_s(nbytes: float, spec: GpuSpec, params: GpuParams) -> float:
    """Streaming time of ``nbytes`` at the calibrated HBM efficiency."""
    return nbytes / (spec.hbm_bandwidth_bytes_per_s * params.hbm_eff)


def ramp_s(params: GpuParams) -> float:
    """Per-kernel start-up inside a kernel's duration (grid start, first loads, tail)."""
    return float(getattr(params, "kernel_ramp_s", 0.0))


#: map op -> kernels.csv elementwise op of the same traffic and similar work
_ELT_OP = {"add": "add", "sub": "add", "mul": "mul", "div": "mul", "max": "add", "min": "add",
           "exp": "exp", "expdiff": "exp", "rsqrt": "exp", "silu": "silu", "gelu": "gelu",
           "copy": "copy", "lt": "add", "eq": "add"}  # fmt: skip


def eltwise_row(e: Einsum) -> dict[str, Any]:
    """The kernels.csv row of one non-contraction Einsum as one PyTorch call."""
    if e.reduced_ranks:
        op = "sum"
        n = e.iteration_points
    else:
        tensors = [a for a in e.inputs if a.tensor != e.output.tensor]
        op = _ELT_OP.get(e.map_op, "add")
        if op in ("add", "mul") and len(tensors) < 2:
            op = "relu"  # one tensor and a constant
        n = e.output_points
    return {"op": op, "dtype": dtype_of(e.output.bits), "M": max(1, n), "N": 1}


def small_call(op: str, n: int, bits: int, ctx: Ctx) -> KernelCost:
    """An out-of-place elementwise/reduction PyTorch call over n elements."""
    row = {"op": op, "dtype": dtype_of(bits), "M": max(1, n), "N": 1}
    return with_host(ctx.cost(row), "eltwise")


def eltwise_kernel(r: Region, ctx: Ctx) -> Kernel:
    e = ctx.ix.einsum[r.einsums[0]]
    row = eltwise_row(e)
    cost = with_host(ctx.cost(row), "eltwise")
    return Kernel(e.name, "eltwise", r.einsums, r.layer, cost, row=row)


def _gather_cost(elements: int, bits: int, ctx: Ctx) -> KernelCost:
    """Rows gathered by index (embedding lookup, token gather): read and write them once."""
    return small_call("copy", elements, bits, ctx)


def _small(n: int, bits: int, ctx: Ctx, op: str = "gelu") -> KernelCost:
    """A small elementwise/reduction PyTorch call over n elements (out of place)."""
    return small_call(op, n, bits, ctx)


def _moe_library(r: Region, ctx: Ctx) -> list[Kernel]:
    """Hugging Face's eager Mixtral sparse-MoE block (see the module docstring)."""
    d = r.dims
    T, E, k, D = d["tokens"], d["experts"], d["top_k"], d["d"]
    bits = d["bits"]
    per_expert = max(1, min(math.ceil(T * k / E), d["capacity"] * d["groups"]))
    L = r.layer
    names = r.einsums

    def kern(name: str, cost: KernelCost, sync: bool = False, row: dict | None = None) -> Kernel:
        return Kernel(f"moe.{name}", "moe", names, L, cost, sync=sync, row=row or {})

    router = {"op": "gemm", "dtype": dtype_of(bits), "M": T, "N": E, "K": D}
    out = [kern("router", ctx.cost(router), row=router)]
    for name, n in (
        ("softmax", T * E), ("topk", T * E), ("sum", T * k), ("div", T * k),
        ("one_hot", T * k * E), ("zeros", T * D),
    ):  # fmt: skip
        out.append(kern(name, _small(n, bits, ctx)))
    for x in range(E):
        out.append(kern(f"e{x}.where", _small(T * k, bits, ctx, "sum"), sync=True))
        out.append(kern(f"e{x}.gather", _gather_cost(per_expert * D, bits, ctx)))
        for g in d["expert_gemms"]:
            row = {"op": "gemm", "dtype": dtype_of(bits), "M": per_expert, "N": g["N"], "K": g["K"]}
            out.append(kern(f"e{x}.{g['name']}", ctx.cost(row), row=row))
            if g is d["expert_gemms"][0]:  # silu / gelu: an erf- or exp-based activation
                out.append(kern(f"e{x}.act", _small(per_expert * g["N"], bits, ctx)))
        if d["activation"] == "swiglu":
            n = per_expert * d["expert_gemms"][0]["N"]
            out.append(kern(f"e{x}.mul", _small(n, bits, ctx, "mul")))
        out.append(kern(f"e{x}.gate", _small(per_expert * D, bits, ctx, "mul")))
        add = small_call("add", per_expert * D, bits, ctx)
        out.append(kern(f"e{x}.index_add", with_host(add, "eltwise_out")))
    return out


def library_kernels(ctx: Ctx, *, pack: bool = True) -> list[tuple[Region, list[Kernel]]]:
    """Each region of the cascade with the eager-PyTorch kernels that run it."""
    return [(r, _region_kernels(r, ctx)) for r in find_regions(ctx.c, pack=pack, index=ctx.ix)]


def _region_kernels(r: Region, ctx: Ctx) -> list[Kernel]:
    label = "+".join(r.einsums) if len(r.einsums) <= 3 else f"{r.einsums[0]}..{r.einsums[-1]}"
    if r.kind == "gemm":
        return [_row_kernel(label, "gemm", r, gemm_row(r.dims), ctx)]
    if r.kind == "attention":
        return [_row_kernel(label, "attention", r, attention_row(r.dims), ctx)]
    if r.kind == "norm":
        d = r.dims
        row = {"op": d["op"], "dtype": dtype_of(d["bits"]), "M": d["rows"], "N": d["cols"]}
        return [_row_kernel(label, "norm", r, row, ctx)]
    if r.kind == "moe":
        return _moe_library(r, ctx)
    if r.kind == "embedding":
        e = ctx.ix.einsum[r.einsums[0]]
        cost = _gather_cost(ctx.ix.tensors[e.output.tensor].elements, e.output.bits, ctx)
        return [Kernel(label, "embedding", r.einsums, r.layer, cost)]
    if r.kind == "kv_append":
        k = eltwise_kernel(r, ctx)
        # k_cache[..., pos] = k: an in-place copy kernel, no allocation
        return [replace(k, kind="kv_append", cost=with_host(k.cost, "eltwise_out"), timed=False)]
    return [eltwise_kernel(r, ctx)]


def library_plan(c: Cascade, spec: GpuSpec, params: GpuParams, *, pack: bool = True) -> Plan:
    ctx = Ctx(c, spec, params)
    regions = library_kernels(ctx, pack=pack)
    kernels = [k for _, ks in regions for k in ks]
    if not kernels:
        raise GpuModelError(f"cascade {c.name} has no Einsum to lower")
    return Plan("library", tuple(kernels), "event", regions=tuple(r for r, _ in regions))


# ------------------------------------------------------------------- fused


def eltwise_group_cost(names: tuple[str, ...], ctx: Ctx) -> KernelCost:
    """Consecutive elementwise Einsums as one kernel: outside inputs read once,
    outside-read outputs written once, their operations on the CUDA cores."""
    ix, spec, params = ctx.ix, ctx.spec, ctx.params
    es = [ix.einsum[n] for n in names]
    made = {e.output.tensor for e in es}
    members = set(names)
    reads: dict[str, float] = {}
    for e in es:
        fp = e.footprint_bytes()
        for a in e.inputs:
            if a.tensor not in made:
                reads[a.tensor] = max(reads.get(a.tensor, 0.0), fp[a.tensor])
    writes = sum(ix.tensors[t].bytes for t in made if ix.read_outside(t, members))
    rd = sum(reads.values())
    ops = float(sum(sum(e.op_counts().values()) for e in es))
    n = max(e.iteration_points for e in es)
    # blocks of 2048 elements (512 threads x 4): a small tensor cannot use every SM
    active = min(1.0, max(1.0, n / 2048.0) / spec.sm_count)
    t_mem = hbm_s(rd + writes, spec, params) / active
    t_ops = ops / (spec.cuda_rate("fp32") * params.cuda_eff * active)
    cost = KernelCost(
        t_kernel_s=max(t_mem, t_ops) + ramp_s(params),
        n_kernels=1,
        host_calls=(),
        dram_read_bytes=rd,
        dram_write_bytes=writes,
        ncu_dram_bytes=rd + writes,
        l2_bytes=rd + writes,
        flops={"cuda": ops},
        detail={"t_memory_s": t_mem, "t_compute_s": t_ops},
    )
    return with_host(cost, "eltwise")


def with_epilogue(
    gemm: KernelCost, extra_read_bytes: float, write_scale: float, extra_ops: float, ctx: Ctx
) -> KernelCost:
    """A GEMM whose epilogue reads ``extra_read_bytes`` more and writes ``write_scale`` x C."""
    rd = gemm.dram_read_bytes + extra_read_bytes
    wr = gemm.dram_write_bytes * write_scale
    t_mem = hbm_s(rd + wr, ctx.spec, ctx.params)
    flops = dict(gemm.flops)
    flops["cuda"] = flops.get("cuda", 0.0) + extra_ops
    return replace(
        gemm,
        t_kernel_s=max(gemm.t_kernel_s, t_mem),
        dram_read_bytes=rd,
        dram_write_bytes=wr,
        ncu_dram_bytes=rd + wr,
        l2_bytes=gemm.l2_bytes + extra_read_bytes,
        flops=flops,
        detail={**gemm.detail, "t_memory_s": t_mem, "epilogue": True},
    )


def _moe_fused(r: Region, ctx: Ctx) -> list[Kernel]:
    """A fused MoE (vLLM / TensorRT-LLM): top-k softmax, permute, grouped GEMMs, combine."""
    d = r.dims
    T, E, k, D = d["tokens"], d["experts"], d["top_k"], d["d"]
    bits = d["bits"]
    per_expert = max(1, min(math.ceil(T * k / E), d["capacity"] * d["groups"]))
    g = d["expert_gemms"]
    dt = dtype_of(bits)

    def kern(name: str, cost: KernelCost, row: dict | None = None) -> Kernel:
        return Kernel(f"moe.{name}", "moe", r.einsums, r.layer, cost, row=row or {})

    router = {"op": "gemm", "dtype": dt, "M": T, "N": E, "K": D}
    up = {
        "op": "bmm",
        "dtype": dt,
        "B": E,
        "M": per_expert,
        "N": sum(x["N"] for x in g[:-1]),
        "K": g[0]["K"],
    }
    down = {"op": "bmm", "dtype": dt, "B": E, "M": per_expert, "N": g[-1]["N"], "K": g[-1]["K"]}
    return [
        kern("router", ctx.cost(router), router),
        kern("topk_softmax", _small(T * E, bits, ctx)),
        kern("permute", _gather_cost(T * k * D, bits, ctx)),
        kern("grouped_up", ctx.cost(up), up),
        kern("act", _small(per_expert * E * g[0]["N"], bits, ctx, "mul")),
        kern("grouped_down", ctx.cost(down), down),
        kern("unpermute", _gather_cost(T * k * D, bits, ctx)),
    ]


def _add_norm(add: Kernel, norm: Kernel, ctx: Ctx) -> Kernel:
    """A residual add fused into the norm that reads it (one more input, one more output)."""
    e = ctx.ix.einsum[add.einsums[0]]
    extra = ctx.ix.tensors[e.output.tensor].bytes
    c = norm.cost
    moved = c.dram_read_bytes + c.dram_write_bytes
    cost = replace(
        c,
        dram_read_bytes=c.dram_read_bytes + extra,
        dram_write_bytes=c.dram_write_bytes + extra,
        ncu_dram_bytes=c.ncu_dram_bytes + 2 * extra,
        t_kernel_s=c.t_kernel_s * (1 + 2 * extra / max(1.0, moved)),
    )
    return replace(
        norm, name=f"{add.name}+{norm.name}", einsums=add.einsums + norm.einsums, cost=cost
    )


def fused_plan(c: Cascade, spec: GpuSpec, params: GpuParams) -> Plan:
    """The library plan with framework fusions (see the module docstring), graph-launched
    (the kernel model's kernel families for graph timing: FlashAttention-3 attention)."""
    ctx = Ctx(c, spec, params, timing="graph")
    regions = library_kernels(ctx)
    out: list[Kernel] = []
    i = 0
    while i < len(regions):
        r, ks = regions[i]
        if r.kind == "moe":
            out += _moe_fused(r, ctx)
            i += 1
            continue
        if r.kind not in ("eltwise", "kv_append"):
            out += ks
            i += 1
            continue
        nxt = regions[i + 1] if i + 1 < len(regions) else None
        e = ctx.ix.einsum[r.einsums[0]]
        if (
            nxt
            and nxt[0].kind == "norm"
            and e.map_op == "add"
            and nxt[0].dims["source"] == e.output.tensor
        ):
            out.append(_add_norm(ks[0], nxt[1][0], ctx))
            i += 2
            continue
        # elementwise chains (rotary, scale, cache append) as one kernel
        j = i
        while (
            j + 1 < len(regions)
            and regions[j + 1][0].kind in ("eltwise", "kv_append")
            and regions[j + 1][0].layer == r.layer
        ):
            j += 1
        names = tuple(n for rr, _ in regions[i : j + 1] for n in rr.einsums)
        after = regions[j + 1] if j + 1 < len(regions) else None
        if after and after[0].kind == "attention" and _feeds(names, after[0].einsums, ctx):
            # rotary and the cache append inside the attention kernel (TensorRT-LLM's
            # QKV preprocessing, flash_attn_with_kvcache)
            out.append(_prologue(names, after[1][0], ctx))
            i = j + 2
            continue
        if out and out[-1].kind == "gemm" and _epilogue_of(names, out[-1].einsums, ctx):
            out[-1] = _fuse_epilogue(out[-1], names, ctx)
        else:
            timed = any(k.timed for _, kk in regions[i : j + 1] for k in kk)
            label = "+".join(names) if len(names) < 4 else f"{names[0]}..{names[-1]}"
            out.append(
                Kernel(
                    label, "eltwise", names, r.layer, eltwise_group_cost(names, ctx), timed=timed
                )
            )
        i = j + 1
    kernels = tuple(replace(k, cost=with_host(k.cost)) for k in out)
    return Plan("fused", kernels, "graph", regions=tuple(r for r, _ in regions))


def _feeds(names: tuple[str, ...], region: tuple[str, ...], ctx: Ctx) -> bool:
    """Whether every output of the chain is read only by the chain or the region."""
    members = set(names) | set(region)
    return all(not ctx.ix.read_outside(ctx.ix.einsum[n].output.tensor, members) for n in names)


def _prologue(names: tuple[str, ...], att: Kernel, ctx: Ctx) -> Kernel:
    """An elementwise chain folded into the attention kernel it feeds: its tables are
    read and the cache entries it appends are written, serially with the kernel."""
    ix = ctx.ix
    made = {ix.einsum[n].output.tensor for n in names}
    read_by_att = {a.tensor for n in att.einsums for a in ix.einsum[n].inputs}
    extra_rd = sum(
        ix.tensors[a.tensor].bytes
        for n in names
        for a in ix.einsum[n].inputs
        if a.tensor not in made and a.tensor not in read_by_att and a.tensor in ix.inputs
    )
    extra_wr = sum(
        ix.tensors[ix.einsum[n].output.tensor].bytes
        for n in names
        if ix.einsum[n].attr.get("kind") == "kv_append"
    )
    c = att.cost
    cost = replace(
        c,
        t_kernel_s=c.t_kernel_s + hbm_s(extra_rd + extra_wr, ctx.spec, ctx.params),
        dram_read_bytes=c.dram_read_bytes + extra_rd,
        dram_write_bytes=c.dram_write_bytes + extra_wr,
        ncu_dram_bytes=c.ncu_dram_bytes + extra_rd + extra_wr,
    )
    label = f"{names[0]}..{att.name}"
    return replace(att, name=label, einsums=names + att.einsums, cost=cost)


def _epilogue_of(names: tuple[str, ...], gemm: tuple[str, ...], ctx: Ctx) -> bool:
    """Whether the elementwise chain ``names`` consumes the GEMM's outputs (an epilogue)."""
    ix = ctx.ix
    made = {ix.einsum[n].output.tensor for n in gemm}
    if not any(a.tensor in made for a in ix.einsum[names[0]].inputs):
        return False
    members = set(names) | set(gemm)
    return not any(ix.read_outside(t, members) for t in made)


def _fuse_epilogue(g: Kernel, names: tuple[str, ...], ctx: Ctx) -> Kernel:
    ix = ctx.ix
    made = {ix.einsum[n].output.tensor for n in (*g.einsums, *names)}
    gemm_out = sum(ix.tensors[ix.einsum[n].output.tensor].bytes for n in g.einsums)
    extra = sum(
        ix.tensors[a.tensor].bytes
        for n in names
        for a in ix.einsum[n].inputs
        if a.tensor not in made
    )
    members = set(names) | set(g.einsums)
    outs = [ix.einsum[n].output.tensor for n in names]
    out_b = sum(ix.tensors[t].bytes for t in outs if ix.read_outside(t, members))
    ops = float(sum(sum(ix.einsum[n].op_counts().values()) for n in names))
    cost = with_epilogue(g.cost, extra, out_b / max(1.0, gemm_out), ops, ctx)
    return replace(g, name=f"{g.name}+{'+'.join(names)}", einsums=g.einsums + names, cost=cost)

"""Map a workload cascade (Einsum IR) to GPU kernels and cost it.

Each Einsum becomes one kernel:

* a two-tensor ``mul``/``sum`` contraction is a GEMM: output ranks shared by
  both inputs are the batch, output ranks of the first input only are M, of
  the second input only are N, reduced ranks are K. Affine indices
  (``I[c, p+r, q+s]``) make it an implicit-GEMM convolution: A's unique
  bytes (not the im2col expansion) are what HBM serves;
* anything else is a memory-bound elementwise / reduction kernel: its
  compulsory bytes through HBM, its operations on the CUDA cores.

Fusion: an attention chain (a contraction whose output reaches a second
contraction only through non-contraction Einsums, the cascade ending there)
with an exponential (softmax) between them runs as one FlashAttention kernel when ``fused`` is True, or as one kernel
per Einsum with every intermediate through HBM when False. ``fused=None``
takes the cascade's own decision: an Einsum attribute ``fuse`` / ``fused``
("0"/"1") when present, otherwise the fused kernel for attention chains
(what PyTorch's scaled_dot_product_attention runs) and one kernel per Einsum
for everything else.
"""

from __future__ import annotations

import math
from typing import Any

from sim.gpu.energy import energy_terms, gpu_time_s, loop_time_s, median_time_s
from sim.gpu.kernels import flash_cost
from sim.gpu.metrics import gpu_metrics
from sim.gpu.spec import GpuModelError, GpuParams, GpuSpec
from sim.gpu.tiling import KernelCost, gemm_cost, retained_bytes
from sim.metrics import Metrics

_BITS_DTYPE = {8: "fp8", 16: "bf16", 32: "fp32"}


def _dtype(bits: int) -> str:
    return _BITS_DTYPE.get(int(bits), "bf16")


def _access_ranks(access: Any) -> set[str]:
    return {r for ix in access.indices for r, _ in ix.terms}


def is_contraction(e: Any) -> bool:
    return (
        e.map_op == "mul"
        and e.reduce_op == "sum"
        and len(e.inputs) == 2
        and getattr(e, "scalar", None) is None
        and bool(e.reduced_ranks)
        and e.inputs[0].tensor != e.inputs[1].tensor
    )


def contraction_dims(e: Any) -> dict[str, Any]:
    """Batch, M, N, K sizes of a contraction Einsum (see module docstring)."""
    sizes = e.rank_sizes
    out = _access_ranks(e.output)
    ra, rb = _access_ranks(e.inputs[0]), _access_ranks(e.inputs[1])
    batch = out & ra & rb
    m_r = (out & ra) - rb
    n_r = (out & rb) - ra
    k_r = set(e.reduced_ranks)

    def prod(rs: set[str]) -> int:
        return math.prod(sizes[r] for r in rs) if rs else 1

    affine = any(len(ix.terms) > 1 for a in e.inputs for ix in a.indices)
    return {
        "batch": prod(batch),
        "M": prod(m_r),
        "N": prod(n_r),
        "K": prod(k_r),
        "batch_ranks": batch,
        "m_ranks": m_r,
        "n_ranks": n_r,
        "conv": affine,
    }


def einsum_kernel(e: Any, spec: GpuSpec, params: GpuParams) -> KernelCost:
    """One Einsum as one GPU kernel."""
    if is_contraction(e):
        d = contraction_dims(e)
        dtype = _dtype(max(a.bits for a in e.inputs))
        a_bytes = None
        if d["conv"]:
            a_bytes = e.footprint_bytes()[e.inputs[0].tensor] / d["batch"]
        return gemm_cost(
            d["M"], d["N"], d["K"], dtype, spec, params, batch=d["batch"], a_bytes=a_bytes
        )
    rd = float(e.compulsory_read_bytes())
    wr = float(e.compulsory_write_bytes())
    ops = float(sum(e.op_counts().values()))
    n = max(1, e.iteration_points)
    blocks = max(1.0, n / 2048.0)
    active = min(1.0, blocks / spec.sm_count)
    t_mem = (rd + wr) / (spec.hbm_bandwidth_bytes_per_s * params.hbm_eff * active)
    t_ops = ops / (spec.cuda_rate("fp32") * params.cuda_eff * active)
    return KernelCost(
        t_kernel_s=max(t_mem, t_ops),
        n_kernels=1,
        host_calls=("eltwise",),
        dram_read_bytes=rd,
        dram_write_bytes=wr,
        ncu_dram_bytes=rd + max(0.0, wr - retained_bytes(spec, params, 0.0)),
        l2_bytes=rd + wr,
        flops={"cuda": ops},
    )


def attention_chain(cascade: Any) -> dict[str, int] | None:
    """Flash-attention dimensions if the cascade is one attention chain."""
    es = list(cascade.einsums)
    cons = [e for e in es if is_contraction(e)]
    if len(cons) != 2:
        return None
    first, second = cons
    # the second contraction must depend on the first through the others
    produced = {first.output.tensor}
    for e in es[es.index(first) + 1 :]:
        if any(a.tensor in produced for a in e.inputs):
            produced.add(e.output.tensor)
    if second.output.tensor not in produced:
        return None
    # a softmax between the two (an exp of the scores), not an MLP
    between = es[es.index(first) + 1 : es.index(second)]
    if not any(e.map_op in ("exp", "expdiff") for e in between):
        return None
    d1 = contraction_dims(first)
    final = _access_ranks(es[-1].output)
    sizes = first.rank_sizes
    out1 = _access_ranks(first.output) - d1["batch_ranks"]
    q_r = out1 & final
    k_r = out1 - final
    if not q_r or not k_r:
        return None
    d2 = contraction_dims(second)
    head = max(d1["K"], d2["N"] if d2["n_ranks"] - final == set() else d1["K"])
    return {
        "B": d1["batch"],
        "M": math.prod(sizes[r] for r in q_r),
        "N": math.prod(cascade.rank_sizes[r] for r in k_r),
        "D": head,
        "bits": max(a.bits for a in first.inputs),
    }


def _fusion_decision(cascade: Any, fused: bool | None) -> bool:
    if fused is not None:
        return bool(fused)
    for e in cascade.einsums:
        attrs = dict(getattr(e, "attrs", ()))
        for key in ("fused", "fuse"):
            if key in attrs:
                return str(attrs[key]).lower() in ("1", "true", "yes")
    return True


def evaluate_cascade(
    cascade: Any, arch: Any, fused: bool | None = None, params: GpuParams | None = None
) -> Metrics:
    """Cost a cascade (or one Einsum) on a GPU; returns :class:`Metrics`.

    ``latency_s`` is the back-to-back (steady-state) time of the cascade's
    kernels: GPU time with a launch gap per kernel, or the host issue time if
    longer. ``notes["single_call_s"]`` has the CUDA-event convention.
    """
    from sim.gpu.spec import resolve

    spec, params = resolve(arch, params)
    einsums = [cascade] if hasattr(cascade, "rank_sizes_items") else list(cascade.einsums)
    if not einsums:
        raise GpuModelError("the cascade has no Einsum to evaluate")
    chain = attention_chain(cascade) if len(einsums) > 2 else None
    kernels: list[tuple[str, KernelCost]] = []
    if chain is not None and _fusion_decision(cascade, fused):
        cost = flash_cost(
            chain["B"],
            1,
            chain["M"],
            chain["N"],
            chain["D"],
            False,
            _dtype(chain["bits"]),
            spec,
            params,
        )
        kernels.append(("flash_attention", cost))
        fused_used = True
    else:
        for e in einsums:
            kernels.append((e.name, einsum_kernel(e, spec, params)))
        fused_used = False
    total = kernels[0][1]
    for _, k in kernels[1:]:
        total = total + k
    t = loop_time_s(total, params)
    terms = energy_terms(total, spec, params)
    # HBM traffic per tensor: each kernel's reads split over its inputs by
    # their compulsory bytes, writes to its output
    traffic: dict[str, float] = {}
    by_name = {e.name: e for e in einsums}
    for name, k in kernels:
        e = by_name.get(name)
        if e is None:
            traffic[name] = traffic.get(name, 0.0) + k.dram_read_bytes + k.dram_write_bytes
            continue
        fp = e.footprint_bytes()
        ins = {a.tensor for a in e.inputs if a.tensor != e.output.tensor}
        tot = sum(fp[i] for i in ins) or 1.0
        for i in ins:
            traffic[i] = traffic.get(i, 0.0) + k.dram_read_bytes * fp[i] / tot
        traffic[e.output.tensor] = traffic.get(e.output.tensor, 0.0) + k.dram_write_bytes
    macs = sum(getattr(e, "macs", 0) for e in einsums)
    busy = gpu_time_s(total, params)
    return gpu_metrics(
        total,
        spec,
        latency_s=t,
        energy_terms=terms,
        hbm_bytes=traffic,
        busy_s=busy,
        macs=macs,
        notes={
            "kernels": [name for name, _ in kernels],
            "fused": fused_used,
            "single_call_s": median_time_s(total, params),
            "kernel_s": {name: k.t_kernel_s for name, k in kernels},
            "ncu_dram_bytes": total.ncu_dram_bytes,
        },
    )

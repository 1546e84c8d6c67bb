"""Cost of one fused kernel running a group of Einsums on a GPU's hierarchy.

The ``ilp`` plan's kernels are fusion groups the cascade ILP chooses
(:mod:`mappers.cascade.gpu_groups`); this module prices one group at its best
tiling, as the IO-aware speed of light a custom kernel could reach.

Hierarchy: HBM -> L2 -> shared memory -> registers, SMs as the spatial
fan-out (one CTA per SM at a time, its working set in the SM's shared
memory). Ranks of the group fall in four kinds:

* **parallel**: never reduced inside the group; split into CTA tiles. Ranks
  that appear in exactly the same tensors form one class, tiled together
  (innermost rank first); a class present in every input and output gets
  tile 1 (nothing to reuse), the others try tiles of 1 .. 256;
* **recurrence**: the carried rank of a recurrence (FuseMax's ``m1``),
  streamed one step at a time inside the CTA, its state kept on chip;
* **streamed**: a reduced rank the group needs in one pass (a GEMM's K),
  streamed in steps of 64;
* **kept**: a reduced rank needed in several passes (a norm's row, the
  3-pass softmax's keys) or inside a recurrence: held whole on chip.

Traffic is the tile re-read analysis of FlashAttention (Dao et al. 2022,
sec. 3.2 and Theorem 2): an input is loaded once per CTA tile of every
parallel class it lacks (K and V once per query block), outputs are stored
once, intermediates never leave the SM. Those are the group's global-memory
accesses (``global_bytes``, the L2 -> SM traffic: FlashAttention's IO count,
its model having no L2). Of those, HBM serves an input once when the tiles
that one wave of CTAs shares stay in L2 (the speed of light: each input
rasterised in its favourable order; inputs admitted smallest first into
``l2_reuse_frac`` of L2), else at every re-read. A causal mask skips the key
blocks after each query block's last key.

Working set (must fit ``smem_bytes_per_sm``): every input tile, plus the
intermediates live at each Einsum: accumulators and recurrence state in
fp32, tensors read by an Einsum that iterates more ranks (re-used) at their
width; an elementwise result consumed point by point stays in registers.

Time: MMAs at the calibrated tensor-core efficiency, other operations at the
CUDA-core efficiency (an ``exp`` or divide on the SFU weighs 8 fp32
operations: 16 SFU lanes against 128 fp32 lanes per SM, CUDA C Programming
Guide, compute capability 9.0), the two overlapped; per CTA, times the waves
of CTAs over the SMs; against HBM and L2 time at the bandwidth the active
SMs can draw.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.gpu.cascade import is_contraction
from sim.gpu.lowering import dtype_of, ramp_s, with_host
from sim.gpu.regions import CascadeIndex
from sim.gpu.spec import GpuParams, GpuSpec
from sim.gpu.tiling import KernelCost
from workloads.ir import Cascade, Einsum

#: fp32-operation units per operation class (see the module docstring)
OP_WEIGHT: dict[str, float] = {"mac": 2.0, "add": 1.0, "max": 1.0, "exp": 8.0, "div": 8.0}
#: CTA tile sizes tried for a parallel rank class
TILES: tuple[int, ...] = (1, 16, 32, 64, 128, 256)
#: step of a streamed reduced rank (a GEMM's K step)
STREAM_STEP = 64


@dataclass(frozen=True)
class FusedKernel:
    """One group at its best tiling."""

    einsums: tuple[str, ...]
    cost: KernelCost
    tiles: dict[str, int]
    ctas: int
    smem_bytes: float
    #: loads and stores the SMs issue (FlashAttention's IO count)
    global_bytes: float
    hbm_bytes: float
    kinds: dict[str, str] = field(default_factory=dict)


def _ranks_of(a: Any) -> set[str]:
    return {r for ix in a.indices for r, _ in ix.terms}


def splits_recurrence(idx: CascadeIndex, names: tuple[str, ...] | list[str]) -> bool:
    """Whether a run of Einsums holds part of a recurrence but not all of it."""
    members = set(names)
    for rec in idx.recurrences:
        inside = set(rec.einsums) & members
        if inside and inside != set(rec.einsums):
            return True
    return False


def _passes(idx: CascadeIndex, es: list[Einsum], rank: str) -> int:
    """FuseMax's pass count over ``rank`` inside the group (Cascade.pass_of on a subset)."""
    fam = idx.c.rank_family(rank)
    producer = {e.output.tensor: e for e in es}
    p_of: dict[str, int] = {}
    for e in es:
        iterates = bool(fam & set(e.ranks))
        p = 1 if iterates else 0
        for a in e.inputs:
            src = producer.get(a.tensor)
            if src is None or (src.name, e.name) not in idx.forward:
                continue
            k = p_of[src.name]
            if iterates and not (fam & _ranks_of(a) and fam & set(src.ranks)):
                k += 1
            p = max(p, k)
        p_of[e.name] = p
    return max((p_of[e.name] for e in es if fam & set(e.ranks)), default=0)


class _Group:
    """The tiling-independent analysis of one candidate group."""

    def __init__(self, idx: CascadeIndex, names: tuple[str, ...]) -> None:
        self.idx = idx
        self.c = idx.c
        self.names = names
        self.es: list[Einsum] = [idx.einsum[n] for n in names]
        self.made = {e.output.tensor: i for i, e in enumerate(self.es)}
        members = set(names)
        self.sizes = idx.sizes
        self.inputs: dict[str, list[Any]] = {}
        for e in self.es:
            for a in e.inputs:
                if a.tensor not in self.made:
                    self.inputs.setdefault(a.tensor, []).append(a)
        self.outputs = [
            t
            for t in self.made
            if t in idx.outputs or any(x not in members for x in idx.consumers.get(t, ()))
        ]
        self.valid = self._recurrences(members) and self._classify()
        if self.valid:
            self._prepare()

    def _recurrences(self, members: set[str]) -> bool:
        self.rec: set[str] = set()
        for rec in self.idx.recurrences:
            inside = set(rec.einsums) & members
            if inside and inside != set(rec.einsums):
                return False  # a recurrence is one kernel or none
            if inside:
                self.rec.add(rec.rank)
        # recurrence state: the tensors read at an earlier step (RM[m1] for RM[m1+1])
        self.carried = {t for n, t in self.idx.carried_reads if n in members and t in self.made}
        return True

    def _classify(self) -> bool:
        reduced = {r for e in self.es for r in e.reduced_ranks} - self.rec
        self.kept: set[str] = set()
        self.streamed: set[str] = set()
        for r in reduced:
            if self.rec or _passes(self.idx, self.es, r) > 1:
                self.kept.add(r)
            else:
                self.streamed.add(r)
        every = {r for e in self.es for r in e.ranks}
        parallel = every - reduced - self.rec
        sig: dict[str, frozenset[str]] = {}
        for r in parallel:
            have = {t for t, accs in self.inputs.items() if any(r in _ranks_of(a) for a in accs)}
            have |= {t for t, i in self.made.items() if r in _ranks_of(self.es[i].output)}
            sig[r] = frozenset(have)
        classes: dict[frozenset[str], list[str]] = {}
        for r in sorted(parallel, key=self._inner_order):
            classes.setdefault(sig[r], []).append(r)
        everywhere = set(self.inputs) | set(self.outputs)
        self.classes = [
            (tuple(ranks), math.prod(self.sizes[r] for r in ranks), everywhere <= key)
            for key, ranks in classes.items()
        ]
        return True

    def _inner_order(self, r: str) -> tuple[int, str]:
        """Innermost first: position from the end of the first tensor carrying ``r``."""
        for e in self.es:
            for a in (*e.inputs, e.output):
                ranks = [x for ix in a.indices for x, _ in ix.terms]
                if r in ranks:
                    return (len(ranks) - 1 - ranks.index(r), r)
        return (99, r)

    def _prepare(self) -> None:
        """Tiling-independent pieces of the cost: footprints as index terms, liveness, work."""
        tens = self.idx.tensors
        self.in_terms = {
            t: [[[(r, abs(k)) for r, k in ix.terms] for ix in a.indices] for a in accs]
            for t, accs in self.inputs.items()
        }
        self.in_bits = {t: accs[0].bits for t, accs in self.inputs.items()}
        self.in_bytes = {t: tens[t].bytes for t in self.inputs}
        self.in_ranks = {
            t: set().union(*(_ranks_of(a) for a in accs)) for t, accs in self.inputs.items()
        }
        n = len(self.es)
        self.mats: list[tuple[list[str], float, int, int]] = []
        for t, i in self.made.items():
            e = self.es[i]
            cons = [
                j for j, x in enumerate(self.es) if j != i and any(a.tensor == t for a in x.inputs)
            ]
            carried = t in self.carried
            out = t in self.outputs
            if carried or e.reduced_ranks:
                width = max(32, e.output.bits)
            elif out or any(set(self.es[j].ranks) != _ranks_of(e.output) for j in cons):
                width = e.output.bits
            else:
                continue  # consumed point by point: registers
            lo, hi = (0, n - 1) if carried else (i, max(cons + ([n - 1] if out else [i])))
            ranks = [ix.terms[0][0] for ix in e.output.indices]
            self.mats.append((ranks, width / 8, lo, hi))
        self.out_bytes = sum(tens[t].bytes for t in self.outputs)
        self.work = []
        for e in self.es:
            pts = float(e.iteration_points)
            if is_contraction(e):
                mma, cuda = 2.0 * pts, 0.0
            else:
                mma = 0.0
                cuda = float(sum(OP_WEIGHT.get(k, 1.0) * v for k, v in e.op_counts().items()))
            self.work.append((set(e.ranks), mma, cuda, e))
        self.skip = self.streamed | self.rec
        self.query = {r for e in self.es if e.mask is not None for r in e.mask.query}
        self.dtype = dtype_of(max(a.bits for e in self.es for a in e.inputs))

    # ------------------------------------------------------------ tilings
    def candidates(self) -> list[tuple[int, ...]]:
        out = []
        for _, size, everywhere in self.classes:
            if everywhere:
                out.append((1,))
            else:
                ts = {t for t in TILES if t < size} | ({size} if size <= TILES[-1] else set())
                out.append(tuple(sorted(ts)))
        return out

    def rank_tiles(self, choice: tuple[int, ...]) -> dict[str, int]:
        tile: dict[str, int] = {}
        for (ranks, _, _), t in zip(self.classes, choice, strict=True):
            left = t
            for r in ranks:  # innermost first
                tile[r] = max(1, min(self.sizes[r], left))
                left = max(1, math.ceil(left / tile[r]))
        for r in self.kept:
            tile[r] = self.sizes[r]
        for r in self.streamed:
            tile[r] = min(STREAM_STEP, self.sizes[r])
        for r in self.rec:
            tile[r] = 1
        return tile


def _blocks(size: int, tile: int) -> int:
    return math.ceil(size / max(1, tile))


def _visible_fraction(
    e: Einsum, tile: dict[str, int], sizes: dict[str, int], skip: set[str]
) -> float:
    """Fraction of (query block, key block) pairs a causal mask leaves (1 if none)."""
    m = e.mask
    if m is None or not set(m.key) & skip:
        return 1.0
    nq = math.prod(sizes[r] for r in m.query)
    nk = math.prod(sizes[r] for r in m.key)
    bq = math.prod(tile.get(r, sizes[r]) for r in m.query)
    bk = math.prod(tile.get(r, sizes[r]) for r in m.key)
    qb, kb = _blocks(nq, bq), _blocks(nk, bk)
    i = np.arange(qb)
    last = np.minimum((i + 1) * bq, nq) - 1 + m.offset
    vis = np.clip(np.floor_divide(last, bk) + 1, 0, kb)
    return float(vis.sum()) / (qb * kb)


def _extent(terms: list[tuple[str, int]], tile: dict[str, int]) -> int:
    return sum(k * (tile.get(r, 1) - 1) for r, k in terms) + 1


def _cost_at(g: _Group, choice: tuple[int, ...], spec: GpuSpec, params: GpuParams) -> dict | None:
    tile = g.rank_tiles(choice)
    sizes = g.sizes
    nblk = [(set(r), _blocks(s, t)) for (r, s, _), t in zip(g.classes, choice, strict=True)]
    ctas = math.prod(k for _, k in nblk)
    # working set: input tiles + the intermediates live at each Einsum
    smem = 0.0
    for t, accs in g.in_terms.items():
        fp = max(math.prod(_extent(ix, tile) for ix in acc) for acc in accs)
        smem += fp * g.in_bits[t] / 8
    live = [0.0] * len(g.es)
    for ranks, width, lo, hi in g.mats:
        b = math.prod(tile.get(r, 1) for r in ranks) * width
        for j in range(lo, hi + 1):
            live[j] += b
    smem += max(live, default=0.0)
    if smem > spec.smem_bytes_per_sm:
        return None
    frac = min((_visible_fraction(e, tile, sizes, g.skip) for _, _, _, e in g.work), default=1.0)

    def recompute(ranks: set[str]) -> int:
        return math.prod(k for rs, k in nblk if not rs & ranks)

    # L2: each input's re-read tiles stay in L2 when the tiles one wave of CTAs
    # shares fit (inputs admitted smallest first into l2_reuse_frac of L2)
    wave = min(ctas, spec.sm_count)
    reads_global = reads_hbm = 0.0
    sets = []
    for t, full in g.in_bytes.items():
        ranks = g.in_ranks[t]
        share = recompute(ranks)  # CTAs that read the same tile of this input
        k = float(share)
        if frac < 1.0 and ranks & g.skip and not ranks & g.query:
            k *= frac
        reads_global += full * k
        slice_b = full * share / ctas
        sets.append((math.ceil(wave / share) * slice_b if share > 1 else 0.0, full, k))
    room = params.l2_reuse_frac * spec.l2_bytes
    for need, full, k in sorted(sets):
        if need <= room:
            room -= need
            reads_hbm += full
        else:
            reads_hbm += full * k
    mma = cuda = 0.0
    for ranks, m, cu, e in g.work:
        f = recompute(ranks)
        if frac < 1.0 and (e.mask is not None or (ranks & g.query and ranks & g.skip)):
            f *= frac
        mma += m * f
        cuda += cu * f
    sms = spec.sm_count
    if g.dtype == "fp32":
        tensor_sm = spec.cuda_rate("fp32") * params.cuda_eff / sms
    else:
        tensor_sm = spec.tensor_rate(g.dtype) * params.tensor_eff / sms
    cuda_sm = spec.cuda_rate("fp32") * params.cuda_eff / sms
    t_cta = max(mma / ctas / tensor_sm, cuda / ctas / cuda_sm)
    t_comp = math.ceil(ctas / sms) * t_cta
    active = min(1.0, ctas / sms)
    global_b = reads_global + g.out_bytes
    hbm_b = reads_hbm + g.out_bytes
    t_hbm = hbm_b / (spec.hbm_bandwidth_bytes_per_s * params.hbm_eff * active)
    t_l2 = global_b / (spec.l2_bandwidth_bytes_per_s * active)
    return {
        "t": max(t_comp, t_hbm, t_l2),
        "t_comp": t_comp,
        "t_mem": max(t_hbm, t_l2),
        "tile": tile,
        "ctas": ctas,
        "smem": smem,
        "global": global_b,
        "hbm_read": reads_hbm,
        "write": g.out_bytes,
        "mma": mma,
        "cuda": cuda,
        "dtype": g.dtype,
    }


def _search(g: _Group, spec: GpuSpec, params: GpuParams) -> dict | None:
    """Best tiling: exhaustive over small spaces, else coordinate descent from 128s."""
    cands = g.candidates()
    size = math.prod(len(c) for c in cands)

    def key(r: dict) -> tuple[float, float]:
        return (r["t"], r["global"])

    if size <= EXHAUSTIVE_TILINGS:
        best = None
        for choice in itertools.product(*cands):
            r = _cost_at(g, choice, spec, params)
            if r is not None and (best is None or key(r) < key(best)):
                best = r
        return best
    # coordinate descent, started from every class at its smallest tile and at 128
    best = None
    for start in (
        tuple(c[0] for c in cands),
        tuple(min(c, key=lambda t: abs(t - 128)) for c in cands),
    ):
        cur = list(start)
        r0 = _cost_at(g, tuple(cur), spec, params)
        for _ in range(3):
            changed = False
            for i, opts in enumerate(cands):
                for t in opts:
                    trial = (*cur[:i], t, *cur[i + 1 :])
                    r = _cost_at(g, trial, spec, params)
                    if r is not None and (r0 is None or key(r) < key(r0)):
                        cur, r0, changed = list(trial), r, True
            if not changed:
                break
        if r0 is not None and (best is None or key(r0) < key(best)):
            best = r0
    return best


#: tilings tried one by one; larger spaces are searched by coordinate descent
EXHAUSTIVE_TILINGS = 64


def fused_kernel(
    c: Cascade,
    names: tuple[str, ...],
    spec: GpuSpec,
    params: GpuParams,
    index: CascadeIndex | None = None,
) -> FusedKernel | None:
    """The group ``names`` (consecutive Einsums) as one kernel at its best tiling, or
    None when no tiling fits on chip (or a recurrence is split)."""
    g = _Group(index or CascadeIndex(c), names)
    if not g.valid:
        return None
    best = _search(g, spec, params)
    if best is None:
        return None
    cls = {"bf16": "tensor16", "fp16": "tensor16", "fp8": "tensor8", "fp32": "cuda"}[best["dtype"]]
    flops = {cls: best["mma"]} if best["mma"] else {}
    if best["cuda"]:
        flops["cuda"] = flops.get("cuda", 0.0) + best["cuda"]
    cost = KernelCost(
        t_kernel_s=best["t"] + ramp_s(params),
        n_kernels=1,
        host_calls=(),
        dram_read_bytes=best["hbm_read"],
        dram_write_bytes=best["write"],
        ncu_dram_bytes=best["hbm_read"] + best["write"],
        l2_bytes=best["global"],
        flops=flops,
        detail={
            "t_compute_s": best["t_comp"],
            "t_memory_s": best["t_mem"],
            "ctas": best["ctas"],
            "smem_bytes": best["smem"],
        },
    )
    # one allocation per output and one launch (the HOST_OPS accounting)
    families = ("eltwise",) + ("eltwise_out",) * max(0, len(g.outputs) - 1)
    kinds = {r: "kept" for r in g.kept}
    kinds.update({r: "streamed" for r in g.streamed})
    kinds.update({r: "recurrence" for r in g.rec})
    for ranks, _, _ in g.classes:
        kinds.update({r: "parallel" for r in ranks})
    return FusedKernel(
        names,
        with_host(cost, *families),
        best["tile"],
        best["ctas"],
        best["smem"],
        best["global"],
        best["hbm_read"] + best["write"],
        kinds,
    )

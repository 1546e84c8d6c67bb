"""Find the framework-level operations of a cascade: attention, norms, MoE, GEMMs.

The GPU lowering (:mod:`sim.gpu.lowering`) turns each operation a framework
would call (one ``torch`` function) into one kernel. This module finds them
in the Einsum dataflow, without relying on tensor names:

* **attention**: a *score* contraction (its output feeds an ``exp``), grown
  through the Einsums that read only the region's tensors (max, exp, sum,
  normalise, the 1-pass recurrences) and the *value* contractions that reduce
  a key rank; the scale of the queries by a constant, read only by the score
  contractions, joins as its prologue (SDPA scales inside). A decode step's
  split softmax (cache part + new part) is one region with two key parts.
* **norm**: around each ``rsqrt``, the Einsums computed from one row tensor X
  and 1-D parameters only (sum, mean, centre, square, scale, gain, bias),
  with X chosen as far back as the row computation reaches.
* **moe**: Einsums tagged ``moe=router|route|dispatch|expert|combine`` by the
  workload library (a routing network has no single framework call to match).
* **embedding** (``kind=embedding``) and **KV-cache append** (``kind=kv_append``).
* everything else: each contraction is a GEMM (consecutive GEMMs that read
  the same activation with the same reduction are *packable* into one, as
  frameworks pack Q|K|V and gate|up) and each other Einsum is elementwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sim.gpu.cascade import contraction_dims, is_contraction
from workloads.dag import group_order
from workloads.ir import Cascade, Einsum


@dataclass(frozen=True)
class Region:
    """A framework-level operation: the Einsums it covers and its dimensions."""

    kind: str  # attention | norm | moe | embedding | kv_append | gemm | eltwise
    einsums: tuple[str, ...]
    layer: str = ""
    dims: dict[str, Any] = field(default_factory=dict)


class CascadeIndex:
    """Lookups over one cascade, computed once (the lowering reads them many times)."""

    def __init__(self, c: Cascade) -> None:
        self.c = c
        self.sizes = c.rank_sizes
        self.outputs = set(c.outputs)
        self.inputs = set(c.inputs)
        self.tensors = {t.name: t for t in c.tensors}
        self.einsum = {e.name: e for e in c.einsums}
        self.pos = {e.name: i for i, e in enumerate(c.einsums)}
        self.producer = {e.output.tensor: e for e in c.einsums}
        self.consumers: dict[str, list[str]] = {}
        for e in c.einsums:
            for a in e.inputs:
                if a.tensor != e.output.tensor and e.name not in self.consumers.get(a.tensor, ()):
                    self.consumers.setdefault(a.tensor, []).append(e.name)
        self.recurrences = c.recurrences()
        self.carried_reads = c.carried_reads()
        self.carried_by: dict[str, set[str]] = {}
        for n, t in self.carried_reads:
            self.carried_by.setdefault(n, set()).add(t)
        self.forward = {(u, v) for u, v in c.graph().edges}

    def read_outside(self, tensor: str, members: set[str]) -> bool:
        """Whether ``tensor`` is a cascade output or read by an Einsum outside ``members``."""
        if tensor in self.outputs:
            return True
        return any(x not in members for x in self.consumers.get(tensor, ()))


def _ranks(access: Any) -> set[str]:
    return {r for ix in access.indices for r, _ in ix.terms}


# --------------------------------------------------------------- attention


def _score_contractions(ix: CascadeIndex) -> list[Einsum]:
    out = []
    for e in ix.c.einsums:
        if not is_contraction(e) or e.attr.get("moe"):
            continue
        cons = [ix.einsum[n] for n in ix.consumers.get(e.output.tensor, ())]
        if any(x.map_op in ("exp", "expdiff") for x in cons):
            out.append(e)
    return out


def _attention_members(ix: CascadeIndex, scores: list[Einsum]) -> set[str]:
    """Grow the regions from the score contractions (see the module docstring)."""
    import heapq

    members = {e.name for e in scores}
    made = {e.output.tensor for e in scores}
    reduced: set[str] = set()
    keys = _key_ranks(scores, reduced)
    heap: list[tuple[int, str]] = []
    queued: set[str] = set()

    def push(tensor: str) -> None:
        for n in ix.consumers.get(tensor, ()):
            if n not in members and n not in queued:
                queued.add(n)
                heapq.heappush(heap, (ix.pos[n], n))

    for t in made:
        push(t)
    deferred: set[str] = set()
    while heap:
        _, n = heapq.heappop(heap)
        queued.discard(n)
        e = ix.einsum[n]
        if e.attr.get("moe"):
            continue
        reads = [a.tensor for a in e.inputs if a.tensor != e.output.tensor]
        if is_contraction(e):
            ok = bool(set(e.reduced_ranks) & keys)  # a value contraction reduces a key rank
        else:
            carried = ix.carried_by.get(n, set())
            ok = all(t in made or t in carried for t in reads if t in ix.producer)
        if not ok:
            deferred.add(n)
            continue
        members.add(n)
        made.add(e.output.tensor)
        reduced |= set(e.reduced_ranks)
        keys = _key_ranks(scores, reduced)
        push(e.output.tensor)
        # an Einsum refused earlier may be accepted now (its other inputs joined)
        for d in sorted(deferred, key=ix.pos.__getitem__):
            if d not in queued:
                queued.add(d)
                heapq.heappush(heap, (ix.pos[d], d))
        deferred.clear()
    # prologue: a scale by a constant read only by the score contractions
    for s in scores:
        for a in s.inputs:
            p = ix.producer.get(a.tensor)
            if (
                p is not None
                and p.map_op == "mul"
                and p.scalar is not None
                and all(x in members for x in ix.consumers.get(a.tensor, ()))
            ):
                members.add(p.name)
    return members


def _key_ranks(scores: list[Einsum], reduced: set[str]) -> set[str]:
    """Ranks of the score outputs that come from the key input only.

    The key input is the one carrying a rank the region reduces (the
    softmax's max and sum, the value contraction).
    """
    out: set[str] = set()
    for s in scores:
        q, k = _split_qk(s, reduced)
        out |= (_ranks(s.output) & _ranks(k)) - _ranks(q)
    return out


def _components(ix: CascadeIndex, members: set[str]) -> list[list[str]]:
    """Connected pieces of ``members`` (dataflow edges), each in cascade order."""
    parent = {n: n for n in members}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for n in members:
        for a in ix.einsum[n].inputs:
            p = ix.producer.get(a.tensor)
            if p is not None and p.name in members:
                parent[find(n)] = find(p.name)
    groups: dict[str, list[str]] = {}
    for n in sorted(members, key=ix.pos.__getitem__):
        groups.setdefault(find(n), []).append(n)
    return list(groups.values())


def _attention_dims(ix: CascadeIndex, names: list[str]) -> dict[str, Any]:
    """SDPA dimensions of one attention region."""
    es = [ix.einsum[n] for n in names]
    made = {e.output.tensor for e in es}
    scores = [e for e in _score_contractions_in(ix, es)]
    reduced = {r for e in es for r in e.reduced_ranks}
    keys = _key_ranks(scores, reduced)
    sizes = ix.sizes

    def prod(rs: set[str]) -> int:
        return math.prod(sizes[r] for r in rs) if rs else 1

    main = max(scores, key=lambda s: prod(_ranks(s.output) & keys))
    qa, ka = _split_qk(main, keys)
    shared = (_ranks(qa) & _ranks(ka)) - set(main.reduced_ranks)
    q_only = (_ranks(main.output) & _ranks(qa)) - shared
    mask = main.mask
    if mask is not None:
        q_pos = set(mask.query)
    elif "p" in q_only:
        q_pos = {"p"}
    else:
        q_pos = set(q_only)
    group = q_only - q_pos
    b = prod(shared & {"b"})
    hkv = prod(shared - {"b"})
    n_keys = sum(prod(_ranks(s.output) & keys) for s in scores)
    values = [
        a.tensor
        for e in es
        if is_contraction(e) and e not in scores
        for a in e.inputs
        if a.tensor not in made
    ]
    members = set(names)
    outs = [e.output.tensor for e in es if ix.read_outside(e.output.tensor, members)]
    key_t = [_split_qk(s, keys)[1].tensor for s in scores]
    return {
        "B": b,
        "H": hkv * prod(group),
        "Hkv": hkv,
        "M": prod(q_pos),
        "N": n_keys,
        "D": prod(set(main.reduced_ranks)),
        "causal": mask is not None,
        "bits": max(a.bits for a in main.inputs),
        "kv_bits": max(ix.tensors[t].bits for t in [*key_t, *values]),
        "query": qa.tensor,
        "keys": tuple(dict.fromkeys(key_t)),
        "values": tuple(dict.fromkeys(values)),
        "outputs": tuple(outs),
        "key_parts": len(scores),
    }


def _score_contractions_in(ix: CascadeIndex, es: list[Einsum]) -> list[Einsum]:
    names = {e.name for e in es}
    return [e for e in _score_list(ix) if e.name in names]


def _score_list(ix: CascadeIndex) -> list[Einsum]:
    cached = getattr(ix, "_scores", None)
    if cached is None:
        cached = _score_contractions(ix)
        ix._scores = cached  # type: ignore[attr-defined]
    return cached


def _split_qk(score: Einsum, keys: set[str]) -> tuple[Any, Any]:
    """(query access, key access) of a score contraction: the key input carries ``keys``."""
    a, b = score.inputs
    ka = (_ranks(a) & keys) - _ranks(b)
    kb = (_ranks(b) & keys) - _ranks(a)
    return (b, a) if len(ka) > len(kb) else (a, b)


# -------------------------------------------------------------------- norms


def _row_closure(ix: CascadeIndex, src: str, taken: set[str]) -> list[str]:
    """Non-contraction Einsums computed from ``src`` and 1-D parameters only."""
    import heapq

    rank_src = set(ix.tensors[src].ranks)
    derived = {src}
    members: list[str] = []
    heap = [(ix.pos[n], n) for n in ix.consumers.get(src, ())]
    heapq.heapify(heap)
    seen = {n for _, n in heap}
    while heap:
        _, n = heapq.heappop(heap)
        e = ix.einsum[n]
        if n in taken or is_contraction(e) or e.attr.get("moe"):
            continue
        reads = [a.tensor for a in e.inputs]
        ok = all(t in derived or (t in ix.inputs and len(ix.tensors[t].ranks) == 1) for t in reads)
        if not ok or not set(ix.tensors[e.output.tensor].ranks) <= rank_src:
            continue
        derived.add(e.output.tensor)
        members.append(n)
        for m in ix.consumers.get(e.output.tensor, ()):
            if m not in seen:
                seen.add(m)
                heapq.heappush(heap, (ix.pos[m], m))
    return sorted(members, key=ix.pos.__getitem__)


def _norm_region(ix: CascadeIndex, seed: Einsum, taken: set[str]) -> list[str] | None:
    # candidate sources: ancestor tensors of the seed through non-contraction Einsums
    cands: list[str] = []
    stack = [a.tensor for a in seed.inputs]
    seen: set[str] = set()
    while stack and len(seen) < 64:
        t = stack.pop()
        if t in seen:
            continue
        seen.add(t)
        cands.append(t)
        p = ix.producer.get(t)
        if p is not None and not is_contraction(p) and p.name not in taken:
            stack.extend(a.tensor for a in p.inputs)
    best: list[str] | None = None
    for t in cands:
        if len(ix.tensors[t].ranks) < 2:
            continue
        members = _row_closure(ix, t, taken)
        if seed.name in members and (best is None or len(members) > len(best)):
            best = members
    return best


def _norm_dims(ix: CascadeIndex, names: list[str]) -> dict[str, Any]:
    es = [ix.einsum[n] for n in names]
    reduced = {r for e in es for r in e.reduced_ranks}
    red = [e for e in es if e.reduced_ranks]
    src = red[0].inputs[0].tensor
    t = ix.tensors[src]
    sizes = dict(zip(t.ranks, t.shape, strict=True))
    cols = math.prod(sizes[r] for r in reduced if r in sizes)
    rows = t.elements // max(1, cols)
    centred = any(e.map_op == "sub" for e in es)
    return {
        "op": "layernorm" if centred else "rmsnorm",
        "rows": rows,
        "cols": cols,
        "bits": t.bits,
        "source": src,
    }


# --------------------------------------------------------------------- GEMMs


def gemm_dims(e: Einsum) -> dict[str, Any]:
    d = contraction_dims(e)
    return {
        "B": d["batch"],
        "M": d["M"],
        "N": d["N"],
        "K": d["K"],
        "bits": max(a.bits for a in e.inputs),
        "activation": _activation_input(e),
    }


def _activation_input(e: Einsum) -> str:
    """The input holding the M ranks (the activation; the other is the weight)."""
    d = contraction_dims(e)
    a, b = e.inputs
    return a.tensor if d["m_ranks"] <= _ranks(a) else b.tensor


def _packable(ix: CascadeIndex, a: Einsum, b: Einsum) -> bool:
    """Two contractions one packed GEMM can run: same activation, reduction and M."""
    if not (is_contraction(a) and is_contraction(b)):
        return False
    da, db = gemm_dims(a), gemm_dims(b)
    if da["activation"] != db["activation"] or da["B"] != 1 or db["B"] != 1:
        return False
    if (da["M"], da["K"]) != (db["M"], db["K"]):
        return False
    wa = [x.tensor for x in a.inputs if x.tensor != da["activation"]]
    wb = [x.tensor for x in b.inputs if x.tensor != db["activation"]]
    return all(w in ix.inputs for w in wa + wb)


# -------------------------------------------------------------------- regions


def find_regions(
    c: Cascade, *, pack: bool = True, index: CascadeIndex | None = None
) -> list[Region]:
    """The cascade as framework-level operations, in a dependence order."""
    ix = index or CascadeIndex(c)
    taken: set[str] = set()
    found: dict[str, Region] = {}
    att = _attention_members(ix, _score_list(ix))
    for names in _components(ix, att):
        r = Region("attention", tuple(names), _layer(ix, names), _attention_dims(ix, names))
        found[names[0]] = r
        taken |= set(names)
    moe = {e.name for e in c.einsums if e.attr.get("moe")}
    taken |= moe
    for names in _components(ix, moe):
        found[names[0]] = Region("moe", tuple(names), _layer(ix, names), _moe_dims(ix, names))
    for e in c.einsums:
        if e.map_op == "rsqrt" and e.name not in taken:
            names = _norm_region(ix, e, taken)
            if names:
                found[names[0]] = Region(
                    "norm", tuple(names), _layer(ix, names), _norm_dims(ix, names)
                )
                taken |= set(names)
    out: list[Region] = []
    order = [e.name for e in c.einsums]
    i = 0
    while i < len(order):
        n = order[i]
        if n in found:
            out.append(found[n])
            i += 1
            continue
        if n in taken:
            i += 1
            continue
        e = ix.einsum[n]
        kind = e.attr.get("kind", "")
        if kind in ("embedding", "kv_append"):
            out.append(Region(kind, (n,), _layer(ix, [n]), {"bits": e.output.bits}))
        elif is_contraction(e):
            group = [n]
            while pack and i + len(group) < len(order):
                nxt = ix.einsum[order[i + len(group)]]
                if nxt.name in taken or not _packable(ix, e, nxt):
                    break
                group.append(nxt.name)
            dims = gemm_dims(e)
            dims["N"] = sum(gemm_dims(ix.einsum[g])["N"] for g in group)
            out.append(Region("gemm", tuple(group), _layer(ix, group), dims))
            i += len(group)
            continue
        else:
            out.append(Region("eltwise", (n,), _layer(ix, [n]), {}))
        i += 1
    return _ordered(ix, out)


def _ordered(ix: CascadeIndex, regions: list[Region]) -> list[Region]:
    """Regions in a dependence order (a region after every region it reads from),
    ties broken by their first Einsum's place in the cascade."""
    pos = ix.pos
    owner = {n: k for k, r in enumerate(regions) for n in r.einsums}
    first = [min(pos[n] for n in r.einsums) for r in regions]
    out = [regions[k] for k in group_order(ix.forward, owner, first)]
    if len(out) != len(regions):  # pragma: no cover - regions of a DAG never cycle
        raise ValueError(f"cascade {ix.c.name}: its regions depend on each other in a cycle")
    return out


def _layer(ix: CascadeIndex, names: list[str]) -> str:
    for n in names:
        v = ix.einsum[n].attr.get("layer")
        if v is not None:
            return v
    return ""


def _moe_dims(ix: CascadeIndex, names: list[str]) -> dict[str, Any]:
    """Experts, top-k, tokens and expert GEMM sizes of an MoE region (library tags)."""
    es = [ix.einsum[n] for n in names]
    router = next(e for e in es if e.attr.get("moe") == "router")
    rd = contraction_dims(router)
    tokens, experts, d = rd["M"], rd["N"], rd["K"]
    sel = next(e for e in es if e.map_op == "lt" and e.scalar is not None and "y" not in e.ranks)
    top_k = int(round(sel.scalar or 1))
    gemms = [e for e in es if e.attr.get("moe") == "expert" and is_contraction(e)]
    ffn = [
        {"N": contraction_dims(g)["N"], "K": contraction_dims(g)["K"], "name": g.name}
        for g in gemms
    ]
    cap = next(e for e in es if e.map_op == "lt" and e.scalar is not None and e is not sel)
    dispatch = next(e for e in es if e.attr.get("moe") == "dispatch")
    slots = ix.sizes.get("u", 1)
    groups = ix.tensors[dispatch.output.tensor].elements // (experts * slots * d)
    return {
        "tokens": tokens,
        "experts": experts,
        "top_k": top_k,
        "d": d,
        "capacity": int(round(cap.scalar or 1)),
        "groups": groups,
        "expert_gemms": ffn,
        "activation": "swiglu" if any(e.map_op == "silu" for e in es) else "gelu",
        "bits": router.output.bits,
    }

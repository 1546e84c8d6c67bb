"""LLM workloads: decoder layers, decode steps with a KV cache, MoE FFNs, whole models.

Every builder writes the cascade in the text format (see
:mod:`workloads.library`); the numpy executor gives it its meaning, and
``tests/workloads/test_llm_*.py`` check each against a hand-written numpy
forward pass. Rank names are part of the interface (the GPU lowering reads
them):

=====  ==========================================================
rank   meaning
=====  ==========================================================
b      sequences in the batch
p      query positions (the prompt in a prefill, the new tokens in a decode step)
m      key positions of a prefill (``m1``, ``m0``: its blocks in the 1-pass form)
c      cached key positions of a decode step (the past)
t      the new tokens' key positions in a decode step
d      model width; ``s`` the FFN width
h      KV heads; ``g`` query heads per KV head (GQA: H = h x g; MQA: h = 1)
e, f   head dim of Q/K and of V; with rotary embedding ``e`` is ``r:2 x i:E/2``
x, y   experts (``y`` a second copy for the top-k ranking); ``u`` capacity slots
v      vocabulary; ``n`` positions of the rotary / learned position tables
=====  ==========================================================

Attention is softmax over keys, causal for decoders (``mask=causal`` on the
score Einsum), in one of two forms: ``3pass`` (scores, max, exp, sum,
normalise, times V) or ``1pass`` (FuseMax's cascade: running max, denominator
and numerator over key blocks ``m1`` of ``block`` keys, as FlashAttention
computes it). A decode step attends over the cache (``CK``, ``CV``: ``kv_len
- new_tokens`` past entries) and the new tokens' own keys: the softmax is
split into the two parts and recombined (flash-decoding's combine), and the
new keys and values are appended to the cache by two copy Einsums
(``NK``, ``NV``; ``kind=kv_append``, in the cache's dtype). Rotary embedding (Su et al., 2021,
RoFormer) rotates the pairs ``(e, e + E/2)`` of Q and K as ``x cos + rot(x)
sin`` (the half-split layout of the released LLaMA code): the tables
``COS[r,i,n]`` and ``SIN[r,i,n]`` hold cos and the sign-folded sin
(``-sin`` for ``r = 0``, ``+sin`` for ``r = 1``) of position ``n``.

MoE (GShard-style, Lepikhin et al., 2021): router logits over ``x`` experts;
an expert is chosen when fewer than ``top_k`` experts have a larger logit;
gates are the softmax over the chosen logits (Mixtral, Jiang et al., 2024);
each expert takes at most ``C = ceil(capacity x tokens x top_k / experts)``
tokens of a group in token order (overflow tokens are dropped: they keep only
the residual); groups are the sequences in a prefill and the batch in a
decode step. Dispatch and combine are one-hot contractions over capacity
slots ``u``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from workloads.errors import WorkloadError
from workloads.library.text import _decl, _model, _norm, _out

ATTENTION_FORMS = ("3pass", "1pass")
FFN_KINDS = ("gelu", "relu", "swiglu", "moe")
NORMS = ("layernorm", "rmsnorm")
POSITIONS = ("pre", "post")


@dataclass(frozen=True)
class LayerSpec:
    """Dimensions and structure of one decoder (or encoder) layer."""

    d_model: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn_dim: int
    norm: str = "rmsnorm"
    norm_position: str = "pre"
    ffn: str = "swiglu"
    #: activation of the experts when ffn == "moe"
    expert_ffn: str = "swiglu"
    causal: bool = True
    rope: bool = True
    experts: int = 0
    top_k: int = 0
    capacity: float = 1.25
    attention: str = "3pass"
    block: int = 64

    @property
    def group(self) -> int:
        return self.heads // self.kv_heads


def _fail(workload: str, msg: str) -> WorkloadError:
    return WorkloadError(f"{workload}: {msg}")


def _choice(workload: str, key: str, value: str, allowed: tuple[str, ...]) -> str:
    v = str(value).strip().lower()
    if v not in allowed:
        raise _fail(workload, f"{key}={value!r}; expected one of {', '.join(allowed)}")
    return v


def _flag(workload: str, key: str, value: str, default: bool) -> bool:
    v = str(value).strip().lower()
    if v == "model":
        return default
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise _fail(workload, f"{key}={value!r}; expected model, 1 or 0")


def layer_spec(workload: str, model: str, **over: Any) -> tuple[str, LayerSpec, dict[str, Any]]:
    """(model key, LayerSpec, model table row) with ``over`` (0 / "model": the table's)."""
    key, m = _model(model)
    heads = int(over.get("heads") or m["heads"])
    act = str(m["activation"])
    ffn = str(over.get("ffn", "model"))
    ffn = ("moe" if int(m.get("experts", 0)) else act) if ffn == "model" else ffn
    experts = int(over.get("experts") or m.get("experts", 0) or 0)
    spec = LayerSpec(
        d_model=int(over.get("d_model") or m["d_model"]),
        heads=heads,
        kv_heads=int(over.get("kv_heads") or _default_kv_heads(m, heads)),
        head_dim=int(over.get("head_dim") or m["head_dim"]),
        ffn_dim=int(over.get("ffn_dim") or m["ffn_dim"]),
        norm=str(m["norm"]) if over.get("norm", "model") == "model" else str(over["norm"]),
        norm_position=str(m["norm_position"])
        if over.get("norm_position", "model") == "model"
        else str(over["norm_position"]),
        ffn=_choice(workload, "ffn", ffn, FFN_KINDS),
        expert_ffn=act if act != "moe" else "swiglu",
        causal=_flag(
            workload, "causal", str(over.get("causal", "model")), bool(m.get("causal", False))
        ),
        rope=_flag(workload, "rope", str(over.get("rope", "model")), m.get("positional") == "rope"),
        experts=experts,
        top_k=int(over.get("top_k") or m.get("top_k", 0) or 0),
        capacity=_float(workload, "capacity", over.get("capacity", "1.25")),
        attention=_choice(
            workload, "attention", str(over.get("attention", "3pass")), ATTENTION_FORMS
        ),
        block=int(over.get("block") or 64),
    )
    _check(workload, spec)
    return key, spec, m


def _default_kv_heads(m: dict[str, Any], heads: int) -> int:
    """The model's KV heads; with ``heads`` overridden, the model's group size kept if it divides."""
    group = int(m["heads"]) // int(m.get("kv_heads", m["heads"]))
    return heads // group if heads % group == 0 else heads


def _float(workload: str, key: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise _fail(workload, f"{key}={value!r}; expected a number") from None
    if not math.isfinite(v) or v <= 0:
        raise _fail(workload, f"{key}={value!r}; expected a positive number")
    return v


def _check(workload: str, s: LayerSpec) -> None:
    _choice(workload, "norm", s.norm, NORMS)
    _choice(workload, "norm_position", s.norm_position, POSITIONS)
    if s.heads % s.kv_heads:
        raise _fail(workload, f"kv_heads={s.kv_heads} must divide heads={s.heads}")
    if s.rope and s.head_dim % 2:
        raise _fail(workload, f"rotary embedding needs an even head_dim, got {s.head_dim}")
    if s.ffn == "moe":
        if s.experts < 1 or not 1 <= s.top_k <= s.experts:
            raise _fail(
                workload,
                f"an MoE FFN needs experts >= 1 and 1 <= top_k <= experts "
                f"(got experts={s.experts}, top_k={s.top_k})",
            )


# ------------------------------------------------------------------ pieces


class _Lines:
    """Declarations and Einsum lines of a cascade under construction."""

    def __init__(self, bits: int, layer: str) -> None:
        self.decls: list[str] = []
        self.body: list[str] = []
        self.bits = bits
        self.layer = layer

    def declare(self, name: str, dims: list[tuple[str, int]], bits: int | None = None) -> None:
        self.decls.append(_decl(name, dims, self.bits if bits is None else bits))

    def attrs(self, unit: str, bits: int | None = None, **extra: str) -> str:
        return _out(self.bits if bits is None else bits, unit_class=unit, layer=self.layer, **extra)

    def mm(self, line: str, **extra: str) -> None:
        self.body.append(line + self.attrs("2d", **extra))

    def op(self, line: str, bits: int | None = None, **extra: str) -> None:
        self.body.append(line + self.attrs("1d", bits, **extra))

    def norm(self, prefix: str, src: str, kind: str, d: int) -> str:
        self.declare(f"{prefix}G", [("d", d)])
        if kind == "layernorm":
            self.declare(f"{prefix}BETA", [("d", d)])
        lines, out = _norm(prefix, src, kind, d, self.bits, layer=self.layer)
        self.body += lines
        return out


def _head_ranks(s: LayerSpec) -> tuple[list[tuple[str, int]], str]:
    """Head-dim ranks of Q/K ([e] or [r, i] with rope) and their index text."""
    if s.rope:
        return [("r", 2), ("i", s.head_dim // 2)], "r,i"
    return [("e", s.head_dim)], "e"


def _rope(L: _Lines, pre: str, src: str, ranks: str, pos: str, off: int) -> str:
    """q cos + rot(q) sin for ``src[ranks]`` whose position rank is ``pos``."""
    other = ranks.replace("r,i", "1-r,i")
    at = f"{pos}+{off}" if off else pos
    L.op(f"{pre}C[{ranks}] = {src}[{ranks}] * COS[r,i,{at}]")
    L.op(f"{pre}R[{ranks}] = {src}[{other}] * SIN[r,i,{at}]")
    L.op(f"{pre}E[{ranks}] = {pre}C[{ranks}] + {pre}R[{ranks}]")
    return f"{pre}E"


def _qkv(
    L: _Lines, pre: str, s: LayerSpec, xn: str, key: str, off: int
) -> tuple[str, str, str, str]:
    """Q, K, V projections (+ rotary, scale); returns (QS, K, V, head-dim text)."""
    hr, hd = _head_ranks(s)
    d = s.d_model
    L.declare(f"{pre}WQ", [("d", d), ("h", s.kv_heads), ("g", s.group), *hr])
    L.declare(f"{pre}WK", [("d", d), ("h", s.kv_heads), *hr])
    L.declare(f"{pre}WV", [("d", d), ("h", s.kv_heads), ("f", s.head_dim)])
    L.mm(f"{pre}Q[b,h,g,{hd},p] = sum(d) {xn}[b,p,d] * {pre}WQ[d,h,g,{hd}]")
    L.mm(f"{pre}K[b,h,{hd},{key}] = sum(d) {xn}[b,{key},d] * {pre}WK[d,h,{hd}]")
    L.mm(f"{pre}V[b,h,f,{key}] = sum(d) {xn}[b,{key},d] * {pre}WV[d,h,f]")
    q, k = f"{pre}Q", f"{pre}K"
    if s.rope:
        q = _rope(L, f"{pre}Q", q, f"b,h,g,{hd},p", "p", off)
        k = _rope(L, f"{pre}K", k, f"b,h,{hd},{key}", key, off)
    L.op(f"{pre}QS[b,h,g,{hd},p] = {q}[b,h,g,{hd},p] * {1.0 / math.sqrt(s.head_dim)!r}")
    return f"{pre}QS", k, f"{pre}V", hd


def _mask(s: LayerSpec, key: str, offset: int | None = None) -> dict[str, str]:
    if not s.causal:
        return {}
    out = {"mask": "causal", "mask_key": key, "mask_query": "p"}
    if offset is not None:
        out["mask_offset"] = str(offset)
    return out


def _attention_prefill(
    L: _Lines, pre: str, s: LayerSpec, qkv: tuple[str, str, str, str], P: int
) -> str:
    """Self-attention over the P prompt positions (3-pass or 1-pass); returns AV."""
    a = pre
    q, k, v, hd = qkv
    if s.attention == "3pass":
        L.mm(
            f"{a}QK[b,h,g,m,p] = sum({hd}) {q}[b,h,g,{hd},p] * {k}[b,h,{hd},m]",
            **_mask(s, "m"),
        )
        L.op(f"{a}MX[b,h,g,p] = max(m) {a}QK[b,h,g,m,p]")
        L.op(f"{a}SN[b,h,g,m,p] = exp({a}QK[b,h,g,m,p] - {a}MX[b,h,g,p])")
        L.op(f"{a}SD[b,h,g,p] = sum(m) {a}SN[b,h,g,m,p]")
        L.op(f"{a}A[b,h,g,m,p] = {a}SN[b,h,g,m,p] / {a}SD[b,h,g,p]")
        L.mm(f"{a}AV[b,h,g,f,p] = sum(m) {a}A[b,h,g,m,p] * {v}[b,h,f,m]")
        return f"{a}AV"
    m0 = s.block
    m1 = P // m0
    km = f"m1*{m0}+m0"
    L.mm(
        f"{a}QK[b,h,g,m1,m0,p] = sum({hd}) {q}[b,h,g,{hd},p] * {k}[b,h,{hd},{km}]",
        **_mask(s, "m1.m0"),
    )
    L.mm(f"{a}LM[b,h,g,m1,p] = max(m0) {a}QK[b,h,g,m1,m0,p]")
    L.op(f"{a}RM[b,h,g,m1+1,p] = max({a}RM[b,h,g,m1,p], {a}LM[b,h,g,m1,p])")
    L.mm(f"{a}SLN[b,h,g,m1,m0,p] = exp({a}QK[b,h,g,m1,m0,p] - {a}RM[b,h,g,m1+1,p])")
    L.mm(f"{a}SLD[b,h,g,m1,p] = sum(m0) {a}SLN[b,h,g,m1,m0,p]")
    L.mm(f"{a}SLNV[b,h,g,f,m1,p] = sum(m0) {a}SLN[b,h,g,m1,m0,p] * {v}[b,h,f,{km}]")
    L.op(f"{a}PRM[b,h,g,m1,p] = exp({a}RM[b,h,g,m1,p] - {a}RM[b,h,g,m1+1,p])")
    L.op(f"{a}SPD[b,h,g,m1,p] = {a}RD[b,h,g,m1,p] * {a}PRM[b,h,g,m1,p]")
    L.op(f"{a}RD[b,h,g,m1+1,p] = {a}SLD[b,h,g,m1,p] + {a}SPD[b,h,g,m1,p]")
    L.op(f"{a}SPNV[b,h,g,f,m1,p] = {a}RNV[b,h,g,f,m1,p] * {a}PRM[b,h,g,m1,p]")
    L.op(f"{a}RNV[b,h,g,f,m1+1,p] = {a}SLNV[b,h,g,f,m1,p] + {a}SPNV[b,h,g,f,m1,p]")
    L.op(f"{a}AV[b,h,g,f,p] = {a}RNV[b,h,g,f,{m1},p] / {a}RD[b,h,g,{m1},p]")
    return f"{a}AV"


def _attention_decode(
    L: _Lines,
    pre: str,
    s: LayerSpec,
    qkv: tuple[str, str, str, str],
    B: int,
    P: int,
    past: int,
    kv_bits: int,
) -> str:
    """Attention of P new tokens over ``past`` cached entries plus themselves; returns AV."""
    a = pre
    q, k, v, hd = qkv
    hr, _ = _head_ranks(s)
    L.declare(f"{a}CK", [("b", B), ("h", s.kv_heads), *hr, ("c", past)], kv_bits)
    L.declare(f"{a}CV", [("b", B), ("h", s.kv_heads), ("f", s.head_dim), ("c", past)], kv_bits)
    L.op(f"{a}NK[b,h,{hd},t] = {k}[b,h,{hd},t]", bits=kv_bits, kind="kv_append")
    L.op(f"{a}NV[b,h,f,t] = {v}[b,h,f,t]", bits=kv_bits, kind="kv_append")
    L.mm(f"{a}SC[b,h,g,c,p] = sum({hd}) {q}[b,h,g,{hd},p] * {a}CK[b,h,{hd},c]")
    new_mask = _mask(s, "t", 0) if P > 1 else {}
    L.mm(f"{a}SW[b,h,g,t,p] = sum({hd}) {q}[b,h,g,{hd},p] * {a}NK[b,h,{hd},t]", **new_mask)
    L.op(f"{a}MC[b,h,g,p] = max(c) {a}SC[b,h,g,c,p]")
    L.op(f"{a}MW[b,h,g,p] = max(t) {a}SW[b,h,g,t,p]")
    L.op(f"{a}MX[b,h,g,p] = max({a}MC[b,h,g,p], {a}MW[b,h,g,p])")
    L.op(f"{a}EC[b,h,g,c,p] = exp({a}SC[b,h,g,c,p] - {a}MX[b,h,g,p])")
    L.op(f"{a}EW[b,h,g,t,p] = exp({a}SW[b,h,g,t,p] - {a}MX[b,h,g,p])")
    L.op(f"{a}DC[b,h,g,p] = sum(c) {a}EC[b,h,g,c,p]")
    L.op(f"{a}DW[b,h,g,p] = sum(t) {a}EW[b,h,g,t,p]")
    L.op(f"{a}DS[b,h,g,p] = {a}DC[b,h,g,p] + {a}DW[b,h,g,p]")
    L.mm(f"{a}OC[b,h,g,f,p] = sum(c) {a}EC[b,h,g,c,p] * {a}CV[b,h,f,c]")
    L.mm(f"{a}OW[b,h,g,f,p] = sum(t) {a}EW[b,h,g,t,p] * {a}NV[b,h,f,t]")
    L.op(f"{a}OS[b,h,g,f,p] = {a}OC[b,h,g,f,p] + {a}OW[b,h,g,f,p]")
    L.op(f"{a}AV[b,h,g,f,p] = {a}OS[b,h,g,f,p] / {a}DS[b,h,g,p]")
    return f"{a}AV"


def _dense_ffn(
    L: _Lines,
    pre: str,
    act: str,
    x: str,
    ranks: str,
    d: int,
    f: int,
    wr: tuple[str, int] | None = None,
) -> str:
    """up (and gate), activation, down over ``x[ranks,d]``; weights ``{pre}W1[d,s]``..."""
    w = f"{wr[0]}," if wr else ""
    wd = [wr] if wr else []
    L.declare(f"{pre}W1", [*wd, ("d", d), ("s", f)])
    if act == "swiglu":
        L.declare(f"{pre}W3", [*wd, ("d", d), ("s", f)])
    L.declare(f"{pre}W2", [*wd, ("s", f), ("d", d)])
    xa = f"{x}[{ranks},d]"
    if act == "swiglu":
        L.mm(f"{pre}FG[{ranks},s] = sum(d) {xa} * {pre}W1[{w}d,s]")
        L.mm(f"{pre}FU[{ranks},s] = sum(d) {xa} * {pre}W3[{w}d,s]")
        L.op(f"{pre}FS[{ranks},s] = silu({pre}FG[{ranks},s])")
        L.op(f"{pre}FA[{ranks},s] = {pre}FS[{ranks},s] * {pre}FU[{ranks},s]")
    else:
        L.mm(f"{pre}F1[{ranks},s] = sum(d) {xa} * {pre}W1[{w}d,s]")
        if act == "gelu":
            L.op(f"{pre}FA[{ranks},s] = gelu({pre}F1[{ranks},s])")
        else:
            L.op(f"{pre}FA[{ranks},s] = max({pre}F1[{ranks},s], 0.0)")
    L.mm(f"{pre}F2[{ranks},d] = sum(s) {pre}FA[{ranks},s] * {pre}W2[{w}s,d]")
    return f"{pre}F2"


def moe_capacity(s: LayerSpec, tokens_per_group: int) -> int:
    """Expert capacity per group: ceil(capacity x tokens x top_k / experts), at most the tokens."""
    c = math.ceil(s.capacity * tokens_per_group * s.top_k / s.experts - 1e-9)
    return max(1, min(tokens_per_group, c))


def _moe_ffn(L: _Lines, pre: str, s: LayerSpec, x: str, B: int, P: int) -> str:
    """Router, top-k with capacity, dispatch, experts, combine over ``x[b,p,d]``."""
    E, d = s.experts, s.d_model
    per_seq = P > 1  # groups: each sequence (prefill) or the whole batch (decode)
    C = moe_capacity(s, P if per_seq else B)
    carry, tok = ("b,p+1,x", "b,p,x") if per_seq else ("b+1,p,x", "b,p,x")
    grp = "b," if per_seq else ""
    L.declare(f"{pre}WR", [("d", d), ("x", E)])
    L.mm(f"{pre}RL[b,p,x] = sum(d) {x}[b,p,d] * {pre}WR[d,x]", moe="router")
    L.op(f"{pre}RK[b,p,x] = sum(y) lt({pre}RL[b,p,x], {pre}RL[b,p,y])", moe="route")
    L.op(f"{pre}SEL[b,p,x] = lt({pre}RK[b,p,x], {float(s.top_k)!r})", moe="route")
    L.op(f"{pre}RMX[b,p] = max(x) {pre}RL[b,p,x]", moe="route")
    L.op(f"{pre}REX[b,p,x] = exp({pre}RL[b,p,x] - {pre}RMX[b,p])", moe="route")
    L.op(f"{pre}RES[b,p,x] = {pre}REX[b,p,x] * {pre}SEL[b,p,x]", moe="route")
    L.op(f"{pre}RDN[b,p] = sum(x) {pre}RES[b,p,x]", moe="route")
    L.op(f"{pre}GATE[b,p,x] = {pre}RES[b,p,x] / {pre}RDN[b,p]", moe="route")
    L.op(f"{pre}CNT[{carry}] = {pre}CNT[{tok}] + {pre}SEL[{tok}]", moe="route")
    L.op(f"{pre}CAP[b,p,x] = lt({pre}CNT[{tok}], {float(C)!r})", moe="route")
    L.op(f"{pre}KEEP[b,p,x] = {pre}CAP[b,p,x] * {pre}SEL[b,p,x]", moe="route")
    L.op(f"{pre}SLOT[u+1] = {pre}SLOT[u] + 1.0", moe="route")
    L.op(f"{pre}OH[b,p,x,u] = eq({pre}CNT[{tok}], {pre}SLOT[u])", moe="route")
    L.op(f"{pre}DISP[b,p,x,u] = {pre}OH[b,p,x,u] * {pre}KEEP[b,p,x]", moe="route")
    L.op(f"{pre}COMB[b,p,x,u] = {pre}DISP[b,p,x,u] * {pre}GATE[b,p,x]", moe="route")
    red = "p" if per_seq else "b,p"
    L.mm(f"{pre}XE[{grp}x,u,d] = sum({red}) {pre}DISP[b,p,x,u] * {x}[b,p,d]", moe="dispatch")
    y = _expert_ffn(L, pre, s, f"{pre}XE", f"{grp}x,u")
    L.mm(f"{pre}MO[b,p,d] = sum(x,u) {pre}COMB[b,p,x,u] * {y}[{grp}x,u,d]", moe="combine")
    return f"{pre}MO"


def _expert_ffn(L: _Lines, pre: str, s: LayerSpec, x: str, ranks: str) -> str:
    n0 = len(L.body)
    out = _dense_ffn(L, pre, s.expert_ffn, x, ranks, s.d_model, s.ffn_dim, wr=("x", s.experts))
    # tag the expert Einsums for the GPU lowering (one kernel per expert in eager PyTorch)
    L.body[n0:] = [ln[:-1] + ", moe=expert}" for ln in L.body[n0:]]
    return out


def layer_lines(
    L: _Lines,
    pre: str,
    s: LayerSpec,
    x: str,
    y: str,
    B: int,
    P: int,
    *,
    past: int = 0,
    kv_bits: int = 16,
    pos_offset: int = 0,
) -> None:
    """One layer ``y[b,p,d] = layer(x[b,p,d])``: prefill (past == 0) or decode (past > 0)."""
    pre_norm = s.norm_position == "pre"
    att_in = L.norm(f"{pre}N1", x, s.norm, s.d_model) if pre_norm else x
    key = "t" if past else "m"
    qkv = _qkv(L, pre, s, att_in, key, pos_offset)
    if past:
        av = _attention_decode(L, pre, s, qkv, B, P, past, kv_bits)
    else:
        av = _attention_prefill(L, pre, s, qkv, P)
    L.declare(f"{pre}WO", [("h", s.kv_heads), ("g", s.group), ("f", s.head_dim), ("d", s.d_model)])
    L.mm(f"{pre}PR[b,p,d] = sum(h,g,f) {av}[b,h,g,f,p] * {pre}WO[h,g,f,d]")
    L.op(f"{pre}R1[b,p,d] = {x}[b,p,d] + {pre}PR[b,p,d]")
    if pre_norm:
        ffn_in, resid = L.norm(f"{pre}N2", f"{pre}R1", s.norm, s.d_model), f"{pre}R1"
    else:
        ffn_in = L.norm(f"{pre}N1", f"{pre}R1", s.norm, s.d_model)
        resid = ffn_in
    if s.ffn == "moe":
        f2 = _moe_ffn(L, pre, s, ffn_in, B, P)
    else:
        f2 = _dense_ffn(L, pre, s.ffn, ffn_in, "b,p", s.d_model, s.ffn_dim)
    if pre_norm:
        L.op(f"{y}[b,p,d] = {resid}[b,p,d] + {f2}[b,p,d]")
        return
    L.op(f"{pre}R2[b,p,d] = {resid}[b,p,d] + {f2}[b,p,d]")
    out = L.norm(f"{pre}N2", f"{pre}R2", s.norm, s.d_model)
    # the final norm writes the layer output
    L.body[-1] = L.body[-1].replace(f"{out}[b,p,d]", f"{y}[b,p,d]", 1)


def _rank_line(s: LayerSpec, B: int, P: int, past: int, n_pos: int) -> list[str]:
    """Sizes of the ranks no declared tensor carries (or whose declarations use 0)."""
    sizes = [("b", B), ("p", P)]
    sizes.append(("t", P) if past else ("m", P))
    if s.ffn == "moe":
        sizes.append(("y", s.experts))
    out = ["rank " + ", ".join(f"{r}:{v}" for r, v in sizes)]
    if s.attention == "1pass" and not past:
        out.append(f"split m -> m1:{P // s.block}, m0:{s.block}")
    return out


def _assemble(name: str, L: _Lines, s: LayerSpec, B: int, P: int, past: int, n_pos: int) -> str:
    hr, _ = _head_ranks(s)
    decls = list(L.decls)
    if s.rope:
        decls.append(_decl("COS", [*hr, ("n", n_pos)], L.bits))
        decls.append(_decl("SIN", [*hr, ("n", n_pos)], L.bits))
    if s.ffn == "moe":
        u = moe_capacity(s, P if P > 1 else B)
        decls.append(f"rank u:{u}")
    return "\n".join([f"cascade {name}", *decls, *_rank_line(s, B, P, past, n_pos), *L.body])


def _shape_checks(workload: str, s: LayerSpec, P: int, past: int) -> None:
    if s.attention == "1pass" and not past and P % s.block:
        raise _fail(
            workload, f"block={s.block} must divide the sequence length {P} (1-pass attention)"
        )
    if s.causal is False and past:
        raise _fail(workload, "a decode step needs a causal (decoder) model")


# ---------------------------------------------------------------- builders

#: workload name -> (builder, one-line description, parameter defaults);
#: ``workloads.library`` registers them
BUILDERS: dict[str, tuple[Any, str, dict[str, Any]]] = {}


def _register(name: str, doc: str, **defaults: Any):
    def deco(fn: Any) -> Any:
        BUILDERS[name] = (fn, doc, defaults)
        return fn

    return deco


_LAYER = {
    "model": "llama-7b",
    "batch": 1,
    "kv_heads": 0,
    "d_model": 0,
    "heads": 0,
    "head_dim": 0,
    "ffn_dim": 0,
    "experts": 0,
    "top_k": 0,
    "capacity": "1.25",
    "ffn": "model",
    "norm": "model",
    "norm_position": "model",
    "causal": "model",
    "rope": "model",
    "attention": "3pass",
    "block": 64,
}


def _spec_from(workload: str, params: dict[str, Any]) -> tuple[str, LayerSpec, dict[str, Any]]:
    keys = (
        "kv_heads", "d_model", "heads", "head_dim", "ffn_dim", "experts", "top_k", "capacity",
        "ffn", "norm", "norm_position", "causal", "rope", "attention", "block",
    )  # fmt: skip
    return layer_spec(workload, params["model"], **{k: params[k] for k in keys})


@_register(
    "decoder-layer",
    "one LLM layer over a prompt (prefill): norms, Q/K/V with GQA (kv_heads) and rotary, causal "
    "softmax attention (3pass or 1pass), output projection, GELU/SwiGLU/MoE FFN, residuals "
    "(models in models.yaml; 0 / 'model' take the table's value)",
    **_LAYER,
    seq=128,
)
def _decoder_layer(seq: int, bits: int, **params: Any) -> str:
    key, s, _ = _spec_from("decoder-layer", params)
    B, P = params["batch"], seq
    _shape_checks("decoder-layer", s, P, 0)
    L = _Lines(bits, "0")
    L.declare("X", [("b", B), ("p", P), ("d", s.d_model)])
    layer_lines(L, "", s, "X", "Y", B, P)
    return _assemble(f"decoder-layer-{key}", L, s, B, P, 0, P)


@_register(
    "decode-step",
    "one LLM layer for one decode step: new_tokens per sequence attend to a KV cache of kv_len "
    "keys (the cache's kv_len - new_tokens past entries plus the new ones, appended to the cache)",
    **_LAYER,
    kv_len=2048,
    new_tokens=1,
    kv_bits=16,
)
def _decode_step(kv_len: int, new_tokens: int, kv_bits: int, bits: int, **params: Any) -> str:
    key, s, _ = _spec_from("decode-step", params)
    B, P = params["batch"], new_tokens
    past = kv_len - P
    if past < 1:
        raise _fail("decode-step", f"kv_len={kv_len} must exceed new_tokens={P}")
    _shape_checks("decode-step", s, P, past)
    L = _Lines(bits, "0")
    L.declare("X", [("b", B), ("p", P), ("d", s.d_model)])
    layer_lines(L, "", s, "X", "Y", B, P, past=past, kv_bits=kv_bits, pos_offset=past)
    return _assemble(f"decode-step-{key}", L, s, B, P, past, kv_len)


@_register(
    "moe-ffn",
    "mixture-of-experts FFN over batch x seq tokens: router, top-k gates, capacity-limited "
    "dispatch, SwiGLU/GELU experts, combine",
    batch=1,
    seq=64,
    d_model=64,
    ffn_dim=128,
    experts=8,
    top_k=2,
    capacity="1.25",
    activation="swiglu",
)
def _moe(**p: Any) -> str:
    batch, seq, d_model, experts = p["batch"], p["seq"], p["d_model"], p["experts"]
    bits, ffn_dim, top_k, capacity, activation = (
        p[k] for k in ("bits", "ffn_dim", "top_k", "capacity", "activation")
    )
    act = _choice("moe-ffn", "activation", activation, ("gelu", "relu", "swiglu"))
    s = LayerSpec(
        d_model=d_model,
        heads=1,
        kv_heads=1,
        head_dim=2,
        ffn_dim=ffn_dim,
        ffn="moe",
        expert_ffn=act,
        experts=experts,
        top_k=top_k,
        capacity=_float("moe-ffn", "capacity", capacity),
    )
    _check("moe-ffn", s)
    L = _Lines(bits, "0")
    L.declare("X", [("b", batch), ("p", seq), ("d", d_model)])
    out = _moe_ffn(L, "", s, "X", batch, seq)
    L.body[-1] = L.body[-1].replace(f"{out}[b,p,d]", "Y[b,p,d]", 1)
    u = moe_capacity(s, seq if seq > 1 else batch)
    return "\n".join(["cascade moe-ffn", *L.decls, f"rank y:{experts}, u:{u}", *L.body])


@_register(
    "llm",
    "a whole LLM for one prefill (phase=prefill, a prompt of seq tokens) or one decode step "
    "(phase=decode, a KV cache of kv_len keys): embedding, layers, final norm, LM head "
    "(logits of the last position); 0 takes the model's layers, widths and vocabulary",
    model="llama-7b",
    phase="prefill",
    batch=1,
    seq=512,
    kv_len=2048,
    new_tokens=1,
    layers=0,
    kv_bits=16,
    kv_heads=0,
    capacity="1.25",
    attention="3pass",
    block=64,
    d_model=0,
    heads=0,
    head_dim=0,
    ffn_dim=0,
    vocab=0,
)
def _llm(**p: Any) -> str:
    model, phase, batch, seq, kv_len, new_tokens = (
        p[k] for k in ("model", "phase", "batch", "seq", "kv_len", "new_tokens")
    )
    layers, kv_bits, kv_heads, capacity, attention, block, bits = (
        p[k] for k in ("layers", "kv_bits", "kv_heads", "capacity", "attention", "block", "bits")
    )
    ph = _choice("llm", "phase", phase, ("prefill", "decode"))
    over = {**{k: v for k, v in _LAYER.items() if k != "model"}, "kv_heads": kv_heads}
    over.update(capacity=capacity, attention=attention, block=block)
    over.update({k: p[k] for k in ("d_model", "heads", "head_dim", "ffn_dim")})
    key, s, m = layer_spec("llm", model, **over)
    if "layers" not in m or "vocab" not in m:
        raise _fail("llm", f"model {key} has no layers/vocab in models.yaml")
    n_layers = layers or int(m["layers"])
    V = p["vocab"] or int(m["vocab"])
    decode = ph == "decode"
    B = batch
    P = new_tokens if decode else seq
    past = kv_len - P if decode else 0
    if decode and past < 1:
        raise _fail("llm", f"kv_len={kv_len} must exceed new_tokens={P}")
    _shape_checks("llm", s, P, past)
    n_pos = kv_len if decode else P
    D = s.d_model
    L = _Lines(bits, "embed")
    L.declare("TOK", [("b", B), ("p", P), ("v", V)])
    L.declare("EMB", [("v", V), ("d", D)])
    L.mm("X0[b,p,d] = sum(v) TOK[b,p,v] * EMB[v,d]", kind="embedding")
    x = "X0"
    if m.get("positional") == "learned":
        L.declare("POS", [("n", n_pos), ("d", D)])
        at = f"p+{past}" if past else "p"
        L.op(f"XP[b,p,d] = X0[b,p,d] + POS[{at},d]")
        x = "XP"
    for i in range(n_layers):
        L.layer = str(i)
        y = f"X{i + 1}"
        layer_lines(L, f"L{i}_", s, x, y, B, P, past=past, kv_bits=kv_bits, pos_offset=past)
        x = y
    L.layer = "head"
    xf = L.norm("NF", x, s.norm, D) if s.norm_position == "pre" else x
    L.declare("WLM", [("d", D), ("v", V)])
    L.mm(f"LOGITS[b,v] = sum(d) {xf}[b,{P - 1},d] * WLM[d,v]")
    lines = _assemble(f"llm-{key}-{ph}", L, s, B, P, past, n_pos).split("\n")
    meta = (
        f"llm_model={key}, llm_phase={ph}, llm_batch={B}, llm_tokens={P}, "
        f"llm_kv_len={kv_len if decode else P}, llm_layers={n_layers}"
    )
    # the model's description rides on the embedding Einsum (the LLM report reads it)
    for j, ln in enumerate(lines):
        if ln.startswith("X0[b,p,d] = "):
            lines[j] = ln[:-1] + f", {meta}}}"
    return "\n".join(lines)

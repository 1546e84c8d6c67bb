"""The workload library: real workloads as Einsum cascades, built by keyword.

``build("gemm", M=128, N=256, K=64)`` returns a validated :class:`Cascade`.
Every builder writes the cascade in the text format and parses it, so each
library workload is also a worked example of the format (``einsim workload
show NAME`` prints it). Rank and tensor names are part of the interface:

* gemm ``C[m,n] = A[m,k] * B[k,n]``; bmm ``C[b,m,n] = A[b,m,k] * B[b,k,n]``
* conv2d ``O[n,k,p,q] = I[n,c,p*stride+r*dil,q*stride+s*dil] * W[k,c,r,s]``;
  with groups > 1, ``O[n,g,k,p,q] = I[n,g*Cg+c,..] * W[g,k,c,r,s]``
* attention ``Q[b,h,e,p] K[b,h,e,m] V[b,h,f,m]`` -> ``AV[b,h,f,p]``; the
  1-pass cascade uses FuseMax's Einsum names with ``m -> m1, m0``.

Model dimensions for ``transformer-layer`` are in ``models.yaml`` (sources cited there).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workloads.errors import WorkloadError
from workloads.ir import MAX_EINSUMS, MAX_SIZE, Cascade
from workloads.library.text import DATA as _DATA  # noqa: F401 (the models.yaml folder)
from workloads.library.text import _decl, _model, _norm, _out, load_models

__all__ = ["build", "build_text", "describe", "list_workloads", "load_models", "parameters"]


@dataclass(frozen=True)
class _Workload:
    name: str
    builder: Callable[..., str]
    defaults: dict[str, Any]
    doc: str


_REGISTRY: dict[str, _Workload] = {}


def _register(name: str, doc: str, **defaults: Any):
    def deco(fn: Callable[..., str]) -> Callable[..., str]:
        _REGISTRY[name] = _Workload(name, fn, {**defaults, "bits": 16}, doc)
        return fn

    return deco


# ------------------------------------------------------------------ public


def list_workloads() -> list[str]:
    """Names of the library workloads."""
    return list(_REGISTRY)


def _get(name: str) -> _Workload:
    if name not in _REGISTRY:
        raise WorkloadError(f"unknown workload {name!r}; expected one of: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def parameters(name: str) -> dict[str, Any]:
    """The workload's parameters and their defaults."""
    return dict(_get(name).defaults)


def describe(name: str) -> str:
    """One line saying what the workload is."""
    return _get(name).doc


def _coerce(workload: str, key: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool) or not isinstance(default, int):
        return str(value)
    if isinstance(value, bool):
        raise WorkloadError(f"{workload}: parameter {key}={value!r}; expected a positive integer")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise WorkloadError(
                f"{workload}: parameter {key}={value!r}; expected a positive integer"
            ) from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    lo = 0 if default == 0 else 1  # 0-defaults mean "take it from the model table"
    if not isinstance(value, int) or value < lo or value > MAX_SIZE:
        want = "a non-negative" if lo == 0 else "a positive"
        shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:40]}..."
        raise WorkloadError(f"{workload}: parameter {key}={shown}; expected {want} integer <= 2^48")
    return value


def _resolve(name: str, params: dict[str, Any]) -> tuple[_Workload, dict[str, Any]]:
    w = _get(name)
    unknown = [k for k in params if k not in w.defaults]
    if unknown:
        raise WorkloadError(
            f"{name}: unknown parameter {unknown[0]!r}; expected one of: {', '.join(w.defaults)}"
        )
    merged = dict(w.defaults)
    for k, v in params.items():
        merged[k] = _coerce(name, k, v, w.defaults[k])
    if merged["bits"] > 1024:
        raise WorkloadError(f"{name}: bits={merged['bits']}; expected 1..1024")
    return w, merged


def build_text(name: str, **params: Any) -> str:
    """The cascade text the library generates for ``name``."""
    w, merged = _resolve(name, params)
    return w.builder(**merged)


def build(name: str, **params: Any) -> Cascade:
    """Build library workload ``name``; unknown names or parameters raise WorkloadError."""
    from workloads.parser import parse_cascade

    return parse_cascade(build_text(name, **params), file=f"<library:{name}>")


# ----------------------------------------------------------------- helpers


def _conv_size(workload: str, size: int, r: int, stride: int, dil: int, what: str) -> int:
    span = dil * (r - 1) + 1
    if size < span:
        raise WorkloadError(
            f"{workload}: input {what}={size} is smaller than the dilated filter ({span}); expected {what} >= {span}"
        )
    return (size - span) // stride + 1


# ------------------------------------------------------------------ GEMMs


@_register("gemm", "matrix multiply C[m,n] = A[m,k] * B[k,n]", M=64, N=64, K=64)
def _gemm(M: int, N: int, K: int, bits: int) -> str:
    return "\n".join(
        [
            "cascade gemm",
            _decl("A", [("m", M), ("k", K)], bits),
            _decl("B", [("k", K), ("n", N)], bits),
            "C[m,n] = sum(k) A[m,k] * B[k,n]" + _out(bits, unit_class="2d"),
        ]
    )


@_register("bmm", "batched matrix multiply C[b,m,n] = A[b,m,k] * B[b,k,n]", B=4, M=64, N=64, K=64)
def _bmm(B: int, M: int, N: int, K: int, bits: int) -> str:
    return "\n".join(
        [
            "cascade bmm",
            _decl("A", [("b", B), ("m", M), ("k", K)], bits),
            _decl("B", [("b", B), ("k", K), ("n", N)], bits),
            "C[b,m,n] = sum(k) A[b,m,k] * B[b,k,n]" + _out(bits, unit_class="2d"),
        ]
    )


@_register(
    "mlp",
    "multi-layer perceptron: LAYERS linear layers (bias, ReLU between them), batch B",
    B=32,
    IN=256,
    HIDDEN=512,
    OUT=10,
    LAYERS=2,
)
def _mlp(B: int, IN: int, HIDDEN: int, OUT: int, LAYERS: int, bits: int) -> str:
    if 3 * LAYERS - 1 > MAX_EINSUMS:  # Z, ZB, H per layer (no H after the last)
        raise WorkloadError(
            f"mlp: LAYERS={LAYERS} gives {3 * LAYERS - 1:,} Einsums; expected at most "
            f"{MAX_EINSUMS:,} (LAYERS <= {(MAX_EINSUMS + 1) // 3:,})"
        )
    dims = [IN] + [HIDDEN] * (LAYERS - 1) + [OUT]
    lines = ["cascade mlp", _decl("X", [("b", B), ("d0", IN)], bits)]
    for i in range(1, LAYERS + 1):
        lines.append(_decl(f"W{i}", [(f"d{i - 1}", dims[i - 1]), (f"d{i}", dims[i])], bits))
        lines.append(_decl(f"BIAS{i}", [(f"d{i}", dims[i])], bits))
    src = "X"
    for i in range(1, LAYERS + 1):
        a, o = f"d{i - 1}", f"d{i}"
        lines.append(
            f"Z{i}[b,{o}] = sum({a}) {src}[b,{a}] * W{i}[{a},{o}]" + _out(bits, unit_class="2d")
        )
        last = i == LAYERS
        zb = "Y" if last else f"ZB{i}"
        lines.append(f"{zb}[b,{o}] = Z{i}[b,{o}] + BIAS{i}[{o}]" + _out(bits, unit_class="1d"))
        if not last:
            lines.append(f"H{i}[b,{o}] = max(ZB{i}[b,{o}], 0.0)" + _out(bits, unit_class="1d"))
            src = f"H{i}"
    return "\n".join(lines)


# ------------------------------------------------------------ convolutions


@_register(
    "conv2d",
    "2D convolution, no padding (H, W are the padded input size), with stride, dilation and groups",
    N=1,
    C=16,
    H=18,
    W=18,
    K=32,
    R=3,
    S=3,
    stride=1,
    dilation=1,
    groups=1,
)
def _conv2d(
    N: int,
    C: int,
    H: int,
    W: int,
    K: int,
    R: int,
    S: int,
    stride: int,
    dilation: int,
    groups: int,
    bits: int,
) -> str:
    P = _conv_size("conv2d", H, R, stride, dilation, "H")
    Q = _conv_size("conv2d", W, S, stride, dilation, "W")
    st, dl = stride, dilation
    if groups == 1:
        return "\n".join(
            [
                "cascade conv2d",
                _decl("I", [("n", N), ("c", C), ("h", H), ("w", W)], bits),
                _decl("W", [("k", K), ("c", C), ("r", R), ("s", S)], bits),
                f"rank p:{P}, q:{Q}",
                f"O[n,k,p,q] = sum(c,r,s) I[n, c, p*{st}+r*{dl}, q*{st}+s*{dl}] * W[k,c,r,s]"
                + _out(bits, unit_class="2d"),
            ]
        )
    if C % groups or K % groups:
        raise WorkloadError(f"conv2d: groups={groups} must divide C={C} and K={K}")
    Cg, Kg = C // groups, K // groups
    return "\n".join(
        [
            "cascade conv2d",
            _decl("I", [("n", N), ("gc", C), ("h", H), ("w", W)], bits),
            _decl("W", [("g", groups), ("k", Kg), ("c", Cg), ("r", R), ("s", S)], bits),
            f"rank p:{P}, q:{Q}",
            f"O[n,g,k,p,q] = sum(c,r,s) I[n, g*{Cg}+c, p*{st}+r*{dl}, q*{st}+s*{dl}] * W[g,k,c,r,s]"
            + _out(bits, unit_class="2d"),
        ]
    )


@_register(
    "depthwise_conv2d",
    "depthwise 2D convolution (one R x S filter per channel), no padding",
    N=1,
    C=16,
    H=18,
    W=18,
    R=3,
    S=3,
    stride=1,
    dilation=1,
)
def _depthwise(
    N: int, C: int, H: int, W: int, R: int, S: int, stride: int, dilation: int, bits: int
) -> str:
    P = _conv_size("depthwise_conv2d", H, R, stride, dilation, "H")
    Q = _conv_size("depthwise_conv2d", W, S, stride, dilation, "W")
    st, dl = stride, dilation
    return "\n".join(
        [
            "cascade depthwise_conv2d",
            _decl("I", [("n", N), ("c", C), ("h", H), ("w", W)], bits),
            _decl("W", [("c", C), ("r", R), ("s", S)], bits),
            f"rank p:{P}, q:{Q}",
            f"O[n,c,p,q] = sum(r,s) I[n, c, p*{st}+r*{dl}, q*{st}+s*{dl}] * W[c,r,s]"
            + _out(bits, unit_class="2d"),
        ]
    )


# --------------------------------------------------------------- attention

_ATT = {"B": 1, "H": 2, "E": 64, "F": 64, "M": 256, "P": 256}


def _att_decls(
    B: int, H: int, E: int, F: int, M: int, P: int, bits: int, kv: str = "m"
) -> list[str]:
    return [
        _decl("Q", [("b", B), ("h", H), ("e", E), ("p", P)], bits),
        _decl("K", [("b", B), ("h", H), ("e", E), (kv, M)], bits),
        _decl("V", [("b", B), ("h", H), ("f", F), (kv, M)], bits),
    ]


def _three_pass(bits: int, q: str = "Q", k: str = "K", v: str = "V") -> list[str]:
    o2, o1 = _out(bits, unit_class="2d"), _out(bits, unit_class="1d")
    return [
        f"QK[b,h,m,p] = sum(e) {q}[b,h,e,p] * {k}[b,h,e,m]" + o2,
        "MX[b,h,p] = max(m) QK[b,h,m,p]" + o1,
        "SN[b,h,m,p] = exp(QK[b,h,m,p] - MX[b,h,p])" + o1,
        "SD[b,h,p] = sum(m) SN[b,h,m,p]" + o1,
        "A[b,h,m,p] = SN[b,h,m,p] / SD[b,h,p]" + o1,
        f"AV[b,h,f,p] = sum(m) A[b,h,m,p] * {v}[b,h,f,m]" + o2,
    ]


def _two_pass(bits: int) -> list[str]:
    o2, o1 = _out(bits, unit_class="2d"), _out(bits, unit_class="1d")
    return [
        "QK[b,h,m,p] = sum(e) Q[b,h,e,p] * K[b,h,e,m]" + o2,
        "MX[b,h,p] = max(m) QK[b,h,m,p]" + o1,
        "SN[b,h,m,p] = exp(QK[b,h,m,p] - MX[b,h,p])" + o1,
        "SD[b,h,p] = sum(m) SN[b,h,m,p]" + o1,
        "SNV[b,h,f,p] = sum(m) SN[b,h,m,p] * V[b,h,f,m]" + o2,
        "AV[b,h,f,p] = SNV[b,h,f,p] / SD[b,h,p]" + o1,
    ]


def _softmax_attention(name: str, passes: Callable[[int], list[str]]) -> Callable[..., str]:
    """The builder of cascade ``name``: Q, K and V, then the Einsums of ``passes``."""

    def build(B: int, H: int, E: int, F: int, M: int, P: int, bits: int) -> str:
        return "\n".join([f"cascade {name}", *_att_decls(B, H, E, F, M, P, bits), *passes(bits)])

    return build


for _name, _doc, _passes in (
    (
        "attention-3pass",
        "softmax attention, stable softmax in 3 passes over M (FuseMax Cascade 2)",
        _three_pass,
    ),
    (
        "attention-2pass",
        "softmax attention in 2 passes over M: max first, then exp-sum and numerator x V (FuseMax Cascade 3)",
        _two_pass,
    ),
):
    _register(_name, _doc, **_ATT)(_softmax_attention(_name, _passes))


@_register(
    "attention-1pass",
    "FuseMax's 1-pass attention: M split into M1 x M0, running max/denominator/numerator "
    "(FuseMax Cascade 5); causal=1 masks keys after each query (bottom-right aligned)",
    **_ATT,
    M0=64,
    causal=0,
)
def _attention1(
    B: int, H: int, E: int, F: int, M: int, P: int, M0: int, causal: int, bits: int
) -> str:
    if M % M0:
        raise WorkloadError(f"attention-1pass: M0={M0} must divide M={M}")
    if causal not in (0, 1):
        raise WorkloadError(f"attention-1pass: causal={causal}; expected 0 or 1")
    mask = {"mask": "causal", "mask_key": "m1.m0", "mask_query": "p"} if causal else {}
    M1 = M // M0
    o2, o1 = (lambda: _out(bits, unit_class="2d")), (lambda: _out(bits, unit_class="1d"))
    k = f"m1*{M0}+m0"
    # FuseMax (Nayak et al., MICRO 2024), Cascade 5; binding of each Einsum to
    # the 2D or 1D array as in docs/references.md.
    return "\n".join(
        [
            "cascade attention-1pass",
            *_att_decls(B, H, E, F, M, P, bits),
            f"split m -> m1:{M1}, m0:{M0}",
            f"QK[b,h,m1,m0,p] = sum(e) Q[b,h,e,p] * K[b,h,e,{k}]"
            + _out(bits, unit_class="2d", **mask),
            "LM[b,h,m1,p] = max(m0) QK[b,h,m1,m0,p]" + o2(),
            "RM[b,h,m1+1,p] = max(RM[b,h,m1,p], LM[b,h,m1,p])" + o1(),
            "SLN[b,h,m1,m0,p] = exp(QK[b,h,m1,m0,p] - RM[b,h,m1+1,p])" + o2(),
            "SLD[b,h,m1,p] = sum(m0) SLN[b,h,m1,m0,p]" + o2(),
            f"SLNV[b,h,f,m1,p] = sum(m0) SLN[b,h,m1,m0,p] * V[b,h,f,{k}]" + o2(),
            "PRM[b,h,m1,p] = exp(RM[b,h,m1,p] - RM[b,h,m1+1,p])" + o1(),
            "SPD[b,h,m1,p] = RD[b,h,m1,p] * PRM[b,h,m1,p]" + o1(),
            "RD[b,h,m1+1,p] = SLD[b,h,m1,p] + SPD[b,h,m1,p]" + o1(),
            "SPNV[b,h,f,m1,p] = RNV[b,h,f,m1,p] * PRM[b,h,m1,p]" + o1(),
            "RNV[b,h,f,m1+1,p] = SLNV[b,h,f,m1,p] + SPNV[b,h,f,m1,p]" + o1(),
            f"AV[b,h,f,p] = RNV[b,h,f,{M1},p] / RD[b,h,{M1},p]" + o1(),
        ]
    )


@_register(
    "decode-attention",
    "decode-step attention: P new queries (default 1) against an M-entry KV cache, 2-pass softmax",
    B=1,
    H=8,
    E=64,
    F=64,
    M=1024,
    P=1,
)
def _decode(B: int, H: int, E: int, F: int, M: int, P: int, bits: int) -> str:
    return "\n".join(
        ["cascade decode-attention", *_att_decls(B, H, E, F, M, P, bits), *_two_pass(bits)]
    )


# ----------------------------------------------------------- selective scan


@_register(
    "selective-scan",
    "Mamba selective scan: h[l+1] = exp(dt*A) h[l] + dt*B*x, y = C.h + D*x (Gu & Dao 2023, Alg. 2)",
    B=1,
    L=64,
    D=16,
    N=8,
)
def _scan(B: int, L: int, D: int, N: int, bits: int) -> str:
    o = _out(bits, unit_class="1d")
    return "\n".join(
        [
            "cascade selective-scan",
            _decl("X", [("b", B), ("d", D), ("l", L)], bits),
            _decl("DT", [("b", B), ("d", D), ("l", L)], bits),
            _decl("A", [("d", D), ("n", N)], bits),
            _decl("BM", [("b", B), ("n", N), ("l", L)], bits),
            _decl("CM", [("b", B), ("n", N), ("l", L)], bits),
            _decl("DS", [("d", D)], bits),
            "DA[b,d,n,l] = DT[b,d,l] * A[d,n]" + o,
            "EA[b,d,n,l] = exp(DA[b,d,n,l])" + o,
            "DX[b,d,l] = DT[b,d,l] * X[b,d,l]" + o,
            "DBX[b,d,n,l] = DX[b,d,l] * BM[b,n,l]" + o,
            "SH[b,d,n,l] = EA[b,d,n,l] * HS[b,d,n,l]" + o,
            "HS[b,d,n,l+1] = SH[b,d,n,l] + DBX[b,d,n,l]" + o,
            "YS[b,d,l] = sum(n) HS[b,d,n,l+1] * CM[b,n,l]" + o,
            "SK[b,d,l] = X[b,d,l] * DS[d]" + o,
            "Y[b,d,l] = YS[b,d,l] + SK[b,d,l]" + o,
        ]
    )


# --------------------------------------------------------- transformer layer


@_register(
    "transformer-layer",
    "one transformer layer: norms, QKV, 3-pass softmax attention, projection, FFN, residuals "
    "(models in models.yaml; d_model/heads/head_dim/ffn_dim override them when >= 1)",
    model="bert",
    batch=1,
    seq=128,
    d_model=0,
    heads=0,
    head_dim=0,
    ffn_dim=0,
)
def _transformer(
    model: str,
    batch: int,
    seq: int,
    d_model: int,
    heads: int,
    head_dim: int,
    ffn_dim: int,
    bits: int,
) -> str:
    key, m = _model(model)
    D = d_model or int(m["d_model"])
    H = heads or int(m["heads"])
    E = head_dim or int(m["head_dim"])
    S = ffn_dim or int(m["ffn_dim"])
    norm, pos, act = m["norm"], m["norm_position"], m["activation"]
    B, P = batch, seq
    o2, o1 = _out(bits, unit_class="2d"), _out(bits, unit_class="1d")
    lines = [f"cascade transformer-layer-{key}"]
    lines.append(_decl("X", [("b", B), ("p", P), ("d", D)], bits))
    for i in (1, 2):
        lines.append(_decl(f"N{i}G", [("d", D)], bits))
        if norm == "layernorm":
            lines.append(_decl(f"N{i}BETA", [("d", D)], bits))
    lines += [
        _decl("WQ", [("d", D), ("h", H), ("e", E)], bits),
        _decl("WK", [("d", D), ("h", H), ("e", E)], bits),
        _decl("WV", [("d", D), ("h", H), ("f", E)], bits),
        _decl("WO", [("h", H), ("f", E), ("d", D)], bits),
        _decl("W1", [("d", D), ("s", S)], bits),
    ]
    if act == "swiglu":
        lines.append(_decl("W3", [("d", D), ("s", S)], bits))
    lines.append(_decl("W2", [("s", S), ("d", D)], bits))
    lines.append(f"rank m:{P}")

    body: list[str] = []
    if pos == "pre":
        nl, att_in = _norm("N1", "X", norm, D, bits)
        body += nl
    else:
        att_in = "X"
    body += [
        f"Q[b,h,e,p] = sum(d) {att_in}[b,p,d] * WQ[d,h,e]" + o2,
        f"K[b,h,e,m] = sum(d) {att_in}[b,m,d] * WK[d,h,e]" + o2,
        f"V[b,h,f,m] = sum(d) {att_in}[b,m,d] * WV[d,h,f]" + o2,
        f"QS[b,h,e,p] = Q[b,h,e,p] * {1.0 / math.sqrt(E)!r}" + o1,
        *_three_pass(bits, q="QS"),
        "PR[b,p,d] = sum(h,f) AV[b,h,f,p] * WO[h,f,d]" + o2,
        "R1[b,p,d] = X[b,p,d] + PR[b,p,d]" + o1,
    ]
    if pos == "pre":
        nl, ffn_in = _norm("N2", "R1", norm, D, bits)
        body += nl
        resid = "R1"
    else:
        nl, ffn_in = _norm("N1", "R1", norm, D, bits)
        body += nl
        resid = ffn_in
    x = f"{ffn_in}[b,p,d]"
    if act == "swiglu":
        body += [
            f"FG[b,p,s] = sum(d) {x} * W1[d,s]" + o2,
            f"FU[b,p,s] = sum(d) {x} * W3[d,s]" + o2,
            "FS[b,p,s] = silu(FG[b,p,s])" + o1,
            "FA[b,p,s] = FS[b,p,s] * FU[b,p,s]" + o1,
        ]
    else:
        body.append(f"F1[b,p,s] = sum(d) {x} * W1[d,s]" + o2)
        if act == "relu":
            body.append("FA[b,p,s] = max(F1[b,p,s], 0.0)" + o1)
        elif act == "gelu":
            body.append("FA[b,p,s] = gelu(F1[b,p,s])" + o1)
        else:  # pragma: no cover - models.yaml is checked by the tests
            raise WorkloadError(f"transformer-layer: unknown activation {act!r} for {key}")
    body.append("F2[b,p,d] = sum(s) FA[b,p,s] * W2[s,d]" + o2)
    if pos == "pre":
        body.append(f"Y[b,p,d] = {resid}[b,p,d] + F2[b,p,d]" + o1)
    else:
        body.append(f"R2[b,p,d] = {resid}[b,p,d] + F2[b,p,d]" + o1)
        nl, _ = _norm("N2", "R2", norm, D, bits)
        # the final norm writes the layer output Y
        nl[-1] = nl[-1].replace("N2Y[b,p,d]", "Y[b,p,d]", 1)
        body += nl
    return "\n".join(lines + body)


# the LLM workloads (decoder layers, decode steps, MoE, whole models)
from workloads.library import llm  # noqa: E402

for _name, (_fn, _doc, _defaults) in llm.BUILDERS.items():
    _register(_name, _doc, **_defaults)(_fn)

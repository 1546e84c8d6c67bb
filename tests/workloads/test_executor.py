"""The reference executor against independent numpy computations.

Each library workload is executed from its IR and compared with a computation
written directly in numpy (plain softmax attention, a direct convolution loop,
a plain selective-scan loop, a hand-written transformer layer).
"""

from __future__ import annotations

import numpy as np
import pytest

from workloads.errors import WorkloadError
from workloads.executor import execute
from workloads.library import build, list_workloads
from workloads.parser import parse_cascade


def softmax_attention(Q: np.ndarray, K: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Plain softmax attention: Q[b,h,e,p], K[b,h,e,m], V[b,h,f,m] -> AV[b,h,f,p]."""
    S = np.einsum("bhep,bhem->bhpm", Q, K)
    P = np.exp(S - S.max(axis=-1, keepdims=True))
    P /= P.sum(axis=-1, keepdims=True)
    return np.einsum("bhpm,bhfm->bhfp", P, V)


@pytest.mark.parametrize(
    "name", ["attention-3pass", "attention-2pass", "attention-1pass", "decode-attention"]
)
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_attention_matches_softmax(name: str, scale: float) -> None:
    params = {"B": 2, "H": 3, "E": 5, "F": 4, "M": 12, "P": 7}
    if name == "attention-1pass":
        params["M0"] = 3
    if name == "decode-attention":
        params["P"] = 1
    c = build(name, **params)
    rng = np.random.default_rng(1)
    ins = {n: rng.standard_normal(c.tensor(n).shape) * scale for n in c.inputs}
    out = execute(c, ins)
    ref = softmax_attention(ins["Q"], ins["K"], ins["V"])
    np.testing.assert_allclose(out["AV"], ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    assert np.abs(out["AV"] - ref).max() < 1e-9 * max(1.0, np.abs(ref).max())


def test_attention_1pass_m0_equal_m_and_one() -> None:
    for m0 in (1, 12):
        c = build("attention-1pass", B=1, H=1, E=3, F=2, M=12, P=4, M0=m0)
        out = execute(c, seed=3)
        ref = softmax_attention(out["Q"], out["K"], out["V"])
        np.testing.assert_allclose(out["AV"], ref, rtol=1e-9, atol=1e-12)


def direct_conv(img: np.ndarray, W: np.ndarray, stride: int, dil: int, groups: int) -> np.ndarray:
    """A direct convolution loop (cross-correlation, no padding), NCHW / KCRS."""
    N, C, H, Wd = img.shape
    K, Cg, R, S = W.shape
    Kg = K // groups
    P = (H - dil * (R - 1) - 1) // stride + 1
    Q = (Wd - dil * (S - 1) - 1) // stride + 1
    out = np.zeros((N, K, P, Q))
    for n in range(N):
        for k in range(K):
            g = k // Kg
            for p in range(P):
                for q in range(Q):
                    acc = 0.0
                    for c in range(Cg):
                        for r in range(R):
                            for s in range(S):
                                acc += (
                                    img[n, g * Cg + c, p * stride + r * dil, q * stride + s * dil]
                                    * W[k, c, r, s]
                                )
                    out[n, k, p, q] = acc
    return out


@pytest.mark.parametrize(
    ("stride", "dil", "groups"), [(1, 1, 1), (2, 1, 1), (1, 2, 1), (2, 3, 1), (1, 1, 2), (2, 2, 3)]
)
def test_conv2d_matches_direct_loop(stride: int, dil: int, groups: int) -> None:
    N, C, H, W, K, R, S = 2, 6, 11, 10, 6, 3, 2
    c = build(
        "conv2d", N=N, C=C, H=H, W=W, K=K, R=R, S=S, stride=stride, dilation=dil, groups=groups
    )
    rng = np.random.default_rng(2)
    img = rng.standard_normal((N, C, H, W))
    wk = rng.standard_normal((K, C // groups, R, S))
    if groups == 1:
        out = execute(c, {"I": img, "W": wk})["O"]
    else:
        out = execute(c, {"I": img, "W": wk.reshape(groups, K // groups, C // groups, R, S)})["O"]
        out = out.reshape(N, K, *out.shape[3:])
    ref = direct_conv(img, wk, stride, dil, groups)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("stride", "dil"), [(1, 1), (2, 2)])
def test_depthwise_matches_direct_loop(stride: int, dil: int) -> None:
    N, C, H, W, R, S = 1, 4, 9, 9, 3, 3
    c = build("depthwise_conv2d", N=N, C=C, H=H, W=W, R=R, S=S, stride=stride, dilation=dil)
    out = execute(c, seed=5)
    ref = direct_conv(out["I"], out["W"].reshape(C, 1, R, S), stride, dil, groups=C)
    np.testing.assert_allclose(out["O"], ref, rtol=1e-10, atol=1e-10)


def test_selective_scan_matches_plain_loop() -> None:
    B, L, D, N = 2, 9, 3, 4
    c = build("selective-scan", B=B, L=L, D=D, N=N)
    rng = np.random.default_rng(4)
    ins = {
        "X": rng.standard_normal((B, D, L)),
        "DT": np.log1p(np.exp(rng.standard_normal((B, D, L)))),  # softplus, as in Mamba
        "A": -np.exp(rng.standard_normal((D, N))),  # negative real decay, as in Mamba (S4D-real)
        "BM": rng.standard_normal((B, N, L)),
        "CM": rng.standard_normal((B, N, L)),
        "DS": rng.standard_normal(D),
    }
    out = execute(c, ins)["Y"]
    ref = np.zeros((B, D, L))
    for b in range(B):
        for d in range(D):
            h = np.zeros(N)
            for t in range(L):
                dt = ins["DT"][b, d, t]
                h = np.exp(dt * ins["A"][d]) * h + dt * ins["BM"][b, :, t] * ins["X"][b, d, t]
                ref[b, d, t] = h @ ins["CM"][b, :, t] + ins["DS"][d] * ins["X"][b, d, t]
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)


def test_gemm_bmm_match_numpy() -> None:
    c = build("gemm", M=7, N=5, K=9)
    out = execute(c, seed=1)
    np.testing.assert_allclose(out["C"], out["A"] @ out["B"], rtol=1e-12)
    c = build("bmm", B=3, M=4, N=6, K=5)
    out = execute(c, seed=2)
    np.testing.assert_allclose(out["C"], np.matmul(out["A"], out["B"]), rtol=1e-12)


def test_mlp_matches_numpy() -> None:
    c = build("mlp", B=4, IN=6, HIDDEN=8, OUT=3, LAYERS=3)
    out = execute(c, seed=3)
    h = out["X"]
    for i in (1, 2, 3):
        h = h @ out[f"W{i}"] + out[f"BIAS{i}"]
        if i < 3:
            h = np.maximum(h, 0.0)
    np.testing.assert_allclose(out["Y"], h, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------- transformer layer


def _ln(x: np.ndarray, g: np.ndarray, beta: np.ndarray | None, kind: str) -> np.ndarray:
    if kind == "layernorm":
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-5) * g + beta
    return x / np.sqrt((x**2).mean(-1, keepdims=True) + 1e-5) * g


def reference_layer(w: dict[str, np.ndarray], norm: str, pos: str, act: str) -> np.ndarray:
    """A transformer layer written directly in numpy (X[b,p,d] -> Y[b,p,d])."""
    X = w["X"]
    E = w["WQ"].shape[2]

    def n(i: int, x: np.ndarray) -> np.ndarray:
        return _ln(x, w[f"N{i}G"], w.get(f"N{i}BETA"), norm)

    def attention(x: np.ndarray) -> np.ndarray:
        q = np.einsum("bpd,dhe->bhpe", x, w["WQ"]) / np.sqrt(E)
        k = np.einsum("bpd,dhe->bhpe", x, w["WK"])
        v = np.einsum("bpd,dhe->bhpe", x, w["WV"])
        s = q @ k.transpose(0, 1, 3, 2)
        a = np.exp(s - s.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        o = a @ v  # b,h,p,f
        return np.einsum("bhpf,hfd->bpd", o, w["WO"])

    def ffn(x: np.ndarray) -> np.ndarray:
        if act == "swiglu":
            g = x @ w["W1"]
            return ((g / (1 + np.exp(-g))) * (x @ w["W3"])) @ w["W2"]
        h = x @ w["W1"]
        h = np.maximum(h, 0) if act == "relu" else h / (1 + np.exp(-1.702 * h))
        return h @ w["W2"]

    if pos == "pre":
        r1 = X + attention(n(1, X))
        return r1 + ffn(n(2, r1))
    z = n(1, X + attention(X))
    return n(2, z + ffn(z))


def _weights(c, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name in c.inputs:
        t = c.tensor(name)
        fan_in = t.shape[0] if name.startswith("W") else 1
        if name == "WO":
            fan_in = t.shape[0] * t.shape[1]
        out[name] = rng.standard_normal(t.shape) / np.sqrt(fan_in)
    return out


MODELS = {
    # model: (norm, position, activation) as cited in workloads/library/models.yaml
    "bert": ("layernorm", "post", "gelu"),
    "trxl": ("layernorm", "post", "relu"),
    "t5": ("rmsnorm", "pre", "relu"),
    "xlm": ("layernorm", "post", "gelu"),
    "gpt3-175b": ("layernorm", "pre", "gelu"),
    "llama-7b": ("rmsnorm", "pre", "swiglu"),
}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_transformer_layer_matches_numpy_small(model: str) -> None:
    c = build(
        "transformer-layer",
        model=model,
        batch=2,
        seq=5,
        d_model=12,
        heads=2,
        head_dim=4,
        ffn_dim=10,
    )
    w = _weights(c, seed=7)
    out = execute(c, w)["Y"]
    ref = reference_layer(w, *MODELS[model])
    assert out.shape == ref.shape == (2, 5, 12)
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("model", ["bert", "t5"])
def test_transformer_layer_real_dims(model: str) -> None:
    c = build("transformer-layer", model=model, batch=1, seq=3)
    w = _weights(c, seed=8)
    out = execute(c, w)["Y"]
    ref = reference_layer(w, *MODELS[model])
    np.testing.assert_allclose(out, ref, rtol=1e-8, atol=1e-8)


def test_every_library_workload_executes() -> None:
    small = {
        "gemm": {"M": 4, "N": 3, "K": 5},
        "bmm": {"B": 2, "M": 3, "N": 4, "K": 2},
        "mlp": {"B": 2, "IN": 3, "HIDDEN": 4, "OUT": 2},
        "conv2d": {"C": 2, "H": 5, "W": 5, "K": 3},
        "depthwise_conv2d": {"C": 2, "H": 5, "W": 5},
        "attention-3pass": {"E": 4, "F": 4, "M": 8, "P": 3},
        "attention-2pass": {"E": 4, "F": 4, "M": 8, "P": 3},
        "attention-1pass": {"E": 4, "F": 4, "M": 8, "P": 3, "M0": 2},
        "decode-attention": {"H": 2, "E": 4, "F": 4, "M": 8},
        "selective-scan": {"L": 6, "D": 2, "N": 3},
        "transformer-layer": {"seq": 3, "d_model": 8, "heads": 2, "head_dim": 4, "ffn_dim": 6},
        # the LLM workloads (checked against numpy references in test_llm_workloads.py)
        "decoder-layer": {"seq": 3, "d_model": 8, "heads": 2, "head_dim": 4, "ffn_dim": 6},
        "decode-step": {"kv_len": 4, "d_model": 8, "heads": 2, "head_dim": 4, "ffn_dim": 6},
        "moe-ffn": {"seq": 4, "d_model": 4, "ffn_dim": 6},
    }
    # a whole model is too large for the executor at any real size (tested small elsewhere)
    assert sorted(small) == sorted(set(list_workloads()) - {"llm"})
    for name, params in small.items():
        c = build(name, **params)
        out = execute(c, seed=0)
        for t in c.tensors:
            assert out[t.name].shape == t.shape
        for o in c.outputs:
            assert np.isfinite(out[o]).all(), (name, o)


def test_recurrence_text_semantics() -> None:
    """A running sum and a running max written with carried reads equal cumsum / cummax."""
    c = parse_cascade(
        """
        declare X[t:6, p:2]
        RS[t+1, p] = RS[t, p] + X[t, p]
        RM[t+1, p] = max(RM[t, p], X[t, p])
        F[t+1, p] = F[t, p] * X[t, p] {init=2}
        """
    )
    out = execute(c, seed=9)
    x = out["X"]
    np.testing.assert_allclose(out["RS"][1:], np.cumsum(x, axis=0))
    assert (out["RS"][0] == 0).all()
    np.testing.assert_allclose(out["RM"][1:], np.maximum.accumulate(x, axis=0))
    assert (out["RM"][0] == -np.inf).all()
    np.testing.assert_allclose(out["F"][1:], 2 * np.cumprod(x, axis=0))


def test_executor_input_errors() -> None:
    c = build("gemm", M=2, N=2, K=2)
    with pytest.raises(WorkloadError, match="shape"):
        execute(c, {"A": np.zeros((3, 2))})
    with pytest.raises(WorkloadError, match="no input"):
        execute(c, {"Z": np.zeros((2, 2))})

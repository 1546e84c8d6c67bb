"""Hand-written numpy forward passes of the LLM workloads (independent of the IR).

Written the way a framework computes them (token-major activations, heads
reshaped out of the projections, ``softmax(q k^T / sqrt(E) + mask) v``), so
that the executor's result of a library cascade can be checked against them.
Weights are taken from the executor's store, in the cascade's tensor layout,
and reshaped here.
"""

from __future__ import annotations

import math

import numpy as np

EPS = 1e-5


def rmsnorm(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + EPS) * g


def layernorm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    xc = x - mu
    return xc / np.sqrt((xc * xc).mean(-1, keepdims=True) + EPS) * g + b


def gelu(x: np.ndarray) -> np.ndarray:
    """The IR's gelu: x * sigmoid(1.702 x)."""
    return x / (1.0 + np.exp(-1.702 * x))


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def rope_tables(head_dim: int, n_pos: int, theta: float = 10000.0) -> tuple[np.ndarray, np.ndarray]:
    """COS[r,i,n], SIN[r,i,n] (sign-folded) as the workloads declare them."""
    half = head_dim // 2
    inv = theta ** (-np.arange(half) * 2.0 / head_dim)
    ang = np.outer(inv, np.arange(n_pos))  # [i, n]
    cos = np.stack([np.cos(ang), np.cos(ang)])
    sin = np.stack([-np.sin(ang), np.sin(ang)])
    return cos, sin


def rope(x: np.ndarray, positions: np.ndarray, theta: float = 10000.0) -> np.ndarray:
    """Rotate the last axis (head dim, half-split layout) of x[..., T, E] by position."""
    e = x.shape[-1]
    half = e // 2
    inv = theta ** (-np.arange(half) * 2.0 / e)
    ang = positions[:, None] * inv[None, :]  # [T, half]
    c, s = np.cos(ang), np.sin(ang)
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)


def attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, causal: bool, q_pos: np.ndarray, k_pos: np.ndarray
) -> np.ndarray:
    """q[B,H,T,E], k/v[B,H,S,E] (already repeated for GQA) -> [B,H,T,E]."""
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if causal:
        s = np.where(k_pos[None, :] > q_pos[:, None], -np.inf, s)
    s = s - s.max(-1, keepdims=True)
    p = np.exp(s)
    p = p / p.sum(-1, keepdims=True)
    return p @ v


class Layer:
    """Weights of one layer read from an executor store under a tensor prefix."""

    def __init__(self, store: dict[str, np.ndarray], pre: str, norm: str) -> None:
        self.st = store
        self.pre = pre
        self.norm_kind = norm

    def w(self, name: str) -> np.ndarray:
        return self.st[self.pre + name]

    def norm(self, which: str, x: np.ndarray) -> np.ndarray:
        g = self.w(f"{which}G")
        if self.norm_kind == "layernorm":
            return layernorm(x, g, self.w(f"{which}BETA"))
        return rmsnorm(x, g)


def _heads_first(t: np.ndarray) -> np.ndarray:
    """[B, T, H, E] -> [B, H, T, E]."""
    return np.transpose(t, (0, 2, 1, 3))


def layer_forward(
    store: dict[str, np.ndarray],
    x: np.ndarray,
    *,
    pre: str = "",
    norm: str = "rmsnorm",
    norm_position: str = "pre",
    ffn: str = "swiglu",
    causal: bool = True,
    rope_on: bool = True,
    past: int = 0,
    moe: dict | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One layer on x[B, T, D]; with past > 0 a decode step over the cache.

    Returns (output, extras) with the appended cache entries under "k_new",
    "v_new" ([B, Hkv, E, T] / [B, Hkv, E, T] in the cascade's layout).
    """
    L = Layer(store, pre, norm)
    B, T, D = x.shape
    wq = L.w("WQ")  # [d, h, g, e...]
    hkv, grp = wq.shape[1], wq.shape[2]
    e = int(np.prod(wq.shape[3:]))
    h = x if norm_position == "post" else L.norm("N1", x)
    q = (h @ wq.reshape(D, -1)).reshape(B, T, hkv * grp, e)
    k = (h @ L.w("WK").reshape(D, -1)).reshape(B, T, hkv, e)
    v = (h @ L.w("WV").reshape(D, -1)).reshape(B, T, hkv, e)
    q, k, v = _heads_first(q), _heads_first(k), _heads_first(v)
    pos = past + np.arange(T)
    if rope_on:
        q, k = rope(q, pos), rope(k, pos)
    extras = {
        "k_new": np.swapaxes(k, -1, -2).reshape(B, hkv, *wq.shape[3:], T),
        "v_new": np.swapaxes(v, -1, -2),
    }
    if past:
        ck = store[pre + "CK"].reshape(B, hkv, e, past)
        cv = store[pre + "CV"]
        k_all = np.concatenate([np.swapaxes(ck, -1, -2), k], axis=2)
        v_all = np.concatenate([np.swapaxes(cv, -1, -2), v], axis=2)
        k_pos = np.arange(past + T)
    else:
        k_all, v_all, k_pos = k, v, pos
    k_rep = np.repeat(k_all, grp, axis=1)  # query head j uses KV head j // grp
    v_rep = np.repeat(v_all, grp, axis=1)
    o = attention(q, k_rep, v_rep, causal, pos, k_pos)  # [B, H, T, E]
    o = np.transpose(o, (0, 2, 1, 3)).reshape(B, T, -1)
    r1 = x + o @ L.w("WO").reshape(-1, D)
    if norm_position == "pre":
        f_in, resid = L.norm("N2", r1), r1
    else:
        f_in = L.norm("N1", r1)
        resid = f_in
    if moe is not None:
        f2 = moe_forward(store, f_in, pre=pre, **moe)
    else:
        f2 = ffn_forward(f_in, L.w("W1"), L.w("W2"), L.w("W3") if ffn == "swiglu" else None, ffn)
    y = resid + f2
    if norm_position == "post":
        y = L.norm("N2", y)
    return y, extras


def ffn_forward(
    x: np.ndarray, w1: np.ndarray, w2: np.ndarray, w3: np.ndarray | None, act: str
) -> np.ndarray:
    if act == "swiglu":
        return (silu(x @ w1) * (x @ w3)) @ w2
    if act == "gelu":
        return gelu(x @ w1) @ w2
    return np.maximum(x @ w1, 0.0) @ w2


def moe_forward(
    store: dict[str, np.ndarray],
    x: np.ndarray,
    *,
    pre: str = "",
    top_k: int,
    capacity: int,
    act: str = "swiglu",
    group_by_sequence: bool = True,
) -> np.ndarray:
    """Top-k MoE with per-group capacity, tokens routed in order (a plain loop)."""
    B, T, D = x.shape
    wr = store[pre + "WR"]
    w1, w2 = store[pre + "W1"], store[pre + "W2"]
    w3 = store.get(pre + "W3")
    n_exp = wr.shape[1]
    out = np.zeros_like(x)
    groups = (
        [[(b, t) for t in range(T)] for b in range(B)]
        if group_by_sequence
        else [[(b, t) for b in range(B) for t in range(T)]]
    )
    for grp in groups:
        count = np.zeros(n_exp, dtype=int)
        for b, t in grp:
            logits = x[b, t] @ wr
            chosen = np.argsort(-logits)[:top_k]
            gates = np.exp(logits[chosen] - logits.max())
            gates = gates / gates.sum()
            for ex, gt in zip(chosen, gates, strict=True):
                if count[ex] < capacity:
                    y = ffn_forward(
                        x[b, t][None], w1[ex], w2[ex], None if w3 is None else w3[ex], act
                    )
                    out[b, t] += gt * y[0]
                count[ex] += 1
    return out

"""LLM workloads against hand-written numpy forward passes (tests/support/llm_reference.py)."""

from __future__ import annotations

import numpy as np
import pytest
from llm_reference import layer_forward, layernorm, moe_forward, rmsnorm, rope_tables

from workloads import library
from workloads.errors import WorkloadError
from workloads.executor import execute, random_inputs
from workloads.ir import CausalMask
from workloads.library.llm import moe_capacity
from workloads.parser import format_cascade, parse_cascade

SMALL = {"d_model": 16, "heads": 4, "head_dim": 4, "ffn_dim": 24}


def _run(c, seed: int = 0, **fixed: np.ndarray) -> dict[str, np.ndarray]:
    inputs = random_inputs(c, seed)
    # keep activations O(1): scale weights by 1/sqrt(fan-in)
    for n in c.inputs:
        if n.split("_")[-1].startswith("W"):
            fan = (
                c.tensor(n).shape[0]
                if n.split("_")[-1] != "WO"
                else np.prod(c.tensor(n).shape[:-1])
            )
            inputs[n] = inputs[n] / np.sqrt(fan)
    inputs.update(fixed)
    return execute(c, inputs)


def _rope_inputs(c) -> dict[str, np.ndarray]:
    if "COS" not in c.inputs:
        return {}
    r, i, n = c.tensor("COS").shape
    cos, sin = rope_tables(r * i, n)
    return {"COS": cos, "SIN": sin}


@pytest.mark.parametrize(
    "params",
    [
        # LLaMA-style: RMSNorm, pre-norm, SwiGLU, rotary, causal, GQA (2 KV heads for 4)
        {"model": "llama-7b", "kv_heads": 2},
        # the same in FuseMax's 1-pass form (key blocks of 4)
        {"model": "llama-7b", "kv_heads": 2, "attention": "1pass", "block": 4},
        # MQA, no rotary
        {"model": "llama-7b", "kv_heads": 1, "rope": "0"},
        # GPT-style: LayerNorm, GELU, causal, no rotary, MHA
        {"model": "gpt3", "rope": "0"},
        # BERT-style: post-norm, not causal, GELU
        {"model": "bert-large"},
        {"model": "bert-large", "attention": "1pass", "block": 2},
    ],
)
def test_decoder_layer_matches_reference(params: dict) -> None:
    c = library.build("decoder-layer", batch=2, seq=8, **SMALL, **params)
    out = _run(c, **_rope_inputs(c))
    over = {k: v for k, v in params.items() if k != "model"}
    key, spec, _ = library.llm.layer_spec("t", params["model"], **SMALL, **over)
    ref, _ = layer_forward(
        out,
        out["X"],
        norm=spec.norm,
        norm_position=spec.norm_position,
        ffn=spec.ffn,
        causal=spec.causal,
        rope_on=spec.rope,
    )
    np.testing.assert_allclose(out["Y"], ref, rtol=1e-9, atol=1e-9)


def test_causal_mask_changes_the_result() -> None:
    c1 = library.build("decoder-layer", batch=1, seq=6, **SMALL, model="gpt3", rope="0")
    c0 = library.build("decoder-layer", batch=1, seq=6, **SMALL, model="gpt3", rope="0", causal="0")
    y1, y0 = _run(c1)["Y"], _run(c0)["Y"]
    # the last position sees every key either way; the first one only itself when causal
    np.testing.assert_allclose(y1[0, -1], y0[0, -1], rtol=1e-9)
    assert np.abs(y1[0, 0] - y0[0, 0]).max() > 1e-3


@pytest.mark.parametrize("new_tokens", [1, 3])
@pytest.mark.parametrize("kv_heads", [4, 2])
def test_decode_step_matches_reference(new_tokens: int, kv_heads: int) -> None:
    c = library.build(
        "decode-step",
        batch=2,
        kv_len=9,
        new_tokens=new_tokens,
        model="llama-7b",
        kv_heads=kv_heads,
        **SMALL,
    )
    out = _run(c, **_rope_inputs(c))
    past = 9 - new_tokens
    ref, extra = layer_forward(out, out["X"], past=past)
    np.testing.assert_allclose(out["Y"], ref, rtol=1e-9, atol=1e-9)
    # the appended cache entries are the new tokens' rotated keys and values
    np.testing.assert_allclose(out["NK"], extra["k_new"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out["NV"], extra["v_new"], rtol=1e-9, atol=1e-12)


def test_decode_step_equals_prefill_of_the_last_position() -> None:
    """A decode step over a cache filled by a prefill gives the prefill's last row."""
    P = 7
    pre = library.build("decoder-layer", batch=1, seq=P, model="llama-7b", kv_heads=2, **SMALL)
    dec = library.build("decode-step", batch=1, kv_len=P, model="llama-7b", kv_heads=2, **SMALL)
    tabs = _rope_inputs(pre)
    outp = _run(pre, **tabs)
    weights = {n: outp[n] for n in dec.inputs if n in outp}
    weights["X"] = outp["X"][:, -1:, :]
    # the cache holds the prefill's (rotated) keys and values of the first P-1 positions
    weights["CK"] = outp["KE"][..., : P - 1]
    weights["CV"] = outp["V"][..., : P - 1]
    outd = execute(dec, weights)
    np.testing.assert_allclose(outd["Y"][:, 0], outp["Y"][:, -1], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("batch", "seq"), [(2, 10), (6, 1)])
@pytest.mark.parametrize(("top_k", "capacity"), [(2, "1.0"), (1, "0.5"), (3, "4")])
def test_moe_ffn_matches_reference(batch: int, seq: int, top_k: int, capacity: str) -> None:
    c = library.build(
        "moe-ffn", batch=batch, seq=seq, d_model=8, ffn_dim=12, experts=4, top_k=top_k,
        capacity=capacity,
    )  # fmt: skip
    out = _run(c, seed=3)
    spec = library.llm.LayerSpec(
        d_model=8, heads=1, kv_heads=1, head_dim=2, ffn_dim=12, ffn="moe", experts=4,
        top_k=top_k, capacity=float(capacity),
    )  # fmt: skip
    C = moe_capacity(spec, seq if seq > 1 else batch)
    ref = moe_forward(out, out["X"], top_k=top_k, capacity=C, group_by_sequence=seq > 1)
    np.testing.assert_allclose(out["Y"], ref, rtol=1e-9, atol=1e-12)


def test_moe_capacity_drops_tokens() -> None:
    """With capacity 1 per expert and top-1 routing, tokens beyond the first per expert
    are dropped: fewer tokens get an output than have one without the limit."""
    kw = {"batch": 1, "seq": 12, "d_model": 8, "ffn_dim": 12, "experts": 2, "top_k": 1}
    tight = _run(library.build("moe-ffn", capacity="0.1", **kw), seed=5)["Y"]
    loose = _run(library.build("moe-ffn", capacity="2", **kw), seed=5)["Y"]
    served_tight = int((np.abs(tight[0]).sum(-1) > 0).sum())
    served_loose = int((np.abs(loose[0]).sum(-1) > 0).sum())
    assert served_loose == 12 and served_tight == 2


def test_mixtral_decoder_layer_with_moe() -> None:
    c = library.build(
        "decoder-layer", batch=1, seq=6, model="mixtral", **SMALL, kv_heads=2, experts=4
    )
    out = _run(c, seed=1, **_rope_inputs(c))
    spec = library.llm.layer_spec("t", "mixtral", **SMALL, kv_heads=2, experts=4)[1]
    moe = {"top_k": 2, "capacity": moe_capacity(spec, 6), "act": "swiglu"}
    ref, _ = layer_forward(out, out["X"], moe=moe)
    np.testing.assert_allclose(out["Y"], ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("phase", ["prefill", "decode"])
def test_whole_model_matches_reference(phase: str) -> None:
    c = library.build(
        "llm", model="llama-7b", phase=phase, batch=2, seq=5, kv_len=6, layers=2, kv_heads=2
    )
    # shrink: the real model is too big for the executor; rebuild with small dims
    text = library.build_text(
        "llm", model="llama-7b", phase=phase, batch=2, seq=5, kv_len=6, layers=2, kv_heads=2
    )
    assert c.name == f"llm-llama-7b-{phase}"
    assert len([e for e in c.einsums if e.attr.get("layer") == "1"]) > 20
    del text
    small = _small_llm(phase)
    rng = np.random.default_rng(7)
    vocab = small.tensor("EMB").shape[0]
    B, P = small.tensor("TOK").shape[:2]
    ids = rng.integers(0, vocab, size=(B, P))
    tok = np.eye(vocab)[ids]
    out = _run(small, seed=2, TOK=tok, **_rope_inputs(small))
    x = out["EMB"][ids]
    past = 5 if phase == "decode" else 0
    for i in range(2):
        x, _ = layer_forward(out, x, pre=f"L{i}_", past=past)
    xf = rmsnorm(x, out["NFG"])
    logits = xf[:, -1] @ out["WLM"]
    np.testing.assert_allclose(out["LOGITS"], logits, rtol=1e-9, atol=1e-9)


def _small_llm(phase: str):
    """The llm cascade of a tiny LLaMA-like model (models.yaml dims overridden in the text)."""
    from workloads.library import llm

    key, spec, _ = llm.layer_spec("llm", "llama-7b", **SMALL, kv_heads=2)
    L = llm._Lines(16, "embed")
    decode = phase == "decode"
    B, P, V = 2, 1 if decode else 5, 11
    past = 5 if decode else 0
    L.declare("TOK", [("b", B), ("p", P), ("v", V)])
    L.declare("EMB", [("v", V), ("d", spec.d_model)])
    L.mm("X0[b,p,d] = sum(v) TOK[b,p,v] * EMB[v,d]", kind="embedding")
    x = "X0"
    for i in range(2):
        L.layer = str(i)
        llm.layer_lines(L, f"L{i}_", spec, x, f"X{i + 1}", B, P, past=past, pos_offset=past)
        x = f"X{i + 1}"
    L.layer = "head"
    xf = L.norm("NF", x, spec.norm, spec.d_model)
    L.declare("WLM", [("d", spec.d_model), ("v", V)])
    L.mm(f"LOGITS[b,v] = sum(d) {xf}[b,{P - 1},d] * WLM[d,v]")
    return parse_cascade(llm._assemble("tiny", L, spec, B, P, past, past + P))


def test_gpt_model_learned_positions() -> None:
    """GPT-3 (learned positions, LayerNorm, GELU): the embedding adds POS[p + past]."""
    c = library.build("llm", model="gpt3", phase="decode", batch=1, kv_len=4, layers=1)
    pos = next(e for e in c.einsums if e.name == "XP")
    assert pos.inputs[1].tensor == "POS" and pos.inputs[1].indices[0].offset == 3


def test_layernorm_and_rmsnorm_reference_identities() -> None:
    x = np.random.default_rng(0).standard_normal((3, 8))
    y = layernorm(x, np.ones(8), np.zeros(8))
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(rmsnorm(x, np.ones(8)) ** 2 @ np.ones(8) / 8, 1.0, rtol=1e-4)


@pytest.mark.parametrize("nq,nk,off", [(5, 7, 2), (7, 7, 0), (4, 9, 5), (6, 3, -3), (5, 5, -2)])
def test_causal_mask_visible_pairs_closed_form(nq: int, nk: int, off: int) -> None:
    m = CausalMask(("m",), ("p",), off)
    brute = sum(1 for q in range(nq) for k in range(nk) if k <= q + off)
    assert m.visible_pairs(nq, nk) == brute


def test_models_yaml_llms_have_sources_and_dims() -> None:
    models = library.load_models()
    for name in (
        "bert-large", "llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3-70b",
        "mixtral-8x7b", "gpt3-175b",
    ):  # fmt: skip
        m = models[name]
        assert m["d_model"] == m["heads"] * m["head_dim"]
        assert m["heads"] % m.get("kv_heads", m["heads"]) == 0
        assert m["layers"] > 0 and m["vocab"] > 0
    text = (library._DATA / "models.yaml").read_text()
    # every model block carries a comment citing its source
    for name in ("bert-large", "llama-2-70b", "llama-3-8b", "mixtral-8x7b"):
        block = text.split(f"\n{name}:\n", 1)[1].split("\n\n", 1)[0]
        assert block.lstrip().startswith("#")


def test_llm_7b_parameter_count() -> None:
    """LLaMA-7B's weights from the cascade: 6.74e9 parameters (Touvron et al. 2023, Table 2)."""
    c = library.build("llm", model="llama-7b", phase="decode", batch=1, kv_len=16)
    weights = [n for n in c.inputs if n not in ("TOK", "COS", "SIN") and "_C" not in n]
    n = sum(c.tensor(w).elements for w in weights)
    assert abs(n - 6.74e9) / 6.74e9 < 0.01


@pytest.mark.parametrize(
    ("workload", "params", "match"),
    [
        ("decoder-layer", {"kv_heads": 3}, "must divide heads"),
        ("decoder-layer", {"attention": "2pass"}, "attention"),
        ("decoder-layer", {"attention": "1pass", "seq": 100, "block": 64}, "must divide"),
        ("decode-step", {"kv_len": 1}, "must exceed"),
        ("decode-step", {"model": "bert-large"}, "causal"),
        ("llm", {"phase": "train"}, "phase"),
        ("moe-ffn", {"top_k": 9}, "top_k"),
        ("llm", {"model": "trxl"}, "layers"),
        ("decoder-layer", {"capacity": "x"}, "number"),
    ],
)
def test_bad_parameters_name_the_problem(workload: str, params: dict, match: str) -> None:
    with pytest.raises(WorkloadError, match=match):
        library.build(workload, **params)


def test_round_trip_text_format() -> None:
    for name, p in [
        ("decoder-layer", {"model": "llama-3-8b", "seq": 64, "attention": "1pass"}),
        ("decode-step", {"model": "mixtral", "batch": 4}),
        ("moe-ffn", {}),
    ]:
        c = library.build(name, **p)
        assert parse_cascade(format_cascade(c)) == c

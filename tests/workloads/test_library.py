"""The workload library: names, parameters, errors, model dimensions."""

from __future__ import annotations

import pytest

from workloads.errors import WorkloadError
from workloads.library import build, describe, list_workloads, load_models, parameters

NAMES = [
    "gemm", "bmm", "conv2d", "depthwise_conv2d", "attention-3pass", "attention-2pass",
    "attention-1pass", "decode-attention", "transformer-layer", "mlp", "selective-scan",
    "decoder-layer", "decode-step", "moe-ffn", "llm",
]  # fmt: skip


def test_names_and_parameter_interface() -> None:
    assert sorted(list_workloads()) == sorted(NAMES)
    assert set(parameters("gemm")) >= {"M", "N", "K"}
    assert set(parameters("bmm")) >= {"B", "M", "N", "K"}
    assert set(parameters("conv2d")) >= {
        "N",
        "C",
        "H",
        "W",
        "K",
        "R",
        "S",
        "stride",
        "dilation",
        "groups",
    }
    for a in ("attention-3pass", "attention-2pass", "attention-1pass"):
        assert set(parameters(a)) >= {"B", "H", "E", "F", "M", "P"}
    assert set(parameters("transformer-layer")) >= {"model", "batch", "seq"}
    for n in NAMES:
        assert describe(n)
        assert build(n).einsums  # defaults work


def test_unknown_workload_and_parameter_list_what_is_allowed() -> None:
    with pytest.raises(WorkloadError, match="expected one of: gemm, bmm"):
        build("gem")
    with pytest.raises(WorkloadError, match=r"unknown parameter 'Q'; expected one of: M, N, K"):
        build("gemm", Q=3)
    with pytest.raises(WorkloadError, match="positive integer"):
        build("gemm", M=0)
    with pytest.raises(WorkloadError, match="positive integer"):
        build("gemm", M="abc")
    with pytest.raises(WorkloadError, match="unknown model 'gpt5'; expected one of: bert"):
        build("transformer-layer", model="gpt5")
    with pytest.raises(WorkloadError, match="must divide"):
        build("attention-1pass", M=100, M0=64)
    with pytest.raises(WorkloadError, match="groups=3 must divide"):
        build("conv2d", C=16, K=32, groups=3)
    with pytest.raises(WorkloadError, match="smaller than the dilated filter"):
        build("conv2d", H=4, R=3, dilation=2)


def test_string_parameters_are_coerced() -> None:
    assert build("gemm", M="128", N="256", K="64").total_macs == 2097152


def test_naming_conventions() -> None:
    c = build("gemm")
    assert [(a.tensor, tuple(ix.to_text() for ix in a.indices)) for a in c.einsums[0].accesses] == [
        ("C", ("m", "n")), ("A", ("m", "k")), ("B", ("k", "n"))
    ]  # fmt: skip
    c = build("conv2d", stride=2, dilation=3)
    (e,) = c.einsums
    assert e.output.tensor == "O" and e.output.ordered_ranks == ("n", "k", "p", "q")
    assert [ix.to_text() for ix in e.inputs[0].indices] == ["n", "c", "p*2+r*3", "q*2+s*3"]
    assert e.inputs[1].tensor == "W" and e.inputs[1].ordered_ranks == ("k", "c", "r", "s")
    g = build("conv2d", groups=4).einsums[0]
    assert g.output.ordered_ranks == ("n", "g", "k", "p", "q")
    for name in ("attention-3pass", "attention-2pass", "attention-1pass"):
        c = build(name)
        assert c.tensor("Q").ranks == ("b", "h", "e", "p")
        assert c.tensor("K").ranks == ("b", "h", "e", "m")
        assert c.tensor("V").ranks == ("b", "h", "f", "m")
        assert c.tensor("AV").ranks == ("b", "h", "f", "p")
        assert c.outputs == ("AV",)
    one = build("attention-1pass", M=256, M0=64)
    assert {e.name for e in one.einsums} == {
        "QK", "LM", "RM", "PRM", "SLN", "SLD", "SPD", "SLNV", "SPNV", "RD", "RNV", "AV"
    }  # fmt: skip
    # FuseMax's binding (docs/references.md): QK, LM, SLN, SLD, SLNV on the 2D array
    two_d = {e.name for e in one.einsums if e.attr.get("unit_class") == "2d"}
    assert two_d == {"QK", "LM", "SLN", "SLD", "SLNV"}
    assert one.einsum("QK").rank_sizes["m1"] == 4 and one.einsum("QK").rank_sizes["m0"] == 64


# cited in models.yaml: docs/references.md (FuseMax) for BERT, TrXL, T5, XLM; GPT-3 paper Table 2.1;
# LLaMA paper Table 2 / released config
EXPECTED = {
    "bert": (768, 12, 64, 3072),
    "trxl": (1024, 16, 64, 4096),
    "t5": (512, 8, 64, 2048),
    "xlm": (2048, 16, 128, 8192),
    "gpt3-175b": (12288, 96, 128, 49152),
    "llama-7b": (4096, 32, 128, 11008),
}


@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_transformer_model_dimensions(model: str) -> None:
    D, H, E, S = EXPECTED[model]
    m = load_models()[model]
    assert (m["d_model"], m["heads"], m["head_dim"], m["ffn_dim"]) == (D, H, E, S)
    batch, seq = 2, 16
    c = build("transformer-layer", model=model, batch=batch, seq=seq)
    assert c.tensor("WQ").shape == (D, H, E)
    assert c.tensor("X").shape == (batch, seq, D) and c.tensor("Y").shape == (batch, seq, D)
    # closed form of the MACs: QKV + output projections, QK and AV, FFN (two or three matrices)
    n_ffn = 3 if m["activation"] == "swiglu" else 2
    tokens = batch * seq
    macs = tokens * D * H * E * 4 + batch * H * seq * seq * E * 2 + tokens * D * S * n_ffn
    ln = 1 if m["norm"] == "layernorm" else 0
    # two norms, each: squares, normalise, gamma (3 per element) and the 1/D
    # scalings (mean and variance for a layer norm, variance for RMS norm)
    macs += 2 * (3 * tokens * D + (1 + ln) * tokens)
    # GELU counts one mac per element (the 1.702 x scaling)
    macs += tokens * H * E  # Q * 1/sqrt(E)
    macs += tokens * S if m["activation"] == "gelu" else 0
    macs += tokens * S if m["activation"] == "swiglu" else 0  # gate * up
    assert c.total_macs == macs


def test_model_aliases() -> None:
    assert build("transformer-layer", model="GPT-3", seq=2) == build(
        "transformer-layer", model="gpt3-175b", seq=2
    )
    assert build("transformer-layer", model="llama", seq=2).name == "transformer-layer-llama-7b"

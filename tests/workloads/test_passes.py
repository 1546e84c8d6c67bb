"""FuseMax pass analysis: 3, 2 and 1 passes for the three attention cascades."""

from __future__ import annotations

import pytest

from workloads.library import build
from workloads.parser import parse_cascade


@pytest.mark.parametrize(
    ("name", "passes"),
    [
        ("attention-3pass", 3),
        ("attention-2pass", 2),
        ("attention-1pass", 1),
        ("decode-attention", 2),
    ],
)
def test_attention_passes_over_m(name: str, passes: int) -> None:
    c = build(name)
    assert c.passes("m") == passes


def test_pass_of_each_einsum_3pass() -> None:
    # FuseMax sec. 3: pass 1 builds QK and its max, pass 2 the exponentials and
    # their sum, pass 3 normalises and multiplies by V
    c = build("attention-3pass")
    assert c.pass_of("m") == {"QK": 1, "MX": 1, "SN": 2, "SD": 2, "A": 3, "AV": 3}


def test_pass_of_each_einsum_1pass() -> None:
    c = build("attention-1pass", M=256, M0=64)
    po = c.pass_of("m")
    assert set(po.values()) == {1}
    # the split children count as traversals of m
    assert c.rank_family("m") == frozenset({"m", "m1", "m0"})
    assert c.passes("m1") == 1
    # inside one m1 block FuseMax goes over m0 twice (local max LM, then SLN
    # against the updated running max): 2 passes over the on-chip m0 tile
    assert c.passes("m0") == 2


def test_passes_of_other_ranks_and_workloads() -> None:
    assert build("gemm").passes("k") == 1
    assert build("gemm").passes("zz") == 0
    assert build("selective-scan").passes("l") == 1
    # a layer norm reads the mean, then the variance, then normalises: 3 passes over d
    c = build("transformer-layer", model="bert", seq=4, d_model=8, heads=2, head_dim=4, ffn_dim=8)
    assert c.passes("m") == 3


def test_passes_with_a_split_three_pass() -> None:
    # splitting m does not by itself remove passes: the max over (m1, m0) is still needed first
    c = parse_cascade(
        """
        declare QK[m:8, p:2]
        split m -> m1:4, m0:2
        LM[m1, p] = max(m0) QK[m1*2+m0, p]
        MX[p] = max(m1) LM[m1, p]
        SN[m1, m0, p] = exp(QK[m1*2+m0, p] - MX[p])
        SD[p] = sum(m1, m0) SN[m1, m0, p]
        A[m1, m0, p] = SN[m1, m0, p] / SD[p]
        """
    )
    assert c.passes("m") == 3

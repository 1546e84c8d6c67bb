"""The cascade text format: the docs/architecture.md example, round trips, and errors with positions."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from builders import DESIGN_EXAMPLE, fully_validated

from workloads.errors import ParseError, WorkloadError
from workloads.ir import AffineIndex, Cascade
from workloads.library import build, list_workloads
from workloads.parser import format_cascade, load_cascade, parse_cascade


def test_design_example_parses_as_written() -> None:
    c = parse_cascade(DESIGN_EXAMPLE)
    assert [e.name for e in c.einsums] == ["QK", "MX", "SN", "SD", "A", "AV"]
    assert c.inputs == ("Q", "K", "V")
    assert c.outputs == ("AV",)
    assert c.intermediates == ("QK", "MX", "SN", "SD", "A")
    qk, mx, sn, sd, a, av = c.einsums
    assert (qk.map_op, qk.reduce_op, qk.reduced_ranks) == ("mul", "sum", ("e",))
    assert qk.rank_sizes == {"m": 1024, "p": 1024, "e": 64}
    assert (mx.map_op, mx.reduce_op, mx.reduced_ranks) == ("copy", "max", ("m",))
    assert (sn.map_op, sn.reduce_op) == ("expdiff", "none")
    assert (sd.map_op, sd.reduce_op) == ("copy", "sum")
    assert (a.map_op, a.reduce_op) == ("div", "none")
    assert (av.map_op, av.reduce_op, av.reduced_ranks) == ("mul", "sum", ("m",))
    assert c.tensor("AV").shape == (64, 1024)
    # closed form: QK and AV are 64 * 1024 * 1024 MACs each
    assert c.total_macs == 2 * 64 * 1024 * 1024


@pytest.mark.parametrize("name", list_workloads())
def test_library_round_trips_through_text_and_dict(name: str) -> None:
    c = build(name)
    text = format_cascade(c)
    assert parse_cascade(text) == c
    assert Cascade.from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_affine_indices_splits_and_attrs() -> None:
    c = parse_cascade(
        """
        cascade my-conv   # a name with a dash
        declare I[c:3, h:9] {bits=8}
        declare W[c, r:3] {bits=8}
        rank p:4
        O[p] = sum(c, r) I[c, p*2 + r*1] * W[c, r] {bits=32, unit_class=2d}
        """
    )
    assert c.name == "my-conv"
    o = c.einsum("O")
    assert o.inputs[0].indices[1] == AffineIndex((("p", 2), ("r", 1)), 0)
    assert o.inputs[0].bits == 8 and o.output.bits == 32
    assert o.attrs == (("unit_class", "2d"),)
    assert c.tensor("O").bits == 32
    assert o.reduced_ranks == ("c", "r")
    s = parse_cascade("declare K[e:4, m:12]\nsplit m -> m1, m0:3\nX[m1, m0] = sum(e) K[e, m1*3+m0]")
    assert s.splits == (("m", ("m1", "m0")),)
    assert s.einsum("X").rank_sizes == {"m1": 4, "m0": 3, "e": 4}
    # the parent's size may come from the children
    s2 = parse_cascade("split m -> m1:2, m0:3\ndeclare K[m]\nY[m1] = sum(m0) K[m1*3+m0]")
    assert s2.tensor("K").shape == (6,)


def test_scalars_and_functions() -> None:
    c = parse_cascade(
        """
        declare X[p:4]
        A[p] = X[p] * 0.5
        B[p] = 2 * A[p]
        C[p] = max(B[p], 0)
        D[p] = rsqrt(C[p])
        E[p] = exp(D[p] - 1.5e-3)
        F[p] = gelu(E[p])
        G[p] = silu(F[p])
        H[p] = min(-1, G[p])
        """
    )
    assert c.einsum("B").scalar == 2.0 and c.einsum("B").inputs[0].tensor == "A"
    assert c.einsum("E").map_op == "expdiff" and c.einsum("E").scalar == 1.5e-3
    assert c.einsum("H").scalar == -1.0
    assert parse_cascade(format_cascade(c)) == c


def _err(text: str) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse_cascade(text, file="t.ein")
    return info.value


@pytest.mark.parametrize(
    ("text", "line", "col", "needle"),
    [
        # an undeclared rank
        ("declare A[m:4]\nB[m, n] = A[m]", 2, 6, "rank n has no size"),
        # a rank with two sizes
        ("declare A[m:4]\ndeclare B[m:5]", 2, 11, "rank m has size 5 here but 4 on line 1"),
        # a reduction with no reduced rank
        ("declare A[m:4]\nB[m] = max(m) A[m]", 2, 12, "reduces nothing"),
        ("declare A[m:4]\nB[m] = sum() A[m]", 2, 12, "no reduced rank"),
        # a cycle
        ("declare X[m:4]\nA[m] = B[m] + X[m]\nB[m] = A[m] * X[m]", 2, 8, "cycle"),
        # a tensor used before it is produced
        (
            "declare X[m:4]\nA[m] = B[m] + X[m]\nB[m] = X[m] * X[m]",
            2,
            8,
            "used before it is produced (on line 3)",
        ),
        # misc
        ("declare A[m:4]\nB[m] = A[m] +", 2, 14, "expected a tensor access"),
        ("declare A[m:4]\nB[m] = C[m]", 2, 8, "neither declared nor produced"),
        ("declare A[m:4]\nB[m] = A[m, m]", 2, 8, "indexed with 2"),
        ("declare A[m:4]\nB[m] = A[m+1]", 2, 10, "spans 1..4"),
        ("declare A[m:4]\nB[m] = A[m]\nB[m] = A[m]", 3, 1, "already produced on line 2"),
        ("declare A[m:4]\nA[m] = A[m]", 2, 1, "declared as an input"),
        ("declare A[m:4] A[m]", 1, 16, "declared twice"),
        ("declare A[m:4]\nB[m] = foo(A[m])", 2, 8, "unknown function"),
        ("declare A[m:4]\nB[m] = A[m] % 2", 2, 13, "unexpected character"),
        ("declare A[m:4]\nB[m*2] = A[m]", 2, 3, "output index"),
        ("declare A[m:4]\nB[m] = 1 - A[m]", 2, 8, "right operand"),
        ("declare A[m:4]\nB[m] = A[m] {bits=x}", 2, 14, "bits=x"),
        ("declare A[m:4]\nB[m] = A[m] {unit_class}", 2, 14, "no value"),
        ("declare A[m:4]\nB[m] = A[m] {init=abc}", 2, 14, "init=abc"),
        (
            "declare A[m:4, n:4]\nB[m] = max(n) A[m, n] * A[n, m] + A[m, m]",
            2,
            33,
            "end of the line",
        ),
        ("declare A[m:4, n:4]\nB[] = sum(m) A[m, n]", 2, 7, "rank n appears only on the right"),
        ("declare A[m:4]\nsplit m -> m1, m0", 2, 12, "cannot work out"),
        ("declare A[m:6]\nsplit m -> m1, m0:4", 2, 7, "not divisible"),
        ("declare A[m:4]\nB[m+1] = B[m+1] + A[m]", 2, 10, "reads its own output"),
        ("hello world", 1, 1, "expected a statement"),
        # found by the cascade validation; points at the Einsum's output
        ("declare X[t:3]\nS[] = sum(t) R[t]\nR[t+1] = S[] + X[t]", 2, 1, "not indexed by t"),
        ("declare A[m:4, n:4]\nB[n] = A[m*0, n]", 2, 1, "rank m is in its iteration space"),
        ("declare A[m:4, n:4]\nB[n] = A[m - m, n]", 2, 1, "indexes nothing"),
        ("cascade  a  b\ndeclare A[m:4]\nB[m] = A[m]", 3, 1, "cascade name 'a  b'"),
        # an access checked once: its second use is not checked again, the
        # first reports (and a bare rank and an affine index of one rank differ)
        ("declare A[m:4]\nB[m] = A[m]\nC[m] = A[m] + A[m+1]", 3, 17, "spans 1..4"),
        ("declare A[m:4]\nB[m] = A[m] + X[m]\nC[m] = X[m]", 2, 15, "neither declared"),
        # errors in later lines' syntax come before any check across lines
        ("declare A[m:4]\nB[m] = C[m]\nD[m] = A[m] +", 3, 14, "expected a tensor access"),
        ("declare A[m:4]\nB[m] = A[m] {mask=causal}", 2, 1, "mask=causal needs mask_key"),
        ("declare A[m:4]\nB[m] = A[m] \u00e9", 2, 13, "unexpected character '\u00e9'"),
        ("declare A[m:4]\nB[m] = A[m] {bits=8", 2, 13, "unclosed '{'"),
    ],
)
def test_errors_name_line_column_and_expectation(
    text: str, line: int, col: int, needle: str
) -> None:
    e = _err(text)
    assert e.line == line, e
    assert e.col == col, e
    assert needle in e.message, e
    assert str(e).startswith(f"t.ein:{line}:{col}: ")
    assert "\n" not in str(e)


def test_carried_read_of_a_later_producer_is_allowed() -> None:
    # FuseMax's SPD reads RD[m1] before the line that produces RD[m1+1]
    c = parse_cascade(
        """
        declare S[m1:4, p:2] F[m1:4, p:2]
        SPD[m1, p] = RD[m1, p] * F[m1, p]
        RD[m1+1, p] = S[m1, p] + SPD[m1, p]
        """
    )
    assert [r.einsums for r in c.recurrences()] == [("SPD", "RD")]
    assert c.recurrences()[0].rank == "m1"


def test_yaml_file_with_metadata(tmp_path: Path) -> None:
    f = tmp_path / "att.yaml"
    f.write_text(
        "name: my-att\n"
        "description: the docs/architecture.md example\n"
        "source: docs/architecture.md\n"
        "cascade: |\n" + textwrap.indent(DESIGN_EXAMPLE, "  ")
    )
    c = load_cascade(f)
    assert c.name == "my-att"
    assert c == parse_cascade(DESIGN_EXAMPLE, name="my-att")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncascade: |\n  declare A[m:4]\n  B[m] = A[q]\n")
    with pytest.raises(ParseError) as info:
        load_cascade(bad)
    # the error points at line 4 of the YAML file itself
    assert (info.value.line, info.value.col) == (4, 12)
    assert info.value.file == str(bad)
    text = tmp_path / "a.ein"
    text.write_text(DESIGN_EXAMPLE)
    assert load_cascade(text) == parse_cascade(DESIGN_EXAMPLE, name="a")
    with pytest.raises(WorkloadError, match="no such file"):
        load_cascade(tmp_path / "missing.ein")
    notmap = tmp_path / "n.yaml"
    notmap.write_text("- 1\n- 2\n")
    with pytest.raises(ParseError, match="'cascade' key"):
        load_cascade(notmap)
    broken = tmp_path / "b.yaml"
    broken.write_text("cascade: [\n")
    with pytest.raises(ParseError, match="invalid YAML"):
        load_cascade(broken)


def test_packaged_design_example_file() -> None:
    path = Path(__file__).resolve().parents[2] / "workloads" / "library" / "design-example.yaml"
    c = load_cascade(path)
    assert c.name == "design-example"
    assert c == parse_cascade(DESIGN_EXAMPLE, name="design-example")
    assert c.passes("m") == 3


def test_cascade_name_is_the_rest_of_the_line() -> None:
    c = parse_cascade("cascade gemm M=128 (fp8)  # comment\ndeclare A[m:2]\nB[m] = A[m]\n")
    assert c.name == "gemm M=128 (fp8)"
    assert parse_cascade(format_cascade(c)) == c
    e = _err("cascade a\ncascade b")
    assert (e.line, e.col) == (2, 1) and "named twice" in e.message
    with pytest.raises(WorkloadError, match="cascade name"):
        Cascade("bad#name", (), ())


def test_split_without_keyword_and_rank_list_without_commas() -> None:
    a = parse_cascade(
        "declare K[m:12]\nm -> m1, m0:3\nrank p:2 q:3\nX[m1, p, q] = sum(m0) K[m1*3+m0]"
    )
    b = parse_cascade(
        "declare K[m:12]\nsplit m -> m1:4, m0:3\nrank p:2, q:3\nX[m1, p, q] = sum(m0) K[m1*3+m0]"
    )
    assert a == b and a.splits == (("m", ("m1", "m0")),)
    assert a.tensor("X").shape == (4, 2, 3)


@pytest.mark.parametrize("name", list_workloads())
def test_parsed_cascades_pass_the_full_validation(name: str) -> None:
    """The parser makes most of the cascade checks itself (with positions) and
    the cascade it builds skips them: every cascade it accepts passes them."""
    c = build(name)
    assert fully_validated(c) == c
    assert parse_cascade(format_cascade(c)) == c

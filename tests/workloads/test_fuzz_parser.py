"""Fuzzing the cascade parser with hypothesis.

Over 10,000 random and mutated texts: every one either parses (and then
prints and re-parses to an equal cascade) or raises :class:`ParseError` with a
line number. Any other exception, or a hang, fails the test. A second
property builds random well-formed cascades and checks print/parse round trips.
"""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest
from builders import DESIGN_EXAMPLE, fully_validated
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workloads.errors import ParseError
from workloads.executor import execute
from workloads.ir import Cascade
from workloads.library import build_text
from workloads.parser import format_cascade, parse_cascade

SEEDS = [
    DESIGN_EXAMPLE,
    build_text("attention-1pass", M=8, M0=2, E=4, F=4, P=3),
    build_text("conv2d", C=4, H=6, W=6, K=4, stride=2, dilation=1, groups=2),
    build_text("selective-scan", L=4, D=2, N=2),
    build_text("mlp", LAYERS=2),
    build_text("attention-2pass", M=4, E=2, F=2, P=2),
    "cascade x\nrank p:3\nsplit m -> m1:2, m0:2\ndeclare A[m, p] {bits=8}\nB[m1, p] = sum(m0) A[m1*2+m0, p] * 0.5 {init=-inf, k=v}\n",
]

TOKENS = [
    "declare ", "rank ", "split ", "cascade ", "sum(", "max(", "min(", "exp(", "rsqrt(", "gelu(",
    "A", "B", "QK", "m", "p", "e", "m1", "m0", "[", "]", "(", ")", ",", ":", "=", "+", "-", "*", "/",
    "->", "{", "}", "bits=", "init=", "name=", "#", "\n", " ", "0", "1", "2", "64", "1.5", "1e-5",
    "-inf", ".", "\t", "99999999999999999999", "é", "\x00",
]  # fmt: skip

COUNTS = {"parsed": 0, "error": 0}


def check(text: str) -> None:
    """The property: a Cascade, or a ParseError with a line number; nothing else."""
    try:
        c = parse_cascade(text)
    except ParseError as exc:
        assert isinstance(exc.line, int) and exc.line >= 1, exc
        assert exc.message and "\n" not in str(exc)
        COUNTS["error"] += 1
        return
    COUNTS["parsed"] += 1
    again = parse_cascade(format_cascade(c))
    assert again == c
    assert Cascade.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert fully_validated(c) == c


def _mutate(text: str, ops: list[tuple[int, int, int, str]]) -> str:
    for kind, a, b, tok in ops:
        n = len(text)
        i, j = (a % (n + 1)), (b % (n + 1))
        i, j = min(i, j), max(i, j)
        if kind == 0:  # delete a span
            text = text[:i] + text[i + (j - i) % 7 :]  # up to 6 characters
        elif kind == 1:  # insert a token
            text = text[:i] + tok + text[i:]
        elif kind == 2:  # replace a span with a token
            text = text[:i] + tok + text[min(j, i + 3) :]
        elif kind == 3:  # swap two lines
            lines = text.split("\n")
            if len(lines) > 1:
                x, y = a % len(lines), b % len(lines)
                lines[x], lines[y] = lines[y], lines[x]
            text = "\n".join(lines)
        elif kind == 4:  # duplicate a line
            lines = text.split("\n")
            x = a % len(lines)
            lines.insert(b % (len(lines) + 1), lines[x])
            text = "\n".join(lines)
        else:  # drop a line
            lines = text.split("\n")
            del lines[a % len(lines)]
            text = "\n".join(lines)
    return text


def _random_ops(rng: random.Random) -> list[tuple[int, int, int, str]]:
    """1 to 4 random mutations (drawn from one seed: cheaper than hypothesis draws)."""
    return [
        (rng.randrange(6), rng.randrange(5001), rng.randrange(5001), rng.choice(TOKENS))
        for _ in range(rng.randint(1, 4))
    ]


#: texts checked per hypothesis example (hypothesis' own overhead is ~1 ms
#: per example on a busy 2-core machine; the texts come from the drawn seed)
PER_EXAMPLE = 4

FAST = settings(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def test_mutated_cascades_quick() -> None:
    """A few hundred mutated texts (the slow tests run thousands)."""
    COUNTS.update(parsed=0, error=0)
    rng = random.Random(20240611)
    for _ in range(600):
        check(_mutate(rng.choice(SEEDS), _random_ops(rng)))
    assert COUNTS["parsed"] > 30 and COUNTS["error"] > 30, COUNTS


@pytest.mark.slow
def test_fuzz_random_token_soup() -> None:
    COUNTS.update(parsed=0, error=0)

    @settings(FAST, max_examples=1000)
    @given(st.integers(0, 2**63))
    def run(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(PER_EXAMPLE):
            check("".join(rng.choice(TOKENS) for _ in range(rng.randrange(41))))

    run()
    assert COUNTS["parsed"] + COUNTS["error"] >= 4000


@pytest.mark.slow
def test_fuzz_mutated_cascades() -> None:
    COUNTS.update(parsed=0, error=0)

    @settings(FAST, max_examples=1500)
    @given(st.integers(0, 2**63))
    def run(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(PER_EXAMPLE):
            check(_mutate(rng.choice(SEEDS), _random_ops(rng)))

    run()
    assert COUNTS["parsed"] + COUNTS["error"] >= 6000
    # the mutations keep a good share of texts valid, so both outcomes are exercised
    assert COUNTS["parsed"] > 300 and COUNTS["error"] > 300, COUNTS


@pytest.mark.slow
def test_fuzz_arbitrary_unicode() -> None:
    COUNTS.update(parsed=0, error=0)

    @settings(FAST, max_examples=1000)
    @given(st.text(max_size=200))
    def run(text: str) -> None:
        check(text)

    run()
    assert COUNTS["parsed"] + COUNTS["error"] >= 1000


# ------------------------------------------------- random valid cascades


OPS = ["*", "+", "-", "/", "max", "exp-", "copy", "gelu", "scalar", "running"]


@st.composite
def cascades(draw: st.DrawFn) -> str:
    """The text of a random well-formed cascade.

    Inputs are read through affine indices (``r+1``, ``r*2+1``, ``r+s``);
    Einsums use every map op form, reductions, scalars, attributes, and
    running (iterative) Einsums ``T[r+1, ..] = op(T[r, ..], A[..])``.
    """
    nranks = draw(st.integers(2, 4))
    ranks = [f"r{i}" for i in range(nranks)]
    size = {r: draw(st.integers(1, 4)) for r in ranks}
    lines = [f"rank {', '.join(f'{r}:{size[r]}' for r in ranks)}"]
    # tensor -> (ranks it is indexed by, index texts used to read it)
    tensors: dict[str, tuple[list[str], list[str]]] = {}
    for t in range(draw(st.integers(1, 3))):
        name = f"I{t}"
        dims, idx, used = [], [], []
        for k, r in enumerate(
            draw(st.lists(st.sampled_from(ranks), min_size=1, max_size=3, unique=True))
        ):
            form = draw(st.integers(0, 3))
            if form == 0:
                text, hi, rs = r, size[r] - 1, [r]
            elif form == 1:
                o = draw(st.integers(0, 2))
                text, hi, rs = f"{r}+{o}", size[r] - 1 + o, [r]
            elif form == 2:
                text, hi, rs = f"{r}*2+1", 2 * (size[r] - 1) + 1, [r]
            else:
                r2 = draw(st.sampled_from(ranks))
                text, hi, rs = (
                    (f"{r}+{r2}", size[r] + size[r2] - 2, [r, r2])
                    if r2 != r
                    else (r, size[r] - 1, [r])
                )
            dims.append(f"x{t}d{k}:{hi + 1 + draw(st.integers(0, 1))}")
            idx.append(text)
            used += [x for x in rs if x not in used]
        bits = draw(st.sampled_from([8, 16, 32]))
        lines.append(
            f"declare {name}[{', '.join(dims)}]" + (f" {{bits={bits}}}" if bits != 16 else "")
        )
        tensors[name] = (used, idx)
    for k in range(draw(st.integers(1, 6))):
        name = f"T{k}"
        a = draw(st.sampled_from(sorted(tensors)))
        b = draw(st.sampled_from(sorted(tensors)))
        A = f"{a}[{', '.join(tensors[a][1])}]"
        B = f"{b}[{', '.join(tensors[b][1])}]"
        op = draw(
            st.sampled_from(
                ["*", "+", "-", "/", "max", "exp-", "copy", "gelu", "scalar", "running"]
            )
        )
        if op == "running" and tensors[a][0]:
            ra = tensors[a][0]
            r0, rest = ra[0], ra[1:]
            f = draw(st.sampled_from(["+", "*", "max"]))
            prev = f"{name}[{', '.join([r0, *rest])}]"
            expr = f"max({prev}, {A})" if f == "max" else f"{prev} {f} {A}"
            lines.append(f"{name}[{', '.join([f'{r0}+1', *rest])}] = {expr}")
            tensors[name] = ([r0, *rest], [r0, *rest])
            continue
        right = list(dict.fromkeys(tensors[a][0] + tensors[b][0]))
        if op in ("copy", "gelu", "scalar", "running"):
            op = "copy" if op == "running" else op
            right = list(tensors[a][0])
        out = (
            draw(st.lists(st.sampled_from(right), unique=True, max_size=len(right)))
            if right
            else []
        )
        reduced = [r for r in right if r not in out]
        if op == "max":
            expr = f"max({A}, {B})"
        elif op == "exp-":
            expr = f"exp({A} - {B})"
        elif op in ("copy", "gelu", "scalar"):
            expr = {"copy": A, "gelu": f"gelu({A})", "scalar": f"{A} * {draw(st.floats(-4, 4))!r}"}[
                op
            ]
        else:
            expr = f"{A} {op} {B}"
        red = ""
        if reduced:
            red = f"{draw(st.sampled_from(['sum', 'max', 'min']))}({', '.join(reduced)}) "
        attrs = draw(
            st.sampled_from(["", " {unit_class=2d}", " {bits=32}", " {name=E" + str(k) + "}"])
        )
        lines.append(f"{name}[{', '.join(out)}] = {red}{expr}{attrs}")
        tensors[name] = (out, list(out))
    return "\n".join(lines) + "\n"


@pytest.mark.slow
@settings(FAST, max_examples=200)
@given(cascades())
def test_random_cascades_round_trip(text: str) -> None:
    c = parse_cascade(text)
    printed = format_cascade(c)
    assert parse_cascade(printed) == c
    assert format_cascade(parse_cascade(printed)) == printed
    assert Cascade.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert fully_validated(c) == c


# ------------------------------------- executor vs a point-by-point interpreter

_IDENTITY = {"sum": 0.0, "max": -np.inf, "min": np.inf}
# what a running Einsum reads before its first step, by operator
_RUNNING_START = {"add": 0.0, "mul": 1.0, "max": -np.inf}


def _scalar_map(op: str, a: np.float64, b: np.float64) -> np.float64:
    return {
        "mul": lambda: a * b,
        "add": lambda: a + b,
        "sub": lambda: a - b,
        "div": lambda: a / b,
        "max": lambda: np.maximum(a, b),
        "min": lambda: np.minimum(a, b),
        "expdiff": lambda: np.exp(a - b),
        "exp": lambda: np.exp(a),
        "copy": lambda: a,
        "gelu": lambda: a / (1.0 + np.exp(-1.702 * a)),
    }[op]()


def interpret(c: Cascade, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Evaluate ``c`` one point at a time with plain loops (no index arrays, no einsum).

    Output points run in the output's rank order with the reduced ranks inner,
    writing as they go, so a running Einsum (its carried rank first) reads the
    value its previous step wrote.
    """
    store = {k: v.copy() for k, v in inputs.items()}
    for e in c.einsums:
        t = c.tensor(e.output.tensor)
        store[t.name] = np.full(t.shape, _RUNNING_START.get(e.map_op, 0.0))
        sizes = e.rank_sizes
        out_ranks = [ix.terms[0][0] for ix in e.output.indices]
        red = list(e.reduced_ranks)

        def at(acc, point):
            return tuple(ix.offset + sum(k * point[r] for r, k in ix.terms) for ix in acc.indices)

        for ov in itertools.product(*(range(sizes[r]) for r in out_ranks)):
            point = dict(zip(out_ranks, ov, strict=True))
            acc = np.float64(_IDENTITY.get(e.reduce_op, 0.0))
            for rv in itertools.product(*(range(sizes[r]) for r in red)):
                point.update(zip(red, rv, strict=True))
                vals = [store[a.tensor][at(a, point)] for a in e.inputs]
                b = (
                    vals[1]
                    if len(vals) > 1
                    else np.float64(e.scalar)
                    if e.scalar is not None
                    else None
                )
                v = _scalar_map(e.map_op, vals[0], b)
                if e.reduce_op == "none":
                    acc = v
                elif e.reduce_op == "sum":
                    acc = acc + v
                else:
                    acc = np.maximum(acc, v) if e.reduce_op == "max" else np.minimum(acc, v)
            store[t.name][at(e.output, point)] = acc
    return store


@pytest.mark.slow
@settings(FAST, max_examples=150)
@given(cascades(), st.integers(0, 2**16))
def test_executor_matches_point_interpreter(text: str, seed: int) -> None:
    c = parse_cascade(text)
    rng = np.random.default_rng(seed)
    ins = {n: rng.standard_normal(c.tensor(n).shape) for n in c.inputs}
    with np.errstate(all="ignore"):
        ref = interpret(c, ins)
        got = execute(c, ins)
    for t in c.tensors:
        r, g = ref[t.name], got[t.name]
        finite = np.isfinite(r)
        assert (np.isfinite(g) == finite).all(), t.name
        scale = max(1.0, float(np.abs(r[finite]).max(initial=0.0)))
        np.testing.assert_allclose(
            g[finite], r[finite], rtol=1e-9, atol=1e-9 * scale, err_msg=t.name
        )

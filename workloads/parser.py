"""The cascade text format: a hand-written tokenizer and recursive-descent parser.

One statement per line; ``#`` starts a comment. Statements::

    cascade NAME                               # optional; the cascade's name
    declare T[r:64, s:128] U[s, t:8] {bits=8}  # input tensors: rank:size (size may be
                                               # left out when the rank is sized elsewhere)
    rank p:16, q:16                            # sizes of ranks no declared tensor carries
    split m -> m1, m0:64                       # m = m1 x m0 (outer first); one size may be
                                               # left out when m is sized
    OUT[r, s] = [REDUCE(ranks)] EXPR [{key=value, ...}]

An Einsum's ``EXPR`` is one map operator over tensor accesses (and at most
one numeric constant, as the right operand):

    A[..] * B[..]   A[..] + B[..]   A[..] - B[..]   A[..] / B[..]
    max(A[..], B[..])   min(A[..], B[..])   exp(A[..])   exp(A[..] - B[..])
    lt(A[..], B[..])    eq(A[..], B[..])    (1.0 where A < B / A == B, else 0.0)
    rsqrt(A[..])   silu(A[..])   gelu(A[..])   A[..]          (copy)

``REDUCE`` is ``sum``, ``max`` or ``min`` followed by the reduced ranks in
parentheses (``MX[p] = max(m) QK[m,p]``). Without it, ranks that appear only
on the right are summed (Einstein convention). Indices are affine:
``I[n, c, p*2 + r*1, q*2 + s]``; an output index is a rank plus an optional
offset. An Einsum may read a tensor at an earlier index of a rank than its
producer writes (``RM[m1+1,p] = max(RM[m1,p], LM[m1,p])``): that is an
iterative Einsum, run step by step over ``m1``; the tensor starts at the map
op's identity (``-inf`` for max, 0 for add) or at ``{init=VALUE}``.

Attributes ``{key=value, ...}`` after an Einsum are kept on it (for example
``unit_class=2d``), except ``bits`` (the output's datatype width, default 16),
``name`` (the Einsum's name, default the output tensor's) and ``init``.
``{mask=causal, mask_key=m, mask_query=p}`` masks the points where key ``m``
is after query ``p`` (``-inf`` is written there; see :mod:`workloads.ir`).

Every error is a :class:`ParseError` with the line, the column and what was
expected. A YAML file (``.yaml``/``.yml``) holds metadata and the text under
the key ``cascade``; see :func:`load_cascade`.
"""

from __future__ import annotations

import contextlib
import gc
import math
import operator
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from workloads.errors import ParseError, WorkloadError
from workloads.ir import (
    _TEXT,
    MAX_EINSUMS,
    MAX_SIZE,
    Access,
    AffineIndex,
    Cascade,
    Einsum,
    Tensor,
    _dependence_tuples,
    canonical_order,
)

__all__ = ["ParseError", "format_cascade", "load_cascade", "parse_cascade"]

#: default datatype width (bits) of a tensor
DEFAULT_BITS = 16

_KEYWORDS = ("cascade", "declare", "param", "rank", "split")
_REDUCERS = ("sum", "max", "min")
_UNARY_FUNCS = {"exp": "exp", "rsqrt": "rsqrt", "silu": "silu", "gelu": "gelu"}
_BINOPS = {"*": "mul", "+": "add", "-": "sub", "/": "div"}
_COMMUTATIVE = {"mul", "add", "max", "min"}
_OP_SYMBOL = {v: k for k, v in _BINOPS.items()}

#: one token per match (leading blanks skipped), in the order the alternatives
#: are tried: a name, ``->``, a symbol, a number, attributes (braces
#: included), a comment (to the end of the line), and last any other
#: character, which is an error (an unclosed ``{`` too: the attributes need
#: their ``}``). The possessive repeats (``*+``, ``++``) match what the plain
#: ones would here, a fifth faster: no backtracking state is kept.
_TOKEN = re.compile(
    r"""
    [ \t\r\f\v]*+
    ( [A-Za-z_][A-Za-z0-9_]*+
    | ->
    | [\[\](),:=+\-*/]
    | (?:\d++\.\d*+|\.\d++|\d++)(?:[eE][+-]?\d++)?
    | \{[^}]*+\}
    | \#.*
    | [^ \t\r\f\v] )
    """,
    re.VERBOSE | re.ASCII,
)
#: the one-character tokens; any other one-character token is a character
#: that starts no token (a longer token never is)
_ONE_CHAR_TOKENS = frozenset(string.ascii_letters + string.digits + "_[](),:=+-*/#")
#: the ASCII characters that start no token (the last alternative of _TOKEN)
_BAD_ASCII = frozenset(map(chr, range(128))) - _ONE_CHAR_TOKENS - frozenset(" \t\r\f\v")
#: the first item of a tuple (a comprehension would be a call in Python 3.11)
_FIRST = operator.itemgetter(0)
#: what a token starts with when it is a number
_NUM_START = frozenset(string.digits + ".")
#: the end of a line: a token list ends with these empty tokens, so that
#: looking up to three tokens ahead needs no bounds check
_END = ("", "", "", "")
#: ``cascade NAME``: the name runs to the end of the line or a ``#``
_CASCADE_LINE = re.compile(r"[ \t]*(cascade)[ \t]+([^#\[\s][^#]*?)[ \t]*(?:#.*)?\Z")
_ATTR_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z", re.ASCII)
_ATTR_VALUE = re.compile(r"[A-Za-z0-9_.+\-]+\Z", re.ASCII)


def _tokenize(line: str, lineno: int, file: str | None) -> list[str]:
    """The tokens of a line, as texts, followed by :data:`_END`.

    A token's kind is plain from its text: a name is an identifier, a number
    starts with a digit or ``.`` (an integer is all digits), attributes start
    with ``{``, and the rest are ``->`` and the symbols. Comments are dropped.
    Columns are not kept: :func:`_columns` gives them when an error needs
    them.
    """
    toks = _TOKEN.findall(line)
    if not line.isascii() or not _BAD_ASCII.isdisjoint(toks):
        _check_characters(line, toks, lineno, file)
    if toks and toks[-1][0] == "#":
        toks.pop()
    toks += _END
    return toks


def _check_characters(line: str, toks: list[str], lineno: int, file: str | None) -> None:
    """Raise for the first token of ``line`` that is a character starting no token."""
    for i, t in enumerate(toks):
        if len(t) == 1 and t not in _ONE_CHAR_TOKENS:
            col = _columns(line)[i]
            if t == "{":
                raise ParseError(
                    "unclosed '{'; expected '}' to end the attributes",
                    file=file,
                    line=lineno,
                    col=col,
                )
            raise ParseError(
                f"unexpected character {t!r}; expected a name, a number or one of [ ] ( ) , : = + - * / -> {{",
                file=file,
                line=lineno,
                col=col,
            )


def _columns(line: str) -> list[int]:
    """The 1-based column of each token :func:`_tokenize` gives for ``line``
    (the end of the line: after its last character before any comment)."""
    cols = [m.start(1) + 1 for m in _TOKEN.finditer(line)]
    if cols and line[cols[-1] - 1] == "#":
        cols.pop()
    end = len(line.split("#", 1)[0].rstrip()) + 1
    return cols + [end] * len(_END)


# ----------------------------------------------------------- parsed pieces
#
# Positions are token numbers within their line (``tok``): the semantic
# checks of _parse turn one into a column only to report an error.

#: an index as written: (key, tok, terms, offset), a term being (rank,
#: coefficient, tok). Equal keys are equal indices. A bare rank (the common
#: index) has no terms (None): its key is the rank, its term (rank, 1, tok).
#: Any other index's key is its terms without positions, and its offset.
_PIndex = tuple[Any, int, tuple[tuple[str, int, int], ...] | None, int]


def _terms(ix: _PIndex) -> tuple[tuple[str, int, int], ...]:
    return ((ix[0], 1, ix[1]),) if ix[2] is None else ix[2]


class _PAccess:
    __slots__ = ("indices", "key", "tensor", "tok")

    def __init__(self, tensor: str, indices: list[_PIndex], tok: int, key: str) -> None:
        self.tensor = tensor
        self.indices = indices
        self.tok = tok
        #: equal keys are equal accesses
        self.key = key


class _PEinsum:
    __slots__ = (
        "attrs",
        "bits",
        "line",
        "map_op",
        "name",
        "operands",
        "output",
        "reduce_op",
        "reduce_ranks",
        "reduce_tok",
        "scalar",
    )

    def __init__(
        self,
        line: int,
        output: _PAccess,
        reduce_op: str | None,
        reduce_ranks: list[tuple[str, int]],  # rank, tok
        reduce_tok: int,
        map_op: str,
        operands: list[_PAccess],
        scalar: float | None,
    ) -> None:
        self.line = line
        self.output = output
        self.reduce_op = reduce_op
        self.reduce_ranks = reduce_ranks
        self.reduce_tok = reduce_tok
        self.map_op = map_op
        self.operands = operands
        self.scalar = scalar
        self.attrs: tuple[tuple[str, str], ...] = ()
        self.bits = DEFAULT_BITS
        self.name: str | None = None


@dataclass
class _PDecl:
    name: str
    dims: list[tuple[str, int | None, int]]  # rank, size, tok
    bits: int
    line: int
    tok: int


@dataclass
class _PSplit:
    parent: str
    children: list[tuple[str, int | None, int]]  # rank, size, tok
    line: int
    tok: int


class _LineParser:
    """Recursive descent over the tokens of one line (:meth:`start` sets the line).

    ``self.i`` is the number of the current token; methods that consume a
    name return its token number.
    """

    __slots__ = (
        "_cols",
        "declare_memo",
        "einsum_memo",
        "file",
        "i",
        "line",
        "params",
        "raw",
        "toks",
    )

    def __init__(self, file: str | None, params: dict[str, int]) -> None:
        self.file = file
        #: the cascade's parameters (``param NAME = VALUE``), usable as sizes
        self.params = params
        # attributes already read, by their text (an Einsum's, a declaration's):
        # a large cascade repeats a few (``{unit_class=2d}``), and what they
        # give depends on the text alone
        self.einsum_memo: dict[str, tuple[int, str | None, tuple[tuple[str, str], ...]]] = {}
        self.declare_memo: dict[str, int] = {}
        self.start(list(_END), "", 0)

    def start(self, toks: list[str], raw: str, lineno: int) -> None:
        self.toks = toks
        self.i = 0
        self.raw = raw
        self.line = lineno
        self._cols: list[int] | None = None

    # ---------------------------------------------------------- helpers
    def col(self, i: int | None = None) -> int:
        """The column of token ``i`` (default: the current one)."""
        if self._cols is None:
            self._cols = _columns(self.raw)
        return self._cols[self.i if i is None else i]

    def error(self, message: str, i: int | None = None) -> ParseError:
        return ParseError(message, file=self.file, line=self.line, col=self.col(i))

    def attr_error(self, message: str, rel: int) -> ParseError:
        """An error at offset ``rel`` inside the braces of the current token."""
        return ParseError(message, file=self.file, line=self.line, col=self.col() + 1 + rel)

    @staticmethod
    def describe(t: str) -> str:
        if not t:
            return "the end of the line"
        if t[0] == "{":
            return "'{'"
        return repr(t)

    def expect(self, text: str, what: str | None = None) -> None:
        if self.toks[self.i] != text:
            self.expected(what or repr(text))
        self.i += 1

    def expected(self, what: str) -> NoReturn:
        """Raise: ``what`` was expected but the current token is there."""
        raise self.error(f"expected {what} but found {self.describe(self.toks[self.i])}")

    def accept(self, text: str) -> bool:
        if self.toks[self.i] == text:
            self.i += 1
            return True
        return False

    def name(self, what: str) -> int:
        i = self.i
        t = self.toks[i]
        if not t.isidentifier():
            raise self.error(f"expected {what} but found {self.describe(t)}")
        self.i = i + 1
        return i

    def integer(self, what: str, lo: int = 0) -> int:
        t = self.toks[self.i]
        if t in self.params:
            v = self.params[t]
            if v < lo or v > MAX_SIZE:
                raise self.error(f"{what} {t} = {v} is out of range; expected {lo}..{MAX_SIZE}")
            self.i += 1
            return v
        if not t.isdigit():
            raise self.error(f"expected {what} (an integer) but found {self.describe(t)}")
        if len(t) > 20:  # beyond any size (and int() refuses 4,300+ digits)
            raise self.error(f"{what} {t[:20]}... is out of range; expected {lo}..{MAX_SIZE}")
        v = int(t)
        if v < lo or v > MAX_SIZE:
            raise self.error(f"{what} {v} is out of range; expected {lo}..{MAX_SIZE}")
        self.i += 1
        return v

    def end(self) -> None:
        t = self.toks[self.i]
        if t:
            raise self.error(f"expected the end of the line but found {self.describe(t)}")

    # ------------------------------------------------------- statements
    def param_statement(self, overrides: dict[str, int]) -> tuple[str, int]:
        """``param NAME = DEFAULT``: a size parameter; ``overrides`` (from the
        loader's parameters) replace the default."""
        self.i += 1  # 'param'
        nt = self.name("a parameter name")
        pname = self.toks[nt]
        if pname in self.params:
            raise self.error(f"parameter {pname} is declared twice", nt)
        self.expect("=", "'=' and the parameter's default value")
        value = self.integer("a parameter value", lo=1)
        self.end()
        return pname, overrides.get(pname, value)

    def declaration(self) -> list[_PDecl]:
        self.i += 1  # 'declare'
        toks = self.toks
        decls: list[_PDecl] = []
        while True:
            nt = self.name("a tensor name")
            self.expect("[", "'[' after the tensor name")
            dims: list[tuple[str, int | None, int]] = []
            if not self.accept("]"):
                while True:
                    dims.append(self.sized_rank())
                    if self.accept("]"):
                        break
                    self.expect(",", "',' or ']'")
            bits = DEFAULT_BITS
            if toks[self.i][:1] == "{":
                bits = self.declared_bits()
                self.i += 1
            decls.append(_PDecl(toks[nt], dims, bits, self.line, nt))
            self.accept(",")
            t = toks[self.i]
            if not t:
                return decls
            if not t.isidentifier():
                raise self.error(
                    f"expected a tensor declaration or the end of the line but found {self.describe(t)}"
                )

    def sized_rank(self) -> tuple[str, int | None, int]:
        """``NAME`` or ``NAME:SIZE`` (of a declaration or a split) -> (name,
        size or None, the name's token)."""
        rt = self.name("a rank name")
        size: int | None = None
        if self.accept(":"):
            size = self.integer("a rank size", lo=1)
        return self.toks[rt], size, rt

    def declared_bits(self) -> int:
        """The ``{bits=N}`` of a declaration (the current token)."""
        key = self.toks[self.i]
        bits = self.declare_memo.get(key)
        if bits is None:
            bits = DEFAULT_BITS
            for k, value, rel in self.attrs():
                if k != "bits":
                    raise self.attr_error(f"unknown tensor attribute {k!r}; expected bits=N", rel)
                bits = self.bits_value(value, rel)
            self.declare_memo[key] = bits
        return bits

    def rank_statement(self) -> list[tuple[str, int, int]]:
        self.i += 1  # 'rank'
        out: list[tuple[str, int, int]] = []
        while True:
            rt = self.name("a rank name")
            self.expect(":", "':' and the rank's size")
            out.append((self.toks[rt], self.integer("a rank size", lo=1), rt))
            self.accept(",")
            if not self.toks[self.i]:
                return out

    def split_statement(self) -> _PSplit:
        toks = self.toks
        if toks[self.i] == "split" and toks[self.i + 1].isidentifier():
            self.i += 1
        pt = self.name("the rank to split")
        if self.accept(":"):
            raise self.error(
                "expected '->' (give the split rank's size in a declaration or a rank statement)"
            )
        self.expect("->", "'->' and the ranks it splits into")
        children: list[tuple[str, int | None, int]] = []
        while True:
            children.append(self.sized_rank())
            if not toks[self.i]:
                break
            self.expect(",", "',' or the end of the line")
        if len(children) < 2:
            raise self.error("a split needs at least two ranks (m -> m1, m0)")
        return _PSplit(toks[pt], children, self.line, pt)

    def bits_value(self, value: str, rel: int) -> int:
        if not value.isdigit() or not 1 <= int(value) <= 1024:
            raise self.attr_error(f"bits={value} is not valid; expected an integer 1..1024", rel)
        return int(value)

    def attrs(self) -> list[tuple[str, str, int]]:
        """The ``key=value`` pairs of the current token (attributes), each with
        its offset inside the braces."""
        out: list[tuple[str, str, int]] = []
        body = self.toks[self.i][1:-1]
        if not body.strip():
            return out
        pos = 0
        for part in body.split(","):
            rel = pos + len(part) - len(part.lstrip())
            pos += len(part) + 1
            if "=" not in part:
                raise self.attr_error(
                    f"attribute {part.strip()!r} has no value; expected key=value", rel
                )
            key, value = (s.strip() for s in part.split("=", 1))
            if not _ATTR_KEY.match(key):
                raise self.attr_error(f"bad attribute name {key!r}; expected a name", rel)
            if not _ATTR_VALUE.match(value):
                raise self.attr_error(
                    f"bad value {value!r} for attribute {key}; expected letters, digits, '_', '.', '+' or '-'",
                    rel,
                )
            if any(k == key for k, _, _ in out):
                raise self.attr_error(f"attribute {key} is given twice", rel)
            out.append((key, value, rel))
        return out

    # --------------------------------------------------------- einsums
    def index(self) -> _PIndex:
        """An index other than a bare rank (:meth:`access` reads those)."""
        toks = self.toks
        start = self.i
        terms: list[tuple[str, int, int]] = []
        offset = 0
        sign = 1
        if self.accept("-"):
            sign = -1
        elif self.accept("+"):
            pass
        while True:
            j = self.i
            t = toks[j]
            if t.isdigit():
                v = self.integer("an index constant")
                if self.accept("*"):
                    rt = self.name("a rank name after '*'")
                    terms.append((toks[rt], sign * v, rt))
                else:
                    offset += sign * v
            elif t.isidentifier():
                self.i = j + 1
                coef = 1
                if self.accept("*"):
                    coef = self.integer("a coefficient after '*'")
                terms.append((t, sign * coef, j))
            else:
                raise self.error(
                    f"expected a rank, an integer or 'rank*integer' but found {self.describe(t)}"
                )
            if self.accept("+"):
                sign = 1
            elif self.accept("-"):
                sign = -1
            else:
                break
        if abs(offset) > MAX_SIZE:
            raise self.error(f"index offset {offset} is out of range", start)
        key = (tuple([(r, c) for r, c, _ in terms]), offset)
        return key, start, tuple(terms), offset

    def access(self, what: str = "a tensor access such as T[r, s]") -> _PAccess:
        # the hottest path of a large cascade: the name and bare ranks (the
        # common index) are read here, without calls to name() and index()
        toks = self.toks
        nt = self.i
        tensor = toks[nt]
        if not tensor.isidentifier():
            raise self.error(f"expected {what} but found {self.describe(tensor)}")
        i = nt + 1
        if toks[i] != "[":
            self.i = i
            raise self.error(
                f"expected '[' after tensor {tensor} but found {self.describe(toks[i])}"
            )
        i += 1
        idx: list[_PIndex] = []
        if toks[i] != "]":
            while True:
                t, after = toks[i], toks[i + 1]
                if (after == "," or after == "]") and t.isidentifier():
                    idx.append((t, i, None, 0))
                    i += 1
                else:
                    self.i = i
                    idx.append(self.index())
                    i = self.i
                t = toks[i]
                if t == "]":
                    break
                if t != ",":
                    self.i = i
                    raise self.error(f"expected ',' or ']' but found {self.describe(t)}")
                i += 1
        self.i = i + 1
        # the key: the access's tokens (names and numbers are apart, so the
        # text is unambiguous), the same for T[r, s] and T[r,s]
        return _PAccess(tensor, idx, nt, "".join(toks[nt : i + 1]))

    def operand(self) -> _PAccess | tuple[float, int]:
        """A tensor access, or a constant as (value, tok)."""
        toks = self.toks
        i = self.i
        t = toks[i]
        if toks[i + 1] == "[" and t.isidentifier():
            return self.access()
        neg = False
        if t == "-" and toks[i + 1][:1] in _NUM_START:
            neg = True
            i += 1
            t = toks[i]
        if t[:1] in _NUM_START:
            self.i = i + 1
            v = float(t)
            if math.isinf(v) or math.isnan(v):
                raise self.error("the constant is too large; expected a finite number", i)
            return (-v if neg else v, i)
        raise self.error(
            f"expected a tensor access such as T[r, s] or a number but found {self.describe(t)}"
        )

    def einsum(self) -> _PEinsum:
        out = self.access("an output tensor such as T[r, s]")
        toks = self.toks
        if toks[self.i] != "=":
            self.expected("'=' after the output")
        self.i += 1
        reduce_op: str | None = None
        reduce_ranks: list[tuple[str, int]] = []
        reduce_tok = 0
        i = self.i
        t = toks[i]
        if (
            t in _REDUCERS
            and toks[i + 1] == "("
            and not (toks[i + 2][:1] in _NUM_START or toks[i + 2] == "-")
            and toks[i + 3] != "["
        ):
            reduce_op, reduce_tok = t, i
            self.i = i + 2
            if toks[self.i] == ")":
                raise self.error(
                    f"a {reduce_op} reduction with no reduced rank; expected {reduce_op}(rank, ...)"
                )
            while True:
                rt = self.name("a reduced rank name")
                reduce_ranks.append((toks[rt], rt))
                if self.accept(")"):
                    break
                self.expect(",", "',' or ')'")
        map_op, operands, scalar = self.expression()
        pe = _PEinsum(self.line, out, reduce_op, reduce_ranks, reduce_tok, map_op, operands, scalar)
        t = toks[self.i]
        if t[:1] == "{":
            hit = self.einsum_memo.get(t)
            pe.bits, pe.name, pe.attrs = hit if hit is not None else self.einsum_attrs()
            self.i += 1
            t = toks[self.i]
        if t:
            self.end()
        return pe

    def einsum_attrs(self) -> tuple[int, str | None, tuple[tuple[str, str], ...]]:
        """(bits, name, the other attributes) of an Einsum's attributes (the current token)."""
        bits, name, attrs = DEFAULT_BITS, None, []
        for k, value, rel in self.attrs():
            if k == "bits":
                bits = self.bits_value(value, rel)
            elif k == "name":
                if not _ATTR_KEY.match(value):
                    raise self.attr_error(f"Einsum name {value!r} is not a name", rel)
                name = value
            else:
                if k == "init":
                    try:
                        v = float(value)
                    except ValueError:
                        v = math.nan
                    if math.isnan(v):
                        raise self.attr_error(
                            f"init={value} is not a number; expected a number, inf or -inf", rel
                        ) from None
                attrs.append((k, value))
        hit = self.einsum_memo[self.toks[self.i]] = (bits, name, tuple(attrs))
        return hit

    def expression(self) -> tuple[str, list[_PAccess], float | None]:
        toks = self.toks
        i = self.i
        t = toks[i]
        if toks[i + 1] == "(" and t.isidentifier():
            fn = t
            if fn in ("max", "min", "lt", "eq"):
                self.i += 2
                a = self.operand()
                if toks[self.i] != ",":
                    self.expected(f"',' between the two operands of {fn}")
                self.i += 1
                b = self.operand()
                if toks[self.i] != ")":
                    self.expected(f"')' to close {fn}(")
                self.i += 1
                return self.binary(fn, a, b)
            if fn in _UNARY_FUNCS:
                self.i += 2
                a = self.operand()
                if fn == "exp" and toks[self.i] == "-":
                    self.i += 1
                    b = self.operand()
                    self.expect(")", "')' to close exp(")
                    return self.binary("expdiff", a, b)
                self.expect(")", f"')' to close {fn}(" + (" or '-'" if fn == "exp" else ""))
                if not isinstance(a, _PAccess):
                    raise self.error(f"{fn} of a constant; expected a tensor access", i)
                return _UNARY_FUNCS[fn], [a], None
            if fn in _REDUCERS:
                raise self.error(
                    f"expected {fn}(ranks) followed by an expression, or {fn}(A[..], B[..])", i
                )
            raise self.error(
                f"unknown function {fn!r}; expected one of exp, max, min, lt, eq, rsqrt, silu, gelu, sum",
                i,
            )
        a = self.access() if toks[i + 1] == "[" and t.isidentifier() else self.operand()
        op = toks[self.i]
        if op in _BINOPS:
            self.i += 1
            b = self.operand()
            if type(a) is _PAccess and type(b) is _PAccess:  # the common case
                return _BINOPS[op], [a, b], None
            return self.binary(_BINOPS[op], a, b)
        if not isinstance(a, _PAccess):
            raise self.error("an Einsum of a constant alone; expected a tensor access", i)
        return "copy", [a], None

    def binary(
        self, op: str, a: _PAccess | tuple[float, int], b: _PAccess | tuple[float, int]
    ) -> tuple[str, list[_PAccess], float | None]:
        if isinstance(a, _PAccess):
            if isinstance(b, _PAccess):
                return op, [a, b], None
            return op, [a], b[0]
        if isinstance(b, _PAccess):
            if op in _COMMUTATIVE:
                return op, [b], a[0]
            raise self.error(
                f"a constant can only be the right operand of {op}; expected a tensor access", a[1]
            )
        raise self.error("both operands are constants; expected a tensor access", a[1])


# ------------------------------------------------------------------- parse


def parse_cascade(
    text: str,
    file: str | None = None,
    *,
    name: str | None = None,
    line_offset: int = 0,
    col_offset: int = 0,
    params: dict[str, object] | None = None,
) -> Cascade:
    """Parse the text format into a validated :class:`Cascade`.

    ``line_offset``/``col_offset`` are added to every reported position (for
    text embedded in a YAML file). ``params`` override the defaults of the
    text's ``param NAME = VALUE`` statements. Raises :class:`ParseError`
    (line, column, what was expected).
    """
    overrides = _param_overrides(params, file)
    try:
        with _gc_paused():
            return _parse(text, file, name, line_offset, overrides)
    except ParseError as exc:
        if not (line_offset or col_offset):
            raise
        raise ParseError(
            exc.message,
            file=exc.file,
            line=(exc.line or 1) + line_offset,
            col=None if exc.col is None else exc.col + col_offset,
        ) from None


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while parsing: a cascade of
    thousands of Einsums allocates hundreds of thousands of small acyclic
    objects, and the collector's passes over them took a third of the time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _param_overrides(params: dict[str, object] | None, file: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for k, v in (params or {}).items():
        text = str(v).strip()
        if isinstance(v, bool) or not re.fullmatch(r"[0-9]{1,19}", text):
            raise WorkloadError(
                f"{file or 'cascade'}: parameter {k}={v!r} is not valid; expected a positive integer"
            )
        out[str(k)] = int(text)
    return out


def _parse(
    text: str,
    file: str | None,
    name: str | None,
    line_offset: int,
    overrides: dict[str, int] | None = None,
) -> Cascade:
    if not isinstance(text, str):
        raise ParseError("expected cascade text (a string)", file=file, line=1)
    overrides = overrides or {}
    pvals: dict[str, int] = {}
    cname: str | None = None
    decls: list[_PDecl] = []
    splits: list[_PSplit] = []
    rank_size: dict[str, tuple[int, int]] = {}  # rank -> size, line
    pes: list[_PEinsum] = []
    lines = text.splitlines() or [""]

    def perr(msg: str, line: int, col: int | None = None) -> ParseError:
        return ParseError(msg, file=file, line=line, col=col)

    def perr_at(msg: str, line: int, tok: int) -> ParseError:
        """An error at token number ``tok`` of ``line``."""
        return perr(msg, line, _columns(lines[line - 1])[tok])

    def set_rank(r: str, size: int, line: int, tok: int) -> None:
        known = rank_size.get(r)
        if known is None:
            rank_size[r] = (size, line)
        elif known[0] != size:
            raise perr_at(
                f"rank {r} has size {size} here but {known[0]} on line {known[1] + line_offset}; expected one size per rank",
                line,
                tok,
            )

    p = _LineParser(file, pvals)
    for lineno, raw in enumerate(lines, start=1):
        m = _CASCADE_LINE.match(raw) if "cascade" in raw else None
        if m:  # the name is the rest of the line, taken as is (not tokenized)
            if cname is not None:
                raise perr("the cascade is named twice", lineno, m.start(1) + 1)
            cname = m.group(2).strip()
            continue
        toks = _tokenize(raw, lineno, file)
        first, second = toks[0], toks[1]
        if not first:
            continue
        p.start(toks, raw, lineno)
        if second == "[" and first.isidentifier():  # an Einsum (keywords too: T[..] = ..)
            if len(pes) >= MAX_EINSUMS:
                raise perr(f"more than {MAX_EINSUMS:,} Einsums; expected a smaller cascade", lineno)
            pes.append(p.einsum())
        elif first == "cascade":
            raise p.error("expected the cascade's name after 'cascade'", 1)
        elif first == "param":
            pname, pval = p.param_statement(overrides)
            pvals[pname] = pval
        elif first == "declare":
            for d in p.declaration():
                decls.append(d)
                for r, s, tok in d.dims:
                    if s is not None:
                        set_rank(r, s, lineno, tok)
        elif first == "rank":
            for r, s, tok in p.rank_statement():
                set_rank(r, s, lineno, tok)
        elif first == "split" or (second == "->" and first.isidentifier()):
            splits.append(p.split_statement())
        else:
            raise p.error(
                f"expected a statement (param, declare, rank, split, cascade) or an Einsum such as "
                f"OUT[r] = A[r] * B[r] but found {p.describe(first)}",
                0,
            )

    unknown = sorted(set(overrides) - set(pvals))
    if unknown:
        raise WorkloadError(
            f"{file or 'cascade'}: unknown parameter(s) {', '.join(unknown)}; "
            + (
                f"the cascade declares {', '.join(sorted(pvals))}"
                if pvals
                else "the cascade declares none (add 'param NAME = DEFAULT' lines)"
            )
        )
    # splits: sizes of the parent and children
    for sp in splits:
        kids = [c for c, _, _ in sp.children]
        if sp.parent in kids or len(set(kids)) != len(kids):
            raise perr_at(f"split of {sp.parent}: the ranks must be distinct", sp.line, sp.tok)
        for r, s, tok in sp.children:
            if r in rank_size and s is not None:
                set_rank(r, s, sp.line, tok)
        sizes = [
            s if s is not None else (rank_size[r][0] if r in rank_size else None)
            for r, s, _ in sp.children
        ]
        missing = [i for i, s in enumerate(sizes) if s is None]
        parent = rank_size.get(sp.parent)
        if len(missing) > 1 or (missing and parent is None):
            raise perr_at(
                f"split of {sp.parent}: cannot work out the size of "
                f"{', '.join(sp.children[i][0] for i in missing)}; expected sizes such as {sp.children[-1][0]}:64",
                sp.line,
                sp.children[missing[0]][2],
            )
        if missing:
            rest = math.prod(s for s in sizes if s is not None)
            if parent[0] % rest:  # type: ignore[index]
                raise perr_at(
                    f"split of {sp.parent}: {parent[0]} is not divisible by {rest}",  # type: ignore[index]
                    sp.line,
                    sp.tok,
                )
            i = missing[0]
            sizes[i] = parent[0] // rest  # type: ignore[index]
            set_rank(sp.children[i][0], sizes[i], sp.line, sp.children[i][2])  # type: ignore[arg-type]
        total = math.prod(sizes)  # type: ignore[arg-type]
        if total > MAX_SIZE:
            raise perr_at(f"split of {sp.parent}: size {total} is out of range", sp.line, sp.tok)
        for (r, _, tok), s in zip(sp.children, sizes, strict=True):
            set_rank(r, s, sp.line, tok)  # type: ignore[arg-type]
        set_rank(sp.parent, total, sp.line, sp.tok)

    # tensors: declared inputs first
    tensors: dict[str, Tensor] = {}
    declared_line: dict[str, int] = {}
    for d in decls:
        if d.name in tensors:
            raise perr_at(
                f"tensor {d.name} is declared twice (first on line {declared_line[d.name] + line_offset})",
                d.line,
                d.tok,
            )
        shape: list[int] = []
        for r, s, tok in d.dims:
            if s is None:
                if r not in rank_size:
                    raise perr_at(
                        f"rank {r} of {d.name} has no size; expected {r}:SIZE", d.line, tok
                    )
                s = rank_size[r][0]
            shape.append(s)
        ranks = tuple(map(_FIRST, d.dims))
        if len(set(ranks)) != len(ranks):
            raise perr_at(
                f"tensor {d.name} names a rank twice; expected distinct rank names", d.line, d.tok
            )
        tensors[d.name] = Tensor(d.name, ranks, tuple(shape), d.bits)
        declared_line[d.name] = d.line

    def size_of(r: str, line: int, tok: int) -> int:
        known = rank_size.get(r)
        if known is None:
            raise perr_at(
                f"rank {r} has no size; expected it in a declaration (T[{r}:SIZE]), a rank statement or a split",
                line,
                tok,
            )
        return known[0]

    # produced tensors: shape from the output indices
    build = _Builder(rank_size, perr_at)
    outputs: list[Access] = []
    produced_line: dict[str, int] = {}
    names_line: dict[str, int] = {}
    for pe in pes:
        o = pe.output
        if o.tensor in declared_line:
            raise perr_at(
                f"tensor {o.tensor} is declared as an input on line {declared_line[o.tensor] + line_offset} "
                f"and cannot also be produced",
                pe.line,
                o.tok,
            )
        if o.tensor in produced_line:
            raise perr_at(
                f"tensor {o.tensor} is already produced on line {produced_line[o.tensor] + line_offset}; "
                f"expected one Einsum per tensor",
                pe.line,
                o.tok,
            )
        out_ranks: list[str] = []
        shape = []
        for ix in o.indices:
            if ix[2] is None:  # a bare rank
                r, rtok, offset = ix[0], ix[1], 0
            else:
                terms, offset = ix[2], ix[3]
                if len(terms) != 1 or terms[0][1] != 1 or offset < 0:
                    raise perr_at(
                        "an output index must be a rank or rank+offset (such as m1+1)",
                        pe.line,
                        ix[1],
                    )
                r, _, rtok = terms[0]
            if r in out_ranks:
                raise perr_at(
                    f"rank {r} indexes the output twice; expected distinct ranks", pe.line, rtok
                )
            out_ranks.append(r)
            known = rank_size.get(r)
            shape.append((known[0] if known is not None else size_of(r, pe.line, rtok)) + offset)
        tensors[o.tensor] = Tensor(o.tensor, tuple(out_ranks), tuple(shape), pe.bits)
        produced_line[o.tensor] = pe.line
        ename = pe.name or o.tensor
        if ename in names_line:
            raise perr_at(
                f"two Einsums are named {ename} (lines {names_line[ename] + line_offset} and {pe.line + line_offset})",
                pe.line,
                o.tok,
            )
        names_line[ename] = pe.line
        outputs.append(build.written(o, tensors[o.tensor].ranks, pe.bits))

    einsums = build.einsums(pes, outputs, tensors)

    # dependence order: a forward read must follow its producer in the text
    es = tuple(einsums)
    pos = {e.name: i for i, e in enumerate(es)}
    for producer, consumer, tensor, carried in _dependence_tuples(es):
        if carried or pos[producer] < pos[consumer]:
            continue
        e, pe = es[pos[consumer]], pes[pos[consumer]]
        tok = next(a.tok for a in pe.operands if a.tensor == tensor)
        if producer == consumer:
            raise perr_at(
                f"{e.name} reads its own output {tensor} at the index it writes; expected an earlier index "
                f"such as {tensor}[r] while writing {tensor}[r+1]",
                pe.line,
                tok,
            )
        try:
            canonical_order(es)
        except WorkloadError as exc:
            raise perr_at(exc.message, pe.line, tok) from None
        raise perr_at(
            f"tensor {tensor} is used before it is produced (on line {pes[pos[producer]].line + line_offset}); "
            f"expected Einsums in dependence order",
            pe.line,
            tok,
        )

    try:
        ordered = canonical_order(es)
        tensor_list = [tensors[n] for n in declared_line] + [
            tensors[e.output.tensor] for e in ordered
        ]
        return Cascade._from_parser(
            name=cname or name or "cascade",
            tensors=tuple(tensor_list),
            einsums=ordered,
            splits=tuple((sp.parent, tuple(c for c, _, _ in sp.children)) for sp in splits),
            split_sizes=tuple(
                dict.fromkeys(
                    (r, rank_size[r][0])
                    for sp in splits
                    for r in (sp.parent, *(c for c, _, _ in sp.children))
                )
            ),
        )
    except ParseError:
        raise
    except WorkloadError as exc:
        where = next((pe for pe in pes if (pe.name or pe.output.tensor) == exc.einsum), None)
        if where is None:  # not about one Einsum: point at the first statement
            raise perr(exc.message, pes[0].line if pes else 1, 1) from None
        raise perr_at(exc.message, where.line, where.output.tok) from None


class _Builder:
    """The IR objects of the parsed lines, one per distinct value.

    A large cascade repeats its indices and accesses (the output of an Einsum
    is the next one's input), and rank sizes are cascade-wide, so an index
    spans the same values wherever it is. Each distinct :class:`AffineIndex`
    and :class:`Access` is made, and checked, once: that saves time and
    memory, and :func:`format_cascade` spells each once.
    """

    def __init__(self, rank_size: dict[str, tuple[int, int]], perr_at: Any) -> None:
        self.perr_at = perr_at
        self.sizes = {r: s for r, (s, _) in rank_size.items()}
        #: one (rank, size) pair per rank, shared by the Einsums' rank_sizes_items
        self.pair_of = {r: (r, s) for r, s in self.sizes.items()}
        #: index key -> (AffineIndex, lowest value, highest value)
        self.index_of: dict[Any, tuple[AffineIndex, int, int]] = {}
        #: access key -> (Access, the ranks of its index terms in order): an
        #: access made is of a known tensor, with its number of dimensions,
        #: sized ranks and indices within the dimensions
        self.access_of: dict[str, tuple[Access, tuple[str, ...]]] = {}

    def affine(self, ix: _PIndex) -> tuple[AffineIndex, int, int]:
        hit = self.index_of.get(ix[0])
        if hit is None:
            terms, offset = _terms(ix), ix[3]
            if len(terms) == 1 and terms[0][1] != 0:
                aff = AffineIndex(((terms[0][0], terms[0][1]),), offset)
            else:
                merged: dict[str, int] = {}
                for r, c, _ in terms:
                    merged[r] = merged.get(r, 0) + c
                aff = AffineIndex(tuple((r, c) for r, c in merged.items() if c != 0), offset)
            hit = self.index_of[ix[0]] = (aff, *aff.bounds(self.sizes))
        return hit

    def written(self, o: _PAccess, ranks: tuple[str, ...], bits: int) -> Access:
        """The output access of an Einsum (of output ranks ``ranks``): it lies
        within its tensor, which it shapes, so a read of it needs no check."""
        index_of = self.index_of
        affs = []
        for ix in o.indices:
            affs.append((index_of.get(ix[0]) or self.affine(ix))[0])
        acc = Access(o.tensor, tuple(affs), bits)
        self.access_of[o.key] = (acc, ranks)
        return acc

    def operand_ranks(self, a: _PAccess, tensors: dict[str, Tensor], line: int) -> tuple[str, ...]:
        """The ranks of the index terms of an operand not yet made, in order,
        once its tensor, its number of indices and the sizes of the ranks
        are checked."""
        t = tensors.get(a.tensor)
        if t is None:
            raise self.perr_at(
                f"tensor {a.tensor} is neither declared nor produced; expected a declare statement for it",
                line,
                a.tok,
            )
        if len(a.indices) != len(t.shape):
            raise self.perr_at(
                f"{a.tensor} has {len(t.shape)} ranks ({', '.join(t.ranks)}) but is indexed with {len(a.indices)}",
                line,
                a.tok,
            )
        ranks: list[str] = []
        for ix in a.indices:
            for r, _, tok in _terms(ix):
                if r not in self.sizes:
                    raise self.perr_at(
                        f"rank {r} has no size; expected it in a declaration (T[{r}:SIZE]), a rank statement or a split",
                        line,
                        tok,
                    )
                ranks.append(r)
        return tuple(ranks)

    def read(self, a: _PAccess, ranks: tuple[str, ...], t: Tensor, line: int) -> Access:
        """The input access ``a`` to ``t``, its operand_ranks ``ranks``."""
        hit = self.access_of.get(a.key)  # made by an earlier operand of the Einsum
        if hit is not None:
            return hit[0]
        affs: list[AffineIndex] = []
        for ix, dim, size in zip(a.indices, t.ranks, t.shape, strict=True):
            aff, lo, hi = self.affine(ix)
            if lo < 0 or hi >= size:
                raise self.perr_at(
                    f"index {aff.to_text()} of {a.tensor} spans {lo}..{hi} but rank {dim} has size {size}; "
                    f"expected 0..{size - 1}",
                    line,
                    ix[1],
                )
            affs.append(aff)
        acc = Access(a.tensor, tuple(affs), t.bits)
        self.access_of[a.key] = (acc, ranks)
        return acc

    def einsums(
        self, pes: list[_PEinsum], outputs: list[Access], tensors: dict[str, Tensor]
    ) -> list[Einsum]:
        """The Einsums of the parsed lines, given their outputs (and the
        output tensors in ``tensors``): operands, reductions and index bounds
        are checked here, in that order."""
        pair_of, access_of = self.pair_of, self.access_of
        einsums: list[Einsum] = []
        for pe, output in zip(pes, outputs, strict=True):
            out_ranks = tensors[pe.output.tensor].ranks
            right: list[str] = []
            # an operand is an access already made (the common case: checked
            # then), or a new one, checked here and made after the reduction
            # (plain loops: a comprehension is a call in Python 3.11)
            operands = []
            for a in pe.operands:
                made = access_of.get(a.key)
                ranks = self.operand_ranks(a, tensors, pe.line) if made is None else made[1]
                operands.append((a, made, ranks))
                for r in ranks:
                    if r not in out_ranks and r not in right:
                        right.append(r)
            if pe.reduce_op is not None:
                reduced = _reduced_ranks(pe, out_ranks, right, self.perr_at)
                reduce_op = pe.reduce_op
            else:
                reduced, reduce_op = right, ("sum" if right else "none")
            inputs = []
            for a, made, ranks in operands:
                if made is None:
                    inputs.append(self.read(a, ranks, tensors[a.tensor], pe.line))
                else:
                    inputs.append(made[0])
            einsums.append(
                Einsum(
                    pe.name or pe.output.tensor,
                    output,
                    tuple(inputs),
                    pe.map_op,
                    reduce_op,
                    tuple(map(pair_of.__getitem__, (*out_ranks, *reduced))),
                    pe.attrs,
                    pe.scalar,
                )
            )
        return einsums


def _reduced_ranks(
    pe: _PEinsum, out_ranks: tuple[str, ...], right: list[str], perr_at: Any
) -> list[str]:
    """The ranks of ``REDUCE(ranks)``, checked against those only on the right."""
    listed = [r for r, _ in pe.reduce_ranks]
    for r, tok in pe.reduce_ranks:
        if listed.count(r) > 1:
            raise perr_at(f"rank {r} is listed twice in {pe.reduce_op}(...)", pe.line, tok)
        if r in out_ranks:
            raise perr_at(
                f"rank {r} is in the output, so {pe.reduce_op}({r}) reduces nothing; "
                f"expected ranks that appear only on the right",
                pe.line,
                tok,
            )
        if r not in right:
            raise perr_at(
                f"rank {r} does not appear on the right; expected one of: {', '.join(right) or '(none)'}",
                pe.line,
                tok,
            )
    missing = [r for r in right if r not in listed]
    if missing:
        raise perr_at(
            f"rank {missing[0]} appears only on the right but is not reduced; expected "
            f"{pe.reduce_op}({', '.join(listed + missing)})",
            pe.line,
            pe.reduce_tok,
        )
    return listed


# ------------------------------------------------------------------ format


def _fmt_scalar(v: float) -> str:
    return repr(float(v))


def format_cascade(c: Cascade) -> str:
    """The text form of ``c``; :func:`parse_cascade` of it gives an equal cascade."""
    lines = [f"cascade {c.name}"]
    produced = {e.output.tensor for e in c.einsums}
    sized: dict[str, int] = {}
    for t in c.tensors:
        if t.name in produced:
            continue
        dims = ", ".join(map("{}:{}".format, t.ranks, t.shape))
        bits = f" {{bits={t.bits}}}" if t.bits != DEFAULT_BITS else ""
        lines.append(f"declare {t.name}[{dims}]{bits}")
        sized.update(zip(t.ranks, t.shape, strict=True))
    rank_sizes = c.rank_sizes
    split_ranks: set[str] = set()
    split_lines: list[str] = []
    for parent, children in c.splits:
        kids = ", ".join(f"{k}:{rank_sizes[k]}" if k in rank_sizes else k for k in children)
        split_lines.append(f"split {parent} -> {kids}")
        split_ranks |= {k for k in children if k in rank_sizes}
        if parent in rank_sizes or parent in sized:
            split_ranks.add(parent)
        if (
            parent in rank_sizes
            and parent not in sized
            and not all(k in rank_sizes for k in children)
        ):
            split_ranks.discard(parent)
    free = [(r, s) for r, s in rank_sizes.items() if r not in sized and r not in split_ranks]
    if free:
        lines.append("rank " + ", ".join(f"{r}:{s}" for r, s in free))
    lines.extend(split_lines)
    lines += map(format_einsum, c.einsums)
    return "\n".join(lines) + "\n"


def format_einsum(e: Einsum) -> str:
    """One Einsum as a line of the text format."""
    operands = list(map(_TEXT, e.inputs))
    if e.scalar is not None:
        operands.append(_fmt_scalar(e.scalar))
    op = e.map_op
    if op == "copy":
        expr = operands[0]
    elif op in _OP_SYMBOL:
        expr = f"{operands[0]} {_OP_SYMBOL[op]} {operands[1]}"
    elif op in ("max", "min", "lt", "eq"):
        expr = f"{op}({operands[0]}, {operands[1]})"
    elif op == "expdiff":
        expr = f"exp({operands[0]} - {operands[1]})"
    else:
        expr = f"{op}({operands[0]})"
    red = f"{e.reduce_op}({', '.join(e.reduced_ranks)}) " if e.reduced_ranks else ""
    parts = []
    if e.output.bits != DEFAULT_BITS:
        parts.append(f"bits={e.output.bits}")
    if e.name != e.output.tensor:
        parts.append(f"name={e.name}")
    if e.attrs:
        parts.append(_attrs_text(e.attrs))
    tail = " {" + ", ".join(parts) + "}" if parts else ""
    return f"{e.output._text} = {red}{expr}{tail}"


#: the text of attributes, by their tuple: the Einsums of a large cascade
#: share a few (``{unit_class=2d}``)
_ATTRS_TEXT: dict[tuple[tuple[str, str], ...], str] = {}


def _attrs_text(attrs: tuple[tuple[str, str], ...]) -> str:
    """``k=v, k2=v2`` (the inside of the braces)."""
    text = _ATTRS_TEXT.get(attrs)
    if text is None:
        text = ", ".join([f"{k}={v}" for k, v in attrs])
        if len(_ATTRS_TEXT) < 4096:  # bounded: attribute sets are few in practice
            _ATTRS_TEXT[attrs] = text
    return text


# -------------------------------------------------------------------- files


_PARAM_LINE = re.compile(r"^\s*param\s+([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([0-9]+)\s*(#.*)?$")


def declared_params(text: str) -> dict[str, int]:
    """The ``param NAME = DEFAULT`` statements of cascade text (a valid text:
    :func:`parse_cascade` checks the rest)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        m = _PARAM_LINE.match(line)
        if m and len(m.group(2)) <= 20:  # longer: parse_cascade reports it with its line
            out[m.group(1)] = int(m.group(2))
    return out


def read_cascade_text(path: Path) -> str:
    """The cascade text of a file (the ``cascade`` block of a YAML file),
    read with the one safe loader (:mod:`workloads.yamlio`)."""
    from workloads import yamlio

    text = yamlio.read_input_file(path, "cascade file", error=WorkloadError)
    if path.suffix.lower() not in (".yaml", ".yml"):
        return text
    data = yamlio.parse_yaml(text, str(path), error=ParseError)[0]
    return str(data.get("cascade", "")) if isinstance(data, dict) else ""


def load_cascade(path: str | Path, params: dict[str, object] | None = None) -> Cascade:
    """Read a cascade from a text file, or a YAML file with metadata.

    YAML files (``.yaml``/``.yml``) are a mapping with the text under
    ``cascade`` and optional ``name``, ``description`` and any other metadata::

        name: my-attention
        description: softmax attention, 3 passes
        cascade: |
          declare Q[e:64, p:1024] K[e:64, m:1024] V[f:64, m:1024]
          QK[m,p] = Q[e,p] * K[e,m]

    Errors point at the line in the file itself.
    """
    from workloads import yamlio

    p = Path(path)
    text = yamlio.read_input_file(p, "cascade file", error=WorkloadError)
    if p.suffix.lower() not in (".yaml", ".yml"):
        return parse_cascade(text, file=str(p), name=p.stem, params=params)
    root = yamlio.parse_nodes(text, str(p), error=ParseError)
    if root is None or not isinstance(root.value, dict) or "cascade" not in root.value:
        raise ParseError(
            "expected a YAML mapping with a 'cascade' key holding the cascade text",
            file=str(p),
            line=1 if root is None else root.line,
        )
    v = root.value["cascade"]
    if not isinstance(v.value, str):
        raise ParseError(
            "'cascade' must be a text block (use 'cascade: |')", file=str(p), line=v.line
        )
    body = v.value
    data = yamlio.plain(root)
    offset = col = 0
    if v.style == "|":
        # a literal block: its lines are the file's lines, dedented
        offset = v.line
        first = next((ln for ln in text.splitlines()[offset:] if ln.strip()), "")
        col = len(first) - len(first.lstrip(" "))
    else:
        offset = v.line - 1
    name = data.get("name")
    return parse_cascade(
        body,
        file=str(p),
        name=str(name) if name else p.stem,
        line_offset=offset,
        col_offset=col,
        params=params,
    )

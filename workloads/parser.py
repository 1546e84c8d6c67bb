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
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from workloads.errors import ParseError, WorkloadError
from workloads.ir import (
    MAX_EINSUMS,
    MAX_SIZE,
    Access,
    AffineIndex,
    Cascade,
    Einsum,
    Tensor,
    canonical_order,
    dependences,
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

#: one alternative per token kind; ``bad`` catches any other character and
#: an unclosed ``{`` (the attrs alternative needs its ``}``)
_TOKEN = re.compile(
    r"""
    [ \t\r\f\v]*  # leading blanks belong to the token (one match per token)
    (?: (?P<name>[A-Za-z_][A-Za-z0-9_]*)  # the most frequent kinds first
  | (?P<arrow>->)
  | (?P<sym>[\[\](),:=+\-*/])
  | (?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | \{(?P<attrs>[^}]*)\}
  | (?P<comment>\#)
  | (?P<bad>.)
  | \Z )
  """,
    re.VERBOSE | re.ASCII,
)
#: ``cascade NAME``: the name runs to the end of the line or a ``#``
_CASCADE_LINE = re.compile(r"[ \t]*(cascade)[ \t]+([^#\[\s][^#]*?)[ \t]*(?:#.*)?\Z")
_ATTR_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z", re.ASCII)
_ATTR_VALUE = re.compile(r"[A-Za-z0-9_.+\-]+\Z", re.ASCII)


@dataclass(slots=True)
class _Tok:
    kind: str  # name, int, float, sym, arrow, attrs, end
    text: str
    col: int


def _tokenize(line: str, lineno: int, file: str | None) -> list[_Tok]:
    toks: list[_Tok] = []
    append = toks.append
    for m in _TOKEN.finditer(line):
        kind = m.lastgroup
        if kind is None:  # trailing blanks
            break
        if kind == "name" or kind == "sym":
            append(_Tok(kind, m.group(kind), m.start(kind) + 1))
        elif kind == "num":
            text = m.group(kind)
            append(_Tok("int" if text.isdigit() else "float", text, m.start(kind) + 1))
        elif kind == "arrow":
            append(_Tok(kind, "->", m.start(kind) + 1))
        elif kind == "attrs":
            append(_Tok(kind, m.group(kind), m.start(kind)))
        elif kind == "comment":
            break
        else:  # bad
            ch = m.group(kind)
            if ch == "{":
                raise ParseError(
                    "unclosed '{'; expected '}' to end the attributes",
                    file=file,
                    line=lineno,
                    col=m.start(kind) + 1,
                )
            raise ParseError(
                f"unexpected character {ch!r}; expected a name, a number or one of [ ] ( ) , : = + - * / -> {{",
                file=file,
                line=lineno,
                col=m.start(kind) + 1,
            )
    append(_Tok("end", "", len(line.split("#", 1)[0].rstrip()) + 1))
    return toks


# ----------------------------------------------------------- parsed pieces


@dataclass
class _PIndex:
    terms: list[tuple[str, int, int]]  # rank, coef, col
    offset: int
    col: int

    def affine(self) -> AffineIndex:
        if len(self.terms) == 1 and self.terms[0][1] != 0:
            r, c, _ = self.terms[0]
            return AffineIndex(((r, c),), self.offset)
        merged: dict[str, int] = {}
        for r, c, _ in self.terms:
            merged[r] = merged.get(r, 0) + c
        return AffineIndex(tuple((r, c) for r, c in merged.items() if c != 0), self.offset)


@dataclass
class _PAccess:
    tensor: str
    indices: list[_PIndex]
    col: int


@dataclass
class _PEinsum:
    line: int
    output: _PAccess
    reduce_op: str | None
    reduce_ranks: list[tuple[str, int]]  # rank, col
    reduce_col: int
    map_op: str
    operands: list[_PAccess]
    scalar: float | None
    attrs: list[tuple[str, str]] = field(default_factory=list)
    bits: int = DEFAULT_BITS
    name: str | None = None
    attrs_col: int = 0


@dataclass
class _PDecl:
    name: str
    dims: list[tuple[str, int | None, int]]  # rank, size, col
    bits: int
    line: int
    col: int


@dataclass
class _PSplit:
    parent: str
    children: list[tuple[str, int | None, int]]
    line: int
    col: int


class _LineParser:
    """Recursive descent over the tokens of one line."""

    def __init__(
        self,
        toks: list[_Tok],
        lineno: int,
        file: str | None,
        params: dict[str, int] | None = None,
    ) -> None:
        self.toks = toks
        self.i = 0
        self.line = lineno
        self.file = file
        #: the cascade's parameters (``param NAME = VALUE``), usable as sizes
        self.params = params if params is not None else {}

    # ---------------------------------------------------------- helpers
    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> _Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def error(self, message: str, tok: _Tok | None = None) -> ParseError:
        t = tok or self.tok
        return ParseError(message, file=self.file, line=self.line, col=t.col)

    @staticmethod
    def describe(t: _Tok) -> str:
        if t.kind == "end":
            return "the end of the line"
        if t.kind == "attrs":
            return "'{'"
        return repr(t.text)

    def expect(self, text: str, what: str | None = None) -> _Tok:
        t = self.toks[self.i]
        if t.text == text and (t.kind == "sym" or t.kind == "arrow"):
            self.i += 1
            return t
        raise self.error(f"expected {what or repr(text)} but found {self.describe(t)}")

    def accept(self, text: str) -> bool:
        t = self.toks[self.i]
        if t.text == text and (t.kind == "sym" or t.kind == "arrow"):
            self.i += 1
            return True
        return False

    def name(self, what: str) -> _Tok:
        t = self.toks[self.i]
        if t.kind != "name":
            raise self.error(f"expected {what} but found {self.describe(t)}")
        self.i += 1
        return t

    def integer(self, what: str, lo: int = 0) -> int:
        t = self.tok
        if t.kind == "name" and t.text in self.params:
            v = self.params[t.text]
            if v < lo or v > MAX_SIZE:
                raise self.error(
                    f"{what} {t.text} = {v} is out of range; expected {lo}..{MAX_SIZE}"
                )
            self.i += 1
            return v
        if t.kind != "int":
            raise self.error(f"expected {what} (an integer) but found {self.describe(t)}")
        if len(t.text) > 20:  # beyond any size (and int() refuses 4,300+ digits)
            raise self.error(f"{what} {t.text[:20]}... is out of range; expected {lo}..{MAX_SIZE}")
        v = int(t.text)
        if v < lo or v > MAX_SIZE:
            raise self.error(f"{what} {v} is out of range; expected {lo}..{MAX_SIZE}")
        self.i += 1
        return v

    def end(self) -> None:
        if self.tok.kind != "end":
            raise self.error(f"expected the end of the line but found {self.describe(self.tok)}")

    # ------------------------------------------------------- statements
    def param_statement(self, overrides: dict[str, int]) -> tuple[str, int]:
        """``param NAME = DEFAULT``: a size parameter; ``overrides`` (from the
        loader's parameters) replace the default."""
        self.i += 1  # 'param'
        nt = self.name("a parameter name")
        if nt.text in self.params:
            raise self.error(f"parameter {nt.text} is declared twice", nt)
        self.expect("=", "'=' and the parameter's default value")
        value = self.integer("a parameter value", lo=1)
        self.end()
        return nt.text, overrides.get(nt.text, value)

    def declaration(self) -> list[_PDecl]:
        self.i += 1  # 'declare'
        decls: list[_PDecl] = []
        while True:
            nt = self.name("a tensor name")
            self.expect("[", "'[' after the tensor name")
            dims: list[tuple[str, int | None, int]] = []
            if not self.accept("]"):
                while True:
                    rt = self.name("a rank name")
                    size: int | None = None
                    if self.accept(":"):
                        size = self.integer("a rank size", lo=1)
                    dims.append((rt.text, size, rt.col))
                    if self.accept("]"):
                        break
                    self.expect(",", "',' or ']'")
            bits = DEFAULT_BITS
            if self.tok.kind == "attrs":
                at = self.tok
                for key, value, col in self.attrs(at):
                    if key != "bits":
                        raise ParseError(
                            f"unknown tensor attribute {key!r}; expected bits=N",
                            file=self.file,
                            line=self.line,
                            col=col,
                        )
                    bits = self.bits_value(value, col)
                self.i += 1
            decls.append(_PDecl(nt.text, dims, bits, self.line, nt.col))
            self.accept(",")
            if self.tok.kind == "end":
                return decls
            if self.tok.kind != "name":
                raise self.error(
                    f"expected a tensor declaration or the end of the line but found {self.describe(self.tok)}"
                )

    def rank_statement(self) -> list[tuple[str, int, int]]:
        self.i += 1  # 'rank'
        out: list[tuple[str, int, int]] = []
        while True:
            rt = self.name("a rank name")
            self.expect(":", "':' and the rank's size")
            out.append((rt.text, self.integer("a rank size", lo=1), rt.col))
            self.accept(",")
            if self.tok.kind == "end":
                return out

    def split_statement(self) -> _PSplit:
        if self.tok.kind == "name" and self.tok.text == "split" and self.peek().kind == "name":
            self.i += 1
        pt = self.name("the rank to split")
        if self.accept(":"):
            raise self.error(
                "expected '->' (give the split rank's size in a declaration or a rank statement)"
            )
        self.expect("->", "'->' and the ranks it splits into")
        children: list[tuple[str, int | None, int]] = []
        while True:
            ct = self.name("a rank name")
            size: int | None = None
            if self.accept(":"):
                size = self.integer("a rank size", lo=1)
            children.append((ct.text, size, ct.col))
            if self.tok.kind == "end":
                break
            self.expect(",", "',' or the end of the line")
        if len(children) < 2:
            raise self.error("a split needs at least two ranks (m -> m1, m0)")
        return _PSplit(pt.text, children, self.line, pt.col)

    def bits_value(self, value: str, col: int) -> int:
        if not value.isdigit() or not 1 <= int(value) <= 1024:
            raise ParseError(
                f"bits={value} is not valid; expected an integer 1..1024",
                file=self.file,
                line=self.line,
                col=col,
            )
        return int(value)

    def attrs(self, t: _Tok) -> list[tuple[str, str, int]]:
        out: list[tuple[str, str, int]] = []
        body = t.text
        if not body.strip():
            return out
        pos = t.col + 1
        for part in body.split(","):
            col = pos + len(part) - len(part.lstrip())
            pos += len(part) + 1
            if "=" not in part:
                raise ParseError(
                    f"attribute {part.strip()!r} has no value; expected key=value",
                    file=self.file,
                    line=self.line,
                    col=col,
                )
            key, value = (s.strip() for s in part.split("=", 1))
            if not _ATTR_KEY.match(key):
                raise ParseError(
                    f"bad attribute name {key!r}; expected a name",
                    file=self.file,
                    line=self.line,
                    col=col,
                )
            if not _ATTR_VALUE.match(value):
                raise ParseError(
                    f"bad value {value!r} for attribute {key}; expected letters, digits, '_', '.', '+' or '-'",
                    file=self.file,
                    line=self.line,
                    col=col,
                )
            if any(k == key for k, _, _ in out):
                raise ParseError(
                    f"attribute {key} is given twice", file=self.file, line=self.line, col=col
                )
            out.append((key, value, col))
        return out

    # --------------------------------------------------------- einsums
    def index(self) -> _PIndex:
        toks = self.toks
        t = toks[self.i]
        if t.kind == "name":  # the common case: a bare rank before ',' or ']'
            nt = toks[self.i + 1]
            if nt.kind == "sym" and (nt.text == "," or nt.text == "]"):
                self.i += 1
                return _PIndex([(t.text, 1, t.col)], 0, t.col)
        start = t.col
        terms: list[tuple[str, int, int]] = []
        offset = 0
        sign = 1
        if self.accept("-"):
            sign = -1
        elif self.accept("+"):
            pass
        while True:
            t = self.tok
            if t.kind == "int":
                v = self.integer("an index constant")
                if self.accept("*"):
                    rt = self.name("a rank name after '*'")
                    terms.append((rt.text, sign * v, rt.col))
                else:
                    offset += sign * v
            elif t.kind == "name":
                self.i += 1
                coef = 1
                if self.accept("*"):
                    coef = self.integer("a coefficient after '*'")
                terms.append((t.text, sign * coef, t.col))
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
            raise ParseError(
                f"index offset {offset} is out of range", file=self.file, line=self.line, col=start
            )
        return _PIndex(terms, offset, start)

    def access(self, what: str = "a tensor access such as T[r, s]") -> _PAccess:
        # the hottest path of a large cascade: tokens compared inline, and
        # error messages built only when raised
        nt = self.name(what)
        toks = self.toks
        t = toks[self.i]
        if not (t.text == "[" and t.kind == "sym"):
            raise self.error(f"expected '[' after tensor {nt.text} but found {self.describe(t)}")
        self.i += 1
        idx: list[_PIndex] = []
        t = toks[self.i]
        if t.text == "]" and t.kind == "sym":
            self.i += 1
            return _PAccess(nt.text, idx, nt.col)
        while True:
            idx.append(self.index())
            t = toks[self.i]
            if t.kind == "sym" and (t.text == "]" or t.text == ","):
                self.i += 1
                if t.text == "]":
                    return _PAccess(nt.text, idx, nt.col)
                continue
            raise self.error(f"expected ',' or ']' but found {self.describe(t)}")

    def operand(self) -> _PAccess | tuple[float, int]:
        t = self.tok
        neg = False
        if t.kind == "sym" and t.text == "-" and self.peek().kind in ("int", "float"):
            neg = True
            self.i += 1
            t = self.tok
        if t.kind in ("int", "float"):
            self.i += 1
            v = float(t.text)
            if math.isinf(v) or math.isnan(v):
                raise self.error("the constant is too large; expected a finite number", t)
            return (-v if neg else v, t.col)
        if t.kind == "name" and self.peek().kind == "sym" and self.peek().text == "[":
            return self.access()
        raise self.error(
            f"expected a tensor access such as T[r, s] or a number but found {self.describe(t)}"
        )

    def einsum(self) -> _PEinsum:
        out = self.access("an output tensor such as T[r, s]")
        self.expect("=", "'=' after the output")
        reduce_op: str | None = None
        reduce_ranks: list[tuple[str, int]] = []
        reduce_col = 0
        t = self.tok
        if (
            t.kind == "name"
            and t.text in _REDUCERS
            and self.peek().kind == "sym"
            and self.peek().text == "("
            and not (
                self.peek(2).kind in ("int", "float")
                or (self.peek(2).kind == "sym" and self.peek(2).text == "-")
            )
            and not (self.peek(3).kind == "sym" and self.peek(3).text == "[")
        ):
            reduce_op, reduce_col = t.text, t.col
            self.i += 2
            if self.tok.kind == "sym" and self.tok.text == ")":
                raise self.error(
                    f"a {reduce_op} reduction with no reduced rank; expected {reduce_op}(rank, ...)"
                )
            while True:
                rt = self.name("a reduced rank name")
                reduce_ranks.append((rt.text, rt.col))
                if self.accept(")"):
                    break
                self.expect(",", "',' or ')'")
        map_op, operands, scalar = self.expression()
        pe = _PEinsum(self.line, out, reduce_op, reduce_ranks, reduce_col, map_op, operands, scalar)
        if self.tok.kind == "attrs":
            at = self.tok
            pe.attrs_col = at.col
            for key, value, col in self.attrs(at):
                if key == "bits":
                    pe.bits = self.bits_value(value, col)
                elif key == "name":
                    if not _ATTR_KEY.match(value):
                        raise ParseError(
                            f"Einsum name {value!r} is not a name",
                            file=self.file,
                            line=self.line,
                            col=col,
                        )
                    pe.name = value
                else:
                    if key == "init":
                        try:
                            v = float(value)
                        except ValueError:
                            v = math.nan
                        if math.isnan(v):
                            raise ParseError(
                                f"init={value} is not a number; expected a number, inf or -inf",
                                file=self.file,
                                line=self.line,
                                col=col,
                            ) from None
                    pe.attrs.append((key, value))
            self.i += 1
        self.end()
        return pe

    def expression(self) -> tuple[str, list[_PAccess], float | None]:
        t = self.tok
        if t.kind == "name" and self.peek().kind == "sym" and self.peek().text == "(":
            fn = t.text
            if fn in ("max", "min", "lt", "eq"):
                self.i += 2
                a = self.operand()
                self.expect(",", f"',' between the two operands of {fn}")
                b = self.operand()
                self.expect(")", f"')' to close {fn}(")
                return self.binary(fn, a, b, t)
            if fn in _UNARY_FUNCS:
                self.i += 2
                a = self.operand()
                if fn == "exp" and self.tok.kind == "sym" and self.tok.text == "-":
                    self.i += 1
                    b = self.operand()
                    self.expect(")", "')' to close exp(")
                    return self.binary("expdiff", a, b, t)
                self.expect(")", f"')' to close {fn}(" + (" or '-'" if fn == "exp" else ""))
                if not isinstance(a, _PAccess):
                    raise self.error(f"{fn} of a constant; expected a tensor access", t)
                return _UNARY_FUNCS[fn], [a], None
            if fn in _REDUCERS:
                raise self.error(
                    f"expected {fn}(ranks) followed by an expression, or {fn}(A[..], B[..])", t
                )
            raise self.error(
                f"unknown function {fn!r}; expected one of exp, max, min, lt, eq, rsqrt, silu, gelu, sum",
                t,
            )
        a = self.operand()
        nt = self.tok
        if nt.kind == "sym" and nt.text in _BINOPS:
            self.i += 1
            b = self.operand()
            return self.binary(_BINOPS[nt.text], a, b, nt)
        if not isinstance(a, _PAccess):
            raise self.error("an Einsum of a constant alone; expected a tensor access", t)
        return "copy", [a], None

    def binary(
        self, op: str, a: _PAccess | tuple[float, int], b: _PAccess | tuple[float, int], at: _Tok
    ):
        if isinstance(a, _PAccess) and isinstance(b, _PAccess):
            return op, [a, b], None
        if isinstance(a, _PAccess):
            return op, [a], b[0]  # type: ignore[index]
        if isinstance(b, _PAccess):
            if op in _COMMUTATIVE:
                return op, [b], a[0]
            raise ParseError(
                f"a constant can only be the right operand of {op}; expected a tensor access",
                file=self.file,
                line=self.line,
                col=a[1],
            )
        raise ParseError(
            "both operands are constants; expected a tensor access",
            file=self.file,
            line=self.line,
            col=a[1],
        )


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
    rank_size: dict[str, tuple[int, int, int]] = {}  # rank -> size, line, col
    pes: list[_PEinsum] = []

    def perr(msg: str, line: int, col: int | None = None) -> ParseError:
        return ParseError(msg, file=file, line=line, col=col)

    def set_rank(r: str, size: int, line: int, col: int) -> None:
        if r in rank_size and rank_size[r][0] != size:
            s0, l0, _ = rank_size[r]
            raise perr(
                f"rank {r} has size {size} here but {s0} on line {l0 + line_offset}; expected one size per rank",
                line,
                col,
            )
        rank_size.setdefault(r, (size, line, col))

    for lineno, raw in enumerate(text.splitlines() or [""], start=1):
        m = _CASCADE_LINE.match(raw)
        if m:  # the name is the rest of the line, taken as is (not tokenized)
            if cname is not None:
                raise perr("the cascade is named twice", lineno, m.start(1) + 1)
            cname = m.group(2).strip()
            continue
        toks = _tokenize(raw, lineno, file)
        if toks[0].kind == "end":
            continue
        p = _LineParser(toks, lineno, file, pvals)
        first, second = toks[0], toks[1]
        is_kw = (
            first.kind == "name"
            and first.text in _KEYWORDS
            and not (second.kind == "sym" and second.text == "[")
        )
        if is_kw and first.text == "cascade":
            raise perr("expected the cascade's name after 'cascade'", lineno, second.col)
        elif is_kw and first.text == "param":
            pname, pval = p.param_statement(overrides)
            pvals[pname] = pval
        elif is_kw and first.text == "declare":
            for d in p.declaration():
                decls.append(d)
                for r, s, col in d.dims:
                    if s is not None:
                        set_rank(r, s, lineno, col)
        elif is_kw and first.text == "rank":
            for r, s, col in p.rank_statement():
                set_rank(r, s, lineno, col)
        elif (is_kw and first.text == "split") or (first.kind == "name" and second.kind == "arrow"):
            splits.append(p.split_statement())
        elif first.kind == "name" and second.kind == "sym" and second.text == "[":
            if len(pes) >= MAX_EINSUMS:
                raise perr(f"more than {MAX_EINSUMS:,} Einsums; expected a smaller cascade", lineno)
            pes.append(p.einsum())
        else:
            raise p.error(
                f"expected a statement (param, declare, rank, split, cascade) or an Einsum such as "
                f"OUT[r] = A[r] * B[r] but found {p.describe(first)}",
                first,
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
            raise perr(f"split of {sp.parent}: the ranks must be distinct", sp.line, sp.col)
        for r, s, col in sp.children:
            if r in rank_size and s is not None:
                set_rank(r, s, sp.line, col)
        sizes = [
            s if s is not None else (rank_size[r][0] if r in rank_size else None)
            for r, s, _ in sp.children
        ]
        missing = [i for i, s in enumerate(sizes) if s is None]
        parent = rank_size.get(sp.parent)
        if len(missing) > 1 or (missing and parent is None):
            raise perr(
                f"split of {sp.parent}: cannot work out the size of "
                f"{', '.join(sp.children[i][0] for i in missing)}; expected sizes such as {sp.children[-1][0]}:64",
                sp.line,
                sp.children[missing[0]][2],
            )
        if missing:
            rest = math.prod(s for s in sizes if s is not None)
            if parent[0] % rest:
                raise perr(
                    f"split of {sp.parent}: {parent[0]} is not divisible by {rest}", sp.line, sp.col
                )
            i = missing[0]
            sizes[i] = parent[0] // rest
            set_rank(sp.children[i][0], sizes[i], sp.line, sp.children[i][2])
        total = math.prod(sizes)  # type: ignore[arg-type]
        if total > MAX_SIZE:
            raise perr(f"split of {sp.parent}: size {total} is out of range", sp.line, sp.col)
        for (r, _, col), s in zip(sp.children, sizes, strict=True):
            set_rank(r, s, sp.line, col)  # type: ignore[arg-type]
        set_rank(sp.parent, total, sp.line, sp.col)

    # tensors: declared inputs first
    tensors: dict[str, Tensor] = {}
    declared_line: dict[str, int] = {}
    for d in decls:
        if d.name in tensors:
            raise perr(
                f"tensor {d.name} is declared twice (first on line {declared_line[d.name] + line_offset})",
                d.line,
                d.col,
            )
        shape: list[int] = []
        for r, s, col in d.dims:
            if s is None:
                if r not in rank_size:
                    raise perr(f"rank {r} of {d.name} has no size; expected {r}:SIZE", d.line, col)
                s = rank_size[r][0]
            shape.append(s)
        ranks = tuple(r for r, _, _ in d.dims)
        if len(set(ranks)) != len(ranks):
            raise perr(
                f"tensor {d.name} names a rank twice; expected distinct rank names", d.line, d.col
            )
        tensors[d.name] = Tensor(d.name, ranks, tuple(shape), d.bits)
        declared_line[d.name] = d.line

    def size_of(r: str, line: int, col: int) -> int:
        if r not in rank_size:
            raise perr(
                f"rank {r} has no size; expected it in a declaration (T[{r}:SIZE]), a rank statement or a split",
                line,
                col,
            )
        return rank_size[r][0]

    # produced tensors: shape from the output indices
    produced_line: dict[str, int] = {}
    names_line: dict[str, int] = {}
    for pe in pes:
        o = pe.output
        if o.tensor in tensors and o.tensor in declared_line:
            raise perr(
                f"tensor {o.tensor} is declared as an input on line {declared_line[o.tensor] + line_offset} "
                f"and cannot also be produced",
                pe.line,
                o.col,
            )
        if o.tensor in produced_line:
            raise perr(
                f"tensor {o.tensor} is already produced on line {produced_line[o.tensor] + line_offset}; "
                f"expected one Einsum per tensor",
                pe.line,
                o.col,
            )
        ranks: list[str] = []
        shape = []
        for ix in o.indices:
            if len(ix.terms) != 1 or ix.terms[0][1] != 1 or ix.offset < 0:
                raise perr(
                    "an output index must be a rank or rank+offset (such as m1+1)", pe.line, ix.col
                )
            r = ix.terms[0][0]
            if r in ranks:
                raise perr(
                    f"rank {r} indexes the output twice; expected distinct ranks",
                    pe.line,
                    ix.terms[0][2],
                )
            ranks.append(r)
            shape.append(size_of(r, pe.line, ix.terms[0][2]) + ix.offset)
        tensors[o.tensor] = Tensor(o.tensor, tuple(ranks), tuple(shape), pe.bits)
        produced_line[o.tensor] = pe.line
        ename = pe.name or o.tensor
        if ename in names_line:
            raise perr(
                f"two Einsums are named {ename} (lines {names_line[ename] + line_offset} and {pe.line + line_offset})",
                pe.line,
                o.col,
            )
        names_line[ename] = pe.line

    # Einsums
    einsums: list[Einsum] = []
    line_of: dict[str, int] = {}
    for pe in pes:
        ename = pe.name or pe.output.tensor
        out_t = tensors[pe.output.tensor]
        out_ranks = list(out_t.ranks)
        right: list[str] = []
        for a in pe.operands:
            if a.tensor not in tensors:
                raise perr(
                    f"tensor {a.tensor} is neither declared nor produced; expected a declare statement for it",
                    pe.line,
                    a.col,
                )
            t = tensors[a.tensor]
            if len(a.indices) != len(t.shape):
                raise perr(
                    f"{a.tensor} has {len(t.shape)} ranks ({', '.join(t.ranks)}) but is indexed with {len(a.indices)}",
                    pe.line,
                    a.col,
                )
            for ix in a.indices:
                for r, _, col in ix.terms:
                    size_of(r, pe.line, col)
                    if r not in out_ranks and r not in right:
                        right.append(r)
        if pe.reduce_op is not None:
            listed = [r for r, _ in pe.reduce_ranks]
            for r, col in pe.reduce_ranks:
                if listed.count(r) > 1:
                    raise perr(f"rank {r} is listed twice in {pe.reduce_op}(...)", pe.line, col)
                if r in out_ranks:
                    raise perr(
                        f"rank {r} is in the output, so {pe.reduce_op}({r}) reduces nothing; "
                        f"expected ranks that appear only on the right",
                        pe.line,
                        col,
                    )
                if r not in right:
                    raise perr(
                        f"rank {r} does not appear on the right; expected one of: {', '.join(right) or '(none)'}",
                        pe.line,
                        col,
                    )
            missing = [r for r in right if r not in listed]
            if missing:
                raise perr(
                    f"rank {missing[0]} appears only on the right but is not reduced; expected "
                    f"{pe.reduce_op}({', '.join(listed + missing)})",
                    pe.line,
                    pe.reduce_col,
                )
            reduced, reduce_op = listed, pe.reduce_op
        else:
            reduced, reduce_op = right, ("sum" if right else "none")
        rank_sizes = tuple((r, rank_size[r][0]) for r in [*out_ranks, *reduced])
        size_dict = dict(rank_sizes)
        inputs: list[Access] = []
        for a in pe.operands:
            t = tensors[a.tensor]
            affs = tuple(ix.affine() for ix in a.indices)
            for ix, aff, dim, size in zip(a.indices, affs, t.ranks, t.shape, strict=True):
                lo, hi = aff.bounds(size_dict)
                if lo < 0 or hi >= size:
                    raise perr(
                        f"index {aff.to_text()} of {a.tensor} spans {lo}..{hi} but rank {dim} has size {size}; "
                        f"expected 0..{size - 1}",
                        pe.line,
                        ix.col,
                    )
            inputs.append(Access(a.tensor, affs, t.bits))
        out_acc = Access(
            pe.output.tensor, tuple(ix.affine() for ix in pe.output.indices), out_t.bits
        )
        einsums.append(
            Einsum(
                name=ename,
                output=out_acc,
                inputs=tuple(inputs),
                map_op=pe.map_op,
                reduce_op=reduce_op,
                rank_sizes_items=rank_sizes,
                attrs=tuple(pe.attrs),
                scalar=pe.scalar,
            )
        )
        line_of[ename] = pe.line

    # dependence order: a forward read must follow its producer in the text
    pos = {e.name: i for i, e in enumerate(einsums)}
    for d in dependences(einsums):
        if d.carried or pos[d.producer] < pos[d.consumer]:
            continue
        e = next(x for x in einsums if x.name == d.consumer)
        col = next(a.col for a in pes[pos[d.consumer]].operands if a.tensor == d.tensor)
        if d.producer == d.consumer:
            raise perr(
                f"{e.name} reads its own output {d.tensor} at the index it writes; expected an earlier index "
                f"such as {d.tensor}[r] while writing {d.tensor}[r+1]",
                line_of[e.name],
                col,
            )
        try:
            canonical_order(einsums)
        except WorkloadError as exc:
            raise perr(exc.message, line_of[e.name], col) from None
        raise perr(
            f"tensor {d.tensor} is used before it is produced (on line {line_of[d.producer] + line_offset}); "
            f"expected Einsums in dependence order",
            line_of[e.name],
            col,
        )

    try:
        ordered = canonical_order(einsums)
        tensor_list = [tensors[n] for n in declared_line] + [
            tensors[e.output.tensor] for e in ordered
        ]
        return Cascade(
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
        raise perr(exc.message, where.line, where.output.col) from None


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
        dims = ", ".join(f"{r}:{s}" for r, s in zip(t.ranks, t.shape, strict=True))
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
    for e in c.einsums:
        lines.append(format_einsum(e))
    return "\n".join(lines) + "\n"


def format_einsum(e: Einsum) -> str:
    """One Einsum as a line of the text format."""
    ins = [a.to_text() for a in e.inputs]
    s = None if e.scalar is None else _fmt_scalar(e.scalar)
    operands = ins + ([s] if s is not None else [])
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
    attrs = list(e.attrs)
    if e.name != e.output.tensor:
        attrs.insert(0, ("name", e.name))
    if e.output.bits != DEFAULT_BITS:
        attrs.insert(0, ("bits", str(e.output.bits)))
    tail = " {" + ", ".join(f"{k}={v}" for k, v in attrs) + "}" if attrs else ""
    return f"{e.output.to_text()} = {red}{expr}{tail}"


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

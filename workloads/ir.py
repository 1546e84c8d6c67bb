"""The Einsum-cascade intermediate representation (immutable, serialisable).

Notation follows FuseMax/TeAAL: every tensor has named ranks; an Einsum is
``Out[ranks] = map(In1[...], In2[...])`` reduced with ``reduce_op`` over the
ranks that appear on the right only. Index expressions are affine
(``p*stride + r*dil``), so convolutions are expressible.

Downstream layers (mappers, sim) only rely on:
  * ``Einsum.rank_sizes``   iteration space, ordered ``{rank: size}``
  * ``Einsum.inputs`` / ``Einsum.output``  ``Access`` objects whose
    ``indices`` are ``AffineIndex`` values (terms of (rank, coefficient))
  * ``Einsum.op_counts()``  operations per operator class
  * ``Cascade.tensor(name)`` for datatype bits and shape.

Iterative Einsums (FuseMax's running max ``RM[m1+1,p] = max(RM[m1,p],
LM[m1,p])``) read a tensor at a smaller index of a rank than the index its
producer writes. Such a read is a *carried* dependence: it refers to an earlier
iteration of that rank. Einsums tied together by carried reads form a
*recurrence* that runs step by step over the carried rank; every other
producer -> consumer edge is an ordinary (forward) dependence, and the forward
edges must form a DAG. ``Cascade.einsums`` is kept in an order where every
producer precedes its forward consumers (see :func:`canonical_order`).

Operation counts (``Einsum.op_counts``), per point of the iteration space:

=========  ===============================================================
map op     classes
=========  ===============================================================
mul        1 mac (a multiply runs on the MAC unit; mul + sum is one mac)
add, sub   1 add
max, min   1 max (a compare)
div        1 div
exp        1 exp
expdiff    1 exp: exp-of-difference is one operator in FuseMax's extended
           Einsums (on a 2D array it costs 6 MACs + 1 add, the add being the
           subtraction; a native exp unit takes it in one operation)
rsqrt      1 div (reciprocal square root, counted as one divide-class op)
silu       1 exp + 1 add + 1 div   (x / (1 + exp(-x)))
gelu       1 mac + 1 exp + 1 add + 1 div (x / (1 + exp(-1.702 x)))
copy       nothing
lt, eq     1 max (a compare): 1.0 where ``a < b`` (``a == b``), else 0.0
=========  ===============================================================

Causal masks. An Einsum with the attributes ``mask=causal``,
``mask_key=K`` and ``mask_query=Q`` (``K`` and ``Q`` are output ranks, or
dot-separated output ranks such as ``m1.m0`` read as one mixed-radix index,
outer rank first) writes ``-inf`` at the output points where the key index
exceeds the query index plus ``mask_offset`` (default: key extent minus
query extent, so the last query sees every key: the bottom-right alignment
of a decode step whose queries are the newest positions). After ``max`` and
``exp`` such points contribute nothing: that is a causal softmax. Operation
counts stay those of the whole iteration space (an upper bound); cost models
that skip masked blocks read :attr:`Einsum.mask`.

The reduce operator accumulates into an identity-initialised output, one
reduce op per iteration point: sum -> 1 add (none when the map is mul: the
add is part of the mac), max/min -> 1 max, none -> nothing.

Construction. :class:`Tensor`, :class:`AffineIndex`, :class:`Access` and
:class:`Einsum` are frozen dataclasses with their own ``__init__``, which
writes the fields into the instance ``__dict__``: the generated one sets
each field with ``object.__setattr__`` (the class's ``__setattr__`` refuses),
which made building these objects a sixth of the time of parsing a large
cascade (150,000 of them for 30,000 Einsums); this is 2.5 times faster.
Each takes its fields in order, with their defaults
(``tests/workloads/test_ir.py`` checks that against the dataclass fields).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from workloads.errors import WorkloadError
from workloads.memo import BoundedCache


class cached_property:  # noqa: N801 - used as functools.cached_property is
    """:func:`functools.cached_property` without its per-access lock.

    Python 3.11's version takes an ``RLock`` on every first access, which cost
    a tenth of the time of validating a cascade of 10,000 Einsums (tens of
    thousands of frozen objects, each asked once). The value is stored in the
    instance ``__dict__`` (the classes here have one: see "Construction" in
    the module docstring), which then shadows this non-data descriptor.
    Computing a value twice in a race is harmless: the objects are immutable.
    """

    def __init__(self, func: Any) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value


#: Operator classes a compute unit is rated in (ops/cycle, pJ/op).
OP_CLASSES: tuple[str, ...] = ("mac", "add", "max", "exp", "div")

#: the place of "mac" in OP_CLASSES (and in Einsum._op_counts)
_MAC = OP_CLASSES.index("mac")

#: Map operators (applied once per point of the iteration space).
MAP_OPS: tuple[str, ...] = (
    "mul",
    "add",
    "sub",
    "max",
    "min",
    "div",
    "exp",
    "expdiff",
    "copy",
    "rsqrt",
    "silu",
    "gelu",
    "lt",
    "eq",
)

#: Reduce operators (applied over the ranks that appear on the right only).
REDUCE_OPS: tuple[str, ...] = ("sum", "max", "min", "none")

#: Map operators taking two operands (two tensors, or a tensor and a scalar).
BINARY_MAP_OPS: frozenset[str] = frozenset(
    {"mul", "add", "sub", "max", "min", "div", "expdiff", "lt", "eq"}
)
#: Map operators taking one tensor operand.
UNARY_MAP_OPS: frozenset[str] = frozenset({"exp", "copy", "rsqrt", "silu", "gelu"})

#: ops per iteration point of each map operator (see the module docstring)
MAP_OP_COUNTS: dict[str, dict[str, int]] = {
    "mul": {"mac": 1},
    "add": {"add": 1},
    "sub": {"add": 1},
    "max": {"max": 1},
    "min": {"max": 1},
    "div": {"div": 1},
    "exp": {"exp": 1},
    "expdiff": {"exp": 1},
    "copy": {},
    "rsqrt": {"div": 1},
    "silu": {"exp": 1, "add": 1, "div": 1},
    "gelu": {"mac": 1, "exp": 1, "add": 1, "div": 1},
    "lt": {"max": 1},
    "eq": {"max": 1},
}

#: ops per iteration point of each reduce operator (sum after mul: 0, see above)
REDUCE_OP_COUNTS: dict[str, dict[str, int]] = {
    "sum": {"add": 1},
    "max": {"max": 1},
    "min": {"max": 1},
    "none": {},
}

#: value an output tensor holds before its Einsum writes it, by map op; it is
#: what an iterative Einsum reads at its first step (RM[0] = -inf, RD[0] = 0)
MAP_OP_INIT: dict[str, float] = {
    "max": -math.inf,
    "min": math.inf,
    "mul": 1.0,
    "div": 1.0,
}

#: largest rank size, coefficient or offset accepted (keeps all arithmetic exact)
MAX_SIZE: int = 2**48
#: most Einsums in one cascade (parsing and validating cost ~30 us each, so
#: the largest cascade takes about a second; see docs/workloads.md)
MAX_EINSUMS: int = 32_768


@dataclass(frozen=True)
class Tensor:
    """A named tensor with named ranks, their sizes and a datatype width."""

    name: str
    ranks: tuple[str, ...]
    shape: tuple[int, ...]
    bits: int = 16

    def __init__(
        self, name: str, ranks: tuple[str, ...], shape: tuple[int, ...], bits: int = 16
    ) -> None:
        # see "Construction" in the module docstring
        self.__dict__.update(name=name, ranks=ranks, shape=shape, bits=bits)

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def bytes(self) -> float:
        return self.elements * self.bits / 8

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ranks": list(self.ranks),
            "shape": list(self.shape),
            "bits": self.bits,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tensor:
        return cls(
            name=str(d["name"]),
            ranks=tuple(str(r) for r in d["ranks"]),
            shape=tuple(int(s) for s in d["shape"]),
            bits=int(d.get("bits", 16)),
        )


@dataclass(frozen=True)
class AffineIndex:
    """``sum(coef * rank) + offset`` indexing one dimension of a tensor."""

    terms: tuple[tuple[str, int], ...]
    offset: int = 0

    def __init__(self, terms: tuple[tuple[str, int], ...], offset: int = 0) -> None:
        # see "Construction" in the module docstring
        d = self.__dict__
        d["terms"] = terms
        d["offset"] = offset

    @cached_property
    def ranks(self) -> tuple[str, ...]:
        return tuple([r for r, _ in self.terms])

    def extent(self, tile: dict[str, int]) -> int:
        """Number of distinct index values touched by a tile of the ranks.

        ``tile`` maps rank -> tile size (ranks missing count as 1). For a
        single term this is the tile size; for ``p*s + r*d`` it is the sliding
        window ``s*(P-1) + d*(R-1) + 1`` (an upper bound when strides skip).
        """
        return sum(abs(c) * (tile.get(r, 1) - 1) for r, c in self.terms) + 1

    def bounds(self, sizes: dict[str, int]) -> tuple[int, int]:
        """Smallest and largest index value when each rank spans ``range(size)``."""
        lo = hi = self.offset
        for r, c in self.terms:
            span = c * (sizes.get(r, 1) - 1)
            lo += min(0, span)
            hi += max(0, span)
        return lo, hi

    @property
    def simple_rank(self) -> str | None:
        """The rank when the index is a bare ``rank`` (coefficient 1, offset 0)."""
        if len(self.terms) == 1 and self.terms[0][1] == 1 and self.offset == 0:
            return self.terms[0][0]
        return None

    @classmethod
    def of(cls, rank: str, offset: int = 0) -> AffineIndex:
        return cls(((rank, 1),), offset)

    def to_text(self) -> str:
        """``p*2+r``, ``m1+1``, ``7`` (the text format's spelling)."""
        return self._text

    @cached_property
    def _text(self) -> str:
        # cached: the parser shares one AffineIndex among all equal indices,
        # so printing a large cascade spells each distinct index once
        out = ""
        for r, c in self.terms:
            body = r if abs(c) == 1 else f"{r}*{abs(c)}"
            out += ("-" if c < 0 else ("+" if out else "")) + body
        if self.offset or not out:
            out += ("-" if self.offset < 0 else ("+" if out else "")) + str(abs(self.offset))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"terms": [[r, c] for r, c in self.terms], "offset": self.offset}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AffineIndex:
        return cls(
            terms=tuple((str(r), int(c)) for r, c in d["terms"]),
            offset=int(d.get("offset", 0)),
        )


#: the ``_text`` of an AffineIndex or Access (``to_text()`` without a call)
_TEXT = operator.attrgetter("_text")


@dataclass(frozen=True)
class Access:
    """A tensor as read or written by one Einsum: ``T[idx0, idx1, ...]``."""

    tensor: str
    indices: tuple[AffineIndex, ...]
    #: datatype width of the tensor (copied from its declaration so an
    #: Einsum is self-contained for the mappers and cost models)
    bits: int = 16

    def __init__(self, tensor: str, indices: tuple[AffineIndex, ...], bits: int = 16) -> None:
        # see "Construction" in the module docstring
        d = self.__dict__
        d["tensor"] = tensor
        d["indices"] = indices
        d["bits"] = bits

    @cached_property
    def ranks(self) -> frozenset[str]:
        return frozenset(r for ix in self.indices for r in ix.ranks)

    @property
    def ordered_ranks(self) -> tuple[str, ...]:
        """The ranks of the indices in order of appearance, each once."""
        seen: dict[str, None] = {}
        for ix in self.indices:
            for r in ix.ranks:
                seen.setdefault(r, None)
        return tuple(seen)

    def footprint_elements(self, tile: dict[str, int]) -> int:
        """Distinct elements touched by a tile (an upper bound for strided windows)."""
        return math.prod(ix.extent(tile) for ix in self.indices)

    def to_text(self) -> str:
        return self._text

    @cached_property
    def _text(self) -> str:  # cached: the parser shares one Access among equal ones
        return f"{self.tensor}[{', '.join(map(_TEXT, self.indices))}]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "tensor": self.tensor,
            "indices": [ix.to_dict() for ix in self.indices],
            "bits": self.bits,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Access:
        return cls(
            tensor=str(d["tensor"]),
            indices=tuple(AffineIndex.from_dict(x) for x in d["indices"]),
            bits=int(d.get("bits", 16)),
        )


@dataclass(frozen=True)
class CausalMask:
    """``key > query + offset`` is masked (see the module docstring).

    ``key`` and ``query`` are tuples of output ranks read as one mixed-radix
    index each (outer rank first).
    """

    key: tuple[str, ...]
    query: tuple[str, ...]
    offset: int

    def index(self, ranks: tuple[str, ...], values: dict[str, Any], sizes: dict[str, int]) -> Any:
        """Mixed-radix index of ``ranks`` given per-rank values (ints or arrays)."""
        out: Any = 0
        for r in ranks:
            out = out * sizes[r] + values[r]
        return out

    def visible_pairs(self, n_query: int, n_key: int) -> int:
        """(query, key) pairs not masked, for query and key extents (closed form)."""
        total = 0
        # query q sees keys 0 .. min(n_key - 1, q + offset)
        lo = max(0, -self.offset)  # first query that sees at least key 0
        full_from = max(0, n_key - 1 - self.offset)  # queries from here see every key
        if lo < min(full_from, n_query):
            a, b = lo, min(full_from, n_query) - 1
            total += (b - a + 1) * (self.offset + 1) + (a + b) * (b - a + 1) // 2
        total += max(0, n_query - max(full_from, lo)) * n_key
        return total


MASK_KINDS: tuple[str, ...] = ("causal",)


def _mask_ranks(text: str) -> tuple[str, ...]:
    return tuple(r for r in text.split(".") if r)


@dataclass(frozen=True)
class Einsum:
    """One (extended) Einsum of a cascade.

    ``scalar`` is a constant second operand of a binary map op
    (``Y[p] = X[p] * 0.125``, ``R[p] = max(X[p], 0)``); it is ``None`` when
    both operands are tensors.
    """

    name: str
    output: Access
    inputs: tuple[Access, ...]
    map_op: str
    reduce_op: str
    #: ordered iteration space {rank: size}; held as a tuple of pairs so the
    #: value stays hashable.
    rank_sizes_items: tuple[tuple[str, int], ...]
    #: free-form attributes (e.g. FuseMax binding hints, iterative flag)
    attrs: tuple[tuple[str, str], ...] = field(default=())
    scalar: float | None = None

    def __init__(
        self,
        name: str,
        output: Access,
        inputs: tuple[Access, ...],
        map_op: str,
        reduce_op: str,
        rank_sizes_items: tuple[tuple[str, int], ...],
        attrs: tuple[tuple[str, str], ...] = (),
        scalar: float | None = None,
    ) -> None:
        # see "Construction" in the module docstring
        self.__dict__.update(
            name=name,
            output=output,
            inputs=inputs,
            map_op=map_op,
            reduce_op=reduce_op,
            rank_sizes_items=rank_sizes_items,
            attrs=attrs,
            scalar=scalar,
        )

    @property
    def rank_sizes(self) -> dict[str, int]:
        return dict(self.rank_sizes_items)

    # Derived values are computed once per Einsum (the dataclass is frozen,
    # so they cannot go stale); validation and the summaries of cascades of
    # thousands of Einsums ask for them many times.
    @cached_property
    def ranks(self) -> tuple[str, ...]:
        return tuple(r for r, _ in self.rank_sizes_items)

    @cached_property
    def reduced_ranks(self) -> tuple[str, ...]:
        out = []  # the output's ranks (a few: no set; loops: comprehensions are calls)
        for ix in self.output.indices:
            for r, _ in ix.terms:
                out.append(r)
        reduced = []
        for r, _ in self.rank_sizes_items:
            if r not in out:
                reduced.append(r)
        return tuple(reduced)

    @property
    def accesses(self) -> tuple[Access, ...]:
        """Output first, then the inputs."""
        return (self.output, *self.inputs)

    @property
    def iteration_points(self) -> int:
        return math.prod(s for _, s in self.rank_sizes_items)

    @property
    def output_points(self) -> int:
        """Number of output elements written (the product of the output ranks)."""
        out = self.output.ranks
        return math.prod(s for r, s in self.rank_sizes_items if r in out)

    @property
    def attr(self) -> dict[str, str]:
        return dict(self.attrs)

    @property
    def mask(self) -> CausalMask | None:
        """The causal mask of the attributes (None when unmasked)."""
        a = self.attr
        if "mask" not in a:
            return None
        key, query = _mask_ranks(a.get("mask_key", "")), _mask_ranks(a.get("mask_query", ""))
        sizes = self.rank_sizes
        nk = math.prod(sizes.get(r, 1) for r in key)
        nq = math.prod(sizes.get(r, 1) for r in query)
        offset = int(a["mask_offset"]) if "mask_offset" in a else nk - nq
        return CausalMask(key, query, offset)

    def op_counts(self) -> dict[str, int]:
        """Operations per operator class over the whole iteration space.

        Every class of :data:`OP_CLASSES` is present (zero when unused); see
        the module docstring for how each map and reduce operator counts.
        """
        return dict(zip(OP_CLASSES, self._op_counts, strict=True))

    @cached_property
    def _op_counts(self) -> tuple[int, ...]:
        """:meth:`op_counts` as a tuple in :data:`OP_CLASSES` order."""
        key = (self.map_op, self.reduce_op, bool(self.reduced_ranks))
        per_point = _OPS_PER_POINT.get(key) or _ops_per_point(*key)
        n = 1  # iteration_points, without a generator (asked of every Einsum)
        for _, size in self.rank_sizes_items:
            n *= size
        return tuple(map(n.__mul__, per_point))

    @property
    def macs(self) -> int:
        return self._op_counts[_MAC]

    @property
    def ops(self) -> int:
        """All operations, every class counted as one."""
        return sum(self._op_counts)

    def footprint_bytes(self, tile: dict[str, int] | None = None) -> dict[str, float]:
        """Bytes of each tensor touched by one tile of the iteration space.

        ``tile`` maps rank -> tile size (missing ranks count as 1); by default
        the whole iteration space. Keys are tensor names, the output included;
        a tensor accessed twice counts its larger footprint.
        """
        t = self.rank_sizes if tile is None else tile
        out: dict[str, float] = {}
        for a in self.accesses:
            b = a.footprint_elements(t) * a.bits / 8
            out[a.tensor] = max(out.get(a.tensor, 0.0), b)
        return out

    def compulsory_read_bytes(self) -> float:
        """Bytes every input must be read at least once (the output excluded)."""
        fp = self.footprint_bytes()
        names = {a.tensor for a in self.inputs if a.tensor != self.output.tensor}
        return sum(fp[n] for n in names)

    def compulsory_write_bytes(self) -> float:
        """Bytes of output written at least once."""
        return self.output_points * self.output.bits / 8

    def compulsory_traffic_bytes(self) -> float:
        """Compulsory reads plus writes when this Einsum runs alone."""
        return self.compulsory_read_bytes() + self.compulsory_write_bytes()

    @property
    def init_value(self) -> float:
        """Value of the output before this Einsum writes it (attr ``init`` or by map op)."""
        if "init" in self.attr:
            return float(self.attr["init"])
        return MAP_OP_INIT.get(self.map_op, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "output": self.output.to_dict(),
            "inputs": [a.to_dict() for a in self.inputs],
            "map_op": self.map_op,
            "reduce_op": self.reduce_op,
            "rank_sizes": [[r, s] for r, s in self.rank_sizes_items],
            "attrs": [[k, v] for k, v in self.attrs],
            "scalar": self.scalar,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Einsum:
        scalar = d.get("scalar")
        return cls(
            name=str(d["name"]),
            output=Access.from_dict(d["output"]),
            inputs=tuple(Access.from_dict(a) for a in d["inputs"]),
            map_op=str(d["map_op"]),
            reduce_op=str(d["reduce_op"]),
            rank_sizes_items=tuple((str(r), int(s)) for r, s in d["rank_sizes"]),
            attrs=tuple((str(k), str(v)) for k, v in d.get("attrs", ())),
            scalar=None if scalar is None else float(scalar),
        )


def _ops_per_point(map_op: str, reduce_op: str, reduces: bool) -> tuple[int, ...]:
    """Operations per iteration point, in :data:`OP_CLASSES` order."""
    counts = dict.fromkeys(OP_CLASSES, 0)
    for cls, k in MAP_OP_COUNTS.get(map_op, {}).items():
        counts[cls] += k
    if reduces and not (reduce_op == "sum" and map_op == "mul"):
        for cls, k in REDUCE_OP_COUNTS.get(reduce_op, {}).items():
            counts[cls] += k
    out = _OPS_PER_POINT[map_op, reduce_op, reduces] = tuple(counts.values())
    return out


#: _ops_per_point by (map op, reduce op, whether a rank is reduced)
_OPS_PER_POINT: dict[tuple[str, str, bool], tuple[int, ...]] = {}


# ----------------------------------------------------------- dependences


@dataclass(frozen=True)
class Dependence:
    """``consumer`` reads ``tensor`` written by ``producer``.

    ``carried`` is the rank over which the read refers to an earlier iteration
    (the read index of that rank is below the written one), or ``""``.
    """

    producer: str
    consumer: str
    tensor: str
    carried: str = ""


def _carried_rank(write: Access, read: Access) -> str:
    """The rank on which ``read`` lags ``write`` (``RM[m1]`` vs ``RM[m1+1]``), or ""."""
    for w, r in zip(write.indices, read.indices, strict=False):
        # a lag is a read of the written index's rank (coefficient 1) at a
        # smaller offset; the offsets are compared first, as most reads
        # of a produced tensor are at the index it is written
        if r.offset < w.offset:
            wt, rt = w.terms, r.terms
            if len(wt) == 1 and wt[0][1] == 1 and len(rt) == 1 and rt[0] == (wt[0][0], 1):
                return wt[0][0]
    return ""


def dependences(einsums: Iterable[Einsum]) -> list[Dependence]:
    """Every producer -> consumer read, with carried reads marked."""
    if isinstance(einsums, tuple):  # a cascade's: cached
        return [Dependence(*d) for d in _dependence_tuples(einsums)]
    return [Dependence(*d) for d in _find_dependences(tuple(einsums))]


#: values derived from an Einsum tuple (its dependences, graphs, DAG edges),
#: keyed by the tuple's id, for the last few tuples (each kept alive in its
#: entry, so the id cannot be reused while cached): validating a cascade and
#: asking for its order, passes and recurrences compute each once
_DERIVED: BoundedCache[tuple[tuple[Einsum, ...], dict[str, Any]]] = BoundedCache(8)


def _per_tuple(einsums: tuple[Einsum, ...], what: str, build: Any) -> Any:
    """``build(einsums)``, cached for the same tuple object (see :data:`_DERIVED`).
    Callers must not modify the value."""
    if not isinstance(einsums, tuple):
        return build(einsums)
    hit = _DERIVED.get(id(einsums))
    if hit is None or hit[0] is not einsums:
        hit = _DERIVED.put(id(einsums), (einsums, {}))
    values = hit[1]  # two threads may build the same value: harmless
    if what not in values:
        values[what] = build(einsums)
    return values[what]


def _dependence_tuples(einsums: tuple[Einsum, ...]) -> tuple[tuple[str, str, str, str], ...]:
    """``(producer, consumer, tensor, carried rank or "")`` of every read of a
    produced tensor, in Einsum and input order: :func:`dependences` as plain
    tuples, cached (a cascade of 30,000 Einsums has 60,000 of them)."""
    return _per_tuple(einsums, "dependences", _find_dependences)


def _find_dependences(einsums: tuple[Einsum, ...]) -> tuple[tuple[str, str, str, str], ...]:
    producer = {e.output.tensor: e for e in einsums}
    out: list[tuple[str, str, str, str]] = []
    for c in einsums:
        for a in c.inputs:
            p = producer.get(a.tensor)
            if p is not None:
                # a read of the very Access written (the parser shares equal
                # ones) is at the written index: not carried
                carried = "" if a is p.output else _carried_rank(p.output, a)
                out.append((p.name, c.name, a.tensor, carried))
    return tuple(out)


def _has_carried(einsums: tuple[Einsum, ...]) -> bool:
    """Whether any read is carried (only then can there be a recurrence)."""
    return _per_tuple(einsums, "carried", _find_carried)


def _find_carried(einsums: tuple[Einsum, ...]) -> bool:
    return any([d[3] for d in _dependence_tuples(einsums)])


def _graphs(einsums: tuple[Einsum, ...]):
    """:func:`_build_graphs`, cached for the same tuple object: validating a
    cascade and asking for its passes and recurrences build the graphs once.
    Callers must not modify the graphs (:meth:`Cascade.graph` gives fresh ones).
    """
    return _per_tuple(einsums, "graphs", _build_graphs)


def _build_graphs(einsums: tuple[Einsum, ...]):
    """(full graph, DAG, SCC index) over Einsum names; see :meth:`Cascade.graph`."""
    import networkx as nx

    # edge data gathered in plain dicts first, then added in bulk (one
    # networkx call per graph rather than one per dependence)
    edges: dict[tuple[str, str], dict[str, Any]] = {}
    for producer, consumer, tensor, carried in _dependence_tuples(einsums):
        data = edges.get((producer, consumer))
        if data is not None:
            data["tensors"] = (*data["tensors"], tensor)
            data["carried"] = data["carried"] or carried
        else:
            edges[producer, consumer] = {
                "tensor": tensor,
                "tensors": (tensor,),
                "carried": carried,
            }
    full = nx.DiGraph()
    full.add_nodes_from(e.name for e in einsums)
    full.add_edges_from((u, v, data) for (u, v), data in edges.items())
    scc_of: dict[str, int] = {}
    for i, comp in enumerate(nx.strongly_connected_components(full)):
        for n in comp:
            scc_of[n] = i
    dag = nx.DiGraph()
    dag.add_nodes_from(full.nodes)
    dag.add_edges_from(
        (u, v, dict(data))
        for (u, v), data in edges.items()
        if not (data["carried"] and (u == v or scc_of[u] == scc_of[v]))
    )
    return full, dag, scc_of


def _dag_edges(einsums: tuple[Einsum, ...]) -> frozenset[tuple[str, str]] | None:
    """The (producer, consumer) edges of the DAG of :meth:`Cascade.graph`, or
    None when they are those of every dependence (no read is carried, as in
    most cascades): then neither a set nor a graph is built."""
    if not _has_carried(einsums):
        return None
    return _per_tuple(einsums, "dag edges", _find_dag_edges)


def _find_dag_edges(einsums: tuple[Einsum, ...]) -> frozenset[tuple[str, str]]:
    return frozenset(_graphs(einsums)[1].edges)


def canonical_order(einsums: Iterable[Einsum]) -> tuple[Einsum, ...]:
    """The Einsums in a dependence-respecting order, as close to the given one as possible.

    Stable (Kahn's algorithm, smallest original position first), so an order
    that is already valid is returned unchanged. Raises on a cycle of forward
    dependences.
    """
    import heapq

    es = tuple(einsums)
    edges = _dag_edges(es)
    pos = {e.name: i for i, e in enumerate(es)}
    if edges is None:
        deps = _dependence_tuples(es)
        for p, c, _, _ in deps:
            if pos[p] >= pos[c]:
                edges = frozenset((u, v) for u, v, _, _ in deps)
                break
        else:
            return es  # Kahn's algorithm would keep this order: the same tuple, cache kept
    elif all(pos[u] < pos[v] for u, v in edges):
        return es
    succ: dict[str, list[str]] = {}
    indeg = dict.fromkeys(pos, 0)
    for u, v in edges:
        succ.setdefault(u, []).append(v)
        indeg[v] += 1
    heap = [pos[n] for n, k in indeg.items() if k == 0]
    heapq.heapify(heap)
    out: list[Einsum] = []
    while heap:
        i = heapq.heappop(heap)
        e = es[i]
        out.append(e)
        for v in succ.get(e.name, ()):
            indeg[v] -= 1
            if indeg[v] == 0:
                heapq.heappush(heap, pos[v])
    if len(out) != len(es):
        import networkx as nx

        _, dag, _ = _graphs(es)
        done = {e.name for e in out}
        cyc = nx.find_cycle(dag.subgraph([e.name for e in es if e.name not in done]))
        path = " -> ".join([u for u, _ in cyc] + [cyc[0][0]])
        raise WorkloadError(f"the cascade has a cycle: {path}", einsum=cyc[0][1])
    if all(a is b for a, b in zip(out, es, strict=True)):
        return es  # unchanged: the same tuple, so the values cached for it stay valid
    return tuple(out)


@dataclass(frozen=True)
class Recurrence:
    """Einsums that run step by step over ``rank`` (in this order within a step)."""

    rank: str
    einsums: tuple[str, ...]


# ----------------------------------------------------------------- cascade


@dataclass(frozen=True)
class Cascade:
    """A cascade of Einsums: tensors, Einsums in dependence order, rank splits.

    ``splits`` records ``m -> m1, m0`` as ``("m", ("m1", "m0"))`` (outer rank
    first); it tells the pass analysis which ranks traverse ``m``.
    ``split_sizes`` holds the sizes of the split ranks (parent and children).
    Construction validates the cascade and raises :class:`WorkloadError`.
    """

    name: str
    tensors: tuple[Tensor, ...]
    einsums: tuple[Einsum, ...]
    splits: tuple[tuple[str, tuple[str, ...]], ...] = ()
    split_sizes: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def _from_parser(
        cls,
        name: str,
        tensors: tuple[Tensor, ...],
        einsums: tuple[Einsum, ...],
        splits: tuple[tuple[str, tuple[str, ...]], ...],
        split_sizes: tuple[tuple[str, int], ...],
    ) -> Cascade:
        """The cascade :mod:`workloads.parser` built: the parser has made most of
        :func:`_validate`'s checks itself (with file positions), so only the
        others run (:func:`_validate_parsed`)."""
        c = object.__new__(cls)
        for k, v in (
            ("name", name),
            ("tensors", tensors),
            ("einsums", einsums),
            ("splits", splits),
            ("split_sizes", split_sizes),
        ):
            object.__setattr__(c, k, v)
        _validate_parsed(c)
        return c

    # -------------------------------------------------------- lookups
    # Indexes and derived tuples are computed once per cascade (the dataclass
    # is frozen, so they cannot go stale): lookups in loops stay linear on
    # cascades of thousands of Einsums.
    @cached_property
    def _tensor_by_name(self) -> dict[str, Tensor]:
        return {t.name: t for t in self.tensors}

    @cached_property
    def _einsum_by_name(self) -> dict[str, Einsum]:
        return {e.name: e for e in reversed(self.einsums)}

    @cached_property
    def _producer_of(self) -> dict[str, Einsum]:
        return {e.output.tensor: e for e in reversed(self.einsums)}

    @cached_property
    def _consumers(self) -> dict[str, tuple[Einsum, ...]]:
        out: dict[str, list[Einsum]] = {}
        for e in self.einsums:
            for t in dict.fromkeys(a.tensor for a in e.inputs):
                out.setdefault(t, []).append(e)
        return {t: tuple(es) for t, es in out.items()}

    def tensor(self, name: str) -> Tensor:
        t = self._tensor_by_name.get(name)
        if t is None:
            raise WorkloadError(f"cascade {self.name!r} has no tensor {name!r}")
        return t

    def einsum(self, name: str) -> Einsum:
        e = self._einsum_by_name.get(name)
        if e is None:
            raise WorkloadError(f"cascade {self.name!r} has no Einsum {name!r}")
        return e

    def producer(self, tensor: str) -> Einsum | None:
        """The Einsum that writes ``tensor`` (None for a cascade input)."""
        return self._producer_of.get(tensor)

    def consumers(self, tensor: str) -> tuple[Einsum, ...]:
        """Einsums that read ``tensor`` (the producer itself included when iterative)."""
        return self._consumers.get(tensor, ())

    @property
    def rank_sizes(self) -> dict[str, int]:
        """Size of every rank any Einsum iterates (rank sizes are cascade-wide)."""
        out: dict[str, int] = dict(self.split_sizes)
        for e in self.einsums:
            out.update(e.rank_sizes_items)
        return out

    # ------------------------------------------------------ structure
    @cached_property
    def inputs(self) -> tuple[str, ...]:
        """Tensors no Einsum writes, in declaration order."""
        produced = {e.output.tensor for e in self.einsums}
        return tuple([t.name for t in self.tensors if t.name not in produced])

    @cached_property
    def outputs(self) -> tuple[str, ...]:
        """Written tensors no other Einsum reads."""
        read_by_other = {
            a.tensor for e in self.einsums for a in e.inputs if a.tensor != e.output.tensor
        }
        return tuple(
            [e.output.tensor for e in self.einsums if e.output.tensor not in read_by_other]
        )

    @cached_property
    def intermediates(self) -> tuple[str, ...]:
        """Written tensors that another Einsum reads."""
        outs = set(self.outputs)
        return tuple(e.output.tensor for e in self.einsums if e.output.tensor not in outs)

    def graph(self, recurrences: bool = False):
        """Einsum-level networkx DiGraph; edges carry ``tensors`` and ``carried``.

        By default a DAG: the carried reads inside a recurrence (``RM`` reading
        its own earlier value, ``SPD`` reading ``RD[m1]``) are left out. With
        ``recurrences=True`` they are kept (self-loops and back edges).
        """
        full, dag, _ = _build_graphs(self.einsums)
        return full if recurrences else dag

    def dependences(self) -> list[Dependence]:
        return dependences(self.einsums)

    def carried_reads(self) -> frozenset[tuple[str, str]]:
        """``(einsum, tensor)`` reads of an earlier step inside a recurrence.

        These are the reads :meth:`graph` leaves out (``RM`` reading
        ``RM[m1]``, ``SPD`` reading ``RD[m1]``): the value comes from the
        previous step of the carried rank, so the reader may come before the
        producer in :attr:`einsums`. Order checks should skip them.
        """
        if not _has_carried(self.einsums):
            return frozenset()
        _, _, scc_of = _graphs(self.einsums)
        return frozenset(
            (consumer, tensor)
            for producer, consumer, tensor, carried in _dependence_tuples(self.einsums)
            if carried and scc_of[producer] == scc_of[consumer]
        )

    def recurrences(self) -> tuple[Recurrence, ...]:
        """Groups of Einsums that must run step by step over a carried rank."""
        return _recurrences(self.einsums)

    @property
    def total_macs(self) -> int:
        return sum([e._op_counts[_MAC] for e in self.einsums])

    def op_counts(self) -> dict[str, int]:
        columns = zip(*(e._op_counts for e in self.einsums), strict=True)
        totals = [sum(col) for col in columns] or [0] * len(OP_CLASSES)
        return dict(zip(OP_CLASSES, totals, strict=True))

    def compulsory_traffic_bytes(self) -> float:
        """Bytes of the cascade's inputs read once plus outputs written once."""
        by_name = self._tensor_by_name  # every input and output is a tensor of the cascade
        return sum([by_name[t].bytes for t in (*self.inputs, *self.outputs)])

    def rank_family(self, rank: str) -> frozenset[str]:
        """``rank`` and every rank it is split into, recursively."""
        fam = {rank}
        changed = True
        while changed:
            changed = False
            for parent, children in self.splits:
                if parent in fam and not set(children) <= fam:
                    fam |= set(children)
                    changed = True
        return frozenset(fam)

    def passes(self, rank: str) -> int:
        """Passes over ``rank`` the dependences force (FuseMax's pass analysis).

        An Einsum that iterates ``rank`` (or a rank split from it) runs in the
        same pass as a producer it reads element-wise along ``rank``; when it
        reads a value indexed without ``rank`` (a completed reduction such as
        the softmax max or denominator) it must wait for the producer's pass
        to finish, so it runs in the next pass. Einsums that do not iterate
        ``rank`` carry their inputs' pass along. Returns the largest pass
        number of an Einsum iterating ``rank`` (0 when none does): 3 for
        stable softmax attention, 2 when the max is the only separate pass,
        1 for FuseMax's cascade.
        """
        fam = self.rank_family(rank)
        pass_of = self.pass_of(rank)
        return max((pass_of[e.name] for e in self.einsums if fam & set(e.ranks)), default=0)

    def pass_of(self, rank: str) -> dict[str, int]:
        """Pass number of every Einsum for :meth:`passes` (0: before any pass)."""
        fam = self.rank_family(rank)
        dag_edges = _dag_edges(self.einsums)
        by_name = {e.name: e for e in self.einsums}
        producer = {e.output.tensor: e.name for e in self.einsums}
        out: dict[str, int] = {}
        for e in self.einsums:  # already in dependence order
            iterates = bool(fam & set(e.ranks))
            p = 1 if iterates else 0
            for a in e.inputs:
                src = producer.get(a.tensor)
                if src is None or (dag_edges is not None and (src, e.name) not in dag_edges):
                    continue
                k = out[src]
                if iterates:
                    streamed = bool(fam & a.ranks) and bool(fam & set(by_name[src].ranks))
                    k = k if streamed else k + 1
                p = max(p, k)
            out[e.name] = p
        return out

    # -------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` rebuilds an equal cascade."""
        return {
            "name": self.name,
            "tensors": [t.to_dict() for t in self.tensors],
            "einsums": [e.to_dict() for e in self.einsums],
            "splits": [[p, list(c)] for p, c in self.splits],
            "split_sizes": [[r, s] for r, s in self.split_sizes],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Cascade:
        try:
            return cls(
                name=str(d["name"]),
                tensors=tuple(Tensor.from_dict(t) for t in d["tensors"]),
                einsums=tuple(Einsum.from_dict(e) for e in d["einsums"]),
                splits=tuple((str(p), tuple(str(x) for x in c)) for p, c in d.get("splits", ())),
                split_sizes=tuple((str(r), int(s)) for r, s in d.get("split_sizes", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WorkloadError(f"malformed cascade dict: {type(exc).__name__}: {exc}") from None

    def summary(self) -> dict[str, Any]:
        """The JSON object ``einsim workload show --json`` prints."""
        return {
            "name": self.name,
            "einsums": [
                {
                    "name": e.name,
                    "output": e.output.tensor,
                    "inputs": [a.tensor for a in e.inputs],
                    "map_op": e.map_op,
                    "reduce_op": e.reduce_op,
                    "ranks": dict(e.rank_sizes_items),
                    "ops": e.op_counts(),
                    "macs": e.macs,
                    "attrs": dict(e.attrs),
                }
                for e in self.einsums
            ],
            "tensors": [
                {
                    "name": t.name,
                    "ranks": list(t.ranks),
                    "shape": list(t.shape),
                    "bits": t.bits,
                    "bytes": t.bytes,
                    "role": "input"
                    if t.name in ins
                    else "output"
                    if t.name in outs
                    else "intermediate",
                }
                for ins, outs in [(set(self.inputs), set(self.outputs))]
                for t in self.tensors
            ],
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "intermediates": list(self.intermediates),
            "total_macs": self.total_macs,
            "op_counts": self.op_counts(),
        }


# -------------------------------------------------------------- validation


def _recurrences(einsums: tuple[Einsum, ...]) -> tuple[Recurrence, ...]:
    if not _has_carried(einsums):  # a recurrence needs a carried read
        return ()
    full, dag, scc_of = _graphs(einsums)
    groups: dict[int, list[str]] = {}
    for e in einsums:
        groups.setdefault(scc_of[e.name], []).append(e.name)
    out: list[Recurrence] = []
    for members in groups.values():
        if len(members) == 1 and not full.has_edge(members[0], members[0]):
            continue
        member_set = set(members)
        ranks = {
            data["carried"]
            for u, v, data in full.edges(data=True)
            if u in member_set and v in member_set and data["carried"]
        }
        if not ranks:  # a cycle of forward edges; canonical_order reports it
            continue
        if len(ranks) > 1:
            raise WorkloadError(
                f"Einsums {', '.join(members)} form a recurrence over more than one rank "
                f"({', '.join(sorted(ranks))}); expected one carried rank",
                einsum=members[0],
            )
        out.append(Recurrence(ranks.pop(), tuple(members)))
    return tuple(out)


def _check_name(name: Any) -> None:
    if (
        not isinstance(name, str)
        or not name.strip()
        or name != name.strip()
        or name.startswith("[")
        or name != " ".join(name.split())
        or "#" in name
    ):
        raise WorkloadError(
            f"cascade name {name!r}: expected a non-empty name without '#', line breaks, "
            "runs of spaces or a leading '['"
        )


def _validate(c: Cascade) -> None:
    """Check a cascade is well formed; raise :class:`WorkloadError` naming the Einsum."""
    _check_name(c.name)
    tensors: dict[str, Tensor] = {}
    for t in c.tensors:
        if t.name in tensors:
            raise WorkloadError(f"tensor {t.name!r} is declared twice")
        if len(t.ranks) != len(t.shape):
            raise WorkloadError(
                f"tensor {t.name!r} has {len(t.ranks)} ranks but {len(t.shape)} sizes"
            )
        if any((not isinstance(s, int)) or s < 1 for s in t.shape):
            raise WorkloadError(f"tensor {t.name!r} has a size below 1: {t.shape}")
        if not isinstance(t.bits, int) or t.bits < 1:
            raise WorkloadError(f"tensor {t.name!r} has datatype width {t.bits}; expected >= 1 bit")
        tensors[t.name] = t
    names: set[str] = set()
    produced: dict[str, str] = {}
    sizes: dict[str, tuple[int, str]] = {}
    for e in c.einsums:
        _validate_einsum(e, tensors, sizes)
        if e.name in names:
            raise WorkloadError(f"two Einsums are named {e.name!r}", einsum=e.name)
        names.add(e.name)
        if e.output.tensor in produced:
            raise WorkloadError(
                f"tensor {e.output.tensor!r} is written by both {produced[e.output.tensor]} "
                f"and {e.name}; expected one producer per tensor",
                einsum=e.name,
            )
        produced[e.output.tensor] = e.name
    split_size = dict(c.split_sizes)
    for parent, children in c.splits:
        if len(children) < 2 or len(set(children)) != len(children) or parent in children:
            raise WorkloadError(
                f"split of {parent!r} needs at least two distinct ranks other than {parent!r}"
            )
        if parent in split_size and all(k in split_size for k in children):
            if math.prod(split_size[k] for k in children) != split_size[parent]:
                raise WorkloadError(
                    f"split of {parent!r}: {' x '.join(str(split_size[k]) for k in children)} "
                    f"!= {split_size[parent]}"
                )
    for r, s in c.split_sizes:
        if r in sizes and sizes[r][0] != s:
            raise WorkloadError(
                f"rank {r} has size {s} in a split but {sizes[r][0]} in {sizes[r][1]}"
            )
    # order: every forward producer before its consumer; recurrences well formed
    order = canonical_order(c.einsums)
    if order != c.einsums:
        _, dag, _ = _graphs(c.einsums)
        pos = {e.name: i for i, e in enumerate(c.einsums)}
        for u, v in dag.edges:
            if pos[u] > pos[v]:
                t = dag.edges[u, v]["tensor"]
                raise WorkloadError(
                    f"Einsum {v} reads {t} before {u} produces it; expected Einsums in dependence order",
                    einsum=v,
                )
    _check_recurrences(c)
    for e in c.einsums:
        for a in e.inputs:
            if a.tensor == e.output.tensor and not _carried_rank(e.output, a):
                raise WorkloadError(
                    f"Einsum {e.name} reads its own output {a.tensor} at the index it writes; "
                    f"expected an earlier index such as {a.tensor}[r] while writing {a.tensor}[r+1]",
                    einsum=e.name,
                )


def _validate_einsum(
    e: Einsum, tensors: dict[str, Tensor], sizes: dict[str, tuple[int, str]]
) -> None:
    n = e.name
    if e.map_op not in MAP_OPS:
        raise WorkloadError(
            f"Einsum {n}: unknown map op {e.map_op!r}; expected one of {', '.join(MAP_OPS)}",
            einsum=n,
        )
    if e.reduce_op not in REDUCE_OPS:
        raise WorkloadError(
            f"Einsum {n}: unknown reduce op {e.reduce_op!r}; expected one of {', '.join(REDUCE_OPS)}",
            einsum=n,
        )
    want = 2 if e.map_op in BINARY_MAP_OPS else 1
    have = len(e.inputs) + (e.scalar is not None)
    if have != want or not e.inputs:
        raise WorkloadError(
            f"Einsum {n}: map op {e.map_op} takes {want} operand(s) (at least one a tensor), got {have}",
            einsum=n,
        )
    if e.scalar is not None and (math.isnan(e.scalar) or math.isinf(e.scalar)):
        raise WorkloadError(f"Einsum {n}: the constant operand must be finite", einsum=n)
    rs = e.rank_sizes
    if len(rs) != len(e.rank_sizes_items):
        raise WorkloadError(f"Einsum {n}: a rank appears twice in its iteration space", einsum=n)
    for r, s in e.rank_sizes_items:
        if not isinstance(s, int) or s < 1:
            raise WorkloadError(f"Einsum {n}: rank {r} has size {s}; expected >= 1", einsum=n)
        if r in sizes and sizes[r][0] != s:
            raise WorkloadError(
                f"rank {r} has size {s} in {n} but {sizes[r][0]} in {sizes[r][1]}; expected one size per rank",
                einsum=n,
            )
        sizes.setdefault(r, (s, n))
    seen: set[str] = set()
    for ix in e.output.indices:
        if len(ix.terms) != 1 or ix.terms[0][1] != 1 or ix.offset < 0:
            raise WorkloadError(
                f"Einsum {n}: output index {ix.to_text()} must be a rank plus an optional "
                f"non-negative offset (r or r+1)",
                einsum=n,
            )
        r = ix.terms[0][0]
        if r in seen:
            raise WorkloadError(f"Einsum {n}: rank {r} indexes the output twice", einsum=n)
        seen.add(r)
    used = set(seen)  # the ranks some access indexes
    for a in e.accesses:
        if a.tensor not in tensors:
            raise WorkloadError(f"Einsum {n}: unknown tensor {a.tensor!r}", einsum=n)
        t = tensors[a.tensor]
        if len(a.indices) != len(t.shape):
            raise WorkloadError(
                f"Einsum {n}: {a.tensor} has {len(t.shape)} ranks but is indexed with {len(a.indices)}",
                einsum=n,
            )
        if a.bits != t.bits:
            raise WorkloadError(
                f"Einsum {n}: access to {a.tensor} says {a.bits} bits but the tensor has {t.bits}",
                einsum=n,
            )
        for ix, dim, size in zip(a.indices, t.ranks, t.shape, strict=True):
            for r, _ in ix.terms:
                if r not in rs:
                    raise WorkloadError(
                        f"Einsum {n}: rank {r} is not in its iteration space", einsum=n
                    )
                used.add(r)
            if len(ix.terms) == 1 and ix.terms[0][1] > 0:  # r*c + offset, c > 0
                lo = ix.offset
                hi = lo + ix.terms[0][1] * (rs[ix.terms[0][0]] - 1)
            else:
                lo, hi = ix.bounds(rs)
            if lo < 0 or hi >= size:
                raise WorkloadError(
                    f"Einsum {n}: index {ix.to_text()} of {a.tensor} spans {lo}..{hi} "
                    f"but rank {dim} has size {size}",
                    einsum=n,
                )
    _check_ranks_used(e, used)
    reduces = len(rs) > len(seen)  # a rank outside the output (seen: the output's ranks)
    if reduces and e.reduce_op == "none":
        raise WorkloadError(
            f"Einsum {n}: ranks {', '.join(e.reduced_ranks)} appear only on the right; "
            f"expected a reduce op (sum, max, min)",
            einsum=n,
        )
    if not reduces and e.reduce_op != "none":
        raise WorkloadError(
            f"Einsum {n}: a {e.reduce_op} reduction with no reduced rank "
            f"(every rank on the right is also in the output)",
            einsum=n,
        )
    _validate_mask(e, seen)


def _validate_parsed(c: Cascade) -> None:
    """The checks of :func:`_validate` that the text parser does not make.

    The parser (:mod:`workloads.parser`) checks everything else itself, with
    the line and column of the offending text: tensors, producers, names,
    operands, rank sizes, indices and their bounds, reductions, splits and the
    dependence order. These are the rest, in :func:`_validate`'s order (so
    the first error is the same); ``tests/workloads/test_parser.py`` checks
    that every cascade the parser accepts passes :func:`_validate`.
    """
    _check_name(c.name)
    for e in c.einsums:
        # the output indexes its ranks; a reduced rank may index nothing when
        # its terms have coefficient 0 (``A[r*0]``) or cancel (``A[r - r]``)
        for r in e.reduced_ranks:
            if r not in _input_ranks(e):
                raise _unindexed(e, r)
        for k, _ in e.attrs:
            if k.startswith("mask"):
                _validate_mask(e)
                break
    _check_recurrences(c)


def _input_ranks(e: Einsum) -> list[str]:
    return [r for a in e.inputs for ix in a.indices for r in ix.ranks]


def _check_ranks_used(e: Einsum, used: set[str] | frozenset[str]) -> None:
    for r, _ in e.rank_sizes_items:
        if r not in used:
            raise _unindexed(e, r)


def _unindexed(e: Einsum, rank: str) -> WorkloadError:
    return WorkloadError(
        f"Einsum {e.name}: rank {rank} is in its iteration space but indexes nothing",
        einsum=e.name,
    )


def _check_recurrences(c: Cascade) -> None:
    recurrences = _recurrences(c.einsums)
    by_name = {e.name: e for e in c.einsums} if recurrences else {}
    for rec in recurrences:
        for n in rec.einsums:
            e = by_name[n]
            if rec.rank not in e.output.ranks:
                raise WorkloadError(
                    f"Einsum {n} is part of a recurrence over {rec.rank} but its output "
                    f"{e.output.tensor} is not indexed by {rec.rank}",
                    einsum=n,
                )


def _validate_mask(e: Einsum, out_ranks: set[str] | frozenset[str] | None = None) -> None:
    """Check the mask attributes; ``out_ranks``: the output's ranks (by default,
    worked out here, when there are mask attributes)."""
    for k, _ in e.attrs:
        if k.startswith("mask"):
            break
    else:
        return
    if out_ranks is None:
        out_ranks = e.output.ranks
    a = e.attr
    keys = [k for k in ("mask", "mask_key", "mask_query", "mask_offset") if k in a]
    if not keys:
        return
    n = e.name
    if a.get("mask") not in MASK_KINDS:
        raise WorkloadError(
            f"Einsum {n}: mask={a.get('mask', '(missing)')}; expected mask=causal with "
            "mask_key=RANK and mask_query=RANK",
            einsum=n,
        )
    for what in ("mask_key", "mask_query"):
        ranks = _mask_ranks(a.get(what, ""))
        if not ranks:
            raise WorkloadError(
                f"Einsum {n}: mask=causal needs {what}=RANK (or RANK.RANK for a split rank)",
                einsum=n,
            )
        for r in ranks:
            if r not in out_ranks:
                raise WorkloadError(
                    f"Einsum {n}: {what} rank {r} is not an output rank of {n}; expected one of "
                    f"{', '.join(sorted(out_ranks))}",
                    einsum=n,
                )
    if "mask_offset" in a:
        try:
            int(a["mask_offset"])
        except ValueError:
            raise WorkloadError(
                f"Einsum {n}: mask_offset={a['mask_offset']}; expected an integer", einsum=n
            ) from None

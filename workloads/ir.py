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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: Operator classes a compute unit is rated in (ops/cycle, pJ/op).
OP_CLASSES: tuple[str, ...] = ("mac", "add", "max", "exp", "div")

#: Map operators (applied once per point of the iteration space).
MAP_OPS: tuple[str, ...] = ("mul", "add", "sub", "max", "min", "div", "exp", "expdiff", "copy")

#: Reduce operators (applied over the ranks that appear on the right only).
REDUCE_OPS: tuple[str, ...] = ("sum", "max", "min", "none")


@dataclass(frozen=True)
class Tensor:
    """A named tensor with named ranks, their sizes and a datatype width."""

    name: str
    ranks: tuple[str, ...]
    shape: tuple[int, ...]
    bits: int = 16

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def bytes(self) -> float:
        return self.elements * self.bits / 8


@dataclass(frozen=True)
class AffineIndex:
    """``sum(coef * rank) + offset`` indexing one dimension of a tensor."""

    terms: tuple[tuple[str, int], ...]
    offset: int = 0

    @property
    def ranks(self) -> tuple[str, ...]:
        return tuple(r for r, _ in self.terms)

    def extent(self, tile: dict[str, int]) -> int:
        """Number of distinct index values touched by a tile of the ranks.

        ``tile`` maps rank -> tile size (ranks missing count as 1). For a
        single term this is the tile size; for ``p*s + r*d`` it is the sliding
        window ``s*(P-1) + d*(R-1) + 1`` (an upper bound when strides skip).
        """
        return sum(abs(c) * (tile.get(r, 1) - 1) for r, c in self.terms) + 1


@dataclass(frozen=True)
class Access:
    """A tensor as read or written by one Einsum: ``T[idx0, idx1, ...]``."""

    tensor: str
    indices: tuple[AffineIndex, ...]
    #: datatype width of the tensor (copied from its declaration so an
    #: Einsum is self-contained for the mappers and cost models)
    bits: int = 16

    @property
    def ranks(self) -> frozenset[str]:
        return frozenset(r for ix in self.indices for r in ix.ranks)


@dataclass(frozen=True)
class Einsum:
    """One (extended) Einsum of a cascade."""

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

    @property
    def rank_sizes(self) -> dict[str, int]:
        return dict(self.rank_sizes_items)

    @property
    def reduced_ranks(self) -> tuple[str, ...]:
        out = self.output.ranks
        return tuple(r for r, _ in self.rank_sizes_items if r not in out)

    @property
    def accesses(self) -> tuple[Access, ...]:
        """Output first, then the inputs."""
        return (self.output, *self.inputs)

    @property
    def iteration_points(self) -> int:
        return math.prod(s for _, s in self.rank_sizes_items)

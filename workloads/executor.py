"""Reference executor: evaluate any cascade with numpy (float64).

It gives the IR its meaning. Each Einsum is evaluated over its whole
iteration space: every input access is gathered into an array broadcast over
the iteration ranks (affine indices become integer index arrays), the map op
is applied point-wise, the reduce op folds the reduced ranks, and the result
is scattered into the output through its (rank or rank+offset) indices.
Recurrences (Einsums tied by carried reads such as ``RM[m1]`` ->
``RM[m1+1]``) run step by step over their carried rank, each step evaluating
the group's Einsums in dependence order with that rank fixed. Produced
tensors start at the Einsum's ``init_value`` (the map op's identity:
``-inf`` for max, 0 for add), which is what a recurrence reads at step 0.
A causal mask (``Einsum.mask``) writes ``-inf`` at the masked output points.

Meant for small sizes (tests, examples), not for speed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from workloads.dag import group_order
from workloads.errors import WorkloadError
from workloads.ir import Access, Cascade, Einsum

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

#: refuse to materialise more than this many float64 values in one Einsum
MAX_POINTS = 200_000_000


def _map(op: str, a: np.ndarray, b: np.ndarray | float | None) -> np.ndarray:
    if op == "mul":
        return a * b
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "div":
        return a / b
    if op == "max":
        return np.maximum(a, b)
    if op == "min":
        return np.minimum(a, b)
    if op == "expdiff":
        return np.exp(a - b)
    if op == "exp":
        return np.exp(a)
    if op == "copy":
        return a
    if op == "rsqrt":
        return 1.0 / np.sqrt(a)
    if op == "silu":
        return a / (1.0 + np.exp(-a))
    if op == "gelu":
        # sigmoid approximation x * sigmoid(1.702 x) (Hendrycks & Gimpel 2016, sec. 2)
        return a / (1.0 + np.exp(-1.702 * a))
    if op == "lt":
        return (a < b).astype(np.float64)
    if op == "eq":
        return (a == b).astype(np.float64)
    raise WorkloadError(f"the executor does not know map op {op!r}")


class _Space:
    """Index grids of one Einsum's iteration space (some ranks possibly fixed)."""

    def __init__(self, e: Einsum, fixed: Mapping[str, int]) -> None:
        self.ranks = e.ranks
        self.n = len(self.ranks)
        self.fixed = dict(fixed)
        self.sizes = [1 if r in fixed else s for r, s in e.rank_sizes_items]
        self.axis = {r: i for i, r in enumerate(self.ranks)}
        self.grid: dict[str, np.ndarray] = {}
        for i, (r, s) in enumerate(e.rank_sizes_items):
            vals = np.array([fixed[r]]) if r in fixed else np.arange(s)
            shape = [1] * self.n
            shape[i] = -1
            self.grid[r] = vals.reshape(shape)

    def index(self, acc: Access) -> tuple:
        out = []
        for ix in acc.indices:
            v: np.ndarray | int = ix.offset
            for r, c in ix.terms:
                v = v + c * self.grid[r]
            out.append(v)
        return tuple(out)

    def gather(self, arr: np.ndarray, acc: Access) -> np.ndarray:
        simple = [ix.simple_rank for ix in acc.indices]
        if (
            all(r is not None and r not in self.fixed for r in simple)
            and len(set(simple)) == len(simple)
            and all(arr.shape[k] == self.sizes[self.axis[r]] for k, r in enumerate(simple))  # type: ignore[index]
        ):
            perm = sorted(range(len(simple)), key=lambda k: self.axis[simple[k]])  # type: ignore[index]
            shape = [1] * self.n
            for r in simple:
                shape[self.axis[r]] = self.sizes[self.axis[r]]  # type: ignore[index]
            return arr.transpose(perm).reshape(shape)
        res = np.asarray(arr[self.index(acc)])
        if res.ndim != self.n:  # only constant indices: a single value
            res = res.reshape((1,) * self.n)
        return res


def _contract(space: _Space, ops: list[np.ndarray], keep: list[int]) -> np.ndarray:
    """sum over the non-kept axes of the product of ``ops``, via np.einsum."""
    subs = []
    arrays = []
    present: set[int] = set()
    for a in ops:
        axes = [i for i in range(space.n) if a.shape[i] != 1]
        subs.append("".join(_LETTERS[i] for i in axes))
        arrays.append(a.reshape([a.shape[i] for i in axes]))
        present |= set(axes)
    out_axes = [i for i in keep if i in present]
    res = np.einsum(
        ",".join(subs) + "->" + "".join(_LETTERS[i] for i in out_axes),
        *arrays,
        optimize=len(arrays) > 2,
    )
    shape = [space.sizes[i] if i in out_axes else 1 for i in range(space.n)]
    return np.asarray(res).reshape(shape)


def _evaluate(
    e: Einsum, store: dict[str, np.ndarray], fixed: Mapping[str, int] | None = None
) -> None:
    space = _Space(e, fixed or {})
    ops = [space.gather(store[a.tensor], a) for a in e.inputs]
    reduced = [space.axis[r] for r in e.reduced_ranks]
    keep = [i for i in range(space.n) if i not in reduced]
    if e.map_op == "mul" and e.reduce_op == "sum" and e.scalar is None and space.n <= len(_LETTERS):
        value = _contract(space, ops, keep)
    else:
        full = 1
        for s in space.sizes:
            full *= s
        if full > MAX_POINTS:
            raise WorkloadError(
                f"Einsum {e.name}: {full} iteration points is too many for the reference executor"
            )
        b = ops[1] if len(ops) > 1 else e.scalar
        value = _map(e.map_op, ops[0], b)
        if reduced:
            fold = {"sum": np.sum, "max": np.max, "min": np.min}[e.reduce_op]
            value = fold(
                np.broadcast_to(value, np.broadcast_shapes(value.shape, tuple(space.sizes))),
                axis=tuple(reduced),
                keepdims=True,
            )
    mask = e.mask
    if mask is not None:
        sizes = e.rank_sizes
        key = mask.index(mask.key, space.grid, sizes)
        query = mask.index(mask.query, space.grid, sizes)
        value = np.where(key > query + mask.offset, -np.inf, value)
    out = store[e.output.tensor]
    if out.ndim == 0:
        out[...] = np.asarray(value).reshape(())
        return
    idx = space.index(e.output)
    target = np.broadcast_shapes(*(np.shape(i) for i in idx))
    out[idx] = np.broadcast_to(value, np.broadcast_shapes(np.shape(value), target))


def _units(c: Cascade) -> list[tuple[str, tuple[Einsum, ...]]]:
    """Execution units in dependence order: ("", (e,)) or (rank, recurrence members)."""
    by_name = {e.name: e for e in c.einsums}
    pos = {e.name: i for i, e in enumerate(c.einsums)}
    unit_of: dict[str, int] = {}
    units: list[tuple[str, tuple[Einsum, ...]]] = []
    for rec in c.recurrences():
        members = tuple(sorted((by_name[n] for n in rec.einsums), key=lambda e: pos[e.name]))
        for e in members:
            unit_of[e.name] = len(units)
        units.append((rec.rank, members))
    for e in c.einsums:
        if e.name not in unit_of:
            unit_of[e.name] = len(units)
            units.append(("", (e,)))
    first = [min(pos[e.name] for e in members) for _, members in units]
    order = [units[i] for i in group_order(c.graph().edges, unit_of, first)]
    if len(order) != len(units):  # pragma: no cover - Cascade validation forbids it
        raise WorkloadError(f"cascade {c.name}: cannot order its recurrences")
    return order


def random_inputs(c: Cascade, seed: int = 0) -> dict[str, np.ndarray]:
    """Standard-normal float64 arrays for every input of ``c``."""
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(c.tensor(n).shape) for n in c.inputs}


def execute(
    cascade: Cascade, inputs: Mapping[str, np.ndarray] | None = None, seed: int = 0
) -> dict[str, np.ndarray]:
    """Evaluate ``cascade``; returns every tensor (inputs included) as float64 arrays.

    Inputs not given are drawn standard-normal from ``seed``.
    """
    given = dict(inputs or {})
    unknown = sorted(set(given) - set(cascade.inputs))
    if unknown:
        raise WorkloadError(
            f"cascade {cascade.name} has no input {unknown[0]}; its inputs are {', '.join(cascade.inputs)}"
        )
    store: dict[str, np.ndarray] = {}
    drawn = random_inputs(cascade, seed)
    for n in cascade.inputs:
        t = cascade.tensor(n)
        arr = np.array(given[n], dtype=np.float64) if n in given else drawn[n]
        if arr.shape != t.shape:
            raise WorkloadError(f"input {n} has shape {arr.shape}; expected {t.shape}")
        store[n] = arr
    for e in cascade.einsums:
        store[e.output.tensor] = np.full(
            cascade.tensor(e.output.tensor).shape, e.init_value, dtype=np.float64
        )
    with np.errstate(all="ignore"):
        for rank, members in _units(cascade):
            if not rank:
                _evaluate(members[0], store)
                continue
            for step in range(members[0].rank_sizes[rank]):
                for e in members:
                    _evaluate(e, store, {rank: step})
    return store

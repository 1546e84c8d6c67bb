"""Systolic-array dataflows (output-, weight-, input-stationary) as mappings.

``dataflow_mapping(einsum, arch, "ws")`` returns the :class:`Mapping` that
SCALE-Sim (Samajdar et al., ISPASS 2020; scale-sim-v2 ``compute/
systolic_compute_{os,ws,is}.py``) uses for a GEMM-like Einsum on a spatial
architecture ``DRAM -> GlobalBuffer -> PE_RF`` with a 2D ``pe_array``:

* the Einsum's ranks fall in three groups, by the tensors they index:
  ``M`` (output and first input, not the second: GEMM ``m``; conv ``n, p, q``),
  ``N`` (output and second input: ``n``; conv ``k``) and ``K`` (reduced:
  ``k``; conv ``c, r, s``). First input = SCALE-Sim's ifmap, second input =
  its filter, output = its ofmap;
* ``os``: M on the array rows, N on the columns, K in time;
  ``ws``: K on rows, N on columns, M in time;
  ``is``: K on rows, M on columns, N in time;
* the array dimensions are folded at the GlobalBuffer (column folds outer,
  row folds inner, as SCALE-Sim loops ``for fc: for fr:``), the time group
  runs in full at the PE_RF, which keeps only the stationary tensor.

SCALE-Sim flattens a group (``p*q`` pixels) before folding it by the array
side: it runs a convolution as the GEMM of its operand matrices (im2col).
:func:`im2col` gives that GEMM; mapped with :func:`dataflow_mapping` it has
SCALE-Sim's fold count exactly. On the Einsum itself a :class:`Mapping`
folds ranks one by one: for a multi-rank group we pick the per-rank spatial
factors (product <= the array side) with the fewest folds, which is
SCALE-Sim's count when some factorisation reaches ``ceil(prod / side)``
folds (56 x 56 pixels on 32 rows: 98 folds), and more otherwise (on 128
rows: 28 folds where SCALE-Sim needs 25).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mappers.mapping import LevelMapping, Mapping, MappingError
from workloads.ir import Access, AffineIndex, Einsum

if TYPE_CHECKING:
    from hw_models.arch import Architecture, ComputeUnit

DATAFLOWS = ("os", "ws", "is")

#: which rank group goes to rows, columns and time per dataflow
_PLACEMENT = {"os": ("M", "N", "K"), "ws": ("K", "N", "M"), "is": ("K", "M", "N")}
#: the tensor role the PE_RF keeps (output / first input / second input)
_STATIONARY = {"os": 0, "ws": 2, "is": 1}


def rank_groups(einsum: Einsum) -> dict[str, tuple[str, ...]]:
    """The M, N and K rank groups of a two-input contraction, in rank order."""
    if len(einsum.inputs) != 2:
        raise MappingError(
            f"{einsum.name}: a systolic dataflow needs an Einsum with two inputs "
            f"(ifmap and filter), got {len(einsum.inputs)}"
        )
    out = einsum.output.ranks
    a, b = einsum.inputs[0].ranks, einsum.inputs[1].ranks
    groups: dict[str, list[str]] = {"M": [], "N": [], "K": []}
    for r in einsum.ranks:
        if r not in out:
            groups["K"].append(r)
        elif r in a and r not in b:
            groups["M"].append(r)
        elif r in b and r not in a:
            groups["N"].append(r)
        else:
            # a rank of the output and both inputs (a batch rank) is folded
            # like M: SCALE-Sim has no batch rank, it flattens it into M
            groups["M"].append(r)
    return {g: tuple(v) for g, v in groups.items()}


def im2col(einsum: Einsum) -> Einsum:
    """The GEMM ``out[m,n] = in0[m,k] * in1[k,n]`` SCALE-Sim runs for ``einsum``.

    ``m``, ``n`` and ``k`` are the flattened M, N and K rank groups of
    :func:`rank_groups` (a convolution's output pixels, filters and window
    ``c*r*s``): SCALE-Sim's operand matrices (its ``operand_matrix.py``).
    Tensor names, widths and operators are kept; a GEMM is returned as it is
    (with its ranks renamed).
    """
    groups = rank_groups(einsum)
    size = einsum.rank_sizes
    m, n, k = (math.prod(size[r] for r in groups[g]) for g in ("M", "N", "K"))
    out, a, b = einsum.output, einsum.inputs[0], einsum.inputs[1]

    def acc(x: Access, *ranks: str) -> Access:
        return Access(x.tensor, tuple(AffineIndex(((r, 1),)) for r in ranks), x.bits)

    return Einsum(
        name=einsum.name,
        output=acc(out, "m", "n"),
        inputs=(acc(a, "m", "k"), acc(b, "k", "n")),
        map_op=einsum.map_op,
        reduce_op=einsum.reduce_op,
        rank_sizes_items=(("m", m), ("n", n), ("k", k)),
        attrs=einsum.attrs,
    )


def _spatial_split(sizes: list[int], cap: int) -> list[int]:
    """Per-rank spatial factors (product <= cap) with the fewest folds.

    Ties go to the larger product (SCALE-Sim uses the whole side and pads the
    last fold). Candidate factors of a rank of size s are min(s, cap) and the
    distinct values ceil(s / f), the only ones that can change its fold count.
    """
    if not sizes:
        return []
    cands = []
    for s in sizes:
        vals = {math.ceil(s / f) for f in range(1, s + 1) if math.ceil(s / f) <= cap}
        vals = sorted(vals | {min(s, cap)})  # the full side, as SCALE-Sim pads the last fold
        cands.append(vals or [1])
    best: tuple[int, int, list[int]] | None = None

    def rec(i: int, room: int, chosen: list[int], folds: int) -> None:
        nonlocal best
        if best is not None and folds > best[0]:
            return
        if i == len(sizes):
            prod = math.prod(chosen)
            key = (folds, -prod)
            if best is None or key < (best[0], best[1]):
                best = (folds, -prod, list(chosen))
            return
        for v in cands[i]:
            if v > room:
                break
            rec(i + 1, room // v, [*chosen, v], folds * math.ceil(sizes[i] / v))

    rec(0, cap, [], 1)
    assert best is not None
    return best[2]


def _array_unit(arch: Architecture) -> ComputeUnit:
    for cu in arch.compute:
        if cu.kind == "array2d":
            return cu
    raise MappingError(f"architecture {arch.name} has no 2D array (array2d) compute unit")


def dataflow_mapping(
    einsum: Einsum,
    arch: Architecture,
    dataflow: str,
    rows: int | None = None,
    cols: int | None = None,
) -> Mapping:
    """The mapping SCALE-Sim uses for ``einsum`` with ``dataflow`` on ``arch``.

    ``rows``/``cols`` default to the architecture's 2D array. The mapping is
    not validated against level capacities: call
    :func:`mappers.mapping.validate` for that.
    """
    if dataflow not in DATAFLOWS:
        raise MappingError(f"dataflow must be one of {', '.join(DATAFLOWS)}, got {dataflow!r}")
    unit = _array_unit(arch)
    rows = int(rows or unit.rows)
    cols = int(cols or unit.cols)
    if rows < 1 or cols < 1:
        raise MappingError(f"array rows and cols must be >= 1, got {rows} x {cols}")
    if len(arch.levels) != 3:
        names = " -> ".join(lv.name for lv in arch.levels)
        raise MappingError(
            f"architecture {arch.name}: a dataflow mapping needs three levels "
            f"(DRAM -> GlobalBuffer -> PE_RF), got {names}"
        )
    top, gb, rf = arch.levels
    if rows > gb.fanout_y or cols > gb.fanout_x:
        raise MappingError(
            f"level {gb.name}: a {rows} x {cols} array exceeds its fan-out "
            f"{gb.fanout_y} x {gb.fanout_x} (rows x cols)"
        )
    groups = rank_groups(einsum)
    g_rows, g_cols, g_time = (groups[g] for g in _PLACEMENT[dataflow])
    size = einsum.rank_sizes
    s_rows = _spatial_split([size[r] for r in g_rows], rows)
    s_cols = _spatial_split([size[r] for r in g_cols], cols)
    spatial = {r: s for r, s in zip(g_rows, s_rows, strict=True)}
    spatial.update({r: s for r, s in zip(g_cols, s_cols, strict=True)})
    axes = {r: "y" for r in g_rows} | {r: "x" for r in g_cols}
    folds = {r: math.ceil(size[r] / spatial[r]) for r in (*g_rows, *g_cols)}
    # SCALE-Sim: for fc (column folds): for fr (row folds)
    order = tuple(r for r in (*g_cols, *g_rows) if folds[r] > 1)
    roles = (einsum.output.tensor, einsum.inputs[0].tensor, einsum.inputs[1].tensor)
    levels = (
        LevelMapping(level=top.name),
        LevelMapping(
            level=gb.name,
            temporal={r: f for r, f in folds.items() if f > 1},
            spatial={r: s for r, s in spatial.items() if s > 1},
            spatial_axes={r: a for r, a in axes.items() if spatial[r] > 1},
            order=order,
        ),
        LevelMapping(
            level=rf.name,
            temporal={r: size[r] for r in g_time if size[r] > 1},
            order=tuple(r for r in g_time if size[r] > 1),
            keep=(roles[_STATIONARY[dataflow]],),
        ),
    )
    return Mapping(einsum=einsum.name, levels=levels, unit=unit.name, dataflow=dataflow)

"""Precompile an (Einsum, Architecture, mapping structure) into small numpy arrays.

The analytical model's hot path works on arrays only: factors
``[N, levels, ranks]`` and hardware parameters ``[N, levels]``. Everything
that does not vary between the N points (which ranks index which tensor,
which level keeps which tensor, the parent of every tile, multicast masks)
is computed here once and cached by object identity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mappers.mapping import (
    Mapping,
    MappingError,
    einsum_op_weights,
    feeding_level,
    groups_by_memory,
    kept_tensors,
    loop_order,
    resident_loops,
    resolve_unit,
    tensor_roles,
)
from workloads.memo import BoundedCache

if TYPE_CHECKING:
    from hw_models.arch import Architecture
    from workloads.ir import Einsum

#: StorageLevel numeric fields a sweep may override, as "<level>.<field>"
LEVEL_FIELDS: tuple[str, ...] = (
    "capacity_bytes",
    "read_bw_bytes_per_cycle",
    "write_bw_bytes_per_cycle",
    "read_energy_pj_per_word",
    "write_energy_pj_per_word",
    "leakage_w",
    "fanout_x",
    "fanout_y",
    "instances",
    "word_bits",
)
#: ComputeUnit numeric fields a sweep may override, as "<unit>.<field>"
#: (plus "<unit>.ops_per_cycle.<class>" and "<unit>.energy_pj_per_op.<class>")
UNIT_FIELDS: tuple[str, ...] = ("pes", "rows", "cols", "leakage_w")


@dataclass(eq=False)
class Structure:
    """What is fixed across a batch: Einsum, architecture, keep/bypass, unit."""

    ranks: list[str]
    sizes: np.ndarray  # [nr]
    levels: list[str]
    tensors: list[str]
    bits: np.ndarray  # [nt]
    is_output: np.ndarray  # [nt] bool
    rel: np.ndarray  # [nt, nr] bool: rank indexes tensor
    coef: np.ndarray  # [nt*D, nr] |coefficients|
    full_ext: np.ndarray  # [nt*D]
    ndims: int  # D (padded)
    keep: np.ndarray  # [nl, nt] bool
    #: pairs (t, c, p): child c (1..nl; nl = compute) of tensor t fills from parent level p
    pairs: list[tuple[int, int, int]]
    above: np.ndarray  # [nl+1, nl] bool: level l is above child c (l < c)
    #: [npairs, nl, nr] multicast / spatial-reduction mask between parent and child
    mc_mask: np.ndarray
    #: [npairs, nl, nr] relevant temporal loops above the child
    rel_above: np.ndarray
    db: np.ndarray  # [nl] bool
    shared_bw: np.ndarray  # [nl] bool
    unit: str
    unit_kind: str
    dataflow: str
    classes: tuple[str, ...]
    #: op class -> operations per iteration point
    weights: dict[str, int]
    #: index of the level whose fan-out feeds a 2D array (-1 = none)
    array_level: int
    limit_kind: np.ndarray  # [nl] see compile_structure
    iteration_points: float
    unit_names: list[str]
    #: per level, the levels its tiles are filled from (the pairs' parents)
    parents: tuple[tuple[int, ...], ...] = ()
    #: per tensor, the operand roles a memory may serve it by (tensor_roles)
    roles: list[tuple[str, ...]] = field(default_factory=list)
    #: the unit reuses input operands over its innermost irrelevant loops
    #: (ComputeUnit.operand_registers)
    operand_registers: bool = False
    #: [npairs, nl, nr] temporal loops above the child that its tile of the
    #: tensor also spans (Mapping.resident); None = none
    resident: np.ndarray | None = None


def _tensor_accesses(einsum: Einsum) -> dict:
    acc = {}
    for a in einsum.accesses:
        acc.setdefault(a.tensor, a)
    return acc


def compile_structure(einsum: Einsum, arch: Architecture, mapping: Mapping) -> Structure:
    ranks = [r for r, _ in einsum.rank_sizes_items]
    sizes = einsum.rank_sizes
    nr = len(ranks)
    nl = len(arch.levels)
    accs = _tensor_accesses(einsum)
    tensors = list(accs)
    nt = len(tensors)
    D = max(len(a.indices) for a in accs.values()) if accs else 1
    D = max(D, 1)
    coef = np.zeros((nt, D, nr))
    full = np.ones((nt, D))
    rel = np.zeros((nt, nr), dtype=bool)
    ridx = {r: i for i, r in enumerate(ranks)}
    for t, name in enumerate(tensors):
        a = accs[name]
        for d, ix in enumerate(a.indices):
            for r, c in ix.terms:
                if r not in ridx:
                    raise MappingError(
                        f"{einsum.name}: tensor {name} is indexed by {r!r}, which is not a rank"
                    )
                coef[t, d, ridx[r]] += abs(c)
                rel[t, ridx[r]] = True
            full[t, d] = ix.extent(sizes)
    kept = kept_tensors(einsum, arch, mapping)
    keep = np.zeros((nl, nt), dtype=bool)
    for lvl, ks in enumerate(kept):
        for t, name in enumerate(tensors):
            keep[lvl, t] = name in ks
    out_name = einsum.output.tensor
    is_output = np.array([n == out_name for n in tensors])
    multicast = np.array([lv.multicast for lv in arch.levels])
    sreduce = np.array([lv.spatial_reduce for lv in arch.levels])
    pairs = []
    for t in range(nt):
        for c in range(1, nl + 1):
            if c < nl and not keep[c, t]:
                continue
            p = max(lvl for lvl in range(c) if keep[lvl, t])
            pairs.append((t, c, p))
    npairs = len(pairs)
    mc = np.zeros((npairs, nl, nr), dtype=bool)
    rel_above = np.zeros((npairs, nl, nr), dtype=bool)
    above = np.zeros((nl + 1, nl), dtype=bool)
    for c in range(nl + 1):
        above[c, :c] = True
    for k, (t, c, p) in enumerate(pairs):
        flag = sreduce if is_output[t] else multicast
        for lvl in range(p, c):
            if flag[lvl]:
                mc[k, lvl, :] = ~rel[t]
        rel_above[k, :c, :] = rel[t][None, :]
    resident = None
    if mapping.resident:
        resident = np.zeros((npairs, nl, nr), dtype=bool)
        for k, (t, c, _p) in enumerate(pairs):
            if c < nl:
                for lvl, r in resident_loops(einsum, mapping, tensors[t], c):
                    resident[k, lvl, ridx[r]] = True
        rel_above &= ~resident
        if not resident.any():
            resident = None
    unit = resolve_unit(einsum, arch, mapping)
    weights = einsum_op_weights(einsum)
    classes = tuple(weights)
    for c in classes:
        if unit.ops_per_cycle.get(c, 0) <= 0:
            raise MappingError(
                f"compute unit {unit.name} cannot do {c} ops (needed by {einsum.name})"
            )
    feed = feeding_level(arch, unit)
    array_level = -1
    if unit.kind == "array2d":
        for lvl, lv in enumerate(arch.levels[: feed + 1]):
            if lv.fanout > 1:
                array_level = lvl
    #: per level: 0 = the level's fan-out, 1 = the unit's PEs, 2 = none (1)
    limit_kind = np.zeros(nl, dtype=int)
    for lvl in range(nl):
        if lvl > feed:
            limit_kind[lvl] = 2
        elif unit.kind != "array2d" and lvl == feed:
            limit_kind[lvl] = 1
    return Structure(
        ranks=ranks,
        sizes=np.array([sizes[r] for r in ranks], dtype=float),
        levels=[lv.name for lv in arch.levels],
        tensors=tensors,
        bits=np.array([accs[n].bits for n in tensors], dtype=float),
        is_output=is_output,
        rel=rel,
        coef=coef.reshape(nt * D, nr),
        full_ext=full.reshape(nt * D),
        ndims=D,
        keep=keep,
        pairs=pairs,
        above=above,
        mc_mask=mc,
        rel_above=rel_above,
        db=np.array([lv.double_buffered for lv in arch.levels]),
        shared_bw=np.array([lv.shared_bw for lv in arch.levels]),
        unit=unit.name,
        unit_kind=unit.kind,
        dataflow=mapping.dataflow or unit.dataflow,
        classes=classes,
        weights=weights,
        array_level=array_level,
        limit_kind=limit_kind,
        iteration_points=float(einsum.iteration_points),
        unit_names=[cu.name for cu in arch.compute],
        parents=tuple(tuple(sorted({p for _t, c, p in pairs if c == lvl})) for lvl in range(nl)),
        roles=[tensor_roles(einsum)[n] for n in tensors],
        operand_registers=bool(getattr(unit, "operand_registers", False)),
        resident=resident,
    )


def array_skew(dataflow: str, rows: Any, cols: Any) -> Any:
    """Fill-and-drain cycles of one fold of a systolic array (SCALE-Sim)."""
    if dataflow in ("ws", "is"):
        return 2.0 * rows + cols - 2.0
    return rows + cols - 2.0


def structure_key(mapping: Mapping) -> tuple:
    return (
        mapping.unit,
        mapping.dataflow,
        tuple(lm.keep for lm in mapping.levels),
        tuple(
            (t, lv, tuple(loops))
            for t, d in sorted(mapping.resident.items())
            for lv, loops in sorted(d.items())
        ),
    )


def arch_structure_key(arch: Architecture) -> tuple:
    """What a :class:`Structure` depends on in an architecture (not the numbers).

    Two architectures with the same key (e.g. a sweep's derived variants that
    differ in sizes, bandwidths, energies, clock) share a compiled structure.
    """
    return (
        tuple(
            (
                lv.name,
                lv.holds,
                lv.multicast,
                lv.spatial_reduce,
                lv.double_buffered,
                lv.shared_bw,
                lv.fanout > 1,
            )
            for lv in arch.levels
        ),
        tuple(
            (
                cu.name,
                cu.kind,
                getattr(cu, "fed_by", ""),
                cu.dataflow,
                tuple(sorted(k for k, v in cu.ops_per_cycle.items() if v > 0)),
                getattr(cu, "operand_registers", False),
            )
            for cu in arch.compute
        ),
    )


class _Cache:
    """Compiled structures, looked up by object identity first (fast), then by
    value (an equal Einsum and an architecture of the same structure).
    Shared by the threads of a Dask worker (:mod:`workloads.memo`)."""

    def __init__(self, size: int = 512) -> None:
        #: (id(einsum), id(arch), structure key) -> (einsum, arch, structure);
        #: the entry holds both, so their ids cannot be reused while it lives
        self.by_id: BoundedCache[tuple] = BoundedCache(size)
        self.by_value: BoundedCache[Structure] = BoundedCache(size)

    def get(self, einsum: Einsum, arch: Architecture, mapping: Mapping) -> Structure:
        skey = structure_key(mapping)
        key = (id(einsum), id(arch), skey)
        hit = self.by_id.get(key)
        if hit is not None and hit[0] is einsum and hit[1] is arch:
            return hit[2]
        vkey = (einsum, arch_structure_key(arch), skey)
        st = self.by_value.get_or_make(vkey, lambda: compile_structure(einsum, arch, mapping))
        self.by_id.put(key, (einsum, arch, st))
        return st


STRUCTURES = _Cache()


def mapping_arrays(
    st: Structure, mappings: list[Mapping]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(temporal, spatial, order position) arrays ``[N, nl, nr]`` of mappings."""
    n = len(mappings)
    nl, nr = len(st.levels), len(st.ranks)
    tf = np.ones((n, nl, nr))
    sf = np.ones((n, nl, nr))
    pos = np.zeros((n, nl, nr))
    ridx = {r: i for i, r in enumerate(st.ranks)}
    for k, m in enumerate(mappings):
        for lvl, lm in enumerate(m.levels):
            for r, f in lm.temporal.items():
                tf[k, lvl, ridx[r]] = f
            for r, f in lm.spatial.items():
                sf[k, lvl, ridx[r]] = f
            for i, r in enumerate(loop_order(lm, st.ranks)):
                pos[k, lvl, ridx[r]] = i
    return tf, sf, pos


#: the per-access figures a level's memories give each tensor
TENSOR_FIGURES = ("read_energy_pj_per_word", "write_energy_pj_per_word", "word_bits")


def tensor_level_figures(st: Structure, arch: Architecture) -> dict[str, Any] | None:
    """``field -> [level][tensor]``: the read/write energy per word and the
    word of the memory that stores each tensor at each level (the tree's
    per-tensor memories, :func:`hw_models.memories.serving_memory`); the
    level's own figure where the level is one memory or the tensor bypasses
    it; ``min_access_bits`` the memory's smallest transfer (0: none),
    ``psum_bits`` the bits of a partial sum stored there (the output; the
    other tensors' own bits), ``rounds`` whether either changes an access.
    None when no level has several memories (every figure is the level's,
    as before)."""
    from hw_models.memories import serving_memory, tensor_bits

    if not any(lv.memories for lv in arch.levels):
        return None
    out: dict[str, Any] = {f: [] for f in (*TENSOR_FIGURES, "min_access_bits", "psum_bits")}
    for lv in arch.levels:
        mems = [
            serving_memory(lv, t, r) if lv.memories else None
            for t, r in zip(st.tensors, st.roles, strict=True)
        ]
        for f in TENSOR_FIGURES:
            out[f].append([float(getattr(m or lv, f)) for m in mems])
        out["min_access_bits"].append(
            [
                float(max((p.min_access_bits for p in m.ports), default=0)) if m else 0.0
                for m in mems
            ]
        )
        out["psum_bits"].append(
            [
                float(
                    tensor_bits(arch, lv.name, t, r, default_bits=int(b), partial=True)
                    if "output" in r
                    else b
                )
                for t, r, b in zip(st.tensors, st.roles, st.bits.tolist(), strict=True)
            ]
        )
    #: whether any access is rounded up or any partial sum is wider than the
    #: output (sim.analytical.words)
    out["rounds"] = any(b > 0 for row in out["min_access_bits"] for b in row) or any(
        b != w for row in out["psum_bits"] for b, w in zip(row, st.bits.tolist(), strict=True)
    )
    return out


def capacity_arrays(st: Structure, arch: Architecture) -> dict[str, np.ndarray]:
    """The capacity rule's groups (``mappers.mapping.capacity_groups``) as
    ``[nl, nt]`` arrays: ``capacity`` of the memory storing each tensor
    (inf: unbounded or not stored), its ``buffers`` (2 double-buffered, else
    1) and ``[nl, nt, nt]`` ``same``: whether two tensors share it."""
    nl, nt = len(arch.levels), len(st.tensors)
    idx = {t: i for i, t in enumerate(st.tensors)}
    cap = np.full((nl, nt), math.inf)
    buffers = np.ones((nl, nt))
    same = np.zeros((nl, nt, nt), dtype=bool)
    groups = groups_by_memory(arch, dict(zip(st.tensors, st.roles, strict=True)))
    for lvl, level_groups in enumerate(groups):
        for g in level_groups:
            ids = [idx[t] for t in g.tensors]
            cap[lvl, ids] = math.inf if g.capacity_bytes is None else g.capacity_bytes
            buffers[lvl, ids] = g.mult
            same[lvl][np.ix_(ids, ids)] = True
    return {"capacity": cap, "buffers": buffers, "same": same}


@dataclass(eq=False)
class Hardware:
    """Hardware parameters as arrays broadcastable to ``[N, nl]`` / ``[N]``."""

    cap: np.ndarray
    rbw: np.ndarray
    wbw: np.ndarray
    er: np.ndarray
    ew: np.ndarray
    leak: np.ndarray
    fanout: np.ndarray
    instances: np.ndarray
    word_bits: np.ndarray
    clock_hz: np.ndarray
    static_w: np.ndarray
    unit_leak_w: np.ndarray
    pes: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    #: class -> (ops/cycle per PE, pJ/op) of the bound unit
    rate: dict[str, np.ndarray]
    epj: dict[str, np.ndarray]
    #: [N|1, nl, nt] per-tensor energies per word and words (from the
    #: level's memories); None = the level's own ``er``/``ew``/``word_bits``
    er_t: np.ndarray | None = None
    ew_t: np.ndarray | None = None
    word_bits_t: np.ndarray | None = None
    #: [1, nl, nt] smallest transfer of each tensor's memory; None = none
    min_access_bits_t: np.ndarray | None = None
    #: [1, nl, nt] the bits of a partial sum at each level (with the above)
    psum_bits_t: np.ndarray | None = None
    #: [1, nl] energy per word carried across each level's fan-out network
    net: np.ndarray | None = None
    #: [N|1, nl, nt] capacity of the memory storing each tensor, that
    #: memory's buffering (2 or 1) and [N|1, nl, nt, nt] whether two tensors
    #: share it (the per-memory capacity rule of
    #: ``mappers.mapping.capacity_groups``); None = every level is one memory
    #: (``cap`` and the level's double buffering)
    cap_t: np.ndarray | None = None
    buffers_t: np.ndarray | None = None
    same_t: np.ndarray | None = None


def _per_tensor(level_col: np.ndarray, figures: list[list[float]], fixed: list[bool]) -> np.ndarray:
    """``[N|1, nl, nt]``: the memories' figures, the level column where a
    sweep overrides the level's field (``fixed``)."""
    per = np.array(figures, dtype=float)[None]  # [1, nl, nt]
    col = np.broadcast_to(
        level_col[..., None], np.broadcast_shapes(level_col.shape + (1,), per.shape)
    )
    return np.where(np.array(fixed)[None, :, None], col, per)


#: the Hardware fields of the per-tensor figures (None where not needed)
PER_TENSOR_FIELDS = (
    "er_t",
    "ew_t",
    "word_bits_t",
    "min_access_bits_t",
    "psum_bits_t",
    "cap_t",
    "buffers_t",
    "same_t",
)


def stack_per_tensor(st: Structure, hws: list[Hardware]) -> dict[str, np.ndarray | None]:
    """The per-tensor fields of several designs' :class:`Hardware` (one row
    each) stacked into ``[designs, nl, nt]`` rows; None where no design has
    them. A design without them gets its level figures (no rounding)."""
    if all(h.er_t is None for h in hws):
        return dict.fromkeys(PER_TENSOR_FIELDS)
    nl, nt = len(st.levels), len(st.tensors)

    def full(h: Hardware, f: str) -> np.ndarray:
        v = getattr(h, f)
        if f == "same_t":  # a design without memories: each level is one memory
            return np.broadcast_to(True if v is None else v, (1, nl, nt, nt))
        if v is not None:
            return np.broadcast_to(v, (1, nl, nt))
        if f == "buffers_t":
            return np.broadcast_to(np.where(st.db, 2.0, 1.0)[None, :, None], (1, nl, nt))
        level = {"er_t": h.er, "ew_t": h.ew, "word_bits_t": h.word_bits, "cap_t": h.cap}.get(f)
        if level is not None:
            return np.broadcast_to(level[..., None], (1, nl, nt))
        if f == "psum_bits_t":
            return np.broadcast_to(st.bits[None, None, :], (1, nl, nt))
        return np.zeros((1, nl, nt))

    out: dict[str, np.ndarray | None] = {}
    for f in PER_TENSOR_FIELDS:
        out[f] = np.concatenate([full(h, f) for h in hws], axis=0)
    if all(h.min_access_bits_t is None for h in hws):
        out["min_access_bits_t"] = out["psum_bits_t"] = None
    return out


def hardware_arrays(
    st: Structure, arch: Architecture, overrides: dict[str, np.ndarray] | None = None
) -> Hardware:
    """Hardware arrays, with ``overrides`` ("clock_hz", "<level>.<field>",
    "<unit>.<field>", "<unit>.ops_per_cycle.<class>") replacing fields."""
    ov = dict(overrides or {})
    given = set(ov)
    nl = len(arch.levels)

    def lvcol(fld: str, default) -> np.ndarray:
        cols = []
        varying = False
        for lv in arch.levels:
            key = f"{lv.name}.{fld}"
            if key in ov:
                cols.append(np.asarray(ov.pop(key), dtype=float))
                varying = True
            else:
                cols.append(default(lv))
        if not varying:
            return np.array(cols, dtype=float)[None, :]
        return np.stack(np.broadcast_arrays(*[np.asarray(c, dtype=float) for c in cols]), axis=-1)

    inf = math.inf
    cap = lvcol(
        "capacity_bytes", lambda lv: inf if lv.capacity_bytes is None else lv.capacity_bytes
    )
    rbw = lvcol("read_bw_bytes_per_cycle", lambda lv: lv.read_bw_bytes_per_cycle)
    wbw = lvcol("write_bw_bytes_per_cycle", lambda lv: lv.write_bw_bytes_per_cycle)
    er = lvcol("read_energy_pj_per_word", lambda lv: lv.read_energy_pj_per_word)
    ew = lvcol("write_energy_pj_per_word", lambda lv: lv.write_energy_pj_per_word)
    leak = lvcol("leakage_w", lambda lv: lv.leakage_w)
    fx = lvcol("fanout_x", lambda lv: lv.fanout_x)
    fy = lvcol("fanout_y", lambda lv: lv.fanout_y)
    inst = lvcol("instances", lambda lv: lv.instances)
    wb = lvcol("word_bits", lambda lv: lv.word_bits)
    unit = arch.unit(st.unit)

    def scalar(key: str, value: float) -> np.ndarray:
        if key in ov:
            return np.asarray(ov.pop(key), dtype=float)
        return np.asarray(float(value))

    clock = scalar("clock_hz", arch.clock_hz)
    static = scalar("static_power_w", arch.static_power_w)
    uleak = np.asarray(0.0)
    for cu in arch.compute:
        uleak = uleak + scalar(f"{cu.name}.leakage_w", cu.leakage_w)
    pes = scalar(f"{unit.name}.pes", unit.pes)
    rows = scalar(f"{unit.name}.rows", unit.rows)
    cols = scalar(f"{unit.name}.cols", unit.cols)
    rate = {
        c: scalar(f"{unit.name}.ops_per_cycle.{c}", unit.ops_per_cycle.get(c, 0.0))
        for c in st.classes
    }
    epj = {
        c: scalar(f"{unit.name}.energy_pj_per_op.{c}", unit.energy_pj_per_op.get(c, 0.0))
        for c in st.classes
    }
    # fields of other units that do not change this Einsum's cost
    for key in list(ov):
        head = key.split(".", 1)[0]
        if head in st.unit_names and head != unit.name:
            ov.pop(key)
    if ov:
        raise MappingError(
            f"unknown hardware override(s): {', '.join(sorted(ov))} (expected clock_hz, "
            f"static_power_w, <level>.<{'|'.join(LEVEL_FIELDS)}>, "
            f"<unit>.<{'|'.join(UNIT_FIELDS)}|ops_per_cycle.C|energy_pj_per_op.C>)"
        )
    del nl
    per_t: dict[str, np.ndarray | None] = dict.fromkeys(
        (*TENSOR_FIGURES, "min_access_bits", "psum_bits")
    )
    figs = tensor_level_figures(st, arch)
    if figs is not None:
        for f, col in zip(TENSOR_FIGURES, (er, ew, wb), strict=True):
            fixed = [f"{lv.name}.{f}" in given for lv in arch.levels]
            per_t[f] = _per_tensor(col, figs[f], fixed)
        # an override of a level's capacity sizes that level as one memory
        # (all its tensors share the overridden capacity); the sweep's own
        # designs replace these rows with their memories' (sim.mapped)
        cap_fixed = [f"{lv.name}.capacity_bytes" in given for lv in arch.levels]
        one = np.array(cap_fixed)[:, None]
        groups = capacity_arrays(st, arch)
        per_t["cap_t"] = _per_tensor(cap, groups["capacity"].tolist(), cap_fixed)
        level_buf = np.array([2.0 if lv.double_buffered else 1.0 for lv in arch.levels])
        per_t["buffers_t"] = np.where(one, level_buf[:, None], groups["buffers"])[None]
        per_t["same_t"] = (groups["same"] | one[..., None])[None]
        if figs["rounds"]:
            per_t["min_access_bits"] = np.array(figs["min_access_bits"], dtype=float)[None]
            per_t["psum_bits"] = np.array(figs["psum_bits"], dtype=float)[None]
    return Hardware(
        cap=cap,
        rbw=rbw,
        wbw=wbw,
        er=er,
        ew=ew,
        leak=leak,
        fanout=fx * fy,
        instances=inst,
        word_bits=wb,
        clock_hz=clock,
        static_w=static,
        unit_leak_w=uleak,
        pes=pes,
        rows=rows,
        cols=cols,
        rate=rate,
        epj=epj,
        er_t=per_t["read_energy_pj_per_word"],
        ew_t=per_t["write_energy_pj_per_word"],
        word_bits_t=per_t["word_bits"],
        min_access_bits_t=per_t["min_access_bits"],
        psum_bits_t=per_t["psum_bits"],
        cap_t=per_t.get("cap_t"),
        buffers_t=per_t.get("buffers_t"),
        same_t=per_t.get("same_t"),
        net=np.array([[lv.network_energy_pj_per_word for lv in arch.levels]], dtype=float),
    )

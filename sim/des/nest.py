"""Tile structure of a mapped Einsum, as the discrete-event simulator sees it.

The temporal loops of every storage level except the innermost are flattened
(outermost first) into one mixed-radix counter; each value of the counter is a
*step*: one tile computed by the compute unit (all PEs in parallel work on
their innermost tiles). A tensor's tile held at level ``c`` is fixed by the
loops above ``c``; it changes at step ``s`` exactly when the innermost of
those loops that indexes the tensor advances, i.e. when ``s % period == 0``
with ``period`` = product of the loop factors inside that loop. So tile ``i``
of a buffer covers steps ``[i*period, (i+1)*period)``: the reuse analysis of
the loop nest (Timeloop's rule: only the innermost run of irrelevant loops
gives reuse) falls out as arithmetic, with one event per tile and no per-MAC
work.

An output tile whose coordinates were visited before (a reduction loop lies
outside its innermost relevant loop) is first read back from the parent
(read-modify-write of partial sums) and written back when it changes.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field

from hw_models.arch import Architecture
from mappers.mapping import (
    Mapping,
    einsum_op_classes,
    kept_tensors,
    loop_order,
    resolve_unit,
    tile_footprint,
)
from workloads.errors import EinsimError
from workloads.ir import Access, Einsum


class SimulationError(EinsimError):
    """The discrete-event simulation cannot run or cannot finish."""


class DeadlockError(SimulationError):
    """No process can make progress: a buffer cannot take the tiles in flight."""


class SimTimeLimitError(SimulationError):
    """The simulated time passed the bound given to the simulator."""


@dataclass(frozen=True)
class Loop:
    rank: str
    level: int
    factor: int
    #: steps inside one iteration of this loop (product of inner factors)
    inner_steps: int


@dataclass(frozen=True)
class Buffer:
    """One tensor at one on-chip level, fed from its parent level."""

    tensor: str
    is_output: bool
    level: int
    parent: int
    #: steps per tile (tile i covers steps [i*period, (i+1)*period))
    period: int
    #: bytes of one tile in one instance of the level (capacity accounting)
    tile_bytes: float
    #: bytes moved at the parent per tile (multicast data counted once)
    transfer_bytes: float
    #: bytes written into (or read out of) all used child instances per tile
    fill_bytes: float
    #: element width in bytes
    elem_bytes: float
    #: channel keys (see :func:`channel_key`) of the parent's and the child's
    #: port used by a fetch (parent read, child write); a write-back uses the
    #: child's read port and the parent's write port
    parent_rd: str = ""
    parent_wr: str = ""
    child_rd: str = ""
    child_wr: str = ""
    #: loops above ``level`` (outer to the innermost relevant one) that do not
    #: index the tensor: a tile of an output revisits coordinates when one of
    #: them is non-zero
    revisit_loops: tuple[Loop, ...] = ()
    slots: int = 2
    #: irregular tiles (an input's): the first step of each tile, ascending,
    #: the first one 0; empty: tile i covers steps [i*period, (i+1)*period)
    tile_steps: tuple[int, ...] = ()
    #: tiles present before the run starts (no transfer)
    preloaded: int = 0

    def tiles(self, steps: int) -> int:
        if self.tile_steps:
            return bisect_left(self.tile_steps, steps)
        return -(-steps // self.period)

    def revisited(self, tile: int) -> bool:
        """True when output tile ``tile`` holds partial sums from an earlier visit."""
        s = tile * self.period
        return any((s // lp.inner_steps) % lp.factor for lp in self.revisit_loops)

    def first_visits(self, steps: int) -> int:
        """Number of tiles (of the first ``steps`` steps) visited for the first time."""
        n = self.tiles(steps)
        if not self.revisit_loops:
            return n
        return sum(1 for i in range(n) if not self.revisited(i))


@dataclass(frozen=True)
class Nest:
    einsum: str
    unit: str
    loops: tuple[Loop, ...]
    steps: int
    buffers: tuple[Buffer, ...]
    #: level index each tensor is read from by the compute unit
    leaf: dict[str, int]
    cycles_per_step: float
    #: channel key -> bytes the compute unit moves on it per step (operand
    #: reads and partial-sum updates at the innermost levels)
    step_bytes: dict[str, float]
    #: (level, tensor) -> (reads, writes, updates) in elements per step of
    #: the compute unit's own accesses
    step_accesses: dict[tuple[int, str], tuple[float, float, float]]
    #: channel key -> bandwidth in bytes/cycle (level bandwidth x instances used)
    channel_bw: dict[str, float]
    macs: float
    padded_macs: float
    compute_cycles: float
    level_names: tuple[str, ...]
    op_classes: tuple[str, ...] = ()
    #: tensor -> datatype bits
    tensor_bits: dict[str, float] = field(default_factory=dict)
    #: cycles of each step when they differ (empty: ``cycles_per_step`` each);
    #: only for a nest whose steps use the compute unit and no port
    step_cycles: tuple[float, ...] = ()
    #: how a step that waited for tiles is charged, when not simply until
    #: they arrive (SCALE-Sim's accounting, :mod:`sim.systolic.des`): called
    #: with the cycle the step could have started and, per leaf buffer with
    #: irregular tiles, the arrival cycles of the tiles it needs first; returns
    #: the cycle it starts (never before they arrive)
    stall_rule: Callable[[float, tuple[list[float], ...]], float] | None = None


def first_accesses(einsum: Einsum) -> list[Access]:
    """The first access of each tensor, in the Einsum's access order (a tensor
    read twice, or read and written, moves as one stream)."""
    seen: set[str] = set()
    out = []
    for acc in einsum.accesses:
        if acc.tensor not in seen:
            seen.add(acc.tensor)
            out.append(acc)
    return out


def channel_key(arch: Architecture, level: int, port: str, einsum: str) -> str:
    """Name of a level's read ("rd") or write ("wr") port.

    A level with one instance (DRAM, a global buffer) has one port shared by
    every Einsum; a level replicated per PE (register files) gets a port per
    Einsum, whose bandwidth scales with the instances that Einsum uses.
    """
    lv = arch.levels[level]
    p = "rw" if lv.shared_bw else port
    if lv.instances > 1:
        return f"{lv.name}.{p}@{einsum}"
    return f"{lv.name}.{p}"


def _ops_per_point(einsum: Einsum) -> dict[str, float]:
    """Operations per iteration point, by operator class (the mappers' rule)."""
    return dict.fromkeys(einsum_op_classes(einsum), 1.0)


def build_nest(
    einsum: Einsum,
    arch: Architecture,
    mapping: Mapping,
    *,
    on_chip_inputs: frozenset[str] = frozenset(),
    compute_cycles: float | None = None,
) -> Nest:
    """Derive steps, buffers and per-step work of a mapped Einsum.

    Counts follow the analytical model's reuse analysis (see
    ``sim/analytical/core.py``): a tile at child level ``c`` holds
    ``F`` elements per instance, is filled into ``S`` instances (spatial
    factors above ``c``) and moves ``F*S/MC`` elements at the parent
    (``MC``: multicast or spatial reduction between parent and child over
    ranks that do not index the tensor). ``on_chip_inputs`` are tensors
    handed over on chip by a fused producer: they are not fetched from the
    outermost level. ``compute_cycles`` (the whole Einsum's, e.g. the
    analytical model's, with systolic fill and drain) is spread evenly over
    the steps; by default it is the steps times the innermost loops' work.
    """
    names = tuple(lv.name for lv in arch.levels)
    if len(mapping.levels) != len(arch.levels):
        raise SimulationError(
            f"mapping of {einsum.name} has {len(mapping.levels)} levels, "
            f"architecture {arch.name} has {len(arch.levels)} ({', '.join(names)})"
        )
    n = len(arch.levels)
    sizes = einsum.rank_sizes
    ranks = list(sizes)
    # flattened temporal loops of levels 0..n-2, outermost first
    raw: list[tuple[str, int, int]] = []
    for li, lm in enumerate(mapping.levels[: n - 1]):
        for r in loop_order(lm, ranks):
            f = int(lm.temporal.get(r, 1))
            if f > 1:
                raw.append((r, li, f))
    loops: list[Loop] = []
    inner = 1
    for r, li, f in reversed(raw):
        loops.append(Loop(r, li, f, inner))
        inner *= f
    loops.reverse()
    steps = inner

    def tile_at(c: int) -> dict[str, int]:
        return {
            r: math.prod(
                int(lm.temporal.get(r, 1)) * int(lm.spatial.get(r, 1)) for lm in mapping.levels[c:]
            )
            for r in ranks
        }

    def spatial_above(c: int) -> int:
        return math.prod(int(v) for lm in mapping.levels[:c] for v in lm.spatial.values())

    def multicast(p: int, c: int, rel: frozenset[str], is_out: bool) -> int:
        mc = 1
        for lvl in range(p, min(c, n)):
            lv = arch.levels[lvl]
            if lv.spatial_reduce if is_out else lv.multicast:
                for r in ranks:
                    if r not in rel:
                        mc *= int(mapping.levels[lvl].spatial.get(r, 1))
        return mc

    channel_bw: dict[str, float] = {}

    def port(level: int, kind: str) -> str:
        key = channel_key(arch, level, kind, einsum.name)
        lv = arch.levels[level]
        bw = (
            lv.read_bw_bytes_per_cycle
            if (kind == "rd" or lv.shared_bw)
            else lv.write_bw_bytes_per_cycle
        )
        channel_bw[key] = bw * spatial_above(level)
        return key

    unit = resolve_unit(einsum, arch, mapping)
    keeps = kept_tensors(einsum, arch, mapping)
    buffers: list[Buffer] = []
    leaf: dict[str, int] = {}
    for acc in first_accesses(einsum):
        t = acc.tensor
        is_out = acc is einsum.output
        rel = acc.ranks
        kept = [c for c in range(1, n) if t in keeps[c]]
        parent = 0
        if t in on_chip_inputs and kept:
            # handed over on chip: the outermost on-chip copy is already there
            parent = kept[0]
            kept = kept[1:]
        leaf[t] = kept[-1] if kept else parent
        eb = acc.bits / 8
        for c in kept:
            words = tile_footprint(acc, tile_at(c), sizes)
            fill = words * spatial_above(c)
            xfer = fill / multicast(parent, c, rel, is_out)
            above = [lp for lp in loops if lp.level < c]
            relevant = [i for i, lp in enumerate(above) if lp.rank in rel]
            if relevant:
                j = relevant[-1]
                period = above[j].inner_steps
                revisit = tuple(lp for lp in above[:j] if lp.rank not in rel) if is_out else ()
            else:
                period = steps
                revisit = ()
            buffers.append(
                Buffer(
                    tensor=t,
                    is_output=is_out,
                    level=c,
                    parent=parent,
                    period=period,
                    tile_bytes=words * eb,
                    transfer_bytes=xfer * eb,
                    fill_bytes=fill * eb,
                    elem_bytes=eb,
                    parent_rd=port(parent, "rd"),
                    parent_wr=port(parent, "wr"),
                    child_rd=port(c, "rd"),
                    child_wr=port(c, "wr"),
                    revisit_loops=revisit,
                    slots=2 if arch.levels[c].double_buffered else 1,
                )
            )
            parent = c

    # the compute unit's own accesses at the innermost level holding each
    # tensor: every temporal loop counts (no operand registers), spread over
    # the steps
    all_t = math.prod(int(v) for lm in mapping.levels for v in lm.temporal.values())
    s_all = spatial_above(n)
    step_bytes: dict[str, float] = {}
    step_acc: dict[tuple[int, str], tuple[float, float, float]] = {}
    for acc in first_accesses(einsum):
        t = acc.tensor
        is_out = acc is einsum.output
        p = leaf[t]
        xfer = all_t * s_all / multicast(p, n, acc.ranks, is_out) / steps
        eb = acc.bits / 8
        if is_out:
            dist = math.prod(int(lm.temporal.get(r, 1)) for lm in mapping.levels for r in acc.ranks)
            refill = max(0.0, 1.0 - dist / all_t)
            r_, w_, u_ = 0.0, xfer * (1 - refill), xfer * refill
        else:
            r_, w_, u_ = xfer, 0.0, 0.0
        step_acc[(p, t)] = (r_, w_, u_)
        rd, wr = port(p, "rd"), port(p, "wr")
        step_bytes[rd] = step_bytes.get(rd, 0.0) + (r_ + u_) * eb
        step_bytes[wr] = step_bytes.get(wr, 0.0) + (w_ + u_) * eb

    classes = einsum_op_classes(einsum)
    cpp = 0.0
    for op in classes:
        rate = unit.ops_per_cycle.get(op, 0.0)
        if rate <= 0:
            raise SimulationError(
                f"compute unit {unit.name} cannot run operator class {op!r} of {einsum.name}"
            )
        cpp += 1.0 / rate
    if compute_cycles is None:
        inner_points = math.prod(int(mapping.levels[-1].temporal.get(r, 1)) for r in sizes)
        compute_cycles = steps * inner_points * cpp
    padded = math.prod(mapping.factor(r) for r in sizes)
    return Nest(
        einsum=einsum.name,
        unit=unit.name,
        loops=tuple(loops),
        steps=steps,
        buffers=tuple(buffers),
        leaf=leaf,
        cycles_per_step=compute_cycles / steps,
        step_bytes=step_bytes,
        step_accesses=step_acc,
        channel_bw=channel_bw,
        macs=float(einsum.iteration_points),
        padded_macs=float(padded),
        compute_cycles=float(compute_cycles),
        level_names=names,
        op_classes=classes,
        tensor_bits={a.tensor: float(a.bits) for a in einsum.accesses},
    )

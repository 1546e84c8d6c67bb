"""Schedules of attention cascades as published designs run them.

* :func:`flat_schedule`: FLAT (Kao et al., 2023) fuses QK, softmax and AV of
  the 3-pass cascade inside the global buffer, tiling the query rank ``p``;
  the tile is the largest one whose intermediates fit twice (double
  buffering, so consecutive tiles overlap). MAC Einsums run on the 2D array,
  the softmax Einsums on the 1D array.
* :func:`fusemax_schedule`: FuseMax (Nayak et al., MICRO 2024) runs the 1-pass
  cascade as one group: each pass over a tile of ``p`` as wide as the array
  streams the key rank ``m1`` through both arrays, with the running state in
  the units' registers; the binding comes from the Einsums' ``unit_class``
  attributes (docs/references.md, FuseMax). The buffer tile of ``p`` (how
  many queries' state the buffer holds while K and V stream past) is chosen
  to minimise DRAM traffic.

These only need the cascade and the architecture's capacities; costs come
from ``sim.analytical.cascade``.
"""

from __future__ import annotations

import math

from hw_models.arch import Architecture
from mappers.schedule import (
    OUTER_RANKS,
    FusionGroup,
    Schedule,
    ScheduleError,
    default_binding,
    later_pass_readers,
    streamed_ranks,
)
from workloads.ir import Cascade


def _buffer(arch: Architecture) -> tuple[str, float]:
    if len(arch.levels) < 2:
        raise ScheduleError(f"architecture {arch.name} has no on-chip buffer level")
    lv = arch.levels[1]
    return lv.name, float(lv.capacity_bytes or math.inf)


def _outer_slices(cascade: Cascade, tensor: str, sizes: dict[str, int]) -> int:
    t = cascade.tensor(tensor)
    return max(1, math.prod(sizes.get(r, 1) for r in t.ranks if r in OUTER_RANKS))


def _sizes(cascade: Cascade) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for e in cascade.einsums:
        sizes.update(e.rank_sizes)
    return sizes


def _peak_live_bytes_per_query(
    cascade: Cascade, rank: str, sizes: dict[str, int], spilled: frozenset[str] = frozenset()
) -> float:
    """Peak on-chip bytes per index of ``rank`` (one outer slice) over the
    group's order: inputs and outputs with the rank stay live throughout,
    intermediates from producer to last consumer."""
    n = sizes.get(rank, 1)
    order = [e.name for e in cascade.einsums]
    pos = {name: i for i, name in enumerate(order)}
    live_span: dict[str, tuple[int, int]] = {}
    for e in cascade.einsums:
        t = e.output.tensor
        if t in cascade.intermediates and t not in spilled:
            first = pos[e.name]
            readers = [x for x in cascade.einsums if any(a.tensor == t for a in x.inputs)]
            if (
                rank in cascade.tensor(t).ranks
                and streamed_ranks(cascade, t, rank)
                and not later_pass_readers(cascade, t, [x.name for x in readers], rank)
            ):
                # read only in its producer's pass: it streams through the
                # buffer a tile at a time and never needs a whole row
                continue
            last = max((pos[x.name] for x in readers), default=first)
            last_reader = order[last]
            # in place: a last reader that is element-wise over the same ranks
            # overwrites the tensor as it goes, so the two never coexist
            lr = cascade.einsum(last_reader)
            if (
                last > first
                and not lr.reduced_ranks
                and set(cascade.tensor(lr.output.tensor).ranks) == set(cascade.tensor(t).ranks)
            ):
                last -= 1
            live_span[t] = (first, last)

    def per_query(t: str) -> float:
        tensor = cascade.tensor(t)
        if rank not in tensor.ranks:
            return 0.0
        return tensor.bytes / _outer_slices(cascade, t, sizes) / n

    always = sum(per_query(t) for t in (*cascade.inputs, *cascade.outputs))
    peak = 0.0
    for step in range(len(order)):
        live = sum(per_query(t) for t, (a, b) in live_span.items() if a <= step <= b)
        peak = max(peak, live)
    return always + peak


def _readers(cascade: Cascade, tensor: str) -> list[str]:
    return [
        e.name
        for e in cascade.einsums
        if e.output.tensor != tensor and any(a.tensor == tensor for a in e.inputs)
    ]


def flat_candidates(cascade: Cascade, arch: Architecture, rank: str = "p") -> list[Schedule]:
    """FLAT's legal schedules: every intermediate kept in the buffer (the
    tile shrinks as the key rank grows, and K and V are re-read per tile), or
    the score-sized intermediates that a later pass reads spilled to DRAM
    (the tile is then bounded by the small per-query state only; each spilled
    tensor costs one write plus one read per later pass, see
    :func:`mappers.schedule.later_pass_readers`). The caller costs them and
    keeps the best, as FLAT picks its granularity per workload."""
    sizes = _sizes(cascade)
    big = frozenset(
        t
        for t in cascade.intermediates
        if rank in cascade.tensor(t).ranks
        and streamed_ranks(cascade, t, rank)
        and cascade.tensor(t).bytes >= max(cascade.tensor(x).bytes for x in cascade.inputs)
        and later_pass_readers(cascade, t, _readers(cascade, t), rank)
    )
    out: list[Schedule] = []
    for spilled in (frozenset(), big):
        for pipelined in (True, False):
            try:
                largest = flat_schedule(cascade, arch, rank, spilled=spilled, pipelined=pipelined)
            except ScheduleError:
                continue
            tile = largest.groups[0].tile
            # smaller tiles overlap the units better but re-read K and V more
            for _ in range(8):
                out.append(
                    flat_schedule(
                        cascade, arch, rank, spilled=spilled, tile=tile, pipelined=pipelined
                    )
                )
                if tile == 1:
                    break
                tile = max(1, tile // 4)
        if not big:
            break
    if not out:
        # re-raise the clearest explanation
        flat_schedule(cascade, arch, rank, pipelined=False)
    del sizes
    return out


def flat_schedule(
    cascade: Cascade,
    arch: Architecture,
    rank: str = "p",
    spilled: frozenset[str] = frozenset(),
    tile: int | None = None,
    pipelined: bool = True,
) -> Schedule:
    """FLAT: one fused, double-buffered group tiled on the query rank;
    ``spilled`` intermediates go through DRAM instead of the buffer."""
    buffer, capacity = _buffer(arch)
    sizes = _sizes(cascade)
    if rank not in sizes:
        raise ScheduleError(f"cascade {cascade.name} has no rank {rank!r} to tile for FLAT")
    per_q = _peak_live_bytes_per_query(cascade, rank, sizes, spilled)
    n = sizes[rank]
    slots = 2 if pipelined else 1
    if tile is None:
        tile = 1 << int(math.floor(math.log2(n))) if n > 0 else 1
        tile = n if slots * per_q * n <= capacity else tile
        while tile >= 1 and slots * per_q * tile > capacity:
            tile //= 2
    if tile < 1 or slots * per_q * tile > capacity:
        raise ScheduleError(
            f"FLAT: one {rank} row of the intermediates needs {slots * per_q:.0f} B "
            f"({'double-buffered' if pipelined else 'single-buffered'}) but {buffer} "
            f"holds {capacity:.0f} B"
        )
    group = FusionGroup(
        einsums=tuple(e.name for e in cascade.einsums),
        keep_level=buffer,
        tiled_rank=rank,
        tile=tile,
        buffer_tile=tile,
        buffer_bytes_per_tile=per_q * tile,
        pipelined=pipelined,
    )
    return Schedule(
        cascade=cascade.name,
        order=group.einsums,
        groups=(group,),
        binding=default_binding(cascade, arch),
        residency={t: ("DRAM" if t in spilled else buffer) for t in cascade.intermediates},
        method="flat" if not spilled else "flat-spill",
    )


def fusemax_schedule(
    cascade: Cascade,
    arch: Architecture,
    rank: str = "p",
    streamed_rank: str = "m1",
) -> Schedule:
    """FuseMax: the 1-pass cascade as one streamed group (see module doc)."""
    buffer, capacity = _buffer(arch)
    sizes = _sizes(cascade)
    for r in (rank, streamed_rank):
        if r not in sizes:
            raise ScheduleError(f"cascade {cascade.name} has no rank {r!r} (FuseMax needs it)")
    binding = default_binding(cascade, arch)
    two_d = [u for u in arch.compute if u.kind == "array2d"]
    width = two_d[0].cols if two_d else 1
    n = sizes[rank]
    tile = min(n, width)
    rf = arch.levels[2].name if len(arch.levels) > 2 else buffer
    # per-query state held in the buffer: the query's inputs and outputs with
    # the rank, plus one step of the running state (tensors with both ranks)
    per_q = 0.0
    for t in (*cascade.inputs, *cascade.outputs, *cascade.intermediates):
        tensor = cascade.tensor(t)
        if rank not in tensor.ranks:
            continue
        size = tensor.bytes / _outer_slices(cascade, t, sizes) / n
        if streamed_rank in tensor.ranks:
            if t not in cascade.intermediates or not _iterative(cascade, t):
                continue
            size /= max(1, sizes[streamed_rank])
        per_q += size
    # streamed operands (inputs without the tiled rank): two tiles of one step
    stream = 0.0
    for t in cascade.inputs:
        tensor = cascade.tensor(t)
        if rank in tensor.ranks:
            continue
        stream += 2 * tensor.bytes / _outer_slices(cascade, t, sizes) / max(1, sizes[streamed_rank])
    resident = sum(
        cascade.tensor(t).bytes / _outer_slices(cascade, t, sizes)
        for t in cascade.inputs
        if rank not in cascade.tensor(t).ranks
    )
    if per_q * tile + stream > capacity:
        raise ScheduleError(
            f"FuseMax: the state of {tile} queries ({per_q * tile:.0f} B) and the streamed "
            f"tiles ({stream:.0f} B) do not fit {buffer} ({capacity:.0f} B)"
        )
    # choose the buffer tile: fewest DRAM bytes for K and V (re-read once per
    # buffer tile unless resident)
    best = None
    bt = tile
    while True:
        room = capacity - per_q * bt - stream
        if room < 0:
            break
        rereads = 1 if resident <= room + stream else math.ceil(n / bt)
        if best is None or rereads < best[0]:
            best = (rereads, bt)
        if bt >= n:
            break
        bt = min(n, bt * 2)
    assert best is not None
    group = FusionGroup(
        einsums=tuple(e.name for e in cascade.einsums),
        keep_level=rf,
        tiled_rank=rank,
        tile=tile,
        buffer_tile=best[1],
        buffer_bytes_per_tile=per_q * best[1],
        streamed_rank=streamed_rank,
        pipelined=False,
    )
    return Schedule(
        cascade=cascade.name,
        order=group.einsums,
        groups=(group,),
        binding=binding,
        residency={t: rf for t in cascade.intermediates},
        method="fusemax",
    )


def _iterative(cascade: Cascade, tensor: str) -> bool:
    """True when some Einsum reads the tensor it writes (a running state)."""
    return any(
        e.output.tensor == tensor and any(a.tensor == tensor for a in e.inputs)
        for e in cascade.einsums
    )

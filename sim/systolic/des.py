"""A SCALE-Sim layer on the generic path: dataflow mapping, analytical model, DES.

The systolic array of :mod:`sim.systolic.scalesim` is the generic spatial
array of :mod:`hw_models.spatial` (``DRAM -> GlobalBuffer -> PE_RF``, a
``rows x cols`` 2D array) with SCALE-Sim's dataflow mapping
(:func:`mappers.dataflows.dataflow_mapping` of the layer's im2col GEMM,
:func:`mappers.dataflows.im2col`):

* **compute** -- the analytical model (:mod:`sim.analytical.model`) of that
  mapping gives the stall-free cycles, ``folds * (T + skew) - 1``, exactly
  SCALE-Sim's ``compute_cycles_no_stall`` (``tests/mappers/test_dataflows.py``
  checks all 132 reference rows);
* **memory** -- SCALE-Sim's read buffers are not a reuse analysis but a
  window of hashed lines that slides on a miss (:func:`read_schedule`). The
  discrete-event simulator (:mod:`sim.des.engine`) replays that schedule: one
  DMA engine per operand on a DRAM port of its own moves the window slides
  back to back (SCALE-Sim chains its prefetches whether or not they are
  needed yet: every buffer slot is free), the first window is in the SRAM
  before the first row, and the array, one row of demand per cycle, waits
  at a row that needs a slide until the slide has arrived.

:func:`simulate_layer` returns the DES's :class:`~sim.metrics.Metrics`;
``cycles`` compares with SCALE-Sim's ``total_cycles`` (the cycle of the last
row, one less than the rows run). With ``scalesim_compat`` (default) a wait
is charged twice, as SCALE-Sim's ``read_buffer.service_reads`` does (see
``docs/scalesim.md``). The ofmap write buffer is not simulated: with an
ofmap bandwidth of at least the columns (every reference configuration) it
never stalls the array.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hw_models.arch import Architecture, ComputeUnit, StorageLevel
from hw_models.spatial import spatial_array
from mappers.dataflows import dataflow_mapping, im2col
from sim.analytical.model import evaluate
from sim.des.nest import Buffer, Nest
from sim.des.simulate import simulate_nests
from sim.metrics import Metrics
from sim.systolic.scalesim import ArrayConfig, ConvShape, ReadSchedule, read_schedule
from workloads.library import build

__all__ = ["generic_architecture", "layer_nest", "simulate_layer", "stall_free_cycles"]

#: SCALE-Sim's words are one byte (its default word size)
_WORD_BITS = 8
#: cycles before the first array row (see :func:`layer_nest`)
_LEAD = 2.0


def generic_architecture(cfg: ArrayConfig) -> Architecture:
    """The generic spatial array of ``cfg`` (:func:`hw_models.spatial.spatial_array`):
    its rows, columns and dataflow, the three SRAMs as one global buffer, the
    three DRAM bandwidths summed, 1-byte words, 1 GHz."""
    sram_bytes = 1024 * (cfg.ifmap_sram_kb + cfg.filter_sram_kb + cfg.ofmap_sram_kb)
    bw_words = cfg.ifmap_dram_bw_words + cfg.filter_dram_bw_words + cfg.ofmap_dram_bw_words
    return spatial_array(
        rows=int(cfg.rows),
        cols=int(cfg.cols),
        dataflow=cfg.dataflow,
        clock_hz=1e9,
        datatype_bits=_WORD_BITS,
        pe_rf_bytes=1,
        global_buffer_bytes=sram_bytes,
        dram_bandwidth_bytes_per_s=bw_words * 1e9,
    )


def stall_free_cycles(m: int, n: int, k: int, cfg: ArrayConfig) -> float:
    """SCALE-Sim's ``compute_cycles_no_stall`` from the generic path: the
    analytical model of the dataflow mapping of the im2col GEMM."""
    e = im2col(build("gemm", M=int(m), N=int(n), K=int(k), bits=_WORD_BITS).einsums[0])
    arch = generic_architecture(cfg)
    mapping = dataflow_mapping(e, arch, cfg.dataflow)
    return evaluate(e, arch, mapping, check=False).compute_cycles


def _arch(cfg: ArrayConfig) -> Architecture:
    """Two levels for the DES: DRAM (a port per operand) and the SRAMs."""
    bw = float(cfg.ifmap_dram_bw_words + cfg.filter_dram_bw_words)
    return Architecture(
        name=f"scalesim_{cfg.rows}x{cfg.cols}_{cfg.dataflow}",
        family="spatial",
        clock_hz=1e9,
        levels=(
            StorageLevel("DRAM", None, _WORD_BITS, bw, bw, 0.0, 0.0),
            StorageLevel("SRAM", None, _WORD_BITS, bw, bw, 0.0, 0.0),
        ),
        compute=(
            ComputeUnit(
                "systolic_array",
                "array2d",
                int(cfg.rows) * int(cfg.cols),
                {"mac": 1.0},
                {"mac": 0.0},
                rows=int(cfg.rows),
                cols=int(cfg.cols),
                dataflow=cfg.dataflow,
            ),
        ),
    )


def _scalesim_stall(ready_at: float, arrivals: tuple[list[float], ...]) -> float:
    """SCALE-Sim 3.0.0's charge for a row that waits (``read_buffer.service_reads``):
    per operand, from ``out = c + 1``, each prefetch it needs moves ``out`` by
    ``gap = ready - out`` and, when positive, by ``gap`` again (a prefetch
    done early even moves it back, so two prefetches that are both done can
    still stall the row); the row waits for the worst operand.

    In DES cycles the row could start at ``ready_at`` = ``c + _LEAD`` and a
    slide ready at SCALE-Sim cycle ``r`` arrives at ``r + 1``."""
    c = ready_at - _LEAD
    worst = 0.0
    for times in arrivals:
        if not times:
            continue
        out = c + 1.0
        for a in times:
            gap = (a - 1.0) - out
            out += 2.0 * gap if gap > 0 else gap
        worst = max(worst, out - c - 1.0)
    return ready_at + worst


def layer_nest(
    m: int,
    n: int,
    k: int,
    cfg: ArrayConfig,
    *,
    conv: ConvShape | None = None,
    scalesim_compat: bool = True,
    schedule: ReadSchedule | None = None,
) -> tuple[Nest, Architecture]:
    """The DES nest of a layer (see the module doc) and its architecture.

    A step is a run of array rows between two rows that need a window slide
    (of either operand); it takes one cycle per row. Tile ``i`` of an
    operand is its ``i``-th window: tile 0 is in the SRAM at the start, tile
    ``i >= 1`` arrives with slide ``i``.
    """
    rs = schedule or read_schedule(m, n, k, cfg, conv=conv)
    rows = int(round(stall_free_cycles(m, n, k, cfg))) + 1
    if rows != rs.demand_rows:
        raise AssertionError(f"generic path gives {rows} rows, SCALE-Sim's model {rs.demand_rows}")
    bounds = np.unique(np.concatenate([[0], rs.ifmap_slides, rs.filter_slides]))
    # a lead step of _LEAD cycles first: SCALE-Sim's slide k is usable by the
    # row at cycle k * slide_cycles - 2, the DES's arrives k * slide_cycles
    # after the start
    step_cycles = np.concatenate([[_LEAD], np.diff(np.append(bounds, rows))]).astype(float)
    arch = _arch(cfg)
    buffers = []
    channel_bw: dict[str, float] = {}
    for name, slides, cyc, words in (
        ("ifmap", rs.ifmap_slides, rs.ifmap_slide_cycles, rs.ifmap_slide_words),
        ("filter", rs.filter_slides, rs.filter_slide_cycles, rs.filter_slide_words),
    ):
        port = f"DRAM.{name}"
        # one request row per cycle plus one cycle per prefetch (SCALE-Sim)
        channel_bw[port] = words / cyc if words else 1.0
        channel_bw[f"SRAM.{name}"] = float("inf")
        first = np.searchsorted(bounds, slides) + 1  # the step of each slide's row
        buffers.append(
            Buffer(
                tensor=name,
                is_output=False,
                level=1,
                parent=0,
                period=1,
                tile_bytes=0.0,
                transfer_bytes=float(words),
                fill_bytes=float(words),
                elem_bytes=1.0,
                parent_rd=port,
                parent_wr=port,
                child_rd=f"SRAM.{name}",
                child_wr=f"SRAM.{name}",
                slots=slides.size + 1,
                tile_steps=(0, *(int(x) for x in first)),
                preloaded=1,
            )
        )
    nest = Nest(
        einsum=f"layer_{m}x{n}x{k}",
        unit=arch.compute[0].name,
        loops=(),
        steps=int(step_cycles.size),
        buffers=tuple(buffers),
        leaf={"ifmap": 1, "filter": 1},
        cycles_per_step=float(step_cycles.mean()),
        step_bytes={},
        step_accesses={},
        channel_bw=channel_bw,
        macs=float(m * n * k),
        padded_macs=float(m * n * k),
        compute_cycles=float(rows - 1),
        level_names=("DRAM", "SRAM"),
        op_classes=("mac",),
        tensor_bits={"ifmap": _WORD_BITS, "filter": _WORD_BITS},
        step_cycles=tuple(step_cycles.tolist()),
        stall_rule=_scalesim_stall if scalesim_compat else None,
    )
    return nest, arch


def simulate_layer(m: int, n: int, k: int, cfg: ArrayConfig, **options: Any) -> Metrics:
    """The DES of a SCALE-Sim layer (see the module doc); ``options`` as for
    :func:`layer_nest` (``conv``, ``scalesim_compat``). ``cycles`` is the
    cycle of the last array row, SCALE-Sim's ``total_cycles``."""
    nest, arch = layer_nest(m, n, k, cfg, **options)
    met = simulate_nests(arch, [nest], full_sim=True)
    from dataclasses import replace

    # the last row ends one cycle after it starts, after the lead step
    cycles = met.cycles - 1.0 - _LEAD
    return replace(met, cycles=cycles, latency_s=cycles / arch.clock_hz)

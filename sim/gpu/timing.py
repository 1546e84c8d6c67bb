"""Timing conventions: what a measured time of a call contains.

A call runs ``n`` kernels whose execution takes ``exec`` in total. Every
kernel also pays ``kernel_ramp_s`` inside its duration (grid start, the
first loads' DRAM latency, tail). The conventions (the ``timing`` column;
the data READMEs of experiments/data/):

* ``kernel``: the sum of kernel durations (Nsight Compute, CUPTI):
  ``exec + n x kernel_ramp_s``.
* ``graph``: the mean per call of CUDA-graph replays: kernels follow each
  other ``graph_node_s`` apart, and one graph launch (``graph_launch_s``) is
  shared by the ``graph_ops`` calls the graph holds:
  ``exec + n (kernel_ramp_s + graph_node_s) + graph_launch_s / graph_ops``.
  No host time.
* ``loop`` (eager, back to back): the host issues the call in
  ``h = host_op_s x host operations`` (allocations and launches, counted in
  the PyTorch source: ``sim.gpu.spec.HOST_OPS``) while the GPU runs
  ``G = exec + n (kernel_ramp_s + launch_gap_s)``; a call takes
  ``max(h, G)``.
* ``event`` (one eager call between CUDA events, host time included): the
  timing loop records the start event, issues the call and records the end
  event with no synchronisation, so an iteration costs the host ``h + p``
  (``p = event_period_s``, two event records). A GPU idle at the start
  event starts the kernel only once the host has issued it (``h + G``); a
  GPU busier than the host period runs behind and the events bracket ``G``:
  ``max(G, h + min(G, p))``.

Host time, launch gaps and graph launches are separate physical terms: no
term stands in for another.
"""

from __future__ import annotations

import numpy as np

from sim.gpu.costs import Costs
from sim.gpu.rows import member
from sim.gpu.spec import GpuParams


def kernel_time(c: Costs, params: GpuParams) -> np.ndarray:
    return c.exec_s + c.n_kernels * params.kernel_ramp_s


def host_time(c: Costs, params: GpuParams) -> np.ndarray:
    return c.host_ops * params.host_op_s


def eager_gpu_time(c: Costs, params: GpuParams) -> np.ndarray:
    return kernel_time(c, params) + c.n_kernels * params.launch_gap_s


def graph_time(c: Costs, params: GpuParams, graph_ops: np.ndarray | float = 1.0) -> np.ndarray:
    ops = np.maximum(np.asarray(graph_ops, np.float64), 1.0)
    return kernel_time(c, params) + c.n_kernels * params.graph_node_s + params.graph_launch_s / ops


def loop_time(c: Costs, params: GpuParams) -> np.ndarray:
    return np.maximum(host_time(c, params), eager_gpu_time(c, params))


def event_time(c: Costs, params: GpuParams) -> np.ndarray:
    g = eager_gpu_time(c, params)
    return np.maximum(g, host_time(c, params) + np.minimum(g, params.event_period_s))


def call_time(
    c: Costs, params: GpuParams, timing: np.ndarray, graph_ops: np.ndarray | float = 1.0
) -> np.ndarray:
    """Time of one call under each row's timing convention."""
    timing = np.asarray(timing, dtype=object)
    return np.select(
        [timing == "event", timing == "graph", timing == "kernel", timing == "loop"],
        [
            event_time(c, params),
            graph_time(c, params, graph_ops),
            kernel_time(c, params),
            loop_time(c, params),
        ],
        np.nan,
    )


def energy_time(
    c: Costs, params: GpuParams, timing: np.ndarray, graph_ops: np.ndarray | float = 1.0
) -> np.ndarray:
    """The time over which a call's board energy accrues: back-to-back eager
    calls for ``event`` and ``loop`` rows (the energy loop of the data), the
    call itself for ``graph`` and ``kernel`` rows."""
    timing = np.asarray(timing, dtype=object)
    return np.where(
        member(timing, ("event", "loop")),
        loop_time(c, params),
        call_time(c, params, timing, graph_ops),
    )


def bound(c: Costs, params: GpuParams, timing: np.ndarray) -> np.ndarray:
    """What dominates each row's time: host, latency (fixed per-kernel
    terms), compute or memory."""
    timing = np.asarray(timing, dtype=object)
    eager = member(timing, ("event", "loop"))
    fixed = np.where(
        eager,
        c.n_kernels * (params.kernel_ramp_s + params.launch_gap_s),
        c.n_kernels
        * (params.kernel_ramp_s + np.where(timing == "graph", params.graph_node_s, 0.0)),
    )
    host = eager & (host_time(c, params) > eager_gpu_time(c, params))
    out = np.where(c.t_compute >= c.t_memory, "compute", "memory").astype(object)
    out = np.where(fixed > c.exec_s, "latency", out)
    return np.where(host, "host", out)

"""Host and GPU timelines of a sequence of kernel launches (an eager forward pass).

An eager framework issues its kernels one after another from one host
thread onto one CUDA stream. Kernel ``i`` costs the host ``host_s[i]``
(allocations and the launch, ``sim.gpu.energy.host_time_s``) before it is
enqueued, and the GPU ``gpu_s[i]`` (kernel time plus its launch cost,
``sim.gpu.energy.gpu_time_s``) once the stream reaches it:

* enqueue_i = enqueue_{i-1} + host_s[i] (the host runs ahead of the GPU);
* start_i = max(enqueue_i, end_{i-1}), end_i = start_i + gpu_s[i];
* a *sync* kernel (a device-to-host copy such as ``torch.nonzero``) makes the
  host wait for its end before issuing more.

So a forward pass of many short kernels is host-bound (the GPU idles between
launches) and one of long kernels GPU-bound (the host runs ahead and the
launches hide): the overlap is simulated, not assumed.

Three conventions are derived from the same simulation:

* :func:`forward_s`: one forward from an idle GPU to its last kernel's end
  (a generation step, which waits for its sampled token);
* :func:`event_median_s`: the measurement loop of ``experiments/data/h100``
  (and of ``experiments/measure_gpu_layers.py``): each call bracketed by two
  CUDA events, ten calls issued back to back, the median taken. Each event
  record costs the host ``event_period_s / 2``; the start event is recorded
  before the call's host work and the end event right after its last launch.
  For one kernel this reproduces ``sim.gpu.energy.median_time_s``:
  ``max(G, h + min(G, event_period_s))``;
* :func:`loop_s`: back-to-back calls with no events (the energy loop).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One kernel launch (or host-only call when ``gpu_s`` is 0)."""

    host_s: float
    gpu_s: float
    sync: bool = False


@dataclass(frozen=True)
class Trace:
    """Times of one simulated call, relative to the host starting it."""

    enqueue_s: tuple[float, ...]
    start_s: tuple[float, ...]
    end_s: tuple[float, ...]
    host_end_s: float

    @property
    def end(self) -> float:
        return max((*self.end_s, self.host_end_s), default=0.0)


def simulate(steps: Sequence[Step], host0: float = 0.0, gpu_free: float = 0.0) -> Trace:
    """Issue ``steps`` with the host at ``host0`` and the stream free at ``gpu_free``."""
    host = host0
    enq, start, end = [], [], []
    for st in steps:
        host += st.host_s
        s = max(host, gpu_free)
        gpu_free = s + st.gpu_s
        enq.append(host)
        start.append(s)
        end.append(gpu_free)
        if st.sync:
            host = max(host, gpu_free)
    return Trace(tuple(enq), tuple(start), tuple(end), host)


def forward_s(steps: Sequence[Step]) -> float:
    """One call from an idle GPU: until its last kernel ends."""
    tr = simulate(steps)
    return max(tr.end_s, default=tr.host_end_s)


def event_median_s(steps: Sequence[Step], event_period_s: float, calls: int = 10) -> float:
    """Median event-bracketed time over ``calls`` back-to-back calls (measurement loop)."""
    half = event_period_s / 2
    host, gpu_free = 0.0, 0.0
    times = []
    for _ in range(calls):
        host += half  # record the start event
        marker = max(host, gpu_free)
        gpu_free = marker
        tr = simulate(steps, host, gpu_free)
        host = tr.host_end_s
        gpu_free = max(tr.end_s, default=gpu_free)
        end_marker = max(host, gpu_free)
        times.append(end_marker - marker)
        host += half  # record the end event
    return statistics.median(times)


def loop_s(steps: Sequence[Step], calls: int = 20) -> float:
    """Time per call of back-to-back calls in steady state (no events)."""
    host, gpu_free = 0.0, 0.0
    ends = []
    for _ in range(calls):
        tr = simulate(steps, host, gpu_free)
        host = tr.host_end_s
        gpu_free = max(tr.end_s, default=gpu_free)
        ends.append(max(gpu_free, host))
    if calls < 2:
        return ends[-1]
    return (ends[-1] - ends[0]) / (calls - 1)

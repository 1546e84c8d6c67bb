"""The event engine of the discrete-event simulator (on simpy).

Processes, as lean callback state machines on one ``simpy.Environment`` (one
simpy event per tile transfer, per tile compute and per channel
rescheduling; no generator per tile, no per-MAC events):

* :class:`Channel` -- a level's read or write port with a bandwidth in
  bytes/cycle, shared fairly by the transfers in flight (processor sharing:
  ``n`` transfers each progress at ``bw / n``).
* DMA engine per buffer (one tensor at one level): moves that buffer's tiles
  one at a time, in order, over its parent's channel.
* Buffer slots and capacity: a tile is allocated a slot (two when the level
  double-buffers) and its bytes in the level before it is fetched; a
  producer blocks while the slots or the bytes are taken, and a tile is freed
  when its last consumer is done with it.
* Compute unit: takes step ``s`` of an Einsum when every operand tile of the
  step is present, for ``cycles_per_step`` cycles; units run in parallel,
  Einsums bound to one unit run in order.
* Einsum dependencies: an Einsum starts when the Einsums it depends on have
  finished (their outputs, fused or not, are complete).

Time is in cycles. If the event queue empties before every step is done the
mapping deadlocks; :class:`DeadlockError` names the unit, the step and the
tile it waits for. A bound on simulated cycles raises
:class:`SimTimeLimitError`, so the simulator cannot hang.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import simpy
from simpy.events import Event

from hw_models.arch import Architecture
from sim.des_nest import Buffer, DeadlockError, Nest, SimTimeLimitError

_EPS = 1e-9


@dataclass
class Timeline:
    """What the engine records for traces and utilisation over time."""

    #: (track, name, start_cycles, end_cycles)
    slices: list[tuple[str, str, float, float]] = field(default_factory=list)
    limit: int = 0
    dropped: int = 0

    def add(self, track: str, name: str, t0: float, t1: float) -> None:
        if len(self.slices) < self.limit:
            self.slices.append((track, name, t0, t1))
        else:
            self.dropped += 1


class Channel:
    """A bandwidth-limited port shared fairly by the transfers in flight."""

    __slots__ = ("eng", "name", "bw", "active", "t_last", "version", "busy_cycles", "bytes")

    def __init__(self, eng: Engine, name: str, bw_bytes_per_cycle: float) -> None:
        self.eng = eng
        self.name = name
        self.bw = bw_bytes_per_cycle
        #: transfer id -> [remaining bytes, callback]
        self.active: dict[int, list] = {}
        self.t_last = 0.0
        self.version = 0
        self.busy_cycles = 0.0
        self.bytes = 0.0

    def _advance(self) -> None:
        now = self.eng.env.now
        dt = now - self.t_last
        if dt > 0 and self.active:
            dec = dt * self.bw / len(self.active)
            for rec in self.active.values():
                rec[0] -= dec
            self.busy_cycles += dt
        self.t_last = now

    def start(self, nbytes: float, done: Callable[[], None]) -> None:
        self._advance()
        self.eng.tid += 1
        self.active[self.eng.tid] = [nbytes, done]
        self.bytes += nbytes
        self._reschedule()

    def _reschedule(self) -> None:
        self.version += 1
        if not self.active:
            return
        m = min(rec[0] for rec in self.active.values())
        delay = max(m, 0.0) * len(self.active) / self.bw
        self.eng.at(delay, self._timer, self.version)

    def _timer(self, version: int) -> None:
        if version != self.version:
            return
        self._advance()
        finished = [k for k, rec in self.active.items() if rec[0] <= _EPS * max(1.0, abs(rec[0])) + 1e-6]
        callbacks = [self.active.pop(k)[1] for k in finished]
        self._reschedule()
        for cb in callbacks:
            cb()


class _BufState:
    """Run-time state of one buffer (tensor at a level) of one Einsum."""

    __slots__ = (
        "buf", "es", "idx", "ntiles", "allocated", "released", "arrived", "ready",
        "queue", "busy", "children", "parent", "fetch_ch", "wb_ch", "track",
        "wb_done", "cap_key",
    )

    def __init__(self, buf: Buffer, es: _EinsumState, idx: int, steps: int) -> None:
        self.buf = buf
        self.es = es
        self.idx = idx
        self.ntiles = buf.tiles(steps)
        self.allocated = 0  # tiles given a slot
        self.released = 0  # tiles whose slot was freed
        self.arrived = 0  # tiles 0..arrived-1 are present
        self.ready: set[int] = set()  # present tiles beyond `arrived` (out of order)
        self.queue: list[tuple] = []  # DMA engine queue: (kind, tile, nbytes)
        self.busy = False
        self.children: list[_BufState] = []
        self.parent: _BufState | None = None
        self.wb_done = 0  # output tiles written back
        self.track = ""
        self.fetch_ch: Channel | None = None
        self.wb_ch: Channel | None = None
        self.cap_key = ""


class _EinsumState:
    __slots__ = ("nest", "steps", "bufs", "leaves", "next_step", "done_steps", "started",
                 "finished", "deps", "dependents", "t_start", "t_end", "unit", "period",
                 "boundaries", "bytes_by")

    def __init__(self, nest: Nest, steps: int) -> None:
        self.nest = nest
        self.steps = steps
        self.bufs: list[_BufState] = []
        self.leaves: list[_BufState] = []
        self.next_step = 0
        self.done_steps = 0
        self.started = False
        self.finished = False
        self.deps: set[str] = set()
        self.dependents: list[_EinsumState] = []
        self.t_start = 0.0
        self.t_end = 0.0
        self.unit = nest.unit
        #: steps per period for steady-state detection (0 = off)
        self.period = 0
        self.boundaries: list[float] = []
        #: (level index, tensor) -> [read bytes at parent, bytes written to parent]
        self.bytes_by: dict[tuple[int, str], list[float]] = {}


class _Unit:
    __slots__ = ("name", "queue", "busy", "busy_cycles", "current")

    def __init__(self, name: str) -> None:
        self.name = name
        self.queue: list[_EinsumState] = []
        self.busy = False
        self.busy_cycles = 0.0
        self.current: _EinsumState | None = None


class Engine:
    """Simulates Einsums (each a :class:`Nest`) on one architecture."""

    def __init__(
        self,
        arch: Architecture,
        *,
        max_cycles: float = float("inf"),
        timeline_limit: int = 0,
    ) -> None:
        self.arch = arch
        self.env = simpy.Environment()
        self.max_cycles = max_cycles
        self.tid = 0
        self.events = 0
        self.timeline = Timeline(limit=timeline_limit)
        self.record = timeline_limit > 0
        self.channels: dict[str, Channel] = {}
        self.read_ch: list[Channel] = []
        self.write_ch: list[Channel] = []
        for lv in arch.levels:
            inst = max(1, lv.instances)
            if lv.shared_bw:
                ch = Channel(self, f"{lv.name}", lv.read_bw_bytes_per_cycle * inst)
                self.channels[ch.name] = ch
                self.read_ch.append(ch)
                self.write_ch.append(ch)
            else:
                rd = Channel(self, f"{lv.name}.read", lv.read_bw_bytes_per_cycle * inst)
                wr = Channel(self, f"{lv.name}.write", lv.write_bw_bytes_per_cycle * inst)
                self.channels[rd.name] = rd
                self.channels[wr.name] = wr
                self.read_ch.append(rd)
                self.write_ch.append(wr)
        self.capacity = [lv.capacity_bytes for lv in arch.levels]
        self.used = [0.0 for _ in arch.levels]
        #: buffers waiting for capacity at a level
        self.cap_wait: list[list[_BufState]] = [[] for _ in arch.levels]
        self.units: dict[str, _Unit] = {cu.name: _Unit(cu.name) for cu in arch.compute}
        self.einsums: dict[str, _EinsumState] = {}

    # -- event plumbing -------------------------------------------------
    def at(self, delay: float, fn: Callable, *args) -> None:
        """Call ``fn(*args)`` after ``delay`` cycles (one simpy event)."""
        ev = Event(self.env)
        ev._ok = True
        ev._value = None
        ev.callbacks.append(lambda _e: fn(*args))
        self.env.schedule(ev, delay=delay)

    # -- set-up -----------------------------------------------------------
    def add(self, nest: Nest, *, steps: int | None = None, deps: tuple[str, ...] = (), period: int = 0) -> None:
        """Add an Einsum; ``steps`` truncates it (for steady-state runs)."""
        s = nest.steps if steps is None else steps
        es = _EinsumState(nest, s)
        es.period = period
        es.deps = set(deps)
        by_tensor: dict[str, _BufState] = {}
        for i, b in enumerate(nest.buffers):
            st = _BufState(b, es, i, s)
            st.parent = by_tensor.get(b.tensor)
            if st.parent is not None:
                st.parent.children.append(st)
            by_tensor[b.tensor] = st
            st.fetch_ch = self.read_ch[b.parent]
            st.wb_ch = self.write_ch[b.parent]
            st.track = f"{nest.einsum}: DMA {nest.level_names[b.parent]}->{nest.level_names[b.level]} {b.tensor}"
            es.bufs.append(st)
            es.bytes_by[(b.level, b.tensor)] = [0.0, 0.0]
        es.leaves = [by_tensor[t] for t, lv in nest.leaf.items() if t in by_tensor and by_tensor[t].buf.level == lv]
        if nest.unit not in self.units:
            self.units[nest.unit] = _Unit(nest.unit)
        self.einsums[nest.einsum] = es
        self.units[nest.unit].queue.append(es)

    def run(self) -> float:
        for es in self.einsums.values():
            for d in es.deps:
                self.einsums[d].dependents.append(es)
        for es in self.einsums.values():
            if not es.deps:
                self._start_einsum(es)
        # the bound on simulated time: a finite horizon even if events loop
        horizon = self.max_cycles
        while self.env._queue:
            if self.env.peek() > horizon:
                raise SimTimeLimitError(
                    f"simulated time passed the bound of {horizon:.6g} cycles "
                    f"({self._progress()}); raise max_cycles or check the mapping"
                )
            self.env.step()
            self.events += 1
        unfinished = [es for es in self.einsums.values() if not es.finished]
        if unfinished:
            raise DeadlockError(self._deadlock_message(unfinished[0]))
        return max((es.t_end for es in self.einsums.values()), default=0.0)

    # -- Einsum life cycle -----------------------------------------------
    def _start_einsum(self, es: _EinsumState) -> None:
        es.started = True
        es.t_start = self.env.now
        if es.steps == 0:
            self._finish_einsum(es)
            return
        for st in es.bufs:
            self._try_alloc(st)
        self._try_compute(self.units[es.unit])

    def _finish_einsum(self, es: _EinsumState) -> None:
        es.finished = True
        es.t_end = self.env.now
        for d in es.dependents:
            d.deps.discard(es.nest.einsum)
            if not d.deps and not d.started:
                self._start_einsum(d)

    def _maybe_finished(self, es: _EinsumState) -> None:
        if es.finished or es.done_steps < es.steps:
            return
        for st in es.bufs:
            if st.buf.is_output and st.wb_done < st.ntiles:
                return
        self._finish_einsum(es)

    # -- buffers ------------------------------------------------------------
    def _try_alloc(self, st: _BufState) -> None:
        """Give the buffer's next tile a slot and bytes, then queue its fetch."""
        if not st.es.started:
            return
        b = st.buf
        lv = b.level
        cap = self.capacity[lv]
        while st.allocated < st.ntiles and st.allocated - st.released < b.slots:
            if cap is not None and self.used[lv] + b.tile_bytes > cap * (1 + 1e-12):
                if st not in self.cap_wait[lv]:
                    self.cap_wait[lv].append(st)
                return
            self.used[lv] += b.tile_bytes
            i = st.allocated
            st.allocated += 1
            if not b.is_output or b.revisited(i):
                self._dma(st, ("fetch", i))
            else:
                self._arrive(st, i)

    def _release(self, st: _BufState, tile: int) -> None:
        st.released += 1
        lv = st.buf.level
        self.used[lv] -= st.buf.tile_bytes
        self._try_alloc(st)
        if self.cap_wait[lv]:
            waiting = self.cap_wait[lv]
            self.cap_wait[lv] = []
            for w in waiting:
                self._try_alloc(w)

    def _parent_present(self, st: _BufState, tile: int) -> bool:
        p = st.parent
        if p is None:
            return True
        pi = (tile * st.buf.period) // p.buf.period
        return pi < p.arrived or pi in p.ready

    # -- DMA engines ---------------------------------------------------------
    def _dma(self, st: _BufState, job: tuple) -> None:
        st.queue.append(job)
        if not st.busy:
            self._dma_next(st)

    def _dma_next(self, st: _BufState) -> None:
        if st.busy or not st.queue:
            return
        kind, tile = st.queue[0]
        if not self._parent_present(st, tile):
            return  # woken by the parent's arrival
        st.queue.pop(0)
        st.busy = True
        b = st.buf
        ch = st.fetch_ch if kind == "fetch" else st.wb_ch
        t0 = self.env.now
        rec = st.es.bytes_by[(b.level, b.tensor)]
        if kind == "fetch":
            rec[0] += b.transfer_bytes
        else:
            rec[1] += b.transfer_bytes
        ch.start(b.transfer_bytes, lambda: self._dma_done(st, kind, tile, t0))

    def _dma_done(self, st: _BufState, kind: str, tile: int, t0: float) -> None:
        st.busy = False
        if self.record:
            label = "read" if kind == "fetch" else "write-back"
            self.timeline.add(st.track, f"{label} {st.buf.tensor}[{tile}]", t0, self.env.now)
        if kind == "fetch":
            self._arrive(st, tile)
            self._child_used_parent(st, tile)
        else:
            self._written_back(st, tile)
        self._dma_next(st)

    def _arrive(self, st: _BufState, tile: int) -> None:
        if tile == st.arrived:
            st.arrived += 1
            while st.arrived in st.ready:
                st.ready.discard(st.arrived)
                st.arrived += 1
        else:
            st.ready.add(tile)
        for ch in st.children:
            if not ch.busy and ch.queue:
                self._dma_next(ch)
        if st in st.es.leaves:
            self._try_compute(self.units[st.es.unit])

    def _child_used_parent(self, st: _BufState, tile: int) -> None:
        """An input tile was copied down: free the parent tile after its last child."""
        p = st.parent
        if p is None or st.buf.is_output:
            return
        pi = (tile * st.buf.period) // p.buf.period
        if (tile + 1) * st.buf.period >= (pi + 1) * p.buf.period or tile + 1 >= st.ntiles:
            self._release(p, pi)

    def _written_back(self, st: _BufState, tile: int) -> None:
        st.wb_done += 1
        self._release(st, tile)
        p = st.parent
        if p is not None:
            pi = (tile * st.buf.period) // p.buf.period
            if (tile + 1) * st.buf.period >= (pi + 1) * p.buf.period or tile + 1 >= st.ntiles:
                self._dma(p, ("wb", pi))
        self._maybe_finished(st.es)

    # -- compute ---------------------------------------------------------------
    def _try_compute(self, unit: _Unit) -> None:
        if unit.busy:
            return
        es = unit.current
        if es is None or es.next_step >= es.steps:
            es = None
            for cand in unit.queue:
                if cand.started and cand.next_step < cand.steps:
                    es = cand
                    break
            if es is None:
                return
            unit.current = es
        s = es.next_step
        for st in es.leaves:
            ti = s // st.buf.period
            if not (ti < st.arrived or ti in st.ready):
                return
        es.next_step += 1
        unit.busy = True
        dur = es.nest.cycles_per_step
        unit.busy_cycles += dur
        self.at(dur, self._compute_done, unit, es, s, self.env.now)

    def _compute_done(self, unit: _Unit, es: _EinsumState, s: int, t0: float) -> None:
        unit.busy = False
        es.done_steps += 1
        now = self.env.now
        if self.record:
            self.timeline.add(f"unit {unit.name}", f"{es.nest.einsum} step {s}", t0, now)
        if es.period and (s + 1) % es.period == 0:
            es.boundaries.append(now)
        last = s + 1 >= es.steps
        for st in es.leaves:
            p = st.buf.period
            if (s + 1) % p == 0 or last:
                if st.buf.is_output:
                    self._dma(st, ("wb", s // p))
                else:
                    self._release(st, s // p)
        if last:
            self._maybe_finished(es)
        self._try_compute(unit)

    # -- reporting ---------------------------------------------------------------
    def _progress(self) -> str:
        parts = [f"{es.nest.einsum}: {es.done_steps}/{es.steps} steps" for es in self.einsums.values()]
        return ", ".join(parts)

    def _deadlock_message(self, es: _EinsumState) -> str:
        s = es.next_step
        names = es.nest.level_names
        for st in es.leaves:
            ti = s // st.buf.period
            if ti < st.arrived or ti in st.ready:
                continue
            lv = st.buf.level
            cap = self.capacity[lv]
            held = sorted(
                {f"{o.buf.tensor}" for e in self.einsums.values() for o in e.bufs
                 if o.buf.level == lv and o.allocated > o.released}
            )
            return (
                f"deadlock: compute unit {es.unit} waits at step {s} of {es.nest.einsum} for tile "
                f"{st.buf.tensor}[{ti}] at {names[lv]} ({st.buf.tile_bytes:.0f} B per tile); "
                f"{names[lv]} holds {cap if cap is None else f'{cap:.0f}'} B, "
                f"{self.used[lv]:.0f} B in use by tiles of {held}: the buffer is too small "
                f"for the tiles in flight"
            )
        return f"deadlock: {es.nest.einsum} stopped at step {s} of {es.steps} on unit {es.unit}"

"""The event engine of the discrete-event simulator (on simpy).

Processes, as lean callback state machines on one ``simpy.Environment``
(its clock and event queue; light events, one per tile transfer, per tile
compute and per port timer; no generator per tile, no per-MAC events):

* :class:`Port` -- a level's read or write port (or a compute unit) with a
  bandwidth, shared fairly by the jobs in flight (processor sharing: ``n``
  jobs each progress at ``1/n`` of the rate; a job on several ports is
  limited by its most loaded one, see :class:`Fabric`).
* DMA engines per buffer (one tensor at one level): a fetch engine and a
  write-back engine, each moving that buffer's tiles one at a time, in order.
* Buffer slots and capacity: a tile is allocated a slot (two when the level
  double-buffers) and its bytes in the level before it is fetched; a
  producer blocks while the slots or the bytes are taken, and a tile is freed
  when its last consumer is done with it.
* Compute unit: takes step ``s`` of an Einsum when every operand tile of the
  step is present, for ``cycles_per_step`` cycles; units run in parallel,
  Einsums bound to one unit run in order.
* Einsum dependencies: an Einsum starts when the Einsums it depends on have
  finished; a pipelined (fused) consumer on another unit instead follows its
  producer's progress step by step.

Time is in cycles. If the event queue empties before every step is done the
mapping deadlocks; :class:`DeadlockError` names the unit, the step, the tile
it waits for and the buffer that cannot take it. A bound on simulated cycles
raises :class:`SimTimeLimitError`, so the simulator cannot hang.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from heapq import heappop, heappush

import simpy

from hw_models.arch import Architecture
from sim.des.nest import Buffer, DeadlockError, Nest, SimTimeLimitError, SimulationError


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


#: a stream: a producer's name (proportional hand-over) or
#: ``(producer, a, b, lag)`` (see ``_EinsumState.streams``)
Stream = str | tuple[str, int, int, int]


class Port:
    """A bandwidth-limited port (a level's read or write side, or a compute unit).

    Jobs that use only this port are served by processor sharing with a
    virtual clock (``V`` advances by ``1/n`` work-cycle per cycle with ``n``
    jobs on the port; a job of ``w`` work-cycles started at ``V0`` finishes
    when ``V = V0 + w``), so a change of ``n`` costs one timer, not one per
    job. Jobs that use several ports are in ``multi`` and rescheduled one by
    one (see :class:`Fabric`).
    """

    __slots__ = ("name", "bw", "n", "multi", "heap", "V", "tV", "ver", "seq", "exclusive")

    def __init__(self, name: str, bw: float) -> None:
        self.name = name
        self.bw = bw
        self.n = 0
        self.multi: set[Job] = set()
        #: single-port jobs: (virtual finish time, sequence, done, args)
        self.heap: list[tuple[float, int, Callable, tuple]] = []
        self.V = 0.0
        self.tV = 0.0
        self.ver = 0
        self.seq = 0
        #: used by one sequential engine only: never shared, no bookkeeping
        self.exclusive = False


class Job:
    """A transfer or a tile compute: work (cycles at full rate) on some ports."""

    __slots__ = ("work", "rem", "t", "speed", "ver", "done", "args", "floor")

    def __init__(self, work: list[tuple[Port, float]], done: Callable, args: tuple) -> None:
        self.work = work
        self.rem = 1.0
        self.t = 0.0
        self.speed = 0.0
        self.ver = 0
        self.done = done
        self.args = args
        #: work-cycles on a port left out of ``work`` because the job is
        #: always alone there (a compute unit: one step at a time)
        self.floor = 0.0


class Fabric:
    """Fair sharing of ports: a job on ports with ``n_k`` jobs each progresses
    at ``1 / max_k(work_k * n_k)`` of itself per cycle (each port splits its
    bandwidth equally; the most loaded port limits the job). Exact for one
    job per port and for jobs that share one port (processor sharing).

    Rate changes of multi-port jobs are collected while an event runs and
    applied once when it ends (:meth:`flush`, called by the engine's loop):
    a job that ends and the next one that starts on the same ports cost one
    rescheduling of the jobs beside them, not two."""

    def __init__(self, eng: Engine) -> None:
        self.eng = eng
        self.env = eng.env
        self._fin = self._finish
        self._tick = self._port_timer
        #: multi-port jobs whose rate may have changed in the current event
        self.pending: set[Job] | None = None

    def start(self, work: list[tuple[Port, float]], done: Callable, *args) -> None:
        """Start a job; ``done(*args)`` is called when it completes."""
        self.begin(work, done, args)

    def begin(
        self, work: list[tuple[Port, float]], done: Callable, args: tuple, floor: float = 0.0
    ) -> None:
        """:meth:`start` with the arguments of ``done`` as one tuple; ``floor``:
        work-cycles on a port where the job is always alone (it bounds the
        job's time like a port in ``work`` with one job)."""
        env = self.env
        now = env._now
        if len(work) == 1 and floor == 0.0:
            p, w = work[0]
            if p.exclusive:
                heappush(env._queue, (now + w, 1, next(env._eid), done, args))
                return
            # one shared port: processor sharing on its virtual clock (the
            # virtual clock advanced and _port_resched, inlined)
            n = p.n
            V = p.V
            if n:
                tV = p.tV
                if now != tV:
                    V += (now - tV) / n
                    p.V = V
            p.tV = now
            n += 1
            p.n = n
            seq = p.seq + 1
            p.seq = seq
            heap = p.heap
            heappush(heap, (V + w, seq, done, args))
            if p.multi:
                self._defer(p.multi)
            ver = p.ver + 1
            p.ver = ver
            delay = (heap[0][0] - V) * n
            if delay < 0.0:
                delay = 0.0
            heappush(env._queue, (now + delay, 1, next(env._eid), self._tick, (p, ver)))
            return
        if not work:
            heappush(env._queue, (now, 1, next(env._eid), done, args))
            return
        job = Job(work, done, args)
        job.t = now
        job.floor = floor
        # the jobs already on its ports slow down (deferred, see flush)
        pend = self.pending
        m = floor
        for p, w in work:
            n = p.n
            if n and now != p.tV:  # advance the port's virtual clock
                p.V += (now - p.tV) / n
            p.tV = now
            multi = p.multi
            if multi:
                if pend is None:
                    pend = set(multi)
                else:
                    pend |= multi
            multi.add(job)
            n += 1
            p.n = n
            x = w * n
            if x > m:
                m = x
            if p.heap:
                self._port_resched(p, now)
        self.pending = pend
        job.speed = 1.0 / m
        job.ver = 1
        heappush(env._queue, (now + m, 1, next(env._eid), self._fin, (job, 1)))

    def _port_resched(self, p: Port, now: float) -> None:
        """(Re)arm the port's timer for its first single-port job to finish."""
        p.ver += 1
        if p.heap:
            delay = (p.heap[0][0] - p.V) * p.n
            if delay < 0.0:
                delay = 0.0
            env = self.env
            heappush(env._queue, (now + delay, 1, next(env._eid), self._tick, (p, p.ver)))

    def _port_timer(self, p: Port, ver: int) -> None:
        if ver != p.ver:
            return
        now = self.env._now
        n = p.n
        if n and now != p.tV:
            p.V += (now - p.tV) / n
        p.tV = now
        heap = p.heap
        V = p.V
        lim = V + 1e-9 * (V if V > 1.0 else (-V if V < -1.0 else 1.0))
        if not heap or heap[0][0] > lim:
            # nothing finished (rounding): re-arm
            if p.multi:
                self._defer(p.multi)
            self._port_resched(p, now)
            return
        first = heappop(heap)
        if not heap or heap[0][0] > lim:
            # the common case: one job done (_port_resched inlined)
            n -= 1
            p.n = n
            if p.multi:
                self._defer(p.multi)
            ver = p.ver + 1
            p.ver = ver
            if heap:
                delay = (heap[0][0] - V) * n
                if delay < 0.0:
                    delay = 0.0
                env = self.env
                heappush(env._queue, (now + delay, 1, next(env._eid), self._tick, (p, ver)))
            first[2](*first[3])
            return
        done = [first]
        while heap and heap[0][0] <= lim:
            done.append(heappop(heap))
        p.n = n - len(done)
        if p.multi:
            self._defer(p.multi)
        self._port_resched(p, now)
        for job in done:
            job[2](*job[3])

    def _defer(self, jobs: set[Job]) -> None:
        """Rates of ``jobs`` changed: update them once, at the end of the
        current event (see :meth:`flush`)."""
        pend = self.pending
        if pend is None:
            self.pending = set(jobs)
        else:
            pend |= jobs

    def flush(self) -> None:
        """Apply the deferred rate changes of the event just processed."""
        jobs = self.pending
        if jobs is not None:
            self.pending = None
            self._update(jobs, self.env._now)

    def _update(self, jobs: set[Job], now: float) -> None:
        """Advance multi-port ``jobs`` at their old speed to ``now``;
        reschedule those whose speed changed."""
        env = self.env
        q = env._queue
        eid = env._eid
        fin = self._fin
        for j in jobs:
            t = j.t
            if t != now:
                j.rem -= (now - t) * j.speed
                j.t = now
            m = j.floor
            for p, w in j.work:
                x = w * p.n
                if x > m:
                    m = x
            speed = 1.0 / m
            if speed == j.speed:
                continue  # its completion event is still right
            j.speed = speed
            ver = j.ver + 1
            j.ver = ver
            rem = j.rem
            if rem < 0.0:
                rem = 0.0
            heappush(q, (now + rem * m, 1, next(eid), fin, (j, ver)))

    def _finish(self, job: Job, ver: int) -> None:
        if ver != job.ver:
            return  # superseded by a later rate change
        now = self.env._now
        # the jobs sharing a port with it speed up (deferred, see flush)
        pend = self.pending
        for p, _ in job.work:
            n = p.n
            if n and now != p.tV:  # advance the port's virtual clock
                p.V += (now - p.tV) / n
            p.tV = now
            p.n = n - 1
            multi = p.multi
            multi.discard(job)
            if multi:
                if pend is None:
                    pend = set(multi)
                else:
                    pend |= multi
            if p.heap:
                self._port_resched(p, now)
        self.pending = pend
        job.done(*job.args)


class _Dma:
    """One DMA engine of a buffer: the fetch engine copies tiles down (parent
    read, child write), the write-back engine copies output tiles up (child
    read, parent write)."""

    __slots__ = ("queue", "busy", "work", "alone", "p_acc", "c_acc")

    def __init__(self, p_acc: int, c_acc: int) -> None:
        #: tiles waiting for the engine, and whether it is transferring one
        self.queue: deque[int] = deque()
        self.busy = False
        #: (port, work-cycles) of one transfer, and the cycles it takes alone
        self.work: list[tuple[Port, float]] = []
        self.alone = 0.0
        #: the entries of the buffer's acc_p / acc_c a transfer counts in
        self.p_acc = p_acc
        self.c_acc = c_acc


class _BufState:
    """Run-time state of one buffer (tensor at a level) of one Einsum."""

    __slots__ = (
        "buf",
        "es",
        "ntiles",
        "allocated",
        "released",
        "arrived",
        "ready",
        "fetch",
        "wb",
        "children",
        "parent",
        "track",
        "wb_done",
        "acc_p",
        "acc_c",
        "xfer_el",
        "fill_el",
        "cell",
        "tile_bytes",
        "slots",
        "is_output",
        "period",
        "pperiod",
        "unit",
        "last_done",
        "last_stretch",
        "arrivals",
        "preloaded",
    )

    def __init__(self, buf: Buffer, es: _EinsumState, steps: int) -> None:
        self.buf = buf
        self.es = es
        self.ntiles = buf.tiles(steps)
        self.allocated = 0  # tiles given a slot
        self.released = 0  # tiles whose slot was freed
        self.arrived = 0  # tiles 0..arrived-1 are present
        self.ready: set[int] = set()  # present tiles beyond `arrived` (out of order)
        #: the DMA engines: fetch (parent read, child write) and write-back
        #: of outputs (child read, parent write)
        self.fetch = _Dma(0, 1)
        self.wb = _Dma(1, 0)
        self.children: list[_BufState] = []
        self.parent: _BufState | None = None
        self.wb_done = 0  # output tiles written back
        self.track = ""
        #: [reads, writes, updates] in elements at the parent and at this level
        self.acc_p = [0.0, 0.0, 0.0]
        self.acc_c = [0.0, 0.0, 0.0]
        self.xfer_el = buf.transfer_bytes / buf.elem_bytes
        self.fill_el = buf.fill_bytes / buf.elem_bytes
        #: per-tile constants of the hot loop (attributes, not lookups)
        self.cell: _Cell | None = None
        self.tile_bytes = buf.tile_bytes
        self.slots = buf.slots
        self.is_output = buf.is_output
        self.period = buf.period
        self.pperiod = 1  # the parent's period (set with the parent)
        self.unit: _Unit | None = None  # the compute unit that reads a leaf
        #: when the last fetch or write-back ended, and how much longer than
        #: alone it took (its ports were shared)
        self.last_done = -1.0
        self.last_stretch = 0.0
        #: arrival cycle of every tile, kept for a nest's stall rule only
        self.arrivals: list[float] | None = [] if es.nest.stall_rule is not None else None
        self.preloaded = buf.preloaded


class _Cell:
    """Bytes allocated by one Einsum at one level, and the buffers waiting
    for capacity there."""

    __slots__ = ("used", "wait", "lim")

    def __init__(self, cap: float | None) -> None:
        self.used = 0.0
        self.wait: list[_BufState] = []
        self.lim = None if cap is None else cap * (1 + 1e-12)


class _EinsumState:
    __slots__ = (
        "nest",
        "steps",
        "bufs",
        "leaves",
        "next_step",
        "done_steps",
        "started",
        "finished",
        "deps",
        "dependents",
        "streams",
        "stream_names",
        "stream_consumers",
        "t_start",
        "t_end",
        "unit",
        "period",
        "boundaries",
        "step_work",
        "track",
        "leaf_periods",
        "leaf_tables",
        "step_cycles",
        "stall_rule",
        "plain",
        "step_excl",
        "step_floor",
        "unit_obj",
        "step_alone",
        "stretch",
        "wait_stretch",
    )

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
        #: producers this Einsum is pipelined with (fused, on other units):
        #: step s waits until each has done its share of steps
        self.stream_names: tuple[Stream, ...] = ()
        #: (producer, a, b, lag): step s needs the producer's first
        #: ``(s // a + 1) * b - lag`` steps done; a = 0: its share
        #: ``(s + 1) / steps`` of them (both walk the intermediate in order)
        self.streams: list[tuple[_EinsumState, int, int, int]] = []
        self.stream_consumers: list[_EinsumState] = []
        self.t_start = 0.0
        self.t_end = 0.0
        self.unit = nest.unit
        #: steps per period for steady-state detection (0 = off)
        self.period = 0
        #: times at which each period's last step finished computing
        self.boundaries: list[float] = []
        self.step_work: list[tuple[Port, float]] = []
        self.track = ""
        #: (leaf buffer, its period), for the step loop
        self.leaf_periods: list[tuple[_BufState, int]] = []
        #: (leaf buffer with irregular tiles, tile index of every step)
        self.leaf_tables: list[tuple[_BufState, list[int]]] = []
        self.step_cycles = nest.step_cycles
        self.stall_rule = nest.stall_rule
        #: periodic tiles, no streams, steps alike: the hot path's case (set in run)
        self.plain = True
        #: work of a step when the unit's port is its only, unshared port
        self.step_excl: float | None = None
        #: work of a step on the unit's port when it is left out of
        #: ``step_work`` (see Engine._unit_floors)
        self.step_floor = 0.0
        self.unit_obj: _Unit | None = None
        #: cycles of a step alone on its ports
        self.step_alone = 0.0
        #: contention: cycles steps took beyond their time alone, and cycles
        #: the unit waited for tiles whose transfers were slowed by sharing
        self.stretch = 0.0
        self.wait_stretch = 0.0


class _Unit:
    __slots__ = (
        "name",
        "queue",
        "busy",
        "busy_cycles",
        "current",
        "port",
        "last_end",
        "interleave",
        "stretched",
    )

    def __init__(self, name: str, port: Port) -> None:
        self.name = name
        self.queue: list[_EinsumState] = []
        self.busy = False
        self.busy_cycles = 0.0
        self.current: _EinsumState | None = None
        self.port = port
        #: when the unit's last step ended (its idle time since then is a wait)
        self.last_end = 0.0
        #: Einsums on the unit are pipelined with each other: the unit takes
        #: the ready step that is least far along (as a share of its Einsum),
        #: not the Einsums one after another
        self.interleave = False
        #: a transfer of its Einsums took longer than alone since it last waited
        self.stretched = False


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
        self.fabric = Fabric(self)
        self._begin = self.fabric.begin
        self.max_cycles = max_cycles
        #: tile transfers and tile computes completed
        self.events = 0
        self.timeline = Timeline(limit=timeline_limit)
        self.record = timeline_limit > 0
        self.ports: dict[str, Port] = {}
        self.capacity = [lv.capacity_bytes for lv in arch.levels]
        #: (Einsum, level) -> bytes of allocated tiles and the buffers
        #: waiting for capacity. Capacity is checked per Einsum: each mapping
        #: was made for the whole level, and Einsums that run together are
        #: given their share by the schedule.
        self.cells: dict[tuple[str, int], _Cell] = {}
        self.units: dict[str, _Unit] = {}
        self.einsums: dict[str, _EinsumState] = {}

    # -- event plumbing -------------------------------------------------
    def at(self, delay: float, fn: Callable, *args) -> None:
        """Call ``fn(*args)`` after ``delay`` cycles: one entry
        ``(time, priority, id, fn, args)`` on simpy's queue, not a full
        ``simpy.Event`` (the engine runs the queue itself, see :meth:`run`)."""
        env = self.env
        heappush(env._queue, (env._now + delay, 1, next(env._eid), fn, args))

    def port(self, key: str, bw: float) -> Port:
        p = self.ports.get(key)
        if p is None:
            p = self.ports[key] = Port(key, bw)
        return p

    # -- set-up -----------------------------------------------------------
    def add(
        self,
        nest: Nest,
        *,
        steps: int | None = None,
        deps: tuple[str, ...] = (),
        period: int = 0,
        streams: tuple[Stream, ...] = (),
    ) -> None:
        """Add an Einsum; ``steps`` truncates it (for steady-state runs)."""
        s = nest.steps if steps is None else steps
        es = _EinsumState(nest, s)
        es.period = period
        es.deps = set(deps)
        es.stream_names = tuple(streams)
        bw = nest.channel_bw
        by_tensor: dict[str, _BufState] = {}
        names = nest.level_names
        for b in nest.buffers:
            st = _BufState(b, es, s)
            st.parent = by_tensor.get(b.tensor)
            if st.parent is not None:
                st.parent.children.append(st)
                st.pperiod = st.parent.period
            key = (nest.einsum, b.level)
            cell = self.cells.get(key)
            if cell is None:
                cell = self.cells[key] = _Cell(self.capacity[b.level])
            st.cell = cell
            by_tensor[b.tensor] = st
            fetch_work = [
                (self.port(b.parent_rd, bw[b.parent_rd]), b.transfer_bytes / bw[b.parent_rd]),
                (self.port(b.child_wr, bw[b.child_wr]), b.fill_bytes / bw[b.child_wr]),
            ]
            wb_work = [
                (self.port(b.child_rd, bw[b.child_rd]), b.fill_bytes / bw[b.child_rd]),
                (self.port(b.parent_wr, bw[b.parent_wr]), b.transfer_bytes / bw[b.parent_wr]),
            ]
            st.fetch.work = [(p, w) for p, w in fetch_work if w > 0]
            st.wb.work = [(p, w) for p, w in wb_work if w > 0]
            st.track = f"{nest.einsum}: DMA {names[b.parent]}->{names[b.level]} {b.tensor}"
            es.bufs.append(st)
        es.leaves = [
            by_tensor[t]
            for t, lv in nest.leaf.items()
            if t in by_tensor and by_tensor[t].buf.level == lv
        ]
        unit = self.units.get(nest.unit)
        if unit is None:
            unit = self.units[nest.unit] = _Unit(nest.unit, Port(f"unit {nest.unit}", 1.0))
        es.step_work = [(unit.port, nest.cycles_per_step)] + [
            (self.port(k, bw[k]), v / bw[k]) for k, v in nest.step_bytes.items() if v > 0
        ]
        es.step_work = [(p, w) for p, w in es.step_work if w > 0]
        es.track = f"unit {nest.unit}"
        es.unit_obj = unit
        for st in es.bufs:
            st.unit = unit
        es.leaf_periods = [(st, st.period) for st in es.leaves if not st.buf.tile_steps]
        for st in es.leaves:
            ts = st.buf.tile_steps
            if not ts:
                continue
            if st.is_output or ts[0] != 0:
                raise SimulationError(
                    f"{nest.einsum}: irregular tiles need an input whose first tile starts at "
                    f"step 0 ({st.buf.tensor})"
                )
            table = [0] * s
            for i in range(1, len(ts)):
                for j in range(ts[i], min(s, ts[i + 1] if i + 1 < len(ts) else s)):
                    table[j] = i
            es.leaf_tables.append((st, table))
        if nest.step_cycles and (nest.step_bytes or len(nest.step_cycles) < s):
            raise SimulationError(
                f"{nest.einsum}: per-step cycles need one entry per step and steps that use no port"
            )
        self.einsums[nest.einsum] = es
        unit.queue.append(es)

    def _drop_idle_ports(self) -> None:
        """Leave out ports that can never limit any job using them.

        A port used by ``N`` sequential engines (a DMA engine, a compute
        unit) never holds more than ``N`` jobs; if, for every job using it,
        ``work * N`` is no more than the job's work on another port, the job
        is always limited elsewhere, and leaving the port out changes no
        rate. (Register-file ports fed at a thousand times the rate of the
        buffer above them are the common case.) Fewer ports per job means
        fewer rate changes to propagate.
        """
        lists: list[tuple[object, str]] = []
        for es in self.einsums.values():
            for st in es.bufs:
                lists.append((st.fetch, "work"))
                lists.append((st.wb, "work"))
            lists.append((es, "step_work"))
        users: dict[Port, int] = {}
        for obj, attr in lists:
            for port, _w in getattr(obj, attr):
                users[port] = users.get(port, 0) + 1
        droppable = set(users)
        for obj, attr in lists:
            work = getattr(obj, attr)
            for port, w in work:
                others = [x for q, x in work if q is not port]
                if not others or w * users[port] > max(others):
                    droppable.discard(port)
        for obj, attr in lists:
            work = getattr(obj, attr)
            kept = [(q, w) for q, w in work if q not in droppable]
            setattr(obj, attr, kept)
        # a port left to one engine's jobs is never shared
        left: dict[Port, int] = {}
        for obj, attr in lists:
            for port, _w in getattr(obj, attr):
                left[port] = left.get(port, 0) + 1
        for obj, attr in lists:
            work = getattr(obj, attr)
            if len(work) == 1 and left[work[0][0]] == 1:
                work[0][0].exclusive = True
        # Einsums bound to one unit run one after another: the unit's port
        # is never shared either
        for unit in self.units.values():
            users_of_unit = [
                es.step_work
                for es in unit.queue
                if es.step_work and es.step_work[0][0] is unit.port
            ]
            if all(len(w) == 1 for w in users_of_unit) and left.get(unit.port, 0) == len(
                users_of_unit
            ):
                unit.port.exclusive = True

    def _unit_floors(self) -> None:
        """Leave a compute unit's port out of multi-port steps.

        A unit computes one step at a time, and only steps use its port, so
        a step is always alone there: the port bounds the step at exactly its
        work (``work * 1``), a constant. When every step on the unit uses
        other ports too (the unit's port never holds a single-port job, so
        its virtual clock is never read), the port is dropped from the steps'
        work and its work kept as the job's floor: the same rate, one port
        less to book-keep per step.
        """
        for unit in self.units.values():
            port = unit.port
            users = [es for es in unit.queue if any(q is port for q, _ in es.step_work)]
            if not users or any(len(es.step_work) < 2 for es in users):
                continue
            for es in users:
                es.step_floor = sum(w for q, w in es.step_work if q is port)
                es.step_work = [(q, w) for q, w in es.step_work if q is not port]

    @property
    def used(self) -> dict[tuple[str, int], float]:
        """(Einsum, level) -> bytes of allocated tiles."""
        return {k: c.used for k, c in self.cells.items()}

    def run(self) -> float:
        self._drop_idle_ports()
        for es in self.einsums.values():
            w = es.step_work
            es.step_excl = w[0][1] if len(w) == 1 and w[0][0].exclusive else None
        self._unit_floors()
        for es in self.einsums.values():
            es.plain = not (es.leaf_tables or es.stream_names or es.step_cycles)
            es.step_alone = max([es.step_floor, *(w for _p, w in es.step_work)])
            if es.step_cycles:
                if es.step_excl is None:
                    raise SimulationError(
                        f"{es.nest.einsum}: per-step cycles need a compute unit of its own"
                    )
                es.step_alone = float("inf")  # its steps differ; never shared
            for st in es.bufs:
                for dma in (st.fetch, st.wb):
                    dma.alone = max((w for _p, w in dma.work), default=0.0)
        for es in self.einsums.values():
            for d in es.deps:
                if d not in self.einsums:
                    raise SimulationError(f"{es.nest.einsum} depends on unknown Einsum {d}")
                self.einsums[d].dependents.append(es)
            for spec in es.stream_names:
                d, a, b, lag = (spec, 0, 0, 0) if isinstance(spec, str) else spec
                if d not in self.einsums:
                    raise SimulationError(f"{es.nest.einsum} streams from unknown Einsum {d}")
                es.streams.append((self.einsums[d], a, b, lag))
                p = self.einsums[d]
                if es not in p.stream_consumers:
                    p.stream_consumers.append(es)
                if p.unit_obj is es.unit_obj:
                    # steps of Einsums pipelined on one unit interleave
                    es.unit_obj.interleave = True
        for es in list(self.einsums.values()):
            if not es.deps:
                self._start_einsum(es)
        # the bound on simulated time: a finite horizon even if events loop
        horizon = self.max_cycles
        env = self.env
        queue = env._queue
        fabric = self.fabric
        fabric.flush()
        # The engine only ever schedules (time, 1, id, fn, args), so it pops simpy's
        # queue itself (what Environment.step does, minus the generic
        # callback and failure handling): same order, same clock.
        while queue:
            t, _prio, _eid, fn, args = heappop(queue)
            if t > horizon:
                raise SimTimeLimitError(
                    f"simulated time passed the bound of {horizon:.6g} cycles "
                    f"({self._progress()}); raise max_cycles or check the mapping"
                )
            env._now = t
            fn(*args)
            if fabric.pending is not None:
                fabric.flush()
        unfinished = [es for es in self.einsums.values() if not es.finished]
        if unfinished:
            raise DeadlockError(self._deadlock_message(unfinished[0]))
        return max((es.t_end for es in self.einsums.values()), default=0.0)

    # -- Einsum life cycle -----------------------------------------------
    def _start_einsum(self, es: _EinsumState) -> None:
        es.started = True
        es.t_start = self.env._now
        if es.steps == 0:
            self._finish_einsum(es)
            return
        for st in es.bufs:
            self._try_alloc(st)
        self._try_compute(self.units[es.unit])

    def _finish_einsum(self, es: _EinsumState) -> None:
        es.finished = True
        es.t_end = self.env._now
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
        cell = st.cell
        lim = cell.lim
        tb = st.tile_bytes
        ntiles = st.ntiles
        slots = st.slots
        while st.allocated < ntiles and st.allocated - st.released < slots:
            if lim is not None and cell.used + tb > lim:
                wait = cell.wait
                if st not in wait:
                    wait.append(st)
                return
            cell.used += tb
            i = st.allocated
            st.allocated = i + 1
            if i < st.preloaded:
                self._arrive(st, i)
            elif not st.is_output or st.buf.revisited(i):
                fetch = st.fetch
                fetch.queue.append(i)
                if not fetch.busy:
                    self._dma_next(st, fetch)
            else:
                self._arrive(st, i)

    def _release(self, st: _BufState) -> None:
        st.released += 1
        cell = st.cell
        cell.used -= st.tile_bytes
        self._try_alloc(st)
        if cell.wait:
            waiting = cell.wait
            cell.wait = []
            for w in waiting:
                self._try_alloc(w)

    # -- DMA engines ---------------------------------------------------------
    def _dma(self, st: _BufState, kind: str, tile: int) -> None:
        dma = st.fetch if kind == "fetch" else st.wb
        dma.queue.append(tile)
        if not dma.busy:
            self._dma_next(st, dma)

    @staticmethod
    def _pop_ready(st: _BufState, q: deque[int]) -> int | None:
        """The first tile of ``q``, taken off it, once the parent holds it;
        else ``None`` (the parent's arrival wakes the engine again)."""
        if not q:
            return None
        tile = q[0]
        p = st.parent
        if p is not None:
            pi = (tile * st.period) // st.pperiod
            if not (pi < p.arrived or pi in p.ready):
                return None
        q.popleft()
        return tile

    def _dma_next(self, st: _BufState, dma: _Dma) -> None:
        """Start ``dma`` on its next tile once the parent holds it, unless it
        is transferring one."""
        if dma.busy:
            return
        tile = self._pop_ready(st, dma.queue)
        if tile is None:
            return
        dma.busy = True
        st.acc_p[dma.p_acc] += st.xfer_el
        st.acc_c[dma.c_acc] += st.fill_el
        self._begin(dma.work, self._dma_done, (st, dma, tile, self.env._now))

    def _dma_done(self, st: _BufState, dma: _Dma, tile: int, t0: float) -> None:
        self.events += 1
        dma.busy = False
        now = self.env._now
        x = now - t0 - dma.alone
        if x > 1e-9 * dma.alone:  # its ports were shared
            st.last_done = now
            st.last_stretch = x
            st.unit.stretched = True
        if dma is st.fetch:
            if self.record:
                self.timeline.add(st.track + " (read)", f"read {st.buf.tensor}[{tile}]", t0, now)
            self._arrive(st, tile)
            # an input tile was copied down: free the parent tile after its last child
            p = st.parent
            if p is not None and not st.is_output:
                per = st.period
                if (tile + 1) * per >= ((tile * per) // st.pperiod + 1) * st.pperiod or (
                    tile + 1 >= st.ntiles
                ):
                    self._release(p)
        else:
            if self.record:
                self.timeline.add(
                    st.track + " (write-back)", f"write-back {st.buf.tensor}[{tile}]", t0, now
                )
            self._written_back(st, tile)
        if dma.queue:
            self._dma_next(st, dma)

    def _arrive(self, st: _BufState, tile: int) -> None:
        if st.arrivals is not None:
            st.arrivals.append(self.env._now)
        if tile == st.arrived:
            a = tile + 1
            ready = st.ready
            if ready:
                while a in ready:
                    ready.discard(a)
                    a += 1
            st.arrived = a
        else:
            st.ready.add(tile)
        children = st.children
        if children:
            for ch in children:
                dma = ch.fetch
                if not dma.busy and dma.queue:
                    self._dma_next(ch, dma)
                dma = ch.wb
                if not dma.busy and dma.queue:
                    self._dma_next(ch, dma)
        elif not st.unit.busy:
            self._try_compute(st.unit)

    def _written_back(self, st: _BufState, tile: int) -> None:
        st.wb_done += 1
        self._release(st)
        p = st.parent
        if p is not None:
            pi = (tile * st.period) // st.pperiod
            if (tile + 1) * st.period >= (pi + 1) * st.pperiod or tile + 1 >= st.ntiles:
                self._dma(p, "wb", pi)
        self._maybe_finished(st.es)

    # -- compute ---------------------------------------------------------------
    @staticmethod
    def _ready(es: _EinsumState, s: int) -> bool:
        """Step ``s`` of ``es`` has its operand tiles and its producers' share."""
        for st, per in es.leaf_periods:
            ti = s // per
            if not (ti < st.arrived or ti in st.ready):
                return False
        if es.leaf_tables:
            for st, table in es.leaf_tables:
                ti = table[s]
                if not (ti < st.arrived or ti in st.ready):
                    return False
        if es.streams:
            for p, a, b, lag in es.streams:
                # pipelined hand-over: the producer's part of the intermediate
                # for this step is done
                done = p.done_steps
                if done >= p.steps:
                    continue
                if a:
                    if done < (s // a + 1) * b - lag:
                        return False
                elif done * es.steps < (s + 1) * p.steps:
                    return False
        return True

    def _pick(self, unit: _Unit) -> _EinsumState | None:
        """The interleaving unit's next Einsum: of those with a ready step,
        the one least far along (queue order breaks ties)."""
        best = None
        frac = 2.0
        for cand in unit.queue:
            s = cand.next_step
            if cand.started and s < cand.steps and s / cand.steps < frac and self._ready(cand, s):
                best, frac = cand, s / cand.steps
        return best

    def _try_compute(self, unit: _Unit) -> None:
        if unit.busy:
            return
        es = unit.current
        if unit.interleave:
            es = self._pick(unit)
            if es is None:
                return
        elif es is None or es.next_step >= es.steps:
            es = None
            for cand in unit.queue:
                if cand.started and cand.next_step < cand.steps:
                    es = cand
                    break
            if es is None:
                return
            unit.current = es
        s = es.next_step
        if es.plain:
            # _ready, the common case inlined: periodic tiles only
            for st, per in es.leaf_periods:
                ti = s // per
                if not (ti < st.arrived or ti in st.ready):
                    return
        elif not unit.interleave and not self._ready(es, s):
            return
        es.next_step = s + 1
        unit.busy = True
        env = self.env
        now = env._now
        if unit.stretched:
            self._wait_contention(unit, es, now)
        w = es.step_excl
        if not es.plain and es.step_cycles:
            w = self._step_cycles(unit, es, s, now)
        if w is not None:
            # the unit's port alone, never shared: one timer
            heappush(
                env._queue,
                (now + w, 1, next(env._eid), self._compute_done, (unit, es, s, now)),
            )
        else:
            self._begin(es.step_work, self._compute_done, (unit, es, s, now), es.step_floor)

    @staticmethod
    def _wait_contention(unit: _Unit, es: _EinsumState, now: float) -> None:
        """The unit waited: for as long as a transfer that ended in the wait
        was slowed by sharing its ports, that is contention."""
        gap = now - unit.last_end
        if gap <= 0.0:
            return
        unit.stretched = False
        worst = 0.0
        last = unit.last_end
        for st in es.bufs:
            if st.last_done > last and st.last_stretch > worst:
                worst = st.last_stretch
        if worst > 1e-9 * gap:
            es.wait_stretch += worst if worst < gap else gap

    @staticmethod
    def _step_cycles(unit: _Unit, es: _EinsumState, s: int, now: float) -> float:
        """Cycles of step ``s`` of a nest whose steps differ, with the nest's
        stall rule's charge for waiting."""
        w = es.step_cycles[s]
        if es.stall_rule is not None:
            new = tuple(
                st.arrivals[(table[s - 1] + 1 if s else 0) : table[s] + 1]
                for st, table in es.leaf_tables
            )
            start = es.stall_rule(unit.last_end, new)
            if start > now:
                w += start - now
        return w

    def _compute_done(self, unit: _Unit, es: _EinsumState, s: int, t0: float) -> None:
        unit.busy = False
        es.done_steps += 1
        self.events += 1
        now = self.env._now
        unit.last_end = now
        if es.step_excl is None:  # a step on shared ports may take longer than alone
            extra = now - t0 - es.step_alone
            if extra > 1e-9 * es.step_alone:
                es.stretch += extra
        unit.busy_cycles += now - t0
        if self.record:
            self.timeline.add(es.track, f"{es.nest.einsum} step {s}", t0, now)
        s1 = s + 1
        if es.period and s1 % es.period == 0:
            es.boundaries.append(now)
        last = s1 >= es.steps
        for st, p in es.leaf_periods:
            if s1 % p == 0 or last:
                if st.is_output:
                    wb = st.wb
                    wb.queue.append(s // p)
                    if not wb.busy:
                        self._dma_next(st, wb)
                else:
                    self._release(st)
        if not es.plain and es.leaf_tables:
            for st, table in es.leaf_tables:
                done = (st.ntiles if last else table[s1]) - table[s]
                for _ in range(done):
                    self._release(st)
        if last:
            self._maybe_finished(es)
        self._try_compute(unit)
        for c in es.stream_consumers:
            if c.started and c.unit_obj is not unit:
                self._try_compute(c.unit_obj)

    # -- reporting ---------------------------------------------------------------
    def accesses(self) -> dict[tuple[int, str], list[float]]:
        """(level, tensor) -> [reads, writes, updates] in elements, as simulated."""
        out: dict[tuple[int, str], list[float]] = {}
        for es in self.einsums.values():
            for st in es.bufs:
                b = st.buf
                for lvl, rec in ((b.parent, st.acc_p), (b.level, st.acc_c)):
                    o = out.setdefault((lvl, b.tensor), [0.0, 0.0, 0.0])
                    for k in range(3):
                        o[k] += rec[k]
            # partial-sum fetches read the parent and write the child; fix
            # the split: a fetch of an output is a read at the parent
            for (lvl, t), (r, w, u) in es.nest.step_accesses.items():
                o = out.setdefault((lvl, t), [0.0, 0.0, 0.0])
                o[0] += r * es.done_steps
                o[1] += w * es.done_steps
                o[2] += u * es.done_steps
        return out

    def _progress(self) -> str:
        parts = [
            f"{es.nest.einsum}: {es.done_steps}/{es.steps} steps" for es in self.einsums.values()
        ]
        return ", ".join(parts)

    def _deadlock_message(self, es: _EinsumState) -> str:
        """Name the unit, the step and tile it waits for, and the buffer that
        blocks it (walking up from the missing operand to its parents)."""
        s = es.next_step
        names = es.nest.level_names
        if not es.started:
            return (
                f"deadlock: {es.nest.einsum} never started: it waits for "
                f"{', '.join(sorted(es.deps))}, which never finished"
            )
        missing = None
        for st in es.leaves:
            ti = s // st.buf.period
            if not (ti < st.arrived or ti in st.ready):
                missing = (st, ti)
                break
        if missing is None:
            return (
                f"deadlock: {es.nest.einsum} stopped at step {s} of {es.steps} on unit {es.unit} "
                f"with its operands present (write-backs blocked)"
            )
        st, ti = missing
        head = (
            f"deadlock: compute unit {es.unit} waits at step {s} of {es.nest.einsum} for tile "
            f"{st.buf.tensor}[{ti}] at {names[st.buf.level]}"
        )
        while True:
            b = st.buf
            lv = b.level
            if ti >= st.allocated:
                cap = self.capacity[lv]
                held = sorted(
                    {
                        f"{o.buf.tensor}@{names[o.buf.level]}"
                        for o in es.bufs
                        if o.buf.level == lv and o.allocated > o.released
                    }
                )
                cap_s = "unbounded" if cap is None else f"{cap:.0f} B"
                return (
                    f"{head}; tile {b.tensor}[{ti}] ({b.tile_bytes:.0f} B) cannot be allocated "
                    f"in {names[lv]} ({cap_s} per instance, {self.used.get((es.nest.einsum, lv), 0.0):.0f} B in use by tiles of "
                    f"{', '.join(held) or 'nothing'}; {st.allocated - st.released} of "
                    f"{b.slots} slots taken): the buffer is too small for the tiles in flight"
                )
            p = st.parent
            if p is None:
                return f"{head}; its transfer from {names[b.parent]} never completed"
            pi = (ti * b.period) // p.buf.period
            if pi < p.arrived or pi in p.ready:
                return f"{head}; its transfer from {names[b.parent]} never completed"
            st, ti = p, pi

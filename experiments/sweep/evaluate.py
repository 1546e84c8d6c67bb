"""Evaluate sweep points: build the hardware and the workload, check the
constraints, map and cost the workload, and flatten ``Metrics`` into a row.

Runs in the workers. Every failure of one point (bad parameters, a design
that does not fit, no valid mapping, a time-out) becomes a row with
``status`` ``"rejected"`` (a constraint filtered it before evaluation) or
``"error"`` and the message in ``error``; it never stops the sweep.

Rows hold plain scalars only, with the unit in the column name:

* ``hw.<param>``, ``wl.<param>``: the point's parameters;
* ``latency_s``, ``cycles``, ``energy_pj``, ``macs`` ...: labels;
* ``energy.<component>_pj``, ``traffic.<level>_bytes``, ``util.<unit>``:
  per component, storage level and compute unit;
* ``area_mm2``, ``peak_macs_per_s``, ``dram_bw_bytes_per_s``: facts about the
  hardware (used for the roofline).
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from experiments.sweep.sampling import Point
from workloads.errors import EinsimError
from workloads.memo import BoundedCache

#: columns every row has, in this order (then the per-component ones)
BASE_COLUMNS = (
    "point_id",
    "hw_id",
    "design",
    "base",
    "family",
    "workload",
    "workload_label",
    "mapper",
    "objective",
    "model",
    "status",
    "error",
)


class PointTimeout(BaseException):
    """A point ran past the spec's ``timeout_s``.

    A ``BaseException`` (like ``KeyboardInterrupt``), not an
    :class:`EinsimError`: the mappers catch ``EinsimError`` to skip a bad
    candidate, and must not swallow the deadline.
    """

    def __init__(self, message: str | None = None) -> None:
        # raised by class from another thread (Dask): the armed deadline's text
        super().__init__(message or f"timed out after {_Alarm.seconds_of_thread():g} s")


class _Alarm:
    """State of :func:`alarm_scope`: whether its SIGALRM handler is
    installed, and the time-out of the point now armed (for the message)."""

    active = False
    seconds = 0.0
    #: thread id -> seconds of the deadline armed on that thread (Dask)
    threads: dict[int, float] = {}

    @classmethod
    def seconds_of_thread(cls) -> float:
        return cls.threads.get(threading.get_ident(), cls.seconds)


def _on_scoped_alarm(signum: int, frame: Any) -> None:
    raise PointTimeout(f"timed out after {_Alarm.seconds:g} s")


@contextmanager
def alarm_scope() -> Iterator[None]:
    """Install the SIGALRM handler of :func:`_deadline` once for a chunk;
    inside, each point's deadline only arms and disarms the timer (two
    ``setitimer`` calls instead of also swapping the handler per point)."""
    if (
        _Alarm.active
        or threading.current_thread() is not threading.main_thread()
        or not hasattr(signal, "setitimer")
    ):
        yield
        return
    old = signal.signal(signal.SIGALRM, _on_scoped_alarm)
    _Alarm.active = True
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _Alarm.active = False
        signal.signal(signal.SIGALRM, old)


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`PointTimeout` after ``seconds``.

    Process-pool workers run tasks on their main thread: SIGALRM. Dask
    workers run tasks on threads: a timer thread raises the exception in the
    task's thread (``PyThreadState_SetAsyncExc``). Either way it lands
    between two Python bytecodes, so both engines time out the same points.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        with _thread_deadline(seconds):
            yield
        return
    if _Alarm.active:  # the handler is installed (alarm_scope)
        outer = _Alarm.seconds
        _Alarm.seconds = seconds
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            _Alarm.seconds = outer
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise PointTimeout(f"timed out after {seconds:g} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


#: seconds between repeated raises of a deadline not yet delivered (Dask)
REFIRE_S = 0.5


class _Watchdog:
    """One thread per process that raises :class:`PointTimeout` in the
    thread whose deadline passed (``PyThreadState_SetAsyncExc``).

    Arming and disarming a deadline cost a lock and a heap push, not a
    thread per point (Dask runs every point on a worker thread).
    """

    def __init__(self) -> None:
        import ctypes

        api = ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
        self._raise = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(api)
        self._clear = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(api)
        self._cv = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        #: token -> [thread id, fired]
        self._armed: dict[int, list] = {}
        self._next = 0
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> int:
        import heapq
        import time

        with self._cv:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="einsim-deadlines", daemon=True
                )
                self._thread.start()
            self._next += 1
            token = self._next
            self._armed[token] = [threading.get_ident(), False]
            when = time.monotonic() + seconds
            first = not self._heap or when < self._heap[0][0]
            heapq.heappush(self._heap, (when, token))
            if first:
                self._cv.notify()
            return token

    def disarm(self, token: int) -> None:
        with self._cv:
            tid, fired = self._armed.pop(token)
            if fired:  # raised but maybe not delivered yet: it must not land later
                self._clear(tid, None)

    def _run(self) -> None:
        import heapq
        import time

        with self._cv:
            while True:
                while self._heap and self._heap[0][1] not in self._armed:
                    heapq.heappop(self._heap)  # disarmed
                if not self._heap:
                    self._cv.wait()
                    continue
                when, token = self._heap[0]
                now = time.monotonic()
                if when > now:
                    self._cv.wait(when - now)
                    continue
                heapq.heappop(self._heap)
                entry = self._armed[token]
                entry[1] = True
                self._raise(entry[0], PointTimeout)
                # raised again until disarmed: an asynchronous exception that
                # lands in a __del__ or a weakref callback is printed and
                # dropped, and the point would then run on with no deadline
                heapq.heappush(self._heap, (now + REFIRE_S, token))


_WATCHDOG: _Watchdog | None = None


@contextmanager
def _thread_deadline(seconds: float) -> Iterator[None]:
    """:class:`PointTimeout` in this thread after ``seconds`` (any thread)."""
    global _WATCHDOG
    if _WATCHDOG is None:
        _WATCHDOG = _Watchdog()
    tid = threading.get_ident()
    outer = _Alarm.threads.get(tid)
    _Alarm.threads[tid] = seconds
    token = _WATCHDOG.arm(seconds)
    try:
        yield
    finally:
        _WATCHDOG.disarm(token)
        if outer is None:
            _Alarm.threads.pop(tid, None)
        else:
            _Alarm.threads[tid] = outer


# per-worker caches (shared by a Dask worker's threads): presets and derived
# architectures, built cascades (a cascade may hold 32,768 Einsums: few kept);
# a build that failed is kept as its exception, raised again on every hit
_ARCH: BoundedCache[Any] = BoundedCache(4096)
_CASCADE: BoundedCache[Any] = BoundedCache(64)
_MISS = object()


def _cached(cache: BoundedCache[Any], key: tuple, make: Callable[[], Any]) -> Any:
    hit = cache.get(key, _MISS)
    if hit is _MISS:
        try:
            hit = make()
        except EinsimError as exc:
            hit = exc
        cache.put(key, hit)
    if isinstance(hit, BaseException):
        raise hit
    return hit


def base_arch(base: str) -> Any:
    import hw_models

    return _cached(_ARCH, (base,), lambda: hw_models.load(base))


def build_arch(base: str, hw: tuple[tuple[str, Any], ...]) -> Any:
    import hw_models

    def make() -> Any:
        arch = base_arch(base)
        return hw_models.derive(arch, dict(hw)) if hw else arch

    return _cached(_ARCH, (base, hw), make)


def build_cascade(name: str, wl: tuple[tuple[str, Any], ...]) -> Any:
    import workloads

    return _cached(_CASCADE, (name, wl), lambda: workloads.load(name, **dict(wl)))


def fpga_fit_reason(point: Point) -> str:
    """Why the point's FPGA design does not fit its device ('' = it fits).

    Checked on the parameters, before the architecture is built (building a
    design that does not fit raises)."""
    base = base_arch(point.base_source)
    if base.family != "fpga":
        return f"constraint fits_fpga applies to FPGA designs; {point.base!r} is a {base.family} design"
    from hw_models import fpga

    params = {**base.params, **dict(point.hw)}
    if fpga.fits(params):
        return ""
    try:
        fpga.estimate_resources(params)
    except EinsimError as exc:
        return str(exc)
    return "the design does not fit the device (or its clock is above the achievable one)"


def area_reason(point: Point, arch: Any) -> str:
    """Why the point breaks the area budget ('' = within budget)."""
    if point.max_area_mm2 is not None and arch.area_mm2 > point.max_area_mm2:
        return f"area {arch.area_mm2:.4g} mm2 exceeds the budget of {point.max_area_mm2:g} mm2"
    return ""


def hardware_facts(arch: Any) -> dict[str, float]:
    """Scalars about the hardware the dashboards and the export use."""
    top = arch.levels[0]
    # the roofline's roof: the fastest single unit's MAC rate (a GEMM binds
    # to one unit; the units of a design do not add up for one Einsum)
    peak = (
        max((cu.pes * cu.ops_per_cycle.get("mac", 0.0) for cu in arch.compute), default=0.0)
        * arch.clock_hz
    )
    return {
        "area_mm2": float(arch.area_mm2),
        "clock_hz": float(arch.clock_hz),
        "peak_macs_per_s": float(peak),
        "dram_bw_bytes_per_s": float(top.read_bw_bytes_per_cycle * arch.clock_hz),
        "pes": float(sum(cu.pes for cu in arch.compute)),
    }


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def metrics_row(m: Any) -> dict[str, Any]:
    """Flatten a ``sim.metrics.Metrics`` into scalar columns."""
    row: dict[str, Any] = {
        "latency_s": _num(m.latency_s),
        "cycles": _num(m.cycles),
        "energy_pj": _num(m.energy_pj),
        "edp_pj_s": _num(m.energy_pj) * _num(m.latency_s),
        "compute_cycles": _num(m.compute_cycles),
        "macs": _num(m.macs),
        "padded_macs": _num(m.padded_macs),
    }
    for comp, pj in sorted(m.energy_breakdown_pj.items()):
        row[f"energy.{comp}_pj"] = _num(pj)
    for level, per_tensor in m.traffic_bytes.items():
        row[f"traffic.{level}_bytes"] = float(sum(_num(b) for b in per_tensor.values()))
    for level, cyc in m.transfer_cycles.items():
        row[f"transfer.{level}_cycles"] = _num(cyc)
    for unit, u in sorted(m.utilization.items()):
        row[f"util.{unit}"] = _num(u)
    fpga = (m.notes or {}).get("fpga")
    if isinstance(fpga, dict) and "device_fraction" in fpga:
        # an FPGA design's "area": the largest fraction of a device resource it uses
        row["device_fraction"] = _num(fpga["device_fraction"])
        row["power_w"] = _num(fpga.get("power_w"))
        for r, frac in sorted(fpga.get("fractions", {}).items()):
            row[f"fpga.{r}_fraction"] = _num(frac)
    return row


def mapping_summary(
    row: dict[str, Any], n_einsums: int, mapping: Any = None, arch: Any = None
) -> dict[str, Any]:
    """Scalar features of the mapping (for surrogate models).

    From the row: Einsums in the workload, padding and compute-bound
    fraction. From the mapping of a one-Einsum workload
    (``mappers.mapping.mapping_to_dict`` form): PEs used (product of the
    spatial factors), their fraction of the bound unit's PEs, and the trip
    count of the outermost level's loops. Cascades get NaN for those.
    """
    out: dict[str, Any] = {"map.einsums": float(n_einsums)}
    macs, padded = row.get("macs", math.nan), row.get("padded_macs", math.nan)
    out["map.padding_ratio"] = padded / macs if macs and macs > 0 else math.nan
    cyc, comp = row.get("cycles", math.nan), row.get("compute_cycles", math.nan)
    out["map.compute_bound_fraction"] = comp / cyc if cyc and cyc > 0 else math.nan
    used = util = outer = math.nan
    if isinstance(mapping, dict) and "levels" in mapping and arch is not None:
        used, outer = 1.0, 1.0
        for k, lv in enumerate(mapping["levels"]):
            for f in lv.get("spatial", {}).values():
                used *= f
            if k == 0:
                for f in lv.get("temporal", {}).values():
                    outer *= f
        try:
            util = used / arch.unit(mapping.get("unit", "")).pes
        except (KeyError, ZeroDivisionError):
            util = math.nan
    out["map.pes_used"] = used
    out["map.spatial_utilization"] = util
    out["map.outer_iterations"] = outer
    return out


def _base_row(p: Point) -> dict[str, Any]:
    row: dict[str, Any] = {
        "point_id": p.point_id,
        "hw_id": p.hw_id,
        "design": p.design,
        "base": p.base,
        "family": "",
        "workload": p.workload,
        "workload_label": p.workload_label,
        "mapper": p.mapper,
        "objective": p.objective,
        "model": p.model,
        **({} if p.gpu_plan is None else {"gpu_plan": p.gpu_plan}),
        "status": "ok",
        "error": "",
        "warning": "",
    }
    for k, v in p.hw:
        row[f"hw.{k}"] = v
    for k, v in p.wl:
        row[f"wl.{k}"] = v
    return row


def _describe(exc: BaseException) -> str:
    if isinstance(exc, EinsimError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _resolved_model(p: Point, row: dict[str, Any]) -> Any | None:
    """The cost model that will really run for ``p`` ("auto" resolved), put
    with its mapper (none for models that cost a whole workload) into
    ``row`` so rejected rows say the same as evaluated ones."""
    from sim.models import resolve

    try:
        model = resolve(p.model, row["family"], p.base)
    except EinsimError:
        return None  # the evaluation reports the bad model name
    row["model"] = model.name
    row["mapper"] = p.mapper if model.kind == "mapping" else ""
    return model


def checked_arch(p: Point, row: dict[str, Any]) -> Any | None:
    """Build ``p``'s hardware and put its family and facts into ``row``;
    ``None`` (``row`` marked rejected) when the FPGA fit or area limit filters it."""
    row["family"] = base_arch(p.base_source).family
    model = _resolved_model(p, row)
    # a MAC array on an FPGA is checked here; an hls4ml design (a workload
    # model) depends on the network, so its model rejects it (FPGAFitError)
    array_fit = p.fits_fpga and model is not None and model.kind == "mapping"
    reason = fpga_fit_reason(p) if array_fit else ""
    if not reason:
        arch = build_arch(p.base_source, p.hw)
        row["family"] = arch.family
        row.update(hardware_facts(arch))
        reason = area_reason(p, arch)
    if reason:
        row["status"] = "rejected"
        row["error"] = reason
        return None
    return arch


def _finish_row(row: dict[str, Any], ev: Any, n_einsums: int) -> dict[str, Any]:
    """Put an :class:`sim.api.Evaluation`'s numbers into ``row``."""
    row.update(metrics_row(ev.metrics))
    # what really ran: "auto" resolved to the family's model, and no mapper
    # for the models that cost a whole workload (GPU, hls4ml)
    row["model"] = ev.model
    row["mapper"] = ev.mapper or ""
    # a flagged result (e.g. a search cut by its wall-clock safety net)
    row["warning"] = "; ".join(ev.warnings)
    if "gpu_plan" in row:  # the spec names a plan: the one that ran, "" off GPUs
        row["gpu_plan"] = (ev.metrics.notes or {}).get("plan", "") if ev.model == "gpu" else ""
    row["dram_bytes"] = row.get(f"traffic.{ev.arch.levels[0].name}_bytes", math.nan)
    row.update(mapping_summary(row, n_einsums, ev.metrics.mapping, ev.arch))
    return row


def _failed(row: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    from hw_models.errors import FPGAFitError

    # a design that does not fit its device is filtered, not broken
    row["status"] = "rejected" if isinstance(exc, FPGAFitError) else "error"
    row["error"] = _describe(exc)
    return row


def _evaluate_group(points: list[Point], cascade: Any) -> list[dict[str, Any]]:
    """Rows for points of one workload, mapper, objective and model: their
    designs go to :func:`sim.evaluate_designs` together (one vectorised pass
    where the model allows), under one deadline of the points' summed
    time-outs; if that fires, each point is evaluated alone under its own."""
    import sim
    from sim.api import einsums_of

    rows = [_base_row(p) for p in points]
    archs: list[Any] = []
    live: list[int] = []
    for k, p in enumerate(points):
        try:
            with _deadline(p.timeout_s):
                arch = checked_arch(p, rows[k])
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - a failing point is data
            _failed(rows[k], exc)
            continue
        if arch is not None:
            archs.append(arch)
            live.append(k)
    if not live:
        return rows
    p0 = points[live[0]]
    n = len(einsums_of(cascade))

    def run(designs: list[Any]) -> list[Any]:
        """The spec's mapper maps the Einsums of mapping models; families
        whose model costs a workload itself (GPUs) take no mapper."""
        from sim.models import resolve

        out: list[Any] = [None] * len(designs)
        by_kind: dict[bool, list[int]] = {}
        for i, a in enumerate(designs):
            try:
                takes_mapper = resolve(p0.model, a.family, a.name).kind == "mapping"
            except EinsimError as exc:
                out[i] = exc
                continue
            by_kind.setdefault(takes_mapper, []).append(i)
        for takes_mapper, idx in by_kind.items():
            res = sim.evaluate_designs(
                cascade,
                [designs[i] for i in idx],
                mapper=p0.mapper if takes_mapper else None,
                objective=p0.objective,
                model=p0.model,
                plan=p0.gpu_plan,
            )
            for i, r in zip(idx, res, strict=True):
                out[i] = r
        return out

    try:
        with _deadline(sum(points[k].timeout_s for k in live)):
            results = run(archs)
    except (KeyboardInterrupt, SystemExit):
        raise
    except PointTimeout:
        results = []
        for k, arch in zip(live, archs, strict=True):
            try:
                with _deadline(points[k].timeout_s):
                    results.append(run([arch])[0])
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # noqa: BLE001
                results.append(exc)
    except BaseException as exc:  # noqa: BLE001 - the whole group failed the same way
        results = [exc] * len(live)
    for k, r in zip(live, results, strict=True):
        if isinstance(r, BaseException):
            _failed(rows[k], r)
        else:
            _finish_row(rows[k], r, n)
    return rows


def _workload_failed(p: Point, exc: BaseException) -> dict[str, Any]:
    """The row of a point whose workload could not be built (or timed out
    building): its hardware facts and constraints as for any point, so the
    row does not depend on which step a time-out interrupted."""
    row = _base_row(p)
    try:
        with _deadline(p.timeout_s):
            if checked_arch(p, row) is None:
                return row  # rejected by a constraint before any evaluation
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as arch_exc:  # noqa: BLE001 - the hardware fails first
        return _failed(row, arch_exc)
    return _failed(row, exc)


def evaluate_chunk(points: list[Point]) -> list[dict[str, Any]]:
    """Rows for a chunk of points, in the chunk's order.

    This is the one function the process pool and Dask both run. Points of
    the same workload, mapper, objective, model and GPU plan are evaluated together
    by :func:`sim.evaluate_designs`, the same front door ``einsim eval``
    uses for one design.
    """
    rows: list[dict[str, Any] | None] = [None] * len(points)
    groups: dict[tuple, list[int]] = {}
    for i, p in enumerate(points):
        key = (p.workload_source, p.wl, p.mapper, p.objective, p.model, p.gpu_plan)
        groups.setdefault(key, []).append(i)
    with alarm_scope():  # one SIGALRM handler for the chunk's deadlines
        for (workload, wl, *_rest), idx in groups.items():
            try:
                with _deadline(points[idx[0]].timeout_s):
                    cascade = build_cascade(workload, wl)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # noqa: BLE001 - a failing point is data
                for i in idx:
                    rows[i] = _workload_failed(points[i], exc)
                continue
            for i, row in zip(idx, _evaluate_group([points[i] for i in idx], cascade), strict=True):
                rows[i] = row
    return rows  # type: ignore[return-value]

"""Run a sweep: one code path for a local process pool and for Dask.

The driver expands the spec into points, skips those already in the shards,
cuts the rest into chunks and keeps a bounded number of chunks in flight on
an *executor*. Both executors (``concurrent.futures.ProcessPoolExecutor`` and
a ``dask.distributed.Client``) offer ``submit(fn, arg) -> future`` and a
"wait for the first completed" primitive, which is all the loop uses; the
function the workers run (``evaluate_chunk_table``) and the shard writing
are the same, so results do not depend on the engine.

Each completed chunk is written as one shard right away. A chunk whose
worker died (a crash, not a Python error: those are recorded per point) is
split and retried point by point on a fresh pool; a point that still kills
its worker is recorded with that error.

:func:`run_sweep` holds ``DIR/.lock`` while it runs (a second sweep on the
same directory refuses to start) and stores the spec and its hardware files
in the directory first. Workers of the process pool and of a Dask
LocalCluster watch the driver: when it dies (even by SIGKILL) they exit
within a second (``PR_SET_PDEATHSIG`` on Linux, and a thread that polls the
parent process id everywhere).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.sweep.evaluate import evaluate_chunk
from experiments.sweep.sampling import Point, expand
from experiments.sweep.shards import ShardStore
from experiments.sweep.spec import SweepSpec
from workloads.errors import EinsimError


class EngineError(EinsimError):
    """The sweep engine could not start (bad scheduler address, ...)."""


@dataclass(frozen=True)
class SweepSummary:
    total: int
    skipped: int
    evaluated: int
    ok: int
    errors: int
    rejected: int
    wall_s: float
    engine: str
    #: a different DIR/spec.yaml was replaced by this run's spec
    replaced_spec: bool = False

    @property
    def points_per_s(self) -> float:
        return self.evaluated / self.wall_s if self.wall_s > 0 else math.inf


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _warm_worker() -> None:
    """Import the model stack once per worker process, not per chunk: the
    first point's time-out must not pay for imports (networkx alone takes a
    second on a loaded machine). Building a two-layer MLP runs the parser
    and the cascade validation once."""
    try:
        import experiments.sweep.evaluate  # noqa: F401
        import sim.mapped  # noqa: F401
        import workloads

        workloads.load("mlp", LAYERS=2)
    except Exception:  # noqa: BLE001 - the first point will report the error
        pass


#: how often a worker checks that the driver is alive (s)
PARENT_POLL_S = 0.5


#: the driver's pid, for workers that start after a delay (Dask LocalCluster)
DRIVER_PID_ENV = "EINSIM_SWEEP_DRIVER_PID"


def _watch_parent() -> None:
    """Make this worker process exit when the process that started it dies.

    ``PR_SET_PDEATHSIG`` asks Linux to SIGKILL us when our parent exits; a
    daemon thread that polls ``os.getppid()`` covers other systems and a
    driver that died before this ran (the parent is then no longer the
    driver whose pid is in :data:`DRIVER_PID_ENV`).
    """
    import threading

    parent = int(os.environ.get(DRIVER_PID_ENV) or os.getppid())
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):  # pragma: no cover - no libc
            pass
    if os.getppid() != parent:  # orphaned already
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_S)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="einsim-parent-watch", daemon=True).start()


def _init_local_worker() -> None:
    """Initializer of the process pool's workers (forked by the driver's
    main thread, so the parent-death signal is tied to the driver)."""
    _watch_parent()
    _warm_worker()


def dask_setup(worker: Any) -> None:
    """Dask preload hook (``preload=["experiments.sweep.engine"]``): each
    worker process of our LocalCluster watches the driver from its start.

    The parent-death signal is needed here too: a task that holds the GIL
    (an extension's import, a long C call) starves the polling thread for
    seconds. Linux ties the signal to the driver's thread that started the
    process, a nanny's ``AsyncProcess`` queue thread, which lives until the
    worker process has exited (``distributed.process``), so it fires only
    when the driver dies or the worker is gone already."""
    _watch_parent()


def _noop(arg: Any) -> None:
    return None


class _Backend(ABC):
    """The two operations the driver needs from an executor (process pool or
    Dask); the rest have defaults."""

    name = "?"
    workers = 1

    @abstractmethod
    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Any:
        """Run ``fn(arg)`` on a worker; return its future."""

    @abstractmethod
    def wait_first(self, futures: set[Any]) -> tuple[set[Any], set[Any]]:
        """Block until at least one future is done: (done, pending)."""

    def is_broken(self, exc: BaseException) -> bool:
        return False

    def start(self) -> None:
        """Start the workers now rather than at the first chunk (optional)."""
        return None

    def restart(self) -> None:
        """Replace broken workers (optional)."""
        return None

    def close(self) -> None:
        """Release the workers (optional)."""
        return None


class _ProcessBackend(_Backend):
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.name = f"process pool ({workers} workers)"
        self._pool = self._new()

    def _new(self) -> Any:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # fork starts workers in milliseconds on Linux; elsewhere spawn
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        return ProcessPoolExecutor(
            self.workers, mp_context=mp.get_context(method), initializer=_init_local_worker
        )

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Any:
        return self._pool.submit(fn, arg)

    def start(self) -> None:
        # the first submit forks every worker, which then runs _warm_worker
        self._pool.submit(_noop, None)

    def wait_first(self, futures: set[Any]) -> tuple[set[Any], set[Any]]:
        from concurrent.futures import FIRST_COMPLETED, wait

        done, pending = wait(futures, return_when=FIRST_COMPLETED)
        return set(done), set(pending)

    def is_broken(self, exc: BaseException) -> bool:
        from concurrent.futures.process import BrokenProcessPool

        return isinstance(exc, BrokenProcessPool)

    def restart(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def tls_security(
    scheduler: str | None,
    ca_file: str | None = None,
    cert: str | None = None,
    key: str | None = None,
) -> Any:
    """A ``distributed.Security`` for a ``tls://`` scheduler from the
    ``--tls-*`` options (``None`` when none is given: then Dask's own
    configuration, ``distributed.comm.tls.*``, applies)."""
    if not (ca_file or cert or key):
        return None
    if not scheduler or not scheduler.startswith("tls://"):
        raise EngineError("--tls-ca-file/--tls-cert/--tls-key need --scheduler tls://HOST:PORT")
    if not (ca_file and cert):
        raise EngineError("a tls:// scheduler needs --tls-ca-file and --tls-cert (and --tls-key)")
    from workloads.yamlio import read_input_bytes

    for opt, path in (("--tls-ca-file", ca_file), ("--tls-cert", cert), ("--tls-key", key)):
        if path:
            read_input_bytes(path, f"{opt} file", error=EngineError)  # exists, readable
    from distributed.security import Security

    return Security(
        tls_ca_file=ca_file, tls_client_cert=cert, tls_client_key=key, require_encryption=True
    )


class _DaskBackend(_Backend):
    def __init__(
        self, scheduler: str | None, local_workers: int | None, security: Any = None
    ) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is a dependency
            raise EngineError(f"Dask is not installed: {exc}") from None
        self._cluster = None
        if scheduler:
            try:
                kw = {"security": security} if security is not None else {}
                self._client = Client(scheduler, timeout="10s", **kw)
            except Exception as exc:  # noqa: BLE001
                raise EngineError(
                    f"cannot connect to the Dask scheduler at {scheduler}: {exc}"
                ) from None
            self.workers = max(
                1,
                sum(
                    w.get("nthreads", 1)
                    for w in self._client.scheduler_info().get("workers", {}).values()
                ),
            )
            self.name = f"Dask cluster {scheduler} ({self.workers} threads)"
        else:
            n = local_workers or default_workers()
            self._cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                # ":0": a free port; None still binds 8787 (dask/distributed#8136),
                # which a second sweep on the machine then warns about
                dashboard_address=":0",
                preload=["experiments.sweep.engine"],  # dask_setup: watch the driver
                env={DRIVER_PID_ENV: str(os.getpid())},  # the workers' environment only
            )
            self._client = Client(self._cluster)
            self.workers = n
            self.name = f"Dask LocalCluster ({n} workers)"
        # workers of our own LocalCluster die with the driver; a cluster
        # given by --scheduler belongs to someone else
        self._client.run(_warm_worker)

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Any:
        # pure=False: a chunk is submitted once; no key hashing of the points
        return self._client.submit(fn, arg, pure=False)

    def wait_first(self, futures: set[Any]) -> tuple[set[Any], set[Any]]:
        from distributed import wait

        done, pending = wait(list(futures), return_when="FIRST_COMPLETED")
        return set(done), set(pending)

    def is_broken(self, exc: BaseException) -> bool:
        # a worker that dies is replaced by the nanny; nothing to restart
        return False

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_backend(
    *,
    scheduler: str | None = None,
    dask_local: int | None = None,
    workers: int | None = None,
    security: Any = None,
) -> _Backend:
    if scheduler and dask_local:
        raise EngineError("give either --scheduler or --dask-local, not both")
    if scheduler:
        if not scheduler.startswith(("tcp://", "tls://", "inproc://", "ws://", "wss://")):
            raise EngineError(
                f"--scheduler expects an address like tcp://HOST:PORT, got {scheduler!r}"
            )
        return _DaskBackend(scheduler, None, security)
    if dask_local is not None:
        if dask_local < 1:
            raise EngineError(f"--dask-local expects a worker count >= 1, got {dask_local}")
        return _DaskBackend(None, dask_local)
    n = workers or default_workers()
    if n < 1:
        raise EngineError(f"--workers expects a count >= 1, got {n}")
    return _ProcessBackend(n)


def evaluate_chunk_table(points: list[Point]) -> Any:
    """What the workers run: the chunk's rows as a pyarrow table (cheap to
    ship back and ready to write)."""
    from experiments.sweep.shards import rows_to_table

    return rows_to_table(evaluate_chunk(points))


def chunked(points: list[Point], size: int) -> list[list[Point]]:
    return [points[i : i + size] for i in range(0, len(points), size)]


def auto_chunk_size(n_points: int, workers: int) -> int:
    """About 8 chunks per worker (load balance), at most 512 points each."""
    return max(1, min(512, math.ceil(n_points / (workers * 8))))


#: tries of a single point whose worker died before it is recorded as an error
MAX_ATTEMPTS = 2


def _dead_worker_row(p: Point, exc: BaseException) -> dict[str, Any]:
    from experiments.sweep.evaluate import _base_row

    row = _base_row(p)
    row["status"] = "error"
    row["error"] = f"worker died evaluating this point: {type(exc).__name__}: {exc}"
    return row


def run_points(
    points: list[Point],
    out_dir: str | Path,
    backend: _Backend,
    *,
    chunk_size: int | None = None,
    progress: bool = True,
    chunk_fn: Callable[[list[Point]], Any] = evaluate_chunk_table,
) -> SweepSummary:
    """Evaluate the points not yet in ``out_dir``'s shards."""
    store = ShardStore(out_dir)
    store.prepare()
    done_ids = store.done_ids()
    todo = [p for p in points if p.point_id not in done_ids]
    skipped = len(points) - len(todo)
    size = chunk_size or auto_chunk_size(len(todo), backend.workers)
    queue = chunked(todo, size)
    queue.reverse()  # pop() from the end keeps the spec's order
    max_in_flight = max(2, backend.workers * 3)
    counts = {"ok": 0, "error": 0, "rejected": 0}
    evaluated = 0

    from tqdm import tqdm

    bar = tqdm(
        total=len(points),
        initial=skipped,
        unit="pt",
        desc="sweep",
        disable=not progress,
        dynamic_ncols=True,
        smoothing=0.1,
    )
    t0 = time.perf_counter()
    in_flight: dict[Any, list[Point]] = {}
    # points that were in flight when a worker died; each is then run alone
    # (nothing else in flight), so that a death is certainly its own
    suspects: list[list[Point]] = []
    suspect_ids: set[str] = set()
    attempts: dict[str, int] = {}
    alone_future: Any = None

    def lose(chunks: list[list[Point]]) -> None:
        for c in chunks:
            for p in c:
                if p.point_id not in suspect_ids:
                    suspect_ids.add(p.point_id)
                    suspects.insert(0, [p])

    def pool_broke(extra: list[list[Point]]) -> None:
        """Every future of the old pool is lost: their points become suspects."""
        lose(extra + list(in_flight.values()))
        in_flight.clear()
        backend.restart()

    try:
        while queue or suspects or in_flight:
            if suspects:
                if not in_flight:
                    chunk = suspects.pop()
                    try:
                        alone_future = backend.submit(chunk_fn, chunk)
                        in_flight[alone_future] = chunk
                    except Exception as exc:  # noqa: BLE001
                        if not backend.is_broken(exc):
                            raise
                        suspects.append(chunk)
                        backend.restart()
                        continue
            else:
                while queue and len(in_flight) < max_in_flight:
                    chunk = queue.pop()
                    try:
                        in_flight[backend.submit(chunk_fn, chunk)] = chunk
                    except Exception as exc:  # noqa: BLE001 - the pool broke under us
                        if not backend.is_broken(exc):
                            raise
                        pool_broke([chunk])
                        break
            if not in_flight:
                continue
            done, _ = backend.wait_first(set(in_flight))
            for fut in done:
                chunk = in_flight.pop(fut, None)
                if chunk is None:  # lost with its pool and requeued
                    continue
                was_alone = fut is alone_future
                try:
                    rows = fut.result()
                except Exception as exc:  # noqa: BLE001 - a dead worker, not a bad point
                    if not was_alone:
                        if backend.is_broken(exc):
                            pool_broke([chunk])
                        else:
                            lose([chunk])
                        break  # the other futures of `done` were requeued or still count
                    if backend.is_broken(exc):
                        backend.restart()
                    pid = chunk[0].point_id
                    attempts[pid] = attempts.get(pid, 0) + 1
                    if attempts[pid] < MAX_ATTEMPTS:
                        suspects.append(chunk)
                        continue
                    rows = [_dead_worker_row(chunk[0], exc)]
                store.write(rows)
                for p in chunk:
                    suspect_ids.discard(p.point_id)
                statuses = (
                    [r["status"] for r in rows]
                    if isinstance(rows, list)
                    else rows.column("status").to_pylist()
                )
                for st in statuses:
                    counts[st] = counts.get(st, 0) + 1
                evaluated += len(statuses)
                bar.update(len(statuses))
    finally:
        bar.close()
    wall = time.perf_counter() - t0
    return SweepSummary(
        total=len(points),
        skipped=skipped,
        evaluated=evaluated,
        ok=counts.get("ok", 0),
        errors=counts.get("error", 0),
        rejected=counts.get("rejected", 0),
        wall_s=wall,
        engine=backend.name,
    )


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    *,
    scheduler: str | None = None,
    dask_local: int | None = None,
    workers: int | None = None,
    chunk_size: int | None = None,
    progress: bool = True,
    security: Any = None,
) -> SweepSummary:
    """Expand ``spec`` and evaluate every point not yet in ``out_dir``.

    Holds ``out_dir``'s lock for the whole run (a second sweep on it raises
    :class:`~experiments.sweep.workdir.SweepBusyError`) and first stores the
    spec and its hardware files there (:func:`~experiments.sweep.workdir.save_run`).
    """
    from experiments.sweep.workdir import RunLock, save_run

    with RunLock(out_dir):
        spec, replaced = save_run(out_dir, spec)
        s = _run_sweep(
            spec, out_dir, scheduler, dask_local, workers, chunk_size, progress, security
        )
    return dataclasses.replace(s, replaced_spec=replaced)


def _run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    scheduler: str | None,
    dask_local: int | None,
    workers: int | None,
    chunk_size: int | None,
    progress: bool,
    security: Any,
) -> SweepSummary:
    if scheduler or dask_local is not None:
        # Dask starts its workers as new processes (no fork), so the points
        # can be expanded on a thread while the cluster starts
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="einsim-expand") as ex:
            expanding = ex.submit(expand, spec)
            backend = make_backend(
                scheduler=scheduler, dask_local=dask_local, workers=workers, security=security
            )
            try:
                points = expanding.result()
            except BaseException:
                backend.close()
                raise
    else:
        backend = make_backend(
            scheduler=scheduler, dask_local=dask_local, workers=workers, security=security
        )
        points = None
    try:
        if points is None:
            # the process pool forks its workers now (before any other thread
            # exists); they import the model stack while this expands
            backend.start()
            points = expand(spec)
        return run_points(points, out_dir, backend, chunk_size=chunk_size, progress=progress)
    finally:
        backend.close()

"""Sweep throughput: points per second on a 10,000-point spatial-array sweep.

    python experiments/bench_sweep.py [--points 10000] [--workers 2] [--mapper greedy-fast]

Runs the same sweep (TPU-like array: rows x cols x global buffer x DRAM
bandwidth, one GEMM) with the local process pool and with a Dask
LocalCluster of the same size, each into a fresh directory, checks that the
two result tables are identical, and prints a table. The wall time counts
the whole ``run_sweep`` call (engine start, evaluation, shard writes), not
the interpreter start. Target (issue 9): >= 2,000 points/s on 2 cores with
the analytical model and the greedy mapper.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

SPEC = """\
name: bench
mapper: {mapper}
objective: edp
model: analytical
hardware:
  - name: array
    base: tpu_like
    vary:
      rows: {{range: [8, 256], num: {n}}}
      cols: {{range: [8, 256], num: {n}}}
      global_buffer_bytes: {{log_range: [65536, 67108864], num: {n}}}
      dram_bandwidth_bytes_per_s: {{log_range: [2.5e10, 8.0e11], num: {n}}}
workloads:
  - name: gemm
    params: {{M: 1024, N: 1024, K: 1024}}
"""


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the workers)."""
    import resource

    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--points", type=int, default=10_000, help="approximate sweep size (a 4-D grid)"
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--mapper", default="greedy-fast", help="greedy-fast (no variant scoring) or greedy"
    )
    ap.add_argument("--engines", default="process,dask", help="comma-separated: process, dask")
    args = ap.parse_args()

    from experiments.sweep.engine import run_sweep
    from experiments.sweep.sampling import expand
    from experiments.sweep.shards import load_results
    from experiments.sweep.spec import parse_spec

    n = max(1, round(args.points**0.25))
    spec = parse_spec(SPEC.format(mapper=args.mapper, n=n), "bench.yaml")
    ids = [p.point_id for p in expand(spec)]
    print(
        f"sweep: {len(ids)} points (rows x cols x buffer x bandwidth = {n}^4), gemm 1024^3, mapper {args.mapper}, analytical model"
    )
    rows = []
    tables = {}
    with tempfile.TemporaryDirectory(prefix="einsim-bench-") as tmp:
        for engine in args.engines.split(","):
            out = Path(tmp) / engine
            kw = {"dask_local": args.workers} if engine == "dask" else {"workers": args.workers}
            c0 = _cpu_s()
            t0 = time.perf_counter()
            s = run_sweep(spec, out, progress=False, **kw)
            wall = time.perf_counter() - t0
            cpu = _cpu_s() - c0
            tables[engine] = load_results(out, ids)
            rows.append((s.engine, s.evaluated, s.ok, s.errors, wall, s.evaluated / wall, cpu))
    print(
        f"{'engine':34} {'points':>7} {'ok':>7} {'errors':>6} {'wall s':>8} {'points/s':>9} {'CPU s':>7} {'pts/CPU-s':>9}"
    )
    for eng, ev, ok, err, wall, rate, cpu in rows:
        print(
            f"{eng:34} {ev:7d} {ok:7d} {err:6d} {wall:8.2f} {rate:9.0f} {cpu:7.2f} {ev / cpu:9.0f}"
        )
    print(
        f"(CPU s: driver + workers, user + system; on {args.workers} otherwise idle cores the wall time "
        f"is at least CPU s / {args.workers}. load average now: {', '.join(f'{x:.1f}' for x in os.getloadavg())})"
    )
    if len(tables) == 2:
        a, b = tables.values()
        cols = sorted(set(a.columns) | set(b.columns))
        same = a.reindex(columns=cols).equals(b.reindex(columns=cols))
        print(f"results identical across engines: {same}")
    best = max(r[5] for r in rows)
    print(
        f"target 2,000 points/s: {'met' if best >= 2000 else 'NOT met'} (best {best:.0f}; {math.fsum(r[4] for r in rows):.1f} s in all)"
    )


if __name__ == "__main__":
    main()

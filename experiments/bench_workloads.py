"""Benchmark: building, checking and printing large cascades.

    python experiments/bench_workloads.py [--layers 1000,3333,10000] [--repeat 3]

For each MLP depth, prints

* the wall time of a whole ``einsim workload show mlp -p LAYERS=N`` (a fresh
  process: start-up, imports, parsing, validation and printing), best of
  ``--repeat`` runs, with the CPU time (user + system) of the fastest run and
  the largest peak resident memory: on a shared machine the CPU time is the
  steadier figure;
* in this process, the time to build the cascade (``workloads.load``: text
  generation, tokenising, parsing, validation, dependence order) and to
  format it back to text, and the time per Einsum.

An MLP of ``LAYERS`` layers is ``3*LAYERS - 1`` Einsums (matmul, bias, ReLU).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import workloads
from workloads.parser import format_cascade


def _show(layers: int, repeat: int) -> tuple[float, float, float, int]:
    """``einsim workload show``: best wall time, the CPU time of that run, the
    largest peak RSS (MB) and the exit status."""
    best, cpu, rss, rc = float("inf"), 0.0, 0.0, 0
    argv = [sys.executable, "-c", "from experiments.cli import run; run()"]
    argv += ["workload", "show", "mlp", "-p", f"LAYERS={layers}"]
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = rc = os.waitstatus_to_exitcode(status)
        if wall < best:
            best, cpu = wall, usage.ru_utime + usage.ru_stime
        rss = max(rss, usage.ru_maxrss / 1024)  # KiB on Linux
    return best, cpu, rss, rc


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default="1000,3333,10000,10923", help="comma-separated depths")
    ap.add_argument("--repeat", type=int, default=3, help="runs per depth (best is shown)")
    args = ap.parse_args(argv)

    print(
        f"{'LAYERS':>7} {'Einsums':>8} {'show wall s':>12} {'cpu s':>6} {'peak MB':>8} {'rc':>3} "
        f"{'build s':>8} {'format s':>9} {'us/Einsum':>10}"
    )
    for layers in (int(x) for x in args.layers.split(",")):
        wall, cpu, rss, rc = _show(layers, max(1, args.repeat))
        n = 3 * layers - 1
        show = f"{layers:>7} {n:>8} {wall:>12.2f} {cpu:>6.2f} {rss:>8.0f} {rc:>3}"
        if rc != 0:  # refused (too many Einsums): nothing to build here
            print(f"{show} {'-':>8} {'-':>9} {'-':>10}")
            continue
        t0 = time.perf_counter()
        cascade = workloads.load("mlp", LAYERS=layers)
        t1 = time.perf_counter()
        format_cascade(cascade)
        t2 = time.perf_counter()
        us = (t2 - t0) / n * 1e6
        print(f"{show} {t1 - t0:>8.2f} {t2 - t1:>9.2f} {us:>10.1f}")


if __name__ == "__main__":
    main()

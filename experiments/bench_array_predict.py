"""Benchmark: einsim's SCALE-Sim model against SCALE-Sim's own run time.

    python experiments/bench_array_predict.py [--repeat N]

Prints, over the rows of ``experiments/data/scalesim/reference.csv``:

* the CPU time per layer of :func:`sim.systolic.scalesim.predict_layer` (one call per
  layer) and of :func:`sim.systolic.scalesim.predict_many` (all layers in one call),
* the stall-free closed forms alone (:func:`sim.systolic.scalesim.closed_forms`,
  vectorised), in layers per second,
* SCALE-Sim 3.0.0's ``sim_cpu_s`` for the same rows (recorded in the CSV),
  with the median and total speed-up.

CPU time is ``time.process_time`` of this process (one core).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from experiments.commands.array_predict import read_layers
from sim.systolic.scalesim import closed_forms, predict_layer, predict_many

REF = Path(__file__).resolve().parent / "data" / "scalesim" / "reference.csv"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1, help="repeat the batch call N times")
    ap.add_argument("--layers", default=str(REF), help="layer CSV (default: the reference rows)")
    args = ap.parse_args(argv)

    _, rows, parsed = read_layers(args.layers)
    m, n, k, cfgs, convs = (parsed[x] for x in ("M", "N", "K", "configs", "convs"))
    ref_cpu = [float(r["sim_cpu_s"]) for r in rows] if "sim_cpu_s" in rows[0] else None

    single = []
    for i in range(len(rows)):
        t0 = time.process_time()
        predict_layer(m[i], n[i], k[i], cfgs[i], conv=convs[i])
        single.append(time.process_time() - t0)

    batch = []
    for _ in range(max(1, args.repeat)):
        t0 = time.process_time()
        predict_many(m, n, k, cfgs, convs=convs)
        batch.append(time.process_time() - t0)
    batch_s = min(batch)

    rows_arr = np.array([c.rows for c in cfgs])
    cols_arr = np.array([c.cols for c in cfgs])
    df = np.array([c.dataflow for c in cfgs])
    reps = 200
    big = 50
    mm, nn, kk = (np.tile(np.asarray(x), big) for x in (m, n, k))
    rr, cc, dd = np.tile(rows_arr, big), np.tile(cols_arr, big), np.tile(df, big)
    t0 = time.process_time()
    for _ in range(reps):
        closed_forms(mm, nn, kk, rr, cc, dd)
    cf_rate = reps * mm.size / (time.process_time() - t0)

    print(f"layers: {len(rows)} ({sum(c is not None for c in convs)} conv); CPU seconds, one core")
    print(f"{'':40s} {'median ms':>10s} {'mean ms':>9s} {'total s':>9s}")
    print(
        f"{'einsim predict_layer (one call a layer)':40s} {1e3 * statistics.median(single):10.3f} "
        f"{1e3 * sum(single) / len(rows):9.3f} {sum(single):9.3f}"
    )
    print(
        f"{'einsim predict_many (one call, all)':40s} {'':10s} {1e3 * batch_s / len(rows):9.3f} {batch_s:9.3f}"
    )
    print(f"closed forms only (stall-free numbers): {cf_rate:,.0f} layers/s, vectorised")
    if ref_cpu:
        print(
            f"{'SCALE-Sim 3.0.0 sim_cpu_s (from the CSV)':40s} {1e3 * statistics.median(ref_cpu):10.1f} "
            f"{1e3 * sum(ref_cpu) / len(rows):9.1f} {sum(ref_cpu):9.1f}"
        )
        speed = [r / s for r, s in zip(ref_cpu, single, strict=True) if s > 0]
        print(
            f"speed-up per layer (SCALE-Sim / predict_layer): median {statistics.median(speed):,.0f}x, "
            f"min {min(speed):,.0f}x; total {sum(ref_cpu) / sum(single):,.0f}x "
            f"(batch: {sum(ref_cpu) / batch_s:,.0f}x)"
        )
        slow = sorted(range(len(rows)), key=lambda i: -single[i])[:5]
        print(
            "slowest einsim layers: "
            + ", ".join(
                f"{rows[i]['layer']}/{rows[i].get('config', '')} {1e3 * single[i]:.0f} ms "
                f"(SCALE-Sim {ref_cpu[i]:.1f} s)"
                for i in slow
            )
        )


if __name__ == "__main__":
    main()

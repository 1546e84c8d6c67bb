"""Benchmark the analytical model: single calls, vectorised batches, SCALE-Sim layers.

    python -m experiments.bench_analytical [--n 100000] [--repeat 3] [--layers 20]

Prints a table of evaluations per second (one core; numpy's own threads are
not used by these element-wise kernels) and, for the first reference layers
of ``experiments/data/scalesim/reference.csv``, einsim's time per layer
against SCALE-Sim's own CPU time (``sim_cpu_s``).
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data" / "scalesim" / "reference.csv"


#: "wall" (perf_counter) or "cpu" (this process's CPU time: steadier on a
#: shared, loaded machine); set by --clock
CLOCK = {"fn": time.perf_counter}


def _best(fn: Callable[[], object], n: int, repeat: int) -> float:
    """Best-of-``repeat`` seconds per call over ``n`` calls."""
    clock = CLOCK["fn"]
    best = math.inf
    for _ in range(repeat):
        t0 = clock()
        for _ in range(n):
            fn()
        best = min(best, (clock() - t0) / n)
    return best


def _gemm(M: int, N: int, K: int, bits: int = 16):
    from workloads.ir import Access, AffineIndex, Einsum

    def ix(r: str) -> AffineIndex:
        return AffineIndex(((r, 1),))

    return Einsum(
        name="C",
        output=Access("C", (ix("m"), ix("n")), bits),
        inputs=(Access("A", (ix("m"), ix("k")), bits), Access("B", (ix("k"), ix("n")), bits)),
        map_op="mul",
        reduce_op="sum",
        rank_sizes_items=(("m", M), ("n", N), ("k", K)),
    )


def _arch(rows: int, cols: int, dataflow: str, gb_bytes: float | None = 4 << 20):
    from experiments.problem_sets import mac_array
    from hw_models.arch import Architecture, StorageLevel

    def lv(name, cap, bw, e, **kw):
        return StorageLevel(name, cap, 16, bw, bw, e, e, **kw)

    return Architecture(
        name=f"array{rows}x{cols}",
        family="spatial",
        clock_hz=1e9,
        levels=(
            lv("DRAM", None, 64.0, 200.0, shared_bw=True),
            lv("GlobalBuffer", gb_bytes, 256.0, 20.0, fanout_x=cols, fanout_y=rows),
            lv("PE_RF", 64, 8.0, 1.0, instances=rows * cols),
        ),
        compute=(mac_array(rows, cols, dataflow),),
        static_power_w=1.0,
    )


def _dataflow_mapping(e, df: str, rows: int, cols: int):
    """SCALE-Sim's mapping: Sr x Sc on the array, T in time below it, folds above."""
    from mappers.mapping import LevelMapping, Mapping

    size = e.rank_sizes
    sr, sc, t = {"os": ("m", "n", "k"), "ws": ("k", "n", "m"), "is": ("k", "m", "n")}[df]
    stationary = {"os": "C", "ws": "B", "is": "A"}[df]
    return Mapping(
        einsum=e.name,
        levels=(
            LevelMapping("DRAM"),
            LevelMapping(
                "GlobalBuffer",
                temporal={sr: math.ceil(size[sr] / rows), sc: math.ceil(size[sc] / cols)},
                spatial={sr: min(rows, size[sr]), sc: min(cols, size[sc])},
                spatial_axes={sr: "y", sc: "x"},
                order=(sr, sc),
            ),
            LevelMapping("PE_RF", temporal={t: size[t]}, keep=(stationary,)),
        ),
    )


def bench_single(repeat: int) -> list[tuple[str, float]]:
    from mappers.baselines.greedy import greedy_mapping
    from sim.analytical.model import evaluate

    e = _gemm(512, 512, 512)
    arch = _arch(128, 128, "ws")
    m = greedy_mapping(e, arch)
    evaluate(e, arch, m)
    rows = []
    n = 2000
    rows.append(("evaluate (validated)", _best(lambda: evaluate(e, arch, m), n, repeat)))
    rows.append(
        ("evaluate (check=False)", _best(lambda: evaluate(e, arch, m, check=False), n, repeat))
    )
    rows.append(("greedy_mapping", _best(lambda: greedy_mapping(e, arch), n, repeat)))
    return rows


def bench_batch(n: int, repeat: int) -> list[tuple[str, float, int]]:
    from mappers.baselines.greedy import greedy_mapping
    from sim.analytical.model import evaluate_batch

    rng = np.random.default_rng(0)
    e = _gemm(512, 512, 512)
    arch = _arch(128, 128, "ws")
    m = greedy_mapping(e, arch)
    ov = {
        "DRAM.read_bw_bytes_per_cycle": rng.uniform(8, 512, n),
        "GlobalBuffer.read_bw_bytes_per_cycle": rng.uniform(64, 4096, n),
        "GlobalBuffer.write_bw_bytes_per_cycle": rng.uniform(64, 4096, n),
        "clock_hz": rng.uniform(5e8, 2e9, n),
        "DRAM.read_energy_pj_per_word": rng.uniform(50, 500, n),
    }
    out = []
    evaluate_batch(e, arch, m, hw_overrides={k: v[:10] for k, v in ov.items()})
    out.append(
        (
            "batch: 1 mapping x N hardware points",
            _best(lambda: evaluate_batch(e, arch, m, hw_overrides=ov), 1, repeat),
            n,
        )
    )
    # N random (mapping, hardware) points: factor arrays + loop orders
    nl, nr = 3, 3
    tf = np.ones((n, nl, nr))
    sf = np.ones((n, nl, nr))
    sf[:, 1, 2] = 128  # k on rows
    sf[:, 1, 1] = 128  # n on cols
    for r_i, size in enumerate((512, 4, 4)):  # m fully temporal; n, k: 4 folds
        a = rng.integers(0, 4, n)
        b = rng.integers(0, 4, n)
        tf[:, 2, r_i] = 2.0**a if r_i == 0 else 1
        tf[:, 1, r_i] = 2.0**b
        tf[:, 0, r_i] = np.ceil(size / (tf[:, 1, r_i] * tf[:, 2, r_i]))
    order = np.stack([rng.permutation(nr) for _ in range(n * nl)]).reshape(n, nl, nr)
    out.append(
        (
            "batch: N mappings x N hardware points",
            _best(
                lambda: evaluate_batch(
                    e, arch, temporal=tf, spatial=sf, order=order, template=m, hw_overrides=ov
                ),
                1,
                repeat,
            ),
            n,
        )
    )
    return out


def bench_layers(limit: int, repeat: int) -> list[tuple[str, str, float, float]]:
    from sim.analytical.model import evaluate

    rows = []
    with DATA.open() as f:
        for row in csv.DictReader(f):
            if len(rows) >= limit:
                break
            M, N, K = int(row["M"]), int(row["N"]), int(row["K"])
            R, C, df = int(row["array_rows"]), int(row["array_cols"]), row["dataflow"]
            e = _gemm(M, N, K, bits=8)
            # SRAM capacity and stalls are sim/systolic/scalesim.py's; here the
            # buffer is unbounded and the timing is the model's cost per layer
            arch = _arch(R, C, df, gb_bytes=None)
            m = _dataflow_mapping(e, df, R, C)
            t = _best(lambda e=e, arch=arch, m=m: evaluate(e, arch, m), 50, repeat)
            rows.append((row["layer"], f"{R}x{C} {df}", t, float(row["sim_cpu_s"])))
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="points per vectorised batch")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--layers", type=int, default=20, help="SCALE-Sim layers to time")
    ap.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall time, or this process's CPU time (steadier on a busy machine)",
    )
    args = ap.parse_args(argv)
    CLOCK["fn"] = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"clock: {args.clock}")

    print(f"{'what':44s} {'time/call':>12s} {'points/s':>12s}")
    for name, t in bench_single(args.repeat):
        print(f"{name:44s} {t * 1e6:10.1f}us {1 / t:12,.0f}")
    for name, t, n in bench_batch(args.n, args.repeat):
        print(f"{name + f' (N={n:,})':44s} {t * 1e3:10.1f}ms {n / t:12,.0f}")
    print()
    print(
        f"{'SCALE-Sim layer':28s} {'array':12s} {'einsim':>10s} {'SCALE-Sim':>10s} {'speed-up':>10s}"
    )
    layers = bench_layers(args.layers, args.repeat)
    for name, arr, t, ref in layers:
        print(f"{name:28s} {arr:12s} {t * 1e6:8.1f}us {ref:9.3f}s {ref / t:10,.0f}x")
    if layers:
        tot = sum(t for _, _, t, _ in layers)
        ref = sum(r for _, _, _, r in layers)
        print(f"{'total':28s} {'':12s} {tot * 1e3:8.2f}ms {ref:9.1f}s {ref / tot:10,.0f}x")


if __name__ == "__main__":
    main()

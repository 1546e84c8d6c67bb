"""Benchmark of the discrete-event simulator (sim/des/simulate.py).

Prints simulated events per second (tile transfers + tile computes per
second of wall time and per second of CPU time, full tile-by-tile
simulation; the best of three runs), and the wall and CPU time of
whole workloads on ``fusemax_cloud`` with the greedy mapper's mappings and
steady-state extrapolation: a BERT-base layer at 4K tokens, the 1-pass
attention cascade at 1K and 64K tokens, and a ResNet-50 3x3 convolution.
The DES latency is shown next to the analytical model's.

    python experiments/bench_des.py [--quick]

Targets (issue 6): >= 200,000 events/s; BERT-base layer at 4K tokens under
10 s on one core.
"""

from __future__ import annotations

import argparse
import time


def _events_per_second(repeat: int) -> tuple[float, int, float, float]:
    """Full simulation of a many-tile GEMM on a 3-level toy array."""
    from hw_models.arch import Architecture, ComputeUnit, StorageLevel
    from mappers.mapping import LevelMapping, Mapping
    from sim.des.simulate import simulate
    from workloads.ir import Access, AffineIndex, Einsum

    def acc(t: str, *ranks: str) -> Access:
        return Access(t, tuple(AffineIndex(((r, 1),)) for r in ranks), 16)

    e = Einsum(
        "gemm", acc("Z", "m", "n"), (acc("A", "m", "k"), acc("B", "k", "n")), "mul", "sum",
        (("m", 256), ("n", 256), ("k", 256)),
    )  # fmt: skip
    lv = (
        StorageLevel("DRAM", None, 16, 16.0, 16.0, 1.0, 1.0),
        StorageLevel("GlobalBuffer", 1 << 20, 16, 64.0, 64.0, 1.0, 1.0, fanout_x=4, fanout_y=4),
        StorageLevel("PE_RF", None, 16, 1e9, 1e9, 1.0, 1.0, instances=16),
    )
    cu = ComputeUnit("pe_array", "array2d", 16, {"mac": 1.0}, {"mac": 1.0}, rows=4, cols=4)
    arch = Architecture("toy3", "spatial", 1e9, lv, (cu,))
    m = Mapping(
        "gemm",
        (
            LevelMapping("DRAM", {"m": 4, "n": 4, "k": 2}, order=("m", "n", "k")),
            LevelMapping(
                "GlobalBuffer", {"k": 16, "m": 16, "n": 16}, {"m": 4, "n": 4}, order=("m", "n", "k")
            ),
            LevelMapping("PE_RF", {"k": 8}),
        ),
        unit="pe_array",
    )
    best = 0.0
    events = 0
    wall = 0.0
    cpu = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        c = time.process_time()
        r = simulate(e, arch, m, full_sim=True)
        c = time.process_time() - c
        w = time.perf_counter() - t
        events = r.notes["events"]
        cpu = min(cpu, c)
        if events / w > best:
            best, wall = events / w, w
    return best, events, wall, cpu


def _workload(name: str, label: str, **params):
    import hw_models
    from mappers.baselines.greedy import greedy_mapping
    from sim.analytical.model import evaluate
    from sim.des.simulate import simulate_cascade
    from workloads import library

    arch = hw_models.load("fusemax_cloud")
    casc = library.build(name, **params)
    t0 = time.perf_counter()
    maps = {e.name: greedy_mapping(e, arch) for e in casc.einsums}
    t_map = time.perf_counter() - t0
    t0 = time.perf_counter()
    c0 = time.process_time()
    d = simulate_cascade(casc, arch, maps)
    c_des = time.process_time() - c0
    t_des = time.perf_counter() - t0
    an_cycles = sum(evaluate(e, arch, maps[e.name]).cycles for e in casc.einsums)
    st = d.notes["steady_state"]
    per = st.get("einsums", {})
    n_extra = sum(1 for v in per.values() if v.get("extrapolated"))
    steady = all(v.get("steady", True) for v in per.values())
    print(
        f"{label:<34} {len(casc.einsums):>4} {t_des:>9.3f} {c_des:>8.3f} {t_map:>8.3f} "
        f"{d.notes['events']:>9} "
        f"{d.latency_s * 1e3:>11.4g} {an_cycles / arch.clock_hz * 1e3:>11.4g} "
        f"{n_extra:>4}/{len(casc.einsums):<4} {'yes' if steady else 'no'}"
    )
    return t_des, c_des


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one repetition, smaller cases only")
    args = ap.parse_args()
    # how fast this machine runs plain Python right now (shared machines vary)
    t0 = time.perf_counter()
    acc = 0
    for i in range(10_000_000):
        acc += i
    print(
        f"machine check: a pure-Python loop of 10M additions took {time.perf_counter() - t0:.2f} s"
    )
    rate, events, wall, cpu = _events_per_second(1 if args.quick else 3)
    print(
        f"events/s (full simulation, {events} tile events in {wall:.2f} s wall, {cpu:.2f} s CPU): "
        f"{rate:,.0f} wall, {events / cpu:,.0f} CPU  (target >= 200,000)"
    )
    print()
    print(
        f"{'workload on fusemax_cloud':<34} {'Eins':>4} {'DES wall s':>9} {'CPU s':>8} {'map s':>8} "
        f"{'events':>9} "
        f"{'DES ms':>11} {'analyt. ms':>11} {'extrap.':>9} steady"
    )
    t_bert, c_bert = _workload(
        "transformer-layer", "BERT-base layer, 4K tokens", model="bert", seq=4096
    )
    _workload("attention-1pass", "attention 1-pass, BERT, 1K tokens", H=12, M=1024, P=1024)
    if not args.quick:
        _workload("attention-1pass", "attention 1-pass, BERT, 64K tokens", H=12, M=65536, P=65536)
        _workload(
            "transformer-layer",
            "BERT-base layer, 4K tok, batch 64",
            model="bert",
            seq=4096,
            batch=64,
        )
    # ResNet-50 conv2_x 3x3 layer: 64 -> 64 channels, 56x56 (He et al., CVPR 2016, Table 1)
    _workload("conv2d", "ResNet-50 conv2_x 3x3 (56x56x64)", N=1, C=64, H=58, W=58, K=64, R=3, S=3)
    print()
    print(f"BERT-base layer at 4K tokens: {t_bert:.2f} s wall, {c_bert:.2f} s CPU (target < 10 s)")


if __name__ == "__main__":
    main()

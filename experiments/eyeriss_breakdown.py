"""Energy breakdown of the Eyeriss v1 preset on ResNet-50 layers.

Maps each layer onto ``eyeriss_v1`` (``--mapper``, default the ILP, with the
energy objective) through the front door and prints, per layer and over
all of them, the shares of the energy in the PE scratchpads (RF), the
inter-PE network (array), the global buffer, DRAM, the MACs (ALU) and
leakage: the categories of the Eyeriss papers' breakdowns (see
``docs/peers.md`` for the comparison and its limits).

Run: ``python -m experiments.eyeriss_breakdown [--mapper ilp|greedy|...]
[--time-limit S] [--all]`` (``--all``: the ten ResNet-50 layers of
``experiments.problem_sets``; default its four quick ones).
"""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

import hw_models
import sim
from experiments.problem_sets import resnet_layers

#: energy_breakdown_pj key -> category
CATEGORIES = {
    "PE_RF": "RF",
    "GlobalBuffer.network": "array",
    "GlobalBuffer": "buffer",
    "DRAM": "DRAM",
    "pe_array.mac": "ALU",
    "static": "leakage",
}
ORDER = ("RF", "array", "buffer", "DRAM", "ALU", "leakage")


def shares(breakdown: dict[str, float]) -> dict[str, float]:
    """Category -> energy (pJ) of one breakdown."""
    out = dict.fromkeys(ORDER, 0.0)
    for k, v in breakdown.items():
        out[CATEGORIES.get(k, "leakage" if k == "static" else "ALU")] += v
    return out


def overflows(einsum, arch, mapping) -> list[str]:
    """The per-tensor memories whose tile (double buffered where the memory
    is) exceeds the memory's capacity, recomputed from the tree's memories:
    an independent check of the mappers' per-memory rule
    (``mappers.mapping.capacity_groups``), so the column should read "-"."""
    from hw_models.memories import memory_for
    from mappers.mapping import kept_tensors, level_tiles, tensor_roles, tile_footprint

    roles = tensor_roles(einsum)
    acc = {a.tensor: a for a in reversed(einsum.accesses)}
    out = []
    tiles = level_tiles(einsum, mapping)
    for i, (lv, keep) in enumerate(
        zip(arch.levels, kept_tensors(einsum, arch, mapping), strict=True)
    ):
        if not lv.memories:
            continue
        for t in keep:
            mem = memory_for(arch, i, t, roles[t])
            if mem is None or mem.capacity_bytes is None:
                continue
            need = tile_footprint(acc[t], tiles[i], einsum.rank_sizes) * acc[t].bits / 8
            need *= 2 if mem.double_buffered else 1
            if need > mem.capacity_bytes:
                out.append(f"{mem.name} {need:g}/{mem.capacity_bytes:g} B")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mapper", default="ilp", help="mapper of mappers.registry (default ilp)")
    ap.add_argument(
        "--time-limit", type=float, default=10.0, help="mapper time limit per layer (s)"
    )
    ap.add_argument("--all", action="store_true", help="all ten ResNet-50 layers")
    args = ap.parse_args(argv)
    arch = hw_models.load("eyeriss_v1")
    total = dict.fromkeys(ORDER, 0.0)
    rows = []
    for name, einsum in tqdm(resnet_layers(quick=not args.all), desc="layers", leave=False):
        ev = sim.evaluate(
            einsum,
            arch,
            mapper=args.mapper,
            objective="energy",
            time_limit_s=args.time_limit,
            workers=1,
        )
        s = shares(ev.metrics.energy_breakdown_pj)
        for k in ORDER:
            total[k] += s[k]
        over = overflows(einsum, arch, ev.mappings[einsum.name])
        rows.append((name, ev.metrics.energy_pj, s, ", ".join(over) or "-"))
    print(f"eyeriss_v1, mapper {args.mapper}, objective energy: shares of the energy")
    print(
        f"{'layer':22s} {'uJ':>9s} "
        + " ".join(f"{k:>8s}" for k in ORDER)
        + "  scratchpads overflowing (tile/capacity)"
    )
    for name, e, s, over in [*rows, ("all", sum(total.values()), total, "")]:
        cells = " ".join(f"{100 * s[k] / e:7.1f}%" for k in ORDER)
        print(f"{name:22s} {e / 1e6:9.2f} {cells}  {over}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

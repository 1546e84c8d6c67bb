"""einsim against Timeloop on Timeloop's reference mapping.

The Timeloop/Accelergy exercises ship, for their eyeriss_like and
simba_like designs and one convolution layer, Timeloop's mapping
(``timeloop-mapper.map.yaml``) and its per-level access counts
(``timeloop-mapper.stats.txt``), copied into ``peer_examples/timeloop``.
The mapping goes to einsim through :func:`mappers.timeloop.from_timeloop`
and einsim costs it through the front door. Differences, explained in
``docs/peers.md``: Timeloop charges the drain of an output tile to the
parent (an update there) and not as a read of the child; on simba_like,
Timeloop reuses the input halo between consecutive tiles, einsim fetches
it again.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import sim
from hw_models.importers import import_file
from mappers.timeloop import from_timeloop, load_timeloop_map
from workloads import library

TL = Path(__file__).resolve().parent / "peer_examples" / "timeloop"
TENSOR = {"Weights": "W", "Inputs": "I", "Outputs": "O"}


def timeloop_counts(path: Path) -> dict[str, dict[str, dict[str, float]]]:
    """level -> dataspace -> reads, fills, updates (all utilized instances), energy."""
    blocks = re.split(r"^=== (\w+) ===$", path.read_text(), flags=re.M)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, body in zip(blocks[1::2], blocks[2::2], strict=True):
        for ds in TENSOR:
            m = re.search(rf"^    {ds}:\n(.*?)(?=^    \w+:\n|\Z)", body, flags=re.M | re.S)
            if not m:
                continue

            def num(key: str, text: str = m.group(1)) -> float:
                return float(re.search(rf"{key}\s*:\s*([\d.]+)", text).group(1))

            inst = num(r"Utilized instances \(max\)")
            row = {
                k: num(rf"Scalar {k} \(per-instance\)") * inst
                for k in ("reads", "fills", "updates")
            }
            row["energy"] = num(r"Energy \(total\)")
            out.setdefault(name, {})[ds] = row
    return out


def run(name: str):
    d = TL / name
    arch = import_file(
        d / "arch.yaml",
        "timeloop",
        ert=d / "timeloop-mapper.ERT.yaml",
        art=d / "timeloop-mapper.ART.yaml",
    ).arch
    p = yaml.safe_load((d / "parsed-processed-input.yaml").read_text())["problem"]["instance"]
    cascade = library.build(
        "conv2d",
        N=p["N"],
        C=p["C"],
        K=p["M"],
        H=(p["P"] - 1) * p["Hstride"] + p["R"],
        W=(p["Q"] - 1) * p["Wstride"] + p["S"],
        R=p["R"],
        S=p["S"],
        stride=p["Hstride"],
        bits=8,
    )
    (einsum,) = cascade.einsums.values() if isinstance(cascade.einsums, dict) else cascade.einsums
    imp = from_timeloop(einsum, arch, load_timeloop_map(d / "timeloop-mapper.map.yaml"))
    metrics = sim.evaluate(cascade, arch, mappings={einsum.name: imp.mapping}).metrics
    return arch, imp, metrics, timeloop_counts(d / "timeloop-mapper.stats.txt")


def level_of(arch, memory: str) -> str:
    return next(lv.name for lv in arch.levels if any(m.name == memory for m in lv.memories))


@pytest.mark.parametrize("name", ["eyeriss_like", "simba_like"])
def test_counts_on_timeloops_reference_mapping(name):
    arch, imp, m, tl = run(name)
    assert imp.left_out == ()
    halo = {"simba_like": {("GlobalBuffer", "I"), ("DRAM", "I"), ("PEInputBuffer", "I")}}
    names = [lv.name for lv in arch.levels]
    for memory, per_ds in tl.items():
        if not any(memory == x.name for lv in arch.levels for x in lv.memories):
            continue
        level = level_of(arch, memory)
        for ds, row in per_ds.items():
            t = TENSOR[ds]
            a = m.accesses[level][t]
            if (memory, t) in halo.get(name, ()):
                # einsim fetches the halo of each sliding-window tile again
                assert a.reads >= row["reads"] and a.writes >= row["fills"]
                assert a.reads <= 1.14 * row["reads"], (memory, a.reads, row["reads"])
                continue
            if t != "O":
                assert (a.reads, a.writes, a.updates) == (row["reads"], row["fills"], 0), memory
                continue
            # outputs: every write (first, accumulate, refill) is Timeloop's update or fill
            assert a.writes + a.updates == row["updates"] + row["fills"], memory
            # einsim also reads the child when a tile drains to the parent; the
            # drains are the parent's writes times the spatial reduction between
            i = names.index(level)
            drains = 0.0
            if i > 0:
                parent = max(j for j in range(i) if "O" in m.accesses[names[j]])
                red = 1
                for j in range(parent, i):
                    lm = imp.mapping.levels[j]
                    red *= lm.spatial.get("c", 1) * lm.spatial.get("r", 1) * lm.spatial.get("s", 1)
                drains = m.accesses[names[parent]]["O"].writes * red
            assert a.reads + a.updates - drains == row["reads"], memory


def test_eyeriss_like_dram_energy_equals_timeloops():
    arch, _imp, m, tl = run("eyeriss_like")
    assert m.energy_breakdown_pj["DRAM"] == pytest.approx(
        sum(r["energy"] for r in tl["DRAM"].values()), rel=1e-9
    )
    assert m.energy_breakdown_pj["mac.mac"] == pytest.approx(2250969.22, rel=1e-6)

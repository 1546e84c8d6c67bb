"""einsim against ZigZag 3.9.1 on ZigZag's own chosen mapping.

ZigZag's outputs (its LOMA mapper's choice for one conv layer on its
bundled ``tpu_like`` and ``eyeriss_like``, and its per-memory access
counts in memory words and energies) were produced by ZigZag itself with
``peer_examples/zigzag/outputs/run_zigzag.py`` and are pinned there. The
mapping goes to einsim through :func:`mappers.zigzag.from_zigzag` and
einsim costs it through the front door (``sim.evaluate``).

Every count is equal except the output's first visits: ZigZag charges a
read of the partial sum below (and a refill from above) on every visit of
an output tile, the first included; einsim does not read a partial sum
that does not exist yet. Those differences are asserted in closed form:
the share 1/R of the visits that are first, R the product of the
reduction loops over which the tile is revisited (``docs/peers.md``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import sim
from hw_models.importers import import_file
from mappers.mapping import MappingError, load_mappings, mapping_to_dict
from mappers.zigzag import from_zigzag, parse_spatial
from sim.analytical.model import evaluate as evaluate_scalar
from workloads import library

ZZ = Path(__file__).resolve().parent / "peer_examples" / "zigzag"
DIMS = {"B": "n", "K": "k", "C": "c", "OY": "p", "OX": "q", "FY": "r", "FX": "s"}
TENSOR = {"O": "O", "W": "W", "I": "I"}


def run(name: str):
    zz = json.loads((ZZ / "outputs" / f"{name}_conv.json").read_text())
    L = dict(zip(zz["layer"]["loop_dims"], zz["layer"]["loop_sizes"], strict=True))
    cascade = library.build(
        "conv2d",
        N=1,
        C=L["C"],
        K=L["K"],
        H=L["OY"] + L["FY"] - 1,
        W=L["OX"] + L["FX"] - 1,
        R=L["FY"],
        S=L["FX"],
        bits=8,
    )
    (einsum,) = cascade.einsums.values() if isinstance(cascade.einsums, dict) else cascade.einsums
    arch = import_file(ZZ / f"{name}.yaml", "zigzag").arch
    imp = from_zigzag(
        einsum,
        arch,
        temporal=zz["temporal_mapping"],
        memories={op: [m["memory"] for m in ms] for op, ms in zz["memories"].items()},
        spatial=parse_spatial(zz["mapping_in"][0]["spatial_mapping"]),
        operands=TENSOR,
        dims=DIMS,
    )
    metrics = sim.evaluate(cascade, arch, mappings={einsum.name: imp.mapping}).metrics
    return zz, arch, einsum, imp, metrics


def words(zz, arch, metrics, tensor: str, memory: str):
    """einsim's (reads + updates, writes + updates) of ``tensor`` in
    ``memory``'s words, and ZigZag's (reads, writes) there."""
    row = next(r for r in zz["memories"][tensor] if r["memory"] == memory)
    level = next(lv for lv in arch.levels if any(m.name == memory for m in lv.memories))
    r, w, u = metrics.notes["access_words"][level.name][TENSOR[tensor]]
    zr = row["RD_OUT_TO_LOW"] + row["RD_OUT_TO_HIGH"]
    zw = row["WR_IN_BY_LOW"] + row["WR_IN_BY_HIGH"]
    return (r + u, w + u), (zr, zw), row


@pytest.mark.parametrize("name", ["tpu_like", "eyeriss_like"])
def test_input_and_weight_counts_equal_zigzags(name):
    zz, arch, einsum, imp, m = run(name)
    assert imp.left_out == ()
    for op in ("W", "I"):
        for row in zz["memories"][op]:
            got, want, _ = words(zz, arch, m, op, row["memory"])
            assert got == pytest.approx(want, rel=1e-12), (op, row["memory"])
    # the scalar path gives what the front door's batch path gives
    alone = evaluate_scalar(einsum, arch, imp.mapping)
    assert alone.energy_pj == pytest.approx(m.energy_pj, rel=1e-12)


def test_tpu_like_outputs_and_energy():
    zz, arch, _e, _imp, m = run("tpu_like")
    for mem in ("sram_2MB", "dram"):  # final outputs only: equal
        got, want, _ = words(zz, arch, m, "O", mem)
        assert got == pytest.approx(want, rel=1e-12)
    # rf_2B accumulates over C2 FY3 FX3 = 18 MACs per visit; ZigZag also
    # reads the partial sum on the first of them
    (r, w), (zr, zw), row = words(zz, arch, m, "O", "rf_2B")
    assert w == pytest.approx(zw) and zr - r == pytest.approx(row["RD_OUT_TO_LOW"] / 18)
    assert m.energy_breakdown_pj["pe_array.mac"] == pytest.approx(zz["mac_energy_pj"])
    assert m.energy_pj == pytest.approx(zz["energy_total_pj"], rel=0.02)


def test_eyeriss_like_outputs_and_energy():
    zz, arch, _e, imp, m = run("eyeriss_like")
    # ZigZag's per-operand loop boundaries, carried as resident loops
    assert imp.mapping.resident == {
        "W": {
            "sram_8KB+sram_64KB": ("sram_1M:k", "sram_1M:s"),
            "rf_64B_A+rf_64B_W+rf_16B": ("sram_8KB+sram_64KB:p",),
        },
        "I": {"rf_64B_A+rf_64B_W+rf_16B": ("sram_8KB+sram_64KB:p", "sram_1M:k")},
    }
    got, want, _ = words(zz, arch, m, "O", "dram")
    assert got == pytest.approx(want, rel=1e-12)
    # one in 36 MAC accumulations (C4 FY3 in the register, FX3 above) starts
    # a partial sum; one in 3 visits of each buffer's tile (FX3) is its first
    (r, w), (zr, zw), row = words(zz, arch, m, "O", "rf_16B")
    assert zr - r == pytest.approx(row["RD_OUT_TO_LOW"] / 36)
    assert zw - w == pytest.approx(row["WR_IN_BY_HIGH"] / 3)
    (r, w), (zr, zw), row = words(zz, arch, m, "O", "sram_8KB")
    assert zr - r == pytest.approx(row["RD_OUT_TO_LOW"] / 3)
    assert zw - w == pytest.approx(row["WR_IN_BY_HIGH"] / 3)
    (r, w), (zr, zw), row = words(zz, arch, m, "O", "sram_1M")
    assert zr - r == pytest.approx(row["RD_OUT_TO_LOW"] / 3) and w == pytest.approx(zw)
    assert m.energy_breakdown_pj["pe_array.mac"] == pytest.approx(zz["mac_energy_pj"])
    assert m.energy_pj == pytest.approx(zz["energy_total_pj"], rel=0.02)


def test_resident_loops_round_trip_and_are_checked(tmp_path):
    zz, arch, einsum, imp, _m = run("eyeriss_like")
    f = tmp_path / "m.yaml"
    import yaml

    f.write_text(yaml.safe_dump(mapping_to_dict(imp.mapping)))
    assert load_mappings(f)[einsum.name] == imp.mapping
    from dataclasses import replace

    from mappers.mapping import validate

    bad = replace(imp.mapping, resident={"I": {"rf_64B_A+rf_64B_W+rf_16B": ("sram_1M:k",)}})
    with pytest.raises(MappingError, match="innermost active loops"):
        validate(bad, einsum, arch)
    bad = replace(imp.mapping, resident={"I": {"rf_64B_A+rf_64B_W+rf_16B": ("dram:k",)}})
    with pytest.raises(MappingError, match="is not a temporal loop"):
        validate(bad, einsum, arch)


def test_a_bad_zigzag_spatial_mapping_is_one_clear_error():
    with pytest.raises(MappingError, match="is not 'DIM, FACTOR'"):
        parse_spatial({"D1": ["K 32"]})


def test_several_tree_designs_in_one_batch_keep_their_own_memories():
    """sim.evaluate_designs costs designs of one structure in one batch; each
    keeps its own per-tensor memories (here: one with dearer registers)."""
    import dataclasses

    zz, arch, einsum, imp, m = run("tpu_like")
    lv = arch.levels[2]
    rf = tuple(
        dataclasses.replace(x, read_energy_pj_per_word=2 * x.read_energy_pj_per_word)
        for x in lv.memories
    )
    dear = dataclasses.replace(
        arch, levels=(*arch.levels[:2], dataclasses.replace(lv, memories=rf))
    )
    both = sim.evaluate_designs(einsum, [arch, dear], mappings={einsum.name: imp.mapping})
    assert both[0].metrics.energy_pj == pytest.approx(m.energy_pj, rel=1e-12)
    alone = sim.evaluate(einsum, dear, mappings={einsum.name: imp.mapping}).metrics
    assert both[1].metrics.energy_pj == pytest.approx(alone.energy_pj, rel=1e-12)
    assert alone.energy_pj > m.energy_pj

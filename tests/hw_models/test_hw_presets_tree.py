"""The presets of real designs: Eyeriss v1 as published, the Timeloop
example's Simba-like chiplet and AccelForge's TPU v4i.

Eyeriss v1 is checked against the published figures (Chen et al., ISSCC
2016 / JSSC 2017 / ISCA 2016: docs/references.md, "Hardware descriptions");
the other two against the importer run on the peers' own files.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import hw_models
from hw_models import Precision
from hw_models.errors import HardwareError
from hw_models.importers import import_file
from hw_models.memories import memory_for

PEERS = Path(__file__).resolve().parent / "peer_examples"


def test_eyeriss_v1_as_published():
    a = hw_models.load("eyeriss_v1")
    cu = a.unit("pe_array")
    assert (cu.rows, cu.cols, cu.pes) == (12, 14, 168)
    assert a.clock_hz == 200e6
    assert a.level("GlobalBuffer").capacity_bytes == 108 * 1024
    assert a.level("GlobalBuffer").holds == ("input", "output")
    pe = a.level("PE_RF")
    assert pe.instances == 168
    entries = {m.name: m.capacity_bytes * 8 / m.word_bits for m in pe.memories}
    assert entries == {"ifmap_spad": 12, "filter_spad": 224, "psum_spad": 24}
    assert all(m.word_bits == 16 for m in pe.memories)
    assert cu.precision == Precision(16, 16, 16, 16)
    # ISCA 2016 normalised energy per 16-bit access: RF 1, array 2, buffer 6, DRAM 200 x MAC
    mac = cu.energy_pj_per_op["mac"]
    roles = {"A": ("input",), "B": ("weight",), "C": ("output",)}
    for t, r in roles.items():
        assert memory_for(a, "PE_RF", t, r).read_energy_pj_per_word == pytest.approx(mac, rel=1e-7)
    assert a.level("GlobalBuffer").read_energy_pj_per_word == pytest.approx(6 * mac, rel=1e-7)
    assert a.level("GlobalBuffer").network_energy_pj_per_word == pytest.approx(2 * mac, rel=1e-7)
    assert a.level("DRAM").read_energy_pj_per_word == pytest.approx(200 * mac, rel=1e-7)
    assert memory_for(a, "GlobalBuffer", "B", ("weight",)) is None
    # a sweep variant keeps the spads (the overrides are re-applied)
    var = hw_models.derive(a, {"global_buffer_bytes": 64 * 1024, "clock_hz": 100e6})
    assert var.level("PE_RF") == pe and var.level("GlobalBuffer").holds == ("input", "output")


@pytest.mark.parametrize(
    "preset, tool, file, opts",
    [
        (
            "simba_like",
            "timeloop",
            "timeloop/simba_like/arch.yaml",
            {
                "ert": PEERS / "timeloop/simba_like/timeloop-mapper.ERT.yaml",
                "art": PEERS / "timeloop/simba_like/timeloop-mapper.ART.yaml",
            },
        ),
        ("tpu_v4i", "accelforge", "accelforge/tpu_v4i.yaml", {}),
    ],
)
def test_preset_is_the_import_of_the_peer_example(preset, tool, file, opts):
    a = hw_models.load(preset)
    imported = import_file(PEERS / file, tool, name=preset, **opts).arch
    assert dataclasses.replace(imported, sources=a.sources) == a


def test_tree_presets_derive_only_to_themselves():
    a = hw_models.load("tpu_v4i")
    assert hw_models.derive(a, {}) is a
    with pytest.raises(HardwareError, match="tree without spatial family parameters"):
        hw_models.derive(a, {"rows": 64})

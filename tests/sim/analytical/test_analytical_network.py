"""The fan-out network's energy (``StorageLevel.network_energy_pj_per_word``).

Closed form on eyeriss_v1 (network below the global buffer): with every
reduction inside the PEs, the network carries each element the PEs are
filled with (inputs from the buffer, weights from DRAM through it) and each
output tile drained from them, once per PE copy.
"""

from __future__ import annotations

import pytest

import hw_models
import sim
from mappers.mapping import LevelMapping, Mapping
from sim.analytical.model import evaluate
from workloads import library


def test_network_energy_is_the_words_it_carries():
    arch = hw_models.load("eyeriss_v1")
    (einsum,) = library.build("conv2d", N=1, C=1, H=6, W=6, K=8, R=3, S=3).einsums
    m = Mapping(
        einsum=einsum.name,
        levels=(
            LevelMapping("DRAM"),
            LevelMapping(
                "GlobalBuffer",
                temporal={"q": 4},
                spatial={"k": 8, "p": 4},
                spatial_axes={"k": "y", "p": "x"},
            ),
            LevelMapping("PE_RF", temporal={"r": 3, "s": 3}),
        ),
    )
    met = sim.evaluate(einsum, arch, mappings={einsum.name: m}).metrics
    pe = met.accesses["PE_RF"]
    carried = pe["I"].writes + pe["W"].writes + pe["O"].reads  # 16-bit words
    e_word = arch.level("GlobalBuffer").network_energy_pj_per_word
    assert met.energy_breakdown_pj["GlobalBuffer.network"] == pytest.approx(carried * e_word)
    # 32 PEs, over q 4: four 3 x 3 input windows, one 3 x 3 weight tile
    # (kept over q, which does not index it), four outputs drained
    assert carried == 32 * (4 * 9 + 9 + 4)
    assert evaluate(einsum, arch, m).energy_pj == pytest.approx(met.energy_pj, rel=1e-12)
    assert met.energy_pj == pytest.approx(sum(met.energy_breakdown_pj.values()), rel=1e-12)

"""The architecture tree: levels of per-tensor memories, ports, precision.

Checked against closed forms (sums, capacity-weighted means), against the
one-memory level it generalises (same figures, same analytical numbers),
and for the file errors (file, line, field).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
from builders import gemm

import hw_models
import hw_models.importers
from hw_models import Memory, Port, Precision
from hw_models.errors import HardwareError
from hw_models.memories import (
    SUMMARY_FIELDS,
    level_memories,
    memory_figures,
    memory_for,
    memory_level,
    memory_table,
    serving_memory,
    shared_along,
    summary_fields,
    tensor_bits,
    tensors_by_memory,
    with_memories,
)

ROLES = {"C": ("output",), "A": ("input",), "B": ("weight",)}
#: what a level's own memory stands for (its summary fields less holds/precision)
MEMORY_FIELDS = tuple(k for k in SUMMARY_FIELDS if k not in ("holds", "precision"))


def spads() -> list[Memory]:
    """Eyeriss-like PE scratchpads: 12 ifmap, 224 filter, 24 psum words of 16 bits."""
    return [
        Memory("ifmap_spad", ("input",), 24, 16, 2, 2, 0.2, 0.18, area_mm2=0.001),
        Memory(
            "filter_spad",
            ("weight",),
            448,
            16,
            4,
            2,
            1.9,
            1.7,
            banks=2,
            ports=(Port("r1", "read", 2.0), Port("r2", "read", 2.0), Port("w1", "write", 2.0)),
            leakage_w=1e-6,
        ),
        Memory(
            "psum_spad",
            ("output",),
            48,
            16,
            2,
            2,
            0.25,
            0.22,
            double_buffered=False,
            precision=Precision(psum_bits=24, output_bits=16),
        ),
    ]


def tree_arch():
    base = hw_models.load("eyeriss_like")
    pe = with_memories(base.levels[2], spads())
    return dataclasses.replace(base, levels=(*base.levels[:2], pe))


# ------------------------------------------------ the special case: one memory


@pytest.mark.parametrize("name", hw_models.list_presets())
def test_one_memory_level_is_the_level_itself(name):
    """memory_for on a shared level returns exactly the level's figures."""
    arch = hw_models.load(name)
    for i, lv in enumerate(arch.levels):
        if lv.memories:
            continue  # a level of per-tensor memories (the presets of real designs)
        (mem,) = level_memories(lv)
        assert mem.name == lv.name and mem.serves == lv.holds
        for key in MEMORY_FIELDS:
            assert getattr(mem, key) == getattr(lv, key), (name, lv.name, key)
        for tensor, roles in ROLES.items():
            got = memory_for(arch, i, tensor, roles)
            held = lv.holds is None or tensor in lv.holds or roles[0] in lv.holds
            assert (got is mem or got == mem) if held else got is None
        assert arch.memory(lv.name) == mem


@pytest.mark.parametrize("name", ["eyeriss_like", "tpu_like", "fusemax_cloud", "h100", "u280"])
def test_per_tensor_figures_of_a_shared_level_are_the_level_figures(name):
    """What a cost model reading "level L, tensor T" gets on today's presets:
    exactly the per-level values, for every tensor."""
    arch = hw_models.load(name)
    figs = memory_figures(arch, ROLES)
    for i, lv in enumerate(arch.levels):
        cap = math.inf if lv.capacity_bytes is None else lv.capacity_bytes
        assert figs["capacity_bytes"][i] == [cap] * 3
        for key in ("word_bits", "read_bw_bytes_per_cycle", "read_energy_pj_per_word", "leakage_w"):
            assert figs[key][i] == [getattr(lv, key)] * 3
    assert tensors_by_memory(arch, ROLES) == [{lv.name: ("C", "A", "B")} for lv in arch.levels]


def test_bypass_by_holds_gives_no_memory():
    arch = hw_models.load("eyeriss_like")
    gb = dataclasses.replace(arch.levels[1], holds=("input", "output"))
    arch = dataclasses.replace(arch, levels=(arch.levels[0], gb, arch.levels[2]))
    assert memory_for(arch, "GlobalBuffer", "B", ("weight",)) is None
    assert memory_for(arch, "GlobalBuffer", "A", ("input",)).name == "GlobalBuffer"
    # a tensor named in holds is served by name, whatever its role
    assert memory_for(arch, "GlobalBuffer", "output", ("weight",)) is not None


def test_single_memory_level_costs_what_the_plain_level_costs():
    """A level rebuilt from its own one memory has the same figures, so the
    analytical model (which reads the level) gives the same numbers."""
    from mappers.dataflows import dataflow_mapping
    from sim.analytical.model import evaluate

    arch = hw_models.load("eyeriss_like")
    rebuilt = tuple(
        dataclasses.replace(with_memories(lv, level_memories(lv)), memories=())
        for lv in arch.levels
    )
    assert rebuilt == arch.levels
    wrapped = dataclasses.replace(
        arch, levels=tuple(with_memories(lv, level_memories(lv)) for lv in arch.levels)
    )
    hw_models.validate(wrapped)
    e = gemm(96, 200, 50, bits=8)
    for flow in ("os", "ws", "is"):
        a = evaluate(e, arch, dataflow_mapping(e, arch, flow), check=False)
        b = evaluate(e, wrapped, dataflow_mapping(e, wrapped, flow), check=False)
        assert (a.cycles, a.energy_pj) == (b.cycles, b.energy_pj)


# ---------------------------------------------------------------- the summary


def test_summary_closed_form():
    mems = spads()
    s = summary_fields(mems)
    assert s["capacity_bytes"] == 24 + 448 + 48
    assert s["word_bits"] == 16
    assert s["read_bw_bytes_per_cycle"] == 2 + 4 + 2
    assert s["banks"] == 1 + 2 + 1
    assert s["holds"] == ("input", "weight", "output")
    assert s["double_buffered"] is True
    assert s["leakage_w"] == pytest.approx(1e-6)
    assert s["area_mm2"] == pytest.approx(0.001)
    # capacity-weighted mean energy per bit, times the widest word
    want = (0.2 / 16 * 24 + 1.9 / 16 * 448 + 0.25 / 16 * 48) / 520 * 16
    assert s["read_energy_pj_per_word"] == pytest.approx(want, rel=1e-12)
    lv = memory_level("PE", mems, instances=168)
    assert lv.capacity_bytes == 520 and lv.instances == 168 and lv.memories == tuple(mems)
    with pytest.raises(HardwareError, match="comes from its memories"):
        memory_level("PE", mems, capacity_bytes=5)


def test_memory_lookup_tensor_bits_and_sharing():
    arch = tree_arch()
    table = memory_table(arch, ROLES)
    assert [t["B"].name for t in table] == ["DRAM", "GlobalBuffer", "filter_spad"]
    figs = memory_figures(arch, ROLES)
    assert figs["capacity_bytes"][2] == [48, 24, 448]  # C, A, B: psum, ifmap, filter
    assert figs["read_energy_pj_per_word"][2] == [0.25, 0.2, 1.9]
    assert tensors_by_memory(arch, ROLES)[2] == {
        "psum_spad": ("C",),
        "ifmap_spad": ("A",),
        "filter_spad": ("B",),
    }
    zz = hw_models.importers.import_file(
        Path(__file__).parent / "peer_examples" / "zigzag" / "eyeriss_like.yaml", "zigzag"
    ).arch
    groups = tensors_by_memory(zz, ROLES)
    assert groups[1] == {"sram_1M": ("C", "A")}  # inputs and psums share sram_1M's capacity
    assert memory_figures(zz, ROLES)["capacity_bytes"][2] == [8192, None, 65536]
    assert table[2]["A"].name == "ifmap_spad" and table[2]["C"].name == "psum_spad"
    assert arch.memory("filter_spad").capacity_bytes == 448
    # precision: the memory's, else the unit's, else the workload's
    assert tensor_bits(arch, 2, "C", ("output",), default_bits=8, partial=True) == 24
    assert tensor_bits(arch, 2, "C", ("output",), default_bits=8) == 16
    assert tensor_bits(arch, 2, "A", ("input",), default_bits=8) == 8
    cu = dataclasses.replace(arch.compute[0], precision=Precision(8, 8, 32, 8))
    arch2 = dataclasses.replace(arch, compute=(cu,))
    assert tensor_bits(arch2, 1, "C", ("output",), default_bits=16, partial=True) == 32
    assert tensor_bits(arch2, 1, "B", ("weight",), default_bits=16) == 8
    # a tensor served by name wins over its role; two by role is ambiguous
    lv = with_memories(
        arch.levels[2], [*spads()[:2], dataclasses.replace(spads()[2], serves=("C",))]
    )
    assert serving_memory(lv, "C", ("output",)).name == "psum_spad"
    amb = dataclasses.replace(
        arch.levels[2], memories=(spads()[0], dataclasses.replace(spads()[1], serves=("input",)))
    )
    with pytest.raises(HardwareError, match="served by both"):
        serving_memory(amb, "A", ("input",))
    gb = dataclasses.replace(arch.levels[1], share_x=("weight",), share_y=("output", "input"))
    assert shared_along(gb, "B", ("weight",), "x") and not shared_along(gb, "B", ("weight",), "y")
    assert shared_along(gb, "C", ("output",), "y") and not shared_along(gb, "C", ("output",), None)
    assert not shared_along(dataclasses.replace(gb, spatial_reduce=False), "C", ("output",), "y")
    assert shared_along(arch.levels[1], "A", ("input",), None)  # None = every tensor


# -------------------------------------------------------- files and overrides


def test_tree_round_trips_and_one_memory_dicts_unchanged():
    arch = hw_models.validate(tree_arch())
    d = hw_models.to_dict(arch)
    pe = d["levels"][2]
    assert "capacity_bytes" not in pe and [m["name"] for m in pe["memories"]] == [
        "ifmap_spad",
        "filter_spad",
        "psum_spad",
    ]
    assert pe["memories"][2]["precision"] == {"psum_bits": 24, "output_bits": 16}
    assert "memories" not in d["levels"][1] and "precision" not in d["compute"][0]
    assert hw_models.from_dict(d) == arch
    assert hw_models.loads(hw_models.dump_yaml(arch)) == arch
    assert hw_models.loads(hw_models.dump_json(arch)) == arch


def test_unlimited_bandwidth_round_trips():
    arch = tree_arch()
    dram = dataclasses.replace(arch.levels[0], read_bw_bytes_per_cycle=math.inf)
    arch = hw_models.validate(dataclasses.replace(arch, levels=(dram, *arch.levels[1:])))
    assert hw_models.loads(hw_models.dump_yaml(arch)).levels[0].read_bw_bytes_per_cycle == math.inf


def test_overrides_reach_memories_and_survive_derive(tmp_path):
    mems = [
        hw_models.serialize.level_to_dict(memory_level("x", [m]))["memories"][0] for m in spads()
    ]
    spec = {
        "name": "eyeriss_tree",
        "family": "spatial",
        "params": dict(hw_models.load("eyeriss_like").params),
        "overrides": {"PE_RF": {"memories": mems}, "filter_spad": {"capacity_bytes": 896}},
    }
    arch = hw_models.from_spec(spec)
    pe = arch.level("PE_RF")
    assert pe.capacity_bytes == 24 + 896 + 48 and arch.memory("filter_spad").capacity_bytes == 896
    var = hw_models.derive(arch, {"global_buffer_bytes": 65536})
    assert var.level("GlobalBuffer").capacity_bytes == 65536
    assert var.level("PE_RF") == pe  # the memories are re-applied to the rebuilt tree
    with pytest.raises(HardwareError, match="override one of them by name"):
        hw_models.apply_overrides(arch, {"PE_RF": {"capacity_bytes": 10}})
    with pytest.raises(HardwareError, match="memories are ifmap_spad"):
        hw_models.apply_overrides(arch, {"nope": {"capacity_bytes": 10}})


LEVELS = """name: t
family: spatial
clock_hz: 1.0e9
levels:
  - name: DRAM
    capacity_bytes: null
    word_bits: 64
    read_bw_bytes_per_cycle: 8
    write_bw_bytes_per_cycle: 8
    read_energy_pj_per_word: 512
    write_energy_pj_per_word: 512
  - name: PE
    instances: 4
    memories:
      - name: a
        serves: [input]
        capacity_bytes: 64
        word_bits: 16
        read_bw_bytes_per_cycle: 2
        write_bw_bytes_per_cycle: 2
        read_energy_pj_per_word: 1
        write_energy_pj_per_word: 1
      - name: b
        serves: [weight]
        capacity_bytes: 64
        word_bits: 16
        read_bw_bytes_per_cycle: 2
        write_bw_bytes_per_cycle: 2
        read_energy_pj_per_word: 1
        write_energy_pj_per_word: 1
compute:
  - {name: pe_array, kind: array1d, pes: 4, ops_per_cycle: {mac: 1}, energy_pj_per_op: {mac: 0.5}}
"""


@pytest.mark.parametrize(
    "old, new, line, message",
    [
        (
            "        word_bits: 16\n        read_bw_bytes_per_cycle: 2\n        write_bw_bytes_per_cycle: 2\n        read_energy_pj_per_word: 1\n        write_energy_pj_per_word: 1\ncompute",
            "        word_bits: 0\n        read_bw_bytes_per_cycle: 2\n        write_bw_bytes_per_cycle: 2\n        read_energy_pj_per_word: 1\n        write_energy_pj_per_word: 1\ncompute",
            26,
            "levels[1].memories[1].word_bits must be > 0",
        ),
        (
            "serves: [weight]",
            "serves: [weight, input]",
            24,
            "levels[1].memories[1].serves: 'input' is already served by memory 'a'",
        ),
        ("serves: [weight]", "serves: weight", 24, "levels[1].memories[1].serves must be a list"),
        (
            "    instances: 4\n",
            "    instances: 4\n    capacity_bytes: 5\n",
            14,
            "a level with memories takes capacity_bytes from them",
        ),
        (
            "      - name: b\n",
            "      - name: a\n",
            23,
            "levels[1].memories[1].name 'a' is already used",
        ),
        (
            "        capacity_bytes: 64\n        word_bits: 16\n        read_bw_bytes_per_cycle: 2\n        write_bw_bytes_per_cycle: 2\n        read_energy_pj_per_word: 1\n        write_energy_pj_per_word: 1\ncompute",
            "        capacity_bytes: null\n        word_bits: 16\n        read_bw_bytes_per_cycle: 2\n        write_bw_bytes_per_cycle: 2\n        read_energy_pj_per_word: 1\n        write_energy_pj_per_word: 1\ncompute",
            25,
            "may be null (unbounded) only on the outermost level",
        ),
        (
            "        serves: [input]\n",
            "        serves: [input]\n        precision: {psum_bits: 0}\n",
            17,
            "levels[1].memories[0].precision.psum_bits must be > 0",
        ),
        (
            "        serves: [input]\n",
            "        serves: [input]\n        ports: [{name: p, kind: rw, bw_bytes_per_cycle: 2}]\n",
            17,
            "levels[1].memories[0].ports[0].kind must be one of read, write, readwrite",
        ),
        (
            "        serves: [input]\n",
            "        serves: [input]\n        ports: [{name: p, kind: read, bw_bytes_per_cycle: 1}, {name: q, kind: write, bw_bytes_per_cycle: 2}]\n",
            20,
            "read_bw_bytes_per_cycle must be the sum of its ports' bandwidths (1)",
        ),
        (
            "        serves: [input]\n",
            "        serves: [input]\n        ports: [{name: p, kind: read, bw_bytes_per_cycle: 2, serves: ['input:sideways']}]\n",
            17,
            "DIRECTION one of fill, read, update, drain",
        ),
        (
            "        serves: [input]\n",
            "        colour: red\n        serves: [input]\n",
            16,
            "levels[1].memories[0].colour is not a known field",
        ),
    ],
)
def test_bad_memory_descriptions_name_file_line_and_field(tmp_path, old, new, line, message):
    text = LEVELS.replace(old, new, 1)
    assert text != LEVELS
    path = tmp_path / "hw.yaml"
    path.write_text(text)
    with pytest.raises(HardwareError) as err:
        hw_models.load(str(path))
    assert message in str(err.value)
    assert err.value.file == str(path) and err.value.line == line, str(err.value)


def test_good_tree_file_loads():
    arch = hw_models.loads(LEVELS)
    assert arch.level("PE").capacity_bytes == 128 and arch.memory("b").serves == ("weight",)

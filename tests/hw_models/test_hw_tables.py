"""Energy/area tables, the node-scaling rule and family closed forms."""

from __future__ import annotations

import math
import time

import pytest

import hw_models
from hw_models import tables

# bitcell anchors (um^2) and supplies (V) from tables/node_scaling.yaml
CELL = {45: 0.346, 28: 0.127, 16: 0.070, 7: 0.027, 5: 0.021, 40: 0.242}
VDD = {45: 0.9, 28: 0.9, 16: 0.8, 7: 0.75, 5: 0.7, 40: 0.9}


@pytest.mark.parametrize("node", [45, 28, 16, 7, 5])
def test_node_rule_closed_form(node):
    assert tables.area_factor(45, node) == pytest.approx(CELL[node] / CELL[45], rel=1e-12)
    expect = math.sqrt(CELL[node] / CELL[45]) * (VDD[node] / VDD[45]) ** 2
    assert tables.energy_factor(45, node) == pytest.approx(expect, rel=1e-12)
    # scaling there and back is the identity
    e = tables.scale_energy(tables.scale_energy(3.7, 45, node), node, 45)
    assert e == pytest.approx(3.7, rel=1e-12)


def test_node_rule_is_monotone_and_composes():
    nodes = [45, 28, 16, 7, 5]
    ef = [tables.energy_factor(45, n) for n in nodes]
    af = [tables.area_factor(45, n) for n in nodes]
    assert ef == sorted(ef, reverse=True) and af == sorted(af, reverse=True)
    assert ef[0] == af[0] == 1.0
    for a, b, c in [(45, 16, 5), (28, 7, 5), (45, 30, 10)]:
        assert tables.energy_factor(a, b) * tables.energy_factor(b, c) == pytest.approx(
            tables.energy_factor(a, c), rel=1e-12
        )
        assert tables.area_factor(a, b) * tables.area_factor(b, c) == pytest.approx(
            tables.area_factor(a, c), rel=1e-12
        )
    # 5 nm is ~16.5x denser than 45 nm by measured bitcells (ideal would be 81x)
    assert 1 / tables.area_factor(45, 5) == pytest.approx(0.346 / 0.021, rel=1e-12)


def test_node_out_of_range_is_a_hardware_error():
    with pytest.raises(hw_models.HardwareError, match=r"tech_node_nm .*\[3, 180\]"):
        tables.energy_factor(45, 1)


def test_horowitz_figures():
    # Horowitz ISSCC 2014, 45 nm (docs/references.md)
    assert tables.op_energy_pj("add", 8, "int", 45) == pytest.approx(0.03)
    assert tables.op_energy_pj("add", 32, "int", 45) == pytest.approx(0.1)
    assert tables.op_energy_pj("mult", 8, "int", 45) == pytest.approx(0.2)
    assert tables.op_energy_pj("mult", 32, "int", 45) == pytest.approx(3.1)
    assert tables.op_energy_pj("add", 32, "fp", 45) == pytest.approx(0.9)
    assert tables.op_energy_pj("mult", 32, "fp", 45) == pytest.approx(3.7)
    # int8 MAC = 8-bit multiply + 32-bit add; Accelergy's Simba-like MAC is 0.32 pJ
    assert tables.mac_energy_pj(8, "int", 45) == pytest.approx(0.3)
    assert tables.mac_energy_pj(8, "int", 45) == pytest.approx(0.32, rel=0.1)
    # SRAM read per 64 bits: 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ
    for cap, pj in [(8192, 10), (32768, 20), (1 << 20, 100)]:
        assert 64 * tables.sram_read_pj_per_bit(cap, 45) == pytest.approx(pj, rel=1e-12)
    # a 128 KB buffer (Eyeriss-like: 18.2 pJ per 64 bits at 65 nm) lies between
    e128 = 64 * tables.sram_read_pj_per_bit(128 * 1024, 45)
    assert 20 < e128 < 100


def test_dram_table():
    assert tables.dram_pj_per_bit("lpddr4") == 8.0
    assert tables.dram_pj_per_bit("hbm2") == 3.9
    assert tables.dram_pj_per_bit("hbm3") == 4.05
    assert tables.dram_pj_per_bit("ddr3") == 70.0
    assert 4.05 < tables.dram_pj_per_bit("ddr4") < 70
    with pytest.raises(hw_models.HardwareError, match="dram_kind must be one of"):
        tables.dram_pj_per_bit("sram")


def test_every_table_names_source_and_node():
    for name in tables.list_tables():
        t = tables.table(name)
        assert t.get("source"), name
        if name not in ("dram", "node_scaling"):
            assert t.get("node_nm"), name


def test_spatial_area_closed_form():
    """flat_edge at 45 nm, recomputed by hand from the table entries."""
    a = hw_models.load("flat_edge")
    k40 = 0.346 / 0.242  # Aladdin (40 nm) area -> 45 nm
    pe_um2 = 1640 + 4184 + 71 * 16 / 32 * k40  # fp16 mult + fp32 add + comparator
    rf_um2 = 64 * 8 * 5.98 * k40  # registers
    gb_um2 = 524288 * 8 * 0.346 / 0.5  # SRAM bitcell / array efficiency
    v1d_um2 = 32 * (pe_um2 + 4 * 16 * 5.98 * k40)
    expect_mm2 = (1024 * (pe_um2 + rf_um2) + gb_um2 + v1d_um2) / 1e6
    assert a.area_mm2 == pytest.approx(expect_mm2, rel=1e-9)


def test_spatial_family_closed_forms():
    p = dict(
        rows=16,
        cols=8,
        dataflow="os",
        clock_hz=1e9,
        datatype_bits=8,
        pe_rf_bytes=32,
        global_buffer_bytes=65536,
        dram_bandwidth_bytes_per_s=32e9,
        dram_kind="lpddr4",
        array1d_pes=0,
        tech_node_nm=45,
    )
    a = hw_models.spatial_array(**p)
    assert [c.name for c in a.compute] == ["pe_array"]
    assert a.level("DRAM").read_bw_bytes_per_cycle == 32.0
    assert a.level("DRAM").read_energy_pj_per_word == 64.0  # 8 pJ/bit x 8 bits
    assert a.level("GlobalBuffer").read_bw_bytes_per_cycle == 24.0  # (16 + 8) words of 1 B
    assert (a.level("GlobalBuffer").fanout_x, a.level("GlobalBuffer").fanout_y) == (8, 16)
    assert a.unit("pe_array").energy_pj_per_op["mac"] == pytest.approx(0.3)
    assert a.unit("pe_array").dataflow == "os"
    # the same design at 7 nm: every energy scales by the one rule
    b = hw_models.derive(a, {"tech_node_nm": 7})
    f = tables.energy_factor(45, 7)
    assert b.unit("pe_array").energy_pj_per_op["mac"] == pytest.approx(0.3 * f)
    assert b.level("GlobalBuffer").read_energy_pj_per_word == pytest.approx(
        a.level("GlobalBuffer").read_energy_pj_per_word * f
    )
    assert b.level("DRAM").read_energy_pj_per_word == a.level("DRAM").read_energy_pj_per_word
    assert b.unit("pe_array").area_mm2 == pytest.approx(
        a.unit("pe_array").area_mm2 * tables.area_factor(45, 7)
    )


def test_derive_changes_only_what_is_asked():
    h = hw_models.load("h100")
    d = hw_models.derive(
        "h100", {"hbm_bandwidth_bytes_per_s": 4.8e12, "tensor_flops_per_s.bf16": 1.2e15}
    )
    assert d.name == "h100"
    assert d.level("HBM").read_bw_bytes_per_cycle * d.clock_hz == pytest.approx(4.8e12)
    assert 2 * d.peak_ops_per_s("mac", "tensor_core") == pytest.approx(1.2e15)
    assert d.params["tensor_flops_per_s"]["fp8"] == h.params["tensor_flops_per_s"]["fp8"]
    assert d.level("L2") == h.level("L2")
    assert h.params["hbm_bandwidth_bytes_per_s"] == 3.35e12  # the preset is untouched
    # file-level overrides survive a derive
    t = hw_models.derive("tpu_like", {"rows": 128})
    assert t.unit("pe_array").energy_pj_per_op["mac"] == 0.084
    assert t.unit("pe_array").rows == 128


@pytest.mark.parametrize("name", ["h100", "fusemax_cloud", "u280", "tpu_like"])
def test_derive_is_cheap(name):
    arch = hw_models.load(name)
    key, value = {
        "h100": ("hbm_bandwidth_bytes_per_s", 4.0e12),
        "fusemax_cloud": ("global_buffer_bytes", 8 * 2**20),
        "u280": ("rows", 32),
        "tpu_like": ("cols", 128),
    }[name]
    hw_models.derive(arch, {key: value})
    # best of 5 batches, so that a busy CI machine does not make it flaky
    best = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(50):
            hw_models.derive(arch, {key: value})
        best = min(best, (time.perf_counter() - t0) / 50)
    assert best < 1e-3, f"derive took {best * 1e6:.0f} us"


def test_derive_accepts_numpy_scalars_from_sweep_grids():
    import numpy as np

    a = hw_models.derive(
        "fusemax_cloud",
        {
            "rows": np.int64(128),
            "global_buffer_bytes": np.float64(2**23),
            "dataflow": np.str_("os"),
        },
    )
    assert type(a.params["rows"]) is int and type(a.params["dataflow"]) is str
    assert a.peak_ops_per_s("mac", "pe_array") == 128 * 256 * 940e6
    assert hw_models.loads(hw_models.dump_yaml(a)) == a
    with pytest.raises(hw_models.HardwareError, match=r"params\.rows must be an integer"):
        hw_models.derive("fusemax_cloud", {"rows": np.bool_(True)})

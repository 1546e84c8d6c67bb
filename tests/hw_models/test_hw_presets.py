"""Presets reproduce their reference figures (datasheets, docs/references.md and
the measured H100 in experiments/data/h100/env.json)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import hw_models
from hw_models.fpga import estimate_resources

ENV = json.loads(
    (Path(__file__).resolve().parents[2] / "experiments" / "data" / "h100" / "env.json").read_text()
)

PRESETS = [
    "h100",
    "h200",
    "a100",
    "fusemax_cloud",
    "flat_cloud",
    "flat_edge",
    "tpu_like",
    "eyeriss_like",
    "u280",
    "u250",
    "vu9p",
    "eyeriss_v1",
    "simba_like",
    "tpu_v4i",
]


def test_every_required_preset_exists():
    assert set(PRESETS) <= set(hw_models.list_presets())


@pytest.mark.parametrize("name", PRESETS)
def test_preset_loads_validates_and_round_trips(name):
    arch = hw_models.load(name)
    assert hw_models.validate(arch) is arch
    assert arch.name == name
    assert arch.sources, "every preset cites its sources"
    assert hw_models.from_dict(hw_models.to_dict(arch)) == arch
    assert hw_models.loads(hw_models.dump_yaml(arch)) == arch
    assert hw_models.loads(hw_models.dump_json(arch)) == arch
    # rebuilt from its own params (what a sweep does) it is the same tree
    assert hw_models.derive(arch, {}) == arch


def _bw(arch, level):
    return arch.level(level).read_bw_bytes_per_cycle * arch.clock_hz


def test_h100_reference_figures():
    a = hw_models.load("h100")
    assert a.params["sm_count"] == 132 == ENV["sm_count"]
    assert a.unit("tensor_core").pes == 132
    # dense bf16: 989 TFLOP/s = 2 flops per MAC
    assert 2 * a.peak_ops_per_s("mac", "tensor_core") == pytest.approx(989e12, rel=1e-12)
    assert a.params["tensor_flops_per_s"]["fp8"] == 1979e12
    assert a.params["tensor_flops_per_s"]["tf32"] == 495e12
    assert 2 * a.peak_ops_per_s("mac", "cuda_core") == pytest.approx(67e12, rel=1e-12)
    # per-datatype tensor rates (datasheet, dense)
    tc = a.unit("tensor_core")
    for dtype, flops in [("fp8", 1979e12), ("fp16", 989e12), ("tf32", 495e12)]:
        assert 2 * tc.peak_ops_per_s("mac", a.clock_hz, dtype) == pytest.approx(flops, rel=1e-12)
    assert tc.peak_ops_per_s("mac", a.clock_hz, "fp4") == 0.0  # not listed for H100
    cc = a.unit("cuda_core")
    assert 2 * cc.peak_ops_per_s("mac", a.clock_hz, "fp64") == pytest.approx(34e12, rel=1e-12)
    assert _bw(a, "HBM") == pytest.approx(3.35e12, rel=1e-12)
    assert a.level("L2").capacity_bytes == ENV["l2_bytes"] == 52_428_800
    assert a.level("HBM").capacity_bytes == ENV["total_mem"]
    assert a.static_power_w == pytest.approx(ENV["idle_power_w"])
    assert a.params["max_clock_hz"] == 1.98e9  # nvidia-smi clocks.max.sm
    assert "1980 MHz" in ENV["nvidia_smi"]
    assert a.params["tdp_w"] == 700
    # datasheet peak is 4096 flop/clk/SM at 1830 MHz
    assert 989e12 / (132 * a.clock_hz) == pytest.approx(4096, rel=1e-3)
    # levels, outermost first, with the SM fan-out below L2
    assert [lv.name for lv in a.levels] == ["HBM", "L2", "SMEM", "RF"]
    assert a.level("L2").fanout == 132
    assert a.level("SMEM").instances == 132 and a.level("RF").instances == 132
    assert a.area_mm2 == pytest.approx(814.0, abs=0.05)  # GH100 die


def test_gpu_params_contract():
    """The GPU performance model reads these exact keys."""
    keys = {
        "sm_count",
        "clock_hz",
        "max_clock_hz",
        "tensor_flops_per_s",
        "cuda_core_flops_per_s",
        "smem_bytes_per_sm",
        "l1_bytes_per_sm",
        "regs_bytes_per_sm",
        "l2_bytes",
        "l2_bandwidth_bytes_per_s",
        "hbm_bytes",
        "hbm_bandwidth_bytes_per_s",
        "launch_overhead_s",
        "tdp_w",
        "idle_power_w",
    }
    for name in ("h100", "h200", "a100"):
        p = hw_models.load(name).params
        assert keys <= set(p)
        assert {"fp8", "bf16", "fp16", "tf32"} & set(p["tensor_flops_per_s"]) >= {
            "bf16",
            "fp16",
            "tf32",
        }
        assert {"fp32", "fp64"} <= set(p["cuda_core_flops_per_s"])


def test_h200_and_a100_reference_figures():
    h200 = hw_models.load("h200")
    h100 = hw_models.load("h100")
    assert _bw(h200, "HBM") == pytest.approx(4.8e12, rel=1e-12)
    assert h200.level("HBM").capacity_bytes == 141e9
    assert h200.params["sm_count"] == h100.params["sm_count"]
    assert h200.peak_ops_per_s("mac", "tensor_core") == h100.peak_ops_per_s("mac", "tensor_core")
    a100 = hw_models.load("a100")
    assert a100.params["sm_count"] == 108
    assert 2 * a100.peak_ops_per_s("mac", "tensor_core") == pytest.approx(312e12, rel=1e-12)
    assert _bw(a100, "HBM") == pytest.approx(2.039e12, rel=1e-12)
    assert a100.level("L2").capacity_bytes == 40 * 2**20
    assert a100.params["tdp_w"] == 400


def test_fusemax_cloud_reference_figures():
    a = hw_models.load("fusemax_cloud")
    assert [lv.name for lv in a.levels] == ["DRAM", "GlobalBuffer", "PE_RF"]
    assert a.level("DRAM").capacity_bytes is None
    pe = a.unit("pe_array")
    assert (pe.kind, pe.rows, pe.cols) == ("array2d", 256, 256)
    assert a.peak_ops_per_s("mac", "pe_array") == 256 * 256 * 940e6
    v = a.unit("vector_1d")
    assert (v.kind, v.pes, v.fed_by) == ("array1d", 256, "GlobalBuffer")
    gb = a.level("GlobalBuffer")
    assert gb.capacity_bytes == 16 * 2**20
    assert (gb.fanout_x, gb.fanout_y) == (256, 256)
    assert a.level("PE_RF").instances == 256 * 256
    assert _bw(a, "DRAM") == pytest.approx(400 * 2**30, rel=1e-12)
    # 45 nm FLAT/FuseMax table: MAC 17.2 pJ, divide 36.3 pJ; exp = 6 MAC + 1 add
    e = pe.energy_pj_per_op
    assert e["mac"] == pytest.approx(17.2)
    assert e["div"] == pytest.approx(36.3)
    assert e["exp"] == pytest.approx(6 * 17.2 + e["add"])
    assert e["add"] == pytest.approx(0.9)  # Horowitz fp32 add (fp16 accumulates in fp32)
    assert pe.ops_per_cycle["exp"] == pytest.approx(1 / 7)
    assert pe.dtype_scale == {"fp16": 1.0}


def test_flat_presets():
    cloud = hw_models.load("flat_cloud")
    assert cloud.level("GlobalBuffer").capacity_bytes == 32 * 2**20
    assert cloud.unit("pe_array").energy_pj_per_op["exp"] == pytest.approx(94.6)
    assert cloud.unit("pe_array").ops_per_cycle["exp"] == 1.0
    edge = hw_models.load("flat_edge")
    assert (edge.unit("pe_array").rows, edge.unit("pe_array").cols) == (32, 32)
    assert edge.level("GlobalBuffer").capacity_bytes == 512 * 1024
    assert _bw(edge, "DRAM") == pytest.approx(50 * 2**30, rel=1e-12)


def test_tpu_and_eyeriss_like_use_their_reference_energies():
    tpu = hw_models.load("tpu_like")
    assert tpu.unit("pe_array").energy_pj_per_op["mac"] == 0.084
    assert tpu.level("DRAM").read_energy_pj_per_word == pytest.approx(7.03 * 16)
    assert _bw(tpu, "DRAM") == pytest.approx(614e9)
    assert tpu.clock_hz == 1.05e9
    assert tpu.peak_ops_per_s("mac", "pe_array") == 4 * 128 * 128 * 1.05e9
    eye = hw_models.load("eyeriss_like")
    assert eye.unit("pe_array").pes == 168
    assert eye.unit("pe_array").energy_pj_per_op["mac"] == 0.21
    assert eye.level("GlobalBuffer").read_energy_pj_per_word == pytest.approx(18.2 / 64 * 8)
    assert eye.level("DRAM").read_energy_pj_per_word == pytest.approx(8.0 * 8)  # LPDDR4 8 pJ/bit


@pytest.mark.parametrize(
    ("name", "dsp", "lut", "bram_18k", "uram"),
    [
        ("u280", 9024, 1_304_000, 4032, 960),
        ("u250", 12288, 1_728_000, 5376, 1280),
        ("vu9p", 6840, 1_182_000, 4320, 960),
    ],
)
def test_fpga_device_budgets(name, dsp, lut, bram_18k, uram):
    arch = hw_models.load(name)
    res = estimate_resources(arch.params)
    assert res.available["dsp"] == dsp
    assert res.available["lut"] == lut
    assert res.available["bram_18k"] == bram_18k
    assert res.available["uram"] == uram
    assert res.fits


def test_u280_offchip_is_hbm2_at_460_gb_s():
    a = hw_models.load("u280")
    assert _bw(a, "DRAM") == pytest.approx(460e9)
    assert a.level("DRAM").read_energy_pj_per_word == pytest.approx(3.9 * 8)


def test_preset_areas_are_positive_where_silicon_is_designed():
    for name in PRESETS:
        a = hw_models.load(name)
        if a.family == "fpga":
            assert a.area_mm2 == 0.0  # fixed silicon: fits() is the budget
        else:
            assert a.area_mm2 > 1.0 and math.isfinite(a.area_mm2)

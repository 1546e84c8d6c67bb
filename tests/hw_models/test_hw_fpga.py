"""FPGA resource model against hand-worked cases (rules in hw_models/fpga.py)."""

from __future__ import annotations

import pytest

import hw_models
from hw_models.errors import FPGAFitError
from hw_models.fpga import bram18_for_bank, estimate_resources, fits, fpga, uram_for_bank

BASE = dict(device="u280", rows=32, cols=32, datatype_bits=8, buffer_bytes=256 * 1024)
#: a 128 x 128 fp16 array with 4 MiB of buffer: too many multipliers for
#: one DSP each (the reuse factor decides)
FP16_128 = dict(
    device="u280",
    rows=128,
    cols=128,
    datatype_bits=16,
    number_format="fp",
    buffer_bytes=4 * 2**20,
)


def test_32x32_int8_fits_u280_hand_worked():
    res = estimate_resources(BASE)
    # 1024 int8 MACs, two per DSP48E2
    assert res.dsp == 512
    # 64 banks (32 + 32) of 8-bit words, 256 KiB * 8 / (64 * 8) = 4096 deep;
    # 32 Kb per bank < 144 Kb -> BRAM18 as 2K x 9: 2 per bank
    assert res.bram_18k == 64 * 2
    assert res.uram == 0
    assert res.lut == 2000 + 10 * 1024
    assert res.ff == 4000 + 1024 * (2 * 8 + 32)
    assert res.available["dsp"] == 9024
    assert res.achievable_clock_hz == 300e6  # well under half of every resource
    assert res.initiation_interval_cycles == 1
    assert res.fits and fits(BASE)
    arch = fpga(**BASE)
    assert arch.clock_hz == 300e6
    assert arch.peak_ops_per_s("mac", "pe_array") == 1024 * 300e6


def test_128x128_fp16_one_dsp_per_mac_is_rejected_naming_dsp():
    p = dict(FP16_128, reuse_factor=1)
    with pytest.raises(FPGAFitError) as info:
        fpga(**p)
    err = info.value
    assert err.resource == "dsp"
    assert err.used == 16384 and err.available == 9024 and err.over == 16384 - 9024
    assert "DSP 16,384 used > 9,024 available (over by 7,360" in str(err)
    assert str(err).startswith("design does not fit u280: DSP")
    with pytest.raises(FPGAFitError, match="DSP"):
        estimate_resources(p)
    assert not fits(p)
    assert isinstance(err, hw_models.HardwareError)


def test_reuse_factor_trades_dsps_for_initiation_interval():
    p = dict(FP16_128, reuse_factor=4)
    res = estimate_resources(p)
    assert res.multipliers == 4096 and res.dsp == 4096
    assert res.initiation_interval_cycles == 4
    # LUT: control + per-PE + 4:1 operand muxes + fp normalisation
    assert res.lut == 2000 + 10 * 16384 + 4096 * 2 * 16 * 1 + 4096 * 8 * 16
    arch = fpga(**p)
    assert arch.peak_ops_per_s("mac", "pe_array") == pytest.approx(16384 / 4 * arch.clock_hz)
    # with R = 2 the DSPs fit (8192 <= 9024) but the operand muxes overflow LUTs
    p2 = dict(p, reuse_factor=2)
    with pytest.raises(FPGAFitError) as info:
        estimate_resources(p2)
    assert info.value.resource == "lut"
    assert info.value.used == 2000 + 10 * 16384 + 8192 * 2 * 16 + 8192 * 8 * 16


def test_clock_derates_with_utilisation():
    # 72 x 94 = 6768 int16 MACs = 75% of the U280's DSPs -> 300 - 100 * 0.5 = 250 MHz
    p = dict(
        device="u280", rows=72, cols=94, datatype_bits=16, number_format="int", buffer_bytes=2**20
    )
    res = estimate_resources(p)
    assert res.dsp == 6768
    assert res.achievable_clock_hz == pytest.approx(250e6)
    with pytest.raises(FPGAFitError) as info:
        fpga(**p, clock_hz=300e6)
    assert info.value.resource == "clock"
    assert not fits(dict(p, clock_hz=300e6))
    assert fits(dict(p, clock_hz=250e6))


def test_memory_mapping_rules():
    # BRAM18 shapes: 16Kx1 ... 512x36
    assert bram18_for_bank(8, 4096) == 2
    assert bram18_for_bank(16, 1024) == 1
    assert bram18_for_bank(36, 512) == 1
    assert bram18_for_bank(72, 512) == 2
    # URAM 4K x 72, narrow words packed
    assert uram_for_bank(8, 65536) == 2
    assert uram_for_bank(144, 4096) == 2
    res = estimate_resources(
        dict(device="u280", rows=64, cols=64, datatype_bits=8, buffer_bytes=8 * 2**20)
    )
    assert res.uram == 128 * 2 and res.bram_18k == 0
    with pytest.raises(FPGAFitError) as info:
        estimate_resources(
            dict(device="u280", rows=64, cols=64, datatype_bits=8, buffer_bytes=64 * 2**20)
        )
    assert info.value.resource == "uram"


def test_wide_datatypes_use_more_dsps():
    p = dict(
        device="vu9p", rows=8, cols=8, datatype_bits=32, number_format="int", buffer_bytes=65536
    )
    assert estimate_resources(p).dsp == 64 * 4  # ceil(32/27) x ceil(32/18)


def test_fits_never_raises_on_garbage():
    for bad in [
        {},
        {"device": "xyz"},
        dict(BASE, rows=-1),
        dict(BASE, buffer_bytes=float("nan")),
        None,
        [1],
    ]:
        assert fits(bad) is False


def test_hls_unroll_note():
    res = estimate_resources(
        dict(device="u250", rows=80, cols=80, datatype_bits=8, buffer_bytes=2**20)
    )
    assert res.multipliers == 6400
    assert any("4096" in n for n in res.notes)


def test_hls4ml_parameters_are_validated_by_derive():
    arch = hw_models.derive(
        "u250", {"reuse_factor": 64, "precision": 8, "strategy": "resource", "io_type": "io_stream"}
    )
    assert arch.params["reuse_factor"] == 64 and arch.params["precision"] == 8
    assert arch.params["strategy"] == "resource" and arch.params["io_type"] == "io_stream"
    assert arch.params["input_bits"] == 16 and arch.params["accum_bits"] == 16  # fixed<16,6>
    with pytest.raises(hw_models.HardwareError, match="params.strategy must be one of"):
        hw_models.derive("u250", {"strategy": "fast"})
    with pytest.raises(
        hw_models.HardwareError, match=r"params.precision must be an integer in \[1, 32\]"
    ):
        hw_models.derive("u250", {"precision": 0})
    with pytest.raises(hw_models.HardwareError, match="params.io_type"):
        hw_models.derive("u250", {"io_type": "axi"})


def test_fpga_architecture_carries_the_device_static_power():
    from hw_models import tables
    from hw_models.fpga_power import AREA_GAP_HARD, AREA_GAP_SOFT, static_power_w

    arch = hw_models.load("u250")
    assert arch.static_power_w == static_power_w("u250") == arch.leakage_w
    # by hand: LUTs alone are 1,728,000 x (Aladdin adder bit at 16 nm x 35) x leakage/area
    al = tables.table("aladdin_40nm")
    leak = al["leakage_w"]["int32_mult"] / al["area_um2"]["int32_mult"]
    lut_w = 1728000 * tables.scale_area(278 / 32, 40, 16) * AREA_GAP_SOFT * leak
    assert 0.05 < lut_w / arch.static_power_w < 0.2
    assert AREA_GAP_HARD < AREA_GAP_SOFT
    # larger device, more leakage; the parameter overrides the estimate
    assert static_power_w("u250") > static_power_w("u280") > 0
    assert hw_models.derive("u250", {"static_power_w": 12.5}).static_power_w == 12.5


def test_fit_error_names_every_overflow():
    from hw_models.fpga import capacities, fit_error

    cap = capacities("u250")
    assert fit_error("u250", {"dsp": 1.0, "lut": 1.0}, cap) is None
    err = fit_error("u250", {"dsp": 20000.0, "ff": 4e6}, cap)
    assert err.resource == "dsp" and err.over == 20000 - 12288
    assert "also FF 4,000,000 used > 3,456,000 available" in str(err)

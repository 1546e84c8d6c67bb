"""Networks: measured wa-hls4ml rows, dataflow chaining, the device fit."""

from __future__ import annotations

import pytest

from hw_models.errors import FPGAFitError
from sim.fpga import coefficients
from sim.fpga.config import HLSConfig
from sim.fpga.layers import Layer, dense_chain
from sim.fpga.network import estimate_network

CO = coefficients.load()


def test_measured_latency_and_bram_of_two_rows() -> None:
    # experiments/data/wa_hls4ml/dense2.csv, dense_80_24_120_6b at rf 1024:
    # BestLatency 1923, DSP 0, BRAM 1.0 tile; valid R = 960 and 960
    est = estimate_network(dense_chain([80, 24, 120]), HLSConfig(reuse_factor=1024, weight_bits=6))
    assert [le.reuse_factor for le in est.layers] == [960, 960]
    assert est.latency_cycles == 960 + 960 + 2 * CO.layer_depth_cycles + CO.channel_cycles == 1923
    assert est.used["dsp"] == 0
    # outidx: 4 x 960 and 5 x 960 bits, one BRAM_18K each = 1.0 tile of 36 Kb
    assert est.used["bram_18k"] == 2
    # dense_24_8_104 (dense2.csv): one 18 Kb memory (8 -> 104: 7 x 832 bits); 0.5 tile
    est = estimate_network(dense_chain([24, 8, 104]), HLSConfig(reuse_factor=2047, weight_bits=16))
    assert est.used["bram_18k"] == 1 and est.used["dsp"] == 2


def test_samples_enter_every_ii() -> None:
    est = estimate_network(dense_chain([64, 32, 16]), HLSConfig(reuse_factor=256), samples=10)
    ii = max(le.ii_cycles for le in est.layers)
    assert est.ii_cycles == ii
    assert est.total_cycles == est.latency_cycles + 9 * ii


def test_design_larger_than_the_u250_is_rejected_naming_the_resource() -> None:
    # 1024 x 1024 at R = 1, 16 bit: 1,048,576 DSPs on a 12,288-DSP device
    big = dense_chain([1024, 1024])
    with pytest.raises(FPGAFitError) as info:
        estimate_network(big, HLSConfig(device="u250", strategy="latency", reuse_factor=1))
    err = info.value
    assert err.resource == "dsp" and err.used == 1024 * 1024 and err.available == 12288
    assert str(err).startswith("design does not fit u250: DSP 1,048,576 used > 12,288 available")
    # with 4-bit weights the multipliers are LUTs: LUT overflows instead
    with pytest.raises(FPGAFitError) as info:
        estimate_network(big, HLSConfig(strategy="latency", reuse_factor=1, weight_bits=4))
    assert info.value.resource == "lut" and "LUT" in str(info.value)
    # the same network at R = 1024 fits, on DSPs
    est = estimate_network(big, HLSConfig(strategy="resource", reuse_factor=1024))
    assert est.fits and est.used["dsp"] == 1024
    assert est.device_fraction == max(
        est.used[r] / est.available[r] for r in est.available if est.available[r]
    )


def test_lut_and_ff_are_the_weighted_terms_plus_channels() -> None:
    layers = (
        Layer("a", "dense", n_in=32, n_out=16),
        Layer("r", "activation", op="relu", n_elem=16),
        Layer("b", "dense", n_in=16, n_out=8),
    )
    cfg = HLSConfig(reuse_factor=64)
    est = estimate_network(layers, cfg)
    assert est.ff_terms["chan_bits"] == (16 + 16) * 16
    lut = sum(v * CO.lut[k] for k, v in est.lut_terms.items())
    assert est.used["lut"] == round(lut)
    assert est.latency_cycles == sum(le.latency_cycles for le in est.layers) + 2 * CO.channel_cycles

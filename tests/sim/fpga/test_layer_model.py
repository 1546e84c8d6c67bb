"""Closed forms of one hls4ml layer (rules in sim/fpga/layer_model.py)."""

from __future__ import annotations

import math

import pytest

from sim.fpga import coefficients
from sim.fpga.config import HLSConfig
from sim.fpga.layer_model import bram18_for, estimate_layer, lut6_for
from sim.fpga.layers import Layer

CO = coefficients.load()


def _dense(n_in: int, n_out: int, **cfg) -> tuple:
    lay = Layer("d", "dense", n_in=n_in, n_out=n_out)
    c = HLSConfig(**cfg)
    return lay, c, estimate_layer(lay, c, CO)


@pytest.mark.parametrize(
    "n_in,n_out,rf", [(64, 32, 16), (64, 32, 64), (32, 120, 960), (16, 16, 256)]
)
def test_multipliers_are_macs_over_reuse_factor(n_in: int, n_out: int, rf: int) -> None:
    lay, _, est = _dense(n_in, n_out, strategy="resource", reuse_factor=rf)
    assert est.reuse_factor == rf  # all of these are valid hls4ml reuse factors
    assert est.multipliers == lay.macs // rf
    assert est.multipliers * est.reuse_factor == n_in * n_out


def test_16_bit_dense_layer_with_reuse_factor_1_uses_one_dsp_per_multiply() -> None:
    _, cfg, est = _dense(16, 8, strategy="latency", reuse_factor=1, weight_bits=16, input_bits=16)
    assert est.multipliers == 16 * 8
    assert est.dsp_per_multiplier == 1.0
    assert est.dsp == 16 * 8
    assert est.memories == ()  # the latency kernel keeps weights in the multipliers
    # II = R = 1; latency = pipeline depth + the n_in-input adder tree
    assert est.ii_cycles == 1
    assert est.latency_cycles == 1 + CO.layer_depth_cycles + math.ceil(math.log2(16))


def test_dsp_width_rules() -> None:
    # below the DSP-inference width: LUT multipliers, no DSP
    _, _, est = _dense(16, 8, reuse_factor=1, strategy="latency", weight_bits=CO.dsp_min_bits - 1)
    assert est.dsp == 0 and est.lut_terms["mult_pp_bits"] == 128 * 16 * (CO.dsp_min_bits - 1)
    # wider than 27 x 18: ceil(32/27) x ceil(24/18) = 4 DSPs a multiply
    _, _, est = _dense(4, 4, reuse_factor=1, strategy="latency", input_bits=32, weight_bits=24)
    assert est.dsp_per_multiplier == 4 and est.dsp == 64
    # two 8-bit multiplies per DSP48E2 when packing is asked for (WP486)
    _, _, est = _dense(
        8, 8, reuse_factor=1, strategy="latency", input_bits=8, weight_bits=8, dsp_packing=True
    )
    assert est.dsp == 32


def test_resource_weights_are_reshaped_by_block_factor() -> None:
    # 80 x 24 at R = 960: 2 multipliers, a ROM of 960 words of 2 x 6 bits
    _, _, est = _dense(80, 24, strategy="resource", reuse_factor=1024, weight_bits=6)
    assert est.reuse_factor == 960 and est.multipliers == 2
    rom = next(m for m in est.memories if m.name == "weights")
    assert (rom.width_bits, rom.depth, rom.kind) == (12, 960, "lutrom")
    assert rom.lut6 == 12 * math.ceil(960 / 64)
    # outidx[960] of ceil(log2(960 / 80)) = 4 bits, 3,840 bits -> BRAM (1K x 18 at depth 1024)
    idx = next(m for m in est.memories if m.name == "outidx")
    assert (idx.width_bits, idx.depth, idx.kind, idx.bram_18k) == (4, 960, "bram", 1)
    assert est.latency_cycles == 960 + CO.layer_depth_cycles and est.ii_cycles == 960


def test_memory_shapes() -> None:
    assert bram18_for(18, 1024) == 1 and bram18_for(36, 512) == 1 and bram18_for(7, 8192) == 4
    assert bram18_for(72, 512) == 2 and bram18_for(0, 100) == 0
    assert lut6_for(12, 960) == 12 * 15 and lut6_for(1, 64) == 1 and lut6_for(1, 65) == 2


def test_latency_strategy_keeps_the_requested_reuse_factor() -> None:
    _, _, est = _dense(80, 24, strategy="latency", reuse_factor=1000)
    assert est.reuse_factor == 1000 and est.multipliers == math.ceil(1920 / 1000)


def test_conv_layer_pipelines_input_pixels_at_ii_r() -> None:
    lay = Layer(
        "c",
        "conv",
        n_in=16 * 9,
        n_out=32,
        positions=16 * 16,
        in_positions=18 * 18,
        line_buffer_elems=2 * 18 * 16,
    )
    est = estimate_layer(
        lay, HLSConfig(strategy="resource", reuse_factor=144, io_type="io_stream"), CO
    )
    assert est.reuse_factor == 144 and est.multipliers == 32
    assert est.ii_cycles == 18 * 18 * 144
    assert est.lut_terms["srl_lut"] == math.ceil(2 * 18 * 16 / 32) * 16


def test_activation_tables_need_a_bram_per_two_values() -> None:
    est = estimate_layer(Layer("e", "activation", op="exp", n_elem=10), HLSConfig(), CO)
    assert est.bram_18k == 5 and est.dsp == 0
    est = estimate_layer(Layer("r", "activation", op="relu", n_elem=10), HLSConfig(), CO)
    assert est.bram_18k == 0 and est.latency_cycles == 1

"""sim.fpga.evaluate on library cascades: layers, Metrics, notes, errors."""

from __future__ import annotations

import math

import pytest

import hw_models
from hw_models.errors import FPGAFitError, HardwareError
from hw_models.fpga_power import static_power_w
from sim.fpga import evaluate, layers_from_cascade
from sim.fpga.reuse import closest_reuse_factor
from workloads import library


def test_mlp_cascade_becomes_dense_relu_dense() -> None:
    layers, samples = layers_from_cascade(library.build("mlp", B=32, IN=256, HIDDEN=512, OUT=10))
    assert samples == 32
    assert [(la.kind, la.n_in, la.n_out, la.op) for la in layers] == [
        ("dense", 256, 512, ""),
        ("activation", 0, 0, "relu"),
        ("dense", 512, 10, ""),
    ]
    assert layers[1].n_elem == 512


def test_conv_cascade_becomes_a_conv_layer() -> None:
    c = library.build("conv2d", N=2, C=16, H=18, W=18, K=32, R=3, S=3)
    (lay,), samples = layers_from_cascade(c)
    assert samples == 2
    assert (lay.kind, lay.n_in, lay.n_out, lay.positions, lay.in_positions) == (
        "conv",
        16 * 9,
        32,
        16 * 16,
        18 * 18,
    )
    assert lay.line_buffer_elems == (3 - 1) * 18 * 16


def test_mlp_on_u250_reports_resources_latency_and_power() -> None:
    arch = hw_models.derive("u250", {"reuse_factor": 1024, "precision": 8})
    m = evaluate(library.build("mlp"), arch)
    f = m.notes["fpga"]
    assert f["strategy"] == "resource" and f["weight_bits"] == 8
    r1, r2 = closest_reuse_factor(256, 512, 1024), closest_reuse_factor(512, 10, 1024)
    assert f["layers"]["Z1"]["multipliers"] == math.ceil(256 * 512 / r1)
    assert f["layers"]["Z2"]["multipliers"] == math.ceil(512 * 10 / r2)
    assert f["used"]["dsp"] == f["layers"]["Z1"]["dsp"] + f["layers"]["Z2"]["dsp"]
    assert f["available"]["dsp"] == 12288
    assert f["device_fraction"] == max(f["fractions"].values())
    assert m.cycles == f["latency_cycles"] + 31 * f["ii_cycles"]
    assert m.latency_s == pytest.approx(m.cycles * 5e-9)
    assert m.macs == 32 * (256 * 512 + 512 * 10)
    static = static_power_w("u250")
    assert m.energy_breakdown_pj["static"] == pytest.approx(static * m.latency_s * 1e12)
    assert f["power_w"] == pytest.approx(m.energy_pj * 1e-12 / m.latency_s)
    assert f["static_power_w"] == static and f["dynamic_power_w"] > 0
    assert 0 < m.utilization["multipliers"] <= 1
    assert set(m.traffic_bytes["DRAM"]) == {"X", "Y"}  # weights and biases stay on chip


def test_options_override_the_architecture() -> None:
    arch = hw_models.load("u250")
    m = evaluate(
        library.build("mlp"), arch, reuse_factor=2048, strategy="resource", static_power_w=1.0
    )
    assert m.notes["fpga"]["reuse_factor"] == 2048 and m.notes["fpga"]["static_power_w"] == 1.0
    with pytest.raises(HardwareError, match="unknown FPGA option 'reuse'"):
        evaluate(library.build("mlp"), arch, reuse=4)


def test_too_large_network_names_the_overflowing_resource() -> None:
    arch = hw_models.load("u250")  # reuse_factor 1, strategy auto -> latency
    with pytest.raises(FPGAFitError) as info:
        evaluate(library.build("mlp", HIDDEN=4096), arch)
    assert info.value.resource == "dsp"


def test_non_fpga_architecture_is_refused() -> None:
    with pytest.raises(HardwareError, match="FPGA-family"):
        evaluate(library.build("mlp"), hw_models.load("h100"))

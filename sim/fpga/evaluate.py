"""``evaluate(cascade, arch, **opts) -> Metrics``: the FPGA family's cost model.

The cascade becomes hls4ml layers (``layers_from_cascade``), built with the
architecture's hls4ml parameters (``config_from_arch``: ``reuse_factor``,
``precision``, ``strategy``, ``io_type``, ``input_bits``, ``accum_bits``,
``clock_hz``, ``device``; keyword options override them; without a
``precision`` the weights' declared width in the cascade), estimated layer by
layer and chained by dataflow (``estimate_network``), and costed in energy
(``power.energy``). A design that does not fit the device raises
``FPGAFitError`` naming the overflowing resource.

``Metrics.notes["fpga"]`` holds the per-layer and total resources, the
device's capacities, ``device_fraction`` (the largest used fraction: the
FPGA's "area"), the latency per sample, the II, the clock, and the static,
dynamic and total power.
"""

from __future__ import annotations

from typing import Any

from hw_models.errors import HardwareError
from sim.fpga import coefficients as _coeffs
from sim.fpga import power
from sim.fpga.config import config_from_arch
from sim.fpga.layers import layers_from_cascade, weight_tensors
from sim.fpga.network import estimate_network, summary
from sim.metrics import Metrics

#: keyword options that are not HLSConfig fields
_EXTRA = ("static_power_w", "coefficients", "check_fit")


def evaluate(cascade: Any, arch: Any, **opts: Any) -> Metrics:
    """Latency, resources and energy of ``cascade`` as an hls4ml design on
    ``arch`` (an FPGA-family architecture). Options: any hls4ml parameter
    (``reuse_factor``, ``precision``, ``strategy``, ``io_type``, ``input_bits``,
    ``accum_bits``, ``clock_hz``, ``dsp_packing``), ``static_power_w``,
    ``coefficients`` (a :class:`Coefficients`), ``check_fit`` (default True)."""
    if getattr(arch, "family", None) != "fpga":
        raise HardwareError(
            f"sim.fpga.evaluate needs an FPGA-family architecture, got "
            f"{getattr(arch, 'family', type(arch).__name__)!r}",
            field="family",
        )
    extra = {k: opts.pop(k) for k in _EXTRA if k in opts}
    weights = weight_tensors(cascade)
    if "precision" not in opts and "weight_bits" not in opts and weights:
        if (arch.params or {}).get("precision") is None:
            # no precision given: the weights' declared width in the cascade
            opts["precision"] = max(cascade.tensor(w).bits for w in weights)
    cfg = config_from_arch(arch, **opts)
    co = extra.get("coefficients") or _coeffs.load()
    layers, samples = layers_from_cascade(cascade)
    est = estimate_network(
        layers, cfg, co, samples=samples, check_fit=bool(extra.get("check_fit", True))
    )
    seconds = est.total_cycles * est.clock_period_s
    traffic: dict[str, float] = {}
    for name in cascade.inputs:
        if name not in weights:
            traffic[name] = cascade.tensor(name).elements * cfg.input_bits / 8
    for name in cascade.outputs:
        traffic[name] = traffic.get(name, 0.0) + cascade.tensor(name).elements * cfg.input_bits / 8
    static_w = extra.get("static_power_w", (arch.params or {}).get("static_power_w"))
    en = power.energy(est, seconds=seconds, io_bits=8 * sum(traffic.values()), static_w=static_w)
    macs = float(sum(le.macs for le in est.layers) * est.samples)
    slots = est.multipliers * est.total_cycles
    notes = summary(est)
    notes.update(
        {
            "static_power_w": en.static_w,
            "dynamic_power_w": en.dynamic_pj * 1e-12 / seconds if seconds > 0 else 0.0,
            "power_w": en.power_w(seconds),
            "area_fraction": est.device_fraction,
            "latency_s_per_sample": est.latency_cycles * est.clock_period_s,
        }
    )
    return Metrics(
        cycles=float(est.total_cycles),
        latency_s=seconds,
        energy_pj=en.total_pj,
        energy_breakdown_pj=en.breakdown_pj,
        traffic_bytes={"DRAM": traffic},
        utilization={"multipliers": macs / slots if slots else 0.0},
        compute_cycles=float(est.total_cycles),
        macs=macs,
        padded_macs=macs,
        model="fpga",
        notes={"fpga": notes},
    )

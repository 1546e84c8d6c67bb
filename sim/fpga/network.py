"""A network of hls4ml layers on one device: totals, fit, latency, clock.

Layers are chained the way hls4ml's top function chains them: with the
``resource`` strategy or ``io_stream`` the top function is a ``#pragma HLS
DATAFLOW`` region (``SetPipelineStyle``, ``backends/vivado/passes/
pipeline_style.py``), one process per layer, each handing its output array
(io_parallel: a completely partitioned array, a ping-pong channel) or stream
(io_stream: a FIFO) to the next. A sample's latency is the sum of the layer
latencies plus ``channel_cycles`` per hand-over and ``top_cycles``; in a
dataflow region a new sample enters every ``max(layer II)`` cycles, so ``S``
samples take ``latency + (S - 1) * II``.

Resources add up over the layers, plus the inter-layer channels (LUT/FF
terms ``chan_bits``); LUT and FF are the coefficient-weighted sums of the
terms. The design is checked against the device's budgets
(``hw_models.fpga.capacities``): one that does not fit raises
``FPGAFitError`` naming the resource that overflows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hw_models import fpga as hw_fpga
from sim.fpga import coefficients as _coeffs
from sim.fpga.coefficients import FF_TERMS, LUT_TERMS, Coefficients
from sim.fpga.config import HLSConfig
from sim.fpga.layer_model import LayerEstimate, estimate_layer
from sim.fpga.layers import Layer

RESOURCES = ("dsp", "bram_18k", "uram", "lut", "ff")


@dataclass(frozen=True)
class NetworkEstimate:
    config: HLSConfig
    layers: tuple[LayerEstimate, ...]
    #: resource -> used (dsp, bram_18k, uram, lut, ff)
    used: dict[str, float]
    available: dict[str, float]
    #: per layer: resource -> used (LUT/FF from that layer's own terms)
    per_layer: dict[str, dict[str, float]]
    latency_cycles: int
    ii_cycles: int
    samples: int
    total_cycles: int
    clock_estimate_s: float
    lut_terms: dict[str, float] = field(default_factory=dict)
    ff_terms: dict[str, float] = field(default_factory=dict)

    @property
    def fractions(self) -> dict[str, float]:
        return {r: self.used[r] / self.available[r] for r in RESOURCES if self.available[r] > 0}

    @property
    def device_fraction(self) -> float:
        """The largest used fraction of any resource (what limits the design)."""
        return max(self.fractions.values())

    @property
    def limiting_resource(self) -> str:
        f = self.fractions
        return max(f, key=f.get)

    @property
    def fits(self) -> bool:
        return all(self.used[r] <= self.available[r] for r in RESOURCES)

    @property
    def clock_period_s(self) -> float:
        """The period the design runs at: the target unless HLS estimates longer."""
        return max(self.config.clock_period_s, self.clock_estimate_s)

    @property
    def multipliers(self) -> int:
        return sum(le.multipliers for le in self.layers)


def _dot(terms: dict[str, float], coef: dict[str, float]) -> float:
    return sum(v * coef.get(k, 0.0) for k, v in terms.items())


def _add(into: dict[str, float], terms: dict[str, float]) -> None:
    for k, v in terms.items():
        into[k] = into.get(k, 0.0) + v


def channel_bits(layers: tuple[Layer, ...] | list[Layer], cfg: HLSConfig) -> float:
    """Bits of the arrays handed between consecutive layers."""
    return float(sum(lay.out_elems * cfg.input_bits for lay in layers[:-1]))


def estimate_network(
    layers: tuple[Layer, ...] | list[Layer],
    cfg: HLSConfig,
    coeffs: Coefficients | None = None,
    *,
    samples: int = 1,
    check_fit: bool = True,
) -> NetworkEstimate:
    """Resources, latency and II of ``layers`` built with ``cfg``.

    Raises ``FPGAFitError`` (naming the overflowing resource) when the design
    does not fit ``cfg.device`` and ``check_fit`` is set.
    """
    co = coeffs or _coeffs.load()
    layers = tuple(layers)
    ests = tuple(estimate_layer(lay, cfg, co) for lay in layers)
    lut_terms = dict.fromkeys(LUT_TERMS, 0.0)
    ff_terms = dict.fromkeys(FF_TERMS, 0.0)
    per_layer: dict[str, dict[str, float]] = {}
    for le in ests:
        _add(lut_terms, le.lut_terms)
        _add(ff_terms, le.ff_terms)
        per_layer[le.name] = {
            "dsp": le.dsp,
            "bram_18k": le.bram_18k,
            "uram": 0.0,
            "lut": _dot(le.lut_terms, co.lut),
            "ff": _dot(le.ff_terms, co.ff),
            "multipliers": float(le.multipliers),
            "reuse_factor": float(le.reuse_factor),
            "latency_cycles": float(le.latency_cycles),
            "ii_cycles": float(le.ii_cycles),
        }
    chan = channel_bits(layers, cfg)
    lut_terms["chan_bits"] += chan
    ff_terms["chan_bits"] += chan
    used = {
        "dsp": float(sum(le.dsp for le in ests)),
        "bram_18k": float(sum(le.bram_18k for le in ests)),
        "uram": 0.0,
        "lut": round(_dot(lut_terms, co.lut)),
        "ff": round(_dot(ff_terms, co.ff)),
    }
    available = hw_fpga.capacities(cfg.device)
    hand_overs = max(0, len(ests) - 1)
    latency = sum(le.latency_cycles for le in ests) + co.channel_cycles * hand_overs + co.top_cycles
    ii = max(le.ii_cycles for le in ests)
    n = max(1, int(samples))
    est = NetworkEstimate(
        config=cfg,
        layers=ests,
        used=used,
        available=available,
        per_layer=per_layer,
        latency_cycles=int(latency),
        ii_cycles=int(ii),
        samples=n,
        total_cycles=int(latency + (n - 1) * ii),
        clock_estimate_s=co.clock_estimate_s,
        lut_terms=lut_terms,
        ff_terms=ff_terms,
    )
    if check_fit:
        err = hw_fpga.fit_error(cfg.device, used, available)
        if err is not None:
            raise err
    return est


def summary(est: NetworkEstimate) -> dict[str, Any]:
    """Plain-dict form (for ``Metrics.notes["fpga"]``)."""
    return {
        "device": est.config.device,
        "strategy": est.config.strategy,
        "io_type": est.config.io_type,
        "reuse_factor": est.config.reuse_factor,
        "weight_bits": est.config.weight_bits,
        "input_bits": est.config.input_bits,
        "accum_bits": est.config.accum_bits,
        "used": dict(est.used),
        "available": dict(est.available),
        "fractions": est.fractions,
        "device_fraction": est.device_fraction,
        "limiting_resource": est.limiting_resource,
        "layers": {k: dict(v) for k, v in est.per_layer.items()},
        "latency_cycles": est.latency_cycles,
        "ii_cycles": est.ii_cycles,
        "samples": est.samples,
        "total_cycles": est.total_cycles,
        "target_clock_period_s": est.config.clock_period_s,
        "clock_estimate_s": est.clock_estimate_s,
        "clock_period_s": est.clock_period_s,
        "multipliers": est.multipliers,
    }

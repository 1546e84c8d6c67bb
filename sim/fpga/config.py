"""The hls4ml configuration a design is built with (``HLSConfig``).

The fields are the knobs of hls4ml's ``HLSConfig`` that the model uses
(hls4ml docs, ``docs/api/configuration.rst``): ``Strategy`` (``Latency`` or
``Resource``), ``ReuseFactor``, ``IOType`` (``io_parallel`` or
``io_stream``), the fixed-point precisions and the ``ClockPeriod``.
Defaults are hls4ml's: ``fixed<16,6>`` for data, results and accumulators
(``default_precision='fixed<16,6>'``; the dense config's ``accum_t`` is
``ap_fixed<16,6>``), ``io_parallel``, a 5 ns clock period.

:func:`config_from_arch` reads them from an FPGA-family architecture's
parameters (``precision``, ``reuse_factor``, ``strategy``, ``io_type``,
``input_bits``, ``accum_bits``, ``clock_hz``, ``device``; see
``hw_models/fpga.py``) and lets keyword options override them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from hw_models.errors import HardwareError

STRATEGIES = ("latency", "resource")
IO_TYPES = ("io_parallel", "io_stream")
#: hls4ml's default ``ClockPeriod`` (ns), the wa-hls4ml runs' target too
DEFAULT_CLOCK_PERIOD_S = 5e-9
#: hls4ml's default precision ``fixed<16,6>``: 16 bits
DEFAULT_BITS = 16


@dataclass(frozen=True)
class HLSConfig:
    """What hls4ml is told for every layer of a network (one global setting)."""

    device: str = "u250"
    strategy: str = "resource"
    io_type: str = "io_parallel"
    reuse_factor: int = 1
    #: weight and bias width (``fixed<precision, 1>`` in the wa-hls4ml runs)
    weight_bits: int = DEFAULT_BITS
    #: input, layer-output (result_t) and inter-layer data width
    input_bits: int = DEFAULT_BITS
    accum_bits: int = DEFAULT_BITS
    clock_period_s: float = DEFAULT_CLOCK_PERIOD_S
    #: pack two multiplies into one DSP48E2 when both operands are <= 8 bits
    #: (Xilinx WP486). Vitis HLS does not do this for hls4ml's ``a * w``
    #: products by itself (the wa-hls4ml rows show one DSP per multiplier at
    #: 8-bit weights), so it is off unless asked for.
    dsp_packing: bool = False

    def __post_init__(self) -> None:
        _check_choice("strategy", self.strategy, STRATEGIES)
        _check_choice("io_type", self.io_type, IO_TYPES)
        for name in ("reuse_factor", "weight_bits", "input_bits", "accum_bits"):
            v = getattr(self, name)
            hi = 1 << 24 if name == "reuse_factor" else 64
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
                raise HardwareError(
                    f"{name} must be an integer in [1, {hi}], got {v!r}", field=f"params.{name}"
                )
        if not (isinstance(self.clock_period_s, int | float) and self.clock_period_s > 0):
            raise HardwareError(
                f"clock period must be > 0 s, got {self.clock_period_s!r}", field="params.clock_hz"
            )


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise HardwareError(
            f"{name} must be one of {', '.join(choices)}, got {value!r}", field=f"params.{name}"
        )


#: option name -> HLSConfig field, for :func:`config_from_arch` keyword overrides
_OPTION_FIELDS = {f.name for f in fields(HLSConfig)} | {"precision", "clock_hz"}


def resolve_strategy(strategy: str, reuse_factor: int) -> str:
    """``auto`` -> hls4ml's advice: ``Latency`` for reuse factor 1, ``Resource``
    above it ("should be larger than 1 when using resource", configuration.rst)."""
    if strategy == "auto":
        return "latency" if reuse_factor == 1 else "resource"
    return strategy


def config_from_arch(arch: Any, **opts: Any) -> HLSConfig:
    """The :class:`HLSConfig` of an FPGA-family architecture, ``opts`` overriding
    its parameters (same names: ``reuse_factor=64``, ``precision=8``, ...)."""
    bad = sorted(k for k in opts if k not in _OPTION_FIELDS)
    if bad:
        raise HardwareError(
            f"unknown FPGA option {bad[0]!r}; allowed: {', '.join(sorted(_OPTION_FIELDS))}",
            field=bad[0],
        )
    p = dict(getattr(arch, "params", {}) or {})
    p.update({k: v for k, v in opts.items() if k != "weight_bits"})
    if "weight_bits" in opts:
        p["precision"] = opts["weight_bits"]
    rf = int(p.get("reuse_factor") or 1)
    clock_hz = p.get("clock_hz")
    return HLSConfig(
        device=str(p.get("device") or "u250"),
        strategy=resolve_strategy(str(p.get("strategy") or "auto"), rf),
        io_type=str(p.get("io_type") or "io_parallel"),
        reuse_factor=rf,
        weight_bits=int(p.get("precision") or p.get("datatype_bits") or DEFAULT_BITS),
        input_bits=int(p.get("input_bits") or DEFAULT_BITS),
        accum_bits=int(p.get("accum_bits") or DEFAULT_BITS),
        clock_period_s=(
            float(opts["clock_period_s"])
            if "clock_period_s" in opts
            else (1.0 / float(clock_hz) if clock_hz else DEFAULT_CLOCK_PERIOD_S)
        ),
        dsp_packing=bool(p.get("dsp_packing", False)),
    )

"""The few global coefficients of the hls4ml model (``coefficients.yaml``).

Each resource is a closed form of the layer structure (``sim/fpga/
layer_model.py``) with a handful of scalars that say how many LUTs or FFs
Vitis HLS spends per unit of a structure: per LUT6 of a LUT-ROM, per bit of
an accumulator, per bit of an input-select multiplexer, and so on. Those in
``FITTED_LUT`` / ``FITTED_FF`` are fitted on the wa-hls4ml dev rows
(``sim/fpga/calibration.py``; ``einsim experiment fpga-validation --refit``
rewrites the file); the others are fixed with the reason next to them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from hw_models.errors import HardwareError

PATH = Path(__file__).resolve().parent / "coefficients.yaml"

#: LUT terms (see ``layer_model``): LUTs per unit of each
LUT_TERMS: tuple[str, ...] = (
    "rom_lut6",
    "mult_pp_bits",
    "mult_acc_bits",
    "in_bits",
    "acc_bits",
    "chan_bits",
    "layers",
    "act_bits",
    "srl_lut",
    "lutram_lut6",
)
#: FF terms: FFs per unit of each
FF_TERMS: tuple[str, ...] = (
    "in_bits",
    "acc_bits",
    "chan_bits",
    "mult_pp_bits",
    "layers",
    "act_bits",
    "kernel_bits",
)
#: terms with a fixed coefficient (one LUT/FF per cell or bit; see ``MEANING``
#: in experiments/fpga_validation.py); the calibration fits all the others
FIXED_LUT: tuple[str, ...] = ("act_bits", "srl_lut", "lutram_lut6")
FIXED_FF: tuple[str, ...] = ("act_bits", "kernel_bits")
FITTED_LUT: tuple[str, ...] = tuple(t for t in LUT_TERMS if t not in FIXED_LUT)
FITTED_FF: tuple[str, ...] = tuple(t for t in FF_TERMS if t not in FIXED_FF)


@dataclass(frozen=True)
class Coefficients:
    lut: dict[str, float]
    ff: dict[str, float]
    #: pipeline depth of one dense/conv layer's reuse loop (cycles)
    layer_depth_cycles: int = 1
    #: cycles per hand-over between two dataflow processes
    channel_cycles: int = 1
    #: cycles of the top function outside its layers
    top_cycles: int = 0
    #: narrowest weight width Vitis HLS binds a multiply to a DSP (below: LUTs)
    dsp_min_bits: int = 7
    #: weight ROMs of layers with at least this many multipliers go to BRAM
    #: (0: weights always in LUT-ROM)
    rom_bram_min_multipliers: int = 0
    #: memories smaller than this (bits) go to LUTRAM instead of BRAM
    lutram_max_bits: int = 1024
    #: critical path Vitis HLS estimates for these kernels (s)
    clock_estimate_s: float = 3.9e-9
    #: meaning, value and provenance of each coefficient (for the docs/report)
    meaning: dict[str, str] = field(default_factory=dict)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "lut": dict(self.lut),
            "ff": dict(self.ff),
            "layer_depth_cycles": self.layer_depth_cycles,
            "channel_cycles": self.channel_cycles,
            "top_cycles": self.top_cycles,
            "dsp_min_bits": self.dsp_min_bits,
            "rom_bram_min_multipliers": self.rom_bram_min_multipliers,
            "lutram_max_bits": self.lutram_max_bits,
            "clock_estimate_s": self.clock_estimate_s,
            "meaning": dict(self.meaning),
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Coefficients:
        try:
            lut = {k: float(d["lut"].get(k, 0.0)) for k in LUT_TERMS}
            ff = {k: float(d["ff"].get(k, 0.0)) for k in FF_TERMS}
            return cls(
                lut=lut,
                ff=ff,
                layer_depth_cycles=int(d.get("layer_depth_cycles", 1)),
                channel_cycles=int(d.get("channel_cycles", 1)),
                top_cycles=int(d.get("top_cycles", 0)),
                dsp_min_bits=int(d.get("dsp_min_bits", 7)),
                rom_bram_min_multipliers=int(d.get("rom_bram_min_multipliers", 0)),
                lutram_max_bits=int(d.get("lutram_max_bits", 1024)),
                clock_estimate_s=float(d.get("clock_estimate_s", 3.9e-9)),
                meaning={str(k): str(v) for k, v in (d.get("meaning") or {}).items()},
                source=str(d.get("source", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise HardwareError(f"{PATH}: malformed FPGA coefficients ({exc})") from None

    def with_fit(self, **changes: Any) -> Coefficients:
        return replace(self, **changes)


@functools.cache
def load(path: str | None = None) -> Coefficients:
    """The shipped coefficients (cached)."""
    p = Path(path) if path else PATH
    from workloads.yamlio import load_yaml

    return Coefficients.from_dict(load_yaml(p, "FPGA coefficients file", error=HardwareError)[0])


def save(coeffs: Coefficients, path: str | Path = PATH) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(coeffs.to_dict(), fh, sort_keys=False, width=100)
    load.cache_clear()

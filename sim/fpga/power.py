"""Static and dynamic power of an hls4ml design, per resource.

Structure (Xilinx Power Estimator, UG440 "Total Power"): total device power =
device static + design dynamic. Dynamic energy is counted per resource and
per use; figures are einsim's cited ASIC tables at the devices' 16 nm node
(``hw_models/tables``: Horowitz ISSCC 2014 MAC, add and SRAM energies,
Aladdin register energy, node-scaled) times the FPGA/ASIC dynamic-power gap
of I. Kuon and J. Rose, "Measuring the gap between FPGAs and ASICs", IEEE
TCAD 26(2), 2007 (about 14x for soft logic, 7x where hard DSP/RAM blocks
do the work; ``fpga_devices.yaml``):

* **DSP / LUT multiply**: one MAC energy per multiply-accumulate, times the
  hard (DSP) or soft (LUT multiplier) gap;
* **weight and index memory reads**: SRAM read energy per bit of the word
  read each reuse step (BRAM: a 2,304-byte bank, hard gap; LUT-ROM/LUTRAM:
  soft gap);
* **FF and LUT logic**: register energy per bit and 1-bit-adder energy per
  LUT, soft gap, at XPE's default toggle rate of 12.5% (UG440, Logic sheet),
  every cycle the design runs;
* **activations**: one add/compare per value (soft gap), a BRAM table read
  for exp/divide;
* **off-chip**: the samples' inputs and outputs cross the DDR4/HBM interface
  (``tables.dram_pj_per_bit``).

Static power is the whole device's leakage, ``hw_models.fpga_power``
(about 21 W for the U250); ``static_power_w`` overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hw_models import fpga as hw_fpga
from hw_models import tables
from hw_models.fpga_power import static_power_w
from sim.fpga.network import NetworkEstimate

#: XPE's default toggle rate for logic (UG440, "Using the Logic Sheet")
TOGGLE_RATE = 0.125
#: a BRAM_18K (UG573)
BRAM18_BITS = 18 * 1024


def _node() -> float:
    return float(tables.table("fpga_devices")["node_nm"])


def _gaps() -> tuple[float, float]:
    t = tables.table("fpga_devices")
    return float(t["energy_overhead_soft"]), float(t["energy_overhead_hard"])


@dataclass(frozen=True)
class Energy:
    total_pj: float
    static_w: float
    dynamic_pj: float
    breakdown_pj: dict[str, float]

    def power_w(self, seconds: float) -> float:
        return self.total_pj * 1e-12 / seconds if seconds > 0 else 0.0


def energy(
    est: NetworkEstimate,
    *,
    seconds: float,
    io_bits: float = 0.0,
    static_w: float | None = None,
) -> Energy:
    """Energy of ``est.samples`` inferences taking ``seconds``; ``io_bits``:
    bits read from and written to off-chip memory."""
    cfg = est.config
    node = _node()
    soft, hard = _gaps()
    bits = max(cfg.input_bits, cfg.weight_bits)
    mac = tables.mac_energy_pj(bits, "int", node)
    reg = tables.register_energy_pj_per_bit(node)
    lut_bit = tables.op_energy_pj("add", 32, "int", node) / 32
    bram_bit = tables.sram_read_pj_per_bit(BRAM18_BITS / 8, node)
    lutmem_bit = tables.sram_read_pj_per_bit(64 / 8, node)
    n = est.samples
    br = {"dsp": 0.0, "lut_mult": 0.0, "bram": 0.0, "lutrom": 0.0, "activation": 0.0}
    for le in est.layers:
        if le.kind == "activation":
            elems = le.lut_terms.get("act_bits", 0.0) / max(1, cfg.input_bits)
            op = tables.op_energy_pj("add", cfg.input_bits, "int", node) * soft
            br["activation"] += n * elems * op
            for m in le.memories:
                br["bram"] += n * elems * m.width_bits * bram_bit * hard
            continue
        macs = n * le.macs
        if le.dsp_per_multiplier > 0:
            br["dsp"] += macs * mac * hard * le.dsp_per_multiplier
        else:
            br["lut_mult"] += macs * mac * soft
        reads = n * le.busy_cycles
        for m in le.memories:
            if m.kind == "bram":
                br["bram"] += reads * m.width_bits * bram_bit * hard
            else:
                br["lutrom"] += reads * m.width_bits * lutmem_bit * soft
    cycles = est.total_cycles
    br["ff"] = est.used["ff"] * cycles * reg * soft * TOGGLE_RATE
    br["lut_logic"] = est.used["lut"] * cycles * lut_bit * soft * TOGGLE_RATE
    br["offchip"] = io_bits * tables.dram_pj_per_bit(_offchip_kind(cfg.device))
    p_static = static_power_w(cfg.device) if static_w is None else float(static_w)
    br["static"] = p_static * seconds * 1e12
    dynamic = sum(v for k, v in br.items() if k != "static")
    return Energy(dynamic + br["static"], p_static, dynamic, br)


def _offchip_kind(device: str) -> str:
    return str(hw_fpga.device(device)["offchip_kind"])

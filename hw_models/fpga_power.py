"""Static (leakage) power of an FPGA device, per resource.

An FPGA leaks in every resource whether a design uses it or not (the
"device static" of the Xilinx Power Estimator, UG440 "Total Power"). einsim
estimates it from its own cited tables (``hw_models/tables``) and one rule,
leakage scales like area (``hw_models/tables.py``):

* each resource's ASIC-equivalent area: one Aladdin adder bit per LUT
  (int32_add / 32), one Aladdin register bit per FF, a 22-bit MAC per
  DSP48E2 (its 27 x 18 multiplier), 18 Kb / 288 Kb of SRAM per BRAM_18K /
  URAM, node-scaled to the device's 16 nm;
* times the FPGA/ASIC area gap of I. Kuon and J. Rose, "Measuring the gap
  between FPGAs and ASICs", IEEE TCAD 26(2), 2007: 35 for LUT and FF logic,
  18 with hard blocks (DSP, block RAM);
* times Aladdin's leakage per area (int32_mult: 8.0e-5 W over 6,350 um^2).

The U250 comes to about 21 W, the U280 and VU9P to about 15 W. The FPGA
family's ``static_power_w`` parameter overrides the estimate.
"""

from __future__ import annotations

import functools

from hw_models import tables

#: Kuon & Rose (TCAD 2007) FPGA/ASIC area ratios: LUT+FF logic 35, with hard blocks 18
AREA_GAP_SOFT, AREA_GAP_HARD = 35.0, 18.0
#: a BRAM_18K and a URAM block (UG573)
BRAM18_BITS, URAM_BITS = 18 * 1024, 288 * 1024
#: the DSP48E2's 27 x 18 multiplier as an equivalent square multiplier width
DSP_EQUIV_BITS = 22


@functools.cache
def static_power_w(device: str) -> float:
    """Device static power estimate (W) of ``device`` (u250, u280, vu9p)."""
    node = float(tables.table("fpga_devices")["node_nm"])
    al = tables.table("aladdin_40nm")
    leak_per_um2 = al["leakage_w"]["int32_mult"] / al["area_um2"]["int32_mult"]
    lut_um2 = tables.scale_area(al["area_um2"]["int32_add"] / 32, al["node_nm"], node)
    sram = tables.sram_area_um2_per_bit(node)
    per = {
        "lut": lut_um2 * AREA_GAP_SOFT,
        "ff": tables.register_area_um2_per_bit(node) * AREA_GAP_SOFT,
        "dsp": tables.mac_area_um2(DSP_EQUIV_BITS, "int", node) * AREA_GAP_HARD,
        "bram_18k": BRAM18_BITS * sram * AREA_GAP_HARD,
        "uram": URAM_BITS * sram * AREA_GAP_HARD,
    }
    cap = tables.table("fpga_devices")["devices"][device]
    return float(sum(float(cap[r]) * per[r] for r in per) * leak_per_um2)

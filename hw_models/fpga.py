"""FPGA family: a spatial design (MAC array + on-chip buffer) placed on a
device, with a resource model that says whether it fits and how fast it runs.

Resource rules (:func:`estimate_resources`; the constants below are einsim's
rules of thumb unless a source is named):

* **DSP** -- MACs = rows x cols; physical multipliers = ceil(MACs / R) for
  reuse factor R (hls4ml: each multiplier is used R times, II ~ R). DSPs per
  multiplier: 0.5 for int <= 8 bits (two 8-bit MACs packed in one DSP48E2,
  Xilinx WP486 "Deep learning with INT8 optimization on Xilinx devices"),
  1 up to 18 bits (one 27x18 DSP48E2 multiplier per 16-bit or 18x27 MAC; fp
  up to 16 bits likewise), ceil(b/27) x ceil(b/18) above.
* **BRAM/URAM** -- the buffer is split into rows + cols banks (one port per
  array edge), each ``datatype_bits`` wide and ``buffer_bits / (banks x
  width)`` deep. A bank goes to URAM (4K x 72) when it holds at least 144 Kb
  (8 BRAM18s' worth) and ``buffer_memory`` is "auto" (or always with
  "uram"; words up to 72 bits are packed into its 72-bit rows); otherwise to BRAM18 in the cheapest aspect ratio (16Kx1, 8Kx2,
  4Kx4, 2Kx9, 1Kx18, 512x36).
* **LUT** -- 2,000 for control/AXI, 10 per PE (operand routing/control),
  per physical multiplier 2 x bits x ceil(R/4) operand-select LUTs when R > 1
  (a LUT6 is a 4:1 mux), 8 x bits per fp MAC (normalise/round of the fp
  adder), and 30 x bits per 1D-array PE (exp, divide, max in soft logic).
* **FF** -- 4,000 for control, per PE 2 x bits pipeline registers + a 32-bit
  accumulator, 4 x bits per 1D-array PE.
* **Clock** -- 300 MHz up to 50% use of the most-used resource, derated
  linearly to 200 MHz at 100% ("typical closure 200-300 MHz", docs/references.md).

A design that does not fit raises :class:`FPGAFitError` naming the first
overflowing resource in the order DSP, BRAM, URAM, LUT, FF and by how much;
:func:`fits` is the non-raising form for sweep filters.

Area and power: an FPGA's silicon is fixed, so the architecture's
components carry no area (``area_mm2`` = 0); use :func:`fits` as the budget
constraint and the used fraction of the device (``sim.fpga``'s
``device_fraction``) as the FPGA's "area". The architecture's
``static_power_w`` is the whole device's leakage (``hw_models/fpga_power.py``;
the ``static_power_w`` parameter overrides it).

hls4ml-style networks (``sim/fpga``, docs/fpga.md) read the parameters
``reuse_factor``, ``precision`` (weight bits; default the cascade's),
``strategy`` (``auto``: latency for R = 1, resource above), ``io_type``,
``input_bits`` and ``accum_bits`` (hls4ml's ``fixed<16,6>``: 16) and
``clock_hz`` (the HLS target; default hls4ml's 5 ns). The MAC-array model
above ignores them except ``reuse_factor``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hw_models import tables
from hw_models.arch import Architecture, ComputeUnit
from hw_models.errors import FPGAFitError, HardwareError
from hw_models.fpga_power import static_power_w
from hw_models.levels import level
from hw_models.params import Param, at_least, check_params

FAMILY = "fpga"
DEVICES = ("u280", "u250", "vu9p")
RESOURCES = ("dsp", "bram_18k", "uram", "lut", "ff")

LUT_BASE = 2000
LUT_PER_PE = 10
LUT_PER_FP_BIT = 8
LUT_PER_1D_BIT = 30
FF_BASE = 4000
ACC_BITS = 32
URAM_MIN_BANK_BITS = 8 * 18 * 1024
BRAM18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
URAM_DEPTH, URAM_WIDTH = 4096, 72


def _schema() -> dict[str, Param]:
    ps = [
        Param("device", "str", choices=DEVICES),
        Param("rows", "int", 1, 4096),
        Param("cols", "int", 1, 4096),
        Param("datatype_bits", "int", 2, 64),
        Param("number_format", "str", choices=("int", "fp"), default=None),
        Param("buffer_bytes", "float", 0, 2**40, lo_open=True),
        Param("reuse_factor", "int", 1, 1 << 20, default=1),
        Param("clock_hz", "float", 0, 1e10, lo_open=True, default=None),
        Param("dataflow", "str", choices=("os", "ws", "is"), default="os"),
        Param("array1d_pes", "int", 0, 1 << 20, default=0),
        Param("buffer_memory", "str", choices=("auto", "bram", "uram"), default="auto"),
        Param("pe_rf_bytes", "float", 0, 2**20, lo_open=True, default=None),
        Param("offchip_bandwidth_bytes_per_s", "float", 0, 1e16, lo_open=True, default=None),
        # hls4ml-style network parameters (sim/fpga; docs/fpga.md)
        Param("precision", "int", 1, 32, default=None, doc="weight bits (default datatype_bits)"),
        Param("strategy", "str", choices=("auto", "latency", "resource"), default="auto"),
        Param("io_type", "str", choices=("io_parallel", "io_stream"), default="io_parallel"),
        Param("input_bits", "int", 1, 32, default=16, doc="data/result bits (fixed<16,6>)"),
        Param("accum_bits", "int", 1, 64, default=16, doc="accumulator bits (accum_t)"),
        Param("static_power_w", "float", 0, 1e4, default=None, doc="device static power"),
    ]
    return {p.name: p for p in ps}


SCHEMA: dict[str, Param] = _schema()


def _used(resource: str) -> property:
    """A read-only attribute: the whole units of ``resource`` a design uses."""
    return property(lambda self: int(self.used[resource]), doc=f"{resource} used (whole units)")


@dataclass(frozen=True)
class FPGAResources:
    """Resource use of a design on a device, and the clock it achieves."""

    device: str
    used: dict[str, float]
    available: dict[str, float]
    achievable_clock_hz: float
    initiation_interval_cycles: int
    multipliers: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    dsp = _used("dsp")
    bram_18k = _used("bram_18k")
    uram = _used("uram")
    lut = _used("lut")
    ff = _used("ff")

    @property
    def utilization(self) -> dict[str, float]:
        return {r: self.used[r] / self.available[r] for r in RESOURCES}

    @property
    def overflows(self) -> tuple[str, ...]:
        return tuple(r for r in RESOURCES if self.used[r] > self.available[r])

    @property
    def fits(self) -> bool:
        return not self.overflows


def device(name: str) -> dict[str, Any]:
    devs = tables.table("fpga_devices")["devices"]
    if name not in devs:
        raise HardwareError(
            f"params.device must be one of {', '.join(DEVICES)}, got {name!r}",
            field="params.device",
        )
    return devs[name]


def _number_format(p: dict[str, Any]) -> str:
    return p["number_format"] or ("int" if p["datatype_bits"] <= 8 else "fp")


def dsp_per_multiplier(bits: int, number_format: str) -> float:
    if bits <= 8 and number_format == "int":
        return 0.5
    if bits <= 18:
        return 1.0
    return float(math.ceil(bits / 27) * math.ceil(bits / 18))


def bram18_for_bank(width_bits: int, depth: int) -> int:
    return min(math.ceil(width_bits / w) * math.ceil(depth / d) for d, w in BRAM18_SHAPES)


def uram_for_bank(width_bits: int, depth: int) -> int:
    """URAMs for a bank; words up to 72 bits are packed into the 72-bit
    rows (the array streams its buffer sequentially), wider words span
    ceil(width/72) URAMs."""
    if width_bits <= URAM_WIDTH:
        return math.ceil(width_bits * depth / (URAM_WIDTH * URAM_DEPTH))
    return math.ceil(width_bits / URAM_WIDTH) * math.ceil(depth / URAM_DEPTH)


def _estimate(p: dict[str, Any]) -> FPGAResources:
    dev = device(p["device"])
    bits, rows, cols, reuse = p["datatype_bits"], p["rows"], p["cols"], p["reuse_factor"]
    nf = _number_format(p)
    pes = rows * cols
    mults = math.ceil(pes / reuse)
    dsp = math.ceil(mults * dsp_per_multiplier(bits, nf))

    banks = rows + cols
    depth = max(1, math.ceil(p["buffer_bytes"] * 8 / (banks * bits)))
    bank_bits = depth * bits
    use_uram = p["buffer_memory"] == "uram" or (
        p["buffer_memory"] == "auto" and bank_bits >= URAM_MIN_BANK_BITS
    )
    bram = 0 if use_uram else banks * bram18_for_bank(bits, depth)
    uram = banks * uram_for_bank(bits, depth) if use_uram else 0

    lut = LUT_BASE + LUT_PER_PE * pes + LUT_PER_1D_BIT * bits * p["array1d_pes"]
    if reuse > 1:
        lut += mults * 2 * bits * math.ceil(reuse / 4)
    if nf == "fp":
        lut += mults * LUT_PER_FP_BIT * bits
    ff = FF_BASE + pes * (2 * bits + ACC_BITS) + p["array1d_pes"] * 4 * bits

    used = {"dsp": dsp, "bram_18k": bram, "uram": uram, "lut": lut, "ff": ff}
    avail = {r: float(dev[r]) for r in RESOURCES}
    fdev = tables.table("fpga_devices")
    fmax, fmin = fdev["clock_max_hz"], fdev["clock_min_hz"]
    util = max(used[r] / avail[r] for r in RESOURCES)
    clock = fmax if util <= 0.5 else max(fmin, fmax - (fmax - fmin) * (util - 0.5) / 0.5)
    notes = []
    if mults > 4096:
        notes.append(
            f"{mults} parallel multipliers: HLS unrolls beyond about 4096 tend to fail "
            "(hls4ml experience, docs/references.md); consider a larger reuse_factor"
        )
    return FPGAResources(
        device=p["device"],
        used={k: float(v) for k, v in used.items()},
        available=avail,
        achievable_clock_hz=float(clock),
        initiation_interval_cycles=reuse,
        multipliers=mults,
        notes=tuple(notes),
    )


_LABEL = {"dsp": "DSP", "bram_18k": "BRAM18K", "uram": "URAM", "lut": "LUT", "ff": "FF"}


def fit_error(
    device_name: str, used: dict[str, float], available: dict[str, float]
) -> FPGAFitError | None:
    """The error naming every overflowing resource (the first one in the order
    DSP, BRAM, URAM, LUT, FF is ``resource``), or None when the design fits."""
    over = [r for r in RESOURCES if used.get(r, 0.0) > available[r]]
    if not over:
        return None
    first = over[0]
    parts = [
        f"{_LABEL[r]} {used[r]:,.0f} used > {available[r]:,.0f} available "
        f"(over by {used[r] - available[r]:,.0f}, {100 * used[r] / available[r]:.0f}%)"
        for r in over
    ]
    msg = f"design does not fit {device_name}: " + parts[0]
    if len(parts) > 1:
        msg += "; also " + "; ".join(parts[1:])
    return FPGAFitError(
        msg,
        resource=first,
        used=used[first],
        available=available[first],
        field=f"resources.{first}",
    )


def _fit_error(res: FPGAResources) -> FPGAFitError:
    err = fit_error(res.device, res.used, res.available)
    assert err is not None  # callers check res.fits first
    return err


def capacities(name: str) -> dict[str, float]:
    """The device's resource budgets (``dsp``, ``bram_18k``, ``uram``, ``lut``, ``ff``)."""
    dev = device(name)
    return {r: float(dev[r]) for r in RESOURCES}


def estimate_resources(params: dict[str, Any]) -> FPGAResources:
    """Resource use of ``params`` (FPGA family parameters). Raises
    :class:`FPGAFitError` when the design does not fit the device."""
    p = check_params(FAMILY, SCHEMA, params)
    res = _estimate(p)
    if not res.fits:
        raise _fit_error(res)
    return res


def fits(params: dict[str, Any]) -> bool:
    """True when ``params`` are valid and the design fits (never raises)."""
    try:
        p = check_params(FAMILY, SCHEMA, params)
        res = _estimate(p)
        if not res.fits:
            return False
        return p["clock_hz"] is None or p["clock_hz"] <= res.achievable_clock_hz
    except HardwareError:
        return False


def fpga(**params: Any) -> Architecture:
    """Build an FPGA :class:`Architecture`; raises :class:`FPGAFitError` if the
    design does not fit or asks for a clock above the achievable one."""
    return build_checked(check_params(FAMILY, SCHEMA, params))


def build_checked(p: dict[str, Any]) -> Architecture:
    """:func:`fpga` of parameters that already passed ``check_params``
    (``hw_models.derive`` checks only the ones it changes)."""
    bits = p["datatype_bits"]
    word = bits / 8
    at_least(
        "params.buffer_bytes",
        p["buffer_bytes"],
        (p["rows"] + p["cols"]) * word,
        f"one {bits}-bit word per bank, {p['rows'] + p['cols']} banks",
    )
    res = _estimate(p)
    if not res.fits:
        raise _fit_error(res)
    clock = p["clock_hz"] or res.achievable_clock_hz
    if clock > res.achievable_clock_hz:
        raise FPGAFitError(
            f"params.clock_hz {clock:g} is above the achievable clock "
            f"{res.achievable_clock_hz:g} Hz for this design on {p['device']}",
            resource="clock",
            used=clock,
            available=res.achievable_clock_hz,
            field="params.clock_hz",
        )
    dev = device(p["device"])
    fdev = tables.table("fpga_devices")
    node = fdev["node_nm"]
    hard, soft = fdev["energy_overhead_hard"], fdev["energy_overhead_soft"]
    nf = _number_format(p)
    rows, cols, reuse = p["rows"], p["cols"], p["reuse_factor"]
    pes = rows * cols
    rf_bytes = p["pe_rf_bytes"] or 4 * word
    at_least("params.pe_rf_bytes", rf_bytes, word, f"one {bits}-bit word")
    offchip_bw = p["offchip_bandwidth_bytes_per_s"] or dev["offchip_bandwidth_bytes_per_s"]
    banks = rows + cols
    dram_pj = tables.dram_pj_per_bit(dev["offchip_kind"]) * bits
    buf_pj = tables.sram_read_pj_per_bit(p["buffer_bytes"] / banks, node) * bits * hard
    rf_pj = tables.register_energy_pj_per_bit(node) * bits * soft
    mac = tables.mac_energy_pj(bits, nf, node) * hard
    add = tables.op_energy_pj("add", tables.accumulator_bits(bits, nf), nf, node) * soft
    cmp_ = tables.compare_energy_pj(bits, node) * soft
    levels = (
        level(
            "DRAM",
            dev["offchip_bytes"],
            bits,
            offchip_bw / clock,
            dram_pj,
            shared_bw=True,
        ),
        level(
            "GlobalBuffer",
            p["buffer_bytes"],
            bits,
            banks * word,
            buf_pj,
            banks=banks,
            fanout_x=cols,
            fanout_y=rows,
        ),
        level(
            "PE_RF",
            rf_bytes,
            bits,
            3 * word,
            rf_pj,
            write_bw_bytes_per_cycle=word,
            instances=pes,
            double_buffered=False,
        ),
    )

    def unit(mac_pj: float, rate: float, exp_rate: float, **fields: Any) -> ComputeUnit:
        """PEs doing a MAC of ``mac_pj`` per ``1 / rate`` cycles; exp and
        divide as 6 MACs + an add (at ``exp_rate``)."""
        return ComputeUnit(
            ops_per_cycle={"mac": rate, "add": rate, "max": rate, "exp": exp_rate, "div": exp_rate},
            energy_pj_per_op={
                "mac": mac_pj,
                "add": add,
                "max": cmp_,
                "exp": 6 * mac_pj + add,
                "div": 6 * mac_pj + add,
            },
            datatype_bits=bits,
            dtype_scale={f"{nf}{bits}": 1.0},
            **fields,
        )

    rate = 1.0 / reuse
    compute = [
        unit(
            mac,
            rate,
            rate / 7,
            name="pe_array",
            kind="dsp_array",
            pes=pes,
            rows=rows,
            cols=cols,
            dataflow=p["dataflow"],
        )
    ]
    if p["array1d_pes"] > 0:
        soft_mac = tables.mac_energy_pj(bits, nf, node) * soft
        compute.append(
            unit(
                soft_mac,
                1.0,
                1.0,
                name="vector_1d",
                kind="array1d",
                pes=p["array1d_pes"],
                rows=1,
                cols=p["array1d_pes"],
                fed_by="GlobalBuffer",
            )
        )
    static_w = p["static_power_w"]
    return Architecture(
        name=f"fpga_{p['device']}",
        family=FAMILY,
        clock_hz=clock,
        static_power_w=static_power_w(p["device"]) if static_w is None else static_w,
        levels=levels,
        compute=tuple(compute),
        params=p,
        sources=(
            fdev["source"],
            tables.table("horowitz_45nm")["source"],
            tables.table("dram")["source"],
        ),
    )

"""Spatial-array family: a 2D PE array (plus optional 1D array) under a
global buffer and DRAM (FuseMax/FLAT/TPU/Eyeriss-like designs).

Levels, outermost first: ``DRAM`` (capacity None unless ``dram_bytes``) ->
``GlobalBuffer`` (fan-out cols x rows to the PEs, multicast and spatial
reduction) -> ``PE_RF`` (one per PE). Compute: ``pe_array`` (array2d) and,
when ``array1d_pes > 0``, ``vector_1d`` (array1d, fed by the GlobalBuffer).

Energy per action comes from the tables in :mod:`hw_models.tables`, scaled to
``tech_node_nm``:

* MAC, add: Horowitz 45 nm (or the FLAT/FuseMax 45 nm table, whose fp16 MAC
  is 17.2 pJ and divide 36.3 pJ), compare (max): Aladdin comparator.
* exp: ``exp_cost_macs`` MACs + ``exp_cost_adds`` adds on the same PE
  (FuseMax: 6 + 1), so its rate is 1/(macs + adds) per PE per cycle; with
  ``exp_cost_macs = 0`` the PE has a native exp unit (table's exp energy,
  one per cycle; only the FuseMax table has one).
* divide: the FuseMax table's figure; with the Horowitz table, the FLAT
  table's divide/MAC ratio (36.3/17.2) times the Horowitz MAC.
* GlobalBuffer: Horowitz SRAM read energy interpolated at the bank size;
  PE_RF: Aladdin register energy per bit; DRAM: per-bit table by kind.

Area: MAC + comparator per PE (Horowitz/Aladdin), registers (Aladdin), SRAM
(bitcell / array efficiency), all scaled to the node.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from hw_models import tables
from hw_models.arch import Architecture, ComputeUnit
from hw_models.errors import HardwareError
from hw_models.levels import level
from hw_models.params import Param, at_least, check_params

FAMILY = "spatial"
MIB = 1 << 20

#: ratio of divide to MAC energy in the FLAT/FuseMax 45 nm table (36.3/17.2)
_DIV_PER_MAC = 36.3 / 17.2


def _schema() -> dict[str, Param]:
    ps = [
        Param("rows", "int", 1, 4096, doc="2D array rows"),
        Param("cols", "int", 1, 4096, doc="2D array columns"),
        Param("dataflow", "str", choices=("os", "ws", "is")),
        Param("clock_hz", "float", 0, 1e11, lo_open=True),
        Param("datatype_bits", "int", 2, 64),
        Param("number_format", "str", choices=("int", "fp"), default=None),
        Param("pe_rf_bytes", "float", 0, 2**30, lo_open=True),
        Param("global_buffer_bytes", "float", 0, 2**44, lo_open=True),
        Param("global_buffer_banks", "int", 1, 1 << 24, default=None),
        Param("global_buffer_bw_bytes_per_cycle", "float", 0, 1e12, lo_open=True, default=None),
        Param("dram_bandwidth_bytes_per_s", "float", 0, 1e18, lo_open=True),
        Param("dram_kind", "str", choices=tables.dram_kinds(), default="hbm2"),
        Param("dram_bytes", "float", 0, 1e18, lo_open=True, default=None),
        Param("array1d_pes", "int", 0, 1 << 24, default=0),
        Param("tech_node_nm", "float", tables.MIN_NODE_NM, tables.MAX_NODE_NM, default=45),
        Param(
            "energy_table",
            "str",
            choices=("horowitz_45nm", "fusemax_45nm"),
            default="horowitz_45nm",
        ),
        Param("exp_cost_macs", "int", 0, 64, default=6),
        Param("exp_cost_adds", "int", 0, 64, default=1),
        Param("static_power_w", "float", 0, 1e6, default=None),
    ]
    return {p.name: p for p in ps}


SCHEMA: dict[str, Param] = _schema()


def number_format(p: dict[str, Any]) -> str:
    """ "int" or "fp"; auto (None): int up to 8 bits, fp above."""
    return p["number_format"] or ("int" if p["datatype_bits"] <= 8 else "fp")


def _op_energies(p: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    """(energy_pj_per_op, ops_per_cycle per PE) for one PE."""
    energy, rate = _op_energies_of(
        p["datatype_bits"],
        p["tech_node_nm"],
        number_format(p),
        p["energy_table"],
        p["exp_cost_macs"],
        p["exp_cost_adds"],
    )
    return dict(energy), dict(rate)


@functools.lru_cache(maxsize=1024, typed=True)
def _op_energies_of(
    bits: int, node: float, nf: str, energy_table: str, exp_cost_macs: int, exp_cost_adds: int
) -> tuple[tuple[tuple[str, float], ...], tuple[tuple[str, float], ...]]:
    """:func:`_op_energies` of checked parameters, as item tuples (cached:
    a sweep asks for the same few combinations at every point)."""
    add = tables.op_energy_pj("add", tables.accumulator_bits(bits, nf), nf, node)
    if energy_table == "fusemax_45nm":
        tab = tables.table("fusemax_45nm")
        mac = tables.scale_energy(tab["energy_pj"]["fp16_mac"], tab["node_nm"], node)
        div = tables.scale_energy(tab["energy_pj"]["fp16_div"], tab["node_nm"], node)
        native_exp = tables.scale_energy(tab["energy_pj"]["fp16_exp"], tab["node_nm"], node)
    else:
        mac = tables.mac_energy_pj(bits, nf, node)
        div = _DIV_PER_MAC * mac
        native_exp = None
    steps = exp_cost_macs + exp_cost_adds
    if exp_cost_macs > 0:
        exp = exp_cost_macs * mac + exp_cost_adds * add
        exp_rate = 1.0 / steps
    elif native_exp is not None:
        exp, exp_rate = native_exp, 1.0
    else:
        raise HardwareError(
            "params.exp_cost_macs must be in [1, 64] with energy_table 'horowitz_45nm' "
            "(that table has no exp energy; 0 means a native exp unit)",
            field="params.exp_cost_macs",
        )
    energy = {
        "mac": mac,
        "add": add,
        "max": tables.compare_energy_pj(bits, node),
        "exp": exp,
        "div": div,
    }
    rate = {"mac": 1.0, "add": 1.0, "max": 1.0, "exp": exp_rate, "div": 1.0}
    return tuple(energy.items()), tuple(rate.items())


def spatial_array(**params: Any) -> Architecture:
    """Build a spatial-array :class:`Architecture` from family parameters."""
    return build_checked(check_params(FAMILY, SCHEMA, params))


def build_checked(p: dict[str, Any]) -> Architecture:
    """:func:`spatial_array` of parameters that already passed
    ``check_params`` (complete and normalised; ``hw_models.derive`` checks
    only the ones it changes). Does the cross-field checks."""
    bits = p["datatype_bits"]
    word_bytes = bits / 8
    at_least("params.pe_rf_bytes", p["pe_rf_bytes"], word_bytes, f"one {bits}-bit word")
    at_least(
        "params.global_buffer_bytes", p["global_buffer_bytes"], word_bytes, f"one {bits}-bit word"
    )
    rows, cols, clock = p["rows"], p["cols"], p["clock_hz"]
    node = p["tech_node_nm"]
    pes = rows * cols
    gb_bytes = p["global_buffer_bytes"]
    banks = p["global_buffer_banks"] or max(1, math.ceil(gb_bytes / MIB))
    if banks * word_bytes > gb_bytes:
        raise HardwareError(
            f"params.global_buffer_banks must be <= {int(gb_bytes / word_bytes)} "
            f"(each bank holds at least one word), got {banks}",
            field="params.global_buffer_banks",
        )
    gb_bw = p["global_buffer_bw_bytes_per_cycle"] or (rows + cols + p["array1d_pes"]) * word_bytes
    dram_bw = p["dram_bandwidth_bytes_per_s"] / clock

    energy, rate = _op_energies(p)
    nf = number_format(p)
    pe_area_um2 = tables.mac_area_um2(bits, nf, node) + tables.compare_area_um2(bits, node)
    leak = tables.mac_leakage_w(bits, node)

    dram_pj = tables.dram_pj_per_bit(p["dram_kind"]) * bits
    gb_pj = tables.sram_read_pj_per_bit(gb_bytes / banks, node) * bits
    rf_pj = tables.register_energy_pj_per_bit(node) * bits
    levels = (
        level(
            "DRAM",
            p["dram_bytes"],
            bits,
            dram_bw,
            dram_pj,
            shared_bw=True,
        ),
        level(
            "GlobalBuffer",
            gb_bytes,
            bits,
            gb_bw,
            gb_pj,
            banks=banks,
            area_mm2=gb_bytes * 8 * tables.sram_area_um2_per_bit(node) / 1e6,
            fanout_x=cols,
            fanout_y=rows,
        ),
        level(
            "PE_RF",
            p["pe_rf_bytes"],
            bits,
            # two operands in and a partial sum per MAC; one result out
            3 * word_bytes,
            rf_pj,
            write_bw_bytes_per_cycle=word_bytes,
            area_mm2=p["pe_rf_bytes"] * 8 * tables.register_area_um2_per_bit(node) / 1e6,
            instances=pes,
            double_buffered=False,
        ),
    )

    def unit(name: str, kind: str, n: int, pe_um2: float, **fields: Any) -> ComputeUnit:
        """``n`` PEs of ``pe_um2`` each, running the ops of ``rate`` / ``energy``."""
        return ComputeUnit(
            name=name,
            kind=kind,
            pes=n,
            ops_per_cycle=dict(rate),
            energy_pj_per_op=dict(energy),
            datatype_bits=bits,
            dtype_scale={f"{nf}{bits}": 1.0},
            area_mm2=n * pe_um2 / 1e6,
            leakage_w=n * leak,
            **fields,
        )

    compute = [
        unit("pe_array", "array2d", pes, pe_area_um2, rows=rows, cols=cols, dataflow=p["dataflow"])
    ]
    n1d = p["array1d_pes"]
    if n1d > 0:
        # each 1D PE: a MAC, a comparator and a few registers of its own
        regs_um2 = 4 * bits * tables.register_area_um2_per_bit(node)
        compute.append(
            unit(
                "vector_1d",
                "array1d",
                n1d,
                pe_area_um2 + regs_um2,
                rows=1,
                cols=n1d,
                fed_by="GlobalBuffer",
            )
        )
    return Architecture(
        name="spatial_array",
        family=FAMILY,
        clock_hz=clock,
        levels=levels,
        compute=tuple(compute),
        static_power_w=p["static_power_w"] or 0.0,
        params=p,
        sources=(
            tables.table("horowitz_45nm")["source"],
            tables.table("aladdin_40nm")["source"],
            tables.table("dram")["source"],
        )
        + (
            (tables.table("fusemax_45nm")["source"],) if p["energy_table"] == "fusemax_45nm" else ()
        ),
    )

"""GPU family: SMs with tensor and CUDA cores, shared memory, L2 and HBM.

Levels, outermost first: ``HBM`` -> ``L2`` (fan-out to ``sm_count`` SMs) ->
``SMEM`` (one per SM; shared memory carve-out of the unified L1) -> ``RF``
(register file, one per SM). Compute units: ``tensor_core`` (dense MACs at
the bf16 tensor rate) and ``cuda_core`` (fp32 MAC/add/max, SFU exp/div).

The GPU performance model reads ``arch.params`` by these exact keys, so the
keys are a contract: ``sm_count, clock_hz, max_clock_hz, tensor_flops_per_s
{fp8, bf16, fp16, tf32, ...}, cuda_core_flops_per_s {fp32, fp64, ...},
smem_bytes_per_sm, l1_bytes_per_sm, regs_bytes_per_sm, l2_bytes,
l2_bandwidth_bytes_per_s, hbm_bytes, hbm_bandwidth_bytes_per_s,
launch_overhead_s, tdp_w, idle_power_w, compute_capability``.

Per-cycle rates use ``clock_hz``, the clock at which the datasheet peaks
hold (H100 SXM: 1830 MHz; 989.4 TFLOP/s = 132 SMs x 4096 flop/clk x 1.83 GHz).

Energy per action: HBM from the DRAM per-bit table; L2 and SMEM from Dally's
GPU figures (50 and 5 pJ per 32-bit word, taken as 16 nm) scaled to the
node; RF as a 64 KiB SRAM bank (Horowitz, interpolated); tensor MAC = a
Horowitz fp16 multiply + fp32 add; CUDA-core ops add Dally's 30 pJ
instruction overhead shared by a 32-thread warp. All scaled by the rule in
:mod:`hw_models.tables`. Static power = measured idle power.

Area: L2, SMEM/L1 and RF as SRAM (bitcell / efficiency at the node); SM
logic ``sm_logic_area_mm2`` per SM (on ``tensor_core``) and the rest of the
die ``uncore_area_mm2`` (NoC, memory controllers, PHYs; on ``HBM``); the
presets choose these two so the total equals the published die area.
"""

from __future__ import annotations

from typing import Any

from hw_models import tables
from hw_models.arch import Architecture, ComputeUnit
from hw_models.errors import HardwareError
from hw_models.levels import level
from hw_models.params import Param, check_params

FAMILY = "gpu"
TENSOR_DTYPES = ("fp4", "fp8", "int8", "fp16", "bf16", "tf32", "fp64")
CUDA_DTYPES = ("fp16", "bf16", "fp32", "fp64")
WORD_BITS = 32


def _schema() -> dict[str, Param]:
    ps = [
        Param("sm_count", "int", 1, 100_000),
        Param("clock_hz", "float", 0, 1e11, lo_open=True),
        Param("max_clock_hz", "float", 0, 1e11, lo_open=True, default=None),
        Param(
            "tensor_flops_per_s",
            "rates",
            0,
            1e20,
            lo_open=True,
            keys=TENSOR_DTYPES,
            required_keys=("bf16",),
        ),
        Param(
            "cuda_core_flops_per_s",
            "rates",
            0,
            1e20,
            lo_open=True,
            keys=CUDA_DTYPES,
            required_keys=("fp32",),
        ),
        Param("smem_bytes_per_sm", "float", 0, 2**32, lo_open=True),
        Param("l1_bytes_per_sm", "float", 0, 2**32, lo_open=True),
        Param("regs_bytes_per_sm", "float", 0, 2**32, lo_open=True),
        Param("l2_bytes", "float", 0, 2**44, lo_open=True),
        Param("l2_bandwidth_bytes_per_s", "float", 0, 1e18, lo_open=True),
        Param("hbm_bytes", "float", 0, 1e18, lo_open=True),
        Param("hbm_bandwidth_bytes_per_s", "float", 0, 1e18, lo_open=True),
        Param("hbm_kind", "str", choices=tables.dram_kinds(), default="hbm3"),
        Param("launch_overhead_s", "float", 0, 1.0),
        Param("tdp_w", "float", 0, 1e6, lo_open=True),
        Param("idle_power_w", "float", 0, 1e6),
        Param("tech_node_nm", "float", tables.MIN_NODE_NM, tables.MAX_NODE_NM, default=5),
        # CUDA compute capability (8.0 Ampere, 9.0 Hopper, 10.0 Blackwell):
        # which kernel classes exist (TMA/wgmma and thread-block clusters
        # need 9.0, CUDA C++ Programming Guide); None: inferred by the GPU
        # kernel model (fp8 tensor cores -> 9.0, else 8.0)
        Param("compute_capability", "float", 1.0, 20.0, default=None),
        # CUDA C Programming Guide, "Arithmetic Instructions" throughput table:
        # 16 results/clk/SM for exp2/rcp (SFU) on compute capability 8.x/9.0;
        # shared memory: 32 banks x 4 B = 128 B/clk/SM.
        Param("sfu_ops_per_cycle_per_sm", "float", 0, 1e6, lo_open=True, default=16),
        Param("smem_bandwidth_bytes_per_cycle_per_sm", "float", 0, 1e9, lo_open=True, default=128),
        Param("sm_logic_area_mm2", "float", 0, 1e5, default=0.0),
        Param("uncore_area_mm2", "float", 0, 1e5, default=0.0),
        Param("die_area_mm2", "float", 0, 1e5, lo_open=True, default=None),
    ]
    return {p.name: p for p in ps}


SCHEMA: dict[str, Param] = _schema()


def _cross_checks(p: dict[str, Any]) -> None:
    if p["max_clock_hz"] is not None and p["max_clock_hz"] < p["clock_hz"]:
        raise HardwareError(
            f"params.max_clock_hz must be >= clock_hz ({p['clock_hz']:g}), got {p['max_clock_hz']:g}",
            field="params.max_clock_hz",
        )
    if p["smem_bytes_per_sm"] > p["l1_bytes_per_sm"]:
        raise HardwareError(
            f"params.smem_bytes_per_sm must be <= l1_bytes_per_sm ({p['l1_bytes_per_sm']:g}; "
            f"shared memory is carved out of the unified L1), got {p['smem_bytes_per_sm']:g}",
            field="params.smem_bytes_per_sm",
        )
    if p["idle_power_w"] > p["tdp_w"]:
        raise HardwareError(
            f"params.idle_power_w must be <= tdp_w ({p['tdp_w']:g}), got {p['idle_power_w']:g}",
            field="params.idle_power_w",
        )
    for key in (
        "smem_bytes_per_sm",
        "l1_bytes_per_sm",
        "regs_bytes_per_sm",
        "l2_bytes",
        "hbm_bytes",
    ):
        if p[key] < WORD_BITS / 8:
            raise HardwareError(
                f"params.{key} must be >= {WORD_BITS // 8} (one {WORD_BITS}-bit word), got {p[key]:g}",
                field=f"params.{key}",
            )


def gpu(**params: Any) -> Architecture:
    """Build a GPU :class:`Architecture` from family parameters."""
    return build_checked(check_params(FAMILY, SCHEMA, params))


def build_checked(p: dict[str, Any]) -> Architecture:
    """:func:`gpu` of parameters that already passed ``check_params``
    (``hw_models.derive`` checks only the ones it changes)."""
    _cross_checks(p)
    sms, clock, node = p["sm_count"], p["clock_hz"], p["tech_node_nm"]
    dally = tables.table("gpu_dally")
    dnode = dally["node_nm"]
    word_scale = WORD_BITS / dally["word_bits"]
    l2_pj = tables.scale_energy(dally["energy_pj_per_word"]["llc"], dnode, node) * word_scale
    l1_pj = tables.scale_energy(dally["energy_pj_per_word"]["l1"], dnode, node) * word_scale
    rf_pj = tables.sram_read_pj_per_bit(64 * 1024, node) * WORD_BITS
    hbm_pj = tables.dram_pj_per_bit(p["hbm_kind"]) * WORD_BITS
    sram_mm2_per_byte = 8 * tables.sram_area_um2_per_bit(node) / 1e6
    word = WORD_BITS / 8

    levels = (
        level(
            "HBM",
            p["hbm_bytes"],
            WORD_BITS,
            p["hbm_bandwidth_bytes_per_s"] / clock,
            hbm_pj,
            shared_bw=True,
            area_mm2=p["uncore_area_mm2"],
        ),
        level(
            "L2",
            p["l2_bytes"],
            WORD_BITS,
            p["l2_bandwidth_bytes_per_s"] / clock,
            l2_pj,
            shared_bw=True,
            area_mm2=p["l2_bytes"] * sram_mm2_per_byte,
            fanout_x=sms,
            multicast=True,
            spatial_reduce=False,
        ),
        level(
            "SMEM",
            p["smem_bytes_per_sm"],
            WORD_BITS,
            p["smem_bandwidth_bytes_per_cycle_per_sm"],
            l1_pj,
            shared_bw=True,
            banks=32,
            # the whole unified L1/shared-memory array
            area_mm2=p["l1_bytes_per_sm"] * sram_mm2_per_byte,
            instances=sms,
            spatial_reduce=False,
        ),
        level(
            "RF",
            p["regs_bytes_per_sm"],
            WORD_BITS,
            # 4 sub-partitions x 32 lanes x 3 operands read, 1 written per clk
            4 * 32 * 3 * word,
            rf_pj,
            write_bw_bytes_per_cycle=4 * 32 * word,
            banks=4,
            area_mm2=p["regs_bytes_per_sm"] * sram_mm2_per_byte,
            instances=sms,
            double_buffered=False,
            spatial_reduce=False,
        ),
    )

    per_sm_cycle = sms * clock
    tensor_mac_rate = p["tensor_flops_per_s"]["bf16"] / 2 / per_sm_cycle
    fma_rate = p["cuda_core_flops_per_s"]["fp32"] / 2 / per_sm_cycle
    sfu = p["sfu_ops_per_cycle_per_sm"]
    overhead = tables.scale_energy(dally["instruction_overhead_pj"], dnode, node) / 32
    f32_mul = tables.op_energy_pj("mult", 32, "fp", node)
    f32_add = tables.op_energy_pj("add", 32, "fp", node)
    tensor = ComputeUnit(
        name="tensor_core",
        kind="sm",
        pes=sms,
        ops_per_cycle={"mac": tensor_mac_rate},
        energy_pj_per_op={"mac": tables.mac_energy_pj(16, "fp", node)},
        datatype_bits=16,
        area_mm2=sms * p["sm_logic_area_mm2"],
        dtype_scale={
            k: v / p["tensor_flops_per_s"]["bf16"] for k, v in p["tensor_flops_per_s"].items()
        },
    )
    cuda = ComputeUnit(
        name="cuda_core",
        kind="sm",
        pes=sms,
        # max issues at the fp32 pipe rate (assumption); exp and divide use
        # the SFU (divide = reciprocal on the SFU + a multiply)
        ops_per_cycle={"mac": fma_rate, "add": fma_rate, "max": fma_rate, "exp": sfu, "div": sfu},
        energy_pj_per_op={
            "mac": f32_mul + f32_add + overhead,
            "add": f32_add + overhead,
            "max": tables.compare_energy_pj(32, node) + overhead,
            # SFU ex2: table lookup + quadratic interpolation ~ 2 multiplies
            "exp": 2 * f32_mul + overhead,
            "div": 3 * f32_mul + overhead,
        },
        datatype_bits=32,
        dtype_scale={
            k: v / p["cuda_core_flops_per_s"]["fp32"] for k, v in p["cuda_core_flops_per_s"].items()
        },
    )
    return Architecture(
        name="gpu",
        family=FAMILY,
        clock_hz=clock,
        levels=levels,
        compute=(tensor, cuda),
        static_power_w=p["idle_power_w"],
        params=p,
        sources=(
            dally["source"],
            tables.table("dram")["source"],
            tables.table("horowitz_45nm")["source"],
        ),
    )

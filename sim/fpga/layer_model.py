"""One hls4ml layer: multipliers, DSPs, memories, LUT/FF terms, latency, II.

Rules (hls4ml sources are in ``fastmachinelearning/hls4ml``):

* **Reuse factor.** ``resource``: the closest valid one
  (``sim/fpga/reuse.py``); ``latency``: as requested, capped at
  ``n_in * n_out``.
* **Multipliers** = ``ceil(n_in * n_out / R)``: ``block_factor`` of
  ``nnet_dense_resource.h``, ``multiplier_limit`` of the dense config
  (``DIV_ROUNDUP(n_in * n_out, reuse_factor)``, ``core_templates.py``).
* **DSPs per multiplier.** ``product::mult`` is a plain ``a * w``
  (``nnet_mult.h``); Vitis HLS binds it to a DSP48E2 (27 x 18 multiplier,
  UG579) when the weight is at least ``dsp_min_bits`` wide and to LUTs below
  (a fitted threshold); wider operands take ``ceil(a/27) * ceil(w/18)``
  DSPs; with ``dsp_packing`` two <= 8-bit multiplies share one (WP486).
* **Weights.** The resource kernels reshape the weights by
  ``block_factor`` (``#pragma HLS ARRAY_RESHAPE ... block factor=
  block_factor``): one ROM word per reuse step, ``R`` words deep and
  ``block_factor * w`` bits wide. It is a LUT-ROM (64 x 1 bit per LUT6)
  unless the layer has at least ``rom_bram_min_multipliers`` multipliers,
  then BRAM_18K. The ``latency`` kernel partitions weights completely (no
  memory: they are constants of the multipliers).
* **Index memory.** For ``R > n_in`` hls4ml uses
  ``dense_resource_rf_gt_nin_rem0`` ("the 3rd case is never used",
  ``core_templates.py``), which fills ``int outidx[rufactor]`` at run time:
  ``R`` words of ``ceil(log2(R / n_in))`` bits, in BRAM_18K (depth rounded
  up to a power of two) unless under ``lutram_max_bits``.
* **Accumulators** ``acc[n_out]`` (``accum_t``, partitioned completely),
  the input array ``data[n_in]`` and the layer's output: LUT/FF terms.
* **Latency.** The ``ReuseLoop`` runs ``R`` iterations at II = 1
  (``#pragma HLS PIPELINE II=1 rewind``): ``R + layer_depth`` cycles per
  position; the layer's II is ``R``. ``latency``: ``#pragma HLS PIPELINE
  II=CONFIG_T::reuse_factor`` over a fully unrolled product with an
  ``n_in``-input adder tree: ``R + ceil(log2 n_in) + layer_depth``.
* **Conv (io_stream).** ``conv_2d_buffer_cl`` reads ``H * W`` input pixels
  in a loop pipelined at II = R (``nnet_conv2d_stream.h``), with an
  ``ap_shift_reg`` line buffer of ``(filt_height - 1)`` rows (SRL LUTs) and
  the window ``kernel_data`` in registers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sim.fpga.coefficients import Coefficients
from sim.fpga.config import HLSConfig
from sim.fpga.layers import Layer
from sim.fpga.reuse import closest_reuse_factor

#: BRAM_18K aspect ratios (depth, width): UG573 (UltraScale memory resources)
BRAM18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
#: LUT6 as a 64 x 1 ROM/RAM; SRLC32E as a 32-deep shift register (UG574)
LUT6_BITS = 64
SRL_DEPTH = 32
#: DSP48E2 multiplier ports (UG579)
DSP_A_BITS, DSP_B_BITS = 27, 18


@dataclass(frozen=True)
class Memory:
    """A memory of a layer and where it is placed."""

    name: str
    width_bits: int
    depth: int
    kind: str  # "bram" | "lutrom" | "lutram"
    bram_18k: int = 0
    lut6: int = 0


@dataclass(frozen=True)
class LayerEstimate:
    name: str
    kind: str
    strategy: str
    reuse_factor: int
    requested_reuse_factor: int
    multipliers: int
    dsp_per_multiplier: float
    dsp: float
    bram_18k: float
    latency_cycles: int
    ii_cycles: int
    #: cycles the layer's multipliers are busy per sample
    busy_cycles: int
    macs: int
    memories: tuple[Memory, ...]
    lut_terms: dict[str, float] = field(default_factory=dict)
    ff_terms: dict[str, float] = field(default_factory=dict)


def bram18_for(width_bits: int, depth: int) -> int:
    """BRAM_18K blocks for a ``width x depth`` memory, cheapest aspect ratio."""
    if width_bits <= 0 or depth <= 0:
        return 0
    return min(math.ceil(width_bits / w) * math.ceil(depth / d) for d, w in BRAM18_SHAPES)


def lut6_for(width_bits: int, depth: int) -> int:
    """LUT6s of a LUT-ROM/LUTRAM (64 x 1 per LUT)."""
    return width_bits * math.ceil(depth / LUT6_BITS) if width_bits > 0 and depth > 0 else 0


def _pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, n))))


def dsp_per_multiply(cfg: HLSConfig, coeffs: Coefficients) -> float:
    """DSP48E2s per ``a * w`` product (0 when Vitis HLS builds it from LUTs)."""
    a, w = cfg.input_bits, cfg.weight_bits
    if min(a, w) < coeffs.dsp_min_bits:
        return 0.0
    if cfg.dsp_packing and a <= 8 and w <= 8:
        return 0.5
    big, small = max(a, w), min(a, w)
    return float(math.ceil(big / DSP_A_BITS) * math.ceil(small / DSP_B_BITS))


def effective_reuse(layer: Layer, cfg: HLSConfig) -> int:
    n = layer.n_in * layer.n_out
    if cfg.strategy == "resource":
        return closest_reuse_factor(layer.n_in, layer.n_out, cfg.reuse_factor)
    return max(1, min(cfg.reuse_factor, n))


def _index_memory(layer: Layer, rf: int, coeffs: Coefficients) -> Memory | None:
    if rf <= layer.n_in:
        return None
    outscale = rf // layer.n_in
    width = math.ceil(math.log2(outscale)) if outscale > 1 else 0
    if width == 0:
        return None
    if width * rf < coeffs.lutram_max_bits:
        return Memory("outidx", width, rf, "lutram", lut6=lut6_for(width, rf))
    return Memory("outidx", width, rf, "bram", bram_18k=bram18_for(width, _pow2(rf)))


def _weight_memory(
    layer: Layer, rf: int, mults: int, cfg: HLSConfig, coeffs: Coefficients
) -> Memory:
    width = mults * cfg.weight_bits
    name = "weights" if layer.weights == "const" else "operand"
    to_bram = coeffs.rom_bram_min_multipliers > 0 and mults >= coeffs.rom_bram_min_multipliers
    if to_bram and width * rf >= coeffs.lutram_max_bits:
        return Memory(name, width, rf, "bram", bram_18k=bram18_for(width, rf))
    kind = "lutrom" if layer.weights == "const" else "lutram"
    return Memory(name, width, rf, kind, lut6=lut6_for(width, rf))


def estimate_layer(layer: Layer, cfg: HLSConfig, coeffs: Coefficients) -> LayerEstimate:
    """Resources and timing of one layer for one sample."""
    if layer.kind == "activation":
        return _activation(layer, cfg)
    a, w, acc = cfg.input_bits, cfg.weight_bits, cfg.accum_bits
    rf = effective_reuse(layer, cfg)
    mults = math.ceil(layer.n_in * layer.n_out / rf)
    per = dsp_per_multiply(cfg, coeffs)
    lut_mults = mults if per == 0 else 0
    memories: list[Memory] = []
    if cfg.strategy == "resource" or layer.weights == "input":
        memories.append(_weight_memory(layer, rf, mults, cfg, coeffs))
    if cfg.strategy == "resource":
        idx = _index_memory(layer, rf, coeffs)
        if idx is not None:
            memories.append(idx)
    rom_lut6 = sum(m.lut6 for m in memories if m.kind == "lutrom")
    lutram = sum(m.lut6 for m in memories if m.kind == "lutram")
    if cfg.strategy == "latency" and layer.weights == "const" and rf > 1:
        # weights muxed into each multiplier over the R steps: an R:1 choice
        # of w-bit constants per multiplier, the same LUTs as an R-deep ROM
        rom_lut6 += lut6_for(mults * w, rf)
    lut = {
        "rom_lut6": float(rom_lut6),
        "mult_pp_bits": float(lut_mults * a * w),
        "mult_acc_bits": float(mults * acc),
        "in_bits": float(layer.n_in * a),
        "acc_bits": float(layer.n_out * acc),
        "layers": 1.0,
        "lutram_lut6": float(lutram),
    }
    ff = {
        "in_bits": float(layer.n_in * a),
        "acc_bits": float(layer.n_out * acc),
        "mult_pp_bits": float(lut_mults * a * w),
        "layers": 1.0,
    }
    depth = coeffs.layer_depth_cycles
    if cfg.strategy == "latency":
        depth += math.ceil(math.log2(max(2, layer.n_in)))
    if layer.kind == "conv":
        iters = layer.in_positions
        # line buffer: (filt_height - 1) rows of C channels in SRL32 shift registers
        lut["srl_lut"] = float(math.ceil(layer.line_buffer_elems / SRL_DEPTH) * a)
        ff["kernel_bits"] = float(layer.n_in * a)
    else:
        iters = layer.positions
    latency = iters * rf + depth
    return LayerEstimate(
        name=layer.name,
        kind=layer.kind,
        strategy=cfg.strategy,
        reuse_factor=rf,
        requested_reuse_factor=cfg.reuse_factor,
        multipliers=mults,
        dsp_per_multiplier=per,
        dsp=mults * per,
        bram_18k=float(sum(m.bram_18k for m in memories)),
        latency_cycles=int(latency),
        ii_cycles=int(iters * rf),
        busy_cycles=int(layer.positions * rf),
        macs=layer.macs,
        memories=tuple(memories),
        lut_terms=lut,
        ff_terms=ff,
    )


#: operators hls4ml evaluates through a lookup table (``nnet_activation.h``:
#: ``table_size = 1024`` entries of ``table_t = ap_fixed<18, 8>``)
TABLE_OPS = frozenset({"exp", "div"})
TABLE_SIZE, TABLE_BITS = 1024, 18


def _activation(layer: Layer, cfg: HLSConfig) -> LayerEstimate:
    """hls4ml activations/merges in ``io_parallel`` are unrolled over the
    array (``#pragma HLS PIPELINE`` over the element loop, ``nnet_activation.h``,
    ``nnet_merge.h``): one operator per value, about one LUT and one FF per bit
    of each value, one cycle. Table-based ones (exp, divide) read a
    1024 x 18-bit table per value; a BRAM_18K serves two reads a cycle (its two
    ports), so the unrolled loop needs ``ceil(n / 2)`` copies."""
    bits = float(layer.n_elem * cfg.input_bits)
    table = layer.op in TABLE_OPS
    copies = math.ceil(layer.n_elem / 2) if table else 0
    bram = copies * bram18_for(TABLE_BITS, TABLE_SIZE)
    memories = (Memory("table", TABLE_BITS, TABLE_SIZE, "bram", bram_18k=bram),) if table else ()
    return LayerEstimate(
        name=layer.name,
        kind="activation",
        strategy=cfg.strategy,
        reuse_factor=1,
        requested_reuse_factor=cfg.reuse_factor,
        multipliers=0,
        dsp_per_multiplier=0.0,
        dsp=0.0,
        bram_18k=float(bram),
        latency_cycles=2 if table else 1,
        ii_cycles=1,
        busy_cycles=1,
        macs=0,
        memories=memories,
        lut_terms={"act_bits": bits},
        ff_terms={"act_bits": bits},
    )

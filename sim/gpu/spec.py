"""GPU datasheet figures and calibrated scalars the GPU kernel model reads.

:class:`GpuSpec` holds the datasheet figures of one card, read from the
``params`` of a ``hw_models`` GPU preset (``hw_models.load("h100")``): every
absolute rate (SMs, clock, tensor FLOP/s per dtype, HBM and L2 bandwidth and
size, TDP) comes from there and nowhere else.

:class:`GpuParams` holds the global scalars of the model (sources and fits
in ``sim/gpu/params/h100.yaml`` and docs/gpu-model.md). They are
dimensionless efficiencies (fractions of the card's own datasheet figures),
per-kernel and per-host-operation times, and energies per operation; none
depends on a kernel shape, and the same file serves every card (there is no
per-card refit).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from workloads.errors import EinsimError
from workloads.memo import BoundedCache

PARAMS_DIR = Path(__file__).resolve().parent / "params"

#: arch.params keys the GPU model needs (written by the hw_models GPU family)
REQUIRED_KEYS: tuple[str, ...] = (
    "sm_count",
    "clock_hz",
    "tensor_flops_per_s",
    "cuda_core_flops_per_s",
    "smem_bytes_per_sm",
    "l2_bytes",
    "hbm_bandwidth_bytes_per_s",
    "idle_power_w",
)


#: host operations (device allocations of non-empty tensors + kernel
#: launches / memcpys) of one PyTorch eager call per host API family,
#: counted in the PyTorch source (2.x; the H100 data used 2.11). Host time of
#: an eager call = ``host_op_s`` x the count (sim/gpu/timing.py). Views
#: (transpose, reshape), zero-byte tensors and pure C++ checks are not
#: counted.
HOST_OPS: dict[str, int] = {
    # torch.matmul / torch.bmm (2-D, or batched 3-D/4-D whose reshapes are
    # views): at::mm / at::bmm are structured kernels whose set_output
    # allocates C (1), then one cuBLAS(Lt) kernel launch (1)
    # (aten/src/ATen/native/cuda/Blas.cpp, addmm_out_cuda_impl /
    # baddbmm_out_cuda_impl). Conv2d (cuDNN) is counted the same.
    "cublas": 2,
    # out-of-place elementwise / reduction / softmax (F.gelu, Tensor.sum,
    # torch.softmax, masked_fill): the TensorIterator or structured kernel
    # allocates the output (1) and launches one kernel (1)
    # (aten/src/ATen/native/cuda/SoftMax.cu, host_softmax; Loops.cuh gpu_kernel)
    "eltwise": 2,
    # elementwise with out= given (torch.add(a, b, out=c), as measured):
    # no allocation, one launch
    "eltwise_out": 1,
    # dst.copy_(src), same dtype, device to device: no allocation, one
    # cudaMemcpyAsync (aten/src/ATen/native/cuda/Copy.cu, copy_device_to_device)
    "copy": 1,
    # F.layer_norm: Y, mean and rstd allocated (3) + one launch
    # (aten/src/ATen/native/cuda/layer_norm_kernel.cu, layer_norm_cuda)
    "layernorm": 4,
    # F.rms_norm: Y and rstd (2) + one launch, as layer_norm_cuda without the
    # mean (assumption: the fused CUDA rms_norm path was not read)
    "rmsnorm": 3,
    # F.scaled_dot_product_attention, flash backend, no dropout, head dim a
    # multiple of 8 (aten/src/ATen/native/transformers/attention.cpp
    # scaled_dot_product_attention -> _scaled_dot_product_flash_attention;
    # cuda/attention.cu _flash_attention_forward: out = at::empty_like(query)
    # (1); cuda/flash_attn/flash_api.cpp mha_fwd: softmax_lse (1), rng_state
    # (1), _unused (1); one flash_fwd kernel launch (1)
    "sdpa": 5,
    # the same call when set_params_splitkv picks num_splits > 1: the
    # softmax_lse_accum and out_accum buffers (2) and the combine kernel (1)
    "sdpa_splitkv": 8,
}


class GpuModelError(EinsimError):
    """Bad input to the GPU cost model (unknown op, dtype, missing figure)."""


@dataclass(frozen=True)
class GpuSpec:
    """Datasheet figures of one GPU (SI units)."""

    name: str
    sm_count: int
    clock_hz: float
    #: dense tensor-core FLOP/s by dtype ("bf16", "fp16", "tf32", "fp8")
    tensor_flops_per_s: dict[str, float]
    #: CUDA-core FLOP/s by dtype ("fp32", "fp64")
    cuda_core_flops_per_s: dict[str, float]
    smem_bytes_per_sm: float
    l2_bytes: float
    l2_bandwidth_bytes_per_s: float
    hbm_bytes: float
    hbm_bandwidth_bytes_per_s: float
    tdp_w: float
    idle_power_w: float
    max_clock_hz: float = 0.0
    regs_bytes_per_sm: float = 256 * 1024
    #: compute capability (9.0 Hopper: TMA, wgmma, thread-block clusters;
    #: 8.0 Ampere: none of them; 10.0 Blackwell)
    compute_capability: float = 9.0

    @property
    def has_tma(self) -> bool:
        """TMA bulk copies and warpgroup MMAs (compute capability >= 9.0).

        CUDA C++ Programming Guide, "Tensor Memory Access": TMA needs compute
        capability 9.0; its global strides must be multiples of 16 bytes.
        """
        return self.compute_capability >= 9.0

    @property
    def cluster_multicast(self) -> float:
        """CTAs of a thread-block cluster that share one operand load from L2.

        TMA multicast inside a cluster of 2 (the "1x2" in the nvjet kernel
        names of experiments/data/h100/traffic_ncu.csv); 1 without clusters.
        """
        return 2.0 if self.has_tma else 1.0

    @classmethod
    def from_arch(cls, arch: Any) -> GpuSpec:
        """Read the figures from ``arch.params`` of a GPU-family Architecture."""
        params = dict(getattr(arch, "params", {}) or {})
        name = str(getattr(arch, "name", params.get("name", "gpu")))
        family = getattr(arch, "family", "gpu")
        if family != "gpu":
            raise GpuModelError(f"hardware '{name}' is family '{family}', expected a GPU")
        missing = [k for k in REQUIRED_KEYS if k not in params]
        if missing:
            raise GpuModelError(f"hardware '{name}': GPU parameters missing: {', '.join(missing)}")
        hbm_bw = float(params["hbm_bandwidth_bytes_per_s"])
        tensor = {k: float(v) for k, v in params["tensor_flops_per_s"].items()}
        cc = params.get("compute_capability")
        if cc is None:
            # presets without the field: fp8 tensor cores arrive with compute
            # capability 8.9/9.0 among the data-centre cards (A100: none)
            cc = 9.0 if "fp8" in tensor else 8.0
        return cls(
            name=name,
            sm_count=int(params["sm_count"]),
            clock_hz=float(params["clock_hz"]),
            max_clock_hz=float(params.get("max_clock_hz") or params["clock_hz"]),
            tensor_flops_per_s=tensor,
            cuda_core_flops_per_s={k: float(v) for k, v in params["cuda_core_flops_per_s"].items()},
            smem_bytes_per_sm=float(params["smem_bytes_per_sm"]),
            regs_bytes_per_sm=float(params.get("regs_bytes_per_sm", 256 * 1024)),
            l2_bytes=float(params["l2_bytes"]),
            # no datasheet figure for L2 bandwidth on every card: 2.5x HBM is
            # the usual ratio on Hopper/Ampere microbenchmarks when absent
            l2_bandwidth_bytes_per_s=float(params.get("l2_bandwidth_bytes_per_s", 2.5 * hbm_bw)),
            hbm_bytes=float(params.get("hbm_bytes", 80e9)),
            hbm_bandwidth_bytes_per_s=hbm_bw,
            tdp_w=float(params.get("tdp_w", 700.0)),
            idle_power_w=float(params["idle_power_w"]),
            compute_capability=float(cc),
        )

    def has_dtype(self, dtype: str) -> bool:
        try:
            self.tensor_rate(dtype)
        except GpuModelError:
            return False
        return True

    def tensor_rate(self, dtype: str) -> float:
        """Dense tensor-core FLOP/s for a dtype (fp16 and bf16 stand in for
        each other; fp8_block runs on the fp8 tensor cores)."""
        t = self.tensor_flops_per_s
        key = "fp8" if dtype == "fp8_block" else dtype
        if key in t:
            return t[key]
        if key == "fp16" and "bf16" in t:
            return t["bf16"]
        if key == "bf16" and "fp16" in t:
            return t["fp16"]
        raise GpuModelError(f"GPU '{self.name}' has no tensor-core rate for dtype '{dtype}'")

    def cuda_rate(self, dtype: str = "fp32") -> float:
        c = self.cuda_core_flops_per_s
        if dtype in c:
            return c[dtype]
        raise GpuModelError(f"GPU '{self.name}' has no CUDA-core rate for dtype '{dtype}'")


@dataclass(frozen=True)
class GpuParams:
    """Global scalars of the GPU kernel model (see docs/gpu-model.md).

    Every field is one number for every kernel and card; none depends on a
    kernel shape. ``sim/gpu/params/h100.yaml`` says which are fitted (on
    which data) and which are fixed (with their source).
    """

    # --- compute rates: fractions of the card's own datasheet peaks ---
    #: main-loop fraction of the dense tensor peak of a TMA/wgmma GEMM
    #: (cuBLAS nvjet, CUTLASS 3 sm90) in bf16/fp16/tf32 (fitted)
    tensor_eff: float = 0.74
    #: fp32 SGEMM on the CUDA cores: fraction of the fp32 peak (tied to
    #: tensor_eff: one GEMM main-loop efficiency)
    cuda_eff: float = 0.74
    #: fp8 main loop relative to tensor_eff (fitted on the public fp8 GEMMs:
    #: at twice the operand rate the fp8 tensor cores sit at the power limit,
    #: and per-tensor scaled fp8 promotes partial sums on the CUDA cores)
    fp8_eff_ratio: float = 0.85
    #: a GEMM without TMA/wgmma (operand leading dimensions not 16-byte
    #: aligned, or no compute capability 9.0): Ampere-style mma.sync +
    #: cp.async main loop relative to the TMA path. Fixed: TMA-based GEMM
    #: is 1.5x the synchronous path on Hopper (Luo et al., "Dissecting the
    #: NVIDIA Hopper Architecture through Microbenchmarking and Multiple
    #: Level Analysis", 2025, abstract)
    legacy_mma_ratio: float = 1.0 / 1.5
    #: FlashAttention-2 (mma.sync) MMA rate as a fraction of the tensor peak.
    #: Fixed: FlashAttention-2 reaches about 35% of the H100 tensor peak end
    #: to end (Shah et al., "FlashAttention-3", 2024, abstract); with the
    #: softmax's flash_softmax_ops per score on the CUDA cores modelled apart
    #: that leaves the MMAs at 0.40 of the peak
    flash_mma_eff: float = 0.40
    #: FlashAttention-3 / TRT-LLM FMHA (wgmma, softmax overlapped with the
    #: MMAs by warp specialisation) MMA rate as a fraction of the tensor
    #: peak (fitted on the public prefill rows; FlashAttention-3 reports 75%
    #: of the peak, Shah et al. 2024)
    fa3_mma_eff: float = 0.70
    #: the same for TensorRT-LLM's context FMHA and generation kernels
    #: (fitted on the public TensorRT-LLM rows)
    trtllm_mma_eff: float = 0.60
    #: non-MMA work per score element in flash attention, in fp32 CUDA-core
    #: op units. Fixed: an instruction count of the online softmax per score
    #: (scale-and-subtract FMA, max, row-sum add, bf16 convert: 4 ops) plus
    #: one exp2 on the SFU, which issues 16 per SM per clock against 128 fp32
    #: lanes (CUDA C++ Programming Guide, arithmetic instruction throughput,
    #: compute capability 9.0): 8 op units
    flash_softmax_ops: float = 12.0
    #: the same for FlashAttention-3 / TRT-LLM FMHA (fitted; dominated by the
    #: exp: the SFU issues 16 per SM per clock against 128 FP32 lanes, 16
    #: op units, and "3.9 TFLOPS of special functions" on the H100, Shah et
    #: al. 2024)
    fa3_softmax_ops: float = 18.0
    #: extra non-MMA work per score element of an fp8 attention main loop, in
    #: the same op units: fp8 wgmma takes both operands K-major, so P is
    #: converted to fp8 and its registers permuted, and V transposed in shared
    #: memory per key tile (Shah et al., "FlashAttention-3", 2024, section
    #: 3.3, docs/references.md) (fitted on the public fp8 prefill rows)
    fp8_attn_ops: float = 4.0
    #: fixed latency of one flash-attention CTA (prefill query block or
    #: decode KV split) beyond its streaming work: the dependent loads that
    #: start it (page table, Q, the first K/V block) and the reduction and
    #: store that end it, which one CTA per SM cannot overlap with its own
    #: main loop; its Q and O tiles also cross HBM at the SM's share of the
    #: bandwidth (fitted), s
    attn_cta_s: float = 2.0e-6
    #: compute and memory time of one kernel combine as
    #: (t_c^p + t_m^p)^(1/p): the pipelined main loop overlaps them fully
    #: only far from the ridge point (fitted)
    overlap_p: float = 4.0
    # --- memory ---
    #: fraction of datasheet HBM bandwidth a streaming kernel sustains (fitted)
    hbm_eff: float = 0.90
    #: HBM bytes per second one SM can keep in flight (Little's law: bytes in
    #: flight / DRAM latency); a kernel with fewer busy SMs than the card has
    #: streams at most this per SM (fitted)
    sm_stream_bytes_per_s: float = 40e9
    #: per-block fixed latency of a block-per-row kernel (softmax, norms, the
    #: fixed-grid reductions of fp8 quantisation), s (fitted)
    row_fixed_s: float = 1.0e-6
    #: per-byte latency of a row kernel block that walks its row with 1024
    #: threads, s/byte (scaled by 1024/threads for smaller blocks; fitted)
    row_s_per_byte: float = 0.2e-9
    # --- fixed costs per kernel, per launch and per host operation ---
    #: in-kernel fixed time of every kernel (grid start, first loads' DRAM
    #: latency, tail and epilogue): part of the kernel's duration (fitted)
    kernel_ramp_s: float = 2.0e-6
    #: GPU idle gap between two eagerly launched kernels of one stream
    #: (launch processing), s (fitted on the event-timed data)
    launch_gap_s: float = 4.0e-6
    #: gap between two kernel nodes of a CUDA graph, s (fitted on the
    #: graph-timed data)
    graph_node_s: float = 0.8e-6
    #: cost of one graph launch (cudaGraphLaunch + the GPU's graph start),
    #: shared by the ops a graph holds, s (fitted on the graph-timed data)
    graph_launch_s: float = 4.0e-6
    #: host (CPU) time per host operation of a PyTorch eager call: each
    #: device allocation of a non-empty tensor and each kernel launch or
    #: memcpy (counts per API in HOST_OPS), s (fitted)
    host_op_s: float = 6.5e-6
    #: host time of one iteration of the event timing loop beyond the call:
    #: two cudaEventRecord calls (tied to 2 x host_op_s), s
    event_period_s: float = 13e-6
    # --- traffic ---
    #: operands up to this fraction of L2 are read from HBM once; a working
    #: set cycled through this fraction of L2 stays resident (fixed)
    l2_reuse_frac: float = 0.75
    #: HBM re-read factor of the wave-blocked GEMM traffic estimate (fitted
    #: on Nsight Compute DRAM bytes)
    gemm_reread: float = 1.25
    #: dirty output lines that stay in L2 at kernel end, fraction of L2 (not
    #: counted as HBM writes by Nsight Compute; fitted on Nsight bytes)
    l2_retain_frac: float = 0.4
    #: flash K/V re-read: extra reads = K,V bytes x per-head K,V bytes /
    #: (this x L2) (tied to l2_retain_frac)
    flash_kv_l2_frac: float = 0.4
    #: operand feed from L2 into shared memory: L2 bandwidth / SMs x this
    #: multicast factor on cards with clusters (fixed: 2, Hopper 1x2
    #: clusters)
    feed_multicast: float = 2.0
    #: wave quantisation: 1 = every SM waits for its last whole tile, 0 =
    #: work split evenly (stream-K). Fixed 0: the persistent nvjet kernels
    #: balance their tiles
    wave_quant: float = 0.0
    # --- energy ---
    #: extra board power while a stream of calls runs (clocks up), W (fixed 0)
    active_power_w: float = 0.0
    #: dynamic energy per FLOP by compute class, pJ
    e_tensor16_pj: float = 0.5
    e_tensor8_pj: float = 0.3
    #: FlashAttention-2 issues mma.sync from registers (not wgmma from shared
    #: memory): its own energy per tensor FLOP
    e_tensor16_sync_pj: float = 0.5
    e_tf32_pj: float = 0.5
    e_cuda_pj: float = 10.0
    #: on-chip energy per element per pass of a row kernel (softmax, norms,
    #: flash attention's online softmax): reductions, exp, shuffles, pJ
    e_rowpass_pj: float = 100.0
    #: dynamic energy per byte, pJ
    e_hbm_pj_per_byte: float = 60.0
    e_l2_pj_per_byte: float = 5.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def resolve(arch: Any, params: GpuParams | None = None) -> tuple[GpuSpec, GpuParams]:
    """(spec, params) for an Architecture, a GpuSpec or a preset name.

    Every card uses the one parameter file (``sim/gpu/params/h100.yaml``):
    its scalars are dimensionless or per-operation and carry over; the
    card's rates come from its preset.
    """
    if isinstance(arch, str):
        import hw_models

        arch = hw_models.load(arch)
    spec = arch if isinstance(arch, GpuSpec) else GpuSpec.from_arch(arch)
    if params is None:
        params = load_params("h100")
    return spec, params


def params_path(name: str) -> Path:
    return PARAMS_DIR / f"{name}.yaml"


def load_params(name_or_path: str | Path = "h100") -> GpuParams:
    """Read the scalars from ``sim/gpu/params/<name>.yaml`` or a path.

    A card without its own file uses the H100 file: the scalars are ratios
    to each card's own datasheet figures, times and energies per operation,
    and carry over unchanged (no per-card refit).
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = params_path(str(name_or_path))
        if not path.exists():
            path = params_path("h100")
    try:
        stat = path.stat()
    except OSError:
        raise GpuModelError(f"{path}: GPU parameter file not found") from None
    # parsed once per file version: composing the 13 kB file with line
    # numbers costs ~10 ms, more than predicting a whole kernel CSV
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    return _PARAMS_CACHE.get_or_make(key, lambda: _read_params(path))


#: GpuParams is frozen, so one parsed instance per file version is shared
#: (calibration writes many files: stay small)
_PARAMS_CACHE: BoundedCache[GpuParams] = BoundedCache(64)


def _read_params(path: Path) -> GpuParams:
    from workloads.yamlio import load_yaml

    data = load_yaml(path, "GPU parameter file", error=GpuModelError)[0] or {}
    values = data.get("params", {}) if isinstance(data, dict) else None
    if not isinstance(values, dict):
        raise GpuModelError("'params' must be a mapping of name: number", file=str(path))
    known = set(GpuParams.field_names())
    unknown = sorted(set(values) - known)
    if unknown:
        raise GpuModelError(f"unknown GPU parameter(s) {', '.join(unknown)}", file=str(path))
    try:
        return GpuParams(**{k: float(v) for k, v in values.items()})
    except (TypeError, ValueError) as exc:
        raise GpuModelError(f"GPU parameters must be numbers ({exc})", file=str(path)) from None

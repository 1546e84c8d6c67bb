"""GPU datasheet figures and calibrated scalars the GPU cost model reads.

:class:`GpuSpec` holds the datasheet figures of one card, read from the
``params`` of a ``hw_models`` GPU preset (``hw_models.load("h100")``).
:class:`GpuParams` holds the handful of calibrated scalars (peak
efficiencies, launch/host overheads, energies per FLOP and per byte) read
from ``sim/gpu/params/<name>.yaml``; ``experiments/calibrate_gpu.py``
re-fits them. No per-shape numbers live in either.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from workloads.errors import EinsimError

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
#: launches / memcpys) of one PyTorch call per host API family, counted in
#: the PyTorch source (2.x, the H100 data used 2.11); host time =
#: ``host_op_s`` x the count (sim/gpu/energy.py). Views (transpose,
#: reshape), zero-byte tensors and pure C++ checks are not counted.
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
    # cuda/attention.cu _scaled_dot_product_flash_attention_cuda: q, k, v
    # and the output transposed, views; cuda/attention.cu
    # _flash_attention_forward: out = at::empty_like(query) (1),
    # debug_attn_mask = at::empty({0}) (zero bytes, not counted);
    # cuda/flash_attn/flash_api.cpp mha_fwd: softmax_lse = at::empty (1),
    # rng_state = at::empty({2}, kCUDA) (1), _unused = at::empty({}, kCUDA)
    # (1); set_params_splitkv allocates nothing while
    # B*H*ceil(M/64) >= 0.8 x 2 x SMs (every measured call); one flash_fwd
    # kernel launch (1)
    "sdpa": 5,
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
    launch_overhead_s: float
    tdp_w: float
    idle_power_w: float
    max_clock_hz: float = 0.0
    regs_bytes_per_sm: float = 256 * 1024
    #: CTAs of a thread-block cluster that share one operand load from L2
    #: (TMA multicast, Hopper); 1 on cards without clusters (Ampere)
    cluster_multicast: float = 2.0

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
        return cls(
            name=name,
            sm_count=int(params["sm_count"]),
            clock_hz=float(params["clock_hz"]),
            max_clock_hz=float(params.get("max_clock_hz", params["clock_hz"])),
            tensor_flops_per_s={k: float(v) for k, v in params["tensor_flops_per_s"].items()},
            cuda_core_flops_per_s={k: float(v) for k, v in params["cuda_core_flops_per_s"].items()},
            smem_bytes_per_sm=float(params["smem_bytes_per_sm"]),
            regs_bytes_per_sm=float(params.get("regs_bytes_per_sm", 256 * 1024)),
            l2_bytes=float(params["l2_bytes"]),
            # no datasheet figure for L2 bandwidth on every card: 2.5x HBM is
            # the usual ratio on Hopper/Ampere microbenchmarks when absent
            l2_bandwidth_bytes_per_s=float(params.get("l2_bandwidth_bytes_per_s", 2.5 * hbm_bw)),
            hbm_bytes=float(params.get("hbm_bytes", 80e9)),
            hbm_bandwidth_bytes_per_s=hbm_bw,
            launch_overhead_s=float(params.get("launch_overhead_s", 5e-6)),
            tdp_w=float(params.get("tdp_w", 700.0)),
            idle_power_w=float(params["idle_power_w"]),
            # thread-block clusters and TMA multicast need compute
            # capability 9.0 (CUDA C Programming Guide), which is also where
            # fp8 tensor cores appear among the data-centre cards (A100: no
            # fp8, no clusters; H100/H200: both); the preset schema has no
            # compute-capability field
            cluster_multicast=2.0 if "fp8" in params["tensor_flops_per_s"] else 1.0,
        )

    def tensor_rate(self, dtype: str) -> float:
        """Dense tensor-core FLOP/s for a dtype (fp16 falls back to bf16)."""
        t = self.tensor_flops_per_s
        if dtype in t:
            return t[dtype]
        if dtype == "fp16" and "bf16" in t:
            return t["bf16"]
        if dtype == "bf16" and "fp16" in t:
            return t["fp16"]
        raise GpuModelError(f"GPU '{self.name}' has no tensor-core rate for dtype '{dtype}'")

    def cuda_rate(self, dtype: str = "fp32") -> float:
        c = self.cuda_core_flops_per_s
        if dtype in c:
            return c[dtype]
        raise GpuModelError(f"GPU '{self.name}' has no CUDA-core rate for dtype '{dtype}'")


@dataclass(frozen=True)
class GpuParams:
    """Calibrated scalars of the GPU model (see docs/gpu-model.md).

    Every field is one global number; none depends on a kernel shape.
    """

    # --- time ---
    # Efficiencies are ratios to each card's own datasheet figures (the
    # hw_models preset), so they carry over to other cards; absolute rates
    # never live here.
    #: fraction of the datasheet tensor-core peak a cuBLAS main loop
    #: sustains (fitted; the start value is the measured peak of
    #: REFERENCES.md over the datasheet)
    tensor_eff: float = 713.0 / 989.0
    #: fraction of the datasheet CUDA-core fp32 peak an SGEMM sustains (tied
    #: to tensor_eff by the calibration: one GEMM main-loop efficiency)
    cuda_eff: float = 713.0 / 989.0
    #: fraction of datasheet HBM bandwidth a streaming kernel sustains (fitted)
    hbm_eff: float = 3.0 / 3.35
    #: operand feed from L2 into shared memory: each SM gets L2 bandwidth /
    #: SMs, times this multicast factor (Hopper clusters of 2 CTAs share the
    #: A tile: the "1x2" in nvjet kernel names). Fixed, not fitted.
    feed_multicast: float = 2.0
    #: wave quantisation: 1 = every SM waits for its last whole tile,
    #: 0 = work split evenly (stream-K). Not fitted: 0, the persistent nvjet
    #: kernels (one CTA per SM, grid (2, 66) in traffic_ncu.csv) balance
    #: their tiles; a free fit put it at 0.001
    wave_quant: float = 0.0
    #: FlashAttention-2 MMA rate as a fraction of the tensor peak. Not
    #: fitted: FlashAttention-2 reaches about 35% of the H100 tensor peak end
    #: to end (Shah et al., "FlashAttention-3", 2024, abstract); with the
    #: softmax's flash_softmax_ops per score on the CUDA cores modelled apart
    #: that leaves the MMAs at 512 / (989e12 e) = 512 / (989e12 x 0.35)
    #: - 12 / 67e12 at head dim 128: e = 0.40 (a free fit gives 0.416)
    flash_mma_eff: float = 0.40
    #: non-MMA work per score element in flash attention, in fp32 CUDA-core
    #: op units. Not fitted: an instruction count of FlashAttention-2's
    #: online softmax per score (scale-and-subtract FMA, max, row-sum add,
    #: bf16 convert: 4 ops) plus one exp2 on the SFU, which issues 16 per SM
    #: per clock against 128 fp32 lanes (CUDA C++ Programming Guide,
    #: arithmetic instruction throughput, compute capability 9.0): 8 op
    #: units. A free fit gave 12.3.
    flash_softmax_ops: float = 12.0
    #: per-block fixed latency of a row kernel (softmax, norms), s. Not
    #: fitted: 0 (a free fit gives under 1 us)
    row_fixed_s: float = 0.0
    #: per-byte latency of a row kernel block that walks its row with 1024
    #: threads, s/byte (scaled by 1024/threads for smaller blocks)
    row_s_per_byte: float = 0.2e-9
    #: GPU-side cost per kernel (launch, ramp-up, fill and drain of the
    #: first and last tiles), s
    launch_s: float = 2e-6
    #: host time of one iteration of the timing loop beyond the call: two
    #: cudaEventRecord calls, i.e. two host operations (HOST_OPS), tied to
    #: 2 x host_op_s by the calibration. While the GPU is busy for less than
    #: this, the events bracket host issue + GPU time (the GPU idled until
    #: the launch); beyond it the GPU runs behind the host and the events
    #: bracket the GPU time only, s
    event_period_s: float = 13e-6
    #: host (CPU) time per host operation of a PyTorch call: each device
    #: allocation of a non-empty tensor and each kernel launch or memcpy the
    #: call makes (counts per API in HOST_OPS, from the PyTorch source); the
    #: Python/ATen dispatch, cuBLAS set-up and checks are spread over them.
    #: One number for every API, s
    host_op_s: float = 6.5e-6
    # --- traffic ---
    #: operands up to this fraction of L2 are read from HBM once. Not fitted
    #: (no profiled call lies near the threshold: a free fit leaves it here)
    l2_reuse_frac: float = 0.75
    #: HBM re-read factor of the wave-blocked GEMM traffic estimate
    gemm_reread: float = 1.25
    #: dirty output lines that stay in L2 at kernel end, fraction of L2
    #: (not counted as HBM writes by Nsight Compute)
    l2_retain_frac: float = 0.4
    #: flash K/V re-read: extra reads = K,V bytes x per-head K,V bytes / (this x L2)
    flash_kv_l2_frac: float = 0.6
    # --- energy ---
    #: extra board power while a stream of calls runs (clocks up), W. Not
    #: fitted: 0, board power = idle power + per-FLOP and per-byte energies
    #: (a free fit moves the energy error by under 0.1 point)
    active_power_w: float = 0.0
    #: dynamic energy per FLOP by compute class, pJ
    e_tensor16_pj: float = 0.5
    e_tensor8_pj: float = 0.3
    #: FlashAttention-2 issues mma.sync from registers (not wgmma from shared
    #: memory): its own energy per tensor FLOP
    e_tensor16_sync_pj: float = 0.8
    e_tf32_pj: float = 1.0
    e_cuda_pj: float = 10.0
    #: on-chip energy per element per pass of a row kernel (softmax, norms,
    #: flash attention's online softmax): reductions, exp, shuffles, pJ
    e_rowpass_pj: float = 100.0
    #: dynamic energy per byte, pJ
    e_hbm_pj_per_byte: float = 60.0
    e_l2_pj_per_byte: float = 5.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def with_values(self, **kw: float) -> GpuParams:
        return replace(self, **kw)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def params_path(name: str) -> Path:
    return PARAMS_DIR / f"{name}.yaml"


def load_params(name_or_path: str | Path = "h100") -> GpuParams:
    """Read calibrated scalars from ``sim/gpu/params/<name>.yaml`` or a path.

    A card without its own file uses the H100 file (documented fallback: the
    efficiencies are ratios to each card's own datasheet figures).
    """
    from workloads.yamlio import load_yaml

    path = Path(name_or_path)
    if not path.suffix:
        path = params_path(str(name_or_path))
        if not path.exists():
            path = params_path("h100")
    if not path.exists():
        raise GpuModelError(f"{path}: GPU parameter file not found")
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

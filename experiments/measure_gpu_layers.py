"""Time whole transformer layers on any CUDA GPU with PyTorch (issue 16's method).

Usage (on a machine with a CUDA GPU, PyTorch and pynvml)::

    python -m experiments.measure_gpu_layers --out experiments/data/<card>_layers/ \
        [--only llama7b] [--dry-run]

The layer (PyTorch eager, bf16, random weights; no rotary embedding,
dropout or bias)::

    x -> norm -> QKV GEMM [T, 3h] -> SDPA (flash; causal for the decoders)
      -> output GEMM [T, h] -> + x -> norm -> FFN -> + x

with the FFN GELU (up [T, f], gelu, down) or SwiGLU (gate|up GEMM [T, 2f],
silu(g) * u, down), LayerNorm or RMSNorm. A decode row runs one new token
per sequence (T = batch) against a KV cache of ``seq`` keys per sequence;
the cache append is not timed. Configurations: ``experiments.gpu_layers.CONFIGS``.

Method (that of ``experiments/measure_gpu_kernels.py`` and
``experiments/data/h100/README.md``):

* random normal inputs and weights (weights scaled by 1/sqrt(fan-in));
  three warm-up calls; the weights, input and cache are rotated among
  ``n_sets`` copies so the working set exceeds 256 MB where memory allows;
* timing: CUDA events around each single call (one layer forward); calls
  issued back to back in batches of 10 until they pass 50 ms (at least 10,
  at most 200); ``median_ms`` and the percentiles are written, ``loop_ms``
  is a back-to-back loop of as many calls divided by their count;
* energy: the NVML total-energy counter read around back-to-back calls
  lasting at least 0.4 s; ``energy_mj`` = energy per call.

Writes ``layers.csv`` and ``env.json`` in ``--out``. ``torch`` and
``pynvml`` are imported only when measuring.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the layers of issue 16: model -> (h, heads, f, ffn, norm, causal)
LAYERS: dict[str, tuple[int, int, int, str, str, bool]] = {
    "bert_large": (1024, 16, 4096, "gelu", "layernorm", False),
    "llama7b": (4096, 32, 11008, "swiglu", "rmsnorm", True),
    "gpt3": (12288, 96, 49152, "gelu", "layernorm", True),
}

COLUMNS = (
    "model", "mode", "batch", "seq", "median_ms", "min_ms", "p10_ms", "p90_ms", "max_ms",
    "loop_ms", "reps", "n_sets", "footprint_bytes", "energy_calls", "energy_loop_s",
    "energy_loop_mj", "energy_mj", "avg_power_w",
)  # fmt: skip

ROTATE_BYTES = 256 * 2**20
MIN_TIME_S = 0.050
MIN_REPS, MAX_REPS = 10, 200
ENERGY_MIN_S = 0.4
WARMUP = 3
ELEM_BYTES = 2  # bf16


@dataclass(frozen=True)
class LayerShape:
    model: str
    mode: str
    batch: int
    seq: int

    @property
    def dims(self) -> tuple[int, int, int, str, str, bool]:
        return LAYERS[self.model]

    @property
    def tokens_per_seq(self) -> int:
        return self.seq if self.mode == "prefill" else 1

    def weight_elements(self) -> int:
        h, _, f, ffn, norm, _ = self.dims
        n_norm = (2 if norm == "layernorm" else 1) * 2 * h
        ffn_w = h * (2 * f if ffn == "swiglu" else f) + f * h
        return h * 3 * h + h * h + ffn_w + n_norm

    def footprint_bytes(self) -> int:
        """Bytes of one input set: weights, the layer input and the KV cache."""
        h = self.dims[0]
        act = self.batch * self.tokens_per_seq * h
        cache = 2 * self.batch * self.seq * h if self.mode == "decode" else 0
        return (self.weight_elements() + act + cache) * ELEM_BYTES


def configs(only: set[str] | None = None) -> list[LayerShape]:
    from experiments.gpu_layers import CONFIGS

    return [LayerShape(*c) for c in CONFIGS if only is None or c[0] in only]


def n_sets_for(footprint: int, free_bytes: float | None = None) -> int:
    """Copies to rotate so the working set exceeds 256 MB (at most 16, half the free memory)."""
    n = max(1, min(16, math.ceil(ROTATE_BYTES / max(footprint, 1))))
    if free_bytes is not None:
        n = max(1, min(n, int(0.5 * free_bytes // max(footprint, 1))))
    return n


def make_layer(torch: Any, shape: LayerShape) -> Any:
    """One input set (weights, input, cache) and the forward function of the layer."""
    import torch.nn.functional as F  # noqa: N812
    from torch.nn.attention import SDPBackend, sdpa_kernel

    h, heads, f, ffn, norm, causal = shape.dims
    d = h // heads
    dt = torch.bfloat16
    B, S = shape.batch, shape.tokens_per_seq

    def w(rows: int, cols: int) -> Any:
        return torch.randn(rows, cols, device="cuda", dtype=dt) * (1.0 / math.sqrt(rows))

    p: dict[str, Any] = {
        "x": torch.randn(B, S, h, device="cuda", dtype=dt),
        "wqkv": w(h, 3 * h),
        "wo": w(h, h),
        "w_up": w(h, 2 * f if ffn == "swiglu" else f),
        "w_down": w(f, h),
    }
    for i in (1, 2):
        p[f"g{i}"] = torch.ones(h, device="cuda", dtype=dt)
        if norm == "layernorm":
            p[f"b{i}"] = torch.zeros(h, device="cuda", dtype=dt)
    if shape.mode == "decode":
        p["k_cache"] = torch.randn(B, heads, shape.seq, d, device="cuda", dtype=dt)
        p["v_cache"] = torch.randn(B, heads, shape.seq, d, device="cuda", dtype=dt)

    def normed(x: Any, i: int) -> Any:
        if norm == "layernorm":
            return F.layer_norm(x, (h,), p[f"g{i}"], p[f"b{i}"])
        return F.rms_norm(x, (h,), p[f"g{i}"])

    def forward() -> Any:
        x = p["x"]
        qkv = normed(x, 1) @ p["wqkv"]  # [B, S, 3h]
        q, k, v = qkv.view(B, S, 3, heads, d).unbind(2)  # [B, S, H, d] views
        q = q.transpose(1, 2)
        if shape.mode == "decode":
            # the new token's k, v would be appended to the cache: not timed
            k, v = p["k_cache"], p["v_cache"]
        else:
            k, v = k.transpose(1, 2), v.transpose(1, 2)
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            o = F.scaled_dot_product_attention(
                q, k, v, is_causal=causal and shape.mode == "prefill"
            )
        x = x + o.transpose(1, 2).reshape(B, S, h) @ p["wo"]
        hn = normed(x, 2)
        if ffn == "swiglu":
            g, u = (hn @ p["w_up"]).chunk(2, dim=-1)
            a = F.silu(g) * u
        else:
            a = F.gelu(hn @ p["w_up"])
        return x + a @ p["w_down"]

    return forward


def time_calls(torch: Any, nvml: Any, handle: Any, call: Any) -> dict[str, Any]:
    """Time ``call`` as the kernel data were timed: CUDA events around each call in
    batches of 10 back to back (median, percentiles, a back-to-back loop) and NVML
    energy over back-to-back calls lasting at least 0.4 s."""
    for _ in range(WARMUP):
        call()
    torch.cuda.synchronize()
    times: list[float] = []
    while len(times) < MAX_REPS and (len(times) < MIN_REPS or sum(times) < MIN_TIME_S * 1e3):
        pairs = []
        for _ in range(min(10, MAX_REPS - len(times))):
            ev = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
            ev[0].record()
            call()
            ev[1].record()
            pairs.append(ev)
        torch.cuda.synchronize()
        times += [a.elapsed_time(b) for a, b in pairs]
    reps = len(times)
    first, last = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    first.record()
    for _ in range(reps):
        call()
    last.record()
    last.synchronize()
    loop_ms = first.elapsed_time(last) / reps
    calls = max(reps, math.ceil(ENERGY_MIN_S * 1e3 / max(loop_ms, 1e-3)))
    torch.cuda.synchronize()
    e0, t0 = nvml.nvmlDeviceGetTotalEnergyConsumption(handle), time.perf_counter()  # mJ, s
    for _ in range(calls):
        call()
    torch.cuda.synchronize()
    loop_s = time.perf_counter() - t0
    energy = float(nvml.nvmlDeviceGetTotalEnergyConsumption(handle) - e0)
    times.sort()

    def pct(q: float) -> float:
        return times[min(len(times) - 1, max(0, round(q * (len(times) - 1))))]

    return {
        "median_ms": statistics.median(times),
        "min_ms": times[0],
        "p10_ms": pct(0.10),
        "p90_ms": pct(0.90),
        "max_ms": times[-1],
        "loop_ms": loop_ms,
        "reps": reps,
        "energy_calls": calls,
        "energy_loop_s": loop_s,
        "energy_loop_mj": energy,
        "energy_mj": energy / calls,
        "avg_power_w": energy / 1e3 / loop_s if loop_s > 0 else float("nan"),
    }


def measure(torch: Any, nvml: Any, handle: Any, shape: LayerShape) -> dict[str, Any]:
    """One layer configuration: its input sets rotated, timed by :func:`time_calls`."""
    free, _ = torch.cuda.mem_get_info()
    n_sets = n_sets_for(shape.footprint_bytes(), free)
    forwards = [make_layer(torch, shape) for _ in range(n_sets)]
    state = {"i": 0}

    def call() -> Any:
        state["i"] += 1
        return forwards[state["i"] % n_sets]()

    with torch.no_grad():
        stats = time_calls(torch, nvml, handle, call)
    forwards.clear()
    torch.cuda.empty_cache()
    head = {"model": shape.model, "mode": shape.mode, "batch": shape.batch, "seq": shape.seq}
    return {**head, **stats, "n_sets": n_sets, "footprint_bytes": shape.footprint_bytes()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Time whole transformer layers with PyTorch.")
    ap.add_argument("--out", type=Path, required=True, help="folder for layers.csv and env.json")
    ap.add_argument("--only", default=None, help="comma-separated models (bert_large,llama7b,gpt3)")
    ap.add_argument("--device", type=int, default=0, help="CUDA device index")
    ap.add_argument("--dry-run", action="store_true", help="list the layers; import no torch")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    if only and only - set(LAYERS):
        print(f"measure_gpu_layers: unknown model(s) {sorted(only - set(LAYERS))}", file=sys.stderr)
        return 2
    shapes = configs(only)
    if args.dry_run:
        for s in shapes:
            print(
                f"{s.model:10s} {s.mode:7s} batch={s.batch:<3d} seq={s.seq:<6d} "
                f"weights={s.weight_elements() / 1e6:.1f}M footprint={s.footprint_bytes() / 2**20:.0f} MiB "
                f"n_sets={n_sets_for(s.footprint_bytes())}"
            )
        return 0
    from experiments.measure_gpu_kernels import write_measurements

    def measured(torch: Any, nvml: Any, handle: Any) -> Iterator[dict[str, Any]]:
        for s in shapes:
            try:
                row = measure(torch, nvml, handle, s)
            except torch.cuda.OutOfMemoryError:
                print(f"{s}: out of memory, skipped", file=sys.stderr)
                torch.cuda.empty_cache()
                continue
            yield row
            print(f"{s.model:10s} {s.mode:7s} {s.batch:3d} {s.seq:6d} {row['median_ms']:.4f} ms "
                  f"{row['energy_mj']:.2f} mJ")  # fmt: skip

    return write_measurements(args, "measure_gpu_layers", "layers.csv", COLUMNS, measured)


if __name__ == "__main__":
    sys.exit(main())

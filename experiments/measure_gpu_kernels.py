"""Re-measure the kernels of ``experiments/data/h100/kernels.csv`` on any CUDA GPU.

Usage (on a machine with a CUDA GPU, PyTorch and pynvml)::

    python -m experiments.measure_gpu_kernels --out experiments/data/<card>/ \
        [--kernels experiments/data/h100/kernels.csv] [--ops gemm,bmm] [--ids k005,k007]

Method (the one of ``experiments/data/h100/README.md``):

* inputs are normal random values; each kernel runs three times before timing;
* inputs are rotated among ``n_sets`` copies so the working set exceeds
  256 MB where memory allows (timings then read inputs from HBM, not L2);
* timing: CUDA events around each single call; calls repeat until they pass
  50 ms (at least 10, at most 200); median, min, max, p10, p90 are written;
  ``loop_ms`` is a back-to-back loop of as many calls divided by their count;
* energy: the NVML total-energy counter read around back-to-back calls lasting
  at least 0.4 s (``energy_loop_mj``, ``energy_calls``, ``energy_loop_s``,
  ``avg_power_w``); idle board power is read before measuring and stored in
  ``env.json`` with the card's properties.

Writes ``kernels.csv`` (same columns as the H100 file) and ``env.json`` in
``--out``. ``torch`` and ``pynvml`` are imported only when measuring;
``--dry-run`` lists what would run without them.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_KERNELS = Path(__file__).resolve().parent / "data" / "h100" / "kernels.csv"

#: columns written, in the order of the H100 file
COLUMNS: tuple[str, ...] = (
    "id",
    "op",
    "dtype",
    "B",
    "H",
    "M",
    "N",
    "K",
    "causal",
    "C",
    "HW",
    "Kc",
    "R",
    "stride",
    "flops",
    "min_bytes",
    "median_ms",
    "min_ms",
    "max_ms",
    "p10_ms",
    "p90_ms",
    "loop_ms",
    "reps",
    "n_sets",
    "footprint_bytes",
    "energy_calls",
    "energy_loop_s",
    "energy_loop_mj",
    "avg_power_w",
    "tflops",
    "gbps",
)
DESCRIPTIVE = COLUMNS[:14]
OPS = (
    "gemm",
    "bmm",
    "attn_flash",
    "attn_unfused",
    "copy",
    "add",
    "gelu",
    "sum",
    "softmax",
    "layernorm",
    "rmsnorm",
    "conv2d",
)
ELEM_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4, "tf32": 4}

ROTATE_BYTES = 256 * 2**20  # working set to exceed (README)
MIN_TIME_S = 0.050  # timing: calls until 50 ms
MIN_REPS, MAX_REPS = 10, 200
ENERGY_MIN_S = 0.4  # energy loop length
WARMUP = 3


def _i(row: dict[str, str], key: str, default: int = 1) -> int:
    v = (row.get(key) or "").strip()
    return int(float(v)) if v else default


def shapes(row: dict[str, str]) -> dict[str, Any]:
    """Input/output shapes, FLOPs, minimum bytes and footprint of one kernel row."""
    op, dt = row["op"], row["dtype"]
    eb = ELEM_BYTES[dt]
    b, h, m, n, k = (_i(row, c) for c in ("B", "H", "M", "N", "K"))
    causal = _i(row, "causal", 0)
    if op == "gemm":
        ins, outs, flops = [(m, k), (k, n)], [(m, n)], 2 * m * n * k
    elif op == "bmm":
        ins, outs, flops = [(b, m, k), (b, k, n)], [(b, m, n)], 2 * b * m * n * k
    elif op in ("attn_flash", "attn_unfused"):
        pairs = m * n - (m * (m - 1) // 2 if causal and n >= m else 0) if causal else m * n
        if causal and n < m:
            pairs = m * n // 2
        ins, outs = [(b, h, m, k), (b, h, n, k), (b, h, n, k)], [(b, h, m, k)]
        flops = 4 * b * h * pairs * k
    elif op == "conv2d":
        c, hw, kc, r, s = (_i(row, x) for x in ("C", "HW", "Kc", "R", "stride"))
        p = (hw + 2 * (r // 2) - r) // s + 1
        ins, outs = [(b, c, hw, hw), (kc, c, r, r)], [(b, kc, p, p)]
        flops = 2 * b * kc * p * p * c * r * r
    else:
        numel = m * n
        if op == "add":
            ins, outs = [(numel,), (numel,)], [(numel,)]
        elif op == "sum":
            ins, outs = [(numel,)], [()]
        elif op in ("softmax", "layernorm", "rmsnorm"):
            ins, outs = [(m, n)], [(m, n)]
            if op == "layernorm":
                ins += [(n,), (n,)]
            elif op == "rmsnorm":
                ins += [(n,)]
        else:  # copy, gelu
            ins, outs = [(numel,)], [(numel,)]
        flops = numel

    def nbytes(shape: tuple[int, ...]) -> int:
        return math.prod(shape) * eb if shape else eb

    # as in the H100 file: the main tensors only (norm weights and a scalar
    # reduction result are not counted)
    main_ins = ins[:1] if op in ("layernorm", "rmsnorm") else ins
    main_outs = [o for o in outs if o]
    min_bytes = sum(nbytes(s) for s in main_ins) + sum(nbytes(s) for s in main_outs)
    # bytes of one input set: inputs, parameters and a preallocated output
    # (copy, add write into one); decides how many sets to rotate
    footprint = sum(nbytes(s) for s in ins) + (
        sum(nbytes(s) for s in outs) if op in ("copy", "add") else 0
    )
    return {
        "ins": ins,
        "outs": outs,
        "flops": flops,
        "min_bytes": min_bytes,
        "footprint": footprint,
        "causal": bool(causal),
    }


def n_sets_for(footprint: int, free_bytes: float | None = None) -> int:
    """Copies of the inputs to rotate so the working set exceeds 256 MB (max 16)."""
    n = max(1, min(16, math.ceil(ROTATE_BYTES / max(footprint, 1))))
    if free_bytes is not None:
        n = max(1, min(n, int(0.5 * free_bytes // max(footprint, 1))))
    return n


def _make_call(torch: Any, row: dict[str, str], sets: list[list[Any]]) -> Any:
    """A zero-argument function that runs the kernel once on the next input set."""
    import torch.nn.functional as F  # noqa: N812

    op = row["op"]
    causal = _i(row, "causal", 0) == 1
    state = {"i": 0}

    def nxt() -> list[Any]:
        s = sets[state["i"] % len(sets)]
        state["i"] += 1
        return s

    if op in ("gemm", "bmm"):
        return lambda: torch.matmul(*nxt()[:2])
    if op == "attn_flash":
        from torch.nn.attention import SDPBackend, sdpa_kernel

        def flash() -> Any:
            q, k, v = nxt()[:3]
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

        return flash
    if op == "attn_unfused":

        def unfused() -> Any:
            q, k, v = nxt()[:3]  # q pre-scaled by 1/sqrt(d) when created
            s = torch.matmul(q, k.transpose(-1, -2))
            if causal:
                mask = torch.ones(s.shape[-2], s.shape[-1], device=s.device, dtype=torch.bool).triu(
                    1
                )
                s = s.masked_fill(mask, float("-inf"))
            return torch.matmul(torch.softmax(s, dim=-1), v)

        return unfused
    if op == "conv2d":
        stride, r = _i(row, "stride"), _i(row, "R")
        return lambda: F.conv2d(*nxt()[:2], stride=stride, padding=r // 2)
    if op == "copy":
        return lambda: (lambda s: s[1].copy_(s[0]))(nxt())
    if op == "add":
        return lambda: (lambda s: torch.add(s[0], s[1], out=s[2]))(nxt())
    if op == "gelu":
        return lambda: F.gelu(nxt()[0])
    if op == "sum":
        return lambda: nxt()[0].sum()
    if op == "softmax":
        return lambda: torch.softmax(nxt()[0], dim=-1)
    if op == "layernorm":
        n = _i(row, "N")
        return lambda: (lambda s: F.layer_norm(s[0], (n,), s[1], s[2]))(nxt())
    if op == "rmsnorm":
        n = _i(row, "N")
        if hasattr(F, "rms_norm"):
            return lambda: (lambda s: F.rms_norm(s[0], (n,), s[1]))(nxt())
        return lambda: (
            lambda s: (
                s[0]
                * torch.rsqrt(s[0].float().pow(2).mean(-1, keepdim=True) + 1e-6).to(s[0].dtype)
                * s[1]
            )
        )(nxt())
    raise ValueError(f"unknown op {op!r}")


def _inputs(torch: Any, row: dict[str, str], info: dict[str, Any], n_sets: int) -> list[list[Any]]:
    dt = row["dtype"]
    tdtype = {
        "bf16": torch.bfloat16,
        "fp16": torch.float16,
        "fp32": torch.float32,
        "tf32": torch.float32,
    }[dt]
    sets = []
    for _ in range(n_sets):
        ts = [torch.randn(*s, device="cuda", dtype=tdtype) for s in info["ins"]]
        if row["op"] == "attn_unfused":
            ts[0] = ts[0] * (1.0 / math.sqrt(ts[0].shape[-1]))
        if row["op"] == "copy":
            ts.append(torch.empty_like(ts[0]))
        if row["op"] == "add":
            ts.append(torch.empty_like(ts[0]))
        sets.append(ts)
    return sets


def measure_row(torch: Any, nvml: Any, handle: Any, row: dict[str, str]) -> dict[str, Any]:
    """Time and energy of one kernel row (CUDA events, NVML energy counter)."""
    info = shapes(row)
    torch.backends.cuda.matmul.allow_tf32 = row["dtype"] == "tf32"
    torch.backends.cudnn.allow_tf32 = row["dtype"] == "tf32"
    free, _ = torch.cuda.mem_get_info()
    n_sets = n_sets_for(info["footprint"], free)
    sets = _inputs(torch, row, info, n_sets)
    call = _make_call(torch, row, sets)
    for _ in range(WARMUP):
        call()
    torch.cuda.synchronize()
    times: list[float] = []
    total = 0.0
    # Each call is bracketed by its own pair of events, and calls are issued
    # back to back (no synchronisation between them), in batches of 10: short
    # calls then show the host's launch gaps, long ones the GPU time alone, as
    # in the H100 data (see sim/gpu/spec.py, event_period_s).
    while len(times) < MAX_REPS and (len(times) < MIN_REPS or total < MIN_TIME_S * 1e3):
        pairs = []
        for _ in range(min(10, MAX_REPS - len(times))):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            call()
            end.record()
            pairs.append((start, end))
        torch.cuda.synchronize()
        for start, end in pairs:
            ms = start.elapsed_time(end)
            times.append(ms)
            total += ms
    reps = len(times)
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        call()
    end.record()
    end.synchronize()
    loop_ms = start.elapsed_time(end) / reps
    # energy loop: back-to-back calls for at least 0.4 s
    calls = max(reps, math.ceil(ENERGY_MIN_S * 1e3 / max(loop_ms, 1e-3)))
    torch.cuda.synchronize()
    e0 = nvml.nvmlDeviceGetTotalEnergyConsumption(handle)  # mJ
    t0 = time.perf_counter()
    for _ in range(calls):
        call()
    torch.cuda.synchronize()
    t1 = time.perf_counter()
    e1 = nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    loop_s = t1 - t0
    energy_mj = float(e1 - e0)
    times.sort()
    med = statistics.median(times)

    def pct(q: float) -> float:
        return times[min(len(times) - 1, max(0, round(q * (len(times) - 1))))]

    del sets
    torch.cuda.empty_cache()
    return {
        **{c: row.get(c, "") for c in DESCRIPTIVE},
        "flops": info["flops"],
        "min_bytes": info["min_bytes"],
        "median_ms": med,
        "min_ms": times[0],
        "max_ms": times[-1],
        "p10_ms": pct(0.10),
        "p90_ms": pct(0.90),
        "loop_ms": loop_ms,
        "reps": reps,
        "n_sets": n_sets,
        "footprint_bytes": info["footprint"],
        "energy_calls": calls,
        "energy_loop_s": loop_s,
        "energy_loop_mj": energy_mj,
        "avg_power_w": energy_mj / 1e3 / loop_s if loop_s > 0 else float("nan"),
        "tflops": info["flops"] / (med * 1e-3) / 1e12,
        "gbps": info["min_bytes"] / (med * 1e-3) / 1e9,
    }


def read_rows(path: Path, ops: set[str] | None, ids: set[str] | None) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = [c for c in DESCRIPTIVE if rows and c not in rows[0]]
    if missing:
        raise SystemExit(f"{path}: missing column(s) {', '.join(missing)}")
    out = []
    for r in rows:
        if r["op"] not in OPS:
            raise SystemExit(f"{path}: row {r.get('id')}: unknown op {r['op']!r}")
        if r["dtype"] not in ELEM_BYTES:
            raise SystemExit(f"{path}: row {r.get('id')}: unknown dtype {r['dtype']!r}")
        if (ops is None or r["op"] in ops) and (ids is None or r["id"] in ids):
            out.append(r)
    return out


def idle_power_w(nvml: Any, handle: Any, seconds: float = 3.0) -> float:
    """Board power with nothing running: the median of readings over a few seconds."""
    vals = []
    end = time.time() + seconds
    while time.time() < end:
        vals.append(nvml.nvmlDeviceGetPowerUsage(handle) / 1e3)  # mW -> W
        time.sleep(0.1)
    return statistics.median(vals)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Re-measure GPU kernels (time, energy) with PyTorch.")
    ap.add_argument(
        "--kernels",
        type=Path,
        default=DEFAULT_KERNELS,
        help="CSV with the descriptive columns (default: the H100 kernels.csv)",
    )
    ap.add_argument("--out", type=Path, required=True, help="folder for kernels.csv and env.json")
    ap.add_argument("--ops", default=None, help="comma-separated ops to measure (default all)")
    ap.add_argument("--ids", default=None, help="comma-separated kernel ids (default all)")
    ap.add_argument("--device", type=int, default=0, help="CUDA device index")
    ap.add_argument(
        "--dry-run",
        action="store_true",
        help="list kernels, FLOPs, bytes and input sets; import no torch",
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ops = set(args.ops.split(",")) if args.ops else None
    ids = set(args.ids.split(",")) if args.ids else None
    rows = read_rows(args.kernels, ops, ids)
    if args.dry_run:
        for r in rows:
            info = shapes(r)
            print(
                f"{r['id']:6s} {r['op']:12s} {r['dtype']:5s} flops={info['flops']:.3e} "
                f"min_bytes={info['min_bytes']:.3e} n_sets={n_sets_for(info['footprint'])}"
            )
        return 0
    import pynvml as nvml
    import torch

    if not torch.cuda.is_available():
        print("measure_gpu_kernels: no CUDA GPU visible", file=sys.stderr)
        return 2
    torch.cuda.set_device(args.device)
    nvml.nvmlInit()
    handle = nvml.nvmlDeviceGetHandleByIndex(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    props = torch.cuda.get_device_properties(args.device)
    env = {
        "name": props.name,
        "sm_count": props.multi_processor_count,
        "total_mem": props.total_memory,
        "l2_bytes": getattr(props, "L2_cache_size", None),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "max_sm_clock_mhz": nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_SM),
        "power_limit_w": nvml.nvmlDeviceGetPowerManagementLimit(handle) / 1e3,
        "idle_power_w": idle_power_w(nvml, handle),
        "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (args.out / "env.json").write_text(json.dumps(env, indent=1) + "\n")
    torch.manual_seed(0)
    out_path = args.out / "kernels.csv"
    with out_path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(COLUMNS))
        w.writeheader()
        for r in rows:
            try:
                res = measure_row(torch, nvml, handle, r)
            except torch.cuda.OutOfMemoryError:
                print(f"{r['id']}: out of memory, skipped", file=sys.stderr)
                torch.cuda.empty_cache()
                continue
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in res.items()})
            fh.flush()
            print(
                f"{r['id']:6s} {r['op']:12s} {res['median_ms']:.4f} ms "
                f"{res['energy_loop_mj'] / res['energy_calls']:.3f} mJ/call"
            )
    nvml.nvmlShutdown()
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

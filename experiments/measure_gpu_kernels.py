"""Measure GPU kernels (time and energy) on any CUDA GPU, in the columns of
``experiments/data/h100/kernels.csv``.

Usage (on a machine with a CUDA GPU, PyTorch and pynvml)::

    python -m experiments.measure_gpu_kernels --out experiments/data/<card>/ \\
        [--kernels experiments/data/h100/kernels.csv] [--suite issue15] \\
        [--timing event,graph] [--ops gemm,bmm] [--ids k005,k007]

Rows come from ``--kernels`` (a CSV with the descriptive columns) and/or a
built-in ``--suite``:

* ``unaligned``: GEMMs whose K or N break TMA's 16-byte stride rule (odd
  sizes, multiples of 2 or 4 but not 8) next to aligned neighbours;
* ``gqa_decode``: one query per sequence against long KV caches (1K-128K
  keys), GQA and MQA head ratios, through SDPA's flash backend;
* ``fp8``: per-tensor fp8 GEMMs (``torch._scaled_mm``), with and without the
  activation quantisation in the timed region;
* ``issue15``: all three.

Each row is measured under every convention of ``--timing`` (the data
READMEs; ``sim/gpu/timing.py``):

* ``event``: CUDA events around each single eager call, calls issued back to
  back in batches (no synchronisation between them, as in the H100 data);
  ``median_ms`` etc. of the single calls, ``loop_ms`` of a back-to-back
  loop, energy from the NVML counter around >= 0.4 s of back-to-back calls;
* ``graph``: ``graph_ops`` calls (cycling through the input copies) are
  captured in one CUDA graph, replayed back to back between two events;
  ``median_ms`` is the mean per call (no host time), energy per call from
  the NVML counter around >= 0.4 s of replays.

Method as the README of experiments/data/h100/: normal random inputs, three
warm-up calls, inputs rotated among ``n_sets`` copies so the working set
exceeds 256 MB where memory allows. Writes ``kernels.csv`` (the H100 file's
columns plus ``timing``, ``graph_ops``, ``Hkv``, ``kv_dtype``,
``paged_kv_block``, ``layout``, ``includes_act_quant``, ``act_quant``,
``family``) and ``env.json``. ``torch`` and ``pynvml`` are imported only
when measuring; ``--dry-run`` lists the rows without them.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from sim.gpu.rows import INT_COLUMNS

DEFAULT_KERNELS = Path(__file__).resolve().parent / "data" / "h100" / "kernels.csv"

#: the H100 file's columns that say which kernel a row is: its id, op, dtype
#: and shape (the shape columns ``B`` .. ``stride``, as ``sim.gpu.rows`` reads them)
DESCRIPTIVE: tuple[str, ...] = ("id", "op", "dtype") + INT_COLUMNS[
    : INT_COLUMNS.index("stride") + 1
]
#: the kernel model's inputs beyond the H100 file's columns
EXTRA_INPUTS = (
    "Hkv",
    "kv_dtype",
    "paged_kv_block",
    "layout",
    "includes_act_quant",
    "act_quant",
    "family",
)
#: columns written: the H100 file's, then the kernel model's extra inputs
COLUMNS: tuple[str, ...] = (
    DESCRIPTIVE
    + (
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
        "timing",
        "graph_ops",
    )
    + EXTRA_INPUTS
)
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
ELEM_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4, "tf32": 4, "fp8": 1}
TIMINGS = ("event", "graph")

ROTATE_BYTES = 256 * 2**20  # working set to exceed (README)
MIN_TIME_S = 0.050  # timing: calls until 50 ms
MIN_REPS, MAX_REPS = 10, 200
ENERGY_MIN_S = 0.4  # energy loop length
WARMUP = 3
#: calls captured per CUDA graph (the public collectors hold 5-6 copies)
GRAPH_OPS = 6
#: graph replays timed between two events (at least)
GRAPH_REPLAYS = 20


def _i(row: dict[str, str], key: str, default: int = 1) -> int:
    v = str(row.get(key) or "").strip()
    return int(float(v)) if v else default


def _row(rid: str, op: str, dtype: str, **kw: Any) -> dict[str, str]:
    r = {c: "" for c in DESCRIPTIVE + EXTRA_INPUTS}
    r.update({"id": rid, "op": op, "dtype": dtype})
    r.update({k: str(v) for k, v in kw.items()})
    return r


def suite_rows(name: str) -> list[dict[str, str]]:
    """The rows of a built-in suite (see module docstring)."""
    rows: list[dict[str, str]] = []
    if name in ("unaligned", "issue15"):
        # K or N not a multiple of 8 bf16 elements (16 bytes): no TMA; each
        # next to its aligned neighbour
        for i, (m, n, k) in enumerate(
            [
                (4096, 4096, 4096),
                (4096, 4096, 4095),
                (4096, 4095, 4096),
                (4096, 4100, 4100),
                (4095, 4097, 4093),
                (1000, 999, 1001),
                (2048, 2047, 2049),
                (8192, 8191, 8193),
                (1, 4095, 4097),
                (16, 11007, 4095),
                (512, 3000, 3002),
                (8192, 1000, 1000),
            ]
        ):
            rows.append(_row(f"u{i:03d}", "gemm", "bf16", M=m, N=n, K=k, layout="NN"))
    if name in ("gqa_decode", "issue15"):
        i = 0
        for hkv in (8, 4, 1):
            for b in (1, 8, 32):
                for n in (1024, 8192, 32768, 131072):
                    if b * n * hkv * 128 * 4 > 16 * 2**30:
                        continue
                    rows.append(
                        _row(
                            f"d{i:03d}",
                            "attn_flash",
                            "bf16",
                            B=b,
                            H=32,
                            Hkv=hkv,
                            M=1,
                            N=n,
                            K=128,
                            causal=0,
                            family="fa2",
                        )
                    )
                    i += 1
    if name in ("fp8", "issue15"):
        i = 0
        for m in (16, 256, 2048, 8192):
            for n, k in ((4096, 4096), (14336, 4096), (4096, 14336)):
                for quant in (0, 1):
                    rows.append(
                        _row(
                            f"f{i:03d}",
                            "gemm",
                            "fp8",
                            M=m,
                            N=n,
                            K=k,
                            layout="TN",
                            includes_act_quant=quant,
                            act_quant="dynamic" if quant else "none",
                            family="cublas",
                        )
                    )
                    i += 1
    if not rows:
        raise SystemExit(f"unknown suite {name!r}, expected unaligned, gqa_decode, fp8 or issue15")
    return rows


def shapes(row: dict[str, str]) -> dict[str, Any]:
    """Input/output shapes, FLOPs, minimum bytes and footprint of one kernel row."""
    op, dt = row["op"], row["dtype"]
    eb = ELEM_BYTES[dt]
    out_eb = 2 if dt == "fp8" else eb
    b, h, m, n, k = (_i(row, c) for c in ("B", "H", "M", "N", "K"))
    hkv = _i(row, "Hkv", h)
    causal = _i(row, "causal", 0)
    if op == "gemm":
        ins, outs, flops = [(m, k), (k, n)], [(m, n)], 2 * m * n * k
    elif op == "bmm":
        ins, outs, flops = [(b, m, k), (b, k, n)], [(b, m, n)], 2 * b * m * n * k
    elif op in ("attn_flash", "attn_unfused"):
        pairs = m * n - (m * (m - 1) // 2 if causal and n >= m else 0) if causal else m * n
        if causal and n < m:
            pairs = m * n // 2
        ins, outs = [(b, h, m, k), (b, hkv, n, k), (b, hkv, n, k)], [(b, h, m, k)]
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

    def nbytes(shape: tuple[int, ...], e: int = eb) -> int:
        return math.prod(shape) * e if shape else e

    # as in the H100 file: the main tensors only (norm weights and a scalar
    # reduction result are not counted)
    main_ins = ins[:1] if op in ("layernorm", "rmsnorm") else ins
    main_outs = [o for o in outs if o]
    # fp8 GEMMs with the quantisation timed read bf16 activations
    in_e = [
        2 if (dt == "fp8" and _i(row, "includes_act_quant", 0) and j == 0) else eb
        for j in range(len(main_ins))
    ]
    min_bytes = sum(nbytes(s, e) for s, e in zip(main_ins, in_e, strict=True)) + sum(
        nbytes(s, out_eb) for s in main_outs
    )
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

    if op == "gemm" and row["dtype"] == "fp8":
        quant = _i(row, "includes_act_quant", 0) == 1
        fp8 = torch.float8_e4m3fn

        def fp8_gemm() -> Any:
            a, w, sa, sw = nxt()[:4]
            if quant:
                # dynamic per-tensor quantisation of the bf16 activations
                sa = a.abs().amax().float() / 448.0
                a = (a / sa).to(fp8)
            return torch._scaled_mm(a, w.t(), scale_a=sa, scale_b=sw, out_dtype=torch.bfloat16)

        return fp8_gemm
    if op in ("gemm", "bmm"):
        return lambda: torch.matmul(*nxt()[:2])
    if op == "attn_flash":
        from torch.nn.attention import SDPBackend, sdpa_kernel

        gqa = _i(row, "Hkv", _i(row, "H")) != _i(row, "H")

        def flash() -> Any:
            q, k, v = nxt()[:3]
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                if gqa:
                    return F.scaled_dot_product_attention(
                        q, k, v, is_causal=causal, enable_gqa=True
                    )
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
    sets = []
    if row["op"] == "gemm" and dt == "fp8":
        m, n, k = _i(row, "M"), _i(row, "N"), _i(row, "K")
        quant = _i(row, "includes_act_quant", 0) == 1
        for _ in range(n_sets):
            a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
            if not quant:
                a = a.to(torch.float8_e4m3fn)
            # weights [N, K], row-major: passed transposed (column-major), as _scaled_mm wants
            w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16).to(torch.float8_e4m3fn)
            one = torch.ones((), device="cuda", dtype=torch.float32)
            sets.append([a, w, one, one.clone()])
        return sets
    tdtype = {
        "bf16": torch.bfloat16,
        "fp16": torch.float16,
        "fp32": torch.float32,
        "tf32": torch.float32,
    }[dt]
    for _ in range(n_sets):
        ts = [torch.randn(*s, device="cuda", dtype=tdtype) for s in info["ins"]]
        if row["op"] == "attn_unfused":
            ts[0] = ts[0] * (1.0 / math.sqrt(ts[0].shape[-1]))
        if row["op"] in ("copy", "add"):
            ts.append(torch.empty_like(ts[0]))
        sets.append(ts)
    return sets


def _energy(
    nvml: Any, handle: Any, torch: Any, run: Any, per_iter_ms: float, min_iters: int
) -> tuple[int, float, float]:
    """(iterations, seconds, mJ) of back-to-back ``run()`` calls lasting >= 0.4 s."""
    iters = max(min_iters, math.ceil(ENERGY_MIN_S * 1e3 / max(per_iter_ms, 1e-3)))
    torch.cuda.synchronize()
    e0 = nvml.nvmlDeviceGetTotalEnergyConsumption(handle)  # mJ
    t0 = time.perf_counter()
    for _ in range(iters):
        run()
    torch.cuda.synchronize()
    t1 = time.perf_counter()
    e1 = nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    return iters, t1 - t0, float(e1 - e0)


def _time_event(torch: Any, call: Any) -> tuple[list[float], float]:
    """Single calls bracketed by events (back to back, batches of 10), and
    the per-call time of a back-to-back loop."""
    times: list[float] = []
    total = 0.0
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
    return times, start.elapsed_time(end) / reps


def _time_graph(torch: Any, call: Any, ops: int) -> tuple[Any, list[float]]:
    """Capture ``ops`` calls in one CUDA graph; per-call means of timed
    batches of back-to-back replays (at least GRAPH_REPLAYS per batch)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(WARMUP):
            call()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(ops):
            call()
    for _ in range(WARMUP):
        graph.replay()
    torch.cuda.synchronize()
    means: list[float] = []
    total = 0.0
    while len(means) < MIN_REPS or total < MIN_TIME_S * 1e3:
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(GRAPH_REPLAYS):
            graph.replay()
        end.record()
        end.synchronize()
        ms = start.elapsed_time(end)
        total += ms
        means.append(ms / (GRAPH_REPLAYS * ops))
        if len(means) >= MAX_REPS:
            break
    return graph, means


def measure_row(
    torch: Any, nvml: Any, handle: Any, row: dict[str, str], timing: str = "event"
) -> dict[str, Any]:
    """Time and energy of one kernel row under one timing convention."""
    info = shapes(row)
    torch.backends.cuda.matmul.allow_tf32 = row["dtype"] == "tf32"
    torch.backends.cudnn.allow_tf32 = row["dtype"] == "tf32"
    free, _ = torch.cuda.mem_get_info()
    n_sets = n_sets_for(info["footprint"], free)
    ops = GRAPH_OPS if timing == "graph" else 1
    sets = _inputs(torch, row, info, n_sets)
    call = _make_call(torch, row, sets)
    for _ in range(WARMUP):
        call()
    torch.cuda.synchronize()
    if timing == "graph":
        graph, times = _time_graph(torch, call, ops)
        loop_ms = statistics.mean(times)
        calls, loop_s, energy_mj = _energy(
            nvml, handle, torch, graph.replay, loop_ms * ops, MIN_REPS
        )
        calls *= ops
    else:
        times, loop_ms = _time_event(torch, call)
        calls, loop_s, energy_mj = _energy(nvml, handle, torch, call, loop_ms, len(times))
    reps = len(times)
    times.sort()
    med = statistics.median(times)

    def pct(q: float) -> float:
        return times[min(len(times) - 1, max(0, round(q * (len(times) - 1))))]

    del sets
    torch.cuda.empty_cache()
    return {
        **{c: row.get(c, "") for c in DESCRIPTIVE + EXTRA_INPUTS},
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
        "timing": timing,
        "graph_ops": ops,
    }


def read_rows(path: Path, ops: set[str] | None, ids: set[str] | None) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = [c for c in DESCRIPTIVE if rows and c not in rows[0]]
    if missing:
        raise SystemExit(f"{path}: missing column(s) {', '.join(missing)}")
    return filter_rows(rows, ops, ids, str(path))


def filter_rows(
    rows: list[dict[str, str]], ops: set[str] | None, ids: set[str] | None, where: str
) -> list[dict[str, str]]:
    out = []
    for r in rows:
        if r["op"] not in OPS:
            raise SystemExit(f"{where}: row {r.get('id')}: unknown op {r['op']!r}")
        if r["dtype"] not in ELEM_BYTES:
            raise SystemExit(f"{where}: row {r.get('id')}: unknown dtype {r['dtype']!r}")
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
    ap = argparse.ArgumentParser(description="Measure GPU kernels (time, energy) with PyTorch.")
    ap.add_argument(
        "--kernels",
        type=Path,
        default=None,
        help="CSV with the descriptive columns (default: the H100 kernels.csv, unless --suite is given)",
    )
    ap.add_argument(
        "--suite", default=None, help="built-in rows: unaligned, gqa_decode, fp8 or issue15"
    )
    ap.add_argument("--timing", default="event", help="comma-separated conventions: event, graph")
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


def selected_rows(args: argparse.Namespace) -> list[dict[str, str]]:
    ops = set(args.ops.split(",")) if args.ops else None
    ids = set(args.ids.split(",")) if args.ids else None
    rows: list[dict[str, str]] = []
    if args.kernels is not None or args.suite is None:
        rows += read_rows(args.kernels or DEFAULT_KERNELS, ops, ids)
    if args.suite:
        rows += filter_rows(suite_rows(args.suite), ops, ids, f"suite {args.suite}")
    return rows


def open_device(args: Any, script: str) -> tuple[Any, Any, Any, dict[str, Any]] | None:
    """Select ``args.device``, start NVML, create ``args.out`` and write its
    ``env.json`` (card, clocks, power limit, idle power, library versions);
    ``(torch, nvml, handle, env)``, or ``None`` (message printed) when no
    CUDA GPU is visible. Shared by the kernel and the layer measurements."""
    import pynvml as nvml
    import torch

    if not torch.cuda.is_available():
        print(f"{script}: no CUDA GPU visible", file=sys.stderr)
        return None
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
        "compute_capability": f"{props.major}.{props.minor}",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "max_sm_clock_mhz": nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_SM),
        "power_limit_w": nvml.nvmlDeviceGetPowerManagementLimit(handle) / 1e3,
        "idle_power_w": idle_power_w(nvml, handle),
        "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (args.out / "env.json").write_text(json.dumps(env, indent=1) + "\n")
    return torch, nvml, handle, env


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    timings = [t.strip() for t in args.timing.split(",") if t.strip()]
    bad = [t for t in timings if t not in TIMINGS]
    if bad:
        print(
            f"measure_gpu_kernels: unknown timing {bad[0]!r}, expected event or graph",
            file=sys.stderr,
        )
        return 2
    rows = selected_rows(args)
    if args.dry_run:
        for r in rows:
            info = shapes(r)
            for t in timings:
                print(
                    f"{r['id']:6s} {r['op']:12s} {r['dtype']:5s} {t:5s} flops={info['flops']:.3e} "
                    f"min_bytes={info['min_bytes']:.3e} n_sets={n_sets_for(info['footprint'])}"
                )
        return 0

    def measured(torch: Any, nvml: Any, handle: Any) -> Iterator[dict[str, Any]]:
        for r in rows:
            for t in timings:
                try:
                    res = measure_row(torch, nvml, handle, r, t)
                except torch.cuda.OutOfMemoryError:
                    print(f"{r['id']} ({t}): out of memory, skipped", file=sys.stderr)
                    torch.cuda.empty_cache()
                    continue
                except RuntimeError as exc:  # e.g. no flash kernel for this shape
                    print(f"{r['id']} ({t}): {exc}, skipped", file=sys.stderr)
                    torch.cuda.empty_cache()
                    continue
                yield res
                print(
                    f"{r['id']:6s} {r['op']:12s} {t:5s} {res['median_ms']:.4f} ms "
                    f"{res['energy_loop_mj'] / res['energy_calls']:.3f} mJ/call"
                )

    return write_measurements(args, "measure_gpu_kernels", "kernels.csv", COLUMNS, measured)


def write_measurements(
    args: Any,
    script: str,
    file_name: str,
    columns: Iterable[str],
    measured: Callable[[Any, Any, Any], Iterator[dict[str, Any]]],
) -> int:
    """Open the device (:func:`open_device`), seed torch, and write each row
    ``measured(torch, nvml, handle)`` yields to ``args.out / file_name`` as it
    comes (floats to 6 significant digits, flushed, so an interrupted run
    keeps its rows). The exit status: 0, or 2 when no CUDA GPU is visible.
    Shared by the kernel and the layer measurements."""
    opened = open_device(args, script)
    if opened is None:
        return 2
    torch, nvml, handle, _env = opened
    torch.manual_seed(0)
    path = args.out / file_name
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns))
        w.writeheader()
        for row in measured(torch, nvml, handle):
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
            fh.flush()
    nvml.nvmlShutdown()
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

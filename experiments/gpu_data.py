"""The GPU model's calibration and test data, as kernel rows.

* :func:`load_h100` reads ``experiments/data/h100/`` (our own kernels: eager
  PyTorch calls between CUDA events, ``timing = event``; Nsight Compute
  counters per kernel in ``traffic_ncu.csv``).
* :func:`load_public` reads ``experiments/data/public_gpu/`` (TensorRT-LLM,
  SGLang and vLLM kernels timed as CUDA-graph replays) and adds the columns
  the kernel model reads, from that folder's README and the collector
  scripts it cites (ai-dynamo/aiconfigurator ``collector/``):

  - ``timing``: ``graph``, except vLLM's fp8_block GEMMs, timed eagerly in
    a back-to-back loop (``loop``);
  - GEMM ``family`` and ``act_quant``: bf16 -> cuBLAS; per-tensor fp8 ->
    cuBLASLt with a dynamic per-tensor quantisation (TensorRT-LLM), CUTLASS
    with a static scale (vLLM, ``activation_scheme="static"``) or CUTLASS
    with a per-token quantisation (SGLang ``sgl_per_token_quant_fp8``);
    fp8_block -> CUTLASS block-scaled (TensorRT-LLM on Hopper, vLLM's
    Cutlass/FlashInfer kernels) or DeepGEMM (SGLang, vLLM's DeepGemm),
    1x128 group quantisation;
  - GEMM ``n_sets`` = ``graph_ops`` = the layer copies in one graph:
    TensorRT-LLM ``max(1, min(5, ceil(L2 / weight bytes)))``, vLLM and SGLang
    6 (vLLM fp8_block: 1);
  - attention: paged KV (64-token pages), ``n_sets`` = 1 (each replay
    re-reads the same cache), ``includes_kv_append`` for all three
    frameworks and ``includes_rope`` for TensorRT-LLM (its fused QKV
    pre-processing); family ``trtllm``, ``fa3`` (vLLM FA3/FA4, SGLang FA3)
    or ``triton`` (SGLang).

Shape groups (:func:`shape_group`) are what cross-validation leaves out
whole: the (N, K) weight shape of a GEMM, (H, Hkv, head dim) of attention,
the op and its row or channel sizes otherwise.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parent / "data"
H100_DIR = DATA / "h100"
PUBLIC_DIR = DATA / "public_gpu"

#: the H100's L2 as the collector's cudaDeviceGetAttribute reads it
#: (experiments/data/h100/env.json)
H100_L2_BYTES = 52428800


def load_h100(data_dir: Path = H100_DIR) -> tuple[Any, Any]:
    """(kernels, ncu) of our own H100 data, with the model's columns."""
    import pandas as pd

    kernels = pd.read_csv(data_dir / "kernels.csv")
    kernels["timing"] = "event"
    kernels["source"] = "h100"
    kernels["measured_ms"] = kernels["median_ms"]
    kernels["energy_per_call_mj"] = kernels["energy_loop_mj"] / kernels["energy_calls"]
    ncu = pd.read_csv(data_dir / "traffic_ncu.csv")
    return kernels, ncu


def ncu_calls(ncu: Any) -> Any:
    """One row per profiled call: DRAM bytes and kernel durations summed
    over its kernels (``timing = kernel``; Nsight flushes caches: cold)."""
    first = ncu.groupby("id", sort=False).first().reset_index()
    sums = ncu.groupby("id", sort=False)[
        ["dram_read_bytes", "dram_write_bytes", "duration_ns"]
    ].sum()
    first = first.drop(columns=["dram_read_bytes", "dram_write_bytes", "duration_ns"]).merge(
        sums.reset_index(), on="id"
    )
    first["dram_bytes"] = first["dram_read_bytes"] + first["dram_write_bytes"]
    first["measured_ms"] = first["duration_ns"] * 1e-6
    first["timing"] = "kernel"
    first["n_sets"] = 0
    return first


def _gemm_copies(fw: str, dtype: str, n: int, k: int) -> int:
    if fw == "trtllm":
        w = n * k * (2 if dtype == "bf16" else 1)
        return max(1, min(5, math.ceil(H100_L2_BYTES / w)))
    if fw == "vllm" and dtype == "fp8_block":
        return 1
    return 6


def _gemm_family(fw: str, dtype: str, source: str) -> tuple[str, str]:
    if dtype == "bf16":
        return "cublas", "none"
    if dtype == "fp8":
        return {
            "trtllm": ("cublas", "dynamic"),
            "vllm": ("cutlass", "static"),
            "sglang": ("cutlass", "token"),
        }[fw]
    if fw == "sglang" or "DeepGemm" in source:
        return "deepgemm", "group128"
    return "cutlass", "group128"


def load_public(data_dir: Path = PUBLIC_DIR) -> tuple[Any, Any]:
    """(gemm, attention) frames of the public H100 data with model columns."""
    import pandas as pd

    g = pd.read_parquet(data_dir / "h100_gemm.parquet")
    keys = g[["framework", "dtype", "kernel_source", "N", "K"]].drop_duplicates()
    fam = {
        (r.framework, r.dtype, r.kernel_source): _gemm_family(r.framework, r.dtype, r.kernel_source)
        for r in keys[["framework", "dtype", "kernel_source"]].drop_duplicates().itertuples()
    }
    trip = list(zip(g["framework"], g["dtype"], g["kernel_source"], strict=True))
    g["family"] = [fam[t][0] for t in trip]
    g["act_quant"] = [fam[t][1] for t in trip]
    copies = {
        (r.framework, r.dtype, r.N, r.K): _gemm_copies(r.framework, r.dtype, int(r.N), int(r.K))
        for r in keys.itertuples()
    }
    g["n_sets"] = [
        copies[(f, d, n, k)]
        for f, d, n, k in zip(g["framework"], g["dtype"], g["N"], g["K"], strict=True)
    ]
    g["graph_ops"] = g["n_sets"]
    g["timing"] = np.where(
        (g["framework"] == "vllm") & (g["dtype"] == "fp8_block"), "loop", "graph"
    )
    g["source"] = "public"
    a = pd.read_parquet(data_dir / "h100_attention.parquet")
    a["family"] = np.select(
        [
            a["framework"] == "trtllm",
            a["kernel_source"] == "triton",
            a["kernel_source"].str.endswith("fa4"),
        ],
        ["trtllm", "triton", "fa4"],
        "fa3",
    )
    a["includes_kv_append"] = True
    a["includes_rope"] = a["framework"] == "trtllm"
    a["n_sets"] = 1
    a["graph_ops"] = 1
    a["source"] = "public"
    return g, a


def shape_group(df: Any) -> Any:
    """The shape group of each row (what cross-validation leaves out whole)."""
    import pandas as pd

    op = df["op"].astype(str)

    def col(c: str) -> Any:
        return df[c].astype("Int64").astype(str) if c in df else pd.Series("", index=df.index)

    gemm = op.isin(["gemm", "bmm"])
    attn = op.isin(["attn_flash", "attn_decode", "attn_unfused"])
    hkv = df["Hkv"].fillna(df["H"]) if "Hkv" in df else df.get("H")
    key = np.where(
        gemm,
        "gemm|" + col("N") + "x" + col("K"),
        np.where(
            attn,
            "attn|"
            + col("H")
            + "|"
            + (hkv.astype("Int64").astype(str) if hkv is not None else "")
            + "|"
            + col("K"),
            np.where(
                op == "conv2d",
                "conv|" + col("C") + "|" + col("Kc") + "|" + col("R"),
                op + "|" + col("N"),
            ),
        ),
    )
    return pd.Series(key, index=df.index)


def fold_of(groups: Any, folds: int = 5) -> np.ndarray:
    """A deterministic fold (0..folds-1) per shape group (CRC32 of its key)."""
    return np.array([zlib.crc32(str(g).encode()) % folds for g in groups], np.int64)


#: op -> group of our own H100 data (for strata and reports)
H100_GROUP: dict[str, str] = {
    "gemm": "gemm",
    "bmm": "bmm",
    "conv2d": "conv2d",
    "attn_flash": "attn_flash",
    "attn_unfused": "attn_unfused",
    "copy": "copy",
    "softmax": "softmax",
    "layernorm": "norm",
    "rmsnorm": "norm",
}

#: public rows left out of the fit and of the headline figures, with why:
#: vLLM's fp8_block GEMMs (timed eagerly: vLLM's Python layers dominate,
#: README) and vLLM's FA4 kernels (head dim 512: a code path whose time
#: falls as the batch doubles from 512 to 1024 sequences, not a kernel of
#: the flash families)
EXCLUDED = {
    "vllm_fp8_block_eager": "vLLM fp8_block GEMMs timed eagerly (host time of vLLM's Python path)",
    "vllm_fa4": "vLLM FA4 kernels (head dim 512), not a modelled family",
}


def public_exclusion(df: Any) -> Any:
    """Why each public row is left out of the fit ('' = kept)."""
    reason = np.full(len(df), "", dtype=object)
    if "timing" in df and "dtype" in df:
        reason[((df["framework"] == "vllm") & (df["dtype"] == "fp8_block")).to_numpy()] = (
            "vllm_fp8_block_eager"
        )
    if "family" in df:
        reason[(df["family"] == "fa4").to_numpy()] = "vllm_fa4"
    return reason


def attention_group(df: Any) -> np.ndarray:
    """``decode`` or ``prefill`` per attention row: the phase the kernel
    model reads (``sim.gpu.rows.attention_phase``: the row's ``phase``
    where the data gives one, so a one-token prompt is a prefill; else
    decode for one query)."""
    from sim.gpu.rows import attention_phase

    m = df["M"].fillna(1).astype(int).tolist()
    given = df["phase"].fillna("").astype(str).tolist() if "phase" in df else [""] * len(m)
    memo: dict[tuple[int, str], str] = {}
    out = []
    for key in zip(m, given, strict=True):
        if key not in memo:
            memo[key] = attention_phase("attn_flash", *key)
        out.append(memo[key])
    return np.array(out, dtype=object)


def op_group(df: Any) -> Any:
    """The report group of each row: gemm/attention class and dtype."""
    import pandas as pd

    op = df["op"].astype(str)
    grp = np.where(
        op.isin(["gemm", "bmm"]) & (df.get("source", "") == "public"),
        "gemm",
        np.where(
            op == "attn_flash",
            attention_group(df),
            op.map(lambda o: H100_GROUP.get(o, "elementwise")),
        ),
    )
    return pd.Series(grp, index=df.index)


#: weight of each stratum of our own H100 data against a public stratum
H100_WEIGHT = 1.5


def calibration_frames(max_rows: int = 300) -> dict[str, Any]:
    """Every data set as model rows with ``stratum``, ``group``, ``shape_group``
    and ``fold``; the fit frame is our H100 kernels (event and loop
    conventions) plus a deterministic sub-sample of the kept public rows."""
    import pandas as pd

    from sim.gpu.calibration import subsample

    kern, ncu = load_h100()
    calls = ncu_calls(ncu)
    g, a = load_public()
    kern["group"] = kern["op"].map(lambda o: H100_GROUP.get(o, "elementwise"))
    kern["stratum"] = "h100|" + kern["group"]
    loop = kern.copy()
    loop["timing"] = "loop"
    loop["measured_ms"] = loop["loop_ms"]
    loop["stratum"] = "h100loop|" + loop["group"]
    g["group"] = "gemm"
    g["stratum"] = "gemm|" + g["framework"] + "|" + g["dtype"]
    a["group"] = attention_group(a)
    a["stratum"] = (
        "attn|" + a["framework"] + "|" + a["group"] + "|" + a["dtype"] + "|" + a["kv_dtype"]
    )
    for df in (g, a):
        df["excluded"] = public_exclusion(df)
        df["_key"] = df["id"]
    for df in (kern, loop, calls, g, a):
        df["shape_group"] = shape_group(df).to_numpy()
        df["fold"] = fold_of(df["shape_group"])
    pub = pd.concat([g[g["excluded"] == ""], a[a["excluded"] == ""]], ignore_index=True)
    sub = subsample(pub, max_rows)
    fit = pd.concat([kern, loop, sub], ignore_index=True)
    # our H100 kernels weigh H100_WEIGHT x a public stratum
    fit["weight"] = np.where(fit["source"] == "h100", H100_WEIGHT, 1.0)
    return {"kernels": kern, "loop": loop, "ncu": calls, "gemm": g, "attention": a, "fit": fit}

"""Kernel rows: the input of the GPU kernel model, parsed and checked.

One row describes one timed call (one or more GPU kernels). Rows come as
mappings (a CSV line, a DataFrame record, a dict) or as :class:`KernelRow`;
:func:`to_batch` turns any number of them into a :class:`KernelBatch` of
numpy columns, with defaults filled in and every value checked (a bad value
raises :class:`~sim.gpu.spec.GpuModelError` naming the column and, when
given, the row). The columns are documented in docs/gpu-model.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from sim.gpu.spec import GpuModelError

#: elementwise ops: (input tensors read, output tensors written, CUDA-core
#: ops per element). gelu (erf form) ~ 20 fp32 ops per element: the erff
#: polynomial of CUDA's libdevice is about 15 FMAs plus scaling (estimate);
#: silu = x / (1 + exp(-x)): exp on the SFU (8 op units, as in
#: GpuParams.flash_softmax_ops) + add + divide; silu_mul (SwiGLU's silu(g) * u)
#: one more multiply.
ELEMENTWISE: dict[str, tuple[int, int, float]] = {
    "copy": (1, 1, 0.0),
    "add": (2, 1, 1.0),
    "mul": (2, 1, 1.0),
    "gelu": (1, 1, 20.0),
    "relu": (1, 1, 1.0),
    "silu": (1, 1, 12.0),
    "silu_mul": (2, 1, 13.0),
    "exp": (1, 1, 4.0),
    "sum": (1, 0, 1.0),
}

#: row ops: on-chip passes over each row (softmax: max, sum, normalise and
#: write; norms: statistics, normalise and write) and per-column parameter
#: tensors read (layernorm weight and bias, rmsnorm weight)
ROW_OPS: dict[str, tuple[float, int]] = {
    "softmax": (3.0, 0),
    "layernorm": (2.0, 2),
    "rmsnorm": (2.0, 1),
}

#: every op the model knows, by class
GEMM_OPS = ("gemm", "bmm")
ATTENTION_OPS = ("attn_flash", "attn_decode")
LLM_OPS = ("kv_append", "rotary", "act_quant")
OPS: tuple[str, ...] = (
    *GEMM_OPS,
    "conv2d",
    *ATTENTION_OPS,
    "attn_unfused",
    *ELEMENTWISE,
    *ROW_OPS,
    *LLM_OPS,
)

#: bytes per element by dtype name (fp8_block: fp8 elements, 128-wide block
#: scales accounted for by the GEMM model)
DTYPE_BYTES: dict[str, int] = {
    "fp8": 1,
    "fp8_block": 1,
    "bf16": 2,
    "fp16": 2,
    "tf32": 4,
    "fp32": 4,
}

#: timing conventions (docs/gpu-model.md and the data READMEs):
#: event = one eager call between CUDA events, host time included;
#: graph = mean per call of CUDA-graph replays, no host time;
#: kernel = sum of kernel durations, no launch gaps;
#: loop = per call in a back-to-back eager loop (the kernels.csv loop_ms)
TIMINGS: tuple[str, ...] = ("event", "graph", "kernel", "loop")

#: kernel families by op class
GEMM_FAMILIES = ("cublas", "cutlass", "deepgemm")
PREFILL_FAMILIES = ("fa2", "fa3", "fa4", "trtllm", "triton")
DECODE_FAMILIES = ("fa2", "fa3", "fa4", "trtllm", "triton")
#: fp8 activation quantisation kernels (see sim/gpu/gemm_select.py)
ACT_QUANTS = ("none", "static", "dynamic", "token", "group128")

LAYOUTS = ("NN", "TN")


@dataclass(frozen=True)
class KernelRow:
    """One timed call, as the kernel model reads it (docs/gpu-model.md).

    Sizes: GEMM ``C[M,N] = A[M,K] B[K,N]`` (``B`` batched GEMMs for bmm);
    attention ``B`` sequences, ``H`` query heads, ``Hkv`` KV heads, ``M``
    queries and ``N`` keys per sequence, ``K`` head dim; ``phase`` says
    which kernel ran: ``prefill`` (the context kernel: M queries against N
    keys; ``M = N = 1`` is a one-token prompt) or ``decode`` (one query
    against N cached keys: the split-KV decode kernel); empty: decode for
    ``attn_decode`` and for ``M = 1``, else prefill;
    conv2d ``B, C, HW, Kc, R, stride``; elementwise and row ops ``M x N``;
    ``kv_append`` / ``rotary``: ``B`` x ``M`` tokens of ``H`` (``Hkv``)
    heads of ``K``. Empty strings and ``None`` take the defaults.
    """

    op: str
    dtype: str = "bf16"
    B: int = 1
    H: int = 1
    Hkv: int | None = None
    M: int = 1
    N: int = 1
    K: int = 1
    causal: int = 0
    C: int = 1
    HW: int = 1
    Kc: int = 1
    R: int = 1
    stride: int = 1
    kv_dtype: str = ""
    paged_kv_block: int = 0
    layout: str = "NN"
    includes_act_quant: bool = False
    act_quant: str = ""
    includes_kv_append: bool = False
    includes_rope: bool = False
    timing: str = "event"
    family: str = ""
    phase: str = ""
    n_sets: int = 0
    graph_ops: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


INT_COLUMNS: tuple[str, ...] = (
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
    "paged_kv_block",
    "n_sets",
    "graph_ops",
)
BOOL_COLUMNS: tuple[str, ...] = ("includes_act_quant", "includes_kv_append", "includes_rope")
DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(KernelRow) if f.name != "op"}


def _empty(v: Any) -> bool:
    return (
        v is None
        or (isinstance(v, float) and math.isnan(v))
        or (isinstance(v, str) and not v.strip())
    )


#: largest value of an integer column (as for the ranks of a cascade): the
#: model's products of sizes stay exact in int64 and float64
MAX_INT = 2**48


def _as_int(v: Any, col: str) -> int:
    if isinstance(v, bool):
        return int(v)
    try:
        f = float(v)
    except (TypeError, ValueError, OverflowError):
        f = math.nan
    if not math.isfinite(f) or f != int(f) or f < 0 or f > MAX_INT:
        raise GpuModelError(
            f"column '{col}': expected a whole number from 0 to 2^48, got {str(v)[:40]!r}"
        )
    return int(f)


def _as_bool(v: Any, col: str) -> bool:
    if isinstance(v, bool | np.bool_):
        return bool(v)
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "y", "t", "1.0"):
        return True
    if s in ("0", "false", "no", "n", "f", "0.0"):
        return False
    raise GpuModelError(f"column '{col}': expected true/false (or 1/0), got {v!r}")


def _choice(v: str, col: str, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if v not in allowed:
        raise GpuModelError(
            f"column '{col}': unknown value {v!r}, expected one of {', '.join(allowed)}"
        )
    return v


def normalise_row(row: Mapping[str, Any] | KernelRow, timing: str | None = None) -> dict[str, Any]:
    """A checked row dict with every column of :class:`KernelRow`.

    ``timing`` is the default for rows without a ``timing`` value (the CLI's
    ``--timing``). Families left empty take the default of the op and the
    timing convention (:func:`default_family`).
    """
    src = row.to_dict() if isinstance(row, KernelRow) else dict(row)
    if "op" not in src or _empty(src["op"]):
        raise GpuModelError("column 'op': missing (expected one of " + ", ".join(OPS) + ")")
    out: dict[str, Any] = {"op": _choice(str(src["op"]).strip(), "op", OPS)}
    for col, default in DEFAULTS.items():
        v = src.get(col)
        if _empty(v):
            v = timing if (col == "timing" and timing) else default
        if col in INT_COLUMNS:
            v = _as_int(v, col)
        elif col in BOOL_COLUMNS:
            v = _as_bool(v, col)
        elif col == "Hkv":
            v = None if _empty(v) else _as_int(v, col)
        else:
            v = str(v).strip()
        out[col] = v
    out["dtype"] = _choice(out["dtype"], "dtype", DTYPE_BYTES)
    if out["kv_dtype"]:
        out["kv_dtype"] = _choice(out["kv_dtype"], "kv_dtype", DTYPE_BYTES)
    else:
        out["kv_dtype"] = out["dtype"]
    out["layout"] = _choice(out["layout"].upper() or "NN", "layout", LAYOUTS)
    out["timing"] = _choice(out["timing"].lower(), "timing", TIMINGS)
    if out["Hkv"] is None:
        out["Hkv"] = out["H"]
    op = out["op"]
    for col in ("B", "H", "M", "N", "K", "C", "HW", "Kc", "R", "stride", "graph_ops"):
        if out[col] < 1:
            raise GpuModelError(f"column '{col}': must be >= 1 for op '{op}', got {out[col]}")
    if op in ATTENTION_OPS + ("attn_unfused", "kv_append", "rotary"):
        if out["Hkv"] < 1 or out["H"] % out["Hkv"]:
            raise GpuModelError(
                f"column 'Hkv': must divide H ({out['H']}) for op '{op}', got {out['Hkv']}"
            )
    if out["causal"] not in (0, 1):
        raise GpuModelError(f"column 'causal': expected 0 or 1, got {out['causal']}")
    out["phase"] = attention_phase(op, out["M"], out["phase"])
    fam = out["family"].lower() or default_family(op, out["dtype"], out["timing"])
    out["family"] = _choice(fam, "family", families_for(op, out["phase"]))
    if op in GEMM_OPS and out["dtype"] in ("fp8", "fp8_block"):
        kind = out["act_quant"].lower() or default_act_quant(out["dtype"], out["family"])
        out["act_quant"] = _choice(kind, "act_quant", ACT_QUANTS)
    else:
        out["act_quant"] = "none"
    if op == "attn_decode":
        out["M"] = 1
    return out


#: attention phases: the context (prefill) kernel or the split-KV decode kernel
PHASES = ("prefill", "decode")


def attention_phase(op: str, m: int, phase: str = "") -> str:
    """The checked ``phase`` of a row: '' off attention; for attention the
    given one, else decode for ``attn_decode`` and one query, else prefill.
    A one-token prompt (``M = N = 1``, ``phase = prefill``) runs the context
    kernel: one CTA per sequence and head, unlike a decode step's split-KV
    kernel (TensorRT-LLM's context FMHA against XQA)."""
    phase = phase.strip().lower()
    if op not in ATTENTION_OPS:
        if phase:
            raise GpuModelError(f"column 'phase': only attention rows have one, got {phase!r}")
        return ""
    if not phase:
        return "decode" if op == "attn_decode" or m == 1 else "prefill"
    phase = _choice(phase, "phase", PHASES)
    if phase == "decode" and m != 1:
        raise GpuModelError(f"column 'phase': decode has one query (M = 1), got M = {m}")
    if phase == "prefill" and op == "attn_decode":
        raise GpuModelError("column 'phase': op 'attn_decode' is a decode step, got 'prefill'")
    return phase


def families_for(op: str, phase: str = "") -> tuple[str, ...]:
    if op in GEMM_OPS or op == "conv2d":
        return GEMM_FAMILIES if op != "conv2d" else ("cudnn",)
    if op == "attn_decode" or (op == "attn_flash" and phase == "decode"):
        return DECODE_FAMILIES
    if op == "attn_flash":
        return PREFILL_FAMILIES
    if op in ("kv_append", "rotary"):
        return ("torch", "fa3", "trtllm", "triton", "fa2")
    return ("torch",)


def default_family(op: str, dtype: str, timing: str) -> str:
    """The family a row ran when it does not say: PyTorch eager's for the
    event and loop conventions (cuBLAS, SDPA's FlashAttention-2), the
    serving frameworks' for graph and kernel timing (cuBLAS for bf16 GEMMs,
    CUTLASS for per-tensor fp8, DeepGEMM for fp8_block; FlashAttention-3)."""
    eager = timing in ("event", "loop")
    if op in GEMM_OPS:
        if dtype == "fp8_block":
            return "deepgemm"
        if dtype == "fp8" and not eager:
            return "cutlass"
        return "cublas"
    if op == "conv2d":
        return "cudnn"
    if op in ATTENTION_OPS:
        return "fa2" if eager else "fa3"
    if op in ("kv_append", "rotary"):
        return "torch" if eager else "fa3"
    return "torch"


def default_act_quant(dtype: str, family: str) -> str:
    """The activation quantisation each fp8 path runs (sim/gpu/gemm_select.py)."""
    if dtype == "fp8_block":
        return "group128"
    return {"cublas": "dynamic", "cutlass": "static", "deepgemm": "token"}[family]


@dataclass
class KernelBatch:
    """Columns of many rows (numpy arrays, one entry per row)."""

    n: int
    cols: dict[str, np.ndarray]

    def __getitem__(self, key: str) -> np.ndarray:
        return self.cols[key]

    def take(self, idx: np.ndarray) -> KernelBatch:
        return KernelBatch(int(len(idx)), {k: v[idx] for k, v in self.cols.items()})

    def f(self, key: str) -> np.ndarray:
        """A column as float64 (sizes can exceed int64 products)."""
        return self.cols[key].astype(np.float64)


def member(a: np.ndarray, values: Iterable[str]) -> np.ndarray:
    """``np.isin`` for a few string values (elementwise ==, no sort)."""
    a = np.asarray(a)
    out = np.zeros(a.shape, bool)
    for v in values:
        out |= a == v
    return out


def to_batch(
    rows: Iterable[Mapping[str, Any] | KernelRow] | Mapping[str, Any] | Any,
    timing: str | None = None,
) -> KernelBatch:
    """A checked :class:`KernelBatch` from rows, one row or a DataFrame.

    Errors name the row (0-based position) and the column.
    """
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(rows, pd.DataFrame):
        return _frame_batch(rows, timing)
    if isinstance(rows, Mapping | KernelRow):
        rows = [rows]
    normal = []
    for i, r in enumerate(rows):
        try:
            normal.append(normalise_row(r, timing))
        except GpuModelError as exc:
            raise GpuModelError(f"row {i}: {exc.message}") from None
    return _columns(normal)


def _columns(normal: list[dict[str, Any]]) -> KernelBatch:
    n = len(normal)
    cols: dict[str, np.ndarray] = {}
    keys = ["op", *DEFAULTS]
    for k in keys:
        vals = [r[k] for r in normal]
        if k in INT_COLUMNS or k == "Hkv":
            cols[k] = np.array(vals, dtype=np.int64).reshape(n)
        elif k in BOOL_COLUMNS:
            cols[k] = np.array(vals, dtype=bool).reshape(n)
        else:
            cols[k] = np.array(vals, dtype=str).reshape(n)
    return KernelBatch(n, cols)


def _frame_batch(df: Any, timing: str | None) -> KernelBatch:
    """Fast path for large DataFrames: unique column combinations are
    checked once (the public data has 373,000 rows of a few thousand kinds)."""
    import pandas as pd

    n = len(df)
    present = [c for c in ["op", *DEFAULTS] if c in df.columns]
    if "op" not in present:
        raise GpuModelError("column 'op': missing (expected one of " + ", ".join(OPS) + ")")
    # the string/bool columns decide defaults; ints are checked vectorised
    keyed = [c for c in present if c not in INT_COLUMNS and c != "Hkv"] + [
        c for c in ("M", "H") if c in present
    ]
    sub = df[keyed].copy()
    for c in keyed:
        sub[c] = sub[c].astype(object).where(sub[c].notna(), None)
    codes, uniques = pd.factorize(pd.MultiIndex.from_frame(sub.astype(str)))
    first = pd.Series(np.arange(n)).groupby(codes).first().to_numpy()
    records = df.iloc[first].to_dict("records")
    normal_u = []
    for j, r in zip(first, records, strict=True):
        r = {k: v for k, v in r.items() if k in present}
        # ints of the representative row stand in only for the keyed ones
        try:
            normal_u.append(normalise_row(r, timing))
        except GpuModelError as exc:
            raise GpuModelError(f"row {int(j)}: {exc.message}") from None
    base = _columns(normal_u).take(codes)
    cols = dict(base.cols)
    for c in INT_COLUMNS + ("Hkv",):
        if c not in df.columns:
            continue
        v = df[c]
        if c == "Hkv":
            v = v.where(v.notna(), df["H"] if "H" in df.columns else 1)
        num = pd.to_numeric(v, errors="coerce")
        default = DEFAULTS.get(c, 1) or 1
        filled = num.fillna(default).to_numpy(np.float64)
        bad = ~np.isfinite(filled) | (filled != np.floor(filled)) | (filled < 0)
        bad |= (
            num.isna().to_numpy()
            & v.notna().to_numpy()
            & (v.astype(str).str.strip() != "").to_numpy()
        )
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise GpuModelError(
                f"row {i}: column '{c}': expected a whole number >= 0, got {v.iloc[i]!r}"
            )
        cols[c] = filled.astype(np.int64)
    for c in ("B", "H", "M", "N", "K", "C", "HW", "Kc", "R", "stride", "graph_ops"):
        low = cols[c] < 1
        if low.any():
            i = int(np.flatnonzero(low)[0])
            raise GpuModelError(f"row {i}: column '{c}': must be >= 1, got {cols[c][i]}")
    if "Hkv" in df.columns:
        badkv = (cols["Hkv"] < 1) | (cols["H"] % np.maximum(cols["Hkv"], 1) != 0)
        att = member(cols["op"], ATTENTION_OPS + ("attn_unfused", "kv_append", "rotary"))
        if (badkv & att).any():
            i = int(np.flatnonzero(badkv & att)[0])
            raise GpuModelError(f"row {i}: column 'Hkv': must divide H, got {cols['Hkv'][i]}")
    else:
        cols["Hkv"] = cols["H"].copy()
    cols["M"] = np.where(cols["op"] == "attn_decode", 1, cols["M"])
    return KernelBatch(n, cols)


__all__ = [
    "ACT_QUANTS",
    "DTYPE_BYTES",
    "ELEMENTWISE",
    "KernelBatch",
    "KernelRow",
    "OPS",
    "ROW_OPS",
    "TIMINGS",
    "default_family",
    "normalise_row",
    "to_batch",
]

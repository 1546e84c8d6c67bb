"""GPU kernel model: time, DRAM bytes and energy of kernels (public API).

Stable kernel-level API (the layer lowering of issue 16 costs each kernel
through it):

* Input: one :class:`~sim.gpu.rows.KernelRow` (frozen dataclass) or one
  mapping with the same keys per timed call:

  - ``op``: ``gemm``, ``bmm``, ``conv2d``, ``attn_flash`` (prefill;
    ``M = 1`` is decode), ``attn_decode``, ``attn_unfused``, elementwise
    (``copy``, ``add``, ``mul``, ``gelu``, ``relu``, ``silu``, ``silu_mul``,
    ``exp``, ``sum``), row ops (``softmax``, ``layernorm``, ``rmsnorm``),
    ``kv_append``, ``rotary``, ``act_quant``;
  - ``dtype`` (``bf16``, ``fp16``, ``fp32``, ``tf32``, ``fp8``,
    ``fp8_block``), ``kv_dtype``;
  - sizes ``B, H, Hkv, M, N, K, causal, C, HW, Kc, R, stride``,
    ``paged_kv_block``, ``layout`` (``NN``/``TN``), ``includes_act_quant``,
    ``act_quant``, ``includes_kv_append``, ``includes_rope``, ``n_sets``,
    ``graph_ops``;
  - ``timing`` (``event``, ``graph``, ``kernel``, ``loop``) and ``family``
    (empty: the default of the op and timing, ``sim.gpu.rows.default_family``).

  docs/gpu-model.md documents every column.
* Output: :class:`KernelResult` (frozen): ``time_s`` (under the row's timing
  convention), ``kernel_s`` (sum of kernel durations), ``loop_s``,
  ``host_s``, ``dram_bytes`` (HBM bytes per kernel as Nsight Compute counts
  them), ``dram_bytes_steady`` (every output written back), ``energy_pj``,
  ``bound`` (``compute``, ``memory``, ``latency``, ``host``), ``family``,
  ``timing``, ``n_kernels``, ``out_of_envelope`` and ``envelope_reason``.

Functions: :func:`predict` (rows -> list of results), :func:`predict_one`,
:func:`predict_arrays` (the vectorised core: a dict of numpy columns),
:func:`predict_kernels` (a DataFrame or rows with the ``PRED_COLUMNS``
added), :func:`predict_row` (one row -> prediction dict and a scalar
:class:`~sim.gpu.tiling.KernelCost`), :func:`resolve` (arch -> spec, params).
``evaluate_cascade`` (the lowering of a whole cascade, ``sim.gpu.cascade``)
is re-exported.

The model is analytical: kernel selection (``sim.gpu.gemm_select``,
``sim.gpu.attention``), per-op kernels (``sim.gpu.kernels``), timing
conventions (``sim.gpu.timing``), energy (``sim.gpu.energy``), a handful of
global scalars (``sim/gpu/params/h100.yaml``, ``sim.gpu.spec``). See
docs/gpu-model.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.gpu.cascade import evaluate_cascade
from sim.gpu.energy import energy_pj_v
from sim.gpu.envelope import Envelope, check
from sim.gpu.kernel_cost import KernelCost
from sim.gpu.kernels import batch_costs
from sim.gpu.rows import OPS, KernelBatch, KernelRow, member, to_batch
from sim.gpu.spec import GpuModelError, GpuParams, GpuSpec, load_params, params_path, resolve
from sim.gpu.timing import (
    bound,
    call_time,
    eager_gpu_time,
    energy_time,
    host_time,
    kernel_time,
    loop_time,
)

__all__ = [
    "GpuModelError",
    "GpuParams",
    "GpuSpec",
    "KernelResult",
    "KernelRow",
    "OPS",
    "PRED_COLUMNS",
    "evaluate_cascade",
    "load_envelope",
    "load_params",
    "predict",
    "predict_arrays",
    "predict_kernels",
    "predict_one",
    "predict_row",
    "resolve",
]

#: columns :func:`predict_kernels` and ``einsim gpu-predict`` add
PRED_COLUMNS: tuple[str, ...] = (
    "pred_ms",
    "pred_kernel_ms",
    "pred_loop_ms",
    "pred_dram_bytes",
    "pred_energy_mj",
    "pred_bound",
    "pred_family",
    "pred_timing",
    "out_of_envelope",
    "envelope_reason",
)


@dataclass(frozen=True)
class KernelResult:
    """Prediction for one timed call (see module docstring)."""

    time_s: float
    kernel_s: float
    loop_s: float
    host_s: float
    dram_bytes: float
    dram_bytes_steady: float
    energy_pj: float
    bound: str
    family: str
    timing: str
    n_kernels: int
    out_of_envelope: bool
    envelope_reason: str
    detail: dict[str, float] = field(default_factory=dict)


_ENVELOPE: dict[str, Envelope | None] = {}


def load_envelope(name: str = "h100") -> Envelope | None:
    """The calibration envelope stored with the parameters (or None)."""
    if name not in _ENVELOPE:
        from workloads.yamlio import load_yaml

        path = params_path(name)
        doc = load_yaml(path, "GPU parameter file", error=GpuModelError)[0] if path.exists() else {}
        env = (doc or {}).get("envelope")
        _ENVELOPE[name] = (
            None
            if not env
            else Envelope.from_list(env.get("regions"), env.get("compute_capability", 9.0))
        )
    return _ENVELOPE[name]


def predict_arrays(
    batch: KernelBatch,
    spec: GpuSpec,
    params: GpuParams,
    envelope: Envelope | None | str = "default",
) -> dict[str, np.ndarray]:
    """The vectorised core: one numpy column per output, one entry per row."""
    c, detail = batch_costs(batch, spec, params)
    timing = batch["timing"]
    ops = batch.f("graph_ops")
    t = call_time(c, params, timing, ops)
    t_e = energy_time(c, params, timing, ops)
    busy = np.where(
        member(timing, ("event", "loop")), eager_gpu_time(c, params), kernel_time(c, params)
    )
    e = energy_pj_v(c, t_e, busy, spec, params)
    env = load_envelope() if envelope == "default" else envelope
    oob, why = check(batch, env if isinstance(env, Envelope) else None, spec.compute_capability)
    out = {
        "time_s": t,
        "kernel_s": kernel_time(c, params),
        "loop_s": loop_time(c, params),
        "host_s": host_time(c, params),
        "dram_bytes": c.ncu_dram,
        "dram_bytes_steady": c.dram_read + c.dram_write,
        "energy_pj": e,
        "bound": bound(c, params, timing),
        "family": batch["family"],
        "timing": timing,
        "n_kernels": c.n_kernels,
        "out_of_envelope": oob,
        "envelope_reason": why,
    }
    for k, v in detail.items():
        out[f"detail_{k}"] = v
    bad = ~np.isfinite(out["time_s"]) | (out["time_s"] <= 0) | ~np.isfinite(e) | (e < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise GpuModelError(
            f"row {i}: non-finite prediction (time {out['time_s'][i]}, energy {e[i]})"
        )
    return out


def _results(arrs: dict[str, np.ndarray]) -> list[KernelResult]:
    n = len(arrs["time_s"])
    det_keys = [k for k in arrs if k.startswith("detail_")]
    res = []
    for i in range(n):
        res.append(
            KernelResult(
                time_s=float(arrs["time_s"][i]),
                kernel_s=float(arrs["kernel_s"][i]),
                loop_s=float(arrs["loop_s"][i]),
                host_s=float(arrs["host_s"][i]),
                dram_bytes=float(arrs["dram_bytes"][i]),
                dram_bytes_steady=float(arrs["dram_bytes_steady"][i]),
                energy_pj=float(arrs["energy_pj"][i]),
                bound=str(arrs["bound"][i]),
                family=str(arrs["family"][i]),
                timing=str(arrs["timing"][i]),
                n_kernels=int(round(float(arrs["n_kernels"][i]))),
                out_of_envelope=bool(arrs["out_of_envelope"][i]),
                envelope_reason=str(arrs["envelope_reason"][i]),
                detail={
                    k[7:]: float(arrs[k][i]) for k in det_keys if math.isfinite(float(arrs[k][i]))
                },
            )
        )
    return res


def predict(
    rows: Iterable[Mapping[str, Any] | KernelRow] | Mapping[str, Any] | KernelRow,
    arch: Any = "h100",
    *,
    timing: str | None = None,
    params: GpuParams | None = None,
) -> list[KernelResult]:
    """Predict every row; ``timing`` is the default convention for rows
    without one (else ``event``)."""
    spec, params = resolve(arch, params)
    return _results(predict_arrays(to_batch(rows, timing), spec, params))


def predict_one(row: Mapping[str, Any] | KernelRow, arch: Any = "h100", **kw: Any) -> KernelResult:
    return predict([row], arch, **kw)[0]


def _pred_columns(arrs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        "pred_ms": arrs["time_s"] * 1e3,
        "pred_kernel_ms": arrs["kernel_s"] * 1e3,
        "pred_loop_ms": arrs["loop_s"] * 1e3,
        "pred_dram_bytes": arrs["dram_bytes"],
        "pred_energy_mj": arrs["energy_pj"] * 1e-9,
        "pred_bound": arrs["bound"],
        "pred_family": arrs["family"],
        "pred_timing": arrs["timing"],
        "out_of_envelope": arrs["out_of_envelope"],
        "envelope_reason": arrs["envelope_reason"],
    }


def predict_row(
    row: Mapping[str, Any], spec: GpuSpec, params: GpuParams
) -> tuple[dict[str, Any], KernelCost]:
    """Predictions for one row (the ``PRED_COLUMNS``) and its scalar cost."""
    from sim.gpu.kernels import kernel_cost_of

    arrs = predict_arrays(to_batch([row]), spec, params)
    out = {
        k: (v[0].item() if hasattr(v[0], "item") else v[0]) for k, v in _pred_columns(arrs).items()
    }
    return out, kernel_cost_of(row, spec, params)


def predict_kernels(
    rows: Any, arch: Any, params: GpuParams | None = None, *, timing: str | None = None
) -> Any:
    """Predict every row of a DataFrame (or an iterable of dicts).

    Returns the same kind of object: a DataFrame with the ``PRED_COLUMNS``
    added (input columns kept), or a list of dicts.
    """
    spec, params = resolve(arch, params)
    import pandas as pd

    if isinstance(rows, pd.DataFrame):
        arrs = predict_arrays(to_batch(rows, timing), spec, params)
        out = rows.copy()
        for k, v in _pred_columns(arrs).items():
            out[k] = v
        return out
    lst = [dict(rows)] if isinstance(rows, Mapping) else [dict(r) for r in rows]
    arrs = predict_arrays(to_batch(lst, timing), spec, params)
    cols = _pred_columns(arrs)
    return [
        {**r, **{k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in cols.items()}}
        for i, r in enumerate(lst)
    ]

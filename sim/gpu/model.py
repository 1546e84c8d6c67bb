"""GPU performance and energy model (public API).

``predict_kernels(rows, arch)`` predicts, for kernels described like
``experiments/data/h100/kernels.csv`` rows, the time of one call
(``pred_ms``, the ``median_ms`` convention), the time per call in a
back-to-back loop (``pred_loop_ms``), HBM bytes read + written
(``pred_dram_bytes``, counted per kernel like Nsight Compute) and board
energy per call (``pred_energy_mj``, the ``energy_loop_mj / energy_calls``
convention).

``evaluate_cascade(cascade, arch)`` maps the Einsums of a workload cascade to
GPU kernels (GEMM, batched GEMM, conv2d, fused or unfused attention,
elementwise / reduction) and returns :class:`sim.metrics.Metrics`.

The model is analytical: tile choice and quantisation (``sim.gpu.tiling``),
per-op kernels (``sim.gpu.kernels``), timing and energy
(``sim.gpu.energy``), a handful of calibrated scalars
(``sim/gpu/params/*.yaml``, ``sim.gpu.spec``). See docs/gpu-model.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from sim.gpu.cascade import evaluate_cascade
from sim.gpu.energy import energy_pj, loop_time_s, median_time_s
from sim.gpu.kernels import OPS, kernel_cost
from sim.gpu.spec import GpuModelError, GpuParams, GpuSpec, load_params
from sim.gpu.tiling import KernelCost

__all__ = [
    "GpuModelError",
    "GpuParams",
    "GpuSpec",
    "OPS",
    "PRED_COLUMNS",
    "evaluate_cascade",
    "load_params",
    "predict_kernels",
    "predict_row",
    "resolve",
]

PRED_COLUMNS: tuple[str, ...] = ("pred_ms", "pred_loop_ms", "pred_dram_bytes", "pred_energy_mj")


def resolve(arch: Any, params: GpuParams | None = None) -> tuple[GpuSpec, GpuParams]:
    """(spec, params) for an Architecture, a GpuSpec or a preset name."""
    if isinstance(arch, str):
        import hw_models

        arch = hw_models.load(arch)
    spec = arch if isinstance(arch, GpuSpec) else GpuSpec.from_arch(arch)
    if params is None:
        key = str(getattr(arch, "name", spec.name)).lower()
        params = load_params(key.split()[0] if key else "h100")
    return spec, params


def predict_row(
    row: Mapping[str, Any], spec: GpuSpec, params: GpuParams
) -> tuple[dict[str, float], KernelCost]:
    """Predictions for one kernel row (and the underlying cost breakdown)."""
    cost = kernel_cost(row, spec, params)
    out = {
        "pred_ms": median_time_s(cost, params) * 1e3,
        "pred_loop_ms": loop_time_s(cost, params) * 1e3,
        "pred_dram_bytes": cost.ncu_dram_bytes,
        "pred_energy_mj": energy_pj(cost, spec, params) * 1e-9,
    }
    for k, v in out.items():
        if not math.isfinite(v) or v < 0:
            raise GpuModelError(f"non-finite prediction {k}={v} for row {dict(row)}")
    return out, cost


def predict_kernels(rows: Any, arch: Any, params: GpuParams | None = None) -> Any:
    """Predict every row of a DataFrame (or an iterable of dicts).

    Returns the same kind of object: a DataFrame with the prediction columns
    added (input columns kept), or a list of dicts.
    """
    spec, params = resolve(arch, params)
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(rows, pd.DataFrame):
        preds = [predict_row(r, spec, params)[0] for r in rows.to_dict("records")]
        out = rows.copy()
        for col in PRED_COLUMNS:
            out[col] = [p[col] for p in preds]
        return out
    result = []
    for r in _iter_rows(rows):
        p, _ = predict_row(r, spec, params)
        result.append({**r, **p})
    return result


def _iter_rows(rows: Iterable[Mapping[str, Any]] | Mapping[str, Any]) -> list[dict[str, Any]]:
    if isinstance(rows, Mapping):
        return [dict(rows)]
    return [dict(r) for r in rows]

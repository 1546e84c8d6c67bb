"""Fit the GPU model's scalar parameters on measured kernels; error metrics.

Ten scalars are fitted, in three fits, each on a different measurement:

1. traffic (``gemm_reread``, ``l2_retain_frac``) on Nsight Compute DRAM
   bytes (``traffic_ncu.csv``), relative error per profiled call;
2. time (``tensor_eff``, ``hbm_eff``, ``row_s_per_byte``, ``launch_s``,
   ``host_op_s``) on ``median_ms`` of ``kernels.csv``:
   residual = error / max(measured, 50 us), so kernels of 50 us or more count
   by relative error and faster ones by absolute error;
3. energy (``e_tensor16_pj``, ``e_cuda_pj``, ``e_hbm_pj_per_byte``), a
   non-negative linear least squares on energy per call.

Everything else is fixed (datasheet figures of the preset, instruction
counts, published figures; sources in ``sim/gpu/spec.py``) or tied to a
fitted scalar (``TIES``). No parameter depends on a kernel shape and nothing
is read off the data outside these fits. ``leave_one_group_out`` re-fits
with one op group's rows hidden and predicts it (strict: none of its rows
is used); parameters only that group informs take a fallback
(``FALLBACK``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from sim.gpu.energy import (
    ENERGY_CLASSES,
    energy_terms,
    loop_time_s,
    median_time_s,
)
from sim.gpu.kernels import kernel_cost
from sim.gpu.spec import GpuParams, GpuSpec

#: threshold between "slow" kernels (relative errors) and fast ones (µs)
SLOW_S = 50e-6

TRAFFIC_FIT: tuple[str, ...] = (
    "gemm_reread",
    "l2_retain_frac",
)
#: fitted time scalars (on median_ms)
TIME_FIT: tuple[str, ...] = (
    "tensor_eff",
    "hbm_eff",
    "row_s_per_byte",
    "launch_s",
    "host_op_s",
)
#: physical ranges of the parameters (also of those not fitted by default,
#: for fits with other ``names``)
BOUNDS: dict[str, tuple[float, float]] = {
    "tensor_eff": (0.3, 1.0),
    "cuda_eff": (0.3, 1.0),
    "hbm_eff": (0.5, 1.0),
    "wave_quant": (0.0, 1.0),
    "flash_mma_eff": (0.1, 1.0),
    "flash_softmax_ops": (0.0, 64.0),
    "row_fixed_s": (0.0, 50e-6),
    "row_s_per_byte": (0.0, 5e-9),
    "launch_s": (0.0, 20e-6),
    "event_period_s": (0.0, 60e-6),
    "host_op_s": (0.5e-6, 40e-6),
    "l2_reuse_frac": (0.2, 1.0),
    "gemm_reread": (0.5, 4.0),
    "l2_retain_frac": (0.0, 1.0),
    "flash_kv_l2_frac": (0.05, 10.0),
}
ENERGY_FIT: tuple[str, ...] = (
    "e_tensor16_pj",
    "e_cuda_pj",
    "e_hbm_pj_per_byte",
)
#: L2 energy per byte tied to HBM's: Dally (MICRO-52 keynote, REFERENCES.md)
#: gives 50 pJ per word from the last-level cache and 640 pJ from DRAM
L2_PER_HBM_ENERGY = 50.0 / 640.0

#: parameters not fitted but tied to a fitted one: name -> (source, factor).
#: Applied after every fit step (and written to the parameter file).
TIES: dict[str, tuple[str, float]] = {
    # one GEMM main-loop efficiency for tensor-core and CUDA-core GEMMs
    "cuda_eff": ("tensor_eff", 1.0),
    # the timing loop's own host work per iteration: two cudaEventRecord
    # calls, two host operations (sim.gpu.spec.HOST_OPS)
    "event_period_s": ("host_op_s", 2.0),
    # one effective L2 capacity fraction for the dirty output lines left at a
    # kernel's end and for FlashAttention's K/V reuse
    "flash_kv_l2_frac": ("l2_retain_frac", 1.0),
    # tensor-core energy per FLOP: one number for bf16/fp16 wgmma, FA-2's
    # mma.sync and TF32 (weakly identified apart: most TF32 GEMMs sit at the
    # power cap); fp8 half of it (half the operand bits; no fp8 data)
    "e_tensor16_sync_pj": ("e_tensor16_pj", 1.0),
    "e_tf32_pj": ("e_tensor16_pj", 1.0),
    "e_tensor8_pj": ("e_tensor16_pj", 0.5),
    # a row kernel's (and the online softmax's) on-chip pass per element is
    # flash_softmax_ops CUDA-core op units (instruction count, sim/gpu/spec.py)
    "e_rowpass_pj": ("e_cuda_pj", 12.0),
    "e_l2_pj_per_byte": ("e_hbm_pj_per_byte", L2_PER_HBM_ENERGY),
}


def apply_ties(params: GpuParams) -> GpuParams:
    """Set the tied parameters from their sources (``TIES``)."""
    vals = {}
    for name, (src, f) in TIES.items():
        if src == "e_cuda_pj" and name == "e_rowpass_pj":
            f = params.flash_softmax_ops
        vals[name] = getattr(params, src) * f
    return replace(params, **vals)


#: op -> validation/cross-validation group
OP_GROUP: dict[str, str] = {
    "gemm": "gemm",
    "bmm": "bmm",
    "conv2d": "conv2d",
    "attn_flash": "attn_flash",
    "attn_unfused": "attn_unfused",
    "copy": "copy",
    "add": "elementwise",
    "mul": "elementwise",
    "gelu": "elementwise",
    "relu": "elementwise",
    "exp": "elementwise",
    "sum": "elementwise",
    "softmax": "softmax",
    "layernorm": "norm",
    "rmsnorm": "norm",
}

#: group held out -> parameters only it informs -> a fallback: another
#: parameter's name, (name, factor), or a constant. A held-out group lends
#: none of its rows (time, loop time, energy, Nsight counters) to the model.
FALLBACK: dict[str, dict[str, str | float | tuple[str, float]]] = {
    # none: every fitted scalar is informed by several groups (SDPA's host
    # time is host_op_s x its host operations, sim.gpu.spec.HOST_OPS)
}


def _apply_fallback(params: GpuParams, group: str) -> GpuParams:
    for name, src in FALLBACK.get(group, {}).items():
        if isinstance(src, tuple):
            val = getattr(params, src[0]) * src[1]
        elif isinstance(src, str):
            val = getattr(params, src)
        else:
            val = src
        params = replace(params, **{name: float(val)})
    return apply_ties(params)


def group_of(op: str) -> str:
    return OP_GROUP.get(op, op)


def _rows(df: Any) -> list[dict[str, Any]]:
    return df.to_dict("records")


def _costs(rows: list[dict[str, Any]], spec: GpuSpec, params: GpuParams) -> list[Any]:
    return [kernel_cost(r, spec, params) for r in rows]


# ---------------------------------------------------------------- metrics


def error_table(
    measured_ms: np.ndarray,
    pred_ms: np.ndarray,
    measured_mj: np.ndarray | None = None,
    pred_mj: np.ndarray | None = None,
) -> dict[str, float]:
    """The issue's error statistics (MAPE in %, absolute errors in µs)."""
    m = np.asarray(measured_ms, float)
    p = np.asarray(pred_ms, float)
    slow = m >= SLOW_S * 1e3
    rel = np.abs(p - m) / m * 100
    abs_us = np.abs(p - m) * 1e3
    out = {
        "n_slow": int(slow.sum()),
        "n_fast": int((~slow).sum()),
        "time_mape_slow_pct": float(rel[slow].mean()) if slow.any() else float("nan"),
        "time_median_ape_slow_pct": float(np.median(rel[slow])) if slow.any() else float("nan"),
        "fast_median_abs_us": float(np.median(abs_us[~slow])) if (~slow).any() else float("nan"),
        "fast_p90_abs_us": float(np.percentile(abs_us[~slow], 90))
        if (~slow).any()
        else float("nan"),
    }
    if measured_mj is not None and pred_mj is not None:
        e = np.asarray(measured_mj, float)
        pe = np.asarray(pred_mj, float)
        erel = np.abs(pe - e) / e * 100
        out["energy_mape_slow_pct"] = float(erel[slow].mean()) if slow.any() else float("nan")
        out["energy_median_ape_slow_pct"] = (
            float(np.median(erel[slow])) if slow.any() else float("nan")
        )
    return out


def ncu_calls(ncu: Any) -> Any:
    """Sum Nsight Compute DRAM bytes over the kernels of each profiled call."""
    first = ncu.groupby("id", sort=False).first().reset_index()
    sums = ncu.groupby("id", sort=False)[["dram_read_bytes", "dram_write_bytes"]].sum()
    first = first.drop(columns=["dram_read_bytes", "dram_write_bytes"]).merge(
        sums.reset_index(), on="id"
    )
    first["dram_bytes"] = first["dram_read_bytes"] + first["dram_write_bytes"]
    return first


def traffic_errors(ncu_calls_df: Any, spec: GpuSpec, params: GpuParams) -> np.ndarray:
    """Relative error of predicted NCU DRAM bytes per profiled call."""
    rows = _rows(ncu_calls_df)
    pred = np.array([c.ncu_dram_bytes for c in _costs(rows, spec, params)])
    return pred / ncu_calls_df["dram_bytes"].to_numpy(float) - 1.0


# ------------------------------------------------------------------ fits


def _least_squares(fun: Any, names: tuple[str, ...], base: GpuParams) -> GpuParams:
    from scipy.optimize import least_squares

    x0 = np.array([getattr(base, n) for n in names], float)
    lo = np.array([BOUNDS[n][0] for n in names])
    hi = np.array([BOUNDS[n][1] for n in names])
    scale = np.maximum(np.abs(x0), (hi - lo) * 1e-3)
    x0 = np.clip(x0, lo + 1e-12 * scale, hi - 1e-12 * scale)

    def f(z: np.ndarray) -> np.ndarray:
        return fun(apply_ties(replace(base, **dict(zip(names, z * scale, strict=True)))))

    res = least_squares(
        f,
        x0 / scale,
        bounds=(lo / scale, hi / scale),
        loss="soft_l1",
        f_scale=0.03,
        diff_step=1e-3,
        max_nfev=80,
        ftol=1e-3,
        xtol=1e-3,
    )
    return apply_ties(replace(base, **dict(zip(names, (res.x * scale).tolist(), strict=True))))


def fit_traffic(
    ncu_calls_df: Any, spec: GpuSpec, base: GpuParams, names: tuple[str, ...] | None = None
) -> GpuParams:
    names = names or TRAFFIC_FIT
    if len(ncu_calls_df) == 0:
        return base
    return _least_squares(lambda p: traffic_errors(ncu_calls_df, spec, p), names, base)


def time_residuals(
    rows: list[dict[str, Any]], measured_s: np.ndarray, spec: GpuSpec, params: GpuParams
) -> np.ndarray:
    pred = np.array([median_time_s(c, params) for c in _costs(rows, spec, params)])
    return (pred - measured_s) / np.maximum(measured_s, SLOW_S)


def fit_time(
    kernels: Any, spec: GpuSpec, base: GpuParams, names: tuple[str, ...] | None = None
) -> GpuParams:
    names = names or TIME_FIT
    rows = _rows(kernels)
    meas = kernels["median_ms"].to_numpy(float) * 1e-3
    return _least_squares(lambda p: time_residuals(rows, meas, spec, p), names, base)


def fit_energy(
    kernels: Any, spec: GpuSpec, base: GpuParams, names: tuple[str, ...] | None = None
) -> GpuParams:
    """Non-negative linear least squares of energy per call (relative)."""
    names = names or ENERGY_FIT
    from scipy.optimize import nnls

    rows = _rows(kernels)
    meas_mj = (kernels["energy_loop_mj"] / kernels["energy_calls"]).to_numpy(float)
    # the time-proportional terms use the measured loop time, so that time
    # errors are not soaked up by the per-FLOP and per-byte energies
    if "energy_loop_s" in kernels:
        t_meas = (kernels["energy_loop_s"] / kernels["energy_calls"]).to_numpy(float)
    else:
        t_meas = kernels["loop_ms"].to_numpy(float) * 1e-3
    cols = []
    fixed = []
    for cost, t in zip(_costs(rows, spec, base), t_meas, strict=True):
        flops = cost.flops
        col = {
            "e_tensor16_pj": flops.get("tensor16", 0.0)
            + flops.get("tensor16_sync", 0.0)
            + flops.get("tf32", 0.0)
            + 0.5 * flops.get("tensor8", 0.0),
            "e_cuda_pj": flops.get("cuda", 0.0)
            + base.flash_softmax_ops * flops.get("rowpass", 0.0),
            "e_hbm_pj_per_byte": cost.dram_read_bytes
            + cost.dram_write_bytes
            + L2_PER_HBM_ENERGY * cost.l2_bytes,
        }
        cols.append([col[n] for n in names])
        fixed.append(
            spec.idle_power_w * t * 1e12
            + sum(getattr(base, n) * col[n] for n in ENERGY_FIT if n not in names)
        )
    a = np.array(cols) * 1e-9  # pJ -> mJ
    b = meas_mj - np.array(fixed) * 1e-9
    w = 1.0 / meas_mj
    # kernels under 50 us: loop timing is host-bound and noisy, weigh less
    slow = kernels["median_ms"].to_numpy(float) >= SLOW_S * 1e3
    w = w * np.where(slow, 1.0, 0.3)
    colscale = np.maximum(np.abs(a).max(axis=0), 1e-30)
    # kernels at the power limit carry no information on the per-FLOP and
    # per-byte energies (their energy is TDP x time): fit the others, and
    # re-decide which are capped with the new values (a few rounds)
    cap_mj = spec.tdp_w * t_meas * 1e3
    use = np.ones(len(b), bool)
    for _ in range(4):
        x, _ = nnls(a[use] * w[use, None] / colscale, b[use] * w[use])
        x = x / colscale
        pred = a @ x + np.array(fixed) * 1e-9
        new_use = pred < cap_mj
        if new_use.sum() < len(names) or (new_use == use).all():
            break
        use = new_use
    vals = dict(zip(names, x.tolist(), strict=True))
    return apply_ties(replace(base, **vals))


def fit_all(
    kernels: Any,
    ncu: Any,
    spec: GpuSpec,
    base: GpuParams | None = None,
    rounds: int = 2,
) -> GpuParams:
    """Traffic, then time, then energy (time re-fitted once traffic moved).

    Uses only the rows it is given (``kernels`` and ``ncu``): nothing is read
    off other data.
    """
    params = apply_ties(base or GpuParams())
    calls = ncu_calls(ncu) if ncu is not None and len(ncu) else None
    for _ in range(rounds):
        if calls is not None:
            params = fit_traffic(calls, spec, params)
        params = fit_time(kernels, spec, params)
    return fit_energy(kernels, spec, params)


def predict_frame(kernels: Any, spec: GpuSpec, params: GpuParams) -> Any:
    out = kernels.copy()
    costs = _costs(_rows(kernels), spec, params)
    out["pred_ms"] = [median_time_s(c, params) * 1e3 for c in costs]
    out["pred_loop_ms"] = [loop_time_s(c, params) * 1e3 for c in costs]
    out["pred_dram_bytes"] = [c.ncu_dram_bytes for c in costs]
    out["pred_energy_mj"] = [sum(energy_terms(c, spec, params).values()) * 1e-9 for c in costs]
    return out


def leave_one_group_out(
    kernels: Any, ncu: Any, spec: GpuSpec, base: GpuParams | None = None
) -> Any:
    """Predict each op group with parameters fitted on all the other groups.

    Strict: nothing from the held-out group's rows is used to predict it
    (not its median_ms, loop_ms, energy or Nsight Compute counters);
    parameters only that group informs take the ``FALLBACK`` value.
    """
    import pandas as pd

    base = base or GpuParams()
    groups = kernels["op"].map(group_of)
    parts = []
    for g in sorted(groups.unique()):
        train = kernels[groups != g]
        ncu_train = ncu[ncu["op"].map(group_of) != g] if ncu is not None else None
        fitted = _apply_fallback(fit_all(train, ncu_train, spec, base, rounds=1), g)
        test = predict_frame(kernels[groups == g], spec, fitted)
        test["cv_group"] = g
        parts.append(test)
    return pd.concat(parts).loc[kernels.index]


# -------------------------------------------------------------- baselines


def roofline_baseline(
    kernels: Any, spec: GpuSpec, *, measured_peaks: bool = False, launch_s: float = 0.0
) -> np.ndarray:
    """Roofline time (ms): max(flops / peak, min_bytes / bandwidth) [+ launch].

    ``measured_peaks`` uses the H100's measured peaks from
    /work/shared/REFERENCES.md (bf16 713 TFLOP/s, TF32 375, fp32 52, copy
    3.0 TB/s) instead of the datasheet.
    """
    out = []
    for r in _rows(kernels):
        dt = r.get("dtype", "bf16")
        if measured_peaks:
            # measured on the H100 of data/h100 (REFERENCES.md)
            peak = {"bf16": 713e12, "fp16": 713e12, "tf32": 375e12, "fp32": 52e12}.get(dt, 713e12)
            bw = 3.0e12
        else:
            peak = (
                spec.cuda_rate("fp32")
                if dt == "fp32"
                else spec.tensor_rate(dt if dt in ("bf16", "fp16", "tf32", "fp8") else "bf16")
            )
            bw = spec.hbm_bandwidth_bytes_per_s
        if r["op"] not in ("gemm", "bmm", "conv2d", "attn_flash", "attn_unfused"):
            peak = spec.cuda_rate("fp32")
        out.append((max(float(r["flops"]) / peak, float(r["min_bytes"]) / bw) + launch_s) * 1e3)
    return np.array(out)


__all__ = [
    "ENERGY_CLASSES",
    "error_table",
    "fit_all",
    "fit_energy",
    "fit_time",
    "fit_traffic",
    "group_of",
    "leave_one_group_out",
    "ncu_calls",
    "predict_frame",
    "roofline_baseline",
    "traffic_errors",
]

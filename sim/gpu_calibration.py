"""Fit the GPU model's scalar parameters on measured kernels; error metrics.

Three fits, in this order, each on a different measurement:

1. traffic scalars (L2 reuse, re-read, retention) on Nsight Compute DRAM
   bytes (``traffic_ncu.csv``), relative error per profiled call;
2. time scalars (flash MMA efficiency, row-kernel latency, launch cost,
   event period) on ``median_ms`` of ``kernels.csv``: residual = error /
   max(measured, 50 us), so kernels of 50 us or more count by relative error
   and faster ones by absolute error. The host issue time per API family and
   the event overhead are not fitted but read off ``loop_ms`` and
   ``median_ms`` (``measured_timing_s``: one number per API family);
3. energy scalars, a linear least squares on energy per call given the
   predicted loop times (non-negative, relative residuals).

No parameter depends on a kernel shape. ``leave_one_group_out`` re-fits with
one op group held out and predicts it; parameters only that group informs
fall back to a generic value (see ``FALLBACK``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from sim.gpu_energy import (
    ENERGY_CLASSES,
    energy_terms,
    gpu_time_s,
    loop_time_s,
    median_time_s,
)
from sim.gpu_kernels import kernel_cost
from sim.gpu_spec import GpuParams, GpuSpec

#: threshold between "slow" kernels (relative errors) and fast ones (µs)
SLOW_S = 50e-6

TRAFFIC_FIT: tuple[str, ...] = (
    "gemm_reread",
    "l2_retain_frac",
    "flash_kv_l2_frac",
)
#: fitted time scalars. Not fitted: the host issue times and ``event_s``
#: (read off loop_ms / median_ms, ``measured_timing_s``); ``tensor_eff``,
#: ``cuda_eff``, ``hbm_eff``, ``flash_softmax_ops``, ``wave_quant``,
#: ``l2_reuse_frac``, ``feed_multicast`` (fixed, sources in sim/gpu_spec.py)
TIME_FIT: tuple[str, ...] = (
    "flash_mma_eff",
    "row_fixed_s",
    "row_s_per_byte",
    "launch_s",
    "event_period_s",
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
    "event_s": (0.0, 30e-6),
    "event_period_s": (0.0, 60e-6),
    "host_cublas_s": (1e-6, 80e-6),
    "host_sdpa_s": (1e-6, 120e-6),
    "host_eltwise_s": (1e-6, 80e-6),
    "host_copy_s": (1e-6, 80e-6),
    "l2_reuse_frac": (0.2, 1.0),
    "gemm_reread": (0.5, 4.0),
    "l2_retain_frac": (0.0, 1.0),
    "flash_kv_l2_frac": (0.05, 10.0),
}
ENERGY_FIT: tuple[str, ...] = (
    "active_power_w",
    "e_tensor16_pj",
    "e_tensor16_sync_pj",
    "e_tf32_pj",
    "e_cuda_pj",
    "e_rowpass_pj",
    "e_hbm_pj_per_byte",
)
#: L2 energy per byte tied to HBM's: Dally (MICRO-52 keynote, REFERENCES.md)
#: gives 50 pJ per word from the last-level cache and 640 pJ from DRAM
L2_PER_HBM_ENERGY = 50.0 / 640.0

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
#: parameter's name, (name, factor), or a constant. A held-out group must not
#: lend its own data to the model.
FALLBACK: dict[str, dict[str, str | float | tuple[str, float]]] = {
    # FlashAttention-2 reaches about 35% of the H100 tensor peak end to end
    # (Shah et al., "FlashAttention-3", 2024, abstract). With the softmax's
    # 12 CUDA-core ops per score modelled apart (67 TFLOP/s), that leaves the
    # MMAs at head dim 128: 512 / (989e12 e) = 512 / (989e12 x 0.35)
    # - 12 / 67e12, e = 0.40
    "attn_flash": {
        "flash_mma_eff": 0.40,
        "flash_kv_l2_frac": 0.6,
        "e_tensor16_sync_pj": "e_tensor16_pj",
    },
    # tf32 moves twice the operand bits of bf16 per FLOP
    "gemm": {"e_tf32_pj": ("e_tensor16_pj", 2.0)},
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
    return params


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
        return fun(replace(base, **dict(zip(names, z * scale, strict=True))))

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
    return replace(base, **dict(zip(names, (res.x * scale).tolist(), strict=True)))


def fit_traffic(
    ncu_calls_df: Any, spec: GpuSpec, base: GpuParams, names: tuple[str, ...] = TRAFFIC_FIT
) -> GpuParams:
    if len(ncu_calls_df) == 0:
        return base
    return _least_squares(lambda p: traffic_errors(ncu_calls_df, spec, p), names, base)


def time_residuals(
    rows: list[dict[str, Any]], measured_s: np.ndarray, spec: GpuSpec, params: GpuParams
) -> np.ndarray:
    pred = np.array([median_time_s(c, params) for c in _costs(rows, spec, params)])
    return (pred - measured_s) / np.maximum(measured_s, SLOW_S)


def fit_time(
    kernels: Any, spec: GpuSpec, base: GpuParams, names: tuple[str, ...] = TIME_FIT
) -> GpuParams:
    rows = _rows(kernels)
    meas = kernels["median_ms"].to_numpy(float) * 1e-3
    return _least_squares(lambda p: time_residuals(rows, meas, spec, p), names, base)


def fit_energy(
    kernels: Any, spec: GpuSpec, base: GpuParams, names: tuple[str, ...] = ENERGY_FIT
) -> GpuParams:
    """Non-negative linear least squares of energy per call (relative)."""
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
            "active_power_w": min(t, gpu_time_s(cost, base)) * 1e12,
            "e_tensor16_pj": flops.get("tensor16", 0.0),
            "e_tensor16_sync_pj": flops.get("tensor16_sync", 0.0),
            "e_rowpass_pj": flops.get("rowpass", 0.0),
            "e_tf32_pj": flops.get("tf32", 0.0),
            "e_cuda_pj": flops.get("cuda", 0.0),
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
    if "e_hbm_pj_per_byte" in vals:
        vals["e_l2_pj_per_byte"] = vals["e_hbm_pj_per_byte"] * L2_PER_HBM_ENERGY
    if "e_tensor16_pj" in vals:
        # no fp8 kernel measured: fp8 MMA taken as half the bf16 energy per
        # FLOP (half the operand bits per FLOP; assumption, see docs)
        vals["e_tensor8_pj"] = vals["e_tensor16_pj"] / 2
    return replace(base, **vals)


#: host API family -> the single-call ops that issue only that family
HOST_FAMILY_OPS: dict[str, tuple[str, ...]] = {
    "host_cublas_s": ("gemm", "bmm", "conv2d"),
    "host_sdpa_s": ("attn_flash",),
    "host_eltwise_s": (
        "add",
        "mul",
        "gelu",
        "relu",
        "exp",
        "sum",
        "softmax",
        "layernorm",
        "rmsnorm",
    ),
    "host_copy_s": ("copy",),
}


def measured_timing_s(kernels: Any) -> dict[str, float]:
    """Host issue times per API family and the event overhead, measured.

    In a back-to-back loop (``loop_ms``) host and GPU overlap, so a call's
    time per iteration is max(host issue time, GPU time), and the shortest
    ``loop_ms`` of a family's ops is its host issue time (PyTorch dispatch +
    library + launch; the calls at that floor are host-bound). A single
    call between CUDA events (``median_ms``) of such a host-bound call takes
    that issue time plus the event bracketing: ``event_s`` is the median of
    ``median_ms - loop_ms`` over the calls within 10% of their family's
    floor. One number per API family, the same for every row.
    """
    out = measured_host_s(kernels)
    if not out or "median_ms" not in kernels:
        return out
    gaps = []
    for name, ops in HOST_FAMILY_OPS.items():
        sub = kernels[kernels["op"].isin(ops)]
        if name in out and len(sub):
            near = sub[sub["loop_ms"] <= 1.1 * out[name] * 1e3]
            gaps.extend(((near["median_ms"] - near["loop_ms"]) * 1e-3).tolist())
    if gaps:
        out["event_s"] = float(np.median(gaps))
    return out


def measured_host_s(kernels: Any) -> dict[str, float]:
    """Host issue time per call of each API family, measured, not fitted.

    In a back-to-back loop (``loop_ms``) the host and the GPU overlap, so a
    call's time per iteration is max(host issue time, GPU time): the
    shortest ``loop_ms`` of a family's ops is its host issue time (PyTorch
    dispatch + library + launch) when that call is host-bound. One number per
    API family, the same for every row (no per-shape value).
    """
    out: dict[str, float] = {}
    if "loop_ms" not in kernels:
        return out
    for name, ops in HOST_FAMILY_OPS.items():
        sub = kernels[kernels["op"].isin(ops)]
        if len(sub):
            out[name] = float(sub["loop_ms"].min()) * 1e-3
    return out


def fit_all(
    kernels: Any,
    ncu: Any,
    spec: GpuSpec,
    base: GpuParams | None = None,
    rounds: int = 2,
    measured: dict[str, float] | None = None,
) -> GpuParams:
    """Traffic, then time, then energy (time re-fitted once traffic moved).

    The host issue times and the event overhead are measured, not fitted
    (``measured_timing_s``); ``measured`` overrides them.
    """
    if measured is None:
        measured = measured_timing_s(kernels)
    params = replace(base or GpuParams(), **measured)
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
    """Predict each op group with parameters fitted on all the other groups."""
    import pandas as pd

    # host issue times are measured inputs (loop_ms floors, one per API
    # family), like the datasheet figures: every group gets them
    base = base or GpuParams()
    # host issue times and event overhead are measured inputs of the
    # software stack (loop_ms floors, one per API family), like the
    # datasheet figures: every held-out group gets them
    measured = measured_timing_s(kernels)
    groups = kernels["op"].map(group_of)
    parts = []
    for g in sorted(groups.unique()):
        train = kernels[groups != g]
        ncu_train = ncu[ncu["op"].map(group_of) != g] if ncu is not None else None
        fitted = _apply_fallback(
            fit_all(train, ncu_train, spec, base, rounds=1, measured=measured), g
        )
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

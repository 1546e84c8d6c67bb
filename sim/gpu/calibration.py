"""Fit the GPU model's global scalars on measured kernels; error metrics.

The data come in as DataFrames of kernel rows (``experiments/gpu_data.py``
reads the project's data sets): each has the model's input columns, a
``measured_ms`` in its row's ``timing`` convention and a ``stratum`` (the
source, framework, op class and dtype it belongs to). One joint robust
least squares fits the time and traffic scalars (``TIME_FIT``):

* time residual per row = error / max(measured, 50 us): kernels of 50 us or
  more count by relative error, faster ones by absolute error;
* Nsight Compute DRAM bytes per profiled call (relative error);
* every stratum weighs the same in total (its residuals / sqrt(rows)), so
  150 rows of our own H100 data count as much as 25,000 public GEMMs of one
  framework; the public strata are sub-sampled deterministically
  (``max_rows`` per stratum) to keep a fit to about a minute.

Then energy (``ENERGY_FIT``): a non-negative linear least squares of energy
per call on the H100 kernels (the only energy data). Everything else is
fixed (datasheet figures of the preset, instruction counts, published
figures; sources in ``sim/gpu/spec.py``) or tied to a fitted scalar
(``TIES``). No parameter depends on a kernel shape.

Cross-validation (:func:`shape_group_cv`) leaves out whole shape groups:
all rows of a held-out group, in every data set, are hidden from the fit
that predicts them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from sim.gpu.energy import energy_pj_v
from sim.gpu.kernels import batch_costs
from sim.gpu.rows import to_batch
from sim.gpu.spec import GpuParams, GpuSpec
from sim.gpu.timing import call_time, eager_gpu_time, energy_time, kernel_time

#: threshold between "slow" kernels (relative errors) and fast ones, s
SLOW_S = 50e-6

#: fitted time and traffic scalars
TIME_FIT: tuple[str, ...] = (
    "tensor_eff",
    "fp8_eff_ratio",
    "fa3_mma_eff",
    "fa3_softmax_ops",
    "fp8_attn_ops",
    "trtllm_mma_eff",
    "attn_cta_s",
    "overlap_p",
    "hbm_eff",
    "sm_stream_bytes_per_s",
    "row_fixed_s",
    "row_s_per_byte",
    "kernel_ramp_s",
    "launch_gap_s",
    "graph_node_s",
    "graph_launch_s",
    "host_op_s",
    "gemm_reread",
    "l2_retain_frac",
)
#: scalars that enter only after the kernel costs (timing conventions): a
#: fit step that moves only these reuses the costs
TIMING_ONLY: frozenset[str] = frozenset(
    {
        "kernel_ramp_s",
        "launch_gap_s",
        "graph_node_s",
        "graph_launch_s",
        "host_op_s",
        "event_period_s",
    }
)
#: physical ranges of the parameters
BOUNDS: dict[str, tuple[float, float]] = {
    "tensor_eff": (0.3, 1.0),
    "fp8_eff_ratio": (0.3, 1.2),
    "fa3_mma_eff": (0.2, 1.0),
    "flash_mma_eff": (0.1, 1.0),
    "attn_cta_s": (0.0, 20e-6),
    "fa3_softmax_ops": (0.0, 64.0),
    "fp8_attn_ops": (0.0, 64.0),
    "trtllm_mma_eff": (0.2, 1.0),
    "overlap_p": (1.0, 20.0),
    "hbm_eff": (0.5, 1.0),
    "sm_stream_bytes_per_s": (5e9, 2e12),
    "row_fixed_s": (0.0, 20e-6),
    "row_s_per_byte": (0.0, 5e-9),
    "kernel_ramp_s": (0.0, 20e-6),
    "launch_gap_s": (0.0, 20e-6),
    "graph_node_s": (0.0, 20e-6),
    "graph_launch_s": (0.0, 40e-6),
    "host_op_s": (0.5e-6, 40e-6),
    "gemm_reread": (0.5, 4.0),
    "l2_retain_frac": (0.0, 1.0),
}
ENERGY_FIT: tuple[str, ...] = ("e_tensor16_pj", "e_cuda_pj", "e_hbm_pj_per_byte")
#: L2 energy per byte tied to HBM's: Dally (MICRO-52 keynote,
#: docs/references.md "Energy per action") gives 50 pJ per word from the
#: last-level cache and 640 pJ from DRAM
L2_PER_HBM_ENERGY = 50.0 / 640.0

#: parameters not fitted but tied to a fitted one: name -> (source, factor)
TIES: dict[str, tuple[str, float]] = {
    # one GEMM main-loop efficiency for tensor-core and CUDA-core GEMMs
    "cuda_eff": ("tensor_eff", 1.0),
    # the event timing loop's own host work per iteration: two
    # cudaEventRecord calls, two host operations (sim.gpu.spec.HOST_OPS)
    "event_period_s": ("host_op_s", 2.0),
    # one effective L2 capacity fraction for the dirty output lines left at a
    # kernel's end and for flash attention's K/V reuse
    "flash_kv_l2_frac": ("l2_retain_frac", 1.0),
    # tensor-core energy per FLOP: one number for bf16/fp16 wgmma, mma.sync
    # and TF32; fp8 half of it (half the operand bits; no fp8 energy data)
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
        if name == "e_rowpass_pj":
            f = params.flash_softmax_ops
        vals[name] = getattr(params, src) * f
    return replace(params, **vals)


# ---------------------------------------------------------------- metrics


def error_table(
    measured_ms: Any,
    pred_ms: Any,
    measured_mj: Any | None = None,
    pred_mj: Any | None = None,
) -> dict[str, float]:
    """The issue's error statistics (MAPE in %, absolute errors in us)."""
    m = np.asarray(measured_ms, float)
    p = np.asarray(pred_ms, float)
    slow = m >= SLOW_S * 1e3
    rel = np.abs(p - m) / m * 100
    abs_us = np.abs(p - m) * 1e3
    ratio = p / m

    def stat(f: Any, x: np.ndarray) -> float:
        return float(f(x)) if len(x) else float("nan")

    out = {
        "n_slow": int(slow.sum()),
        "n_fast": int((~slow).sum()),
        "time_mape_slow_pct": stat(np.mean, rel[slow]),
        "time_median_ape_slow_pct": stat(np.median, rel[slow]),
        "fast_median_abs_us": stat(np.median, abs_us[~slow]),
        "fast_p90_abs_us": stat(lambda x: np.percentile(x, 90), abs_us[~slow]),
        "max_ratio": stat(np.max, np.maximum(ratio, 1 / ratio)),
    }
    if measured_mj is not None and pred_mj is not None:
        e = np.asarray(measured_mj, float)
        pe = np.asarray(pred_mj, float)
        ok = np.isfinite(e)
        erel = np.abs(pe - e) / e * 100
        out["energy_mape_slow_pct"] = stat(np.mean, erel[slow & ok])
        out["energy_median_ape_slow_pct"] = stat(np.median, erel[slow & ok])
    return out


# ------------------------------------------------------------ evaluation


class Evaluator:
    """Predict a fixed set of rows for many parameter vectors, reusing the
    kernel costs while only timing-convention scalars change."""

    def __init__(self, frame: Any, spec: GpuSpec) -> None:
        self.frame = frame
        self.spec = spec
        self.batch = to_batch(frame)
        self._key: tuple[float, ...] | None = None
        self._costs: Any = None

    def _cost_key(self, params: GpuParams) -> tuple[float, ...]:
        d = params.to_dict()
        return tuple(v for k, v in sorted(d.items()) if k not in TIMING_ONLY)

    def costs(self, params: GpuParams) -> Any:
        key = self._cost_key(params)
        if key != self._key:
            self._costs, _ = batch_costs(self.batch, self.spec, params)
            self._key = key
        return self._costs

    def time_s(self, params: GpuParams) -> np.ndarray:
        c = self.costs(params)
        return call_time(c, params, self.batch["timing"], self.batch.f("graph_ops"))

    def ncu_bytes(self, params: GpuParams) -> np.ndarray:
        return self.costs(params).ncu_dram

    def energy_mj(self, params: GpuParams) -> np.ndarray:
        c = self.costs(params)
        timing = self.batch["timing"]
        ops = self.batch.f("graph_ops")
        t_e = energy_time(c, params, timing, ops)
        busy = np.where(
            np.isin(timing, ("event", "loop")), eager_gpu_time(c, params), kernel_time(c, params)
        )
        return energy_pj_v(c, t_e, busy, self.spec, params) * 1e-9


def _strata_weights(strata: np.ndarray) -> np.ndarray:
    _, inv, counts = np.unique(strata, return_inverse=True, return_counts=True)
    return 1.0 / np.sqrt(counts[inv])


def subsample(frame: Any, max_rows: int, seed_col: str = "_key") -> Any:
    """At most ``max_rows`` rows per stratum, chosen deterministically (by a
    hash of the row's descriptive columns)."""
    import zlib

    import pandas as pd

    if max_rows <= 0:
        return frame
    parts = []
    for _, sub in frame.groupby("stratum", sort=True):
        if len(sub) <= max_rows:
            parts.append(sub)
            continue
        key = sub[seed_col] if seed_col in sub else sub.index.astype(str)
        h = np.array([zlib.crc32(str(k).encode()) for k in key])
        parts.append(sub.iloc[np.argsort(h, kind="stable")[:max_rows]])
    return pd.concat(parts)


def fit(
    frame: Any,
    ncu: Any | None,
    spec: GpuSpec,
    base: GpuParams | None = None,
    names: tuple[str, ...] = TIME_FIT,
    *,
    max_nfev: int = 60,
    verbose: bool = False,
) -> GpuParams:
    """Joint robust fit of ``names`` on time rows and Nsight DRAM bytes."""
    from scipy.optimize import least_squares

    base = apply_ties(base or GpuParams())
    ev_t = Evaluator(frame, spec)
    meas_t = frame["measured_ms"].to_numpy(float) * 1e-3
    w_t = _strata_weights(frame["stratum"].to_numpy())
    if "weight" in frame:
        w_t = w_t * frame["weight"].fillna(1.0).to_numpy(float)
    ev_n = Evaluator(ncu, spec) if ncu is not None and len(ncu) else None
    meas_n = ncu["dram_bytes"].to_numpy(float) if ev_n else None
    w_n = 1.0 / np.sqrt(len(ncu)) if ev_n else 0.0
    x0 = np.array([getattr(base, n) for n in names], float)
    lo = np.array([BOUNDS[n][0] for n in names])
    hi = np.array([BOUNDS[n][1] for n in names])
    scale = np.maximum(np.abs(x0), (hi - lo) * 1e-3)
    x0 = np.clip(x0, lo + 1e-9 * scale, hi - 1e-9 * scale)

    def params_of(z: np.ndarray) -> GpuParams:
        return apply_ties(replace(base, **dict(zip(names, (z * scale).tolist(), strict=True))))

    def resid(z: np.ndarray) -> np.ndarray:
        p = params_of(z)
        t = ev_t.time_s(p)
        r = (t - meas_t) / np.maximum(meas_t, SLOW_S) * w_t
        if ev_n is not None:
            r = np.concatenate([r, (ev_n.ncu_bytes(p) / meas_n - 1.0) * w_n])
        return r

    res = least_squares(
        resid,
        x0 / scale,
        bounds=(lo / scale, hi / scale),
        loss="soft_l1",
        f_scale=0.05,
        diff_step=1e-2,
        max_nfev=max_nfev,
        ftol=1e-8,
        xtol=1e-12,
        gtol=1e-12,
        x_scale="jac",
    )
    if verbose:
        print(
            f"least_squares: {res.message} nfev={res.nfev} cost={res.cost:.5g} (start {0.5 * float(np.sum(np.log1p((resid(x0 / scale) / 0.05) ** 2))):.5g})"
        )
    return params_of(res.x)


def fit_energy(
    kernels: Any, spec: GpuSpec, base: GpuParams, names: tuple[str, ...] = ENERGY_FIT
) -> GpuParams:
    """Non-negative linear least squares of energy per call (relative)."""
    from scipy.optimize import nnls

    ev = Evaluator(kernels, spec)
    c = ev.costs(base)
    meas_mj = kernels["energy_per_call_mj"].to_numpy(float)
    # the idle term uses the measured loop time, so that time errors are not
    # soaked up by the per-FLOP and per-byte energies
    t_meas = (kernels["energy_loop_s"] / kernels["energy_calls"]).to_numpy(float)
    fl = c.flops
    col = {
        "e_tensor16_pj": fl["tensor16"] + fl["tensor16_sync"] + fl["tf32"] + 0.5 * fl["tensor8"],
        "e_cuda_pj": fl["cuda"] + base.flash_softmax_ops * fl["rowpass"],
        "e_hbm_pj_per_byte": c.dram_read + c.dram_write + L2_PER_HBM_ENERGY * c.l2_bytes,
    }
    a = np.stack([col[n] for n in names], axis=1) * 1e-9
    fixed = spec.idle_power_w * t_meas * 1e3 + sum(
        getattr(base, n) * col[n] * 1e-9 for n in ENERGY_FIT if n not in names
    )
    b = meas_mj - fixed
    w = 1.0 / meas_mj
    slow = kernels["median_ms"].to_numpy(float) >= SLOW_S * 1e3
    w = w * np.where(slow, 1.0, 0.3)
    colscale = np.maximum(np.abs(a).max(axis=0), 1e-30)
    # kernels at the power limit carry no information on the per-FLOP and
    # per-byte energies (their energy is TDP x time): fit the others, and
    # re-decide which are capped with the new values (a few rounds)
    cap_mj = spec.tdp_w * t_meas * 1e3
    use = np.ones(len(b), bool)
    x = np.zeros(len(names))
    for _ in range(4):
        x, _ = nnls(a[use] * w[use, None] / colscale, b[use] * w[use])
        x = x / colscale
        pred = a @ x + fixed
        new_use = pred < cap_mj
        if new_use.sum() < len(names) or (new_use == use).all():
            break
        use = new_use
    return apply_ties(replace(base, **dict(zip(names, x.tolist(), strict=True))))


def fit_all(
    frame: Any,
    ncu: Any | None,
    energy_rows: Any | None,
    spec: GpuSpec,
    base: GpuParams | None = None,
    **kw: Any,
) -> GpuParams:
    """Time and traffic, then energy (on the rows with energy data)."""
    params = fit(frame, ncu, spec, base, **kw)
    if energy_rows is not None and len(energy_rows):
        params = fit_energy(energy_rows, spec, params)
    return params


def predict_frame(frame: Any, spec: GpuSpec, params: GpuParams) -> Any:
    """``frame`` with pred_ms, pred_dram_bytes and pred_energy_mj added."""
    ev = Evaluator(frame, spec)
    out = frame.copy()
    out["pred_ms"] = ev.time_s(params) * 1e3
    out["pred_dram_bytes"] = ev.ncu_bytes(params)
    out["pred_energy_mj"] = ev.energy_mj(params)
    return out


def shape_group_cv(
    frame: Any,
    ncu: Any | None,
    energy_rows: Any | None,
    spec: GpuSpec,
    folds: np.ndarray,
    ncu_folds: np.ndarray | None = None,
    energy_folds: np.ndarray | None = None,
    base: GpuParams | None = None,
    fit_frame: Any | None = None,
    fit_folds: np.ndarray | None = None,
    progress: Any = None,
    **kw: Any,
) -> Any:
    """Predict each fold of ``frame`` with scalars fitted without it.

    ``folds`` gives each row's fold (whole shape groups share one); the fit
    uses ``fit_frame`` (default: ``frame``; a sub-sample of it) minus the
    held-out fold, and the Nsight and energy rows of the other folds only.
    Returns ``frame`` with ``cv_pred_ms``, ``cv_pred_energy_mj``,
    ``cv_pred_dram_bytes`` and ``cv_fold``.
    """
    import pandas as pd

    fit_frame = frame if fit_frame is None else fit_frame
    fit_folds = folds if fit_folds is None else fit_folds
    out = frame.copy()
    out["cv_pred_ms"] = np.nan
    out["cv_pred_energy_mj"] = np.nan
    out["cv_pred_dram_bytes"] = np.nan
    out["cv_fold"] = folds
    fold_ids = sorted(set(np.asarray(folds).tolist()))
    for f in fold_ids:
        tr = fit_frame[np.asarray(fit_folds) != f]
        nc = ncu[np.asarray(ncu_folds) != f] if ncu is not None and ncu_folds is not None else ncu
        en = (
            energy_rows[np.asarray(energy_folds) != f]
            if energy_rows is not None and energy_folds is not None
            else energy_rows
        )
        p = fit_all(tr, nc, en, spec, base, **kw)
        test = np.asarray(folds) == f
        pred = predict_frame(frame[test], spec, p)
        out.loc[test, "cv_pred_ms"] = pred["pred_ms"].to_numpy()
        out.loc[test, "cv_pred_energy_mj"] = pred["pred_energy_mj"].to_numpy()
        out.loc[test, "cv_pred_dram_bytes"] = pred["pred_dram_bytes"].to_numpy()
        if progress is not None:
            progress(f)
    return pd.DataFrame(out)


__all__ = [
    "BOUNDS",
    "ENERGY_FIT",
    "TIES",
    "TIME_FIT",
    "Evaluator",
    "apply_ties",
    "error_table",
    "fit",
    "fit_all",
    "fit_energy",
    "predict_frame",
    "shape_group_cv",
    "subsample",
]

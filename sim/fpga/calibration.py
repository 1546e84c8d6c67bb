"""Fit the hls4ml model's global coefficients on synthesis results; shape-group CV.

Input rows have the wa-hls4ml columns (``experiments/data/wa_hls4ml/``):
``model_name``, ``model_string`` (dense widths ``d_in-h-...-d_out``),
``prec`` (weight bits), ``rf``, ``strategy`` and the results
``BestLatency_hls``, ``DSP_hls``, ``LUT_hls``, ``FF_hls``, ``BRAM_18K_hls``,
``EstimatedClockPeriod_hls``. Data and results are ``fixed<16,6>`` (hls4ml's
default; the benchmark set only the weight precision), dense networks are
``io_parallel``. Conv rows (``model_name`` starting with ``conv``) list only
the channel and dense widths, not the image size or kernel, so they cannot
be modelled from these columns: they are reported, not predicted.

``BRAM_18K_hls`` counts 36 Kb block-RAM tiles as Vivado does (a BRAM_18K is
0.5; the column has half-integer values and designs with one 18 Kb memory
read 0.5): predictions in that column's unit are ``BRAM_18K blocks / 2``.

The fit, in order, each on the training rows only:

1. ``dsp_min_bits``: the integer weight width that makes the most DSP counts
   exact (the smallest on a tie);
2. the memory-placement thresholds ``lutram_max_bits`` and
   ``rom_bram_min_multipliers`` (small grids): the lowest median BRAM error,
   then the lowest mean absolute error;
3. ``layer_depth_cycles`` and ``channel_cycles``: least squares on the
   latency beyond ``sum(R)``, rounded to whole cycles;
4. LUT and FF: non-negative least squares of the relative error on the
   terms in ``FITTED_LUT`` / ``FITTED_FF`` (terms not fitted keep their
   fixed coefficients);
5. ``clock_estimate_s``: the median estimated clock period.

``group_cv`` re-fits with whole network shapes (``model_string``) held out,
in ``k`` folds, and predicts the held-out rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.optimize import nnls

from sim.fpga import coefficients as _coeffs
from sim.fpga.coefficients import FF_TERMS, FITTED_FF, FITTED_LUT, LUT_TERMS, Coefficients
from sim.fpga.config import HLSConfig, resolve_strategy
from sim.fpga.layers import Layer, dense_chain
from sim.fpga.network import estimate_network
from workloads.memo import BoundedCache

#: columns a row must have to be predicted
INPUT_COLUMNS: tuple[str, ...] = ("model_name", "model_string", "prec", "rf", "strategy")
#: what is predicted -> the column it is judged against
TARGET_COLUMNS: dict[str, str] = {
    "latency_cycles": "BestLatency_hls",
    "dsp": "DSP_hls",
    "lut": "LUT_hls",
    "ff": "FF_hls",
    "bram18k": "BRAM_18K_hls",
    "clock_s": "EstimatedClockPeriod_hls",
}
#: the data's BRAM column counts 36 Kb tiles: one BRAM_18K is half a tile
BRAM_TILE_PER_18K = 0.5
LUTRAM_GRID: tuple[int, ...] = (512, 1024, 2048)
ROM_BRAM_GRID: tuple[int, ...] = (0, 4, 6, 8, 10, 12, 16)
DSP_MIN_GRID: tuple[int, ...] = tuple(range(2, 19))


@dataclass(frozen=True)
class Run:
    """One synthesis run as a network (``layers`` is None when not modelled)."""

    group: str
    layers: tuple[Layer, ...] | None
    cfg: HLSConfig | None
    reason: str = ""


def run_of(row: Any) -> Run:
    """A CSV row (mapping of the wa-hls4ml columns) as a :class:`Run`."""
    group = str(row["model_string"])
    name = str(row["model_name"])
    if name.lower().startswith("conv"):
        return Run(group, None, None, "conv2d geometry (image size, kernel) is not in the CSV")
    try:
        widths = [int(x) for x in group.split("-")]
        layers = dense_chain(widths)
        rf = int(row["rf"])
        strategy = resolve_strategy(str(row["strategy"]).strip().lower(), rf)
        cfg = HLSConfig(strategy=strategy, reuse_factor=rf, weight_bits=int(row["prec"]))
    except Exception as exc:  # noqa: BLE001 - a row we cannot read is reported, not fatal
        return Run(group, None, None, f"unreadable row ({type(exc).__name__}: {exc})")
    return Run(group, layers, cfg)


def runs_of(frame: Any) -> list[Run]:
    return [run_of(r) for r in frame.to_dict("records")]


# ---------------------------------------------------------------- structure


@dataclass(frozen=True)
class Structure:
    """Everything about the runs that does not depend on the fitted LUT/FF
    coefficients or latency depths, for one set of structural thresholds."""

    lut: np.ndarray  # rows x LUT_TERMS
    ff: np.ndarray  # rows x FF_TERMS
    dsp: np.ndarray
    bram18k: np.ndarray  # BRAM_18K blocks
    reuse_cycles: np.ndarray  # sum of the layers' iterations x R
    layers: np.ndarray  # dense/conv layers
    hand_overs: np.ndarray


#: (id of the runs list, thresholds) -> (that list, its Structure); the list is
#: kept so that its id cannot be reused while the entry lives
_CACHE: BoundedCache[tuple[list[Run], Structure]] = BoundedCache(256)


def structure(runs: list[Run], coeffs: Coefficients) -> Structure:
    key = (
        id(runs),
        len(runs),
        coeffs.dsp_min_bits,
        coeffs.rom_bram_min_multipliers,
        coeffs.lutram_max_bits,
    )
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is runs:
        return hit[1]
    n = len(runs)
    lut = np.full((n, len(LUT_TERMS)), np.nan)
    ff = np.full((n, len(FF_TERMS)), np.nan)
    dsp, bram, reuse, nl, ho = (np.full(n, np.nan) for _ in range(5))
    for i, r in enumerate(runs):
        if r.layers is None:
            continue
        est = estimate_network(r.layers, r.cfg, coeffs, check_fit=False)
        lut[i] = [est.lut_terms.get(k, 0.0) for k in LUT_TERMS]
        ff[i] = [est.ff_terms.get(k, 0.0) for k in FF_TERMS]
        dsp[i] = est.used["dsp"]
        bram[i] = est.used["bram_18k"]
        reuse[i] = sum(le.ii_cycles for le in est.layers)
        nl[i] = sum(1 for le in est.layers if le.kind != "activation")
        ho[i] = max(0, len(est.layers) - 1)
    st = Structure(lut, ff, dsp, bram, reuse, nl, ho)
    _CACHE.put(key, (runs, st))
    return st


def predict(runs: list[Run], coeffs: Coefficients | None = None) -> dict[str, np.ndarray]:
    """Predictions per run (NaN where a run is not modelled).

    ``bram18k`` is in BRAM_18K blocks; ``bram_tiles`` in the data's unit.
    """
    co = coeffs or _coeffs.load()
    st = structure(runs, co)
    lut_c = np.array([co.lut[k] for k in LUT_TERMS])
    ff_c = np.array([co.ff[k] for k in FF_TERMS])
    lat = st.reuse_cycles + co.layer_depth_cycles * st.layers + co.channel_cycles * st.hand_overs
    lat = lat + co.top_cycles
    ok = ~np.isnan(st.dsp)
    return {
        "latency_cycles": lat,
        "dsp": st.dsp,
        "lut": np.round(st.lut @ lut_c),
        "ff": np.round(st.ff @ ff_c),
        "bram18k": st.bram18k,
        "bram_tiles": st.bram18k * BRAM_TILE_PER_18K,
        "clock_s": np.where(ok, co.clock_estimate_s, np.nan),
    }


# ---------------------------------------------------------------------- fit


def _targets(frame: Any) -> dict[str, np.ndarray]:
    out = {}
    for k, col in TARGET_COLUMNS.items():
        out[k] = np.asarray(frame[col], dtype=float)
    out["clock_s"] = out["clock_s"] * 1e-9
    return out


def _rel(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Relative error; 0 where both are 0, inf where only the truth is 0."""
    diff = np.abs(pred - true)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(diff == 0, 0.0, diff / np.abs(true))


def _fit_dsp(runs: list[Run], idx: np.ndarray, y: dict[str, np.ndarray], base: Coefficients) -> int:
    from sim.fpga.layer_model import dsp_per_multiply, effective_reuse

    mults = np.array(
        [
            sum(math.ceil(lay.n_in * lay.n_out / effective_reuse(lay, r.cfg)) for lay in r.layers)
            if r.layers is not None
            else 0
            for r in runs
        ],
        dtype=float,
    )
    best, best_hits = base.dsp_min_bits, -1
    for t in DSP_MIN_GRID:
        co = replace(base, dsp_min_bits=t)
        per = np.array([dsp_per_multiply(r.cfg, co) if r.cfg else 0.0 for r in runs])
        hits = int(np.sum((mults * per)[idx] == y["dsp"][idx]))
        if hits > best_hits:
            best, best_hits = t, hits
    return best


def _fit_memory(
    runs: list[Run], idx: np.ndarray, y: dict[str, np.ndarray], base: Coefficients
) -> Coefficients:
    best, best_key = base, None
    true = y["bram18k"][idx] / BRAM_TILE_PER_18K
    for lm in LUTRAM_GRID:
        for rb in ROM_BRAM_GRID:
            co = replace(base, lutram_max_bits=lm, rom_bram_min_multipliers=rb)
            pred = structure(runs, co).bram18k[idx]
            key = (float(np.median(_rel(pred, true))), float(np.mean(np.abs(pred - true))))
            if best_key is None or key < best_key:
                best, best_key = co, key
    return best


def _fit_latency(
    st: Structure, idx: np.ndarray, y: dict[str, np.ndarray], base: Coefficients
) -> Coefficients:
    extra = y["latency_cycles"][idx] - st.reuse_cycles[idx]
    x = np.c_[st.layers[idx], st.hand_overs[idx]]
    sol, *_ = np.linalg.lstsq(x, extra - base.top_cycles, rcond=None)
    return replace(base, layer_depth_cycles=int(round(sol[0])), channel_cycles=int(round(sol[1])))


def _nnls_rel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    w = 1.0 / np.abs(y)
    sol, _ = nnls(x * w[:, None], y * w)
    return sol


def _fit_linear(
    mat: np.ndarray,
    y: np.ndarray,
    terms: tuple[str, ...],
    fitted: tuple[str, ...],
    fixed: dict[str, float],
) -> dict[str, float]:
    cols = [terms.index(t) for t in fitted]
    rest = [i for i, t in enumerate(terms) if t not in fitted]
    fixed_part = mat[:, rest] @ np.array([fixed[terms[i]] for i in rest]) if rest else 0.0
    sol = _nnls_rel(mat[:, cols], y - fixed_part)
    out = dict(fixed)
    for t, v in zip(fitted, sol, strict=True):
        out[t] = float(v)
    return out


def fit(
    runs: list[Run], frame: Any, idx: np.ndarray | None = None, base: Coefficients | None = None
) -> Coefficients:
    """Coefficients fitted on the modelled runs ``idx`` (default: all)."""
    co = base or _coeffs.load()
    y = _targets(frame)
    ok = np.array([r.layers is not None for r in runs])
    idx = np.flatnonzero(ok) if idx is None else np.asarray([i for i in idx if ok[i]])
    co = replace(co, dsp_min_bits=_fit_dsp(runs, idx, y, co))
    co = _fit_memory(runs, idx, y, co)
    st = structure(runs, co)
    co = _fit_latency(st, idx, y, co)
    lut = _fit_linear(st.lut[idx], y["lut"][idx], LUT_TERMS, FITTED_LUT, co.lut)
    ff = _fit_linear(st.ff[idx], y["ff"][idx], FF_TERMS, FITTED_FF, co.ff)
    clock = float(np.median(y["clock_s"][idx]))
    return replace(co, lut=lut, ff=ff, clock_estimate_s=clock)


def group_folds(groups: list[str], k: int = 10, seed: int = 0) -> np.ndarray:
    """Fold number per row; every network shape in exactly one fold."""
    uniq = sorted(set(groups))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(uniq))
    fold_of = {uniq[j]: i % k for i, j in enumerate(order)}
    return np.array([fold_of[g] for g in groups])


def group_cv(
    runs: list[Run],
    frame: Any,
    k: int = 10,
    seed: int = 0,
    base: Coefficients | None = None,
    progress: Any = None,
) -> tuple[dict[str, np.ndarray], list[Coefficients]]:
    """Predictions of each row by a fit that never saw its network shape."""
    folds = group_folds([r.group for r in runs], k, seed)
    out: dict[str, np.ndarray] = {}
    fitted: list[Coefficients] = []
    for f in range(k):
        train = np.flatnonzero(folds != f)
        test = np.flatnonzero(folds == f)
        co = fit(runs, frame, train, base)
        fitted.append(co)
        pred = predict(runs, co)
        for key, v in pred.items():
            out.setdefault(key, np.full(len(runs), np.nan))
            out[key][test] = v[test]
        if progress is not None:
            progress(f + 1)
    return out, fitted


# ------------------------------------------------------------------- errors


def error_stats(frame: Any, pred: dict[str, np.ndarray]) -> dict[str, float]:
    """The issue's figures over the modelled rows: latency median / p90,
    DSP exact fraction, LUT/FF/BRAM median relative error, clock median."""
    y = _targets(frame)
    ok = ~np.isnan(pred["dsp"])

    def med(k: str, yk: str | None = None, p: str | None = None) -> float:
        e = _rel(pred[p or k][ok], y[yk or k][ok])
        return float(np.median(e))

    lat = _rel(pred["latency_cycles"][ok], y["latency_cycles"][ok])
    return {
        "rows": int(ok.sum()),
        "latency_median": float(np.median(lat)),
        "latency_p90": float(np.percentile(lat, 90)),
        "dsp_exact": float(np.mean(pred["dsp"][ok] == y["dsp"][ok])),
        "lut_median": med("lut"),
        "ff_median": med("ff"),
        "bram18k_median": med("bram18k", p="bram_tiles"),
        "clock_median": med("clock_s"),
        "lut_p90": float(np.percentile(_rel(pred["lut"][ok], y["lut"][ok]), 90)),
        "ff_p90": float(np.percentile(_rel(pred["ff"][ok], y["ff"][ok]), 90)),
        "bram18k_p90": float(np.percentile(_rel(pred["bram_tiles"][ok], y["bram18k"][ok]), 90)),
    }


def describe(co: Coefficients) -> dict[str, Any]:
    """The fitted figures, for the report."""
    d = co.to_dict()
    d.pop("meaning", None)
    d.pop("source", None)
    d["lut"] = {k: round(v, 4) for k, v in d["lut"].items()}
    d["ff"] = {k: round(v, 4) for k, v in d["ff"].items()}
    return d

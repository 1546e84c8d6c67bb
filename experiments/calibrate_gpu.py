"""Re-fit the GPU model's scalar parameters and rewrite ``sim/gpu/params/<hw>.yaml``.

Usage::

    python -m experiments.calibrate_gpu [--hw h100] [--data DIR] [--out FILE] [--dry-run]

Fits (see ``sim.gpu.calibration``) the traffic scalars on ``traffic_ncu.csv``,
the time scalars on ``median_ms`` and the energy scalars on energy per call of
``kernels.csv`` in DIR (default: ``experiments/data/<hw>``), starting from the
built-in defaults of ``sim.gpu.spec.GpuParams``, and writes the file with its provenance (data files,
date, command, fit errors). Takes about 5 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"


def _load(data_dir: Path) -> tuple[object, object]:
    import pandas as pd

    from workloads.errors import EinsimError

    kpath = data_dir / "kernels.csv"
    if not kpath.exists():
        raise EinsimError(
            f"{kpath}: not found (expected a kernels.csv as in experiments/data/h100)"
        )
    kernels = pd.read_csv(kpath)
    npath = data_dir / "traffic_ncu.csv"
    ncu = pd.read_csv(npath) if npath.exists() else None
    return kernels, ncu


def calibrate(hw: str = "h100", data_dir: Path | None = None) -> tuple[object, dict]:
    """Fit on the data of ``hw``; returns (GpuParams, summary dict)."""
    import hw_models
    from sim.gpu import calibration as gc
    from sim.gpu.spec import GpuParams, GpuSpec

    data_dir = data_dir or DATA_DIR / hw
    kernels, ncu = _load(data_dir)
    spec = GpuSpec.from_arch(hw_models.load(hw))
    # always start from the built-in defaults: the fit is reproducible and
    # does not depend on the file it rewrites
    base = GpuParams()
    params = gc.fit_all(kernels, ncu, spec, base)
    pred = gc.predict_frame(kernels, spec, params)
    epc = kernels["energy_loop_mj"] / kernels["energy_calls"]
    summary = gc.error_table(kernels["median_ms"], pred["pred_ms"], epc, pred["pred_energy_mj"])
    if ncu is not None:
        errs = gc.traffic_errors(gc.ncu_calls(ncu), spec, params)
        summary["ncu_dram_max_abs_err_pct"] = float(abs(errs).max() * 100)
    return params, summary


def render(hw: str, params: object, summary: dict, data_dir: Path, command: str) -> str:
    import yaml

    from sim.gpu import calibration as gc

    try:
        rel = data_dir.resolve().relative_to(Path(__file__).resolve().parents[1])
    except ValueError:
        rel = data_dir
    head = {
        "hardware": hw,
        "fitted_on": [str(rel / "kernels.csv"), str(rel / "traffic_ncu.csv")],
        "fitted_at_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command,
        "method": "sim/gpu/calibration.py: traffic on Nsight Compute DRAM bytes, time on "
        "median_ms (relative >= 50 us, absolute below), energy per call by NNLS; the "
        "other parameters fixed (sources in sim/gpu/spec.py) or tied (TIES)",
        "fitted": list(gc.TRAFFIC_FIT + gc.TIME_FIT + gc.ENERGY_FIT),
        "tied": {k: f"{v[1]:g} x {v[0]}" for k, v in gc.TIES.items()},
        "fit_errors": {k: round(float(v), 3) for k, v in summary.items()},
    }
    body = {"params": {k: float(f"{v:.6g}") for k, v in params.to_dict().items()}}
    text = (
        "# Calibrated scalars of the GPU model (sim/gpu/model.py). Global numbers only:\n"
        "# no value depends on a kernel shape. Re-fit with the command below.\n"
    )
    return text + yaml.safe_dump(head, sort_keys=False) + yaml.safe_dump(body, sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hw", default="h100", help="hardware preset (default h100)")
    ap.add_argument("--data", type=Path, default=None, help="folder with kernels.csv")
    ap.add_argument("--out", type=Path, default=None, help="parameter file to write")
    ap.add_argument("--dry-run", action="store_true", help="print, do not write")
    args = ap.parse_args(argv)
    from sim.gpu.spec import params_path
    from workloads.errors import EinsimError

    try:
        data_dir = args.data or DATA_DIR / args.hw
        params, summary = calibrate(args.hw, data_dir)
    except EinsimError as exc:
        print(f"calibrate_gpu: error: {exc}", file=sys.stderr)
        return 2
    cmd = "python -m experiments.calibrate_gpu " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    text = render(args.hw, params, summary, data_dir, cmd.strip())
    for k, v in summary.items():
        print(f"{k:32s} {v:10.3f}")
    if args.dry_run:
        print(text)
        return 0
    out = args.out or params_path(args.hw)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

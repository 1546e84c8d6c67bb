"""Re-fit the GPU model's global scalars and rewrite ``sim/gpu/params/h100.yaml``.

Usage::

    python -m experiments.calibrate_gpu [--max-rows 300] [--out FILE] [--dry-run]

Fits (``sim.gpu.calibration``) the time and traffic scalars jointly on our
H100 kernels (``experiments/data/h100/``: ``median_ms`` as ``event``,
``loop_ms`` as ``loop``, Nsight Compute DRAM bytes) and a deterministic
sub-sample (``--max-rows`` per framework, op and dtype) of the public H100
kernels (``experiments/data/public_gpu/``, CUDA-graph timed), then the energy
scalars on our kernels' energy per call. It starts from the built-in defaults
of ``sim.gpu.spec.GpuParams`` (reproducible; it does not read the file it
rewrites) and writes the parameters with their provenance (data, date,
command, fitted and tied scalars, fit errors) and the validity envelope of
the data. Takes a few minutes on one core.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def calibrate(max_rows: int = 300, max_nfev: int = 200) -> tuple[Any, dict[str, Any], Any]:
    """Fit on the project's data; returns (GpuParams, summary, envelope)."""
    import pandas as pd

    import hw_models
    from experiments.gpu_data import calibration_frames
    from sim.gpu import calibration as gc
    from sim.gpu import envelope as env
    from sim.gpu.rows import to_batch
    from sim.gpu.spec import GpuParams, GpuSpec

    spec = GpuSpec.from_arch(hw_models.load("h100"))
    fr = calibration_frames(max_rows)
    params = gc.fit_all(fr["fit"], fr["ncu"], fr["kernels"], spec, GpuParams(), max_nfev=max_nfev)
    summary: dict[str, Any] = {}
    pk = gc.predict_frame(fr["kernels"], spec, params)
    summary["h100"] = gc.error_table(
        pk["measured_ms"], pk["pred_ms"], pk["energy_per_call_mj"], pk["pred_energy_mj"]
    )
    pn = gc.predict_frame(fr["ncu"], spec, params)
    summary["h100"]["ncu_dram_max_abs_err_pct"] = float(
        (pn["pred_dram_bytes"] / pn["dram_bytes"] - 1).abs().max() * 100
    )
    kept = pd.concat(
        [
            fr["gemm"][fr["gemm"]["excluded"] == ""],
            fr["attention"][fr["attention"]["excluded"] == ""],
        ],
        ignore_index=True,
    )
    pp = gc.predict_frame(kept, spec, params)
    for grp, sub in pp.groupby(pp["group"].astype(str) + "|" + pp["dtype"].astype(str)):
        summary[f"public {grp}"] = gc.error_table(sub["measured_ms"], sub["pred_ms"])
    rows = pd.concat([fr["kernels"], fr["loop"], kept], ignore_index=True)
    envelope = env.build(to_batch(rows), spec.compute_capability)
    return params, summary, envelope


def render(params: Any, summary: dict[str, Any], envelope: Any, command: str, max_rows: int) -> str:
    import yaml

    from sim.gpu import calibration as gc

    head = {
        "hardware": "h100",
        "fitted_on": [
            "experiments/data/h100/kernels.csv (median_ms as event, loop_ms as loop, energy per call)",
            "experiments/data/h100/traffic_ncu.csv (Nsight Compute DRAM bytes)",
            f"experiments/data/public_gpu/*.parquet (graph-timed, up to {max_rows} rows per framework/op/dtype)",
        ],
        "fitted_at_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command,
        "method": "sim/gpu/calibration.py: one robust least squares of time (relative >= 50 us, "
        "absolute below) and Nsight DRAM bytes over every stratum, then energy per call by NNLS; "
        "the other parameters fixed (sources in sim/gpu/spec.py) or tied (TIES)",
        "fitted": list(gc.TIME_FIT + gc.ENERGY_FIT),
        "tied": {k: f"{v[1]:g} x {v[0]}" for k, v in gc.TIES.items()},
        "fit_errors": {
            k: {kk: round(float(vv), 3) for kk, vv in v.items()} for k, v in summary.items()
        },
    }
    body = {"params": {k: float(f"{v:.6g}") for k, v in params.to_dict().items()}}
    env = {
        "envelope": {
            "compute_capability": envelope.compute_capability,
            "regions": envelope.to_list(),
        }
    }
    text = (
        "# Global scalars of the GPU kernel model (sim/gpu/model.py), one file for every card:\n"
        "# no value depends on a kernel shape. Re-fit with the command below.\n"
    )
    return (
        text
        + yaml.safe_dump(head, sort_keys=False)
        + yaml.safe_dump(body, sort_keys=False)
        + yaml.safe_dump(env, sort_keys=False, default_flow_style=None)
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-rows", type=int, default=300, help="public rows per stratum in the fit")
    ap.add_argument("--max-nfev", type=int, default=200, help="least-squares evaluations")
    ap.add_argument("--out", type=Path, default=None, help="parameter file to write")
    ap.add_argument("--dry-run", action="store_true", help="print, do not write")
    args = ap.parse_args(argv)
    from sim.gpu.spec import params_path
    from workloads.errors import EinsimError

    try:
        params, summary, envelope = calibrate(args.max_rows, args.max_nfev)
    except EinsimError as exc:
        print(f"calibrate_gpu: error: {exc}", file=sys.stderr)
        return 2
    cmd = "python -m experiments.calibrate_gpu " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    text = render(params, summary, envelope, cmd.strip(), args.max_rows)
    for name, stats in summary.items():
        print(f"{name:32s} " + " ".join(f"{k}={v:.3g}" for k, v in stats.items()))
    if args.dry_run:
        print(text[:4000])
        return 0
    out = args.out or params_path("h100")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

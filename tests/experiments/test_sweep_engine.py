"""The sweep engine: results, failures, time-outs, resume after SIGKILL,
Dask LocalCluster == process pool."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from experiments.sweep.engine import run_sweep
from experiments.sweep.sampling import expand
from experiments.sweep.shards import ShardStore, load_results
from experiments.sweep.spec import parse_spec

SPEC = textwrap.dedent(
    """\
    name: engine-test
    mapper: greedy
    objective: edp
    hardware:
      - name: arr
        base: tpu_like
        vary:
          rows: [8, 16, 32, 64]
          cols: [8, 16, 32]
          global_buffer_bytes: [65536, 1048576]
      - name: fp
        base: u280
        vary:
          reuse_factor: [1, 2, 4]
        constraints: {fits_fpga: true}
      - name: fp_unchecked
        base: u280
        params: {reuse_factor: 1}
    workloads:
      - name: gemm
        params: {M: 128, N: 96, K: 128}
      - name: conv2d
        params: {N: 1, C: 8, H: 10, W: 10, K: 16, R: 3, S: 3}
      - name: attention-3pass
        params: {B: 1, H: 1, E: 32, F: 32, M: 64, P: 64}
    """
)

#: a bigger sweep for the kill test (slow enough to interrupt halfway)
KILL_SPEC = SPEC.replace("rows: [8, 16, 32, 64]", "rows: [8, 12, 16, 24, 32, 48, 64, 96]").replace(
    "cols: [8, 16, 32]", "cols: [8, 16, 24, 32, 48]"
)

CLI = [
    sys.executable,
    "-c",
    "import sys; sys.argv[0] = 'einsim'; from experiments.cli import run; run()",
]


def _frame(df: pd.DataFrame) -> pd.DataFrame:
    return df.reindex(columns=sorted(df.columns)).sort_values("point_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], pd.DataFrame]:
    spec = parse_spec(SPEC, "engine.yaml")
    out = tmp_path_factory.mktemp("ref")
    s = run_sweep(spec, out, workers=2, progress=False)
    ids = [p.point_id for p in expand(spec)]
    assert s.total == len(ids) == (24 + 3 + 1) * 3
    assert s.evaluated == len(ids) and s.skipped == 0
    return ids, load_results(out, ids)


def test_every_point_recorded_with_status(reference) -> None:
    ids, df = reference
    assert list(df["point_id"]) == ids  # exactly the spec's points, in order
    assert df["point_id"].is_unique
    by = df.groupby(["design", "status"]).size().to_dict()
    # the U280 has 9,024 DSPs (AMD DS963). hls4ml builds the GEMM as a dense
    # layer of K x N = 128 x 96 = 12,288 multipliers / reuse factor: over the
    # budget at reuse 1, 6,144 at 2; conv2d (8*9*16 = 1,152) and attention
    # fit at any reuse. A design that does not fit is rejected with the
    # overflowing resource, asked for (fits_fpga) or not.
    assert by[("fp", "rejected")] == 1
    assert by[("fp", "ok")] == 3 * 3 - 1
    assert by[("fp_unchecked", "rejected")] == 1
    assert by[("fp_unchecked", "ok")] == 2
    assert by[("arr", "ok")] == 24 * 3
    rej = df[df["status"] == "rejected"]["error"]
    assert rej.str.contains("does not fit u280").all()
    err = df[df["status"] == "error"]["error"]
    assert err.str.contains("does not fit").all()


def test_rows_equal_front_door_calls(reference) -> None:
    """The flattened row holds the numbers the front door returns for the design."""
    import hw_models
    import sim
    from workloads import library

    _, df = reference
    ok = df[df["status"] == "ok"]
    for _, r in ok.sample(6, random_state=1).iterrows():
        base = hw_models.load(r["base"])
        hw = {c[3:]: r[c] for c in ok.columns if c.startswith("hw.") and pd.notna(r[c])}
        hw = {k: int(v) if float(v).is_integer() else v for k, v in hw.items()}
        arch = hw_models.derive(base, hw)
        wl = {c[3:]: int(r[c]) for c in ok.columns if c.startswith("wl.") and pd.notna(r[c])}
        m = sim.evaluate(
            library.build(r["workload"], **wl), arch, mapper="greedy", objective="edp"
        ).metrics
        # a batch of designs may differ from a batch of one in the last bit
        assert r["latency_s"] == pytest.approx(m.latency_s, rel=1e-12)
        assert r["energy_pj"] == pytest.approx(m.energy_pj, rel=1e-12)
        assert r["area_mm2"] == arch.area_mm2
        top = arch.levels[0].name
        assert r["dram_bytes"] == pytest.approx(sum(m.traffic_bytes[top].values()), rel=1e-12)
        parts = [r[c] for c in ok.columns if c.startswith("energy.") and pd.notna(r[c])]
        assert math.fsum(parts) == pytest.approx(r["energy_pj"], rel=1e-9)


def test_rerun_skips_everything(reference, tmp_path: Path) -> None:
    spec = parse_spec(SPEC, "engine.yaml")
    first = run_sweep(spec, tmp_path, workers=1, chunk_size=7, progress=False)
    n_shards = len(ShardStore(tmp_path).shard_paths())
    again = run_sweep(spec, tmp_path, workers=1, progress=False)
    assert again.skipped == first.total and again.evaluated == 0
    assert len(ShardStore(tmp_path).shard_paths()) == n_shards
    # chunking does not change any value
    pd.testing.assert_frame_equal(
        _frame(load_results(tmp_path)), _frame(reference[1]), check_exact=True
    )


def test_time_out_is_recorded(tmp_path: Path) -> None:
    spec = parse_spec(
        "timeout_s: 0.001\nhardware:\n  - base: tpu_like\nworkloads:\n"
        "  - {name: transformer-layer, params: {model: bert, seq: 512}}\n  - {name: gemm}\n"
    )
    s = run_sweep(spec, tmp_path, workers=1, progress=False)
    df = load_results(tmp_path)
    assert s.total == 2 and len(df) == 2
    t = df[df["workload"] == "transformer-layer"].iloc[0]
    assert t["status"] == "error" and "timed out after 0.001 s" in t["error"]


@pytest.mark.slow
def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path: Path) -> None:
    spec_path = tmp_path / "kill.yaml"
    spec_path.write_text(KILL_SPEC)
    spec = parse_spec(KILL_SPEC, str(spec_path))
    ids = [p.point_id for p in expand(spec)]
    ref_dir = tmp_path / "ref"
    run_sweep(spec, ref_dir, workers=2, progress=False)
    ref = load_results(ref_dir, ids)

    out = tmp_path / "killed"
    cmd = [
        *CLI,
        "sweep",
        str(spec_path),
        "--out",
        str(out),
        "--workers",
        "1",
        "--chunk-size",
        "1",
        "--no-progress",
        "--no-dashboard",
    ]
    proc = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    store = ShardStore(out)
    deadline = time.monotonic() + 120
    try:
        while len(store.shard_paths()) < len(ids) // 4:
            assert proc.poll() is None, (
                f"sweep ended before it could be killed: {proc.stderr.read().decode()}"
            )
            assert time.monotonic() < deadline, "sweep made no progress"
            time.sleep(0.005)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, no clean-up
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = len(store.done_ids())
    assert len(ids) // 4 <= done < len(ids), f"kill was not halfway: {done} of {len(ids)}"

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(ids)} points: {done} already done, {len(ids) - done} evaluated" in rerun.stderr
    raw = pd.concat([pd.read_parquet(p) for p in store.shard_paths()], ignore_index=True)
    assert len(raw) == len(ids) and raw["point_id"].is_unique  # none lost, none twice
    got = load_results(out, ids)
    assert list(got["point_id"]) == ids
    pd.testing.assert_frame_equal(_frame(got), _frame(ref), check_exact=True, check_dtype=False)


@pytest.mark.slow
def test_dask_local_cluster_equals_process_pool(reference, tmp_path: Path) -> None:
    ids, ref = reference
    spec = parse_spec(SPEC, "engine.yaml")
    s = run_sweep(spec, tmp_path, dask_local=2, progress=False)
    assert s.engine == "Dask LocalCluster (2 workers)" and s.evaluated == len(ids)
    got = load_results(tmp_path, ids)
    pd.testing.assert_frame_equal(_frame(got), _frame(ref), check_exact=True, check_dtype=False)


def test_existing_dask_scheduler_equals_process_pool(reference, tmp_path: Path) -> None:
    """--scheduler ADDRESS: the same code path on a cluster we did not start."""
    from distributed import LocalCluster

    ids, ref = reference
    spec = parse_spec(SPEC, "engine.yaml")
    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
    ) as cluster:
        s = run_sweep(spec, tmp_path, scheduler=cluster.scheduler_address, progress=False)
    assert s.engine.startswith("Dask cluster ") and s.evaluated == len(ids)
    got = load_results(tmp_path, ids)
    pd.testing.assert_frame_equal(_frame(got), _frame(ref), check_exact=True, check_dtype=False)


@pytest.mark.slow
def test_quickstart_runs_and_writes_the_dashboard(tmp_path: Path) -> None:
    """The README's first command, in well under 2 minutes on 2 workers."""
    from experiments.cli import main

    spec = Path(__file__).resolve().parents[2] / "experiments" / "configs" / "quickstart.yaml"
    out = tmp_path / "quickstart"
    t0 = time.perf_counter()
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "2", "--no-progress"]) == 0
    wall = time.perf_counter() - t0
    assert wall < 120, wall
    df = load_results(out)
    assert 200 <= len(df) <= 1000  # "a few hundred points"
    assert set(df["design"]) == {"spatial", "fpga"}
    assert (df["status"] == "ok").sum() > 0.5 * len(df) and (df["status"] == "error").sum() == 0
    assert (out / "dashboard.html").stat().st_size > 3_000_000


#: a point whose worker process dies (set by the test; inherited by fork)
_POISON: set[str] = set()


def _crashing_chunk(points):  # module level: the pool pickles it by name
    from experiments.sweep.engine import evaluate_chunk_table

    if any(p.point_id in _POISON for p in points):
        os._exit(3)  # a hard crash, not a Python exception
    return evaluate_chunk_table(points)


def test_a_dying_worker_costs_one_point(reference, tmp_path: Path) -> None:
    from experiments.sweep.engine import make_backend, run_points

    ids, ref = reference
    points = [p for p in expand(parse_spec(SPEC, "engine.yaml")) if p.design == "arr"][:12]
    _POISON.clear()
    _POISON.add(points[5].point_id)
    backend = make_backend(workers=2)
    try:
        s = run_points(
            points, tmp_path, backend, chunk_size=4, progress=False, chunk_fn=_crashing_chunk
        )
    finally:
        backend.close()
        _POISON.clear()
    got = load_results(tmp_path, [p.point_id for p in points])
    assert len(got) == 12 and s.errors == 1 and s.ok == 11
    bad = got[got["point_id"] == points[5].point_id].iloc[0]
    assert bad["status"] == "error" and "worker died" in bad["error"]
    good = got[got["status"] == "ok"]
    want = ref.set_index("point_id").loc[good["point_id"], "latency_s"].to_numpy()
    assert (good["latency_s"].to_numpy() == want).all()

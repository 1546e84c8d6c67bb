"""Sweeps survive damage: checksummed shards, missing points, the lock on
--out, workers that die with the driver, time-outs on both engines, values
too large for int64, the run directory that holds what it needs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from experiments.cli import main
from experiments.sweep.engine import run_sweep
from experiments.sweep.shards import ShardStore, load_results, rows_to_table
from experiments.sweep.spec import parse_spec
from experiments.sweep.workdir import RunLock, SweepBusyError, load_run

SPEC = textwrap.dedent(
    """\
    name: robust
    mapper: greedy-fast
    hardware:
      - name: arr
        base: tpu_like
        vary:
          rows: [8, 16, 32]
          cols: [8, 16]
    workloads:
      - name: gemm
        params: {M: 64, N: [32, 64], K: 64}
    """
)
N_POINTS = 3 * 2 * 2


def _frame(df: pd.DataFrame) -> pd.DataFrame:
    return df.reindex(columns=sorted(df.columns)).sort_values("point_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("ref")
    run_sweep(parse_spec(SPEC, "robust.yaml"), out, workers=1, chunk_size=3, progress=False)
    df = load_results(out)
    assert len(df) == N_POINTS and (df["status"] == "ok").all()
    return df


def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "garbage":
        path.write_bytes(os.urandom(len(data)))
    else:  # one flipped byte in the middle: still a readable file size
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "garbage", "flipped"])
def test_a_damaged_shard_is_set_aside_and_recomputed(
    reference: pd.DataFrame, tmp_path: Path, how: str, capsys: pytest.CaptureFixture
) -> None:
    spec = parse_spec(SPEC, "robust.yaml")
    run_sweep(spec, tmp_path, workers=1, chunk_size=3, progress=False)
    store = ShardStore(tmp_path)
    shards = store.shard_paths()
    assert len(shards) == 4
    victim = shards[1]
    n_victim = len(load_results(tmp_path)) - 0  # all 12 before the damage
    _damage(victim, how)
    capsys.readouterr()
    again = run_sweep(spec, tmp_path, workers=1, chunk_size=3, progress=False)
    err = capsys.readouterr().err
    assert f"shard {victim.name} is damaged" in err and "recomputed" in err
    assert again.evaluated == 3 and again.skipped == n_victim - 3
    assert (tmp_path / "shards" / f"damaged-{victim.name}").exists()
    assert not victim.exists()
    pd.testing.assert_frame_equal(_frame(load_results(tmp_path)), _frame(reference))


def test_export_refuses_and_dashboard_warns_when_points_are_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run_sweep(parse_spec(SPEC, str(tmp_path / "robust.yaml")), tmp_path, workers=1, chunk_size=3)
    ShardStore(tmp_path).shard_paths()[0].unlink()  # 3 points lost
    assert load_run(tmp_path).missing == 3
    capsys.readouterr()
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "t.parquet")]) == 2
    err = capsys.readouterr().err
    assert "3 of 12 points of the spec have no result" in err and "--allow-missing" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "t.parquet").exists()
    rc = main(["export", str(tmp_path), "--out", str(tmp_path / "t.parquet"), "--allow-missing"])
    assert rc == 0 and "warning: 3 of 12 points" in capsys.readouterr().err
    assert len(pd.read_parquet(tmp_path / "t.parquet")) == 9
    assert main(["dashboard", str(tmp_path)]) == 0
    assert "warning: 3 of 12 points" in capsys.readouterr().err
    assert "Incomplete sweep" in (tmp_path / "dashboard.html").read_text()


def test_a_second_sweep_on_the_same_out_refuses(tmp_path: Path) -> None:
    spec = parse_spec(SPEC, "robust.yaml")
    with RunLock(tmp_path):
        with pytest.raises(SweepBusyError, match=f"pid {os.getpid()}"):
            run_sweep(spec, tmp_path, workers=1, progress=False)
    # the lock goes with its holder: now the sweep runs
    assert run_sweep(spec, tmp_path, workers=1, progress=False).evaluated == N_POINTS


def test_a_stale_lock_file_does_not_block(tmp_path: Path) -> None:
    (tmp_path / ".lock").write_text("999999\n")  # left by a killed sweep
    assert run_sweep(parse_spec(SPEC), tmp_path, workers=1, progress=False).ok == N_POINTS


def test_a_workload_value_of_2_to_63_does_not_kill_the_shard_writer() -> None:
    import pyarrow as pa

    rows = [
        {"point_id": "a", "status": "error", "wl.M": 2**63, "hw.rows": 8, "x": 10**400},
        {"point_id": "b", "status": "error", "wl.M": 5, "hw.rows": 2**70, "x": 1.5},
    ]
    t = rows_to_table(rows)
    assert t.schema.field("wl.M").type == pa.float64()
    assert t.column("wl.M").to_pylist() == [2.0**63, 5.0]
    assert t.schema.field("hw.rows").type == pa.float64()
    assert t.schema.field("x").type == pa.string()  # beyond a float: kept as text
    assert t.column("x").to_pylist() == [str(10**400), "1.5"]


def test_a_huge_workload_value_becomes_an_error_row(tmp_path: Path) -> None:
    spec = parse_spec(
        f"hardware:\n  - base: tpu_like\nworkloads:\n  - {{name: gemm, params: {{M: {2**63}}}}}\n",
        check_names=False,
    )
    s = run_sweep(spec, tmp_path, workers=1, progress=False)
    df = load_results(tmp_path)
    assert s.errors == 1 and "expected a positive integer <= 2^48" in df["error"].iloc[0]
    # and a rerun finds it done (the shard was written)
    assert run_sweep(spec, tmp_path, workers=1, progress=False).skipped == 1


TIMEOUT_SPEC = textwrap.dedent(
    """\
    name: timeouts
    mapper: greedy
    timeout_s: 5
    hardware:
      - base: tpu_like
        vary: {rows: [8, 16]}
    workloads:
      # one or two layers take milliseconds on a warm worker
      - name: mlp
        params: {B: 4, IN: 16, HIDDEN: 16, OUT: 16, LAYERS: [1, 2]}
      - name: distinct.ein
    """
)
#: Einsums of ``distinct.ein``: each a GEMM of its own shape, so no cache
#: shortcuts the mapping (greedy maps one in about 1.5 ms on a 2-core CI
#: machine: 45 s for all, nine times the 5 s time-out; the cap is 32,768)
N_DISTINCT = 30_000


def _distinct_gemms(n: int) -> str:
    lines = ["cascade distinct-gemms"]
    for i in range(n):
        lines.append(f"declare A{i}[m{i}:{16 + i % 7}, k{i}:{17 + i}] B{i}[k{i}, n{i}:{8 + i % 5}]")
        lines.append(f"C{i}[m{i},n{i}] = sum(k{i}) A{i}[m{i},k{i}] * B{i}[k{i},n{i}]")
    return "\n".join(lines) + "\n"


@pytest.mark.slow
def test_time_outs_are_the_same_on_the_pool_and_on_dask(tmp_path: Path) -> None:
    (tmp_path / "distinct.ein").write_text(_distinct_gemms(N_DISTINCT))
    spec = parse_spec(TIMEOUT_SPEC, str(tmp_path / "timeouts.yaml"), base_dir=tmp_path)
    run_sweep(spec, tmp_path / "pool", workers=2, chunk_size=1, progress=False)
    run_sweep(spec, tmp_path / "dask", dask_local=2, chunk_size=1, progress=False)
    pool, dask = (_frame(load_results(tmp_path / d)) for d in ("pool", "dask"))
    timed_out = pool[pool["error"].fillna("").str.contains("timed out after 5 s")]
    assert len(timed_out) == 2, pool[["workload", "error"]]
    assert timed_out["workload"].str.endswith("distinct.ein").all()
    assert (pool[pool["workload"] == "mlp"]["status"] == "ok").all()
    assert len(pool) == 6
    pd.testing.assert_frame_equal(pool, dask, check_exact=True)


def test_a_dropped_thread_deadline_is_raised_again() -> None:
    """An asynchronous exception can land where Python drops it (a __del__,
    a weakref callback); the watchdog raises it again until the deadline is
    disarmed, so a Dask point cannot run on past its time-out."""
    from experiments.sweep.evaluate import REFIRE_S, PointTimeout, _thread_deadline

    landed = []
    t0 = time.monotonic()
    with _thread_deadline(0.1):
        while len(landed) < 2 and time.monotonic() - t0 < 20 * REFIRE_S:
            try:
                while time.monotonic() - t0 < 20 * REFIRE_S:
                    pass
            except PointTimeout:  # the first one "dropped": run on
                landed.append(time.monotonic() - t0)
    assert len(landed) == 2, landed
    assert landed[1] - landed[0] >= REFIRE_S * 0.9


def test_the_deadline_is_not_swallowed_by_the_mapper() -> None:
    """Scorer.score catches EinsimError; the time-out must pass through it."""
    import hw_models
    from experiments.sweep.evaluate import PointTimeout, _deadline, _thread_deadline
    from mappers.search import search
    from sim.analytical.model import evaluate, evaluate_batch
    from workloads import library
    from workloads.errors import EinsimError

    assert not issubclass(PointTimeout, EinsimError)
    e = library.build("gemm", M=512, N=512, K=512).einsums[0]
    arch = hw_models.load("tpu_like")

    def run() -> None:  # the random search takes minutes on this GEMM
        search(
            e,
            arch,
            mapper="random",
            objective="edp",
            evaluate=lambda m: evaluate(e, arch, m),
            evaluate_batch=lambda ms: evaluate_batch(e, arch, ms),
        )

    for deadline in (_deadline, _thread_deadline):  # SIGALRM, and Dask's thread form
        with pytest.raises(PointTimeout, match="timed out after 0.3 s"):
            with deadline(0.3):
                run()


def _children(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _running(p) -> bool:
    import psutil

    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


KILL_SPEC = textwrap.dedent(
    """\
    name: kill
    mapper: greedy
    timeout_s: 600
    hardware:
      - base: tpu_like
        vary: {rows: [8, 16, 32, 64]}
    workloads:
      - name: mlp
        params: {LAYERS: [3000, 3001]}
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("engine", [["--workers", "2"], ["--dask-local", "2"]])
def test_killing_the_driver_leaves_no_worker(tmp_path: Path, engine: list[str]) -> None:
    import psutil

    spec = tmp_path / "kill.yaml"
    spec.write_text(KILL_SPEC)
    cmd = [sys.executable, "-c", "from experiments.cli import run; run()"]
    proc = subprocess.Popen(
        [*cmd, "sweep", str(spec), "--out", str(tmp_path / "o"), "--no-progress", *engine],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait for the workers to start
            kids = [c for c in _children(proc.pid) if "python" in c.name().lower()]
            if len(kids) >= 2 and any(c.cpu_percent(0.2) > 0 for c in kids):
                break
            time.sleep(0.5)
        else:
            pytest.fail("the sweep's workers did not start")
        kids = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _, alive = psutil.wait_procs(kids, timeout=5)
        alive = [p for p in alive if _running(p)]  # a zombie is dead, only not reaped
        assert alive == [], f"workers still alive 5 s after the driver died: {alive}"
    finally:
        for c in _children(proc.pid):
            c.kill()
        if proc.poll() is None:
            proc.kill()


def test_hardware_file_is_resolved_against_the_spec_and_stored(tmp_path: Path) -> None:
    """`base: hw/my.yaml` and the workload `g.ein` are read next to the spec,
    copied into the run directory, and export/dashboard work from elsewhere
    after the originals are gone."""
    import shutil

    hw = tmp_path / "specs" / "hw"
    hw.mkdir(parents=True)
    import hw_models

    hw_models.save(hw_models.load("tpu_like"), hw / "my.yaml")
    (hw.parent / "g.ein").write_text(
        "param M = 8\nparam N = 8\nparam K = 8\n"
        "declare A[m:M, k:K] B[k, n:N]\nC[m,n] = A[m,k] * B[k,n]\n"
    )
    spec = tmp_path / "specs" / "s.yaml"
    spec.write_text(
        SPEC.replace("base: tpu_like", "base: hw/my.yaml").replace("name: gemm", "name: g.ein")
    )
    out = tmp_path / "run"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    old = Path.cwd()
    os.chdir(elsewhere)
    try:
        assert main(["sweep", str(spec), "--out", str(out), "--no-progress", "--workers", "1"]) == 0
        shutil.rmtree(tmp_path / "specs")
        assert (out / "inputs" / "hardware" / "00-my.yaml").is_file()
        assert (out / "inputs" / "workloads" / "00-g.ein").is_file()
        assert main(["export", str(out), "--out", "t.parquet"]) == 0
        assert main(["dashboard", str(out)]) == 0
    finally:
        os.chdir(old)
    df = pd.read_parquet(elsewhere / "t.parquet")
    assert len(df) == N_POINTS and df["feasible"].all()


def test_check_stops_specs_that_can_never_work(tmp_path: Path, capsys) -> None:
    def run(text: str) -> tuple[int, str]:
        p = tmp_path / "s.yaml"
        p.write_text(text)
        capsys.readouterr()
        rc = main(["sweep", str(p), "--out", str(tmp_path / "o"), "--check"])
        return rc, capsys.readouterr().err

    # a value the family refuses, named with its own line
    rc, err = run(SPEC.replace("rows: [8, 16, 32]", "rows: [8, 0, 32]"))
    assert rc == 2 and "s.yaml:7:" in err and "rows must be an integer in [1, 4096], got 0" in err
    # a baseline that matches no design
    rc, err = run(SPEC + "dashboard:\n  baseline: {design: arr, rows: 12}\n")
    assert rc == 2 and "s.yaml:13:" in err and "matches no configuration" in err
    # a workload instance that cannot be built
    rc, err = run(SPEC.replace("N: [32, 64]", "N: [32, 0]"))
    assert rc == 2 and "workloads[0].params" in err
    # every configuration over the area budget
    rc, err = run(
        SPEC.replace("cols: [8, 16]", "cols: [8, 16]\n    constraints: {max_area_mm2: 0.0001}")
    )
    assert rc == 2 and "every configuration of design 'arr' is larger than" in err
    # and a good one: counted, nothing evaluated
    rc, err = run(SPEC)
    assert rc == 0 and not (tmp_path / "o" / "shards").exists()

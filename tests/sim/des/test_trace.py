"""Chrome trace-event export of the discrete-event timeline."""

from __future__ import annotations

import json
import random
from collections import defaultdict

import pytest
from des_builders import random_three_level, two_level_arch, two_unit_maps, unary

from experiments.cli import main
from sim.des.simulate import simulate, simulate_cascade
from sim.des.trace import TraceError, chrome_trace, utilization_over_time, write_trace


def _check_trace(obj: dict) -> dict[tuple[int, int], list[dict]]:
    """Validate the Trace Event Format subset we emit; return X events per track."""
    assert isinstance(obj["traceEvents"], list)
    names: dict[tuple[int, int], str] = {}
    tracks: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for ev in obj["traceEvents"]:
        assert ev["ph"] in ("X", "M", "C")
        assert isinstance(ev["pid"], int)
        if ev["ph"] == "M":
            assert ev["name"] in ("process_name", "thread_name")
            if ev["name"] == "thread_name":
                names[(ev["pid"], ev["tid"])] = ev["args"]["name"]
        elif ev["ph"] == "X":
            assert isinstance(ev["tid"], int) and isinstance(ev["name"], str)
            assert ev["ts"] >= 0 and ev["dur"] >= 0
            tracks[(ev["pid"], ev["tid"])].append(ev)
        else:
            assert 0.0 <= next(iter(ev["args"].values())) <= 1.0
    for key, evs in tracks.items():
        assert key in names, "every track is named"
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        # events on one unit never overlap (so they trivially nest)
        for a, b in zip(evs, evs[1:], strict=False):
            assert b["ts"] >= a["ts"] + a["dur"] - 1e-9 * max(1.0, a["ts"]), (names[key], a, b)
    return tracks


def test_trace_is_valid_json_and_events_do_not_overlap_per_unit(tmp_path):
    e, a, m = random_three_level(random.Random(2))
    r = simulate(e, a, m, full_sim=True, timeline_limit=100_000)
    path = write_trace(r, tmp_path / "t.json")
    obj = json.loads(path.read_text())  # valid JSON
    tracks = _check_trace(obj)
    # the compute unit's slices add up to its busy time, in microseconds
    unit = [evs for k, evs in tracks.items() if evs[0]["cat"] == "compute"]
    assert len(unit) == 1
    busy_us = sum(ev["dur"] for ev in unit[0])
    assert busy_us == pytest.approx(
        r.notes["unit_busy_cycles"]["pe_array"] / a.clock_hz * 1e6, rel=1e-9
    )
    # one slice per tile transfer and per tile compute
    n_x = sum(len(v) for v in tracks.values())
    assert n_x == r.notes["events"]
    # the last slice ends when the simulation ends
    end_us = max(ev["ts"] + ev["dur"] for evs in tracks.values() for ev in evs)
    assert end_us == pytest.approx(r.latency_s * 1e6, rel=1e-9)


def test_utilization_over_time_integrates_to_busy_time():
    e, a, m = random_three_level(random.Random(4))
    r = simulate(e, a, m, full_sim=True, timeline_limit=100_000)
    u = utilization_over_time(r, bins=50)
    row = u["tracks"]["unit pe_array"]
    busy_s = sum(row) * u["bin_s"]
    assert busy_s == pytest.approx(r.notes["unit_busy_cycles"]["pe_array"] / a.clock_hz, rel=1e-6)
    assert all(0.0 <= v <= 1.0 for v in row)


def test_concurrent_units_get_separate_tracks():
    M, tile = 8192, 256
    arch = two_level_arch(4.0, 1e5, 1, units=2, rate=64.0)
    e1, e2 = unary("E1", "X1", "Y1", M), unary("E2", "X2", "Y2", M)
    maps = two_unit_maps(M, tile)

    class Casc:
        einsums = (e1, e2)

    r = simulate_cascade(Casc(), arch, maps, full_sim=True, timeline_limit=10_000)
    tracks = _check_trace(chrome_trace(r))
    compute = [evs for evs in tracks.values() if evs[0]["cat"] == "compute"]
    assert len(compute) == 2
    # the two units work at the same time (their first slices overlap in time)
    a0, b0 = compute[0][0], compute[1][0]
    assert a0["ts"] < b0["ts"] + b0["dur"] and b0["ts"] < a0["ts"] + a0["dur"]


def test_no_timeline_is_a_clear_error():
    e, a, m = random_three_level(random.Random(1))
    r = simulate(e, a, m, full_sim=True)
    with pytest.raises(TraceError, match="no timeline"):
        chrome_trace(r)


def test_cli_eval_des_writes_a_trace(tmp_path, capsys):
    out = tmp_path / "trace.json"
    rc = main(
        [
            "eval", "--workload", "gemm", "-p", "M=256", "-p", "N=256", "-p", "K=256",
            "--hw", "fusemax_cloud", "--sim", "des", "--trace", str(out), "--json",
        ]
    )  # fmt: skip
    assert rc == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert metrics["model"] == "des"
    assert "steady_state" in metrics["notes"]
    _check_trace(json.loads(out.read_text()))
    rc = main(["eval", "--workload", "gemm", "--hw", "fusemax_cloud", "--trace", str(out)])
    assert rc == 2
    assert "--sim des" in capsys.readouterr().err

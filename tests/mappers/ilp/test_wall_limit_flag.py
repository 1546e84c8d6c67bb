"""A search ended by a wall-clock safety net, not by its deterministic
budget, is flagged wherever its result goes: the search result, the front
door's warnings, the CLI and the sweep's rows. It is never returned as if
the budget had run its course (the same seed may map differently on a less
loaded machine)."""

from __future__ import annotations

import json
import textwrap

import pytest
from builders import gemm

import hw_models
import mappers.ilp.solve as ilp_solve
import sim
from experiments.cli import main
from experiments.sweep.evaluate import evaluate_chunk
from experiments.sweep.sampling import expand
from experiments.sweep.spec import parse_spec


@pytest.fixture
def net_fires(monkeypatch):
    """The local search's wall-clock net at 0 s: it fires on the first check."""
    monkeypatch.setattr(ilp_solve, "POLISH_WALL_FACTOR", 0.0)


def _ilp(e):
    return sim.evaluate(e, hw_models.load("eyeriss_like"), mapper="ilp", time_limit_s=0.5)


def test_a_search_within_its_budget_is_not_flagged(monkeypatch):
    # nets far beyond any load (a loaded CI machine once took 105 s here):
    # the deterministic budgets end the search, so nothing is flagged
    monkeypatch.setattr(ilp_solve, "POLISH_WALL_FACTOR", 1e6)
    monkeypatch.setattr(ilp_solve, "WALL_NET_FACTOR", 1e6)
    e = gemm(32, 16, 24)
    ev = _ilp(e)
    assert ev.searches[e.name].wall_limit_hit is False
    assert ev.warnings == ()


def test_a_fired_net_flags_the_result_and_warns(net_fires):
    e = gemm(32, 16, 24)
    ev = _ilp(e)
    r = ev.searches[e.name]
    assert r.wall_limit_hit is True
    (w,) = ev.warnings
    assert f"Einsum {e.name}" in w and "wall-clock safety net" in w


def test_the_cli_reports_it(net_fires, capsys):
    args = ["map", "-w", "gemm", "-p", "M=32", "-p", "N=16", "-p", "K=24"]
    args += ["--hw", "eyeriss_like", "--mapper", "ilp", "--time-limit", "0.5"]
    assert main(args) == 0
    assert "warning" in capsys.readouterr().out
    assert main([*args, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert len(d["warnings"]) == 1
    (row,) = d["einsums"].values()
    assert row["search"]["notes"]["wall_limit_hit"] is True


def test_a_sweep_row_carries_the_flag(net_fires):
    spec = textwrap.dedent(
        """\
        mapper: ilp
        hardware:
          - {name: arr, base: eyeriss_like}
        workloads:
          - {name: gemm, params: {M: 32, N: 16, K: 24}}
        """
    )
    (row,) = evaluate_chunk(expand(parse_spec(spec)))
    assert row["status"] == "ok"
    assert "wall-clock safety net" in row["warning"]

"""Sweep specs accept cascade files with parameters, through the one loader."""

from __future__ import annotations

from pathlib import Path

import pytest

import sim
import workloads
from experiments.sweep.evaluate import evaluate_chunk
from experiments.sweep.sampling import expand
from experiments.sweep.spec import SpecError, parse_spec

CASCADE = "param M = 64\ndeclare A[m:M, k:32] B[k, n:16]\nC[m,n] = A[m,k] * B[k,n]\n"


def _spec(path: Path, params: str) -> str:
    return (
        "hardware:\n  - name: a\n    base: tpu_like\n"
        f"workloads:\n  - name: {path}\n    params: {params}\n"
    )


def test_a_swept_file_parameter_reaches_the_front_door(tmp_path: Path) -> None:
    f = tmp_path / "g.ein"
    f.write_text(CASCADE)
    points = expand(parse_spec(_spec(f, "{M: [64, 256]}"), str(tmp_path / "s.yaml")))
    rows = evaluate_chunk(points)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    for r, m in zip(rows, (64, 256), strict=True):
        assert r["macs"] == m * 32 * 16
        ev = sim.evaluate(workloads.load(f, M=m), "tpu_like", mapper=points[0].mapper)
        assert r["latency_s"] == pytest.approx(ev.metrics.latency_s, rel=1e-12)


def test_an_undeclared_file_parameter_is_refused_with_its_line(tmp_path: Path) -> None:
    f = tmp_path / "g.ein"
    f.write_text(CASCADE)
    with pytest.raises(SpecError, match=r"s.yaml:\d+:\d+: .*unknown parameter 'Q'.*declares M"):
        parse_spec(_spec(f, "{Q: 1}"), str(tmp_path / "s.yaml"))

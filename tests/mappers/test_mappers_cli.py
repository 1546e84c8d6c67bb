"""``einsim map`` end to end (library workload, preset hardware)."""

from __future__ import annotations

import json

import pytest

from experiments.cli import main
from mappers.mapping import mapping_from_dict, validate
from sim.analytical.model import evaluate


def test_map_json_reports_the_models_value_of_a_valid_mapping(capsys) -> None:
    rc = main(
        [
            "map",
            "-w",
            "gemm",
            "-p",
            "M=16",
            "-p",
            "N=24",
            "-p",
            "K=8",
            "--hw",
            "eyeriss_like",
            "--objective",
            "energy",
            "--time-limit",
            "0.5",
            "--json",
        ]
    )
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert len(d["einsums"]) == 1
    (row,) = d["einsums"].values()
    import hw_models
    from workloads import library

    e = library.build("gemm", M=16, N=24, K=8).einsums[0]
    a = hw_models.load("eyeriss_like")
    m = mapping_from_dict(row["mapping"])
    validate(m, e, a)
    # the search scores with the scalar model, the report with the vector one
    assert row["search"]["objective_value"] == evaluate(e, a, m).energy_pj
    assert d["objective_value"] == pytest.approx(row["search"]["objective_value"], rel=1e-12)
    assert row["metrics"]["energy_pj"] == d["objective_value"]


def test_map_refuses_an_exhaustive_search_that_is_too_large(capsys) -> None:
    rc = main(
        [
            "map",
            "-w",
            "gemm",
            "-p",
            "M=512",
            "-p",
            "N=512",
            "-p",
            "K=512",
            "--hw",
            "eyeriss_like",
            "--mapper",
            "exhaustive",
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "more than 1000000 points" in err and "Traceback" not in err

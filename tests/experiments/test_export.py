"""Surrogate export: typed flat table, schema sidecar, deterministic split."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from experiments.cli import main
from experiments.sweep.engine import run_sweep
from experiments.sweep.shards import load_results
from experiments.sweep.spec import parse_spec

SPEC = textwrap.dedent(
    """\
    name: export-test
    mapper: greedy-fast
    sampling: {method: lhs, samples: 40, seed: 7}
    hardware:
      - name: arr
        base: tpu_like
        vary:
          rows: {range: [8, 128]}
          cols: {range: [8, 128]}
          global_buffer_bytes: {log_range: [65536, 4194304], integer: true}
          dataflow: [ws, os]
        constraints: {max_area_mm2: 4}
      - name: fp
        base: u280
        vary: {reuse_factor: [1, 64]}   # 16,384 multipliers at 1: over the U280's 9,024 DSPs
    workloads:
      - name: gemm
        params: {M: [64, 256], N: 128, K: 128}
    """
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("exp")
    (out / "spec.yaml").write_text(SPEC)
    run_sweep(parse_spec(SPEC, "spec.yaml"), out, workers=1, progress=False)
    target = out / "train.parquet"
    assert main(["export", str(out), "--out", str(target)]) == 0
    return out, target


def test_schema_sidecar_describes_every_column(exported) -> None:
    _, target = exported
    table = pq.read_table(target)
    schema = json.loads(target.with_name("train.schema.json").read_text())
    assert schema["format"] == "einsim-surrogate-export/1"
    cols = {c["name"]: c for c in schema["columns"]}
    assert list(cols) == table.column_names
    arrow_to_schema = {
        "int64": "int64",
        "double": "float64",
        "bool": "bool",
        "string": "string",
        "large_string": "string",
    }
    for f in table.schema:
        c = cols[f.name]
        assert arrow_to_schema[str(f.type)] == c["dtype"], f.name
        assert c["description"] and c["role"] in ("meta", "feature", "label")
    # units follow the column names
    assert cols["latency_s"]["unit"] == "s" and cols["latency_s"]["role"] == "label"
    assert cols["energy_pj"]["unit"] == "pJ"
    assert (
        cols["hw.global_buffer_bytes"]["unit"] == "B"
        and cols["hw.global_buffer_bytes"]["role"] == "feature"
    )
    # hw.rows is a parameter of the array only: NaN (float) on the FPGA rows
    assert cols["hw.rows"]["dtype"] == "float64" and cols["hw.dataflow"]["dtype"] == "string"
    assert (
        cols["traffic.DRAM_bytes"]["unit"] == "B" and cols["traffic.DRAM_bytes"]["role"] == "label"
    )
    assert cols["util.pe_array"]["unit"] == "fraction"
    assert cols["area_mm2"]["unit"] == "mm^2" and cols["feasible"]["dtype"] == "bool"
    assert {"wl.M", "map.padding_ratio", "energy.DRAM_pj", "split"} <= set(cols)


def test_rows_labels_and_split(exported) -> None:
    out, target = exported
    df = pd.read_parquet(target)
    res = load_results(out)
    # rejected points (over the area budget, or an hls4ml design that does not
    # fit the U280) are not training data; failed ones are, as infeasible
    assert len(df) == int((res["status"] != "rejected").sum())
    rejected = res.loc[res["status"] == "rejected"]
    assert set(rejected["design"]) == {"arr", "fp"}
    assert rejected.loc[rejected["design"] == "fp", "error"].str.contains("does not fit u280").all()
    assert (
        rejected.loc[rejected["design"] == "arr", "error"].str.contains("exceeds the budget").all()
    )
    assert df["feasible"].all()  # every evaluated point of this spec succeeds
    assert df.loc[df["feasible"], "latency_s"].gt(0).all()
    # labels are the sweep's values, untouched
    m = df.merge(res[["point_id", "latency_s", "energy_pj"]], on="point_id", suffixes=("", "_res"))
    assert (m["latency_s"].fillna(-1) == m["latency_s_res"].fillna(-1)).all()
    assert (m["energy_pj"].fillna(-1) == m["energy_pj_res"].fillna(-1)).all()
    # split: 80/10/10 from SHA-256 of the hardware configuration id
    for _, r in df.iterrows():
        h = int(hashlib.sha256(f"split:{r['hw_id']}".encode()).hexdigest()[:8], 16) % 100
        assert r["split"] == ("train" if h < 80 else "val" if h < 90 else "test")
    assert df.groupby("hw_id")["split"].nunique().max() == 1  # no design in two splits


def test_export_is_deterministic(exported, tmp_path: Path) -> None:
    out, target = exported
    again = tmp_path / "again.parquet"
    assert main(["export", str(out), "--out", str(again)]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(again), pd.read_parquet(target))


def test_export_of_missing_dir_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "x.parquet")]) == 2
    assert "not a sweep directory" in capsys.readouterr().err

"""``einsim experiment fpga-validation`` on a small CSV; bad input exits 2."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from experiments.cli import main
from experiments.fpga_validation import DATA_DIR

PRED = ["pred_latency_cycles", "pred_dsp", "pred_lut", "pred_ff", "pred_bram18k"]


def test_small_csv_writes_predictions_and_plots(tmp_path: Path, capsys) -> None:
    rows = pd.read_csv(DATA_DIR / "dense2.csv").iloc[::40]
    data = tmp_path / "rows.csv"
    rows.to_csv(data, index=False)
    out = tmp_path / "out"
    assert (
        main(
            [
                "experiment",
                "fpga-validation",
                "--out",
                str(out),
                "--data",
                str(data),
                "--folds",
                "2",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "DSP exact" in text and "CV" in text
    pred = pd.read_csv(out / "predictions.csv")
    assert list(pred.columns[: len(rows.columns)]) == list(rows.columns)
    assert all(c in pred.columns for c in PRED)
    assert len(pred) == len(rows)
    # the first row is dense_80_24_120_6b at rf 1024: 1923 cycles, 0 DSP, 1.0 BRAM tile
    first = pred.iloc[0]
    assert (first["pred_latency_cycles"], first["pred_dsp"], first["pred_bram18k"]) == (
        1923,
        0,
        1.0,
    )
    for name in ("latency_cycles", "dsp", "lut", "ff", "bram18k"):
        assert (out / f"{name}.html").stat().st_size > 10_000


def test_csv_without_the_columns_is_refused(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert (
        main(["experiment", "fpga-validation", "--out", str(tmp_path / "o"), "--data", str(bad)])
        == 2
    )
    err = capsys.readouterr().err
    assert "bad.csv, line 1: missing column(s) model_name" in err

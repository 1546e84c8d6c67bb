"""Fit a surrogate model on an ``einsim export`` and print its held-out error.

    pip install -e '.[surrogate]'          # scikit-learn
    einsim sweep experiments/configs/quickstart.yaml --out runs/quickstart
    einsim export runs/quickstart --out runs/quickstart/train.parquet
    python experiments/surrogate_example.py runs/quickstart/train.parquet

Features are the columns the schema sidecar marks ``feature`` (hardware and
workload parameters, numeric as they are, text one-hot encoded); labels are
log latency and log energy of the feasible points. The model is a
scikit-learn ``HistGradientBoostingRegressor`` trained on ``split ==
"train"``; the error printed is on ``split == "test"`` (designs the model
never saw). Mapping-summary features are left out by default because they
are outputs of the mapper (``--with-mapping`` adds them).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any


def load(path: Path, with_mapping: bool) -> tuple[Any, list[str]]:
    import pandas as pd

    df = pd.read_parquet(path)
    schema = json.loads(
        path.with_name(path.name.removesuffix(".parquet") + ".schema.json").read_text()
    )
    feats = [
        c["name"]
        for c in schema["columns"]
        if c["role"] == "feature" and (with_mapping or not c["name"].startswith("map."))
    ]
    return df[df["feasible"]].reset_index(drop=True), feats


def design_matrix(df: Any, feats: list[str]) -> Any:
    import numpy as np
    import pandas as pd

    X = df[feats].copy()
    text = [
        c for c in feats if X[c].dtype == object or str(X[c].dtype).startswith(("string", "str"))
    ]
    X = pd.get_dummies(X, columns=text, dtype=float)
    for c in X.columns:
        if c.startswith(("hw.", "wl.")) and X[c].dtype != float and X[c].min() > 0:
            X[c] = np.log2(X[c].astype(float))  # sizes and rates span decades
    return X.astype(float)


def fit_and_score(
    path: Path, *, with_mapping: bool = False, seed: int = 0
) -> dict[str, dict[str, float]]:
    """{label: {mape, median_ape, r2_log, n_train, n_test}} on the test split."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.metrics import r2_score

    df, feats = load(path, with_mapping)
    X = design_matrix(df, feats)
    train, test = (df["split"] == "train").to_numpy(), (df["split"] == "test").to_numpy()
    if train.sum() < 10 or test.sum() < 2:
        raise SystemExit(
            f"{path}: too few feasible points to fit ({train.sum()} train, {test.sum()} test)"
        )
    out = {}
    for label in ("latency_s", "energy_pj"):
        y = np.log(df[label].to_numpy(dtype=float))
        model = HistGradientBoostingRegressor(max_iter=400, learning_rate=0.08, random_state=seed)
        model.fit(X[train], y[train])
        pred = model.predict(X[test])
        ape = np.abs(np.exp(pred - y[test]) - 1.0)
        out[label] = {
            "mape": float(ape.mean()),
            "median_ape": float(np.median(ape)),
            "r2_log": float(r2_score(y[test], pred)),
            "n_train": int(train.sum()),
            "n_test": int(test.sum()),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("export", type=Path, help="a Parquet file written by `einsim export`")
    ap.add_argument(
        "--with-mapping", action="store_true", help="also use the mapping-summary features"
    )
    args = ap.parse_args()
    try:
        import sklearn  # noqa: F401
    except ImportError:
        sys.exit("scikit-learn is not installed: pip install -e '.[surrogate]'")
    res = fit_and_score(args.export, with_mapping=args.with_mapping)
    print(f"{'label':12} {'train':>6} {'test':>6} {'MAPE':>8} {'median APE':>11} {'R2 (log)':>9}")
    for label, r in res.items():
        print(
            f"{label:12} {r['n_train']:6d} {r['n_test']:6d} {100 * r['mape']:7.1f}% {100 * r['median_ape']:10.1f}% {r['r2_log']:9.3f}"
        )
    if any(math.isnan(r["mape"]) for r in res.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()

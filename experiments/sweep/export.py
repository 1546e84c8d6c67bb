"""Surrogate-model training data: a flat, typed Parquet table + JSON schema.

Columns (one row per evaluated point; rejected points are left out, failed
points kept with ``feasible = false`` and NaN labels):

* meta: ``point_id``, ``hw_id``, ``design``, ``base``, ``family``,
  ``workload``, ``mapper``, ``objective``, ``model``, ``error``, ``split``;
* features: ``hw.<param>`` (hardware parameters), ``wl.<param>`` (workload
  shape parameters), ``map.<summary>`` (mapping summary);
* labels: ``latency_s``, ``cycles``, ``energy_pj``, ``energy.<component>_pj``,
  ``traffic.<level>_bytes``, ``dram_bytes``, ``area_mm2``, ``util.<unit>``,
  ``feasible``.

``split`` is ``train`` / ``val`` / ``test`` (80/10/10) from a hash of the
hardware configuration id, so it is deterministic and one hardware design
never appears in two splits (no leakage between workloads of one design).

The sidecar ``FILE.schema.json`` lists every column with its name, unit,
dtype, role and description.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from experiments.sweep.evaluate import BASE_COLUMNS

#: the sweep's base columns but ``status`` (rejected rows are left out)
META = tuple(c for c in BASE_COLUMNS if c != "status")
SPLITS = (("train", 80), ("val", 10), ("test", 10))

#: unit of a column from the suffix of its name (longest suffix first)
_UNITS = (
    ("_bytes_per_s", "B/s"),
    ("_bytes_per_cycle", "B/cycle"),
    ("_macs_per_s", "MAC/s"),
    ("_pj_s", "pJ*s"),
    ("_bytes", "B"),
    ("_cycles", "cycles"),
    ("_mm2", "mm^2"),
    ("_hz", "Hz"),
    ("_pj", "pJ"),
    ("_s", "s"),
    ("_w", "W"),
    ("_bits", "bit"),
)

_DESCRIPTIONS = {
    "point_id": "stable hash of the point (design, parameters, workload, mapper, objective, model)",
    "hw_id": "stable hash of the hardware configuration (design + parameters)",
    "design": "design name in the sweep spec",
    "base": "hardware preset or hardware file the design derives from, as written in the spec",
    "family": "hardware family (spatial, fpga, gpu)",
    "workload": "library workload or cascade file, as written in the spec",
    "workload_label": "workload label in the sweep spec",
    "mapper": "mapper used",
    "objective": "mapping objective",
    "model": "cost model (analytical or des)",
    "error": "error message of a failed point ('' if it succeeded)",
    "warning": "why an evaluated point's result is flagged, e.g. a mapping search cut by its "
    "wall-clock safety net ('' if none)",
    "split": "deterministic train/val/test split (80/10/10 by hardware configuration)",
    "feasible": "the point was evaluated successfully (a valid mapping exists)",
    "latency_s": "end-to-end latency of the workload",
    "cycles": "latency in clock cycles",
    "energy_pj": "total energy (dynamic + static)",
    "edp_pj_s": "energy-delay product",
    "compute_cycles": "cycles the compute units need on their own",
    "macs": "useful multiply-accumulates (and other operations) of the workload",
    "padded_macs": "operations including padding of the mapping",
    "dram_bytes": "bytes moved to and from the outermost memory level",
    "area_mm2": "area of the hardware configuration",
    "clock_hz": "clock frequency",
    "peak_macs_per_s": "peak MAC rate over all compute units",
    "dram_bw_bytes_per_s": "bandwidth of the outermost memory level",
    "pes": "processing elements over all compute units",
    "map.einsums": "Einsums in the workload cascade",
    "map.padding_ratio": "padded operations / useful operations",
    "map.compute_bound_fraction": "compute cycles / total cycles",
    "map.pes_used": "PEs the mapping uses (product of its spatial factors; NaN for cascades)",
    "map.spatial_utilization": "PEs used / PEs of the bound compute unit (NaN for cascades)",
    "map.outer_iterations": "trip count of the outermost level's loops (NaN for cascades)",
}

_LABEL_PREFIXES = ("energy.", "traffic.", "transfer.", "util.")
_LABELS = {
    "latency_s",
    "cycles",
    "energy_pj",
    "edp_pj_s",
    "compute_cycles",
    "macs",
    "padded_macs",
    "dram_bytes",
    "area_mm2",
    "feasible",
}


def unit_of(name: str) -> str:
    if name.startswith("util."):
        return "fraction"
    if name in ("macs", "padded_macs"):
        return "ops"
    base = name.split(".", 1)[-1]
    for suffix, unit in _UNITS:
        if base.endswith(suffix):
            return unit
    return ""


def role_of(name: str) -> str:
    if name in META or name == "split":
        return "meta"
    if name.startswith(("hw.", "wl.", "map.")) or name in (
        "clock_hz",
        "peak_macs_per_s",
        "dram_bw_bytes_per_s",
        "pes",
    ):
        return "feature"
    if name in _LABELS or name.startswith(_LABEL_PREFIXES):
        return "label"
    return "meta"


#: column prefix -> (description of the rest of the name, unit suffix the rest ends in)
_PREFIX_DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "hw": ("hardware parameter {}", ""),
    "wl": ("workload parameter {}", ""),
    "map": ("mapping summary: {}", ""),
    "energy": ("energy of component {}", "_pj"),
    "traffic": ("bytes read and written at storage level {}", "_bytes"),
    "transfer": ("cycles the transfers of level {} need on their own", "_cycles"),
    "util": ("busy fraction of compute unit {}", ""),
}


def describe(name: str) -> str:
    if name in _DESCRIPTIONS:
        return _DESCRIPTIONS[name]
    head, _, rest = name.partition(".")
    if head in _PREFIX_DESCRIPTIONS:
        text, suffix = _PREFIX_DESCRIPTIONS[head]
        return text.format(rest.removesuffix(suffix))
    return name


def split_of(hw_id: str) -> str:
    h = int(hashlib.sha256(f"split:{hw_id}".encode()).hexdigest()[:8], 16) % 100
    acc = 0
    for name, pct in SPLITS:
        acc += pct
        if h < acc:
            return name
    return SPLITS[-1][0]


def export_table(df: Any) -> Any:
    """The export DataFrame (typed columns, meta first, then features, labels)."""
    import numpy as np
    import pandas as pd

    out = df[df["status"] != "rejected"].copy()
    out["feasible"] = out["status"] == "ok"
    out["split"] = out["hw_id"].map(split_of)
    out = out.drop(columns=["status"])
    rest = [c for c in out.columns if c not in META and c != "split"]
    cols = [c for c in META if c in out.columns] + ["split"]
    cols += sorted(c for c in rest if role_of(c) == "feature")
    cols += sorted(c for c in rest if role_of(c) == "label")
    cols += sorted(c for c in rest if role_of(c) == "meta")
    out = out[cols].reset_index(drop=True)
    for c in out.columns:
        s = out[c]
        if c == "feasible":
            out[c] = s.astype(bool)
        elif s.dtype == object or str(s.dtype).startswith(("string", "str")):
            # parameters like dataflow "ws"/"os"; numbers stored as text stay text
            out[c] = s.astype("string").fillna("")
        elif np.issubdtype(s.dtype, np.integer):
            out[c] = s.astype("int64")
        elif (
            c.startswith(("hw.", "wl."))
            and s.notna().all()
            and (s == s.round()).all()
            and (s.abs() < 2**53).all()
        ):
            out[c] = s.astype("int64")
        else:
            out[c] = pd.to_numeric(s, errors="coerce").astype("float64")
    return out


def schema_of(table: Any) -> dict[str, Any]:
    cols = []
    for c in table.columns:
        dt = str(table[c].dtype)
        dtype = {"int64": "int64", "float64": "float64", "bool": "bool", "string": "string"}.get(
            dt, "string" if "str" in dt else dt
        )
        cols.append(
            {
                "name": c,
                "role": role_of(c),
                "unit": unit_of(c),
                "dtype": dtype,
                "description": describe(c),
            }
        )
    return {
        "format": "einsim-surrogate-export/1",
        "rows": len(table),
        "splits": {n: int((table["split"] == n).sum()) for n, _ in SPLITS},
        "columns": cols,
    }


def export(
    out_dir: str | Path, out_file: str | Path, *, allow_missing: bool = False
) -> tuple[Path, Path, int]:
    """Write FILE.parquet and FILE.schema.json; returns (table, schema, rows).

    Refuses (:class:`~experiments.sweep.shards.ResultsError`) when points of
    the spec have no result (a sweep not finished, a damaged shard), unless
    ``allow_missing``: then it warns on stderr and exports what there is.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from experiments.sweep.shards import ResultsError, warn
    from experiments.sweep.workdir import load_run

    run = load_run(out_dir)
    missing = run.missing_message()
    if missing and not allow_missing:
        raise ResultsError(f"{missing}; or pass --allow-missing to export the others")
    if missing:
        warn(f"{missing}; exporting the other {len(run.df):,}")
    df = run.df
    table = export_table(df)
    schema = schema_of(table)
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata(
        {**(arrow.schema.metadata or {}), b"einsim.schema": json.dumps(schema).encode()}
    )
    tmp = out.with_name(f".{out.name}.tmp")
    pq.write_table(arrow, tmp, compression="zstd")
    os.replace(tmp, out)
    side = out.with_name(out.name.removesuffix(".parquet") + ".schema.json")
    side.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    return out, side, len(table)

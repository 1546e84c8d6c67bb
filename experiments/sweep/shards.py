"""Sweep results as Parquet shards in ``DIR/shards/``.

Each completed chunk of points becomes one shard. A shard is written to a
temporary name in the same directory, flushed to disk and renamed into
place (``os.replace`` is atomic on POSIX), so a sweep killed at any moment
leaves only whole shards; stale temporaries are deleted on the next run.
Resume reads the ``point_id`` column of every shard and skips those points.
Reading deduplicates on ``point_id`` (first shard wins), so even a shard
written twice cannot duplicate a point.
"""

from __future__ import annotations

import math
import os
import uuid
from pathlib import Path
from typing import Any

from workloads.errors import EinsimError

SHARD_DIR = "shards"
SHARD_GLOB = "part-*.parquet"


class ResultsError(EinsimError):
    """A results directory is missing or unreadable."""


def rows_to_table(rows: list[dict[str, Any]]) -> Any:
    """A pyarrow table with stable types: text columns as strings, metrics
    as float64 (NaN where a row lacks them), parameters as written (int64
    for integer ``hw.``/``wl.`` columns present in every row, bool, str).

    Runs in the workers (one pass per column), so the driver only writes.
    """
    import pyarrow as pa

    names: dict[str, None] = {}
    for r in rows:
        names.update(dict.fromkeys(r))
    none = type(None)
    arrays = []
    for k in names:
        vals = [r.get(k) for r in rows]
        types = set(map(type, vals))
        has_none = none in types
        types.discard(none)
        if types == {bool}:
            arr = pa.array(vals, type=pa.bool_())
        elif types == {int} and not has_none and k.startswith(("hw.", "wl.")):
            arr = pa.array(vals, type=pa.int64())
        elif types and types <= {int, float}:
            if has_none:
                vals = [math.nan if v is None else v for v in vals]
            arr = pa.array(vals, type=pa.float64())
        elif not types:
            arr = pa.array([""] * len(vals) if k in ("error", "family") else [math.nan] * len(vals))
        else:
            arr = pa.array([None if v is None else str(v) for v in vals], type=pa.string())
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, names=list(names))


class ShardStore:
    """The shards of one sweep output directory."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.dir = self.out_dir / SHARD_DIR

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for tmp in self.dir.glob(".tmp-*"):
            tmp.unlink(missing_ok=True)

    def shard_paths(self) -> list[Path]:
        return sorted(self.dir.glob(SHARD_GLOB)) if self.dir.is_dir() else []

    def done_ids(self) -> set[str]:
        import pyarrow.parquet as pq

        ids: set[str] = set()
        for path in self.shard_paths():
            ids.update(pq.read_table(path, columns=["point_id"]).column(0).to_pylist())
        return ids

    def write(self, rows: list[dict[str, Any]] | Any) -> Path | None:
        """Write one shard (rows, or a table from :func:`rows_to_table`)
        atomically; returns its path."""
        import pyarrow.parquet as pq

        table = rows_to_table(rows) if isinstance(rows, list) else rows
        if table.num_rows == 0:
            return None
        name = f"part-{uuid.uuid4().hex}.parquet"
        tmp = self.dir / f".tmp-{name}"
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        final = self.dir / name
        os.replace(tmp, final)
        return final


def load_results(out_dir: str | Path, point_ids: list[str] | None = None) -> Any:
    """All rows of a sweep as a pandas DataFrame, one row per point id.

    ``point_ids`` (the spec's points, in order) restricts and orders the
    rows; otherwise rows are sorted by ``point_id``.
    """
    import pandas as pd
    import pyarrow.parquet as pq

    store = ShardStore(out_dir)
    paths = store.shard_paths()
    if not paths:
        raise ResultsError(
            f"no results in {out_dir}: expected Parquet shards in {store.dir} (run `einsim sweep SPEC --out {out_dir}` first)"
        )
    frames = []
    for p in paths:
        try:
            frames.append(pq.read_table(p).to_pandas())
        except Exception as exc:  # noqa: BLE001 - name the broken shard
            raise ResultsError(f"cannot read shard {p}: {exc}") from None
    df = pd.concat(frames, ignore_index=True, sort=False)
    df = df.drop_duplicates("point_id", keep="first")
    # column order must not depend on which shard was read first
    from experiments.sweep.evaluate import BASE_COLUMNS

    first = [c for c in BASE_COLUMNS if c in df.columns]
    df = df[first + sorted(c for c in df.columns if c not in BASE_COLUMNS)]
    if point_ids is not None:
        order = {pid: i for i, pid in enumerate(point_ids)}
        df = df[df["point_id"].isin(order)]
        df = df.assign(_o=df["point_id"].map(order)).sort_values("_o").drop(columns="_o")
    else:
        df = df.sort_values("point_id")
    return df.reset_index(drop=True)

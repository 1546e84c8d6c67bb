"""Sweep results as Parquet shards in ``DIR/shards/``.

Each completed chunk of points becomes one shard. A shard is written to a
temporary name in the same directory, flushed to disk and renamed into
place (``os.replace`` is atomic on POSIX), so a sweep killed at any moment
leaves only whole shards; stale temporaries are deleted on the next run.
Resume reads the ``point_id`` column of every shard and skips those points.
Reading deduplicates on ``point_id`` (first shard wins), so even a shard
written twice cannot duplicate a point.

A shard's name carries the SHA-256 of its bytes
(``part-<uuid>-<sha256[:16]>.parquet``), checked on every read. A shard
that fails the check (truncated, garbage, flipped bytes) or cannot be read
is *damaged*: a sweep rerun renames it ``damaged-<name>`` (out of the
results, kept for inspection) and recomputes its points; ``export`` and
``dashboard`` leave it out and say so.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Any

from workloads.errors import EinsimError

SHARD_DIR = "shards"
SHARD_GLOB = "part-*.parquet"
DAMAGED_PREFIX = "damaged-"
#: ``part-<uuid hex>-<first 16 hex digits of the SHA-256 of the file>.parquet``
_NAME = re.compile(r"^part-[0-9a-f]{32}(?:-([0-9a-f]{16}))?\.parquet$")
#: int64 range: larger integers are stored as float64 (or text beyond a float)
_I64 = (-(2**63), 2**63 - 1)


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
        elif (
            types == {int}
            and not has_none
            and k.startswith(("hw.", "wl."))
            and _I64[0] <= min(vals)
            and max(vals) <= _I64[1]
        ):
            arr = pa.array(vals, type=pa.int64())
        elif types and types <= {int, float} and all(_fits_float(v) for v in vals):
            if has_none:
                vals = [math.nan if v is None else v for v in vals]
            arr = pa.array([float(v) for v in vals], type=pa.float64())
        elif not types:
            arr = pa.array(
                [""] * len(vals) if k in ("error", "family", "warning") else [math.nan] * len(vals)
            )
        else:
            arr = pa.array([None if v is None else str(v) for v in vals], type=pa.string())
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, names=list(names))


def _fits_float(v: Any) -> bool:
    """True unless ``v`` is an integer too large for a float (over ~1e308)."""
    return not isinstance(v, int) or v.bit_length() <= 1023


def _digest(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()[:16]


def shard_problem(path: Path) -> str:
    """Why the shard at ``path`` is damaged ('' when it is sound).

    Checks the SHA-256 in its name (shards from before checksums only get
    the Parquet read), then that Parquet can read its ``point_id`` column.
    """
    import pyarrow.parquet as pq

    m = _NAME.match(path.name)
    if m is None:
        return "its name is not part-<id>[-<checksum>].parquet"
    try:
        if m.group(1) is not None and _digest(path) != m.group(1):
            return "its checksum does not match its contents (truncated or overwritten)"
        pq.read_table(path, columns=["point_id"])
    except Exception as exc:  # noqa: BLE001 - any failure to read is damage
        return f"it cannot be read as Parquet ({type(exc).__name__})"
    return ""


def warn(msg: str) -> None:
    """A loud warning on stderr (the CLI's progress bars use stderr too)."""
    print(f"einsim: warning: {msg}", file=sys.stderr, flush=True)


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

    def sound_shards(self, *, set_aside: bool = False) -> tuple[list[Path], list[str]]:
        """(shards that pass :func:`shard_problem`, one message per damaged
        shard). With ``set_aside`` a damaged shard is renamed
        ``damaged-<name>`` so a rerun recomputes its points."""
        good: list[Path] = []
        damaged: list[str] = []
        for path in self.shard_paths():
            why = shard_problem(path)
            if not why:
                good.append(path)
                continue
            if set_aside:
                dest = path.with_name(DAMAGED_PREFIX + path.name)
                os.replace(path, dest)
                damaged.append(f"shard {path.name} is damaged: {why}; set aside as {dest.name}")
            else:
                damaged.append(f"shard {path} is damaged: {why}; its points are left out")
        return good, damaged

    def done_ids(self) -> set[str]:
        """Point ids in the sound shards; damaged shards are set aside (with
        a warning) so that their points are evaluated again."""
        import pyarrow.parquet as pq

        good, damaged = self.sound_shards(set_aside=True)
        for msg in damaged:
            warn(f"{msg}; its points will be recomputed")
        ids: set[str] = set()
        for path in good:
            ids.update(pq.read_table(path, columns=["point_id"]).column(0).to_pylist())
        return ids

    def write(self, rows: list[dict[str, Any]] | Any) -> Path | None:
        """Write one shard (rows, or a table from :func:`rows_to_table`)
        atomically; returns its path."""
        import pyarrow.parquet as pq

        table = rows_to_table(rows) if isinstance(rows, list) else rows
        if table.num_rows == 0:
            return None
        uid = uuid.uuid4().hex
        tmp = self.dir / f".tmp-part-{uid}.parquet"
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        final = self.dir / f"part-{uid}-{_digest(tmp)}.parquet"
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
    paths, damaged = store.sound_shards()
    for msg in damaged:
        warn(msg)
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

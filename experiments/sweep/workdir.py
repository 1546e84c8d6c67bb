"""The files of a sweep output directory besides the shards.

* ``DIR/spec.yaml``: a copy of the spec the sweep ran;
* ``DIR/inputs/``: copies of the hardware files the spec's designs load and
  of the cascade files its workloads load, with ``DIR/inputs/manifest.json``
  mapping each (as written in the spec) to its copy, so ``einsim export``
  and ``einsim dashboard`` work from any directory, even after the originals
  moved;
* ``DIR/.lock``: held (``flock``) by the sweep running on ``DIR``, so a
  second sweep on the same directory refuses to start instead of
  evaluating everything twice and deleting the first one's temporary files.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.sweep.shards import ResultsError, load_results, warn
from workloads.errors import EinsimError

SPEC_COPY = "spec.yaml"
INPUTS = "inputs"
MANIFEST = "manifest.json"
LOCK = ".lock"


class SweepBusyError(ResultsError):
    """Another sweep holds the output directory."""


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _save_text(out: Path, text: str) -> bool:
    out.mkdir(parents=True, exist_ok=True)
    dest = out / SPEC_COPY
    changed = dest.exists() and dest.read_text(encoding="utf-8", errors="replace") != text
    _write_atomic(dest, text.encode("utf-8"))
    return changed


def _store(out: Path, kind: str, files: tuple[tuple[str, str], ...]) -> tuple[dict, dict]:
    """Copy ``files`` (as written -> path) into ``DIR/inputs/<kind>/``:
    (as written -> path relative to DIR, as written -> absolute stored path).
    A file that cannot be read is skipped (its points report it)."""
    from workloads.yamlio import read_input_bytes

    rel: dict[str, str] = {}
    stored: dict[str, str] = {}
    for i, (written, path) in enumerate(files):
        try:
            data = read_input_bytes(path, f"{kind} file")
        except EinsimError:
            continue
        r = f"{INPUTS}/{kind}/{i:02d}-{Path(path).name}"
        (out / r).parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(out / r, data)
        rel[written] = r
        stored[written] = str((out / r).resolve())
    return rel, stored


def save_run(out_dir: str | Path, spec: Any) -> tuple[Any, bool]:
    """Store what a run needs in ``out_dir``: the spec's text and a copy of
    every hardware file its designs load and every cascade file its
    workloads load (``DIR/inputs/``, listed in ``inputs/manifest.json``).

    Returns ``(spec that loads the stored copies, whether a different
    spec.yaml was replaced)``. Point ids do not change: they hash ``base``
    and the workload ``name`` as written, not the path they are loaded from.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    changed = _save_text(out, spec.text) if spec.text else False
    if not (spec.hardware_files or spec.workload_files):
        return spec, changed
    hw_rel, hw = _store(out, "hardware", spec.hardware_files)
    wl_rel, wl = _store(out, "workloads", spec.workload_files)
    manifest = {"hardware": hw_rel, "workloads": wl_rel}
    _write_atomic(out / INPUTS / MANIFEST, json.dumps(manifest, indent=2).encode())
    spec = dataclasses.replace(
        spec,
        designs=tuple(
            dataclasses.replace(d, load_as=hw[d.base]) if d.base in hw else d for d in spec.designs
        ),
        workloads=tuple(
            dataclasses.replace(w, load_as=wl[w.name]) if w.name in wl else w
            for w in spec.workloads
        ),
        hardware_files=tuple((b, hw.get(b, p)) for b, p in spec.hardware_files),
        workload_files=tuple((n, wl.get(n, p)) for n, p in spec.workload_files),
    )
    return spec, changed


def stored_inputs(out_dir: str | Path) -> tuple[dict[str, str], dict[str, str]]:
    """(hardware, workload) files stored in the run: as written -> stored copy."""
    out = Path(out_dir)
    path = out / INPUTS / MANIFEST
    if not path.is_file():
        return {}, {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return tuple(  # type: ignore[return-value]
            {str(k): str(out / v) for k, v in data.get(kind, {}).items()}
            for kind in ("hardware", "workloads")
        )
    except (OSError, ValueError, AttributeError):
        warn(f"{path} is unreadable; input files are looked up next to {out / SPEC_COPY}")
        return {}, {}


class RunLock:
    """An exclusive ``flock`` on ``DIR/.lock`` for as long as a sweep runs.

    The kernel drops the lock when the process dies (even by SIGKILL), so a
    stale lock file never blocks a rerun.
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.path = Path(out_dir) / LOCK
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            finally:
                os.close(fd)
            raise SweepBusyError(
                f"another sweep (pid {holder}) is running on {self.path.parent}; "
                "wait for it to finish, or give another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None


@dataclass(frozen=True)
class Run:
    """A sweep directory read back: the spec, its rows, what is missing."""

    spec: Any
    df: Any
    expected: int

    @property
    def missing(self) -> int:
        return self.expected - len(self.df)

    def missing_message(self) -> str:
        """'' when every point of the spec has a result."""
        if not self.missing:
            return ""
        return (
            f"{self.missing:,} of {self.expected:,} points of the spec have no result "
            f"(not run yet, or lost with a damaged shard); rerun `einsim sweep` on "
            f"{self.spec.source} with the same --out to compute them"
        )


def load_run(out_dir: str | Path) -> Run:
    """Read a sweep directory: spec (loading the stored hardware copies),
    results restricted to the spec's points in order, and the point count."""
    from experiments.sweep.sampling import expand
    from experiments.sweep.spec import load_spec

    out = Path(out_dir)
    if not (out / SPEC_COPY).is_file():
        raise ResultsError(
            f"{out} is not a sweep directory: expected {out / SPEC_COPY} (written by `einsim sweep`)"
        )
    hw, wl = stored_inputs(out)
    spec = load_spec(out / SPEC_COPY, hardware_files=hw, workload_files=wl)
    ids = [p.point_id for p in expand(spec)]
    return Run(spec, load_results(out, ids), len(ids))


def load_sweep(out_dir: str | Path) -> tuple[Any, Any]:
    """(spec, results DataFrame restricted to the spec's points, in order)."""
    run = load_run(out_dir)
    return run.spec, run.df

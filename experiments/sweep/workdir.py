"""The files of a sweep output directory besides the shards.

``DIR/spec.yaml`` is a copy of the spec the sweep ran; ``einsim export`` and
``einsim dashboard`` re-read it to know the points, the swept parameters
and the baseline.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from experiments.sweep.shards import ResultsError, load_results

SPEC_COPY = "spec.yaml"


def save_spec(out_dir: str | Path, spec_path: str | Path) -> bool:
    """Copy the spec into ``out_dir`` (atomically); True if it replaced a
    different one."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = Path(spec_path).read_text(encoding="utf-8")
    dest = out / SPEC_COPY
    changed = dest.exists() and dest.read_text(encoding="utf-8") != text
    tmp = out / f".{SPEC_COPY}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, dest)
    return changed


def load_sweep(out_dir: str | Path) -> tuple[Any, Any]:
    """(spec, results DataFrame restricted to the spec's points, in order)."""
    from experiments.sweep.sampling import expand
    from experiments.sweep.spec import load_spec

    out = Path(out_dir)
    if not (out / SPEC_COPY).is_file():
        raise ResultsError(
            f"{out} is not a sweep directory: expected {out / SPEC_COPY} (written by `einsim sweep`)"
        )
    spec = load_spec(out / SPEC_COPY)
    ids = [p.point_id for p in expand(spec)]
    return spec, load_results(out, ids)

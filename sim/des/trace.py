"""Timeline export: Chrome trace-event JSON and utilisation over time.

The discrete-event simulator records a timeline when asked
(``simulate(..., timeline_limit=N)``): slices ``(track, name, start_cycles,
end_cycles)`` in ``Metrics.notes["timeline"]``. A track is one unit that does
one thing at a time -- a compute unit, or one DMA engine (a tensor's fetch
or write-back engine between two levels) -- so slices on one track never
overlap.

:func:`chrome_trace` turns it into the Trace Event Format that Perfetto
(ui.perfetto.dev) and chrome://tracing open: one complete event (``"ph":
"X"``) per slice with ``ts``/``dur`` in microseconds, one process (``pid``)
per group of tracks (the compute units; the DMA engines of each level pair)
and one thread (``tid``) per track, named by metadata events, plus counter
events (``"ph": "C"``) with every track's utilisation over time.
Format reference: "Trace Event Format", Google (docs.google.com/document/d/
1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workloads.errors import EinsimError


class TraceError(EinsimError):
    """There is no timeline to export, or the trace file cannot be written."""


def _timeline(source: Any) -> dict[str, Any]:
    notes = getattr(source, "notes", None)
    tl = notes.get("timeline") if isinstance(notes, dict) else source
    if not isinstance(tl, dict) or "slices" not in tl:
        raise TraceError(
            "no timeline recorded: simulate with the discrete-event model and a timeline "
            "(einsim eval ... --sim des --trace FILE.json, or simulate(..., timeline_limit=N))"
        )
    return tl


def _group(track: str) -> str:
    """The process a track belongs to: 'compute' or the DMA level pair."""
    if track.startswith("unit "):
        return "compute units"
    if ": DMA " in track:
        pair = track.split(": DMA ", 1)[1].rsplit(" ", 2)[0]
        return f"DMA {pair}"
    return "other"


def utilization_over_time(source: Any, bins: int = 100) -> dict[str, Any]:
    """Busy fraction of every track in ``bins`` equal time bins.

    Returns ``{"bin_s": width in seconds, "start_s": [...], "tracks":
    {track: [fraction per bin]}}``; a compute unit's fraction is the share
    of the bin in which it computed a tile.
    """
    tl = _timeline(source)
    clock = float(tl.get("clock_hz") or 1.0)
    slices = tl["slices"]
    end = max((s[3] for s in slices), default=0.0)
    if bins < 1:
        raise TraceError(f"bins must be >= 1, got {bins}")
    width = end / bins if end > 0 else 1.0
    tracks: dict[str, list[float]] = {}
    for track, _name, t0, t1 in slices:
        row = tracks.setdefault(track, [0.0] * bins)
        if t1 <= t0:
            continue
        b0 = min(int(t0 / width), bins - 1)
        b1 = min(int(t1 / width), bins - 1)
        for b in range(b0, b1 + 1):
            lo = max(t0, b * width)
            hi = min(t1, (b + 1) * width)
            if hi > lo:
                row[b] += (hi - lo) / width
    return {
        "bin_s": width / clock,
        "start_s": [b * width / clock for b in range(bins)],
        "tracks": {k: [min(1.0, v) for v in row] for k, row in tracks.items()},
    }


def chrome_trace(source: Any, *, bins: int = 100) -> dict[str, Any]:
    """The Trace Event Format object of a recorded timeline (see module doc)."""
    tl = _timeline(source)
    clock = float(tl.get("clock_hz") or 1.0)
    us = 1e6 / clock
    pids: dict[str, int] = {}
    tids: dict[str, tuple[int, int]] = {}
    events: list[dict[str, Any]] = []
    for track, _n, _a, _b in tl["slices"]:
        if track in tids:
            continue
        g = _group(track)
        if g not in pids:
            pids[g] = len(pids) + 1
            events.append(
                {"name": "process_name", "ph": "M", "pid": pids[g], "tid": 0, "args": {"name": g}}
            )
        tid = sum(1 for t in tids.values() if t[0] == pids[g]) + 1
        tids[track] = (pids[g], tid)
        events.append(
            {"name": "thread_name", "ph": "M", "pid": pids[g], "tid": tid, "args": {"name": track}}
        )
    for track, name, t0, t1 in tl["slices"]:
        pid, tid = tids[track]
        events.append(
            {
                "name": name,
                "cat": "compute" if track.startswith("unit ") else "dma",
                "ph": "X",
                "ts": t0 * us,
                "dur": max(0.0, (t1 - t0) * us),
                "pid": pid,
                "tid": tid,
            }
        )
    if tl["slices"]:
        util = utilization_over_time(tl, bins)
        for track, row in util["tracks"].items():
            pid, _tid = tids[track]
            for b, v in enumerate(row):
                events.append(
                    {
                        "name": f"utilization {track}",
                        "ph": "C",
                        "ts": util["start_s"][b] * 1e6,
                        "pid": pid,
                        "args": {"busy": round(v, 6)},
                    }
                )
    return {
        "traceEvents": events,
        "displayTimeUnit": "ns",
        "otherData": {
            "generator": "einsim discrete-event simulator",
            "clock_hz": clock,
            "dropped_slices": tl.get("dropped", 0),
        },
    }


def write_trace(source: Any, path: str | Path, *, bins: int = 100) -> Path:
    """Write :func:`chrome_trace` to ``path`` (JSON); returns the path."""
    obj = chrome_trace(source, bins=bins)
    p = Path(path)
    try:
        p.write_text(json.dumps(obj))
    except OSError as exc:
        raise TraceError(f"cannot write trace file: {exc}", file=str(p)) from None
    return p

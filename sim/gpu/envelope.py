"""The validity envelope: which rows the calibration data covered.

An envelope is a list of regions, one per (op class, timing convention,
kernel family, dtype, KV dtype) seen in the calibration data, each with the
range of every size column of that op class. ``experiments/calibrate_gpu.py``
writes it into ``sim/gpu/params/h100.yaml`` (key ``envelope``). A row is
inside when some region has its op class, timing, family and dtypes and
holds all its sizes; otherwise :func:`check` says why not (the nearest
region's first size out of range, or the missing family/dtype/timing). A
card of another architecture than the calibrated one (compute capability)
is outside too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.gpu.rows import ELEMENTWISE, ROW_OPS, KernelBatch

#: size columns whose range each op class's regions record
SIZE_COLUMNS: dict[str, tuple[str, ...]] = {
    "gemm": ("M", "N", "K", "B"),
    "conv2d": ("B", "C", "HW", "Kc", "R"),
    "prefill": ("B", "H", "Hkv", "M", "N", "K"),
    "decode": ("B", "H", "Hkv", "N", "K"),
    "attn_unfused": ("B", "H", "M", "N", "K"),
    "elementwise": ("numel",),
    "row": ("M", "N"),
    "llm": ("B", "M", "H", "Hkv", "K"),
}


def op_class(op: str, phase: str) -> str:
    """The envelope class of a row (attention by its ``phase``)."""
    if op in ("gemm", "bmm"):
        return "gemm"
    if op in ("attn_flash", "attn_decode"):
        return phase
    if op in ELEMENTWISE:
        return "elementwise"
    if op in ROW_OPS:
        return "row"
    if op in ("kv_append", "rotary", "act_quant"):
        return "llm"
    return op


def _classes(b: KernelBatch) -> np.ndarray:
    return np.array(
        [op_class(str(o), str(p)) for o, p in zip(b["op"], b["phase"], strict=True)], dtype=object
    )


def _sizes(b: KernelBatch, cls: str) -> dict[str, np.ndarray]:
    out = {}
    for c in SIZE_COLUMNS.get(cls, ()):
        out[c] = b.f("M") * b.f("N") if c == "numel" else b.f(c)
    return out


@dataclass(frozen=True)
class Envelope:
    """Regions of the calibration data (see module docstring)."""

    regions: tuple[dict[str, Any], ...]
    compute_capability: float = 9.0

    def to_list(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.regions]

    @classmethod
    def from_list(cls, regions: list[Mapping[str, Any]] | None, cc: float = 9.0) -> Envelope:
        return cls(tuple(dict(r) for r in (regions or [])), float(cc))


def key_of(cls: str, timing: str, family: str, dtype: str, kv_dtype: str) -> tuple[str, ...]:
    return (cls, timing, family, dtype, kv_dtype if cls in ("prefill", "decode") else "")


def _keys(b: KernelBatch) -> np.ndarray:
    classes = _classes(b)
    kv = np.where(np.isin(classes, ("prefill", "decode")), b["kv_dtype"], "")
    return np.array(
        ["|".join(x) for x in zip(classes, b["timing"], b["family"], b["dtype"], kv, strict=True)],
        dtype=object,
    )


def build(b: KernelBatch, cc: float = 9.0) -> Envelope:
    """The envelope of a batch of calibration rows."""
    keys = _keys(b)
    uniq, inv = np.unique(keys, return_inverse=True)
    regions = []
    for j, key in enumerate(uniq):
        idx = np.flatnonzero(inv == j)
        cls, timing, fam, dt, kv = key.split("|")
        sizes = _sizes(b.take(idx), cls)
        regions.append(
            {
                "op_class": cls,
                "timing": timing,
                "family": fam,
                "dtype": dt,
                "kv_dtype": kv,
                "rows": int(len(idx)),
                "ranges": {c: [float(v.min()), float(v.max())] for c, v in sizes.items()},
            }
        )
    return Envelope(tuple(regions), cc)


def check(b: KernelBatch, env: Envelope | None, cc: float) -> tuple[np.ndarray, np.ndarray]:
    """(out_of_envelope, reason) per row; no envelope: everything outside."""
    n = b.n
    out = np.ones(n, bool)
    reason = np.full(n, "", dtype=object)
    if env is None or not env.regions:
        reason[:] = "no calibration envelope"
        return out, reason
    classes = _classes(b)
    by_key: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in env.regions:
        by_key.setdefault(
            key_of(r["op_class"], r["timing"], r["family"], r["dtype"], r["kv_dtype"]), []
        ).append(r)
    keys = [
        key_of(c, str(t), str(f), str(d), str(k))
        for c, t, f, d, k in zip(
            classes, b["timing"], b["family"], b["dtype"], b["kv_dtype"], strict=True
        )
    ]
    for key in set(keys):
        idx = np.flatnonzero(np.array([k == key for k in keys]))
        regs = by_key.get(key)
        if not regs:
            cls, timing, fam, dt, kv = key
            seen = [r for r in env.regions if r["op_class"] == cls]
            if not seen:
                why = f"op class '{cls}' not calibrated"
            elif not any(r["dtype"] == dt for r in seen):
                why = f"dtype '{dt}' not calibrated for {cls}"
            elif not any(r["family"] == fam for r in seen):
                why = f"family '{fam}' not calibrated for {cls}"
            elif not any(r["timing"] == timing for r in seen):
                why = f"timing '{timing}' not calibrated for {cls}"
            else:
                why = f"{cls} {fam} {dt}/{kv} under '{timing}' not calibrated"
            reason[idx] = why
            continue
        sub = b.take(idx)
        sizes = _sizes(sub, key[0])
        inside = np.zeros(len(idx), bool)
        first_miss = np.full(len(idx), "", dtype=object)
        for r in regs:
            ok = np.ones(len(idx), bool)
            miss = np.full(len(idx), "", dtype=object)
            for c, (lo, hi) in r["ranges"].items():
                v = sizes.get(c)
                if v is None:
                    continue
                bad = (v < lo) | (v > hi)
                miss = np.where(
                    bad & (miss == ""), f"{c} outside calibrated [{lo:g}, {hi:g}]", miss
                )
                ok &= ~bad
            inside |= ok
            first_miss = np.where(first_miss == "", miss, first_miss)
        out[idx] = ~inside
        reason[idx] = np.where(inside, "", first_miss)
    if abs(cc - env.compute_capability) > 1e-9:
        out[:] = True
        reason[:] = [
            (
                f"compute capability {cc:g} not calibrated ({env.compute_capability:g} is)"
                + (f"; {r}" if r else "")
            )
            for r in reason
        ]
    return out, reason

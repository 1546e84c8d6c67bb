"""A sweep chunk (many designs in one front-door call) gives the rows that
evaluating each point alone through the front door gives."""

from __future__ import annotations

import math
import textwrap

import pytest

from experiments.sweep.evaluate import evaluate_chunk
from experiments.sweep.sampling import expand
from experiments.sweep.spec import parse_spec

SPEC = textwrap.dedent(
    """\
    mapper: greedy-fast
    hardware:
      - name: arr
        base: tpu_like
        vary:
          rows: [8, 32, 128]
          cols: [16, 64]
          dataflow: [ws, os]
          global_buffer_bytes: [65536, 4194304]
          dram_bandwidth_bytes_per_s: [5.0e10, 4.0e11]
          clock_hz: [5.0e8, 1.0e9]
        constraints: {max_area_mm2: 9}
      - name: fp
        base: u280
        vary:
          rows: [32, 192]
          cols: [32, 192]
          reuse_factor: [1, 4]
        constraints: {fits_fpga: true}
      - name: gpu
        base: h100
        vary: {sm_count: [66, 132]}
    workloads:
      - name: gemm
        params: {M: 256, N: [64, 200], K: 128}
      - name: conv2d
        params: {N: 1, C: 16, H: 10, W: 10, K: 32, R: 3, S: 3}
      - name: bmm
        params: {B: 2, M: 64, N: 64, K: 64}
      - name: mlp
        params: {B: 8, IN: 64, HIDDEN: 64, OUT: 10, LAYERS: 2}
    """
)


def _same(a: object, b: object) -> bool:
    """Equal, or floats equal to 1e-12 relative: the batch passes hardware
    numbers as override arrays, which can change the last bit of a few
    results (e.g. 4096.000000000001 vs 4096.0 transfer cycles)."""
    if isinstance(a, float) and isinstance(b, float):
        return (
            (math.isnan(a) and math.isnan(b))
            or a == b
            or math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
        )
    return a == b


@pytest.mark.parametrize(
    ("mapper", "objective"),
    [("greedy-fast", "edp"), ("greedy", "edp"), ("greedy", "latency"), ("greedy", "traffic")],
)
def test_chunk_rows_equal_one_point_rows(mapper: str, objective: str) -> None:
    points = expand(
        parse_spec(SPEC.replace("mapper: greedy-fast", f"mapper: {mapper}\nobjective: {objective}"))
    )
    assert len(points) == (3 * 2 * 2 * 2 * 2 * 2 + 2 * 2 * 2 + 2) * 5
    fast = evaluate_chunk(points)
    slow = [evaluate_chunk([p])[0] for p in points]
    statuses = {r["status"] for r in slow if r["design"] != "gpu"}
    assert statuses == {"ok", "rejected"}  # both constraints bite; no errors
    # the GPU points go through the GPU model
    assert sum(r["status"] == "ok" for r in slow) > 200
    for f, s in zip(fast, slow, strict=True):
        assert f["point_id"] == s["point_id"]
        assert set(f) == set(s), (set(f) ^ set(s), s["workload"])
        bad = {k: (f[k], s[k]) for k in s if not _same(f[k], s[k])}
        assert not bad, (s["point_id"], bad)


def test_rows_do_not_depend_on_chunking() -> None:
    """Bit-for-bit: resume and engines cut chunks differently."""
    points = expand(parse_spec(SPEC))
    whole = evaluate_chunk(points)
    for size in (1, 7):
        parts = [
            r for i in range(0, len(points), size) for r in evaluate_chunk(points[i : i + size])
        ]
        for a, b in zip(whole, parts, strict=True):
            assert set(a) == set(b)
            assert all(a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]) for k in a), a["point_id"]

"""Sweep specs: validation errors name the key and the line; sampling."""

from __future__ import annotations

import itertools
import math
import textwrap

import numpy as np
import pytest

from experiments.sweep.sampling import expand, hardware_configs, stable_hash
from experiments.sweep.spec import SpecError, parse_spec

GOOD = textwrap.dedent(
    """\
    name: t
    mapper: greedy
    objective: edp
    sampling:
      method: grid
    hardware:
      - name: arr
        base: tpu_like
        vary:
          rows: [8, 16, 32]
          cols: {range: [8, 32], step: 8}
          global_buffer_bytes: {log_range: [65536, 1048576], factor: 4}
        constraints:
          max_area_mm2: 100
    workloads:
      - name: gemm
        params: {M: 64, N: [32, 64], K: 64}
    """
)


def err(text: str, check_names: bool = False) -> SpecError:
    with pytest.raises(SpecError) as ei:
        parse_spec(textwrap.dedent(text), "s.yaml", check_names=check_names)
    return ei.value


def test_grid_counts_and_values() -> None:
    spec = parse_spec(GOOD, "s.yaml")
    d = spec.designs[0]
    vals = {p.name: p.values for p in d.vary}
    assert vals["cols"] == (8, 16, 24, 32)
    assert vals["global_buffer_bytes"] == (65536, 262144, 1048576)
    pts = expand(spec)
    # 3 rows x 4 cols x 3 buffers x 2 workload instances
    assert len(pts) == 3 * 4 * 3 * 2
    assert len({p.point_id for p in pts}) == len(pts)
    combos = {
        (dict(p.hw)["rows"], dict(p.hw)["cols"], dict(p.hw)["global_buffer_bytes"], dict(p.wl)["N"])
        for p in pts
    }
    assert combos == set(
        itertools.product((8, 16, 32), (8, 16, 24, 32), (65536, 262144, 1048576), (32, 64))
    )
    # ids are a pure function of the point: a second expansion agrees
    assert [p.point_id for p in expand(parse_spec(GOOD, "other.yaml"))] == [p.point_id for p in pts]


def test_point_id_is_stable_hash() -> None:
    # pinned value: changing the hash scheme would silently break resume
    # SHA-256 of the canonical JSON, computed independently with hashlib
    import hashlib

    assert (
        stable_hash({"a": 1, "b": [1, 2]}) == hashlib.sha256(b'{"a":1,"b":[1,2]}').hexdigest()[:16]
    )
    h1 = stable_hash({"b": [1, 2], "a": 1})
    assert h1 == stable_hash({"a": 1, "b": [1, 2]})  # key order does not matter


def _continuous(method: str, n: int, seed: int = 3) -> np.ndarray:
    spec = parse_spec(
        textwrap.dedent(
            f"""\
            sampling: {{method: {method}, samples: {n}, seed: {seed}}}
            hardware:
              - base: tpu_like
                vary:
                  clock_hz: {{range: [1.0e8, 1.0e9]}}
                  global_buffer_bytes: {{log_range: [1024.0, 1048576.0]}}
            workloads: [{{name: gemm}}]
            """
        )
    )
    cfgs = hardware_configs(spec, 0, spec.designs[0])
    return np.array([[c["clock_hz"], c["global_buffer_bytes"]] for c in cfgs])


def test_lhs_is_stratified() -> None:
    n = 20
    x = _continuous("lhs", n)
    assert x.shape == (n, 2)
    # Latin hypercube: exactly one sample in each of the n strata per axis
    u0 = (x[:, 0] - 1e8) / (1e9 - 1e8)
    u1 = (np.log(x[:, 1]) - math.log(1024)) / (math.log(1048576) - math.log(1024))
    for u in (u0, u1):
        assert sorted(np.floor(u * n).astype(int)) == list(range(n))


def test_sampling_is_seeded() -> None:
    for m in ("random", "lhs", "sobol"):
        a, b = _continuous(m, 16, seed=1), _continuous(m, 16, seed=1)
        c = _continuous(m, 16, seed=2)
        assert np.array_equal(a, b)
        assert not np.array_equal(a, c)
    # Sobol with 16 points: each half of each axis holds exactly 8
    s = _continuous("sobol", 16)
    u0 = (s[:, 0] - 1e8) / (1e9 - 1e8)
    assert int((u0 < 0.5).sum()) == 8


def test_discrete_random_dedupes() -> None:
    spec = parse_spec(
        "sampling: {method: random, samples: 50, seed: 0}\nhardware:\n  - base: x\n    vary: {rows: [1, 2]}\nworkloads: [{name: g}]\n",
        check_names=False,
    )
    cfgs = hardware_configs(spec, 0, spec.designs[0])
    assert sorted(c["rows"] for c in cfgs) == [1, 2]


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        (
            "hardware:\n  - base: a\n    vary:\n      rows: {range: [8]}\nworkloads: [{name: g}]\n",
            4,
            "hardware[0].vary.rows.range",
        ),
        (
            "hardware:\n  - base: a\n    vary:\n      rows: {rng: [1, 2]}\nworkloads: [{name: g}]\n",
            4,
            "hardware[0].vary.rows",
        ),
        (
            "hardware:\n  - base: a\n    vary:\n      rows: {range: [1, 4]}\nworkloads: [{name: g}]\n",
            4,
            "grid sampling needs finite values",
        ),
        (
            "hardware:\n  - base: a\nworkloads: [{name: g}]\nsampling: {method: magic}\n",
            4,
            "sampling.method",
        ),
        (
            "hardware:\n  - base: a\n    colour: red\nworkloads: [{name: g}]\n",
            3,
            "hardware[0].colour",
        ),
        (
            "hardware:\n  - base: a\n    constraints: {max_area_mm2: -3}\nworkloads: [{name: g}]\n",
            3,
            "constraints.max_area_mm2",
        ),
        (
            "hardware:\n  - base: a\nworkloads:\n  - params: {M: 3}\n",
            4,
            "missing required key `name`",
        ),
        ("hardware: []\nworkloads: [{name: g}]\n", 1, "`hardware`"),
        (
            "hardware:\n  - base: a\n    vary: {rows: {log_range: [0, 8], num: 3}}\nworkloads: [{name: g}]\n",
            3,
            "positive",
        ),
        (
            "hardware:\n  - base: a\nworkloads: [{name: g}]\nsampling: {method: lhs}\n",
            4,
            "needs `samples`",
        ),
        (
            "hardware:\n  - base: a\n    vary: {rows: [1, 1]}\nworkloads: [{name: g}]\n",
            3,
            "duplicates",
        ),
        ("hardware:\n  - base: a\n  - base: a\nworkloads: [{name: g}]\n", 3, "used twice"),
        (
            "hardware:\n  - base: a\nworkloads: [{name: g}]\nworkloads: [{name: h}]\n",
            4,
            "duplicate key",
        ),
        ("hardware:\n  - base: a\n  x: : y\nworkloads: 1\n", 3, "invalid YAML"),
    ],
)
def test_bad_spec_names_key_and_line(text: str, line: int, needle: str) -> None:
    e = err(text)
    assert e.file == "s.yaml"
    assert e.line == line, str(e)
    assert needle in str(e)
    assert str(e).startswith(f"s.yaml:{line}:")


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        (
            "hardware:\n  - base: tpu_lik\nworkloads: [{name: gemm}]\n",
            2,
            "key `hardware[0].base`: cannot load hardware 'tpu_lik'",
        ),
        (
            "hardware:\n  - base: tpu_like\n    vary:\n      rowz: [1, 2]\nworkloads: [{name: gemm}]\n",
            4,
            "unknown spatial parameter 'rowz'",
        ),
        (
            "hardware:\n  - base: u280\n    params: {reuse: 2}\nworkloads: [{name: gemm}]\n",
            3,
            "unknown fpga parameter 'reuse'",
        ),
        ("hardware:\n  - base: tpu_like\nworkloads:\n  - name: gem\n", 4, "unknown workload 'gem'"),
        (
            "hardware:\n  - base: tpu_like\nworkloads:\n  - name: gemm\n    params: {Q: 3}\n",
            5,
            "unknown parameter 'Q' of workload gemm",
        ),
        (
            "mapper: magic\nhardware:\n  - base: tpu_like\nworkloads: [{name: gemm}]\n",
            1,
            "unknown mapper 'magic'",
        ),
        (
            "objective: speed\nhardware:\n  - base: tpu_like\nworkloads: [{name: gemm}]\n",
            1,
            "unknown objective 'speed'",
        ),
        (
            "model: exact\nhardware:\n  - base: tpu_like\nworkloads: [{name: gemm}]\n",
            1,
            "unknown model 'exact'",
        ),
        (
            "hardware:\n  - base: tpu_like\n    constraints:\n      fits_fpga: true\nworkloads: [{name: gemm}]\n",
            4,
            "'tpu_like' is a spatial design",
        ),
    ],
)
def test_unknown_names_are_caught_with_their_line(text: str, line: int, needle: str) -> None:
    e = err(text, check_names=True)
    assert e.line == line, str(e)
    assert needle in str(e), str(e)


def test_bad_spec_via_cli(tmp_path) -> None:
    from experiments.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("hardware:\n  - base: a\nworkloads: [{name: g}]\nsamplng: {method: lhs}\n")
    rc = main(["sweep", str(bad), "--out", str(tmp_path / "o"), "--no-progress"])
    assert rc == 2


def test_shipped_configs_parse_and_expand() -> None:
    from pathlib import Path

    from experiments.sweep.spec import load_spec

    configs = Path(__file__).resolve().parents[2] / "experiments" / "configs"
    sizes = {p.stem: len(expand(load_spec(p))) for p in sorted(configs.glob("*.yaml"))}
    # quickstart: (5 x 5 x 3 x 2 spatial + 8 reuse x 2 precision FPGA) configs x 3 workloads
    assert sizes["quickstart"] == (150 + 16) * 3
    # LHS draws distinct continuous points: 200 per design x 2 GEMM shapes
    assert sizes["lhs_example"] == (200 + 200) * 2

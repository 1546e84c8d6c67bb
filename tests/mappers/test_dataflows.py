"""mappers.dataflows: the mapping SCALE-Sim uses, checked with the generic model.

On every stall-free SCALE-Sim reference row, the generic analytical model
(sim.analytical.model) given the dataflow mapping of the layer's im2col GEMM
must reproduce SCALE-Sim's compute cycles exactly (SCALE-Sim's own counts,
experiments/data/scalesim/reference.csv).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from builders import spatial_arch

from mappers.dataflows import dataflow_mapping, im2col, rank_groups
from mappers.mapping import MappingError, validate
from sim.analytical.model import evaluate
from workloads.library import build

REF = Path(__file__).resolve().parents[2] / "experiments" / "data" / "scalesim" / "reference.csv"


def _einsum(r: dict[str, str]):
    if r["kind"] == "gemm":
        return build("gemm", M=int(r["M"]), N=int(r["N"]), K=int(r["K"]), bits=8).einsums[0]
    h, w, fh, fw, st = (int(r[c]) for c in ("ifmap_h", "ifmap_w", "filt_h", "filt_w", "stride"))
    # SCALE-Sim sizes the output ceil((H - R + s) / s) (a last window past the
    # edge reads nothing): the same layer on an ifmap padded to that size
    oh, ow = -(-(h - fh + st) // st), -(-(w - fw + st) // st)
    return build(
        "conv2d",
        N=1,
        C=int(r["channels"]),
        K=int(r["num_filters"]),
        H=(oh - 1) * st + fh,
        W=(ow - 1) * st + fw,
        R=fh,
        S=fw,
        stride=st,
        bits=8,
    ).einsums[0]


def _ref_rows(stall_free: bool):
    with REF.open() as f:
        return [r for r in csv.DictReader(f) if (float(r["stall_cycles"]) == 0) == stall_free]


def _generic_compute_cycles(r: dict[str, str]) -> float:
    df, R, C = r["dataflow"], int(r["array_rows"]), int(r["array_cols"])
    e = im2col(_einsum(r))
    assert e.rank_sizes == {"m": int(r["M"]), "n": int(r["N"]), "k": int(r["K"])}
    arch = spatial_arch(rows=R, cols=C, gb_bytes=None, rf_bytes=None, dataflow=df)
    m = dataflow_mapping(e, arch, df)
    validate(m, e, arch)
    return evaluate(e, arch, m).compute_cycles


def test_generic_model_matches_scalesim_compute_cycles_exactly():
    rows = _ref_rows(stall_free=True)
    assert len(rows) == 65
    for r in rows:
        got = _generic_compute_cycles(r)
        assert got == float(r["compute_cycles_no_stall"]) == float(r["total_cycles"]), (
            r["layer"],
            r["config"],
        )
    print(f"\n{len(rows)} stall-free rows: compute cycles exact through the generic path")


def test_generic_compute_cycles_are_scalesims_on_rows_with_stalls():
    """The stall-free part of the rows with stalls: the same closed form."""
    rows = _ref_rows(stall_free=False)
    assert len(rows) == 67
    for r in rows:
        assert _generic_compute_cycles(r) == float(r["compute_cycles_no_stall"]), r["layer"]


def test_per_rank_conv_mapping_folds_no_fewer_than_scalesim():
    """Mapped rank by rank (no im2col), a conv needs at least SCALE-Sim's folds."""
    for r in _ref_rows(stall_free=True):
        if r["kind"] != "conv":
            continue
        e = _einsum(r)
        arch = spatial_arch(
            rows=int(r["array_rows"]), cols=int(r["array_cols"]), gb_bytes=None, rf_bytes=None
        )
        m = dataflow_mapping(e, arch, r["dataflow"])
        folds = math.prod(m.levels[1].temporal.values())
        assert folds >= int(r["folds"]), r["layer"]


@pytest.mark.parametrize(
    ("df", "rows_group", "cols_group", "time_group", "kept"),
    [("os", "m", "n", "k", "C"), ("ws", "k", "n", "m", "B"), ("is", "k", "m", "n", "A")],
)
def test_gemm_placement(df, rows_group, cols_group, time_group, kept):
    e = build("gemm", M=100, N=70, K=40).einsums[0]
    arch = spatial_arch(rows=32, cols=16, gb_bytes=None, rf_bytes=None, dataflow=df)
    m = dataflow_mapping(e, arch, df)
    dram, gb, rf = m.levels
    size = e.rank_sizes
    assert dram.temporal == {} and dram.spatial == {}
    assert gb.spatial == {
        rows_group: min(32, size[rows_group]),
        cols_group: min(16, size[cols_group]),
    }
    assert gb.spatial_axes == {rows_group: "y", cols_group: "x"}
    assert gb.temporal == {
        rows_group: math.ceil(size[rows_group] / 32),
        cols_group: math.ceil(size[cols_group] / 16),
    }
    assert gb.order == (cols_group, rows_group)  # column folds outer, as SCALE-Sim
    assert rf.temporal == {time_group: size[time_group]}
    assert rf.keep == (kept,)
    assert m.dataflow == df
    assert m.unit == arch.compute[0].name
    for r in ("m", "n", "k"):
        assert m.factor(r) >= size[r]
    validate(m, e, arch)


def test_conv_groups_and_fold_search():
    e = build("conv2d", N=1, C=64, K=256, H=56, W=56, R=1, S=1).einsums[0]
    assert rank_groups(e) == {"M": ("n", "p", "q"), "N": ("k",), "K": ("c", "r", "s")}
    arch = spatial_arch(rows=32, cols=32, gb_bytes=None, rf_bytes=None, dataflow="os")
    m = dataflow_mapping(e, arch, "os")
    gb = m.levels[1]
    # 56 x 56 pixels on 32 rows: 8 x 4 spatial gives SCALE-Sim's ceil(3136/32) = 98 folds
    assert gb.temporal["p"] * gb.temporal["q"] == 98
    assert gb.spatial["p"] * gb.spatial["q"] == 32


def test_rejections_name_the_problem():
    e = build("gemm", M=8, N=8, K=8).einsums[0]
    arch = spatial_arch(rows=4, cols=4, gb_bytes=None, rf_bytes=None)
    with pytest.raises(MappingError, match="dataflow must be one of"):
        dataflow_mapping(e, arch, "rs")
    with pytest.raises(MappingError, match="exceeds its fan-out"):
        dataflow_mapping(e, arch, "os", rows=8)

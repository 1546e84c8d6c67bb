"""The greedy default mapping: valid whenever a mapping exists, good in the
closed-form cases, clear when nothing fits."""

from __future__ import annotations

import dataclasses
import math

import pytest
from builders import conv1d, gemm, level, single_level_arch, spatial_arch, unit
from hypothesis import given, settings
from hypothesis import strategies as st

from hw_models.arch import Architecture
from mappers.baselines.greedy import greedy_mapping
from mappers.mapping import MappingError, validate
from sim.analytical.model import evaluate


def test_single_level_reaches_macs_over_pes():
    e = gemm(64, 32, 16)
    arch = single_level_arch(pes=16)
    m = greedy_mapping(e, arch)
    validate(m, e, arch)
    r = evaluate(e, arch, m)
    assert r.cycles == 64 * 32 * 16 / 16
    assert r.padded_macs == r.macs


@pytest.mark.parametrize(
    "df,rows_rank,cols_rank", [("os", "m", "n"), ("ws", "k", "n"), ("is", "k", "m")]
)
def test_array_dataflow_axes_and_stationary_tensor(df, rows_rank, cols_rank):
    e = gemm(64, 48, 40)
    arch = spatial_arch(rows=8, cols=8, gb_bytes=1 << 20, rf_bytes=64, dataflow=df)
    m = greedy_mapping(e, arch)
    validate(m, e, arch)
    gb = m.levels[1]
    assert gb.spatial_axes == {rows_rank: "y", cols_rank: "x"}
    assert gb.spatial == {rows_rank: 8, cols_rank: 8}
    stationary = {"os": "C", "ws": "B", "is": "A"}[df]
    assert m.levels[2].keep == (stationary,)
    # the streaming rank runs in time below the array: one fold per tile of
    # the array, so the compute cycles follow SCALE-Sim's per-fold formula
    sizes = e.rank_sizes
    t_rank = ({"m", "n", "k"} - {rows_rank, cols_rank}).pop()
    folds = math.ceil(sizes[rows_rank] / 8) * math.ceil(sizes[cols_rank] / 8)
    skew = 8 + 8 - 2 if df == "os" else 2 * 8 + 8 - 2
    r = evaluate(e, arch, m)
    assert m.levels[2].temporal == {t_rank: sizes[t_rank]}
    assert r.compute_cycles == folds * (sizes[t_rank] + skew) - 1


def test_bypasses_levels_too_small_instead_of_failing():
    e = gemm(32, 32, 32)
    arch = spatial_arch(rf_bytes=2, gb_bytes=1 << 16)  # RF holds nothing double buffered
    m = greedy_mapping(e, arch)
    validate(m, e, arch)
    assert m.levels[2].keep == ()


def test_no_mapping_when_outermost_level_too_small():
    e = gemm(64, 64, 64)
    arch = Architecture(
        name="tiny",
        family="fpga",
        clock_hz=1e9,
        levels=(level("DDR", 1024, 8.0, double_buffered=False), level("BRAM", 256, 8.0)),
        compute=(unit(pes=4),),
    )
    with pytest.raises(
        MappingError,
        match=r"tensors C, A, B \(24 KiB\) do not fit the outermost level DDR \(1 KiB\)",
    ):
        greedy_mapping(e, arch)


def test_unknown_unit_and_objective():
    e = gemm(8, 8, 8)
    with pytest.raises(MappingError, match="unknown compute unit"):
        greedy_mapping(e, spatial_arch(), unit="gpu")
    with pytest.raises(MappingError, match="unknown objective"):
        greedy_mapping(e, spatial_arch(), objective="speed")


def test_evaluator_picks_the_best_variant():
    e = gemm(128, 16, 256)
    arch = spatial_arch(rows=4, cols=4, gb_bytes=2048, rf_bytes=64, dram_bw=4.0)

    def dram_bytes(m):
        return sum(evaluate(e, arch, m).traffic_bytes["DRAM"].values())

    plain = greedy_mapping(e, arch)
    best = greedy_mapping(e, arch, evaluator=dram_bytes)
    validate(best, e, arch)
    assert dram_bytes(best) <= dram_bytes(plain)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    M=st.integers(1, 300),
    N=st.integers(1, 300),
    K=st.integers(1, 300),
    rows=st.sampled_from([1, 3, 4, 16]),
    cols=st.sampled_from([1, 2, 8, 16]),
    gb=st.sampled_from([64, 1024, 1 << 14, 1 << 20]),
    rf=st.sampled_from([2, 8, 64, 512]),
    df=st.sampled_from(["os", "ws", "is"]),
)
def test_greedy_is_always_valid(M, N, K, rows, cols, gb, rf, df):
    e = gemm(M, N, K)
    arch = spatial_arch(rows=rows, cols=cols, gb_bytes=gb, rf_bytes=rf, dataflow=df)
    m = greedy_mapping(e, arch)
    validate(m, e, arch)
    r = evaluate(e, arch, m)
    assert r.macs == M * N * K
    # padding stays modest: under 2x per rank
    for rank, size in e.rank_sizes.items():
        assert m.factor(rank) < 2 * size or m.factor(rank) == size


def test_conv_with_halo_is_valid():
    e = conv1d(P=100, R=5, stride=2)
    arch = spatial_arch(rows=4, cols=4, gb_bytes=128, rf_bytes=16)
    m = greedy_mapping(e, arch)
    validate(m, e, arch)


def test_vector_unit_fed_by_buffer():
    base = spatial_arch(rows=4, cols=4)
    vec = unit("vector_1d", "array1d", pes=8, ops={"add": 1.0, "max": 1.0}, fed_by="GlobalBuffer")
    arch = dataclasses.replace(base, compute=(*base.compute, vec))
    from builders import ix

    from workloads.ir import Access, Einsum

    e = Einsum(
        name="MX",
        output=Access("MX", (ix("p"),)),
        inputs=(Access("QK", (ix("m"), ix("p"))),),
        map_op="copy",
        reduce_op="max",
        rank_sizes_items=(("m", 32), ("p", 40)),
    )
    m = greedy_mapping(e, arch)
    assert m.unit == "vector_1d"
    validate(m, e, arch)
    assert m.levels[2].keep == () and not m.levels[2].temporal
    r = evaluate(e, arch, m)
    # one max per point on 8 lanes (p padded to the greedy's factors)
    assert m.levels[1].spatial == {"p": 8}
    assert r.compute_cycles == 32 * m.factor("p") / 8
    assert 40 <= m.factor("p") < 2 * 40


def test_binding_hint_attribute_picks_the_unit():
    from builders import ix

    from workloads.ir import Access, Einsum

    base = spatial_arch(rows=4, cols=4)
    vec = unit("vector_1d", "array1d", pes=8, fed_by="GlobalBuffer")
    arch = dataclasses.replace(base, compute=(*base.compute, vec))

    def scale(attrs):
        return Einsum(
            name="SPD",
            output=Access("SPD", (ix("p"),)),
            inputs=(Access("RD", (ix("p"),)), Access("PRM", (ix("p"),))),
            map_op="mul",
            reduce_op="none",
            rank_sizes_items=(("p", 64),),
            attrs=attrs,
        )

    assert greedy_mapping(scale(()), arch).unit == "pe_array"  # MACs -> 2D array
    m = greedy_mapping(scale((("unit_class", "1d"),)), arch)
    assert m.unit == "vector_1d"
    assert evaluate(scale((("unit_class", "1d"),)), arch, m).compute_cycles == 64 / 8
    assert greedy_mapping(scale((("unit", "vector_1d"),)), arch).unit == "vector_1d"

"""Capacity per memory instance: on a level with per-tensor memories (Eyeriss
v1's PE scratchpads), every tile must fit its own memory, not only the
level's total (``mappers.mapping.capacity_groups``)."""

from __future__ import annotations

import pytest
from builders import gemm, lm, mapping

import hw_models
import sim
from hw_models.memories import memory_for
from mappers.mapping import (
    MappingError,
    kept_tensors,
    level_tiles,
    tensor_roles,
    tile_footprint,
    validate,
)


@pytest.fixture(scope="module")
def eyeriss_v1():
    return hw_models.load("eyeriss_v1")


def _psum_row(e, n_in_pe: int):
    """C[m,n] += A[m,k] B[k,n] with a 1 x ``n_in_pe`` output row in the PE."""
    return mapping(
        e,
        lm("DRAM", t={"m": 64, "k": 64, "n": 48 // n_in_pe}),
        lm("GlobalBuffer"),
        lm("PE_RF", t={"n": n_in_pe}),
    )


def test_a_tile_must_fit_its_own_scratchpad(eyeriss_v1):
    e = gemm(64, 48, 64)
    # 24 16-bit partial sums are psum_spad's 48 B exactly
    validate(_psum_row(e, 24), e, eyeriss_v1)
    # 48 of them (96 B) overflow psum_spad, though the PE's three
    # scratchpads hold 520 B and the tiles take 2 + 96 + 96 = 194 B
    with pytest.raises(MappingError, match=r"PE_RF \(memory psum_spad\).*96 B.*48 B"):
        validate(_psum_row(e, 48), e, eyeriss_v1)


def _overflowing(einsum, arch, m) -> list[str]:
    """Memories whose kept tiles exceed their capacity, recomputed from the
    tree's memories (independently of ``capacity_groups``)."""
    use = _memory_use(einsum, arch, m)
    return [f"{k[1]} {v:g}/{c:g} B" for k, (v, c) in use.items() if v > c]


def _memory_use(einsum, arch, m) -> dict[tuple[int, str], tuple[float, float]]:
    """(level, memory) -> (bytes its kept tiles take, its capacity)."""
    roles = tensor_roles(einsum)
    acc = {a.tensor: a for a in reversed(einsum.accesses)}
    tiles = level_tiles(einsum, m)
    used: dict[tuple[int, str], float] = {}
    caps: dict[tuple[int, str], float] = {}
    for i, keep in enumerate(kept_tensors(einsum, arch, m)):
        for t in keep:
            mem = memory_for(arch, i, t, roles[t])
            if mem is None or mem.capacity_bytes is None:
                continue
            b = tile_footprint(acc[t], tiles[i], einsum.rank_sizes) * acc[t].bits / 8
            used[i, mem.name] = used.get((i, mem.name), 0.0) + b * (2 if mem.double_buffered else 1)
            caps[i, mem.name] = mem.capacity_bytes
    return {k: (v, caps[k]) for k, v in used.items()}


@pytest.mark.parametrize("mapper", ["greedy", "random", "ilp"])
def test_mappers_fill_each_scratchpad_within_its_capacity(eyeriss_v1, mapper):
    e = gemm(96, 64, 128)
    ev = sim.evaluate(e, eyeriss_v1, mapper=mapper, objective="energy", time_limit_s=5.0)
    m = ev.mappings[e.name]
    assert _overflowing(e, eyeriss_v1, m) == []
    validate(m, e, eyeriss_v1)


def _pe_tiles(e, n_in_pe: int, k_in_pe: int):
    """A GEMM mapping with an ``n_in_pe`` x ``k_in_pe`` tile in the PE."""
    return mapping(
        e,
        lm("DRAM", t={"m": 64, "k": 64 // k_in_pe, "n": 48 // n_in_pe}),
        lm("GlobalBuffer"),
        lm("PE_RF", t={"n": n_in_pe, "k": k_in_pe}),
    )


def test_vectorised_validity_follows_each_memory(eyeriss_v1):
    """The batch model's ``valid`` (what a sweep filters candidates by) is the
    scalar validator's verdict, memory by memory: on the 5 x 7 grid of PE
    tiles, some fit the PE's 520 B in all but overflow one scratchpad."""
    from sim.analytical.model import evaluate_batch

    e = gemm(64, 48, 64)
    grid = [(n, k) for n in (1, 2, 12, 24, 48) for k in (1, 2, 4, 8, 16, 32, 64)]
    ms = [_pe_tiles(e, n, k) for n, k in grid]
    independent = [not _overflowing(e, eyeriss_v1, m) for m in ms]
    valid = [bool(v) for v in evaluate_batch(e, eyeriss_v1, ms)["valid"]]
    assert valid == independent
    # both verdicts occur, and some refused grids fit the level's total
    assert 0 < sum(valid) < len(grid)
    pe = len(eyeriss_v1.levels) - 1
    total = eyeriss_v1.levels[pe].capacity_bytes
    in_pe = [
        sum(v for (i, _), (v, _) in _memory_use(e, eyeriss_v1, m).items() if i == pe) for m in ms
    ]
    assert any(not ok and b <= total for ok, b in zip(valid, in_pe, strict=True))


def test_sweep_rows_carry_each_designs_memories(eyeriss_v1):
    """A sweep costs the candidates of several designs in one batch
    (``sim.mapped``): each row is checked against its own design's
    scratchpads, so doubling psum_spad admits the 1 x 48 row only there."""
    from hw_models.registry import apply_overrides
    from sim.analytical.compile import mapping_arrays
    from sim.analytical.core import evaluate_arrays
    from sim.mapped import STRUCTURES, _hardware

    big = apply_overrides(eyeriss_v1, {"psum_spad": {"capacity_bytes": 96}})
    e = gemm(64, 48, 64)
    ms = [_psum_row(e, 24), _psum_row(e, 48)]
    st = STRUCTURES.get(e, eyeriss_v1, ms[0])
    hw = _hardware(st, [eyeriss_v1, big], [2, 2])
    res = evaluate_arrays(st, hw, *mapping_arrays(st, ms + ms), n_total=4)
    expect = [not _overflowing(e, arch, m) for arch in (eyeriss_v1, big) for m in ms]
    assert [bool(v) for v in res["valid"]] == expect == [True, False, True, True]

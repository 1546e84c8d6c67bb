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
    return [f"{k[1]} {v:g}/{caps[k]:g} B" for k, v in used.items() if v > caps[k]]


@pytest.mark.parametrize("mapper", ["greedy", "random", "ilp"])
def test_mappers_fill_each_scratchpad_within_its_capacity(eyeriss_v1, mapper):
    e = gemm(96, 64, 128)
    ev = sim.evaluate(e, eyeriss_v1, mapper=mapper, objective="energy", time_limit_s=5.0)
    m = ev.mappings[e.name]
    assert _overflowing(e, eyeriss_v1, m) == []
    validate(m, e, eyeriss_v1)

"""Builders shared by the DES tests: small architectures, GEMMs and mappings."""

from __future__ import annotations

import random

from hw_models.arch import Architecture, ComputeUnit, StorageLevel
from mappers.mapping import LevelMapping, Mapping, MappingError, validate
from workloads.ir import Access, AffineIndex, Einsum


def acc(t: str, *ranks: str, bits: int = 16) -> Access:
    return Access(t, tuple(AffineIndex(((r, 1),)) for r in ranks), bits)


def gemm(M: int, N: int, K: int, name: str = "gemm") -> Einsum:
    return Einsum(
        name, acc("Z", "m", "n"), (acc("A", "m", "k"), acc("B", "k", "n")), "mul", "sum",
        (("m", M), ("n", N), ("k", K)),
    )  # fmt: skip


def unary(name: str, src: str, dst: str, M: int) -> Einsum:
    """``dst[m] = exp(src[m])``: one streamed input, one streamed output."""
    return Einsum(name, acc(dst, "m"), (acc(src, "m"),), "exp", "none", (("m", M),))


def level(name, cap, bw, **kw) -> StorageLevel:
    return StorageLevel(name, cap, 16, bw, bw, 1.0, 1.0, **kw)


def three_level_arch(dram_bw=8.0, gb_bw=64.0, gb_cap=1 << 20, px=4, py=4) -> Architecture:
    lv = (
        level("DRAM", None, dram_bw),
        level("GlobalBuffer", gb_cap, gb_bw, fanout_x=px, fanout_y=py),
        level("PE_RF", None, 1e9, instances=px * py),
    )
    cu = ComputeUnit("pe_array", "array2d", px * py, {"mac": 1.0}, {"mac": 1.0}, rows=px, cols=py)
    return Architecture("toy3", "spatial", 1e9, lv, (cu,))


def two_level_arch(
    dram_bw: float, buf_bw: float, pes: int, units: int = 1, rate: float = 1.0
) -> Architecture:
    lv = (level("DRAM", None, dram_bw), level("Buffer", 1 << 22, buf_bw, fanout_x=pes))
    cus = tuple(
        ComputeUnit(f"vec{i}", "array1d", pes, {"mac": rate, "exp": rate}, {"mac": 1.0, "exp": 1.0})
        for i in range(units)
    )
    return Architecture("toy2", "spatial", 1e9, lv, cus)


def one_level_arch(bw: float, pes: int) -> Architecture:
    lv = (level("DRAM", None, bw, fanout_x=pes),)
    cu = ComputeUnit("vec", "array1d", pes, {"mac": 1.0}, {"mac": 1.0})
    return Architecture("toy1", "spatial", 1e9, lv, (cu,))


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def split(n: int, k: int, rng: random.Random) -> list[int]:
    out = []
    for _ in range(k - 1):
        d = rng.choice(divisors(n))
        out.append(d)
        n //= d
    out.append(n)
    rng.shuffle(out)
    return out


def random_gemm_mapping(
    rng: random.Random, M: int, N: int, K: int, buffer_order: bool = True
) -> Mapping:
    """Random factors of M/4, N/4 and K over DRAM, GlobalBuffer (4 x 4
    fan-out) and PE_RF, with a random DRAM loop order (and a random buffer
    loop order when ``buffer_order``); not validated."""
    fm, fn, fk = split(M // 4, 3, rng), split(N // 4, 3, rng), split(K, 3, rng)
    dram_order = tuple(rng.sample("mnk", 3))
    gb_order = tuple(rng.sample("mnk", 3)) if buffer_order else ()
    return Mapping(
        "gemm",
        (
            LevelMapping("DRAM", {"m": fm[0], "n": fn[0], "k": fk[0]}, order=dram_order),
            LevelMapping(
                "GlobalBuffer",
                {"m": fm[1], "n": fn[1], "k": fk[1]},
                {"m": 4, "n": 4},
                order=gb_order,
            ),
            LevelMapping("PE_RF", {"m": fm[2], "n": fn[2], "k": fk[2]}),
        ),
        unit="pe_array",
    )


def two_unit_maps(M: int, tile: int) -> dict[str, Mapping]:
    """E1 on vec0 and E2 on vec1, each streaming ``M`` elements through the
    buffer in tiles of ``tile``."""
    return {
        n: Mapping(
            n, (LevelMapping("DRAM", {"m": M // tile}), LevelMapping("Buffer", {"m": tile})), unit=u
        )
        for n, u in (("E1", "vec0"), ("E2", "vec1"))
    }


def random_three_level(rng: random.Random, sizes=(16, 32, 64)):
    """A random valid GEMM mapping on the 3-level toy (any loop orders, any reuse)."""
    while True:
        M, N, K = (rng.choice(sizes) for _ in range(3))
        e = gemm(M, N, K)
        a = three_level_arch(
            dram_bw=rng.choice([2.0, 8.0, 32.0]), gb_bw=rng.choice([16.0, 64.0, 512.0])
        )
        m = random_gemm_mapping(rng, M, N, K)
        try:
            validate(m, e, a)
        except MappingError:
            continue
        return e, a, m


# -------------------------------------------------- traffic: same reuse analysis

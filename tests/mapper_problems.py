"""Small hand-built Einsums and architectures for the mapper tests and benchmark.

Built from the IR dataclasses directly so the mapper tests do not depend on
the workload library or the presets.
"""

from __future__ import annotations

from hw_models.arch import Architecture, ComputeUnit, StorageLevel
from workloads.ir import Access, AffineIndex, Einsum


def _ix(rank: str, coef: int = 1) -> AffineIndex:
    return AffineIndex(((rank, coef),))


def gemm(m: int, n: int, k: int, bits: int = 16, name: str = "gemm") -> Einsum:
    """C[m,n] = sum_k A[m,k] * B[k,n]."""
    return Einsum(
        name,
        Access("C", (_ix("m"), _ix("n")), bits),
        (Access("A", (_ix("m"), _ix("k")), bits), Access("B", (_ix("k"), _ix("n")), bits)),
        "mul",
        "sum",
        (("m", m), ("n", n), ("k", k)),
    )


def conv(n: int, k: int, c: int, p: int, q: int, r: int, s: int, stride: int = 1, name: str = "conv") -> Einsum:
    """O[n,k,p,q] = sum_{c,r,s} I[n,c,p*stride+r,q*stride+s] * W[k,c,r,s]."""
    h = AffineIndex((("p", stride), ("r", 1)))
    w = AffineIndex((("q", stride), ("s", 1)))
    return Einsum(
        name,
        Access("O", (_ix("n"), _ix("k"), _ix("p"), _ix("q"))),
        (Access("I", (_ix("n"), _ix("c"), h, w)), Access("W", (_ix("k"), _ix("c"), _ix("r"), _ix("s")))),
        "mul",
        "sum",
        (("n", n), ("k", k), ("c", c), ("p", p), ("q", q), ("r", r), ("s", s)),
    )


def tiny_arch(
    gb_bytes: float = 1024,
    rf_bytes: float = 64,
    fx: int = 4,
    fy: int = 4,
    name: str = "tiny",
    dram_bw: float = 16.0,
    static_w: float = 0.01,
) -> Architecture:
    """DRAM -> GlobalBuffer (fan-out fx x fy) -> PE_RF -> a 2D MAC array.

    Energies are round numbers of the usual ratios (DRAM : SRAM : RF : MAC
    ~ 200 : 6 : 0.5 : 1, Eyeriss ISCA 2016 Table IV normalised costs); the
    tests compare searches on the same model, so exact values do not matter.
    """
    return Architecture(
        name,
        "spatial",
        1e9,
        (
            StorageLevel("DRAM", None, 64, dram_bw, dram_bw, 200.0, 200.0),
            StorageLevel("GlobalBuffer", gb_bytes, 64, 32, 32, 6.0, 6.0, fanout_x=fx, fanout_y=fy),
            StorageLevel("PE_RF", rf_bytes, 16, 4, 4, 0.5, 0.5, instances=fx * fy, double_buffered=False),
        ),
        (ComputeUnit("pe_array", "array2d", fx * fy, {"mac": 1.0}, {"mac": 1.0}, rows=fy, cols=fx, dataflow="ws"),),
        static_power_w=static_w,
    )


#: (Einsum, Architecture) pairs whose spaces exhaustive search covers in a few seconds
SMALL_PROBLEMS: list[tuple[Einsum, Architecture]] = [
    (gemm(8, 8, 8), tiny_arch()),
    (gemm(4, 16, 8), tiny_arch(gb_bytes=512, rf_bytes=32)),
    (gemm(16, 4, 4), tiny_arch(fx=2, fy=2)),
    (gemm(8, 4, 16), tiny_arch(fx=4, fy=2, rf_bytes=16)),
    (gemm(12, 6, 4), tiny_arch(fx=3, fy=2)),
    (gemm(6, 9, 4), tiny_arch(fx=3, fy=3, gb_bytes=256)),
    (gemm(16, 8, 2), tiny_arch(fx=2, fy=4, rf_bytes=24)),
    (gemm(4, 4, 32), tiny_arch(fx=2, fy=2, gb_bytes=384)),
    (gemm(32, 4, 4), tiny_arch(fx=4, fy=1, dram_bw=4.0)),
    (gemm(10, 10, 4), tiny_arch(fx=5, fy=2)),
    (gemm(8, 8, 4, bits=8), tiny_arch(fx=2, fy=4, static_w=0.1)),
    (gemm(16, 16, 2), tiny_arch(fx=4, fy=4, gb_bytes=2048, dram_bw=8.0)),
    (conv(1, 2, 2, 4, 2, 3, 3), tiny_arch(fx=2, fy=2, gb_bytes=2048, rf_bytes=128)),
    (conv(1, 2, 4, 4, 2, 3, 1), tiny_arch(fx=2, fy=2, gb_bytes=1024, rf_bytes=64)),
    (conv(1, 4, 4, 2, 2, 1, 1), tiny_arch(fx=4, fy=1)),
    (conv(2, 2, 2, 4, 4, 1, 1), tiny_arch(fx=2, fy=2, rf_bytes=32)),
    (conv(1, 3, 2, 3, 3, 3, 3), tiny_arch(fx=3, fy=1, gb_bytes=1024, rf_bytes=96)),
    (conv(1, 2, 2, 8, 1, 3, 1), tiny_arch(fx=2, fy=2, gb_bytes=512)),
    (conv(1, 2, 2, 2, 2, 2, 2, stride=2), tiny_arch(fx=2, fy=2, rf_bytes=64)),
    (conv(1, 8, 2, 2, 2, 1, 1), tiny_arch(fx=2, fy=4, dram_bw=4.0)),
]

"""Mapping problem sets shared by the mapper benchmark and the tests.

* ``SMALL_PROBLEMS``: 20 GEMMs and convolutions on tiny architectures whose
  whole mapping spaces exhaustive search enumerates in seconds;
* ``resnet_layers`` / ``bert_einsums``: the real layers of the large set.
"""

from __future__ import annotations

from hw_models.arch import Architecture, ComputeUnit, StorageLevel
from workloads.ir import Access, AffineIndex, Einsum


# --------------------------------------------------------------------------
# small problems (exhaustive search covers them in seconds)
# --------------------------------------------------------------------------
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


def conv(
    n: int, k: int, c: int, p: int, q: int, r: int, s: int, stride: int = 1, name: str = "conv"
) -> Einsum:
    """O[n,k,p,q] = sum_{c,r,s} I[n,c,p*stride+r,q*stride+s] * W[k,c,r,s]."""
    h = AffineIndex((("p", stride), ("r", 1)))
    w = AffineIndex((("q", stride), ("s", 1)))
    return Einsum(
        name,
        Access("O", (_ix("n"), _ix("k"), _ix("p"), _ix("q"))),
        (
            Access("I", (_ix("n"), _ix("c"), h, w)),
            Access("W", (_ix("k"), _ix("c"), _ix("r"), _ix("s"))),
        ),
        "mul",
        "sum",
        (("n", n), ("k", k), ("c", c), ("p", p), ("q", q), ("r", r), ("s", s)),
    )


def mac_array(rows: int, cols: int, dataflow: str) -> ComputeUnit:
    """A ``rows x cols`` systolic array of MACs, one per PE per cycle at 1 pJ."""
    return ComputeUnit(
        "pe_array",
        "array2d",
        rows * cols,
        {"mac": 1.0},
        {"mac": 1.0},
        rows=rows,
        cols=cols,
        dataflow=dataflow,
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

    Energy ratios DRAM : buffer : RF : MAC = 200 : 6 : 0.5 : 1 follow the
    normalised access costs of Eyeriss (Chen et al., ISCA 2016, Table IV);
    the searches are compared on the same model, so exact values do not matter.
    """
    return Architecture(
        name,
        "spatial",
        1e9,
        (
            StorageLevel("DRAM", None, 64, dram_bw, dram_bw, 200.0, 200.0),
            StorageLevel("GlobalBuffer", gb_bytes, 64, 32, 32, 6.0, 6.0, fanout_x=fx, fanout_y=fy),
            StorageLevel(
                "PE_RF", rf_bytes, 16, 4, 4, 0.5, 0.5, instances=fx * fy, double_buffered=False
            ),
        ),
        (mac_array(fy, fx, "ws"),),
        static_power_w=static_w,
    )


#: 20 (Einsum, Architecture) pairs whose full spaces (tilings x bypass choices x
#: loop-order classes) hold 150k-700k points: exhaustive search covers each in
#: well under a minute (the bench prints the time)
SMALL_PROBLEMS: list[tuple[Einsum, Architecture]] = [
    (gemm(8, 4, 4), tiny_arch()),
    (gemm(4, 16, 2), tiny_arch(gb_bytes=512, rf_bytes=32)),
    (gemm(16, 4, 4), tiny_arch(fx=2, fy=2)),
    (gemm(8, 4, 8), tiny_arch(fx=4, fy=2, rf_bytes=16)),
    (gemm(12, 6, 2), tiny_arch(fx=3, fy=2)),
    (gemm(6, 9, 4), tiny_arch(fx=3, fy=3, gb_bytes=256)),
    (gemm(16, 8, 2), tiny_arch(fx=2, fy=4, rf_bytes=24)),
    (gemm(4, 4, 32), tiny_arch(fx=2, fy=2, gb_bytes=384)),
    (gemm(32, 4, 4), tiny_arch(fx=4, fy=1, dram_bw=4.0)),
    (gemm(10, 10, 4), tiny_arch(fx=5, fy=2)),
    (gemm(8, 4, 4, bits=8), tiny_arch(fx=2, fy=4, static_w=0.1)),
    (gemm(16, 8, 2), tiny_arch(fx=4, fy=4, gb_bytes=2048, dram_bw=8.0)),
    (conv(1, 2, 2, 2, 2, 3, 3), tiny_arch(fx=2, fy=2, gb_bytes=2048, rf_bytes=128)),
    (conv(1, 2, 2, 4, 2, 3, 1), tiny_arch(fx=2, fy=2, gb_bytes=1024, rf_bytes=64)),
    (conv(1, 4, 4, 2, 2, 1, 1), tiny_arch(fx=4, fy=1)),
    (conv(2, 2, 2, 4, 2, 1, 1), tiny_arch(fx=2, fy=2, rf_bytes=32)),
    (conv(1, 3, 2, 3, 3, 3, 3), tiny_arch(fx=3, fy=1, gb_bytes=1024, rf_bytes=96)),
    (conv(1, 2, 2, 8, 1, 3, 1), tiny_arch(fx=2, fy=2, gb_bytes=512)),
    (conv(1, 2, 2, 2, 2, 2, 1, stride=2), tiny_arch(fx=2, fy=2, rf_bytes=64)),
    (conv(1, 8, 2, 2, 2, 1, 1), tiny_arch(fx=2, fy=4, dram_bw=4.0)),
]


# --------------------------------------------------------------------------
# large problems
# --------------------------------------------------------------------------
#: ResNet-50 layers (He et al., CVPR 2016, Table 1): name, C, K, R, stride, output P=Q
RESNET50 = [
    ("conv1", 3, 64, 7, 2, 112),
    ("res2_1x1a", 64, 64, 1, 1, 56),
    ("res2_3x3", 64, 64, 3, 1, 56),
    ("res2_1x1b", 64, 256, 1, 1, 56),
    ("res3_3x3", 128, 128, 3, 1, 28),
    ("res3_1x1b", 128, 512, 1, 1, 28),
    ("res4_3x3", 256, 256, 3, 1, 14),
    ("res4_1x1b", 256, 1024, 1, 1, 14),
    ("res5_3x3", 512, 512, 3, 1, 7),
    ("res5_1x1b", 512, 2048, 1, 1, 7),
]
#: BERT-base (Devlin et al., 2019): the layer's GEMMs and attention Einsums
BERT_EINSUMS = ("Q", "QK", "SN", "SD", "A", "AV", "PR", "F1", "F2")
ARCHS = ("eyeriss_like", "tpu_like", "fusemax_cloud")


def resnet_layers(quick: bool = False) -> list[tuple[str, Einsum]]:
    from workloads import library

    out = []
    layers = [RESNET50[i] for i in (2, 5, 6, 9)] if quick else RESNET50
    for name, c, k, r, stride, p in layers:
        h = (p - 1) * stride + r  # no padding: the input window the output needs
        cas = library.build("conv2d", N=1, C=c, H=h, W=h, K=k, R=r, S=r, stride=stride)
        out.append((f"resnet50.{name}", cas.einsums[0]))
    return out


def bert_einsums(quick: bool = False, seq: int = 128) -> list[tuple[str, Einsum]]:
    from workloads import library

    cas = library.build("transformer-layer", model="bert", seq=seq)
    want = ("Q", "QK", "AV", "F1") if quick else BERT_EINSUMS
    by = {e.name: e for e in cas.einsums}
    return [(f"bert.{n}", by[n]) for n in want if n in by]

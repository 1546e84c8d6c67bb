"""Hand-built Einsums and Architectures for the mapping/analytical tests.

Built from the dataclasses directly so the tests do not depend on the
workload library or the hardware presets.
"""

from __future__ import annotations

import math

from hw_models.arch import Architecture, ComputeUnit, StorageLevel
from mappers.mapping import LevelMapping, Mapping
from workloads.ir import Access, AffineIndex, Cascade, Einsum

#: the attention example of docs/architecture.md as cascade text (the
#: packaged workloads/library/design-example.yaml holds the same cascade)
DESIGN_EXAMPLE = """\
declare Q[e:64, p:1024] K[e:64, m:1024] V[f:64, m:1024]
QK[m,p] = Q[e,p] * K[e,m]
MX[p]   = max(m) QK[m,p]
SN[m,p] = exp(QK[m,p] - MX[p])
SD[p]   = sum(m) SN[m,p]
A[m,p]  = SN[m,p] / SD[p]
AV[f,p] = A[m,p] * V[f,m]
"""


def ix(*terms: tuple[str, int] | str) -> AffineIndex:
    return AffineIndex(tuple((t, 1) if isinstance(t, str) else t for t in terms))


def gemm(M: int, N: int, K: int, bits: int = 16, name: str = "C") -> Einsum:
    """C[m,n] = A[m,k] * B[k,n]."""
    return Einsum(
        name=name,
        output=Access("C", (ix("m"), ix("n")), bits),
        inputs=(Access("A", (ix("m"), ix("k")), bits), Access("B", (ix("k"), ix("n")), bits)),
        map_op="mul",
        reduce_op="sum",
        rank_sizes_items=(("m", M), ("n", N), ("k", K)),
    )


def copy(M: int, bits: int = 16) -> Einsum:
    """B[m] = A[m]."""
    return Einsum(
        name="B",
        output=Access("B", (ix("m"),), bits),
        inputs=(Access("A", (ix("m"),), bits),),
        map_op="copy",
        reduce_op="none",
        rank_sizes_items=(("m", M),),
    )


def conv1d(P: int, R: int, stride: int = 1) -> Einsum:
    """O[p] = I[p*stride + r] * W[r]."""
    return Einsum(
        name="O",
        output=Access("O", (ix("p"),), 16),
        inputs=(
            Access("I", (AffineIndex((("p", stride), ("r", 1))),), 16),
            Access("W", (ix("r"),), 16),
        ),
        map_op="mul",
        reduce_op="sum",
        rank_sizes_items=(("p", P), ("r", R)),
    )


def level(name: str, cap: float | None, bw: float = math.inf, **kw) -> StorageLevel:
    args = dict(
        name=name,
        capacity_bytes=cap,
        word_bits=16,
        read_bw_bytes_per_cycle=bw,
        write_bw_bytes_per_cycle=bw,
        read_energy_pj_per_word=kw.pop("er", 0.0),
        write_energy_pj_per_word=kw.pop("ew", 0.0),
    )
    args.update(kw)
    return StorageLevel(**args)


def unit(
    name: str = "pe_array", kind: str = "array1d", pes: int = 16, mac_pj: float = 0.0, **kw
) -> ComputeUnit:
    return ComputeUnit(
        name=name,
        kind=kind,
        pes=pes,
        ops_per_cycle=kw.pop("ops", {"mac": 1.0, "add": 1.0, "max": 1.0, "exp": 1.0, "div": 1.0}),
        energy_pj_per_op=kw.pop("epj", {"mac": mac_pj}),
        **kw,
    )


def single_level_arch(pes: int = 16) -> Architecture:
    """One unbounded, unlimited-bandwidth level fanning out to ``pes`` PEs."""
    return Architecture(
        name="one",
        family="spatial",
        clock_hz=1e9,
        levels=(level("DRAM", None, fanout_x=pes),),
        compute=(unit(pes=pes),),
    )


def spatial_arch(
    rows: int = 4,
    cols: int = 4,
    gb_bytes: float = 4096,
    rf_bytes: float = 64,
    dram_bw: float = 16.0,
    gb_bw: float = 64.0,
    dataflow: str = "os",
    **kw,
) -> Architecture:
    """DRAM -> GlobalBuffer (fan-out rows x cols) -> PE_RF -> rows x cols array."""
    return Architecture(
        name="toy",
        family="spatial",
        clock_hz=1e9,
        levels=(
            level("DRAM", None, dram_bw, er=100.0, ew=100.0, shared_bw=True),
            level("GlobalBuffer", gb_bytes, gb_bw, er=10.0, ew=10.0, fanout_x=cols, fanout_y=rows),
            level("PE_RF", rf_bytes, 8.0, er=1.0, ew=1.0, instances=rows * cols),
        ),
        compute=(
            unit(
                kind="array2d", pes=rows * cols, rows=rows, cols=cols, dataflow=dataflow, mac_pj=2.0
            ),
        ),
        **kw,
    )


def lm(level_name: str, t=None, s=None, order=(), keep=None, axes=None) -> LevelMapping:
    return LevelMapping(
        level=level_name,
        temporal=dict(t or {}),
        spatial=dict(s or {}),
        spatial_axes=dict(axes or {}),
        order=tuple(order),
        keep=keep,
    )


def mapping(einsum: Einsum, *levels: LevelMapping, unit_name: str = "") -> Mapping:
    return Mapping(einsum=einsum.name, levels=tuple(levels), unit=unit_name)


def fully_validated(c: Cascade) -> Cascade:
    """``c`` rebuilt through :class:`Cascade`'s own constructor: the cascade the
    parser builds skips the checks the parser made itself, so this raises if
    the parser ever accepts what the cascade checks refuse."""
    return Cascade(
        name=c.name,
        tensors=c.tensors,
        einsums=c.einsums,
        splits=c.splits,
        split_sizes=c.split_sizes,
    )

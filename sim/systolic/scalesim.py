"""A SCALE-Sim-faithful model of a systolic array and its double-buffered SRAMs.

SCALE-Sim 3.0.0 (Samajdar et al., "A Systematic Methodology for
Characterizing Scalability of DNN Accelerators using SCALE-Sim", ISPASS 2020;
https://github.com/scalesim-project/scale-sim-v2, ``pip install
scalesim==3.0.0``) replays every cycle of a layer through its memory model.
This module computes the same report numbers without that replay:

* the stall-free cycles, utilisations and SRAM access counts are closed forms
  of the fold structure (vectorised over any number of layers);
* the stalls come from the memory system. SCALE-Sim keeps, per read operand,
  a window of ``A`` "hashed lines" (each ``ceil(sram_words / 100)`` operand
  words, in the order of its prefetch matrix) and slides it by ``P`` lines
  whenever the array asks for a word outside it. Each slide is one DRAM
  prefetch of ``ceil(P_words / bw)`` request rows, chained back to back: the
  k-th slide is complete at cycle ``k * (ceil(P_words / bw) + 1) - 1``, no
  matter when it was asked for. We compute, per array row of demand, the
  first and last hashed line it touches (closed forms of SCALE-Sim's diagonal
  and row-major operand layouts, vectorised with numpy), run the window over
  the rows where that pair changes (one step per line crossing, not per
  cycle) and fold the slide times into the stall count with SCALE-Sim's
  accounting.

``scalesim_compat=True`` reproduces two SCALE-Sim quirks that we consider
wrong (see docs/scalesim.md): a stall behind a late prefetch is counted twice
(``read_buffer.service_reads`` adds ``potential_stall_cycles`` to the offset
twice), and the OS ofmap SRAM write count adds ``rows + cols`` per fold. With
``scalesim_compat=False`` a stall lasts until the data arrives and the ofmap
writes are the outputs actually written.

Convolution ifmaps repeat words; SCALE-Sim finds a word if any copy of it is
in the window, so conv layers check copies (:class:`_ConvWindow`). The ofmap
write buffer (half drained to DRAM whenever it is more than half full, one
line per cycle) is followed drain by drain (:class:`_WriteBuffer`), which
gives its stalls and SCALE-Sim's DRAM write count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sim.analytical.compile import array_skew
from workloads.errors import EinsimError

DATAFLOWS = ("os", "ws", "is")
#: an array configuration's SRAM sizes (KB) and DRAM bandwidths (words per
#: cycle), as SCALE-Sim's config files name them; all must be positive
MEMORY_FIELDS = (
    "ifmap_sram_kb",
    "filter_sram_kb",
    "ofmap_sram_kb",
    "ifmap_dram_bw_words",
    "filter_dram_bw_words",
    "ofmap_dram_bw_words",
)

#: SCALE-Sim's read buffers split the SRAM into hashed lines of
#: ceil(words / 100) words (read_buffer.prepare_hashed_buffer).
_LINES_PER_SRAM = 100
#: largest layer (array rows of demand = stall-free cycles + 1) the memory
#: model takes; it keeps one int64 per row for the ofmap writes (512 MiB)
MAX_DEMAND_ROWS = 1 << 26
#: array rows evaluated per numpy chunk (bounds memory on huge layers)
_CHUNK_ROWS = 1 << 20
#: fraction of each SRAM that is the active half (single_layer_sim.run:
#: ``active_buf_frac = 0.5``).
_ACTIVE_FRAC = 0.5


class SystolicError(EinsimError):
    """A layer or array description the systolic model cannot take."""


@dataclass(frozen=True)
class ArrayConfig:
    """One systolic array in SCALE-Sim's terms (1-byte words)."""

    rows: int
    cols: int
    dataflow: str
    ifmap_sram_kb: float
    filter_sram_kb: float
    ofmap_sram_kb: float
    ifmap_dram_bw_words: float
    filter_dram_bw_words: float
    ofmap_dram_bw_words: float

    def __post_init__(self) -> None:
        if self.dataflow not in DATAFLOWS:
            raise SystolicError(f"dataflow must be one of {DATAFLOWS}, got {self.dataflow!r}")
        for name in ("rows", "cols"):
            if int(getattr(self, name)) < 1:
                raise SystolicError(f"array {name} must be >= 1, got {getattr(self, name)}")
        for name in ("ifmap_sram_kb", "filter_sram_kb", "ofmap_sram_kb"):
            if math.floor(float(getattr(self, name)) * 1024) < 2:
                raise SystolicError(
                    f"{name} must hold at least 2 words (SCALE-Sim splits it in two halves), "
                    f"got {getattr(self, name)} KB"
                )
        for name in MEMORY_FIELDS:
            if not float(getattr(self, name)) > 0:
                raise SystolicError(f"{name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class SystolicResult:
    """SCALE-Sim's report numbers for one layer (words, cycles, percent)."""

    total_cycles: int
    stall_cycles: int
    compute_cycles_no_stall: int
    compute_util_pct: float
    overall_util_pct: float
    mapping_eff_pct: float
    macs: int
    folds: int
    sram_ifmap_reads: int
    sram_filter_reads: int
    sram_ofmap_writes: int
    dram_ifmap_reads: int
    dram_filter_reads: int
    dram_ofmap_writes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def conv_to_gemm(
    ifmap_h: Any,
    ifmap_w: Any,
    filt_h: Any,
    filt_w: Any,
    channels: Any,
    num_filters: Any,
    stride: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SCALE-Sim's lowering of a (pre-padded) convolution to (M, N, K).

    The output side is ceil((ifmap - filt + stride) / stride), rounded up
    as SCALE-Sim's ``topology_utils`` does (README of the reference data).
    """
    ih, iw, fh, fw, ch, nf, st = (
        np.asarray(v, dtype=np.int64)
        for v in (ifmap_h, ifmap_w, filt_h, filt_w, channels, num_filters, stride)
    )
    oh = -((-(ih - fh + st)) // st)
    ow = -((-(iw - fw + st)) // st)
    return oh * ow, nf, fh * fw * ch


def operand_dims(m: Any, n: Any, k: Any, dataflow: str) -> tuple[Any, Any, Any]:
    """(Sr, Sc, T): the operand dimensions mapped to rows, columns and time."""
    if dataflow == "os":
        return m, n, k
    if dataflow == "ws":
        return k, n, m
    if dataflow == "is":
        return k, m, n
    raise SystolicError(f"dataflow must be one of {DATAFLOWS}, got {dataflow!r}")


def _cdiv(a: Any, b: Any) -> Any:
    return -((-a) // b)


def closed_forms(
    m: Any, n: Any, k: Any, rows: Any, cols: Any, dataflow: Any, scalesim_compat: bool = True
) -> dict[str, np.ndarray]:
    """Stall-free numbers of SCALE-Sim's compute model, vectorised over layers.

    ``dataflow`` may be one string or an array of strings. Closed forms of
    ``compute/systolic_compute_{os,ws,is}.py``: every fold pays the full
    fill and drain.
    """
    m, n, k, r, c = (np.asarray(v, dtype=np.int64) for v in (m, n, k, rows, cols))
    df = np.broadcast_to(np.asarray(dataflow), np.broadcast(m, n, k, r, c).shape)
    m, n, k, r, c = np.broadcast_arrays(m, n, k, r, c)
    is_os, is_ws = df == "os", df == "ws"
    bad = ~np.isin(df, DATAFLOWS)
    if bad.any():
        raise SystolicError(f"dataflow must be one of {DATAFLOWS}, got {df[bad].flat[0]!r}")
    sr = np.where(is_os, m, k)
    sc = np.where(is_os, n, np.where(is_ws, n, m))
    t = np.where(is_os, k, np.where(is_ws, m, n))
    row_fold, col_fold = _cdiv(sr, r), _cdiv(sc, c)
    folds = row_fold * col_fold
    # the analytical model's fill and drain of one fold (sim.analytical.compile)
    fold_rows = t + np.where(is_os, array_skew("os", r, c), array_skew("ws", r, c)).astype(np.int64)
    demand_rows = folds * fold_rows
    # cycles_this_fold in SCALE-Sim's per-fold utilisation: the ofmap (os) or
    # the filter/ifmap (ws/is) fold demand plus its skew.
    util_cycles = np.where(is_os, t + r + c - 2, t + 2 * r + 2 * c - 3)
    used = sr * sc  # summed over folds: sum_f rows_used * cols_used
    macs = m * n * k
    # in floats: r * c * util_cycles * folds passes 2**63 on huge arrays
    # (refused later, with the layer's line, not with an overflow warning)
    pes = r.astype(np.float64) * c
    mapping_eff = 100.0 * used / (pes * folds)
    compute_util = 100.0 * used * t / (pes * util_cycles * folds)
    if_reads = np.where(is_os, col_fold * sr * t, np.where(is_ws, col_fold * t * sr, sr * sc))
    f_reads = np.where(is_os, row_fold * sc * t, np.where(is_ws, sr * sc, col_fold * t * sr))
    of_valid = np.where(is_os, sr * sc, row_fold * t * sc)
    quirk = folds * (r + c) if scalesim_compat else 0
    of_writes = np.where(is_os, of_valid + quirk, of_valid)
    return {
        "sr": sr,
        "sc": sc,
        "t": t,
        "row_fold": row_fold,
        "col_fold": col_fold,
        "folds": folds,
        "fold_rows": fold_rows,
        "demand_rows": demand_rows,
        "compute_cycles_no_stall": demand_rows - 1,
        "macs": macs,
        "mapping_eff_pct": mapping_eff,
        "compute_util_pct": compute_util,
        "sram_ifmap_reads": if_reads,
        "sram_filter_reads": f_reads,
        "sram_ofmap_writes": of_writes,
        "ofmap_valid_writes": of_valid,
    }


# --------------------------------------------------------------------------
# Operand layouts: which prefetch-order positions each array row asks for.
# --------------------------------------------------------------------------


def _tri(x: np.ndarray, w: int) -> np.ndarray:
    """sum_{c=0}^{w-1} max(x - c, 0), elementwise."""
    x = np.asarray(x, dtype=np.int64)
    small = x * (x + 1) // 2
    big = w * x - w * (w - 1) // 2
    return np.where(x <= 0, 0, np.where(x <= w, small, big))


@dataclass(frozen=True)
class _Blocks:
    """An operand's prefetch matrix: B blocks of ``rows`` x W stacked vertically.

    The last block has only ``w_last`` valid columns (the rest are SCALE-Sim's
    -1 padding, which takes no place in the hashed lines).
    """

    blocks: int
    rows: int
    w: int
    w_last: int

    @property
    def valid_words(self) -> int:
        return ((self.blocks - 1) * self.w + self.w_last) * self.rows

    @property
    def fetch_words(self) -> int:
        return self.blocks * self.rows * self.w


@dataclass(frozen=True)
class _DiagOperand(_Blocks):
    """Blocks of T (``rows``) x W read out by anti-diagonals.

    Fold ``f`` of the demand reads block ``block_of_fold[f]``: row ``u`` of
    the fold (after ``prefix`` idle rows) asks for anti-diagonal ``u - prefix``
    of the block.
    """

    prefix: int

    def diagonal(
        self, block: np.ndarray, u: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What row ``u`` of a fold reading ``block`` asks for: (whether it
        asks for any element, its first and last column, the anti-diagonal
        ``d`` over all blocks, the place of column 0 of ``d`` in the read-out
        order with padding counted)."""
        T, W = self.rows, self.w
        rt = self.blocks * T
        tt = u - self.prefix
        wb = np.where(block == self.blocks - 1, self.w_last, W)
        c_lo = np.maximum(0, tt - T + 1)
        c_hi = np.minimum(np.minimum(W - 1, tt), wb - 1)
        ok = (tt >= 0) & (c_lo <= c_hi)
        d = block * T + tt
        # elements on anti-diagonals < d, less the columns of d before its first
        first = _tri(d, W) - _tri(d - rt, W) - np.maximum(0, d - rt + 1)
        return ok, c_lo, c_hi, d, first

    def positions(self, block: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First and last valid prefetch position asked for (-1: none)."""
        T, W, B = self.rows, self.w, self.blocks
        ok, c_lo, c_hi, d, first = self.diagonal(block, u)
        r0 = (B - 1) * T  # first row of the (maybe partial) last block
        x = d - r0
        pad_before_diag = (_tri(x, W) - _tri(x, self.w_last)) - (
            _tri(x - T, W) - _tri(x - T, self.w_last)
        )

        def pos(cc: np.ndarray) -> np.ndarray:
            pad_in_diag = np.clip(np.minimum(cc, d - r0 + 1) - self.w_last, 0, None)
            return first + cc - pad_before_diag - pad_in_diag

        lo = np.where(ok, pos(c_lo), -1)
        hi = np.where(ok, pos(c_hi), -1)
        return lo, hi


@dataclass(frozen=True)
class _RowOperand(_Blocks):
    """Blocks of S (``rows``) x W read out row by row.

    Fold ``(fc, fr)`` asks for block ``fc``'s rows ``fr*R .. fr*R+R-1`` in
    reverse order (SCALE-Sim flips them), one row per cycle.
    """

    r: int

    def positions(
        self, block: np.ndarray, rgroup: np.ndarray, u: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        wb = np.where(block == self.blocks - 1, self.w_last, self.w)
        rr = rgroup * self.r + (self.r - 1 - u)
        ok = (u < self.r) & (rr < self.rows)
        lo = block * self.rows * self.w + rr * wb
        return np.where(ok, lo, -1), np.where(ok, lo + wb - 1, -1)


def _positions(op: Any, block: np.ndarray, rgroup: np.ndarray | None, u: np.ndarray):
    """Valid prefetch positions (first, last) each row asks for, -1 for none."""
    if isinstance(op, _DiagOperand):
        return op.positions(block, u)
    return op.positions(block, rgroup, u)


def _operands(sr: int, sc: int, t: int, r: int, c: int, df: str) -> tuple[Any, Any]:
    row_fold, col_fold = _cdiv(sr, r), _cdiv(sc, c)
    r_last = sr - (row_fold - 1) * r
    c_last = sc - (col_fold - 1) * c
    if df == "os":
        ifm = _DiagOperand(blocks=row_fold, rows=t, w=r, w_last=r_last, prefix=0)
        fil = _DiagOperand(blocks=col_fold, rows=t, w=c, w_last=c_last, prefix=0)
    elif df == "ws":
        ifm = _DiagOperand(blocks=row_fold, rows=t, w=r, w_last=r_last, prefix=r)
        fil = _RowOperand(blocks=col_fold, rows=sr, w=c, w_last=c_last, r=r)
    else:
        ifm = _RowOperand(blocks=col_fold, rows=sr, w=c, w_last=c_last, r=r)
        fil = _DiagOperand(blocks=row_fold, rows=t, w=r, w_last=r_last, prefix=r)
    return ifm, fil


# --------------------------------------------------------------------------
# The read buffer: hashed-line window, slides, DRAM prefetch times.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Buffer:
    eps: int  # words per hashed line
    n: int  # hashed lines
    a: int  # lines in the active window
    p: int  # lines the window slides per prefetch
    first_words: int  # DRAM words of the initial fill
    words_per_slide: int  # DRAM words per prefetch
    cycles_per_slide: int  # cycles between prefetch completions


def _buffer(sram_kb: float, bw_words: float, valid_words: int, fetch_words: int) -> _Buffer:
    total = int(math.floor(sram_kb * 1024))
    bw = int(bw_words)
    active = int(math.ceil(total * _ACTIVE_FRAC))
    prefetch = total - active
    eps = int(math.ceil(total / _LINES_PER_SRAM))
    n = valid_words // eps + 1  # the last (maybe empty) line counts too
    a = min(int(math.ceil(active / eps)), n)
    p = min(int(math.ceil(prefetch / eps)), n - a)
    first_rows = min(int(math.ceil(active / bw)), int(math.ceil(fetch_words / bw)))
    slide_rows = int(math.ceil(prefetch / bw))
    return _Buffer(eps, n, a, p, first_rows * bw, slide_rows * bw, slide_rows + 1)


class _Window:
    """The circular window of one read buffer (its start line), over lines."""

    def __init__(self, buf: _Buffer) -> None:
        self.buf = buf
        self.s = 0

    def slides(self, lo: np.ndarray, hi: np.ndarray, row0: int) -> list[int]:
        """Rows (offset by ``row0``) at which the window slides, one entry per slide."""
        buf = self.buf
        valid = lo >= 0
        idx = np.flatnonzero(valid)
        if idx.size == 0 or buf.a >= buf.n or buf.p == 0:
            return []
        llo = lo[idx] // buf.eps
        lhi = hi[idx] // buf.eps
        # Rows asking for the same lines as the row before cannot miss again,
        # unless the row spans two lines (then the slide for the second line
        # may have evicted the first).
        change = np.ones(idx.size, dtype=bool)
        change[1:] = (llo[1:] != llo[:-1]) | (lhi[1:] != lhi[:-1])
        change |= llo != lhi
        keep = np.flatnonzero(change)
        n, a, p = buf.n, buf.a, buf.p
        s = self.s
        out: list[int] = []
        rows = (idx[keep] + row0).tolist()
        for row, l0, l1 in zip(rows, llo[keep].tolist(), lhi[keep].tolist(), strict=True):
            for line in range(l0, l1 + 1):
                while True:
                    e = (s + a) % n
                    if (s <= line < e) if s < e else (line >= s or line < e):
                        break
                    s = (s + p) % n
                    out.append(row)
        self.s = s
        return out


# --------------------------------------------------------------------------
# Convolution ifmaps: the im2col matrix repeats input words, and SCALE-Sim's
# window hits a word if any copy of it is in the window.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvShape:
    """A convolution in SCALE-Sim's terms (pre-padded ifmap, one stride)."""

    ifmap_h: int
    ifmap_w: int
    filt_h: int
    filt_w: int
    channels: int
    num_filters: int
    stride: int


def _ifmap_addr(conv: ConvShape, pixel: np.ndarray, kidx: np.ndarray) -> np.ndarray:
    """SCALE-Sim's ifmap word address (operand_matrix.calc_ifmap_elem_addr); -1 outside.

    Evaluated on the (small) pixel and window-index axes, then gathered.
    """
    ow = -((-(conv.ifmap_w - conv.filt_w + conv.stride)) // conv.stride)
    pix = np.arange(int(pixel.max()) + 1)
    o_row, o_col = np.divmod(pix, ow)
    i_row, i_col = o_row * conv.stride, o_col * conv.stride
    kid = np.arange(int(kidx.max()) + 1)
    c_row, kk = np.divmod(kid, conv.filt_w * conv.channels)
    c_col, c_ch = np.divmod(kk, conv.channels)
    # rows/cols beyond the ifmap -> -1; encode "room left" so one compare per axis
    p_base = (i_row * conv.ifmap_w + i_col) * conv.channels
    k_off = (c_row * conv.ifmap_w + c_col) * conv.channels + c_ch
    ok = (c_row[kidx] + i_row[pixel] < conv.ifmap_h) & (c_col[kidx] + i_col[pixel] < conv.ifmap_w)
    return np.where(ok, p_base[pixel] + k_off[kidx], -1)


def _conv_ifmap_sequence(conv: ConvShape, op: Any, df: str) -> np.ndarray:
    """The ifmap's prefetch matrix in order (with -1 for padding and holes)."""
    if isinstance(op, _DiagOperand):
        B, T, W = op.blocks, op.rows, op.w
        rt = B * T
        rr = np.arange(rt)[:, None]
        cc = np.arange(W)[None, :]
        b, tt = np.divmod(rr, T)
        if df == "os":  # block rows = window index, columns = pixels of the fold
            pixel, kidx = b * W + cc, np.broadcast_to(tt, (rt, W))
        else:  # ws: block rows = pixels, columns = window index of the fold
            pixel, kidx = np.broadcast_to(tt, (rt, W)), b * W + cc
        pad = (b == B - 1) & (cc >= op.w_last)
        val = np.where(pad, -1, _ifmap_addr(conv, np.where(pad, 0, pixel), np.where(pad, 0, kidx)))
        d = rr + cc
        pos = _tri(d, W) - _tri(d - rt, W) + cc - np.maximum(0, d - rt + 1)
        seq = np.empty(rt * W, dtype=np.int64)
        seq[pos.ravel()] = val.ravel()
        return seq
    # row-major blocks (is): block fc, rows = window index, columns = pixels
    B, S, W = op.blocks, op.rows, op.w
    bb = np.arange(B)[:, None, None]
    rr = np.arange(S)[None, :, None]
    cc = np.arange(W)[None, None, :]
    pad = np.broadcast_to((bb == B - 1) & (cc >= op.w_last), (B, S, W))
    pixel = np.broadcast_to(bb * W + cc, (B, S, W))
    kidx = np.broadcast_to(rr, (B, S, W))
    val = np.where(pad, -1, _ifmap_addr(conv, np.where(pad, 0, pixel), kidx))
    return val.ravel()


def _all_positions(op: Any, block: np.ndarray, rgroup: np.ndarray, u: np.ndarray):
    """Like ``positions`` but counting padding cells (index into the sequence)."""
    if isinstance(op, _DiagOperand):
        ok, c_lo, c_hi, _d, first = op.diagonal(block, u)
        return np.where(ok, first + c_lo, -1), np.where(ok, first + c_hi, -1)
    wb = np.where(block == op.blocks - 1, op.w_last, op.w)
    rr = rgroup * op.r + (op.r - 1 - u)
    ok = (u < op.r) & (rr < op.rows)
    lo = block * op.rows * op.w + rr * op.w
    return np.where(ok, lo, -1), np.where(ok, lo + wb - 1, -1)


class _ConvWindow(_Window):
    """The window of a conv ifmap buffer: a word hits if any copy of it is in it.

    Rows whose words all lie in the window are settled from their first and
    last line; the others are checked word by word against every copy of each
    word (they are the few rows near the window's edges).
    """

    def __init__(self, buf: _Buffer, seq: np.ndarray) -> None:
        super().__init__(buf)
        self.seq = seq
        valid = seq >= 0
        self.valid = valid
        vpos = np.cumsum(valid) - 1
        line = np.where(valid, vpos // buf.eps, -1)
        self.line = line
        # next / previous valid index, to find each row's first and last word
        idx = np.arange(seq.size)
        self.nxt = np.minimum.accumulate(np.where(valid, idx, seq.size)[::-1])[::-1]
        self.prv = np.maximum.accumulate(np.where(valid, idx, -1))
        # every word's occurrence lines, grouped by address, as sorted
        # (address, line) keys: a word hits if a key of its address falls in
        # the window's line range
        vi = np.flatnonzero(valid)
        order = np.lexsort((line[vi], seq[vi]))
        self.big = buf.n + 1
        self.occ_key = seq[vi][order] * self.big + line[vi][order]
        self.cell_base = np.where(valid, seq, 0) * self.big

    def _hits(self, q0: int, q1: int) -> np.ndarray:
        n, a, s = self.buf.n, self.buf.a, self.s
        base = self.cell_base[q0:q1]
        e = (s + a) % n
        spans = ((s, e),) if s < e else ((s, n), (0, e))
        ok = ~self.valid[q0:q1]
        key = self.occ_key
        for x, y in spans:
            j = np.minimum(np.searchsorted(key, base + x), key.size - 1)
            ok = ok | ((key[j] >= base + x) & (key[j] < base + y))
        return ok

    def slides(self, lo: np.ndarray, hi: np.ndarray, row0: int) -> list[int]:
        buf = self.buf
        if buf.a >= buf.n or buf.p == 0:
            return []
        n, a, p = buf.n, buf.a, buf.p
        rows = np.flatnonzero(lo >= 0)
        first = self.nxt[lo[rows]]
        last = self.prv[hi[rows]]
        has = first <= hi[rows]
        rows, first, last = rows[has], first[has], last[has]
        l0 = self.line[first].tolist()
        l1 = self.line[last].tolist()
        lo_l, hi_l = lo.tolist(), hi.tolist()
        out: list[int] = []
        for row, x0, x1 in zip(rows.tolist(), l0, l1, strict=True):
            s = self.s
            e = (s + a) % n
            if s < e:
                if s <= x0 < e and s <= x1 < e:
                    continue
            elif (x0 >= s or x0 < e) and (x1 >= s or x1 < e):
                continue
            q0, q1 = lo_l[row], hi_l[row] + 1
            while q0 < q1:
                miss = np.flatnonzero(~self._hits(q0, q1))
                if miss.size == 0:
                    break
                q = q0 + int(miss[0])
                while not self._hits(q, q + 1)[0]:
                    self.s = (self.s + p) % n
                    out.append(row + row0)
                q0 = q + 1
        return out


class _WriteBuffer:
    """SCALE-Sim's ofmap write buffer (memory/write_buffer.py), event by event.

    Words are stored as the array writes them; when more than half the buffer
    is used and no drain is running, the oldest ``ceil(half / bw)`` lines are
    drained to DRAM, one line per cycle (the partly filled line is closed
    first, and its padding is counted as drained). A word that finds the
    buffer full while a drain runs stalls the array until the drain ends.
    Rows that can neither start a drain nor stall are skipped in bulk.
    """

    def __init__(self, writes_cum: np.ndarray, sram_kb: float, bw_words: float) -> None:
        self.w = writes_cum  # w[r] = words written by rows < r
        self.n_rows = writes_cum.size - 1
        total = int(math.floor(sram_kb * 1024))
        self.total = total
        self.active = int(math.ceil(total * _ACTIVE_FRAC))
        self.bw = int(bw_words)
        self.drain_lines = int(math.ceil((total - self.active) / self.bw))
        self.free = total
        self.drain_end = 0
        self.row = 0  # rows < self.row are stored
        self.pending = 0  # words since the last closed partial line
        self.lines: list[list[int]] = []  # [count, words per line] runs, oldest first
        self.dram_words = 0

    def _row_of(self, k: int) -> int:
        """Row that writes the k-th word (1-based)."""
        return int(np.searchsorted(self.w, k)) - 1

    def next_row(self, stall: int) -> int:
        """First row at or after ``self.row`` that can start a drain or stall."""
        e = int(self.w[self.row])
        if e >= int(self.w[-1]):
            return self.n_rows
        k_a = e + max(1, self.free - self.active + 1)
        r_a = self._row_of(k_a) if k_a <= int(self.w[-1]) else self.n_rows
        if r_a >= self.n_rows:
            return self.n_rows
        if r_a + stall >= self.drain_end:
            return r_a
        k_b = e + max(1, self.free)
        r_b = self._row_of(k_b) if k_b <= int(self.w[-1]) else self.n_rows
        x = max(r_a, self.drain_end - stall)
        r_c = (
            self._row_of(int(self.w[x]) + 1)
            if x < self.n_rows and self.w[x] < self.w[-1]
            else self.n_rows
        )
        return min(r_b, r_c)

    def _store(self, words: int) -> None:
        self.free -= words
        self.pending += words

    def advance_to(self, row: int) -> None:
        if row > self.row:
            self._store(int(self.w[row] - self.w[self.row]))
            self.row = row

    def _close_lines(self) -> None:
        full, part = divmod(self.pending, self.bw)
        if full:
            self.lines.append([full, self.bw])
        if part:
            self.lines.append([1, part])
        self.pending = 0

    def _drain(self, start: int) -> int:
        """Drain the oldest lines from cycle ``start``; returns the last cycle."""
        want, taken, last = self.drain_lines, 0, self.bw
        while want and self.lines:
            cnt, size = self.lines[0]
            t = min(cnt, want)
            taken += t
            want -= t
            last = size
            if t == cnt:
                self.lines.pop(0)
            else:
                self.lines[0][0] -= t
        data = taken * self.bw - (self.bw - last)
        self.free += data
        self.dram_words += data
        return start + taken - 1

    def process_row(self, row: int, c: int) -> int:
        """Store row ``row``'s words at cycle ``c``; returns its stall."""
        self.advance_to(row)
        cur = c
        for _ in range(int(self.w[row + 1] - self.w[row])):
            self._store(1)
            if cur < self.drain_end:
                if self.free <= 0:
                    cur = self.drain_end
            elif self.free < self.active:
                self._close_lines()
                self.drain_end = self._drain(cur)
        self.row = row + 1
        return cur - c

    def finish(self) -> int:
        """DRAM words written, including the final flush of the buffer."""
        self.advance_to(self.n_rows)
        self._close_lines()
        while self.lines:
            self._drain(0)
        return self.dram_words


def _ofmap_writes_cum(
    df: str, sr: int, sc: int, t: int, r: int, c: int, fold_rows: int, n_rows: int
) -> np.ndarray:
    """Words the array writes per row (SCALE-Sim's skewed ofmap demand), cumulated."""
    row_fold = _cdiv(sr, r)
    i = np.arange(n_rows, dtype=np.int64)
    f, u = np.divmod(i, fold_rows)
    fc, fr = np.divmod(f, row_fold)
    cu = np.minimum(c, sc - fc * c)
    if df == "os":
        lo = t - 1 + (r - np.minimum(r, sr - fr * r))
        hi = t + r - 2
    else:
        lo = np.full_like(u, 2 * r - 1)
        hi = 2 * r + t - 2
    cnt = np.maximum(0, np.minimum(cu - 1, u - lo) - np.maximum(0, u - hi) + 1)
    out = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(cnt, out=out[1:])
    return out


def _stalls(
    ev_if: np.ndarray,
    ev_f: np.ndarray,
    d_if: int,
    d_f: int,
    compat: bool,
    n_rows: int,
    wbuf: _WriteBuffer | None = None,
) -> tuple[int, int | None]:
    """(total stall cycles, cycle of the last row's ofmap write if that row stalled).

    Mirrors double_buffered_scratchpad.service_memory_requests: at array row
    i (cycle c = i + stalls so far) slide k of a read operand is ready at
    k*d - 1 (the initial fill completes at cycle -1), the ofmap write buffer
    may stall the row, and the row waits for the slowest of the three.
    """
    k_if = np.arange(1, ev_if.size + 1)
    k_f = np.arange(1, ev_f.size + 1)
    rows = np.concatenate([ev_if, ev_f])
    ready = np.concatenate([k_if * d_if - 1, k_f * d_f - 1])
    which = np.concatenate([np.zeros(ev_if.size, np.int8), np.ones(ev_f.size, np.int8)])
    order = np.lexsort((ready, which, rows))
    rows, ready, which = rows[order].tolist(), ready[order].tolist(), which[order].tolist()
    stall = 0
    last_out = None
    i = 0
    n = len(rows)
    while True:
        next_read = rows[i] if i < n else None
        next_of = wbuf.next_row(stall) if wbuf is not None else None
        if next_of is not None and next_of >= wbuf.n_rows:
            next_of = None
        if next_read is None and next_of is None:
            break
        row = min(x for x in (next_read, next_of) if x is not None)
        c = row + stall
        worst = 0
        for op in (0, 1):
            out = c + 1  # hit latency 1
            seen = False
            while i < n and rows[i] == row and which[i] == op:
                seen = True
                gap = ready[i] - out
                if compat:
                    # SCALE-Sim: offset += gap; if gap > 0: offset += gap
                    out = out + gap + (gap if gap > 0 else 0)
                else:
                    out = max(out, ready[i])
                i += 1
            if seen:
                worst = max(worst, out - c - 1)
        of_stall = wbuf.process_row(row, c) if wbuf is not None else 0
        worst = max(worst, of_stall)
        if row == n_rows - 1:
            last_out = c + of_stall
        stall += worst
    return stall, last_out


@dataclass(frozen=True)
class ReadSchedule:
    """When SCALE-Sim's read buffers fetch from DRAM, for one layer.

    ``*_slides`` hold the array row (of demand, stall-free) at which each
    window slide is asked for, in order; slide ``k`` (1-based) completes
    ``k * *_slide_cycles - 1`` cycles after the start, as SCALE-Sim chains its
    prefetches back to back whether or not they are needed yet. The initial
    fill of each buffer (``*_fill_words``) is done before row 0.
    """

    demand_rows: int
    fold_rows: int
    ifmap_slides: np.ndarray
    filter_slides: np.ndarray
    ifmap_slide_cycles: int
    filter_slide_cycles: int
    ifmap_slide_words: int
    filter_slide_words: int
    ifmap_fill_words: int
    filter_fill_words: int


def _check_layer(m: int, n: int, k: int, conv: ConvShape | None) -> None:
    for name, v in (("M", m), ("N", n), ("K", k)):
        if int(v) < 1:
            raise SystolicError(f"{name} must be >= 1, got {v}")
    if conv is not None:
        lowered = tuple(int(v) for v in conv_to_gemm(*asdict(conv).values()))
        if lowered != (int(m), int(n), int(k)):
            raise SystolicError(
                f"M, N, K = {m}, {n}, {k} do not match the convolution, which lowers to {lowered}"
            )


def read_schedule(
    m: int, n: int, k: int, cfg: ArrayConfig, *, conv: ConvShape | None = None
) -> ReadSchedule:
    """The DRAM prefetches of SCALE-Sim's ifmap and filter buffers (see
    :class:`ReadSchedule`); ``conv`` as in :func:`predict_layer`."""
    _check_layer(m, n, k, conv)
    m, n, k = int(m), int(n), int(k)
    r, c, df = int(cfg.rows), int(cfg.cols), cfg.dataflow
    cf = closed_forms(m, n, k, r, c, df)
    sr, sc, t = int(cf["sr"]), int(cf["sc"]), int(cf["t"])
    row_fold = int(cf["row_fold"])
    fold_rows, n_rows = int(cf["fold_rows"]), int(cf["demand_rows"])
    if n_rows > MAX_DEMAND_ROWS:
        raise SystolicError(
            f"layer M={m} N={n} K={k} on a {r}x{c} {df} array needs {n_rows} array rows; "
            f"the memory model walks them and accepts at most {MAX_DEMAND_ROWS}"
        )
    ifm, fil = _operands(sr, sc, t, r, c, df)
    b_if = _buffer(cfg.ifmap_sram_kb, cfg.ifmap_dram_bw_words, ifm.valid_words, ifm.fetch_words)
    b_f = _buffer(cfg.filter_sram_kb, cfg.filter_dram_bw_words, fil.valid_words, fil.fetch_words)
    slides_if = b_if.a < b_if.n and b_if.p > 0
    slides_f = b_f.a < b_f.n and b_f.p > 0
    if conv is not None and slides_if:
        seq = _conv_ifmap_sequence(conv, ifm, df)
        if_valid = int((seq >= 0).sum())
        b_if = _buffer(cfg.ifmap_sram_kb, cfg.ifmap_dram_bw_words, if_valid, ifm.fetch_words)
        win_if: _Window = _ConvWindow(b_if, seq)
        if_pos = _all_positions
    else:
        win_if = _Window(b_if)
        if_pos = _positions
    win_f = _Window(b_f)
    ev_if: list[int] = []
    ev_f: list[int] = []
    # rows in chunks of whole folds, so memory stays bounded on huge layers
    chunk = max(fold_rows, (_CHUNK_ROWS // fold_rows) * fold_rows)
    for row0 in range(0, n_rows if slides_if or slides_f else 0, chunk):
        i = np.arange(row0, min(n_rows, row0 + chunk), dtype=np.int64)
        f, u = np.divmod(i, fold_rows)
        fc, fr = np.divmod(f, row_fold)
        if df == "os":
            lo_if, hi_if = if_pos(ifm, fr, None, u)
            lo_f, hi_f = _positions(fil, fc, None, u)
        elif df == "ws":
            lo_if, hi_if = if_pos(ifm, fr, None, u)
            lo_f, hi_f = _positions(fil, fc, fr, u)
        else:
            lo_if, hi_if = if_pos(ifm, fc, fr, u)
            lo_f, hi_f = _positions(fil, fr, None, u)
        ev_if += win_if.slides(lo_if, hi_if, row0)
        ev_f += win_f.slides(lo_f, hi_f, row0)
    return ReadSchedule(
        demand_rows=n_rows,
        fold_rows=fold_rows,
        ifmap_slides=np.asarray(ev_if, dtype=np.int64),
        filter_slides=np.asarray(ev_f, dtype=np.int64),
        ifmap_slide_cycles=b_if.cycles_per_slide,
        filter_slide_cycles=b_f.cycles_per_slide,
        ifmap_slide_words=b_if.words_per_slide,
        filter_slide_words=b_f.words_per_slide,
        ifmap_fill_words=b_if.first_words,
        filter_fill_words=b_f.first_words,
    )


def predict_layer(
    m: int,
    n: int,
    k: int,
    cfg: ArrayConfig,
    *,
    scalesim_compat: bool = True,
    conv: ConvShape | None = None,
) -> SystolicResult:
    """SCALE-Sim's report for one GEMM C[m,n] = A[m,k] B[k,n] on ``cfg``.

    For a convolution pass ``conv`` as well (``m, n, k`` from
    :func:`conv_to_gemm`): its ifmap words repeat, and a word is found in the
    SRAM window if any copy of it is there.
    """
    rs = read_schedule(m, n, k, cfg, conv=conv)
    m, n, k = int(m), int(n), int(k)
    r, c, df = int(cfg.rows), int(cfg.cols), cfg.dataflow
    cf = closed_forms(m, n, k, r, c, df, scalesim_compat)
    sr, sc, t = int(cf["sr"]), int(cf["sc"]), int(cf["t"])
    n_rows = rs.demand_rows
    wcum = _ofmap_writes_cum(df, sr, sc, t, r, c, rs.fold_rows, n_rows)
    wbuf = _WriteBuffer(wcum, cfg.ofmap_sram_kb, cfg.ofmap_dram_bw_words)
    stall, last = _stalls(
        rs.ifmap_slides,
        rs.filter_slides,
        rs.ifmap_slide_cycles,
        rs.filter_slide_cycles,
        scalesim_compat,
        n_rows,
        wbuf,
    )
    # SCALE-Sim's total is the cycle of the last row's ofmap write
    total = n_rows - 1 + stall if last is None else last
    dram_of = wbuf.finish()
    macs = m * n * k
    return SystolicResult(
        total_cycles=int(total),
        stall_cycles=int(stall),
        compute_cycles_no_stall=n_rows - 1,
        compute_util_pct=float(cf["compute_util_pct"]),
        overall_util_pct=100.0 * macs / (total * r * c),
        mapping_eff_pct=float(cf["mapping_eff_pct"]),
        macs=macs,
        folds=int(cf["folds"]),
        sram_ifmap_reads=int(cf["sram_ifmap_reads"]),
        sram_filter_reads=int(cf["sram_filter_reads"]),
        sram_ofmap_writes=int(cf["sram_ofmap_writes"]),
        dram_ifmap_reads=rs.ifmap_fill_words + rs.ifmap_slides.size * rs.ifmap_slide_words,
        dram_filter_reads=rs.filter_fill_words + rs.filter_slides.size * rs.filter_slide_words,
        dram_ofmap_writes=dram_of,
    )


#: the SRAM and DRAM access counts (words) among the columns of
#: :func:`predict_many`
ACCESS_FIELDS = (
    "sram_ifmap_reads",
    "sram_filter_reads",
    "sram_ofmap_writes",
    "dram_ifmap_reads",
    "dram_filter_reads",
    "dram_ofmap_writes",
)

#: the per-layer output columns of :func:`predict_many`, in order
RESULT_FIELDS = (
    "total_cycles",
    "stall_cycles",
    "compute_cycles_no_stall",
    "compute_util_pct",
    "overall_util_pct",
    "mapping_eff_pct",
    *ACCESS_FIELDS,
)


def predict_many(
    m: Any,
    n: Any,
    k: Any,
    cfgs: list[ArrayConfig],
    *,
    scalesim_compat: bool = True,
    convs: list[ConvShape | None] | None = None,
) -> dict[str, np.ndarray]:
    """:func:`predict_layer` for many layers; returns one array per field.

    ``convs[i]`` is the :class:`ConvShape` of layer i when it is a
    convolution (None for a GEMM).

    The stall-free numbers are evaluated as numpy closed forms over all
    layers at once; the memory model (an event loop per layer) runs layer by
    layer, and only walks the array rows of operands that do not fit the
    active half of their SRAM.
    """
    m, n, k = (np.atleast_1d(np.asarray(v, dtype=np.int64)) for v in (m, n, k))
    if not (m.size == n.size == k.size == len(cfgs)):
        raise SystolicError(
            f"M, N, K and the configurations must have one entry per layer, "
            f"got {m.size}, {n.size}, {k.size} and {len(cfgs)}"
        )
    for name, v in (("M", m), ("N", n), ("K", k)):
        if (v < 1).any():
            raise SystolicError(f"{name} must be >= 1, got {int(v[v < 1][0])}")
    rows = np.array([c.rows for c in cfgs], dtype=np.int64)
    cols = np.array([c.cols for c in cfgs], dtype=np.int64)
    df = np.array([c.dataflow for c in cfgs])
    cf = closed_forms(m, n, k, rows, cols, df, scalesim_compat)
    n_layers = m.size
    out = {f: np.zeros(n_layers, dtype=float) for f in RESULT_FIELDS}
    if convs is not None and len(convs) != n_layers:
        raise SystolicError(f"convs must have one entry per layer, got {len(convs)} for {n_layers}")
    total = np.zeros(n_layers)
    stall = np.zeros(n_layers)
    dram_if, dram_f, dram_of = np.zeros(n_layers), np.zeros(n_layers), np.zeros(n_layers)
    for i in range(n_layers):
        try:
            res = predict_layer(
                int(m[i]),
                int(n[i]),
                int(k[i]),
                cfgs[i],
                scalesim_compat=scalesim_compat,
                conv=None if convs is None else convs[i],
            )
        except SystolicError as exc:
            err = SystolicError(f"layer {i}: {exc.message}")
            err.layer_index = i
            raise err from None
        total[i], stall[i] = res.total_cycles, res.stall_cycles
        dram_if[i], dram_f[i], dram_of[i] = (
            res.dram_ifmap_reads,
            res.dram_filter_reads,
            res.dram_ofmap_writes,
        )
    out["total_cycles"] = total
    out["stall_cycles"] = stall
    out["compute_cycles_no_stall"] = cf["compute_cycles_no_stall"].astype(float)
    out["compute_util_pct"] = cf["compute_util_pct"]
    out["overall_util_pct"] = 100.0 * cf["macs"] / (total * rows * cols)
    out["mapping_eff_pct"] = cf["mapping_eff_pct"]
    for f in ("sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes"):
        out[f] = cf[f].astype(float)
    out["dram_ifmap_reads"] = dram_if
    out["dram_filter_reads"] = dram_f
    out["dram_ofmap_writes"] = dram_of
    return out


def config_from_row(row: Mapping[str, Any]) -> ArrayConfig:
    """An :class:`ArrayConfig` from a reference.csv-style record."""
    return ArrayConfig(
        rows=int(row["array_rows"]),
        cols=int(row["array_cols"]),
        dataflow=str(row["dataflow"]).strip().lower(),
        ifmap_sram_kb=float(row["ifmap_sram_kb"]),
        filter_sram_kb=float(row["filter_sram_kb"]),
        ofmap_sram_kb=float(row["ofmap_sram_kb"]),
        ifmap_dram_bw_words=float(row["ifmap_dram_bw_words"]),
        filter_dram_bw_words=float(row["filter_dram_bw_words"]),
        ofmap_dram_bw_words=float(row["ofmap_dram_bw_words"]),
    )

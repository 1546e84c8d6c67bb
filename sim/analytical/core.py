"""The vectorised analytical cost model: arrays in, arrays out.

Every quantity has a leading batch axis ``N`` (one row per (mapping,
hardware) point). The formulas are documented in ``docs/analytical-model.md``;
in short, for a tensor ``t`` whose tile at child level ``c`` is filled from
its parent level ``p`` (the nearest outer level keeping ``t``):

* ``F``  = elements of the tile at ``c`` (1 at the compute units),
* ``R``  = temporal refetches = product of the temporal loops above ``c``,
  outermost first, up to the innermost loop that indexes ``t`` (loops
  irrelevant to ``t`` below it keep the tile stationary). At the compute
  units every temporal loop counts (no operand registers are modelled).
* ``S``  = spatial instances of ``c`` = product of spatial factors above ``c``,
* ``MC`` = multicast (inputs) or spatial reduction (outputs) = product of the
  spatial factors between ``p`` and ``c`` over ranks that do not index ``t``,
* parent transfers = ``F * R * S / MC``; child fills = ``F * R * S``.

Outputs additionally read partial sums back: ``F * (R - Dist) * S / MC``
where ``Dist`` is the product of the relevant temporal loops above ``c``
(the number of distinct output tiles, each first written without a read).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.analytical.compile import Hardware, Structure, array_skew
from sim.analytical.words import round_up_factors


def _snap(x: np.ndarray) -> np.ndarray:
    """Round counts that exp(sum(log)) left a few ulps off an integer.

    With integer factors every count is an integer: ``F*R*S/MC`` and
    ``F*D*S/MC`` divide exactly because the multicast factors are among the
    spatial factors in ``S``.
    """
    return np.rint(x, out=x)


@dataclass(eq=False)
class _Mats:
    """Per-structure matrices of the vectorised path (cached on the Structure)."""

    t_idx: np.ndarray
    c_idx: np.ndarray
    rel_l: np.ndarray  # [np, L] float: loop (level, rank) is above c and indexes t
    rel_mask: np.ndarray  # [np, L] bool: rel_l as a mask
    mc_l: np.ndarray  # [np, L] float: multicast / spatial-reduction loops
    at_compute: np.ndarray  # [np] bool
    m_read: np.ndarray  # [4*np, nl*nt]: (xfer, fills, xfer_refill, fills_refill) -> reads
    m_write: np.ndarray
    m_update: np.ndarray
    byte_l: np.ndarray  # [nl*nt, nl]: element counts -> bytes per level


def _mats(st: Structure) -> _Mats:
    cached = getattr(st, "_mats", None)
    if cached is not None:
        return cached
    nl, nr, nt = len(st.levels), len(st.ranks), len(st.tensors)
    np_ = len(st.pairs)
    L = nl * nr
    rel_l = st.rel_above.reshape(np_, L).astype(float)
    mc_l = st.mc_mask.reshape(np_, L).astype(float)
    m_read = np.zeros((4 * np_, nl * nt))
    m_write = np.zeros((4 * np_, nl * nt))
    m_update = np.zeros((4 * np_, nl * nt))
    xfer, fills, xref, fref = (np.arange(np_) + i * np_ for i in range(4))
    for k, (t, c, p) in enumerate(st.pairs):
        pt, ct = p * nt + t, c * nt + t
        if not st.is_output[t]:
            m_read[xfer[k], pt] += 1
            if c < nl:
                m_write[fills[k], ct] += 1
        elif c == nl:
            m_update[xref[k], pt] += 1
            m_write[xfer[k], pt] += 1
            m_write[xref[k], pt] -= 1
        else:
            m_write[xfer[k], pt] += 1
            m_read[xref[k], pt] += 1
            m_read[fills[k], ct] += 1
            m_write[fref[k], ct] += 1
    byte_l = np.zeros((nl * nt, nl))
    for lv in range(nl):
        for t in range(nt):
            byte_l[lv * nt + t, lv] = st.bits[t] / 8.0
    mats = _Mats(
        t_idx=np.array([p[0] for p in st.pairs], dtype=int),
        c_idx=np.array([p[1] for p in st.pairs], dtype=int),
        rel_l=rel_l,
        rel_mask=rel_l > 0,
        mc_l=mc_l,
        at_compute=np.array([p[1] == nl for p in st.pairs]),
        m_read=m_read,
        m_write=m_write,
        m_update=m_update,
        byte_l=byte_l,
    )
    st._mats = mats  # type: ignore[attr-defined]
    return mats


def _moves(
    st: Structure,
    hw: Hardware,
    q: np.ndarray,
    log_r: np.ndarray,
    inst_used: np.ndarray,
    log_iters: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """``[N, nl]`` cycles of the tile moves between each level and its parent
    (each move as long as its slower side), of one tile of each tensor, and
    of one write-back of the output tiles that change at every iteration of
    the loops above the level (``log_iters[:, c]``: their log count); and
    the bytes each level's own port reads and writes for the moves."""
    nl = len(st.levels)
    np_ = len(st.pairs)
    rbw = np.asarray(hw.rbw, dtype=float)
    wbw = np.where(st.shared_bw, rbw, hw.wbw)
    n = max(q.shape[0], rbw.shape[0])
    moves = np.zeros((n, nl))
    first = np.zeros((n, nl))
    wb_each = np.zeros((n, nl))
    moved_rd = np.zeros((n, nl))  # bytes the level's own port reads / writes for them
    moved_wr = np.zeros((n, nl))
    byte_w = st.bits / 8.0

    def cyc(elems: np.ndarray, b: float, lv: int, bw: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(elems > 0, elems * b / (inst_used[:, lv] * bw[:, lv]), 0.0)

    for k, (t, c, p) in enumerate(st.pairs):
        if c >= nl:
            continue
        b = float(byte_w[t])
        xfer, fills, xref, fref = (q[:, k + i * np_] for i in range(4))
        if not st.is_output[t]:
            mv = np.maximum(cyc(xfer, b, p, rbw), cyc(fills, b, c, wbw))
            moved_wr[:, c] += fills * b
        else:
            moved_rd[:, c] += fills * b
            moved_wr[:, c] += fref * b
            mv = np.maximum(cyc(fills, b, c, rbw), cyc(xfer, b, p, wbw)) + np.maximum(
                cyc(xref, b, p, rbw), cyc(fref, b, c, wbw)
            )
            each = log_r[:, k] >= log_iters[:, c] - 1e-9
            wb_each[:, c] += np.where(each, mv * np.exp(-log_r[:, k]), 0.0)
        moves[:, c] += mv
        first[:, c] += mv * np.exp(-log_r[:, k])
    return moves, first, wb_each, moved_rd, moved_wr


def _resident_footprint(
    st: Structure, tile: np.ndarray, logt: np.ndarray, f_child: np.ndarray
) -> np.ndarray:
    """``f_child`` with each pair's child tile widened by the loops above it
    that the tile also spans (``Structure.resident``)."""
    n = tile.shape[0]
    nl, nr, nt = len(st.levels), len(st.ranks), len(st.tensors)
    np_ = len(st.pairs)
    ex = st.resident.reshape(np_, nl * nr).astype(float)  # type: ignore[union-attr]
    log_ex = (logt[:, None, :] * ex[None]).reshape(n, np_, nl, nr).sum(axis=2)
    c_idx = np.array([p[1] for p in st.pairs], dtype=int)
    t_idx = np.array([p[0] for p in st.pairs], dtype=int)
    tile_p = tile[:, c_idx, :] * np.exp(log_ex)  # [N, np, nr]
    ext = np.minimum(1.0 + (tile_p - 1.0) @ st.coef.T, st.full_ext)  # [N, np, nt*D]
    ext = ext.reshape(n, np_, nt, st.ndims)[:, np.arange(np_), t_idx, :]
    widened = ex.any(axis=1)[None, :]
    return np.where(widened, _snap(ext.prod(axis=2)), f_child)


def _network_energy(
    st: Structure, hw: Hardware, q: np.ndarray, refill_frac: np.ndarray, n: int
) -> np.ndarray:
    """``[N, nl]``: elements carried across each level's fan-out network
    (fills to the children; for outputs also the refills back down) times
    its energy per word (``StorageLevel.network_energy_pj_per_word``)."""
    nl, np_ = len(st.levels), len(st.pairs)
    if hw.net is None or not np.any(hw.net > 0):
        return np.zeros((n, nl))
    t_idx = np.array([p[0] for p in st.pairs], dtype=int)
    cross = np.zeros((np_, nl))
    for k, (_t, c, p) in enumerate(st.pairs):
        cross[k, p : min(c, nl)] = 1.0
    fills = q[:, np_ : 2 * np_]
    back = np.where(
        st.is_output[t_idx] & np.array([c < nl for _t, c, _p in st.pairs]), q[:, 3 * np_ :], 0.0
    )
    bits = st.bits[t_idx][None, :]
    return ((fills + back) * bits) @ cross * (hw.net / hw.word_bits)


def _round_up(
    st: Structure,
    hw: Hardware,
    f_child: np.ndarray,
    log_s_above: np.ndarray,
    log_mc: np.ndarray,
    partial: np.ndarray,
) -> np.ndarray:
    """``[N, 4*np]`` factors on (xfer, fills, xfer_refill, fills_refill):
    the parent side's rounding on xfer terms, the child side's on fills;
    ``partial`` ``[N, np]``: the pair moves partial sums (at psum width)."""
    nl = len(st.levels)
    mins, psum = hw.min_access_bits_t[0], hw.psum_bits_t[0]  # type: ignore[index]
    t_idx = np.array([p[0] for p in st.pairs], dtype=int)
    c_idx = np.array([p[1] for p in st.pairs], dtype=int)
    p_idx = np.array([p[2] for p in st.pairs], dtype=int)
    c_lv = np.minimum(c_idx, nl - 1)
    n_p = f_child * np.exp(log_s_above[:, c_idx] - log_s_above[:, p_idx] - log_mc)
    bits = st.bits[t_idx][None, :]
    part = partial & st.is_output[t_idx][None, :]
    bp = np.where(part, psum[p_idx, t_idx][None, :], bits)
    bc = np.where(part, psum[c_lv, t_idx][None, :], bits)
    gp = round_up_factors(n_p, bp, mins[p_idx, t_idx][None, :]) * bp / bits
    m_c = np.where(c_idx < nl, mins[c_lv, t_idx], 0.0)[None, :]
    gc = np.where(c_idx < nl, round_up_factors(f_child, bc, m_c) * bc / bits, 1.0)
    return np.concatenate([gp, gc, gp, gc], axis=1)


def evaluate_arrays(
    st: Structure,
    hw: Hardware,
    tf: np.ndarray,
    sf: np.ndarray,
    pos: np.ndarray,
    *,
    fill: bool = True,
    n_total: int | None = None,
) -> dict[str, np.ndarray]:
    """Evaluate N points. ``tf``, ``sf``, ``pos``: ``[N, nl, nr]`` or
    ``[1, nl, nr]`` (one mapping for N hardware points: the access counts
    are then computed once and only the hardware-dependent part runs N
    times; ``n_total`` gives N).

    Returns a dict of ``[N]`` arrays plus ``reads``/``writes``/``updates``
    ``[N, nl, nt]`` (elements) and ``transfer_cycles``/``level_energy_pj``
    ``[N, nl]``.
    """
    n, nl, nr = tf.shape
    big = max(n, n_total or 1)
    nt = len(st.tensors)
    L = nl * nr
    mt = _mats(st)
    logt = np.log(tf).reshape(n, L)
    logs = np.log(sf).reshape(n, L)
    fs = tf * sf
    # tile per instance at every level (and 1 at the compute units)
    tile = np.ones((n, nl + 1, nr))
    tile[:, :nl] = np.cumprod(fs[:, ::-1], axis=1)[:, ::-1]
    ext = 1.0 + (tile - 1.0) @ st.coef.T  # [N, nl+1, nt*D]
    np.minimum(ext, st.full_ext, out=ext)
    fp = ext.reshape(n, nl + 1, nt, st.ndims).prod(axis=3)  # [N, nl+1, nt]
    fp[:, nl, :] = 1.0

    t_idx, c_idx = mt.t_idx, mt.c_idx
    # --- temporal refetch with stationarity -------------------------------
    # loop j = (level, rank) sits at nest position gpos (outermost 0); the
    # log-factors laid out in nest order give prefix products by cumsum
    gpos = (pos + (np.arange(nl) * nr)[None, :, None]).reshape(n, L).astype(np.intp)
    nest = np.empty_like(logt)
    np.put_along_axis(nest, gpos, logt, axis=1)
    cum = np.concatenate([np.zeros((n, 1)), np.cumsum(nest, axis=1)], axis=1)  # [N, L+1]
    log_all_t = cum[:, L]
    # innermost relevant active loop above each child (-1: none), all pairs at once
    pos_active = np.where(logt > 0, gpos, -1).astype(np.int16)  # [N, L]
    pstar = np.where(mt.rel_mask[None], pos_active[:, None, :], np.int16(-1)).max(axis=2)
    log_r = np.take_along_axis(cum, pstar.astype(np.intp) + 1, axis=1)  # [N, np]
    # at the compute units every temporal loop counts
    # (an input a unit keeps in an operand register: only up to its
    # innermost indexing loop, as at any level)
    every = mt.at_compute & (st.is_output[mt.t_idx] | (not st.operand_registers))
    log_r[:, every] = log_all_t[:, None]
    log_dist = logt @ mt.rel_l.T  # [N, np]
    # --- spatial instances and multicast ---------------------------------
    log_s_lvl = logs.reshape(n, nl, nr).sum(axis=2)  # [N, nl]
    log_s_above = np.zeros((n, nl + 1))
    log_s_above[:, 1:] = np.cumsum(log_s_lvl, axis=1)
    log_mc = logs @ mt.mc_l.T  # [N, np]
    f_child = fp[:, c_idx, t_idx]  # [N, np]
    if st.resident is not None:
        f_child = _resident_footprint(st, tile, logt, f_child)
    fills = f_child * np.exp(log_r + log_s_above[:, c_idx])
    xfer = fills * np.exp(-log_mc)
    refill_frac = np.clip(1.0 - np.exp(log_dist - log_r), 0.0, None)
    q = _snap(np.concatenate([xfer, fills, xfer * refill_frac, fills * refill_frac], axis=1))
    reads = (q @ mt.m_read).reshape(n, nl, nt)
    writes = (q @ mt.m_write).reshape(n, nl, nt)
    updates = (q @ mt.m_update).reshape(n, nl, nt)
    # energy counts: rounded up to whole accesses (sim.analytical.words)
    e_reads, e_writes, e_updates = reads, writes, updates
    if hw.min_access_bits_t is not None:
        qe = q * _round_up(st, hw, f_child, log_s_above, log_mc, refill_frac > 0)
        e_reads = (qe @ mt.m_read).reshape(n, nl, nt)
        e_writes = (qe @ mt.m_write).reshape(n, nl, nt)
        e_updates = (qe @ mt.m_update).reshape(n, nl, nt)
    logt = logt.reshape(n, nl, nr)
    logs = logs.reshape(n, nl, nr)

    # --- transfer cycles per level ----------------------------------------
    byte_w = st.bits / 8.0
    rd_b = (reads + updates).reshape(n, nl * nt) @ mt.byte_l  # [N, nl]
    wr_b = (writes + updates).reshape(n, nl * nt) @ mt.byte_l
    inst_used = np.exp(log_s_above[:, :nl])
    with np.errstate(divide="ignore", invalid="ignore"):
        t_rd = np.where(rd_b > 0, rd_b / (inst_used * hw.rbw), 0.0)
        t_wr = np.where(wr_b > 0, wr_b / (inst_used * hw.wbw), 0.0)
        t_sh = np.where(rd_b + wr_b > 0, (rd_b + wr_b) / (inst_used * hw.rbw), 0.0)
    transfer = np.where(st.shared_bw, t_sh, np.maximum(t_rd, t_wr))

    # --- compute cycles -----------------------------------------------------
    cpp = 0.0
    for c in st.classes:
        cpp = cpp + st.weights[c] / hw.rate[c]
    cpp = np.asarray(cpp, dtype=float)
    t_all = _snap(np.exp(log_all_t))
    if st.array_level >= 0 and st.classes:
        a = st.array_level
        folds = _snap(np.exp(logt[:, : a + 1].sum(axis=(1, 2))))
        t_in = _snap(np.exp(logt[:, a + 1 :].sum(axis=(1, 2))))
        skew = array_skew(st.dataflow, hw.rows, hw.cols)
        # SCALE-Sim: every fold pays the full fill and drain, minus one cycle
        compute = folds * (t_in * cpp + skew) - 1.0
    else:
        compute = t_all * cpp
    compute = np.broadcast_to(compute, (big,)).astype(float)

    # --- latency, innermost level first -----------------------------------
    # a single-buffered level's tile moves add to the work below it; a
    # double-buffered level's overlap it, as a pipeline of its parent's
    # iterations: the first tiles in and the last out do not overlap when
    # the work below is the longer; when the parent levels' ports are, the
    # last iteration of the work below does not, except for what the
    # write-back of the iteration before it hides. Every port bounds it.
    log_iters = np.zeros((n, nl))  # loops above each level
    log_iters[:, 1:] = np.cumsum(logt.sum(axis=2), axis=1)[:, :-1]
    moves, first, wb_each, moved_rd, moved_wr = _moves(st, hw, q, log_r, inst_used, log_iters)
    # a level's port time without the tile moves to and from its parents
    with np.errstate(divide="ignore", invalid="ignore"):
        in_rd = np.maximum(rd_b - moved_rd, 0.0)
        in_wr = np.maximum(wr_b - moved_wr, 0.0)
        inner = np.where(
            st.shared_bw,
            np.where(in_rd + in_wr > 0, (in_rd + in_wr) / (inst_used * hw.rbw), 0.0),
            np.maximum(
                np.where(in_rd > 0, in_rd / (inst_used * hw.rbw), 0.0),
                np.where(in_wr > 0, in_wr / (inst_used * hw.wbw), 0.0),
            ),
        )
    cycles = compute
    inner_first = 0.0  # a single-buffered level's first tile, which a fill above overlaps
    for lv in range(nl - 1, 0, -1):
        if not st.db[lv]:
            cycles = np.maximum(cycles + moves[:, lv], transfer[:, lv])
            inner_first = inner_first + first[:, lv]
            continue
        below = np.maximum(cycles, inner[:, lv])
        if fill:
            tail = np.maximum(0.0, below * np.exp(-log_iters[:, lv]) - wb_each[:, lv])
            feed = transfer[:, list(st.parents[lv])].max(axis=1) if st.parents[lv] else 0.0
            head = first[:, lv] - np.minimum(inner_first, first[:, lv])
            cycles = np.maximum(np.maximum(below + head, feed + tail), transfer[:, lv])
            inner_first = 0.0
        else:
            cycles = np.maximum(np.maximum(below, moves[:, lv]), transfer[:, lv])
    cycles = np.maximum(cycles, transfer[:, 0])

    # --- energy --------------------------------------------------------------
    # [N|1, nl, nt]: the level's figures, or those of each tensor's memory
    er = hw.er[..., None] if hw.er_t is None else hw.er_t
    ew = hw.ew[..., None] if hw.ew_t is None else hw.ew_t
    wb = hw.word_bits[..., None] if hw.word_bits_t is None else hw.word_bits_t
    per_word = byte_w[None, None, :] * 8.0 / wb
    e_lvl = ((e_reads * er + e_writes * ew + e_updates * (er + ew)) * per_word).sum(
        axis=2
    )  # [N, nl]
    padded = _snap(np.exp(logt.sum(axis=(1, 2)) + logs.sum(axis=(1, 2))))
    e_comp = {c: padded * st.weights[c] * hw.epj[c] for c in st.classes}
    latency_s = cycles / hw.clock_hz
    static_w = hw.static_w + (hw.leak * hw.instances).sum(axis=-1) + hw.unit_leak_w
    e_static = static_w * latency_s * 1e12
    e_net = _network_energy(st, hw, q, refill_frac, n)
    energy = e_lvl.sum(axis=1) + e_net.sum(axis=1) + e_static
    for v in e_comp.values():
        energy = energy + v

    # --- utilisation and validity -----------------------------------------
    busy = st.iteration_points * cpp
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(cycles > 0, busy / (cycles * hw.pes), 0.0)
    need = (fp[:, :nl] * (st.keep[None] * byte_w)).sum(axis=2) * np.where(st.db, 2.0, 1.0)
    if hw.cap_t is None:  # every level is one memory
        cap_ok = (need <= hw.cap * (1 + 1e-12)).all(axis=1)
    else:  # each kept tile with the others its memory stores, against that memory
        need_t = fp[:, :nl] * (st.keep[None] * byte_w) * hw.buffers_t  # [N, nl, nt]
        shared = (need_t[:, :, :, None] * hw.same_t).sum(axis=2)  # [N, nl, nt]
        fits = (shared <= hw.cap_t * (1 + 1e-12)) | ~st.keep[None]
        cap_ok = fits.all(axis=(1, 2))
    s_lvl = np.exp(log_s_lvl)
    limit = np.where(
        st.limit_kind == 0, hw.fanout, np.where(st.limit_kind == 1, hw.pes[..., None], 1.0)
    )
    fan_ok = (s_lvl <= limit + 1e-9).all(axis=1) & (np.exp(log_s_lvl.sum(axis=1)) <= hw.pes + 1e-9)
    cover = np.exp(logt.sum(axis=1) + logs.sum(axis=1))  # [N, nr]
    cover_ok = (cover >= st.sizes - 1e-9).all(axis=1)

    def b(x, *tail: int) -> np.ndarray:
        return np.broadcast_to(x, (big, *tail))

    return {
        "cycles": b(cycles),
        "latency_s": b(latency_s),
        "energy_pj": b(energy),
        "compute_cycles": compute,
        "compute_energy_pj": {c: b(v) for c, v in e_comp.items()},
        "static_energy_pj": b(e_static),
        "level_energy_pj": b(e_lvl, nl),
        "transfer_cycles": b(transfer, nl),
        "reads": b(reads, nl, nt),
        "writes": b(writes, nl, nt),
        "updates": b(updates, nl, nt),
        "padded_macs": b(padded * st.weights.get("mac", 0)),
        "macs": np.full(big, st.iteration_points * st.weights.get("mac", 0)),
        "padded_points": b(padded),
        "utilization": np.clip(b(util), 0.0, 1.0),
        "valid": b(cap_ok & fan_ok & cover_ok),
        "capacity_need_bytes": b(need, nl),
        # accesses in the memories' words, as charged (with per-tensor memories)
        "network_energy_pj": b(e_net, nl),
        "access_words": None
        if hw.er_t is None
        else np.stack([b(x * per_word, nl, nt) for x in (e_reads, e_writes, e_updates)], axis=-1),
    }

"""The analytical model for one point, in plain Python (the single-call fast path).

Same formulas as the vectorised :mod:`sim.analytical.core` (see its
docstring and ``docs/analytical-model.md``), written over Python ints and
floats: for one point numpy's per-call overhead dominates, and this path
is several times faster. Tests check that both give the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mappers.mapping import Mapping, affine_footprint, loop_order
from sim.analytical.compile import Structure, array_skew, tensor_level_figures
from sim.analytical.words import network_levels, pair_sides, round_up_factor

if TYPE_CHECKING:
    from hw_models.arch import Architecture


@dataclass(eq=False)
class ScalarHw:
    rbw: list[float]
    wbw: list[float]
    er: list[float]
    ew: list[float]
    word_bits: list[float]
    clock_hz: float
    static_w: float
    pes: float
    rows: float
    cols: float
    rate: dict[str, float]
    epj: dict[str, float]
    #: [level][tensor] figures of each tensor's memory (None: the level's)
    per_tensor: dict[str, list[list[float]]] | None = None
    #: per level, energy per word carried across its fan-out network
    net: list[float] | None = None


@dataclass(eq=False)
class ScalarPlan:
    """Per-structure lists the scalar path walks (built once, cached on the Structure)."""

    dims: list[list[tuple[list[tuple[int, int]], int]]]  # tensor -> dims -> (terms, full)
    rel: list[list[bool]]  # [t][r]
    #: per pair: (t, c, p, is_output, [(level, rank) multicast/reduce
    #: positions], {(level, rank) loops the child's tile also spans})
    pairs: list[tuple[int, int, int, bool, list[tuple[int, int]], set[tuple[int, int]]]]
    hw: ScalarHw


def _scalar_hw(st: Structure, arch: Architecture) -> ScalarHw:
    unit = arch.unit(st.unit)
    return ScalarHw(
        rbw=[lv.read_bw_bytes_per_cycle for lv in arch.levels],
        wbw=[lv.write_bw_bytes_per_cycle for lv in arch.levels],
        er=[lv.read_energy_pj_per_word for lv in arch.levels],
        ew=[lv.write_energy_pj_per_word for lv in arch.levels],
        word_bits=[lv.word_bits for lv in arch.levels],
        clock_hz=arch.clock_hz,
        static_w=arch.static_power_w
        + sum(lv.leakage_w * lv.instances for lv in arch.levels)
        + sum(cu.leakage_w for cu in arch.compute),
        pes=unit.pes,
        rows=unit.rows,
        cols=unit.cols,
        rate={c: unit.ops_per_cycle.get(c, 0.0) for c in st.classes},
        epj={c: unit.energy_pj_per_op.get(c, 0.0) for c in st.classes},
        per_tensor=tensor_level_figures(st, arch),
        net=[lv.network_energy_pj_per_word for lv in arch.levels],
    )


def scalar_plan(st: Structure, arch: Architecture) -> ScalarPlan:
    """The structure's lists (built once) with ``arch``'s numbers (cached per arch)."""
    plan = getattr(st, "_scalar_plan", None)
    if plan is not None and plan[0] is arch:
        return plan[1]
    if plan is not None:
        base = plan[1]
        new = ScalarPlan(base.dims, base.rel, base.pairs, _scalar_hw(st, arch))
        st._scalar_plan = (arch, new)  # type: ignore[attr-defined]
        return new
    nt, nr = len(st.tensors), len(st.ranks)
    coef = st.coef.reshape(nt, st.ndims, nr)
    full = st.full_ext.reshape(nt, st.ndims)
    dims = []
    for t in range(nt):
        dl = []
        for d in range(st.ndims):
            terms = [(r, int(coef[t, d, r])) for r in range(nr) if coef[t, d, r] != 0]
            if terms:
                dl.append((terms, int(full[t, d])))
        dims.append(dl)
    pairs = []
    for k, (t, c, p) in enumerate(st.pairs):
        mc = [(int(lv), int(r)) for lv, r in zip(*st.mc_mask[k].nonzero(), strict=True)]
        ex = set()
        if st.resident is not None:
            ex = {(int(lv), int(r)) for lv, r in zip(*st.resident[k].nonzero(), strict=True)}
        pairs.append((t, c, p, bool(st.is_output[t]), mc, ex))
    plan = ScalarPlan(dims=dims, rel=st.rel.tolist(), pairs=pairs, hw=_scalar_hw(st, arch))
    st._scalar_plan = (arch, plan)  # type: ignore[attr-defined]
    return plan


def _div(a: int, b: int) -> float:
    return a // b if a % b == 0 else a / b


def evaluate_scalar(
    st: Structure, arch: Architecture, mapping: Mapping, *, fill: bool = True
) -> dict:
    """One point; returns the same keys as ``evaluate_arrays`` (row values)."""
    plan = scalar_plan(st, arch)
    hw = plan.hw
    ranks = st.ranks
    nr, nl, nt = len(ranks), len(st.levels), len(st.tensors)
    tf = [[lm.temporal.get(r, 1) for r in ranks] for lm in mapping.levels]
    sf = [[lm.spatial.get(r, 1) for r in ranks] for lm in mapping.levels]
    # tiles per instance
    tile = [[1] * nr for _ in range(nl + 1)]
    for lv in range(nl - 1, -1, -1):
        below = tile[lv + 1]
        tile[lv] = [below[r] * tf[lv][r] * sf[lv][r] for r in range(nr)]
    fp = [[1] * nt for _ in range(nl + 1)]
    for lv in range(nl):
        tl = tile[lv]
        row = fp[lv]
        for t in range(nt):
            row[t] = affine_footprint(plan.dims[t], tl)
    # temporal loops in nest order: (level, rank, factor)
    loops = []
    for lv, lm in enumerate(mapping.levels):
        for r in loop_order(lm, ranks):
            f = lm.temporal.get(r, 1)
            if f > 1:
                loops.append((lv, ranks.index(r), f))
    t_all = 1
    for _, _, f in loops:
        t_all *= f
    s_lvl = [math.prod(row) for row in sf]
    s_above = [1] * (nl + 1)
    for lv in range(nl):
        s_above[lv + 1] = s_above[lv] * s_lvl[lv]
    reads = [[0] * nt for _ in range(nl)]
    writes = [[0] * nt for _ in range(nl)]
    updates = [[0] * nt for _ in range(nl)]
    pt = hw.per_tensor
    mins = pt["min_access_bits"] if pt is not None and pt["rounds"] else None
    psum = pt["psum_bits"] if mins else None
    #: energy counts: the element counts, rounded up to whole accesses
    re_ = [[0.0] * nt for _ in range(nl)] if mins else reads
    we_ = [[0.0] * nt for _ in range(nl)] if mins else writes
    ue_ = [[0.0] * nt for _ in range(nl)] if mins else updates
    #: elements carried across each level's fan-out network (to and from children)
    net_moves = [[0.0] * nt for _ in range(nl)]
    has_net = any(x > 0 for x in (hw.net or ()))
    for t, c, p, is_out, mc, ex in plan.pairs:
        rel = plan.rel[t]
        lp = loops
        f_child = fp[c][t] if c < nl else 1
        if ex:  # loops the child's tile spans: inside it, not refetching it
            lp = [x for x in loops if (x[0], x[1]) not in ex]
            tl = list(tile[c])
            for lv, r, f in loops:
                if (lv, r) in ex:
                    tl[r] *= f
            f_child = affine_footprint(plan.dims[t], tl)
        if c == nl and (is_out or not st.operand_registers):
            r_cnt = t_all
        else:
            last = -1
            for i, (lv, r, _f) in enumerate(lp):
                if lv >= c:
                    break
                if rel[r]:
                    last = i
            r_cnt = 1
            for i in range(last + 1):
                r_cnt *= lp[i][2]
        dist = 1
        for lv, r, f in lp:
            if lv >= c:
                break
            if rel[r]:
                dist *= f
        mcf = 1
        for lv, r in mc:
            mcf *= sf[lv][r]
        fills = f_child * r_cnt * s_above[c]
        xfer = _div(fills, mcf)
        gp = gc = 1.0
        if mins:
            # partial sums (refilled tiles) move at the memory's psum width
            n_p, n_c = pair_sides(f_child, s_above[c], s_above[p], mcf)
            b = float(st.bits[t])
            part = is_out and r_cnt > dist
            bp = psum[p][t] if part else b
            gp = round_up_factor(n_p, bp, mins[p][t]) * bp / b
            if c < nl:
                bc = psum[c][t] if part else b
                gc = round_up_factor(n_c, bc, mins[c][t]) * bc / b
        if has_net:
            moved = fills if not is_out or c == nl else 2 * fills - _div(fills * dist, r_cnt)
            for lv in network_levels(p, c, nl, hw.net):  # type: ignore[arg-type]
                net_moves[lv][t] += moved
        if not is_out:
            reads[p][t] += xfer
            if c < nl:
                writes[c][t] += fills
            if mins:
                re_[p][t] += xfer * gp
                if c < nl:
                    we_[c][t] += fills * gc
            continue
        # share of visits that bring partial sums back: 1 - dist / r_cnt
        xfer_refill = xfer - _div(xfer * dist, r_cnt) if r_cnt else 0
        if c == nl:
            updates[p][t] += xfer_refill
            writes[p][t] += xfer - xfer_refill
            if mins:
                ue_[p][t] += xfer_refill * gp
                we_[p][t] += (xfer - xfer_refill) * gp
        else:
            fills_refill = fills - _div(fills * dist, r_cnt)
            writes[p][t] += xfer
            reads[p][t] += xfer_refill
            reads[c][t] += fills
            writes[c][t] += fills_refill
            if mins:
                we_[p][t] += xfer * gp
                re_[p][t] += xfer_refill * gp
                re_[c][t] += fills * gc
                we_[c][t] += fills_refill * gc
    # transfer cycles
    byte_w = [b / 8.0 for b in st.bits.tolist()]
    transfer = [0.0] * nl
    for lv in range(nl):
        rb = sum((reads[lv][t] + updates[lv][t]) * byte_w[t] for t in range(nt))
        wb = sum((writes[lv][t] + updates[lv][t]) * byte_w[t] for t in range(nt))
        inst = s_above[lv]
        if st.shared_bw[lv]:
            transfer[lv] = (rb + wb) / (inst * hw.rbw[lv]) if rb + wb > 0 else 0.0
        else:
            tr = rb / (inst * hw.rbw[lv]) if rb > 0 else 0.0
            tw = wb / (inst * hw.wbw[lv]) if wb > 0 else 0.0
            transfer[lv] = max(tr, tw)
    # compute cycles
    cpp = sum(st.weights[c] / hw.rate[c] for c in st.classes)
    if st.array_level >= 0 and st.classes:
        a = st.array_level
        folds = 1
        t_in = 1
        for lv, _r, f in loops:
            if lv <= a:
                folds *= f
            else:
                t_in *= f
        skew = array_skew(st.dataflow, hw.rows, hw.cols)
        compute = folds * (t_in * cpp + skew) - 1.0
    else:
        compute = t_all * cpp
    # latency
    overlapped = 0.0
    serial = 0.0
    fill_c = 0.0
    iters = 1
    for lv in range(nl):
        for r in range(nr):
            iters *= tf[lv][r]
        if st.db[lv]:
            overlapped = max(overlapped, transfer[lv])
            fill_c += transfer[lv] / iters
        else:
            serial += transfer[lv]
    cycles = max(compute, overlapped) + serial
    if fill:
        cycles += fill_c
    # energy
    e_lvl = []
    #: accesses in the memories' words, as charged (with per-tensor memories)
    words = None if pt is None else [[(0.0, 0.0, 0.0)] * nt for _ in range(nl)]
    for lv in range(nl):
        er, ew, wb = hw.er[lv], hw.ew[lv], hw.word_bits[lv]
        tot = 0.0
        for t in range(nt):
            if pt is not None:
                er = pt["read_energy_pj_per_word"][lv][t]
                ew = pt["write_energy_pj_per_word"][lv][t]
                wb = pt["word_bits"][lv][t]
            per_word = byte_w[t] * 8.0 / wb
            if words is not None:
                words[lv][t] = (re_[lv][t] * per_word, we_[lv][t] * per_word, ue_[lv][t] * per_word)
            tot += (re_[lv][t] * er + we_[lv][t] * ew + ue_[lv][t] * (er + ew)) * per_word
        e_lvl.append(tot)
    padded = t_all * s_above[nl]
    e_comp = {c: padded * st.weights[c] * hw.epj[c] for c in st.classes}
    latency_s = cycles / hw.clock_hz
    e_static = hw.static_w * latency_s * 1e12
    e_net = [
        sum(net_moves[lv][t] * byte_w[t] * 8.0 / hw.word_bits[lv] for t in range(nt))
        * (hw.net[lv] if hw.net else 0.0)
        for lv in range(nl)
    ]
    energy = sum(e_lvl) + sum(e_net) + e_static + sum(e_comp.values())
    busy = st.iteration_points * cpp
    util = busy / (cycles * hw.pes) if cycles > 0 else 0.0
    mac_w = st.weights.get("mac", 0)
    return {
        "cycles": cycles,
        "latency_s": latency_s,
        "energy_pj": energy,
        "compute_cycles": compute,
        "compute_energy_pj": e_comp,
        "static_energy_pj": e_static,
        "level_energy_pj": e_lvl,
        "transfer_cycles": transfer,
        "reads": reads,
        "writes": writes,
        "updates": updates,
        "padded_macs": padded * mac_w,
        "macs": st.iteration_points * mac_w,
        "padded_points": padded,
        "utilization": min(max(util, 0.0), 1.0),
        "access_words": words,
        "network_energy_pj": e_net,
    }

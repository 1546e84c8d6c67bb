"""The analytical cost model: a mapping in, :class:`~sim.metrics.Metrics` out.

* :func:`evaluate` -- one (Einsum, Architecture, Mapping) point.
* :func:`evaluate_batch` -- N points in one numpy pass: a list of mappings,
  or factor arrays, and/or hardware overrides given as arrays.
* :func:`evaluate_cascade` -- an unfused cascade: Einsums one after another,
  intermediates through the outermost level (DRAM).
* :func:`access_terms` -- the access counts as products of tile factors, the
  form the ILP mapper mirrors in the log domain.

The formulas live in :mod:`sim.analytical.core` and are documented in
``docs/analytical-model.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mappers.mapping import Mapping, MappingError, loop_order, mapping_to_dict, validate
from sim.analytical.compile import STRUCTURES, Structure, hardware_arrays, mapping_arrays
from sim.analytical.core import evaluate_arrays
from sim.analytical.scalar import evaluate_scalar
from sim.metrics import Metrics, TensorTraffic

if TYPE_CHECKING:
    from hw_models.arch import Architecture
    from workloads.ir import Cascade, Einsum

__all__ = [
    "AccessTerm",
    "access_terms",
    "evaluate",
    "evaluate_batch",
    "evaluate_cascade",
    "metrics_from_arrays",
]


def evaluate(
    einsum: Einsum,
    arch: Architecture,
    mapping: Mapping,
    *,
    check: bool = True,
    fill: bool = True,
) -> Metrics:
    """Cost of one mapping. Raises :class:`MappingError` if it is invalid.

    ``fill=False`` leaves out the pipeline fill (the first tile's transfers
    before compute can start), as SCALE-Sim's ``total_cycles`` does.
    """
    if check:
        validate(mapping, einsum, arch)
    st = STRUCTURES.get(einsum, arch, mapping)
    res = evaluate_scalar(st, arch, mapping, fill=fill)
    return metrics_from_scalar(st, res, mapping)


def metrics_from_scalar(
    st: Structure,
    res: dict[str, Any],
    mapping: Mapping | None,
    mapping_dict: dict[str, Any] | None = None,
) -> Metrics:
    """A :class:`Metrics` from :func:`sim.analytical.scalar.evaluate_scalar`'s
    result (or a row of :class:`ArrayRows`); ``mapping_dict``: the mapping's
    :func:`mapping_to_dict` form when the caller has it already."""
    accesses: dict[str, dict[str, TensorTraffic]] = {}
    traffic: dict[str, dict[str, float]] = {}
    bits = st.bits.tolist()
    reads, writes, updates = res["reads"], res["writes"], res["updates"]
    tensors = st.tensors
    for lv_i, lv in enumerate(st.levels):
        acc_l: dict[str, TensorTraffic] = {}
        tr_l: dict[str, float] = {}
        rl, wl, ul = reads[lv_i], writes[lv_i], updates[lv_i]
        for t_i, t in enumerate(tensors):
            r, w, u = rl[t_i], wl[t_i], ul[t_i]
            if r or w or u:
                b = float((r + w + 2 * u) * bits[t_i] / 8)
                acc_l[t] = TensorTraffic(float(r), float(w), float(u), b)
                tr_l[t] = b
        accesses[lv] = acc_l
        traffic[lv] = tr_l
    breakdown = dict(zip(st.levels, res["level_energy_pj"], strict=True))
    for lv, e in zip(st.levels, res.get("network_energy_pj") or (), strict=False):
        if e:
            breakdown[f"{lv}.network"] = float(e)
    for c, v in res["compute_energy_pj"].items():
        breakdown[f"{st.unit}.{c}"] = float(v)
    breakdown["static"] = res["static_energy_pj"]
    util = dict.fromkeys(st.unit_names, 0.0)
    util[st.unit] = res["utilization"]
    notes: dict[str, Any] = {"unit": st.unit, "op_classes": list(st.classes)}
    if res.get("access_words") is not None:
        # per level and tensor: (reads, writes, updates) in the words of the
        # memory storing it, rounded up to whole accesses (sim.analytical.words)
        notes["access_words"] = {
            lv: {
                t: tuple(float(x) for x in res["access_words"][i][j]) for j, t in enumerate(tensors)
            }
            for i, lv in enumerate(st.levels)
        }
    return Metrics(
        cycles=float(res["cycles"]),
        latency_s=float(res["latency_s"]),
        energy_pj=float(res["energy_pj"]),
        energy_breakdown_pj=breakdown,
        traffic_bytes=traffic,
        accesses=accesses,
        utilization=util,
        compute_cycles=float(res["compute_cycles"]),
        transfer_cycles=dict(zip(st.levels, res["transfer_cycles"], strict=True)),
        macs=float(res["macs"]),
        padded_macs=float(res["padded_macs"]),
        model="analytical",
        mapping=(
            mapping_dict
            if mapping_dict is not None
            else (mapping_to_dict(mapping) if mapping is not None else None)
        ),
        notes=notes,
    )


#: the per-point scalars of an :func:`evaluate_arrays` result
SCALAR_KEYS = (
    "cycles",
    "latency_s",
    "energy_pj",
    "compute_cycles",
    "macs",
    "padded_macs",
    "utilization",
)


class ArrayRows:
    """The rows of an :func:`evaluate_arrays` result in the scalar model's
    form (Python floats and lists), converted once per batch, so that
    :func:`metrics_from_scalar` is the one :class:`Metrics` builder for both
    paths."""

    _KEYS = (
        *SCALAR_KEYS,
        "static_energy_pj",
        "reads",
        "writes",
        "updates",
        "transfer_cycles",
        "level_energy_pj",
    )

    def __init__(self, res: dict[str, Any]) -> None:
        n = res["cycles"].shape[0]
        self.lists = {k: np.asarray(res[k]).tolist() for k in self._KEYS}
        if res.get("access_words") is not None:
            self.lists["access_words"] = np.asarray(res["access_words"]).tolist()
        if res.get("network_energy_pj") is not None:
            self.lists["network_energy_pj"] = np.asarray(res["network_energy_pj"]).tolist()
        self.compute = {
            c: np.broadcast_to(v, (n,)).tolist() for c, v in res["compute_energy_pj"].items()
        }

    def row(self, i: int) -> dict[str, Any]:
        out = {k: v[i] for k, v in self.lists.items()}
        out["compute_energy_pj"] = {c: v[i] for c, v in self.compute.items()}
        return out


def metrics_from_arrays(
    st: Structure,
    arch: Architecture,
    res: dict[str, Any] | ArrayRows,
    i: int,
    mapping: Mapping | None = None,
    mapping_dict: dict[str, Any] | None = None,
) -> Metrics:
    """Row ``i`` of :func:`evaluate_arrays`' result (or of its
    :class:`ArrayRows`) as a :class:`Metrics`."""
    rows = res if isinstance(res, ArrayRows) else ArrayRows(res)
    return metrics_from_scalar(st, rows.row(i), mapping, mapping_dict)


def evaluate_batch(
    einsum: Einsum,
    arch: Architecture,
    mappings: Mapping | Sequence[Mapping] | None = None,
    *,
    temporal: np.ndarray | None = None,
    spatial: np.ndarray | None = None,
    order: np.ndarray | None = None,
    template: Mapping | None = None,
    hw_overrides: dict[str, Any] | None = None,
    fill: bool = True,
) -> dict[str, np.ndarray]:
    """Evaluate N (mapping, hardware) points in one numpy pass.

    Give either ``mappings`` (one, broadcast over the hardware overrides, or
    N of them) or factor arrays ``temporal``/``spatial`` of shape
    ``[N, levels, ranks]`` (ranks in ``einsum.rank_sizes`` order, levels in
    ``arch.levels`` order) with optional ``order`` (the position of each
    rank in its level's loop order, 0 = outermost) and a ``template``
    mapping for the unit, dataflow and keep/bypass choices.

    ``hw_overrides`` maps "clock_hz", "static_power_w", "<level>.<field>"
    or "<unit>.<field>" (see :mod:`sim.analytical.compile`) to arrays of N.

    Points are not validated one by one (that would cost a Python call
    each); the result's ``valid`` says which points respect coverage,
    capacity and fan-out. Keys: cycles, latency_s, energy_pj,
    compute_cycles, macs, padded_macs, utilization, valid, and per level
    ``transfer_cycles.<L>``, ``energy_pj.<L>``, ``traffic_bytes.<L>.<T>``;
    ``energy_pj.<unit>.<class>``, ``energy_pj.static``.
    """
    if mappings is not None:
        ms = [mappings] if isinstance(mappings, Mapping) else list(mappings)
        if not ms:
            raise MappingError("evaluate_batch: no mappings given")
        groups: dict[tuple, list[int]] = {}
        from sim.analytical.compile import structure_key

        for k, m in enumerate(ms):
            groups.setdefault(structure_key(m), []).append(k)
        if len(groups) > 1:
            return _evaluate_groups(einsum, arch, ms, groups, hw_overrides, fill)
        st = STRUCTURES.get(einsum, arch, ms[0])
        tf, sf, pos = mapping_arrays(st, ms)
    else:
        if temporal is None:
            raise MappingError("evaluate_batch: give mappings or temporal/spatial factor arrays")
        if template is None:
            template = _default_template(einsum, arch)
        st = STRUCTURES.get(einsum, arch, template)
        tf = np.asarray(temporal, dtype=float)
        sf = np.ones_like(tf) if spatial is None else np.asarray(spatial, dtype=float)
        if order is None:
            _, _, pos1 = mapping_arrays(st, [template])
            pos = np.broadcast_to(pos1, tf.shape)
        else:
            pos = np.asarray(order, dtype=float)
        want = (len(st.levels), len(st.ranks))
        if tf.ndim != 3 or tf.shape[1:] != want or sf.shape != tf.shape or pos.shape != tf.shape:
            raise MappingError(
                f"evaluate_batch: factor arrays must have shape [N, {want[0]}, {want[1]}] "
                f"(levels {', '.join(st.levels)}; ranks {', '.join(st.ranks)}), got {tf.shape}"
            )
    hw = hardware_arrays(st, arch, hw_overrides)
    n = _batch_len(tf.shape[0], hw_overrides)
    res = evaluate_arrays(st, hw, tf, sf, pos, fill=fill, n_total=n)
    return flatten_result(st, res)


def _batch_len(n: int, ov: dict[str, Any] | None) -> int:
    lens = {n}
    for k, v in (ov or {}).items():
        a = np.asarray(v)
        if a.ndim > 1:
            raise MappingError(f"hardware override {k} must be a scalar or a 1-D array")
        if a.ndim == 1:
            lens.add(a.shape[0])
    lens.discard(1)
    if len(lens) > 1:
        raise MappingError(f"evaluate_batch: batch sizes disagree: {sorted(lens)}")
    return lens.pop() if lens else 1


def flatten_result(st: Structure, res: dict[str, Any]) -> dict[str, np.ndarray]:
    n = res["cycles"].shape[0]
    out: dict[str, np.ndarray] = {k: np.ascontiguousarray(res[k]) for k in (*SCALAR_KEYS, "valid")}
    byte_w = st.bits / 8.0
    traffic = (res["reads"] + res["writes"] + 2 * res["updates"]) * byte_w
    for k, lv in enumerate(st.levels):
        out[f"transfer_cycles.{lv}"] = np.ascontiguousarray(res["transfer_cycles"][:, k])
        out[f"energy_pj.{lv}"] = np.ascontiguousarray(res["level_energy_pj"][:, k])
        for t_i, t in enumerate(st.tensors):
            out[f"traffic_bytes.{lv}.{t}"] = np.ascontiguousarray(traffic[:, k, t_i])
    for c, v in res["compute_energy_pj"].items():
        out[f"energy_pj.{st.unit}.{c}"] = np.ascontiguousarray(np.broadcast_to(v, (n,)))
    out["energy_pj.static"] = np.ascontiguousarray(res["static_energy_pj"])
    net = res.get("network_energy_pj")
    for k, lv in enumerate(st.levels):
        if net is not None and np.any(net[:, k]):
            out[f"energy_pj.{lv}.network"] = np.ascontiguousarray(net[:, k])
    return out


def _evaluate_groups(einsum, arch, ms, groups, hw_overrides, fill):
    n = _batch_len(len(ms), hw_overrides)
    out: dict[str, np.ndarray] = {}
    for idx in groups.values():
        sub_ov = None
        if hw_overrides:
            sub_ov = {
                k: (np.asarray(v)[idx] if np.asarray(v).ndim == 1 else v)
                for k, v in hw_overrides.items()
            }
        part = evaluate_batch(einsum, arch, [ms[i] for i in idx], hw_overrides=sub_ov, fill=fill)
        for k, v in part.items():
            if k not in out:
                out[k] = np.zeros(n, dtype=v.dtype)
            out[k][idx] = v
    return out


def _default_template(einsum: Einsum, arch: Architecture) -> Mapping:
    from mappers.mapping import LevelMapping

    return Mapping(einsum=einsum.name, levels=tuple(LevelMapping(lv.name) for lv in arch.levels))


# --------------------------------------------------------------------------
# cascades
# --------------------------------------------------------------------------


def evaluate_cascade(
    cascade: Cascade,
    arch: Architecture,
    mappings: dict[str, Mapping],
    *,
    check: bool = True,
    fill: bool = True,
) -> Metrics:
    """Unfused cascade: Einsums one after another, intermediates through DRAM.

    Latency and energy add up, traffic and accesses merge (summed per level
    and tensor), and a unit's utilisation is its busy time over the total.
    """
    parts = []
    for e in _cascade_einsums(cascade):
        if e.name not in mappings:
            raise MappingError(f"no mapping given for Einsum {e.name} of the cascade")
        parts.append((e, evaluate(e, arch, mappings[e.name], check=check, fill=fill)))
    return combine_sequential([m for _, m in parts], arch, {e.name: m for e, m in parts})


def _cascade_einsums(cascade: Any) -> list[Einsum]:
    """The Einsums of a cascade in execution (topological) order."""
    for attr in ("topo_order", "ordered_einsums"):
        f = getattr(cascade, attr, None)
        if callable(f):
            return list(f())
    es = getattr(cascade, "einsums", None)
    if es is None:
        raise MappingError(f"{type(cascade).__name__} has no Einsums")
    return list(es.values()) if isinstance(es, dict) else list(es)


def combine_sequential(
    parts: list[Metrics], arch: Architecture, named: dict[str, Metrics] | None = None
) -> Metrics:
    """Metrics of steps run one after another (sum time/energy, merge traffic)."""
    cycles = sum(m.cycles for m in parts)
    latency = sum(m.latency_s for m in parts)
    energy = sum(m.energy_pj for m in parts)
    breakdown: dict[str, float] = {}
    traffic: dict[str, dict[str, float]] = {}
    accesses: dict[str, dict[str, TensorTraffic]] = {}
    transfer: dict[str, float] = {}
    busy: dict[str, float] = {cu.name: 0.0 for cu in arch.compute}
    for m in parts:
        for k, v in m.energy_breakdown_pj.items():
            breakdown[k] = breakdown.get(k, 0.0) + v
        for lv, d in m.traffic_bytes.items():
            tl = traffic.setdefault(lv, {})
            for t, b in d.items():
                tl[t] = tl.get(t, 0.0) + b
        for lv, d in m.accesses.items():
            al = accesses.setdefault(lv, {})
            for t, a in d.items():
                o = al.get(t, TensorTraffic())
                al[t] = TensorTraffic(
                    reads=o.reads + a.reads,
                    writes=o.writes + a.writes,
                    updates=o.updates + a.updates,
                    bytes=o.bytes + a.bytes,
                )
        for lv, c in m.transfer_cycles.items():
            transfer[lv] = transfer.get(lv, 0.0) + c
        for u, f in m.utilization.items():
            busy[u] = busy.get(u, 0.0) + f * m.cycles
    util = {u: (b / cycles if cycles > 0 else 0.0) for u, b in busy.items()}
    return Metrics(
        cycles=cycles,
        latency_s=latency,
        energy_pj=energy,
        energy_breakdown_pj=breakdown,
        traffic_bytes=traffic,
        accesses=accesses,
        utilization=util,
        compute_cycles=sum(m.compute_cycles for m in parts),
        transfer_cycles=transfer,
        macs=sum(m.macs for m in parts),
        padded_macs=sum(m.padded_macs for m in parts),
        model=parts[0].model if parts else "analytical",
        mapping={k: m.mapping for k, m in named.items()} if named else None,
        notes={
            "schedule": "unfused, sequential",
            "per_einsum": {
                k: {"cycles": m.cycles, "energy_pj": m.energy_pj} for k, m in (named or {}).items()
            },
        },
    )


# --------------------------------------------------------------------------
# cost terms for the ILP
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessTerm:
    """One access count as a product of mapping factors (for the ILP).

    ``count = footprint(tile at child) * prod(temporal loops) *
    prod(spatial factors) / prod(multicast factors)``, all factors of the
    given (level, rank) pairs. In the log domain every term is linear:
    ``log count = log footprint + sum log t + sum log s - sum log mc``.
    ``footprint_level`` is the child level (None at the compute units, where
    the footprint is 1). ``temporal`` holds the loops that refetch (it
    depends on the loop order), ``distinct`` the loops over ranks that index
    the tensor (for partial-sum reads of outputs: reads = count * (1 -
    prod(distinct)/prod(temporal))).
    """

    tensor: str
    parent: str
    child: str
    #: "read" (parent -> child, inputs), "write" (child -> parent, outputs)
    action: str
    footprint_level: str | None
    temporal: tuple[tuple[str, str], ...]
    spatial: tuple[tuple[str, str], ...]
    multicast: tuple[tuple[str, str], ...]
    distinct: tuple[tuple[str, str], ...]


def access_terms(einsum: Einsum, arch: Architecture, mapping: Mapping) -> list[AccessTerm]:
    """The parent<->child transfer terms of a mapping (see :class:`AccessTerm`)."""
    st = STRUCTURES.get(einsum, arch, mapping)
    nl = len(st.levels)
    orders = [loop_order(lm, st.ranks) for lm in mapping.levels]
    terms = []
    for k, (t, c, p) in enumerate(st.pairs):
        loops = [(st.levels[lv], r) for lv in range(c) for r in orders[lv]]
        rel = {st.ranks[i] for i in range(len(st.ranks)) if st.rel[t, i]}

        def f(lv_r: tuple[str, str]) -> int:
            lm = mapping.levels[st.levels.index(lv_r[0])]
            return lm.temporal.get(lv_r[1], 1)

        if c == nl and (st.is_output[t] or not st.operand_registers):
            temporal = [x for x in loops if f(x) > 1]
        else:
            last = -1
            for i, x in enumerate(loops):
                if x[1] in rel and f(x) > 1:
                    last = i
            temporal = [x for x in loops[: last + 1] if f(x) > 1]
        spatial = [
            (st.levels[lv], r)
            for lv in range(c)
            for r in st.ranks
            if mapping.levels[lv].spatial.get(r, 1) > 1
        ]
        mc = [
            (st.levels[lv], st.ranks[ri])
            for lv in range(nl)
            for ri in range(len(st.ranks))
            if st.mc_mask[k, lv, ri] and mapping.levels[lv].spatial.get(st.ranks[ri], 1) > 1
        ]
        distinct = [x for x in loops if x[1] in rel and f(x) > 1]
        terms.append(
            AccessTerm(
                tensor=st.tensors[t],
                parent=st.levels[p],
                child=st.levels[c] if c < nl else st.unit,
                action="write" if st.is_output[t] else "read",
                footprint_level=st.levels[c] if c < nl else None,
                temporal=tuple(temporal),
                spatial=tuple(spatial),
                multicast=tuple(mc),
                distinct=tuple(distinct),
            )
        )
    return terms

"""IR values: op counts, footprints and traffic against closed forms; graph; validation."""

from __future__ import annotations

import dataclasses
import inspect
import json
import pickle

import networkx as nx
import pytest

from workloads.errors import WorkloadError
from workloads.ir import OP_CLASSES, Access, AffineIndex, Cascade, Einsum, Tensor
from workloads.library import build


def test_gemm_counts_footprint_traffic_closed_form() -> None:
    M, N, K = 128, 256, 64
    c = build("gemm", M=M, N=N, K=K)
    (e,) = c.einsums
    assert e.iteration_points == M * N * K
    assert e.op_counts() == {"mac": M * N * K, "add": 0, "max": 0, "exp": 0, "div": 0}
    assert c.total_macs == 2097152
    assert e.footprint_bytes() == {"C": M * N * 2, "A": M * K * 2, "B": K * N * 2}
    assert e.footprint_bytes({"m": 16, "n": 32, "k": 8}) == {
        "C": 16 * 32 * 2,
        "A": 16 * 8 * 2,
        "B": 8 * 32 * 2,
    }
    assert e.compulsory_traffic_bytes() == 2 * (M * K + K * N + M * N)
    assert c.compulsory_traffic_bytes() == 2 * (M * K + K * N + M * N)
    assert c.tensor("A").bytes == M * K * 2
    b8 = build("gemm", M=4, N=4, K=4, bits=8)
    assert all(a.bits == 8 for a in b8.einsums[0].accesses)
    assert b8.tensor("C").bytes == 16


def test_attention_op_counts_closed_form() -> None:
    B, H, E, F, M, P = 2, 3, 16, 8, 64, 32
    c = build("attention-3pass", B=B, H=H, E=E, F=F, M=M, P=P)
    bh = B * H
    ops = {e.name: e.op_counts() for e in c.einsums}
    assert ops["QK"]["mac"] == bh * M * P * E
    assert ops["MX"] == {"mac": 0, "add": 0, "max": bh * M * P, "exp": 0, "div": 0}
    assert ops["SN"] == {"mac": 0, "add": 0, "max": 0, "exp": bh * M * P, "div": 0}
    assert ops["SD"]["add"] == bh * M * P
    assert ops["A"]["div"] == bh * M * P
    assert ops["AV"]["mac"] == bh * M * P * F
    assert c.total_macs == bh * M * P * (E + F)
    # 1-pass: the same exponentials plus one per block for the max correction
    M0 = 16
    c1 = build("attention-1pass", B=B, H=H, E=E, F=F, M=M, P=P, M0=M0)
    M1 = M // M0
    tot = c1.op_counts()
    assert tot["exp"] == bh * M * P + bh * M1 * P
    assert tot["div"] == bh * F * P  # one divide per output element
    # running max: one compare per block; local max one per element
    assert tot["max"] == bh * M * P + bh * M1 * P


def test_conv_footprint_is_the_sliding_window() -> None:
    c = build("conv2d", N=1, C=4, H=11, W=11, K=8, R=3, S=3, stride=2, dilation=1)
    (e,) = c.einsums
    P = (11 - 3) // 2 + 1
    assert c.tensor("O").shape == (1, 8, P, P)
    assert e.macs == 8 * P * P * 4 * 9
    # the whole input is touched: 2*(P-1) + 1*(R-1) + 1 = 11 rows
    assert e.footprint_bytes()["I"] == 4 * 11 * 11 * 2
    # a 2x2 output tile with the full filter: rows 2*(2-1) + (3-1) + 1 = 5
    fp = e.footprint_bytes({"p": 2, "q": 2, "r": 3, "s": 3, "c": 4, "k": 8})
    assert fp["I"] == 4 * 5 * 5 * 2


def test_graph_is_a_dag_and_recurrences_are_found() -> None:
    c = build("attention-1pass", M=16, M0=4)
    g = c.graph()
    assert nx.is_directed_acyclic_graph(g)
    order = [e.name for e in c.einsums]
    assert list(nx.topological_sort(g)) != [] and all(
        order.index(u) < order.index(v) for u, v in g.edges
    )
    full = c.graph(recurrences=True)
    assert full.has_edge("RM", "RM") and full.edges["RM", "RM"]["carried"] == "m1"
    assert full.has_edge("RD", "SPD") and not g.has_edge("RD", "SPD")
    assert {r.einsums for r in c.recurrences()} == {("RM",), ("SPD", "RD"), ("SPNV", "RNV")}
    assert c.intermediates == tuple(e.output.tensor for e in c.einsums if e.name != "AV")
    assert c.producer("RD").name == "RD" and {e.name for e in c.consumers("RD")} == {"SPD", "AV"}
    assert {e.name for e in c.consumers("RM")} == {"RM", "SLN", "PRM"}
    assert c.tensor("RM").shape == (1, 2, 5, 256)


def test_dict_is_json_and_round_trips() -> None:
    c = build("conv2d", groups=2)
    d = json.loads(json.dumps(c.to_dict()))
    assert Cascade.from_dict(d) == c
    with pytest.raises(WorkloadError, match="malformed"):
        Cascade.from_dict({"name": "x"})


def test_affine_index_text_and_bounds() -> None:
    ix = AffineIndex((("p", 2), ("r", 3)), 1)
    assert ix.to_text() == "p*2+r*3+1"
    assert ix.bounds({"p": 4, "r": 2}) == (1, 1 + 6 + 3)
    assert ix.extent({"p": 4, "r": 2}) == 2 * 3 + 3 * 1 + 1
    assert AffineIndex((("a", -1),), 5).to_text() == "-a+5"
    assert AffineIndex((), 3).to_text() == "3"


def _einsum(**kw) -> Einsum:
    base = dict(
        name="Y",
        output=Access("Y", (AffineIndex.of("m"),)),
        inputs=(Access("X", (AffineIndex.of("m"),)),),
        map_op="copy",
        reduce_op="none",
        rank_sizes_items=(("m", 4),),
    )
    base.update(kw)
    return Einsum(**base)


X = Tensor("X", ("m",), (4,))
Y = Tensor("Y", ("m",), (4,))


def test_programmatic_cascade_and_validation_errors() -> None:
    c = Cascade("ok", (X, Y), (_einsum(),))
    assert c.inputs == ("X",) and c.outputs == ("Y",) and c.total_macs == 0
    assert set(c.einsums[0].op_counts()) == set(OP_CLASSES)
    bad = [
        (dict(map_op="frob"), "unknown map op"),
        (dict(reduce_op="sum"), "no reduced rank"),
        (dict(map_op="mul"), "takes 2 operand"),
        (dict(rank_sizes_items=(("m", 4), ("k", 2))), "indexes nothing"),
        (dict(inputs=(Access("Z", (AffineIndex.of("m"),)),)), "unknown tensor"),
        (dict(inputs=(Access("X", (AffineIndex.of("m", 1),)),)), "spans 1..4"),
        (dict(inputs=(Access("X", (AffineIndex.of("m"),), bits=8),)), "says 8 bits"),
        (dict(output=Access("Y", (AffineIndex((("m", 2),)),))), "output index"),
    ]
    for kw, needle in bad:
        with pytest.raises(WorkloadError, match=needle):
            Cascade("bad", (X, Y), (_einsum(**kw),))
    # two sizes for one rank across Einsums
    Z = Tensor("Z", ("m",), (5,))
    e2 = _einsum(
        name="Z",
        output=Access("Z", (AffineIndex.of("m"),)),
        rank_sizes_items=(("m", 5),),
        inputs=(Access("Z", (AffineIndex.of("m"),)),),
    )
    with pytest.raises(WorkloadError):
        Cascade("bad", (X, Y, Z), (_einsum(), e2))
    # out of order
    W = Tensor("W", ("m",), (4,))
    e3 = _einsum(
        name="W",
        output=Access("W", (AffineIndex.of("m"),)),
        inputs=(Access("Y", (AffineIndex.of("m"),)),),
    )
    with pytest.raises(WorkloadError, match="before Y produces it"):
        Cascade("bad", (X, Y, W), (e3, _einsum()))
    with pytest.raises(WorkloadError, match="no tensor"):
        c.tensor("nope")
    with pytest.raises(WorkloadError, match="no Einsum"):
        c.einsum("nope")


def test_summary_matches_issue_schema() -> None:
    s = build("gemm", M=128, N=256, K=64).summary()
    assert s["total_macs"] == 2097152
    (e,) = s["einsums"]
    assert {"name", "output", "inputs", "ops", "macs"} <= set(e)
    assert e["inputs"] == ["A", "B"] and e["output"] == "C" and e["macs"] == 2097152
    t = {x["name"]: x for x in s["tensors"]}
    assert (
        t["C"]["ranks"] == ["m", "n"]
        and t["C"]["shape"] == [128, 256]
        and t["C"]["bytes"] == 128 * 256 * 2
    )


def test_carried_reads_are_the_reads_left_out_of_the_dag() -> None:
    c = build("attention-1pass", M=16, M0=4)
    assert c.carried_reads() == {("RM", "RM"), ("SPD", "RD"), ("SPNV", "RNV")}
    # PRM reads RM[m1] too, but RM is complete before PRM runs: an ordinary edge
    assert c.graph().has_edge("RM", "PRM")
    assert build("attention-3pass").carried_reads() == frozenset()


@pytest.mark.parametrize("cls", [Tensor, AffineIndex, Access, Einsum])
def test_hand_written_constructors_take_the_dataclass_fields(cls: type) -> None:
    """These frozen dataclasses have their own (faster) ``__init__``: it must
    take the fields in order, with their defaults, and keep them frozen."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    fields = dataclasses.fields(cls)
    assert [p.name for p in params] == [f.name for f in fields]
    for p, f in zip(params, fields, strict=True):
        want = inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
        assert p.default == want, p.name
        assert f.default_factory is dataclasses.MISSING
    e = build("gemm").einsums[0]
    obj = {Tensor: build("gemm").tensor("A"), AffineIndex: e.output.indices[0]}.get(cls)
    obj = obj if obj is not None else (e.output if cls is Access else e)
    with pytest.raises(dataclasses.FrozenInstanceError):
        obj.bits = 3  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(obj)) == obj
    again = dataclasses.replace(obj)
    assert again == obj and hash(again) == hash(obj) and repr(again) == repr(obj)

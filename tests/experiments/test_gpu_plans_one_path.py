"""The GPU plans reach the lowering by one path: ``sim.evaluate(..., plan=)``,
``einsim eval --gpu-plan``, a sweep spec's ``gpu_plan`` and ``einsim
schedule`` on a GPU give the same numbers for the same plan, and the plans
differ as the lowering says (the ILP plan is never slower than the library
plan; the fused plan replays a CUDA graph, so it has no host time)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

import sim
from experiments.cli import main
from sim.gpu.model import resolve
from sim.gpu.plan_registry import DEFAULT_PLAN, PLANS
from workloads import library

#: a LLaMA-7B decoder layer (its real width) on a 128-token prompt
LAYER = {"model": "llama-7b", "seq": 128}
#: a decode step: batch 2 against a 512-entry KV cache
DECODE = {"model": "llama-7b", "batch": 2, "kv_len": 512}


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def _p(params: dict[str, Any]) -> list[str]:
    return [a for k, v in params.items() for a in ("-p", f"{k}={v}")]


def _figures(d: dict[str, Any]) -> tuple[float, float, float]:
    return (
        float(d["latency_s"]),
        float(d["energy_pj"]),
        float(sum(d["traffic_bytes"]["HBM"].values())),
    )


def _same(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(math.isclose(x, y, rel_tol=1e-9) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def api() -> dict[str, Any]:
    c = library.build("decoder-layer", **LAYER)
    return {plan: sim.evaluate(c, "h100", plan=plan) for plan in PLANS}


def _sweep(tmp_path: Path, plan: str) -> dict[str, Any]:
    from experiments.sweep.engine import run_sweep
    from experiments.sweep.shards import load_results
    from experiments.sweep.spec import parse_spec

    spec = {
        "name": f"one-point-{plan}",
        "gpu_plan": plan,
        "hardware": [{"name": "h100", "base": "h100"}],
        "workloads": [{"name": "decoder-layer", "params": LAYER}],
    }
    out = tmp_path / plan
    run_sweep(parse_spec(yaml.safe_dump(spec), "one-point.yaml"), out, workers=1, progress=False)
    rows = load_results(out).to_dict("records")
    assert len(rows) == 1 and rows[0]["status"] == "ok", rows
    return rows[0]


@pytest.mark.parametrize("plan", list(PLANS))
def test_eval_api_and_sweep_agree_for_each_plan(plan: str, api, tmp_path, capsys) -> None:
    ev = api[plan]
    assert ev.model == "gpu" and ev.metrics.notes["plan"] == plan
    want = _figures(ev.metrics.to_dict())
    rc, out, err = _cli(
        capsys, "eval", "-w", "decoder-layer", *_p(LAYER), "--hw", "h100", "--gpu-plan", plan,
        "--json",
    )  # fmt: skip
    assert rc == 0, err
    got = json.loads(out)["metrics"]
    assert got["notes"]["plan"] == plan
    assert _same(_figures(got), want), (plan, "eval")
    row = _sweep(tmp_path, plan)
    assert row["gpu_plan"] == plan
    assert _same((row["latency_s"], row["energy_pj"], row["dram_bytes"]), want), (plan, "sweep")


def test_plans_differ_as_the_lowering_says(api) -> None:
    lib, fused, ilp = (api[p].metrics for p in ("library", "fused", "ilp"))
    # the default is the library plan
    assert sim.evaluate(library.build("decoder-layer", **LAYER), "h100").metrics.latency_s == (
        api[DEFAULT_PLAN].metrics.latency_s
    )
    assert ilp.latency_s <= lib.latency_s * (1 + 1e-12)
    assert ilp.notes["ilp"]["library_s"] == pytest.approx(lib.latency_s, rel=1e-9)
    # eager: one kernel per norm, GEMM, activation and residual, each launched
    # by the host; fused: fewer, replayed from a graph (one graph launch)
    _, params = resolve("h100")
    assert fused.notes["n_kernels"] < lib.notes["n_kernels"]
    assert fused.notes["timing"] == "graph"
    assert fused.notes["host_s"] == pytest.approx(params.graph_launch_s, rel=1e-12)
    assert lib.notes["host_s"] >= lib.notes["n_kernels"] * params.host_op_s


def test_schedule_on_a_gpu_is_the_ilp_plan(api, capsys) -> None:
    ilp = api["ilp"]
    rc, out, err = _cli(
        capsys, "schedule", "-w", "decoder-layer", *_p(LAYER), "--hw", "h100", "--json"
    )
    assert rc == 0, err
    d = json.loads(out)
    assert _same(_figures(d["metrics"]), _figures(ilp.metrics.to_dict()))
    groups = [tuple(g["einsums"]) for g in d["schedule"]["groups"]]
    # every Einsum in exactly one group, in the kernels' order
    names = [n for g in groups for n in g]
    assert sorted(names) == sorted(e.name for e in library.build("decoder-layer", **LAYER).einsums)
    assert len(names) == len(set(names))
    kernels = [tuple(r["einsums"]) for r in ilp.metrics.notes["kernels"]]
    assert groups == [k for k in kernels if k]
    # an intermediate is in HBM exactly when its producer and a consumer are
    # different kernels
    c = library.build("decoder-layer", **LAYER)
    group_of = {n: i for i, g in enumerate(groups) for n in g}
    prod = {e.output.tensor: e.name for e in c.einsums}
    for t, where in d["schedule"]["residency"].items():
        readers = [e.name for e in c.einsums if any(a.tensor == t for a in e.inputs)]
        apart = any(group_of[r] != group_of[prod[t]] for r in readers if r != prod[t])
        assert where == ("DRAM" if apart else "SMEM"), t


def test_schedule_method_without_a_gpu_plan_is_refused(capsys) -> None:
    rc, _, err = _cli(
        capsys, "schedule", "-w", "attention-3pass", "--hw", "h100", "--method", "flat"
    )
    assert rc == 2 and "spatial-array schedule" in err and "Traceback" not in err


def test_decode_step_from_the_cli(capsys) -> None:
    c = library.build("decode-step", **DECODE)
    ev = sim.evaluate(c, "h100", plan="fused")
    rc, out, err = _cli(
        capsys, "eval", "-w", "decode-step", *_p(DECODE), "--hw", "h100", "--gpu-plan", "fused",
        "--json",
    )  # fmt: skip
    assert rc == 0, err
    assert _same(_figures(json.loads(out)["metrics"]), _figures(ev.metrics.to_dict()))
    rc, out, err = _cli(capsys, "eval", "-w", "decode-step", *_p(DECODE), "--hw", "h100")
    assert rc == 0, err
    # the text report lists the kernels: one attention over the cache and the
    # new token, two cache appends (K and V)
    assert "plan       library (event timing)" in out
    table = out.split("\nkernel ", 1)[1].splitlines()[1:]
    kinds = [ln.split()[1] for ln in table if ln.strip()]
    assert kinds.count("attention") == 1 and kinds.count("kv_append") == 2


def test_gpu_plan_choices_come_from_the_registry(capsys) -> None:
    for cmd in ("eval", "schedule"):
        rc, out, _ = _cli(capsys, cmd, "--help")
        text = " ".join(out.split())
        assert rc == 0, cmd
        assert "--gpu-plan [" + "|".join(PLANS) + "]" in text, cmd
    rc, _, err = _cli(capsys, "eval", "-w", "gemm", "--hw", "eyeriss_like", "--gpu-plan", "fused")
    assert rc == 2 and "for GPU designs" in err


def test_a_sweep_names_a_bad_gpu_plan() -> None:
    from experiments.sweep.spec import SpecError, parse_spec

    text = "gpu_plan: eager\nhardware: [{base: h100}]\nworkloads: [{name: gemm}]\n"
    with pytest.raises(SpecError, match=r"s\.yaml:1:.*gpu_plan.*expected one of library"):
        parse_spec(text, "s.yaml")

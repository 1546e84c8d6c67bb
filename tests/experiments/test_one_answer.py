"""One design, one answer: every preset of every family against a small
instance of every library workload, through ``einsim eval``, ``einsim map``
(the same mapper), ``einsim schedule --method unfused``, a sweep and the
Python API. Latency, energy and DRAM
traffic are identical to 1e-9 relative across them, or the command refuses
with a one-line message (exit status 2, no traceback) -- ``map`` on a GPU
or an FPGA, for one, whose models cost the workload themselves (kernels,
hls4ml layers), or a network too large for its FPGA.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

import hw_models
import sim
from experiments.cli import main
from sim import models
from workloads import library

MAPPER = "greedy"
#: small instances (the library's defaults elsewhere)
SMALL: dict[str, dict[str, Any]] = {
    "mlp": {"B": 8, "IN": 64, "HIDDEN": 64, "OUT": 10, "LAYERS": 2},
    "decode-attention": {"H": 2, "M": 256},
    "transformer-layer": {"seq": 32},
}
PRESETS = hw_models.list_presets()
WORKLOADS = library.list_workloads()


def _params(name: str) -> dict[str, Any]:
    return SMALL.get(name, {})


def _cli_args(name: str) -> list[str]:
    out = ["-w", name]
    for k, v in _params(name).items():
        out += ["-p", f"{k}={v}"]
    return out


def _figures(m: dict[str, Any] | Any) -> tuple[float, float, float]:
    d = m if isinstance(m, dict) else m.to_dict()
    dram = sum(next(iter(d["traffic_bytes"].values()), {}).values())
    return float(d["latency_s"]), float(d["energy_pj"]), float(dram)


def _same(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(math.isclose(x, y, rel_tol=1e-9, abs_tol=0.0) for x, y in zip(a, b, strict=True))


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def _refused(rc: int, err: str) -> bool:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    return rc == 2 and len(lines) == 1 and "Traceback" not in err and "internal error" not in err


@pytest.fixture(scope="module")
def sweep_rows(tmp_path_factory) -> dict[tuple[str, str], dict[str, Any]]:
    """One sweep over every (preset, workload) pair: one point each."""
    import yaml

    from experiments.sweep.engine import run_sweep
    from experiments.sweep.shards import load_results
    from experiments.sweep.spec import parse_spec

    spec = {
        "name": "one-answer",
        "mapper": MAPPER,
        "objective": "edp",
        "timeout_s": 120,
        "hardware": [{"name": p, "base": p} for p in PRESETS],
        "workloads": [{"name": w, "params": _params(w)} for w in WORKLOADS],
    }
    out = tmp_path_factory.mktemp("one-answer")
    parsed = parse_spec(yaml.safe_dump(spec), "one-answer.yaml")
    run_sweep(parsed, out, workers=1, progress=False)
    df = load_results(out)
    return {(r["design"], r["workload"]): r for r in df.to_dict("records")}


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_door_gives_one_answer(preset: str, sweep_rows, capsys) -> None:
    arch = hw_models.load(preset)
    # GPUs and FPGAs: their models cost the workload themselves (no mapper)
    gpu = models.resolve("auto", arch.family).kind == "workload"
    for name in WORKLOADS:
        wl = library.build(name, **_params(name))
        try:
            ev = sim.evaluate(wl, arch, mapper=None if gpu else MAPPER)
        except Exception as exc:  # noqa: BLE001 - then every door must refuse
            api: tuple[float, ...] | None = None
            why = str(exc)
        else:
            api = _figures(ev.metrics)
            why = ""
        mapper_args = [] if gpu else ["--mapper", MAPPER]
        rc, out, err = _cli(
            capsys, "eval", *_cli_args(name), "--hw", preset, *mapper_args, "--json"
        )
        row = sweep_rows[(preset, name)]
        if api is None:
            assert _refused(rc, err), (preset, name, err)
            assert why in err, (preset, name)
            assert row["status"] in ("error", "rejected") and row["error"] == why, (preset, name)
            continue
        assert rc == 0, (preset, name, err)
        assert _same(_figures(json.loads(out)["metrics"]), api), (preset, name, "eval")
        assert row["status"] == "ok", (preset, name, row["error"])
        swept = (row["latency_s"], row["energy_pj"], row["dram_bytes"])
        assert _same(swept, api), (preset, name, "sweep", swept, api)
        rc, out, err = _cli(
            capsys, "map", *_cli_args(name), "--hw", preset, "--mapper", MAPPER, "--json"
        )
        if gpu:
            assert _refused(rc, err) and "does not apply" in err, (preset, name, err)
        else:
            assert rc == 0, (preset, name, err)
            assert _same(_figures(json.loads(out)["metrics"]), api), (preset, name, "map")
        _check_unfused_schedule(capsys, preset, name, api, gpu, arch.family)


def _check_unfused_schedule(
    capsys, preset: str, name: str, api, gpu: bool, family: str = "spatial"
) -> None:
    """``schedule --method unfused`` (every Einsum alone, intermediates through
    DRAM) is ``eval``'s design: the same numbers, or a refusal on a GPU."""
    mapper_args = [] if gpu else ["--mapper", MAPPER]
    rc, out, err = _cli(
        capsys,
        "schedule",
        *_cli_args(name),
        "--hw",
        preset,
        "--method",
        "unfused",
        *mapper_args,
        "--json",
    )
    if gpu:
        # a GPU's schedule is a plan of kernels, which refuses the spatial-array
        # methods; an FPGA's model (hls4ml) has no cascade schedule at all
        reason = "spatial-array schedule" if family == "gpu" else "cascade schedules"
        assert _refused(rc, err) and reason in err, (preset, name, err)
        return
    if rc != 0:  # the cascade scheduler refuses the cascade itself, with a reason
        assert _refused(rc, err), (preset, name, err)
        return
    got = _figures(json.loads(out)["metrics"])
    assert _same(got, api), (preset, name, "schedule --method unfused", got, api)


@pytest.mark.parametrize(
    ("preset", "name"), [("eyeriss_like", "attention-3pass"), ("fusemax_cloud", "mlp")]
)
def test_unfused_schedule_is_evals_answer(preset: str, name: str, capsys) -> None:
    """The fast leg of the test above: the front door and ``schedule
    --method unfused`` give ``eval``'s latency, energy and DRAM traffic."""
    wl = library.build(name, **_params(name))
    api = _figures(sim.evaluate(wl, hw_models.load(preset), mapper=MAPPER).metrics)
    _check_unfused_schedule(capsys, preset, name, api, gpu=False)
    ev = sim.evaluate(wl, preset, schedule="unfused", mapper=MAPPER)
    assert _same(_figures(ev.metrics), api) and ev.schedule.method == "unfused"


def test_map_and_schedule_refuse_a_gpu_with_a_reason(capsys) -> None:
    rc, _, err = _cli(capsys, "map", "-w", "gemm", "--hw", "h100")
    assert _refused(rc, err) and "lowers the workload to kernels itself" in err
    # on a GPU a schedule is a plan of kernels (the ILP plan); spatial-array
    # methods are refused, and an FPGA has no cascade schedule
    rc, _, err = _cli(
        capsys, "schedule", "-w", "attention-3pass", "--hw", "h100", "--method", "flat"
    )
    assert _refused(rc, err) and "spatial-array schedule" in err
    rc, _, err = _cli(capsys, "schedule", "-w", "attention-3pass", "--hw", "u280")
    assert _refused(rc, err) and "cascade schedules" in err


def test_same_text_for_the_same_design_from_eval_and_map(capsys) -> None:
    """The summary block ``eval`` prints is also the end of ``map``'s output."""
    args = ["-w", "gemm", "-p", "M=128", "--hw", "eyeriss_like", "--mapper", MAPPER]
    rc, ev_out, err = _cli(capsys, "eval", *args)
    assert rc == 0, err
    rc, map_out, err = _cli(capsys, "map", *args)
    assert rc == 0, err
    assert map_out.rstrip().endswith(ev_out.rstrip())
    assert " ms" in ev_out or " us" in ev_out  # SI prefixes, not raw seconds


def test_examples_of_the_paths_in_this_file_exist() -> None:
    """Guard against the test silently covering nothing."""
    assert len(PRESETS) >= 10 and len(WORKLOADS) >= 10
    assert {hw_models.load(p).family for p in PRESETS} == {"gpu", "spatial", "fpga"}
    assert Path(__file__).exists()

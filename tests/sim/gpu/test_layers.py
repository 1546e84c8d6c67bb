"""The issue-16 layers: configurations, predictions file, measurement script (no GPU)."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import gpu_layers, measure_gpu_layers
from experiments.cli import main
from sim.gpu.plans import evaluate

#: issue 16, "How the held-back layers were measured"
ISSUE = {
    ("bert_large", "prefill", 8, 512), ("bert_large", "prefill", 32, 512),
    ("bert_large", "prefill", 1, 4096), ("llama7b", "prefill", 1, 2048),
    ("llama7b", "prefill", 4, 4096), ("llama7b", "prefill", 1, 16384),
    ("llama7b", "decode", 1, 2048), ("llama7b", "decode", 16, 2048),
    ("llama7b", "decode", 64, 4096), ("gpt3", "prefill", 1, 2048), ("gpt3", "decode", 8, 2048),
}  # fmt: skip


def test_configurations_are_the_issues() -> None:
    assert set(gpu_layers.CONFIGS) == ISSUE and len(gpu_layers.CONFIGS) == len(ISSUE)


@pytest.mark.parametrize("cfg", sorted(ISSUE))
def test_layer_cascades_match_the_measured_structure(cfg: tuple) -> None:
    model, mode, batch, seq = cfg
    c = gpu_layers.layer_cascade(*cfg)
    m = evaluate(c, "h100", include_append=False)
    kernels = [k["kind"] for k in m.notes["kernels"]]
    assert kernels.count("gemm") == 4 and kernels.count("norm") == 2
    assert kernels.count("attention") == 1
    assert len(kernels) == (11 if model == "llama7b" else 10)  # SwiGLU: silu and mul
    att = next(k["row"] for k in m.notes["kernels"] if k["kind"] == "attention")
    h, heads = measure_gpu_layers.LAYERS[model][:2]
    assert att["H"] == heads and att["K"] == h // heads
    if mode == "decode":
        assert (att["M"], att["N"], att["B"], att["causal"]) == (1, seq, batch, 0)
    else:
        assert (att["M"], att["N"]) == (seq, seq)
        assert att["causal"] == int(model != "bert_large")
    qkv = next(k["row"] for k in m.notes["kernels"] if k["kind"] == "gemm")
    assert (qkv["M"], qkv["N"], qkv["K"]) == (batch * (seq if mode == "prefill" else 1), 3 * h, h)


def test_experiment_writes_the_predictions_file(tmp_path, capsys) -> None:
    rc = main(["experiment", "gpu-layers", "--hw", "h200", "--out", str(tmp_path), "--no-ilp"])
    assert rc == 0
    with (tmp_path / "layers_pred.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(gpu_layers.PRED_COLUMNS)
    assert {(r["model"], r["mode"], int(r["batch"]), int(r["seq"])) for r in rows} == ISSUE
    for r in rows:
        assert float(r["pred_ms"]) > 0 and float(r["pred_energy_mj"]) > 0
    assert "llama7b" in capsys.readouterr().out


def test_measured_layers_are_compared(tmp_path) -> None:
    d = tmp_path / "h100_layers"
    d.mkdir()
    (d / "layers.csv").write_text(
        "model,mode,batch,seq,median_ms,energy_mj\nllama7b,decode,1,2048,0.25,80\n"
    )
    meas = gpu_layers.measured("h100", tmp_path)
    assert meas[("llama7b", "decode", 1, 2048)] == {"median_ms": 0.25, "energy_mj": 80.0}
    preds = gpu_layers.predict("h100", (("llama7b", "decode", 1, 2048),), ilp=False)
    text = gpu_layers.table(preds, meas)
    err = 100 * (preds[0].pred_ms - 0.25) / 0.25
    assert f"time MAPE {abs(err):.1f}%" in text
    (d / "layers.csv").write_text("model,mode,batch,seq,median_ms\nllama7b,decode,x,2048,1\n")
    with pytest.raises(gpu_layers.LayerDataError, match="layers.csv:2"):
        gpu_layers.measured("h100", tmp_path)


def test_measurement_script_dry_run_and_shapes(capsys) -> None:
    assert measure_gpu_layers.main(["--out", "unused", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == len(ISSUE)
    # LLaMA-7B: 6.74e9 parameters (Touvron et al. 2023) = 32 layers + embeddings and head
    # (2 x 32000 x 4096) + the final norm
    layer = measure_gpu_layers.LayerShape("llama7b", "decode", 1, 2048)
    total = 32 * layer.weight_elements() + 2 * 32000 * 4096 + 4096
    assert total == pytest.approx(6.74e9, rel=0.005)
    # a decode set holds the KV cache: 2 x batch x seq x h values
    big = measure_gpu_layers.LayerShape("llama7b", "decode", 64, 4096)
    assert big.footprint_bytes() == 2 * (layer.weight_elements() + 64 * 4096 + 2 * 64 * 4096 * 4096)
    assert measure_gpu_layers.n_sets_for(big.footprint_bytes()) == 1
    assert measure_gpu_layers.n_sets_for(10 * 2**20) == 16
    assert measure_gpu_layers.main(["--out", "x", "--only", "t5", "--dry-run"]) == 2


DOC = Path(__file__).resolve().parents[3] / "docs" / "llm.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_llm_doc_example_runs(i: int, tmp_path: Path) -> None:
    script = tmp_path / f"llm_block{i + 1}.py"
    script.write_text(BLOCKS[i])
    root = DOC.parents[1]
    r = subprocess.run([sys.executable, str(script)], cwd=root, capture_output=True, text=True)
    assert r.returncode == 0, f"docs/llm.md block {i + 1}:\n{r.stderr}"


def test_llm_doc_commands_run(tmp_path: Path) -> None:
    assert len(BLOCKS) >= 3
    assert measure_gpu_layers.main(["--out", str(tmp_path), "--dry-run"]) == 0


COMMANDS = re.findall(r"^\$ einsim ((?:eval|schedule) .*)$", DOC.read_text(), flags=re.M)


@pytest.mark.slow
@pytest.mark.parametrize("i", range(len(COMMANDS)))
def test_llm_doc_cli_command_runs(i: int, tmp_path: Path, capsys) -> None:
    import shlex

    args = [a.replace("/tmp/", f"{tmp_path}/") for a in shlex.split(COMMANDS[i])]
    assert main(args) == 0, COMMANDS[i]
    out = capsys.readouterr().out
    # the GPU report: the plan asked for (default library) and its kernel table
    plan = args[args.index("--gpu-plan") + 1] if "--gpu-plan" in args else "library"
    if args[0] == "schedule":
        plan = "ilp"
    assert f"plan       {plan} (" in out and "\nkernel " in out, COMMANDS[i]
    if "--timeline" in args:
        assert Path(args[args.index("--timeline") + 1]).stat().st_size > 1000


def test_the_doc_has_eval_and_schedule_commands() -> None:
    assert sum(c.startswith("eval -w decode-step") for c in COMMANDS) >= 2
    assert any(c.startswith("schedule ") for c in COMMANDS)


@pytest.mark.parametrize(
    ("config", "args"),
    [
        (("llama7b", "decode", 16, 2048), ["-w", "decode-step", "-p", "batch=16", "-p", "kv_len=2048"]),
        (("bert_large", "prefill", 8, 512),
         ["-w", "decoder-layer", "-p", "model=bert-large", "-p", "batch=8", "-p", "seq=512",
          "-p", "causal=0"]),
    ],
)  # fmt: skip
def test_eval_prints_the_experiments_layer_prediction(config, args, capsys) -> None:
    """`einsim eval --gpu-plan library` on the measured layer (pre-norm, no rotary,
    the cache append untimed) is the experiment's prediction."""
    import json

    pred = gpu_layers.predict("h100", (config,), ilp=False)[0]
    common = ["-p", "norm_position=pre", "-p", "rope=0", "--hw", "h100", "--gpu-plan", "library"]
    rc = main(["eval", *args, *common, "--no-kv-append", "--json"])
    assert rc == 0
    m = json.loads(capsys.readouterr().out)["metrics"]
    assert m["latency_s"] * 1e3 == pytest.approx(pred.pred_ms, rel=1e-9)
    assert m["energy_pj"] * 1e-9 == pytest.approx(pred.pred_energy_mj, rel=1e-9)

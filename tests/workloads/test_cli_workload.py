"""``einsim workload list|show|check`` end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.cli import main
from workloads.library import list_workloads


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_show_gemm_json_total_macs(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(
        capsys,
        "workload",
        "show",
        "gemm",
        "--param",
        "M=128",
        "--param",
        "N=256",
        "--param",
        "K=64",
        "--json",
    )
    assert rc == 0
    d = json.loads(out)
    assert d["total_macs"] == 2097152 == 128 * 256 * 64
    assert d["name"] == "gemm"
    (e,) = d["einsums"]
    assert e["name"] == "C" and e["output"] == "C" and e["inputs"] == ["A", "B"]
    assert e["ops"]["mac"] == e["macs"] == 2097152
    t = {x["name"]: x for x in d["tensors"]}
    assert (
        t["A"]["ranks"] == ["m", "k"]
        and t["A"]["shape"] == [128, 64]
        and t["A"]["bytes"] == 128 * 64 * 2
    )


def test_console_script_one_line_error() -> None:
    exe = Path(sys.executable).with_name("einsim")
    p = subprocess.run(
        [str(exe), "workload", "show", "gemm", "--param", "X=1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2
    assert p.stdout == ""
    assert (
        p.stderr.count("\n") == 1
        and "unknown parameter 'X'" in p.stderr
        and "Traceback" not in p.stderr
    )


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "workload", "list")
    assert rc == 0
    for n in list_workloads():
        assert n in out
    rc, out, _ = run(capsys, "workload", "list", "--json")
    assert [x["name"] for x in json.loads(out)] == list_workloads()


def test_show_text_and_passes(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "workload", "show", "attention-1pass", "-p", "M=128", "--passes", "m")
    assert rc == 0 and "passes over m: 1" in out and "RM[b, h, m1+1, p] = max(" in out
    rc, out, _ = run(capsys, "workload", "show", "attention-3pass", "--json", "--passes", "m")
    assert json.loads(out)["passes"] == {"m": 3}
    rc, out, _ = run(capsys, "workload", "show", "gemm", "--text")
    assert out.startswith("cascade gemm\n")


def test_check_good_and_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "att.ein"
    good.write_text("declare Q[e:4, p:8] K[e:4, m:8]\nQK[m,p] = Q[e,p] * K[e,m]\n")
    rc, out, _ = run(capsys, "workload", "check", str(good))
    assert rc == 0 and "ok" in out and "256 MACs" in out
    rc, out, _ = run(capsys, "workload", "show", str(good), "--json")
    assert rc == 0 and json.loads(out)["total_macs"] == 256
    bad = tmp_path / "bad.ein"
    bad.write_text("declare Q[e:4, p:8]\nQK[m,p] = Q[e,p]\n")
    rc, out, err = run(capsys, "workload", "check", str(bad))
    assert rc == 2 and out == ""
    assert (
        err.strip()
        == f"einsim: error: {bad}:2:4: rank m has no size; expected it in a declaration (T[m:SIZE]), a rank statement or a split"
    )
    rc, _, err = run(capsys, "workload", "check", str(tmp_path / "missing.ein"))
    assert rc != 0 and err.count("\n") == 1


def test_bad_params(capsys: pytest.CaptureFixture[str]) -> None:
    for args, needle in [
        (("--param", "M"), "expected NAME=VALUE"),
        (("--param", "M=x"), "positive integer"),
        (("--param", "M=1", "--param", "M=2"), "given twice"),
    ]:
        rc, out, err = run(capsys, "workload", "show", "gemm", *args)
        assert rc == 2 and needle in err and err.count("\n") == 1
    rc, _, err = run(capsys, "workload", "show", "nosuch")
    assert rc == 2 and "unknown workload 'nosuch'" in err

"""``einsim eval`` end to end (library workload, preset hardware)."""

from __future__ import annotations

import json

from experiments.cli import main

WS_MAPPING = """\
# SCALE-Sim's weight-stationary mapping of a 512^3 GEMM on a 256x256 array
unit: pe_array
levels:
  - level: DRAM
  - level: GlobalBuffer
    temporal: {k: 2, n: 2}
    spatial: {k: 256, n: 256}
    spatial_axes: {k: y, n: x}
    order: [k, n]
  - level: PE_RF
    temporal: {m: 512}
    keep: [B]
"""


#: a 512^3 GEMM on the FuseMax cloud array (the mapping tests' problem)
GEMM_512_ON_FUSEMAX = (
    "-w",
    "gemm",
    "-p",
    "M=512",
    "-p",
    "N=512",
    "-p",
    "K=512",
    "--hw",
    "fusemax_cloud",
)


def _run(capsys, *args):
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_eval_json_fields_and_conservation(capsys):
    rc, out, err = _run(
        capsys,
        "eval",
        "--workload",
        "gemm",
        "-p",
        "M=256",
        "-p",
        "N=128",
        "-p",
        "K=64",
        "--hw",
        "fusemax_cloud",
        "--json",
    )
    assert rc == 0, err
    d = json.loads(out)["metrics"]
    for key in (
        "cycles",
        "latency_s",
        "energy_pj",
        "energy_breakdown_pj",
        "traffic_bytes",
        "utilization",
        "mapping",
    ):
        assert key in d
    assert d["macs"] == 256 * 128 * 64
    dram = d["traffic_bytes"]["DRAM"]
    # every operand crosses DRAM at least once (16-bit data)
    assert dram["A"] >= 256 * 64 * 2 and dram["B"] >= 64 * 128 * 2 and dram["C"] >= 256 * 128 * 2
    assert set(d["utilization"]) == {"pe_array", "vector_1d"}
    assert 0 < d["utilization"]["pe_array"] <= 1
    assert abs(sum(d["energy_breakdown_pj"].values()) - d["energy_pj"]) <= 1e-6 * d["energy_pj"]


def test_eval_with_mapping_file_matches_fold_formula(tmp_path, capsys):
    f = tmp_path / "ws.yaml"
    f.write_text(WS_MAPPING)
    rc, out, err = _run(
        capsys,
        "eval",
        *GEMM_512_ON_FUSEMAX,
        "--mapping",
        str(f),
        "--json",
    )
    assert rc == 0, err
    d = json.loads(out)["metrics"]
    # SCALE-Sim ws: folds x (T + 2 rows + cols - 2) - 1, folds = 2 x 2, T = M
    assert d["compute_cycles"] == 4 * (512 + 2 * 256 + 256 - 2) - 1
    assert d["mapping"]["levels"][2]["temporal"] == {"m": 512}
    # the weights are read once from the buffer into the PEs
    assert d["accesses"]["GlobalBuffer"]["B"]["reads"] == 512 * 512


def test_eval_text_output(capsys):
    rc, out, err = _run(capsys, "eval", "-w", "gemm", "--hw", "flat_edge")
    assert rc == 0, err
    assert "cycles" in out and "traffic    DRAM" in out


def test_eval_errors_are_one_line_exit_2(tmp_path, capsys):
    f = tmp_path / "bad.yaml"
    f.write_text(WS_MAPPING.replace("temporal: {m: 512}", "temporal: {m: 256}"))
    rc, out, err = _run(
        capsys,
        "eval",
        *GEMM_512_ON_FUSEMAX,
        "--mapping",
        str(f),
    )
    assert rc == 2
    assert "factors of rank m (PE_RF:256 = 256) do not cover its size 512" in err
    assert "Traceback" not in err
    f.write_text("levels:\n  - level: DRAM\n    temporal: {m: zero}\n")
    rc, out, err = _run(capsys, "eval", "-w", "gemm", "--hw", "fusemax_cloud", "--mapping", str(f))
    assert rc == 2 and f"{f}:3" in err
    rc, out, err = _run(capsys, "eval", "-w", "gemm", "-p", "M", "--hw", "fusemax_cloud")
    assert rc == 2 and "expected NAME=VALUE" in err
    rc, out, err = _run(capsys, "eval", "-w", "gemm", "--hw", "fusemax_cloud", "--mapper", "magic")
    assert rc == 2 and "'magic' is not one of" in err and "greedy" in err


def test_eval_cascade_file(tmp_path, capsys):
    f = tmp_path / "attn.ein"
    f.write_text(
        "declare Q[e:64, p:256] K[e:64, m:256]\n"
        "QK[m,p] = Q[e,p] * K[e,m]\n"
        "MX[p]   = max(m) QK[m,p]\n"
    )
    rc, out, err = _run(capsys, "eval", "-w", str(f), "--hw", "fusemax_cloud", "--json")
    assert rc == 0, err
    d = json.loads(out)["metrics"]
    assert d["macs"] == 64 * 256 * 256
    assert set(d["mapping"]) == {"QK", "MX"}
    # the max runs on the 1D array, the QK product on the 2D array
    assert d["mapping"]["MX"]["unit"] == "vector_1d"
    assert d["mapping"]["QK"]["unit"] == "pe_array"
    rc, out, err = _run(capsys, "eval", "-w", str(f), "-p", "M=3", "--hw", "fusemax_cloud")
    assert rc == 2 and "unknown parameter(s) M; the cascade declares none" in err


def test_eval_cascade_file_with_parameters(tmp_path, capsys):
    """``param NAME = DEFAULT`` in a cascade file; ``-p NAME=V`` overrides it."""
    f = tmp_path / "gemm.ein"
    f.write_text("param M = 64\ndeclare A[m:M, k:32] B[k, n:16]\nC[m,n] = A[m,k] * B[k,n]\n")
    for extra, m in (((), 64), (("-p", "M=128"), 128)):
        rc, out, err = _run(capsys, "eval", "-w", str(f), *extra, "--hw", "tpu_like", "--json")
        assert rc == 0, err
        assert json.loads(out)["metrics"]["macs"] == m * 32 * 16

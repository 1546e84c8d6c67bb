"""``einsim hw`` list / show / check / derive."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hw_models
from experiments.cli import main


def test_list(capsys):
    assert main(["hw", "list"]) == 0
    out = capsys.readouterr().out
    for name in hw_models.list_presets():
        assert name in out
    assert main(["hw", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    fm = next(r for r in rows if r["name"] == "fusemax_cloud")
    assert fm["peak_macs_per_s"] == 256 * 256 * 940e6


def test_show_text_and_json(capsys):
    assert main(["hw", "show", "h100"]) == 0
    out = capsys.readouterr().out
    assert "HBM" in out and "tensor_core" in out
    assert main(["hw", "show", "h100", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["clock_hz"] == 1.83e9
    lv = data["levels"][0]
    assert lv["name"] == "HBM"
    assert {
        "capacity_bytes",
        "read_bw_bytes_per_cycle",
        "read_energy_pj_per_word",
        "area_mm2",
    } <= set(lv)
    assert data["derived"]["bandwidth_bytes_per_s"]["HBM"] == pytest.approx(3.35e12)
    assert 2 * data["derived"]["peak_ops_per_s"]["tensor_core"]["mac"] == pytest.approx(989e12)
    assert main(["hw", "show", "u280", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["derived"]["fpga_resources"]["available"]["dsp"] == 9024


def test_derive_then_check(tmp_path, capsys):
    out = tmp_path / "x.yaml"
    assert (
        main(
            ["hw", "derive", "h100", "--set", "hbm_bandwidth_bytes_per_s=4.8e12", "--out", str(out)]
        )
        == 0
    )
    assert main(["hw", "check", str(out)]) == 0
    assert "ok: h100 (gpu)" in capsys.readouterr().out
    arch = hw_models.load(str(out))
    assert arch.level("HBM").read_bw_bytes_per_cycle * arch.clock_hz == pytest.approx(4.8e12)
    # JSON, whole tree, and dotted keys
    out2 = tmp_path / "y.json"
    assert (
        main(
            [
                "hw",
                "derive",
                "fusemax_cloud",
                "--set",
                "rows=128",
                "--set",
                "cols=64",
                "--tree",
                "--out",
                str(out2),
            ]
        )
        == 0
    )
    assert main(["hw", "check", str(out2)]) == 0
    assert hw_models.load(str(out2)).peak_ops_per_s("mac", "pe_array") == 128 * 64 * 940e6
    capsys.readouterr()
    assert main(["hw", "derive", "h100", "--set", "tensor_flops_per_s.bf16=1e15"]) == 0
    spec = hw_models.loads(capsys.readouterr().out)
    assert spec.params["tensor_flops_per_s"]["bf16"] == 1e15
    assert spec.params["tensor_flops_per_s"]["fp8"] == 1979e12


def test_derive_bad_value_is_one_line(capsys):
    assert main(["hw", "derive", "h100", "--set", "hbm_bandwidth_bytes_per_s=0"]) == 2
    err = capsys.readouterr().err
    assert "params.hbm_bandwidth_bytes_per_s must be a number in (0, " in err
    assert err.count("\n") == 1
    assert (
        main(
            [
                "hw",
                "derive",
                "u280",
                "--set",
                "rows=128",
                "--set",
                "cols=128",
                "--set",
                "datatype_bits=16",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "does not fit u280: DSP" in err and "Traceback" not in err


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=60))
def test_random_text_files_never_traceback(tmp_path_factory, text):
    p = tmp_path_factory.mktemp("f") / "r.yaml"
    p.write_text(text)
    rc = main(["hw", "check", str(p)])
    assert rc in (0, 2)

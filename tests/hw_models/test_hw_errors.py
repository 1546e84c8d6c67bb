"""Bad hardware files give one clear HardwareError (file, line, field, range);
random parameter dictionaries never give any other exception."""

from __future__ import annotations

import math
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hw_models
from experiments.cli import main
from hw_models import HardwareError
from hw_models.registry import load_file

GOOD = """\
name: tiny
family: spatial
params:
  rows: 8
  cols: 8
  dataflow: os
  clock_hz: 1.0e9
  datatype_bits: 16
  pe_rf_bytes: 32
  global_buffer_bytes: 65536
  dram_bandwidth_bytes_per_s: 16e9
  dram_kind: lpddr4
"""


def _write(tmp_path, text, name="hw.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def _line_of(text, needle):
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def test_good_file_loads(tmp_path):
    arch = load_file(_write(tmp_path, GOOD))
    assert arch.name == "tiny" and arch.unit("pe_array").pes == 64


@pytest.mark.parametrize(
    ("old", "new", "expect"),
    [
        # zero and negative sizes
        (
            "global_buffer_bytes: 65536",
            "global_buffer_bytes: 0",
            r"params\.global_buffer_bytes must be a number in \(0, ",
        ),
        ("pe_rf_bytes: 32", "pe_rf_bytes: -4", r"params\.pe_rf_bytes must be a number in \(0, "),
        ("rows: 8", "rows: 0", r"params\.rows must be an integer in \[1, 4096\], got 0"),
        # a bandwidth of 0
        (
            "dram_bandwidth_bytes_per_s: 16e9",
            "dram_bandwidth_bytes_per_s: 0",
            r"params\.dram_bandwidth_bytes_per_s must be a number in \(0, ",
        ),
        # a buffer smaller than a word
        (
            "pe_rf_bytes: 32",
            "pe_rf_bytes: 1",
            r"params\.pe_rf_bytes must be >= 2 \(one 16-bit word\), got 1",
        ),
        # wrong type / choice / unknown key
        (
            "dataflow: os",
            "dataflow: rs",
            r"params\.dataflow must be one of 'os', 'ws', 'is', got 'rs'",
        ),
        (
            "clock_hz: 1.0e9",
            "clock_hz: fast",
            r"params\.clock_hz must be a number in \(0, .*got 'fast'",
        ),
        (
            "cols: 8",
            "colz: 8",
            r"params\.colz is not a spatial parameter \(did you mean 'cols'\?\)",
        ),
    ],
)
def test_bad_param_names_file_line_field_and_range(tmp_path, old, new, expect):
    text = GOOD.replace(old, new)
    path = _write(tmp_path, text)
    with pytest.raises(HardwareError, match=expect) as info:
        load_file(path)
    err = info.value
    assert err.file == str(path)
    key = new.split(":")[0]
    assert err.line == _line_of(text, key + ":")
    assert str(err).startswith(f"{path}:{err.line}: ")


def test_unknown_level_name_in_constraint(tmp_path):
    text = (
        GOOD
        + "constraints:\n  - {level: GlobalBuffer, holds: [input, weight]}\n  - {level: L3, holds: [input]}\n"
    )
    path = _write(tmp_path, text)
    with pytest.raises(HardwareError) as info:
        load_file(path)
    err = info.value
    assert (
        "constraints[1].level: unknown level name 'L3'; levels are DRAM, GlobalBuffer, PE_RF"
        in str(err)
    )
    assert err.line == _line_of(text, "level: L3")
    ok = load_file(
        _write(tmp_path, GOOD + "constraints:\n  - {level: GlobalBuffer, holds: [input, weight]}\n")
    )
    assert ok.level("GlobalBuffer").holds == ("input", "weight")


def test_unknown_name_in_overrides(tmp_path):
    text = GOOD + "overrides:\n  SRAM:\n    read_energy_pj_per_word: 3\n"
    with pytest.raises(
        HardwareError, match=r"overrides\.SRAM: unknown level or compute unit 'SRAM'"
    ) as info:
        load_file(_write(tmp_path, text))
    assert info.value.line == _line_of(text, "SRAM:")
    text = GOOD + "overrides:\n  GlobalBuffer:\n    read_bw_bytes_per_cycle: 0\n"
    with pytest.raises(
        HardwareError, match=r"overrides\.GlobalBuffer\.read_bw_bytes_per_cycle must be > 0"
    ) as info:
        load_file(_write(tmp_path, text))
    assert info.value.line == _line_of(text, "read_bw_bytes_per_cycle")


def test_bad_tree_file_points_at_the_field(tmp_path):
    tree = hw_models.dump_yaml(hw_models.load("flat_edge"))
    lines = tree.splitlines()
    # the GlobalBuffer's capacity is the second capacity_bytes in the file
    idx = [i for i, ln in enumerate(lines) if "capacity_bytes:" in ln][1]
    lines[idx] = lines[idx].split(":")[0] + ": 1"
    path = _write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(
        HardwareError, match=r"levels\[1\]\.capacity_bytes must be >= 2 \(one 16-bit word\)"
    ) as info:
        load_file(path)
    assert info.value.line == idx + 1
    lines[idx] = lines[idx].split(":")[0] + ": -5"
    path = _write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(
        HardwareError, match=r"levels\[1\]\.capacity_bytes must be > 0, got -5"
    ) as info:
        load_file(path)
    assert info.value.line == idx + 1


def test_yaml_syntax_error_has_line_and_column(tmp_path):
    text = GOOD.replace("rows: 8", "rows: [8")
    with pytest.raises(HardwareError, match="invalid YAML") as info:
        load_file(_write(tmp_path, text))
    assert info.value.line is not None and info.value.col is not None


def test_missing_file_and_unknown_preset():
    with pytest.raises(HardwareError, match="file not found"):
        hw_models.load("/nonexistent/x.yaml")
    with pytest.raises(HardwareError, match="unknown hardware 'h1000'"):
        hw_models.load("h1000")


def test_cli_check_prints_one_line_and_exits_2(tmp_path, capsys):
    text = GOOD.replace("dram_bandwidth_bytes_per_s: 16e9", "dram_bandwidth_bytes_per_s: 0")
    path = _write(tmp_path, text)
    assert main(["hw", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    line = _line_of(text, "dram_bandwidth")
    assert f"{path}:{line}: params.dram_bandwidth_bytes_per_s must be a number in (0, " in err


# ------------------------------------------------------------- hypothesis

_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-10, max_value=1e13),
    st.sampled_from(["", "os", "fp", "u280", "hbm3", "bf16", "x"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(
        st.sampled_from(["bf16", "fp32", "fp8", "zz"]), st.floats(allow_nan=True), max_size=3
    ),
)

_BASES = {
    "spatial": hw_models.load("fusemax_cloud").params,
    "gpu": hw_models.load("h100").params,
    "fpga": hw_models.load("u280").params,
}


@st.composite
def _param_dicts(draw):
    family = draw(st.sampled_from(sorted(_BASES)))
    base = dict(_BASES[family])
    keys = draw(st.lists(st.sampled_from(sorted(base) + ["bogus", "rows", "cols"]), max_size=4))
    for k in keys:
        base[k] = draw(_junk)
    if draw(st.booleans()):
        for k in draw(st.lists(st.sampled_from(sorted(base)), max_size=3)):
            base.pop(k, None)
    return family, base


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_param_dicts())
def test_random_params_only_raise_hardware_error(case):
    family, params = case
    try:
        arch = hw_models.build(family, params)
    except HardwareError as err:
        assert str(err) and "\n" not in str(err)
        return
    hw_models.validate(arch)
    assert math.isfinite(arch.area_mm2)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["h100", "fusemax_cloud", "u280", "tpu_like"]),
    st.dictionaries(
        st.sampled_from(
            [
                "rows",
                "cols",
                "l2_bytes",
                "clock_hz",
                "tensor_flops_per_s.bf16",
                "x.y",
                "tech_node_nm",
            ]
        ),
        _junk,
        max_size=3,
    ),
)
def test_random_derive_only_raises_hardware_error(name, overrides):
    try:
        hw_models.derive(name, overrides)
    except HardwareError:
        pass


_LEVEL_KEYS = [
    "capacity_bytes",
    "word_bits",
    "read_bw_bytes_per_cycle",
    "banks",
    "fanout_x",
    "holds",
    "name",
    "zzz",
]


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 2),
    st.sampled_from(_LEVEL_KEYS),
    _junk,
    st.sampled_from(["levels", "compute", "top"]),
)
def test_random_trees_only_raise_hardware_error(index, key, value, where):
    tree = hw_models.to_dict(hw_models.load("flat_edge"))
    if where == "levels":
        tree["levels"][index][key] = value
    elif where == "compute":
        tree["compute"][index % 2][key if key != "capacity_bytes" else "ops_per_cycle"] = value
    else:
        tree[key if key != "name" else "clock_hz"] = value
    try:
        hw_models.from_spec(tree)
    except HardwareError:
        pass


def test_errors_survive_pickling():
    """Sweeps on Dask ship errors back from workers."""
    import pickle

    from hw_models.errors import FPGAFitError

    with pytest.raises(FPGAFitError) as info:
        hw_models.derive("u280", {"rows": 128, "cols": 128, "datatype_bits": 16})
    err = pickle.loads(pickle.dumps(info.value.located("sweep.yaml", 7)))
    assert isinstance(err, FPGAFitError)
    assert (err.resource, err.used, err.available, err.over) == ("dsp", 16384, 9024, 7360)
    assert str(err).startswith("sweep.yaml:7: design does not fit u280: DSP 16,384")
    with pytest.raises(HardwareError) as info:
        hw_models.build("gpu", {"sm_count": 0})
    err = pickle.loads(pickle.dumps(info.value))
    assert err.field == "params.sm_count" and str(err) == str(info.value)


def test_bad_json_tree_points_at_the_line(tmp_path):
    import json

    tree = hw_models.to_dict(hw_models.load("flat_edge"))
    tree["levels"][2]["read_bw_bytes_per_cycle"] = 0
    text = json.dumps(tree, indent=2)
    path = _write(tmp_path, text, "hw.json")
    with pytest.raises(
        HardwareError, match=r"levels\[2\]\.read_bw_bytes_per_cycle must be > 0"
    ) as info:
        load_file(path)
    lines = text.splitlines()
    want = [i for i, ln in enumerate(lines, 1) if '"read_bw_bytes_per_cycle": 0' in ln]
    assert info.value.line == want[0]

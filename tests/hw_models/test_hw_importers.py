"""``einsim hw import`` on the peers' own bundled examples.

Each imported figure is checked against something the importer did not
compute: the peer file read independently (PyYAML), Timeloop's own
``stats.txt`` (its view of sizes, words, instances, bandwidths and access
energies of the same architecture), ZigZag's access-count formula, or
closed forms (copies = product of the array sizes a memory is not shared
over).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

import hw_models
from experiments.cli import main
from hw_models import Precision
from hw_models.errors import HardwareError
from hw_models.importers import import_file
from hw_models.memories import memory_for

PEERS = Path(__file__).resolve().parent / "peer_examples"
ZZ = PEERS / "zigzag"
TL = PEERS / "timeloop"
AF = PEERS / "accelforge"


def zigzag(name: str):
    return import_file(ZZ / f"{name}.yaml", "zigzag")


def timeloop(name: str):
    d = TL / name
    return import_file(
        d / "arch.yaml",
        "timeloop",
        ert=d / "timeloop-mapper.ERT.yaml",
        art=d / "timeloop-mapper.ART.yaml",
    )


# ------------------------------------------------------------------ ZigZag


@pytest.mark.parametrize("name", ["tpu_like", "eyeriss_like"])
def test_zigzag_imports_with_nothing_left_out(name):
    res = zigzag(name)
    assert res.left_out == ()
    raw = yaml.safe_load((ZZ / f"{name}.yaml").read_text())
    arch = res.arch
    # every memory of the file, once, with its figures
    assert sorted(m.name for lv in arch.levels for m in lv.memories) == sorted(raw["memories"])
    oa = raw["operational_array"]
    sizes = dict(zip(oa["dimensions"], oa["sizes"], strict=True))
    for mname, spec in raw["memories"].items():
        m = arch.memory(mname)
        assert m.capacity_bytes == spec["size"] / 8
        assert m.read_energy_pj_per_word == spec["r_cost"]
        assert m.latency_cycles == spec["latency"]
        assert m.area_mm2 == spec["area"]
        roles = {"I1": "input", "I2": "weight", "O": "output"}
        assert m.serves == tuple(roles[o] for o in spec["operands"])
        assert len(m.ports) == len(spec["ports"])
        widest = max(p["bandwidth_max"] for p in spec["ports"])
        assert m.word_bits == widest
        # ZigZag's unroll count: one copy per index of the dimensions not served
        lv = next(lv for lv in arch.levels if m in lv.memories)
        unserved = [sizes[d] for d in sizes if d not in spec["served_dimensions"]]
        assert lv.instances == math.prod(unserved)
        for p, ps in zip(m.ports, spec["ports"], strict=True):
            assert p.bw_bytes_per_cycle * 8 == ps["bandwidth_max"]
            assert p.min_access_bits == ps["bandwidth_min"]
            assert len(p.serves) == len(ps["allocation"])
    # the array and the partial-sum precision (ZigZag's ONNX defaults)
    cu = arch.compute[0]
    assert cu.pes == math.prod(sizes.values())
    assert cu.energy_pj_per_op["mac"] == raw["operational_array"]["unit_energy"]
    assert cu.precision == Precision(8, 8, 16, 8)
    assert hw_models.tensor_bits(arch, 1, "C", ("output",), default_bits=32, partial=True) == 16
    assert hw_models.loads(hw_models.dump_yaml(arch)) == arch


def test_zigzag_levels_follow_the_operand_chains():
    eye = zigzag("eyeriss_like").arch
    assert [lv.name for lv in eye.levels] == [
        "dram",
        "sram_1M",
        "sram_8KB+sram_64KB",
        "rf_64B_A+rf_64B_W+rf_16B",
    ]
    gb = eye.levels[2]
    assert (gb.fanout_x, gb.fanout_y) == (14, 12)
    # per tensor: who stores it, level by level (None = bypass)
    roles = {"A": ("input",), "B": ("weight",), "C": ("output",)}
    chain = {
        t: [m.name if m else None for m in (memory_for(eye, i, t, r) for i in range(4))]
        for t, r in roles.items()
    }
    assert chain == {
        "A": ["dram", "sram_1M", None, "rf_64B_A"],
        "B": ["dram", None, "sram_64KB", "rf_64B_W"],
        "C": ["dram", "sram_1M", "sram_8KB", "rf_16B"],
    }
    tpu = zigzag("tpu_like")
    assert [lv.name for lv in tpu.arch.levels] == ["dram", "sram_2MB", "rf_128B+rf_2B"]
    assert tpu.arch.compute[0].systolic_axes == ("x", "y")
    # sram_2MB has `ports` twice in ZigZag's file: the second (as ZigZag's loader)
    assert any("sram_2MB.ports" in n for n in tpu.notes)
    sram = tpu.arch.memory("sram_2MB")
    assert [p.name for p in sram.ports] == ["r_port_1", "w_port_1"]
    assert sram.read_bw_bytes_per_cycle == 2048 / 8 and not sram.shared_bw
    assert tpu.arch.memory("dram").shared_bw  # one read_write port


def _zigzag_accesses(elems: int, bits: int, bw_min: int, bw_max: int) -> float:
    """ZigZag 3.9.1 cost_model._calc_memory_access for one period."""
    return math.ceil(elems * bits / bw_min) * (bw_min / bw_max)


@pytest.mark.parametrize("name", ["tpu_like", "eyeriss_like"])
def test_zigzag_energy_per_bit_matches_its_access_count(name):
    """Moving n words-worth of data costs what ZigZag's formula charges."""
    raw = yaml.safe_load((ZZ / f"{name}.yaml").read_text())
    arch = zigzag(name).arch
    for mname, spec in raw["memories"].items():
        m = arch.memory(mname)
        for p in spec["ports"]:
            n = 48 * p["bandwidth_max"] // 8  # a whole number of widest transfers
            cost = spec["r_cost"] if p["type"] != "write" else spec["w_cost"]
            zz = _zigzag_accesses(n, 8, p["bandwidth_min"], p["bandwidth_max"]) * cost
            per_word = (
                m.read_energy_pj_per_word if p["type"] != "write" else m.write_energy_pj_per_word
            )
            assert n * 8 / m.word_bits * per_word == pytest.approx(zz, rel=1e-12)


# ---------------------------------------------------------------- Timeloop


def timeloop_specs(path: Path) -> dict[str, dict[str, str]]:
    """The SPECS block of every level of a Timeloop stats.txt."""
    out: dict[str, dict[str, str]] = {}
    name = None
    for line in path.read_text().splitlines():
        m = re.match(r"=== (\w+) ===", line)
        if m:
            name = m.group(1)
            out.setdefault(name, {})
            continue
        if line.strip() in ("MAPPING", "STATS"):
            name = None
        if name:
            k, sep, v = line.partition(":")
            if sep and k.strip() not in out[name]:
                out[name][k.strip()] = v.strip()
    return out


@pytest.mark.parametrize("name", ["eyeriss_like", "simba_like"])
def test_timeloop_import_matches_timeloops_own_specs(name):
    res = timeloop(name)
    arch = res.arch
    specs = timeloop_specs(TL / name / "timeloop-mapper.stats.txt")
    storage = {k: v for k, v in specs.items() if "Size" in v}
    assert sorted(storage) == sorted(m.name for lv in arch.levels for m in lv.memories)
    for mname, s in storage.items():
        m = arch.memory(mname)
        lv = next(lv for lv in arch.levels if m in lv.memories)
        word = int(s["Word bits"])
        assert m.precision == Precision.uniform(word)
        assert lv.instances == int(s["Instances"].split()[0])
        if s["Size"] == "-":
            assert m.capacity_bytes is None
        else:
            assert m.capacity_bytes == int(s["Size"]) * word / 8
        block, cluster = int(s["Block size"]), int(s["Cluster size"])
        assert m.word_bits == block * word
        for key, bw in (("Read bandwidth", m.read_bw_bytes_per_cycle),):
            assert bw == (math.inf if s[key] == "-" else float(s[key]) * word / 8)
        # Timeloop prints the larger of the read and write energies of one
        # access of its block (to 0.01 pJ); a cluster shares one access
        vec = float(s["Vector access energy"].split()[0])
        per_access = max(m.read_energy_pj_per_word, m.write_energy_pj_per_word)
        assert per_access == pytest.approx(vec, abs=0.0051)
        assert cluster == 1 or m.word_bits == word  # a cluster's word is one datum
    mac = arch.compute[0]
    assert mac.pes == int(specs["mac"]["Instances"].split()[0])
    assert mac.energy_pj_per_op["mac"] == pytest.approx(
        float(specs["mac"]["Compute energy"].split()[0]), abs=0.0051
    )
    assert mac.precision.psum_bits == 16 and mac.precision.input_bits == 8
    # only mapping constraints (and the psum FIFO) are left out
    assert res.left_out and all(
        "a mapping constraint" in x or "update_fifo_depth" in x for x in res.left_out
    )


def test_timeloop_parallel_levels_and_bypass():
    eye = timeloop("eyeriss_like").arch
    assert [lv.name for lv in eye.levels] == [
        "DRAM",
        "shared_glb",
        "ifmap_spad+weights_spad+psum_spad",
    ]
    assert eye.memory("shared_glb").serves == ("input", "output")
    assert memory_for(eye, 1, "B", ("weight",)) is None  # weights bypass the GLB
    simba = timeloop("simba_like").arch
    assert [lv.instances for lv in simba.levels] == [1, 1, 16, 64, 256]
    pe = simba.level("PEWeightBuffer+PEAccuBuffer")
    assert memory_for(simba, pe.name, "A", ("input",)) is None  # the !Nothing branch
    assert simba.memory("PEAccuBuffer").precision.psum_bits == 24


def test_timeloop_without_ert_estimates_and_says_so():
    res = import_file(TL / "eyeriss_like" / "arch.yaml", "timeloop")
    assert any("estimated from einsim's tables" in n for n in res.notes)
    # LPDDR4 at 8 pJ/bit (einsim's DRAM table) x the 64-bit word
    assert res.arch.memory("DRAM").read_energy_pj_per_word == pytest.approx(512.0)


# -------------------------------------------------------------- AccelForge


def test_accelforge_tpu_v4i():
    res = import_file(AF / "tpu_v4i.yaml", "accelforge")
    arch = res.arch
    assert arch.clock_hz == 1.05e9
    assert [lv.name for lv in arch.levels] == [
        "MainMemory",
        "GlobalBuffer",
        "LocalBuffer",
        "Register",
    ]
    assert [lv.instances for lv in arch.levels] == [1, 1, 4, 4 * 128 * 128]
    mm, gb, lb, reg = (
        arch.memory(n) for n in ("MainMemory", "GlobalBuffer", "LocalBuffer", "Register")
    )
    assert mm.capacity_bytes is None
    assert gb.capacity_bytes == 128 * 2**20 and lb.capacity_bytes == 4 * 2**20
    assert reg.capacity_bytes == 1 and reg.serves == ("weight",)  # one 8-bit weight
    # J per bit -> pJ per 8-bit word; bits per second -> bytes per cycle
    assert mm.read_energy_pj_per_word == pytest.approx(7.03 * 8)
    assert gb.read_energy_pj_per_word == pytest.approx(1.88 * 8)
    assert gb.write_energy_pj_per_word == pytest.approx(2.36 * 8)
    assert mm.read_bw_bytes_per_cycle == pytest.approx(614e9 / 1.05e9)
    assert gb.read_bw_bytes_per_cycle == pytest.approx(2048e9 / 1.05e9)
    assert gb.write_bw_bytes_per_cycle == pytest.approx(1024e9 / 1.05e9)
    assert not gb.shared_bw and mm.shared_bw  # max(...) = separate ports
    assert gb.area_mm2 == pytest.approx(112.0) and lb.area_mm2 == pytest.approx(51.0)
    assert lb.serves == ("input", "output")
    glb, local = arch.levels[1], arch.levels[2]
    assert (glb.fanout_x, glb.share_x) == (4, ())  # may_reuse: Nothing
    assert (local.fanout_x, local.fanout_y) == (128, 128)
    assert (local.share_x, local.share_y) == (("input",), ("output",))
    mac, scalar = arch.compute
    assert scalar.fed_by == "LocalBuffer" and scalar.pes == 4
    assert scalar.ops_per_cycle["exp"] == 128 and "mac" not in scalar.ops_per_cycle
    assert mac.pes == 65536 and (mac.rows, mac.cols) == (128, 128)
    assert mac.energy_pj_per_op == {"mac": pytest.approx(0.084)}
    assert all("min_usage" in x for x in res.left_out) and len(res.left_out) == 3


def test_accelforge_memory_bits_per_value():
    simba = import_file(AF / "simba.yaml", "accelforge").arch
    assert simba.memory("AccumulationBuffer").precision == Precision(None, None, 24, 24)


def test_accelforge_expressions_are_never_executed(tmp_path):
    text = (
        (AF / "tpu_v4i.yaml")
        .read_text()
        .replace("size: 1024*1024*4*8 # 4MB", "size: __import__('os').getpid()")
    )
    f = tmp_path / "evil.yaml"
    f.write_text(text)
    with pytest.raises(HardwareError) as err:
        import_file(f, "accelforge")
    assert "unsupported expression" in str(err.value) and err.value.file == str(f)


# ------------------------------------------------------------ errors and CLI


@pytest.mark.parametrize(
    "tool, text, line, message",
    [
        ("zigzag", "name: x\nmemories: [1, 2]\n", None, "a ZigZag hardware file has"),
        (
            "zigzag",
            (ZZ / "tpu_like.yaml").read_text().replace("- I2, tl", "- I2, sideways", 1),
            None,
            "allocation[0] must be 'OPERAND, DIRECTION'",
        ),
        ("timeloop", "architecture:\n  version: 0.3\n  nodes: []\n", 1, "only Timeloop v0.4"),
        (
            "timeloop",
            "architecture:\n  version: 0.4\n  nodes:\n  - !Widget {name: w}\n",
            4,
            "unknown node tag !Widget",
        ),
        (
            "accelforge",
            "arch:\n  nodes:\n  - !Memory {name: m, size: 1 +}\n",
            None,
            "not an expression",
        ),
        ("zigzag", "name: [unclosed\n", 2, "YAML syntax error"),
    ],
)
def test_bad_peer_files_are_one_clear_error(tmp_path, tool, text, line, message):
    f = tmp_path / "in.yaml"
    f.write_text(text)
    with pytest.raises(HardwareError) as err:
        import_file(f, tool)
    assert message in str(err.value), str(err.value)
    assert err.value.file == str(f)
    if line is not None:
        assert err.value.line == line
    assert main(["hw", "import", str(f), "--from", tool]) == 2


def test_zigzag_allocation_error_names_its_line(tmp_path):
    text = (ZZ / "tpu_like.yaml").read_text()
    bad = text.replace("- I2, tl", "- I2, sideways", 1)
    f = tmp_path / "tpu.yaml"
    f.write_text(bad)
    with pytest.raises(HardwareError) as err:
        import_file(f, "zigzag")
    want = next(i for i, s in enumerate(bad.splitlines(), 1) if "I2, sideways" in s)
    assert err.value.line == want


def test_cli_import_writes_a_checked_tree(tmp_path, capsys):
    out = tmp_path / "eyeriss.yaml"
    assert (
        main(["hw", "import", str(ZZ / "eyeriss_like.yaml"), "--from", "zigzag", "--out", str(out)])
        == 0
    )
    err = capsys.readouterr().err
    assert "left out: nothing" in err and f"wrote {out}" in err
    assert out.read_text().startswith("# imported by `einsim hw import --from zigzag`")
    assert hw_models.load(str(out)) == zigzag("eyeriss_like").arch
    assert main(["hw", "check", str(out)]) == 0
    capsys.readouterr()
    d = TL / "simba_like"
    args = ["hw", "import", str(d / "arch.yaml"), "--from", "timeloop", "--ert"]
    assert main([*args, str(d / "timeloop-mapper.ERT.yaml"), "--name", "simba"]) == 0
    printed = capsys.readouterr()
    assert "left out:" in printed.err and "PE.constraints.spatial" in printed.err
    assert hw_models.loads(printed.out).name == "simba"
    assert (
        main(
            [
                "hw",
                "import",
                str(ZZ / "tpu_like.yaml"),
                "--from",
                "zigzag",
                "--precision",
                "input=8,psum=32",
            ]
        )
        == 0
    )
    assert hw_models.loads(capsys.readouterr().out).compute[0].precision == Precision(
        8, None, 32, None
    )
    assert (
        main(
            ["hw", "import", str(ZZ / "tpu_like.yaml"), "--from", "zigzag", "--precision", "acc=3"]
        )
        == 2
    )


def test_the_import_commands_of_docs_hardware_md_run(tmp_path, monkeypatch, capsys):
    """Every `einsim hw import` / `hw check` line of docs/hardware.md runs
    (from the repository root; files written to a temporary folder)."""
    import shlex

    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "hardware.md").read_text()
    lines = [
        ln
        for ln in doc.splitlines()
        if ln.startswith(("einsim hw import tests/", "einsim hw check zz"))
    ]
    assert len(lines) >= 4
    monkeypatch.chdir(root)
    for line in lines:
        args = shlex.split(line)[1:]
        args = [str(tmp_path / a) if a.endswith(".yaml") and "/" not in a else a for a in args]
        assert main(args) == 0, line
    capsys.readouterr()

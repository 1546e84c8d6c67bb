"""Bad input never crashes, hangs or eats memory (issue 14).

* Regression tests: every example of the issue, one by one, through the CLI.
* A quick fuzz sample of all seven input kinds in the default run.
* The slow campaign: over 100,000 mutated inputs in two child processes,
  each under a memory limit (+1 GiB over its size after imports) and a
  30 s alarm per input, plus a sample re-run through real ``einsim``
  processes. Each input exits 0, or 2 with one line naming the file and the
  line (see ``tests/support/fuzz_inputs.py`` for the contract).
"""

from __future__ import annotations

import os
import random
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fuzz_inputs import (
    BOMB,
    INTERESTING,
    KINDS,
    MEMORY_LIMIT_BYTES,
    SLOW_COUNTS,
    TIME_LIMIT_S,
    Case,
    campaign,
    generate,
    run_case,
    run_in_subprocess,
    seeds,
    table,
)

ROOT = Path(__file__).resolve().parents[2]
HW = (ROOT / "hw_models/presets/tpu_like.yaml").read_text()
SPEC = """\
hardware:
  - base: tpu_like
    vary: {rows: [8, 16]}
workloads:
  - {name: gemm, params: {M: 64}}
"""
REF = ROOT / "experiments/data/scalesim/reference.csv"
ARRAY_HEAD = REF.read_text().splitlines()[0]
ARRAY_ROW = next(ln for ln in REF.read_text().splitlines() if ln.startswith("sq_64,"))
KERNELS = (ROOT / "experiments/data/h100/kernels.csv").read_text().splitlines()

ARGV = {
    "einsum": ["workload", "check", "{dir}/in.ein"],
    "hardware": ["hw", "check", "{dir}/in.yaml"],
    "spec": ["sweep", "{dir}/in.yaml", "--out", "{dir}/run", "--check"],
    "gpu_csv": ["gpu-predict", "--kernels", "{dir}/in.csv", "--out", "{dir}/out.csv"],
    "array_csv": ["array-predict", "--layers", "{dir}/in.csv", "--out", "{dir}/out.csv"],
    "mapping": ["eval", "-w", "gemm", "--hw", "tpu_like", "--mapping", "{dir}/in.yaml"],
}


def _file(kind: str, data: str | bytes) -> Case:
    name = next(a for a in ARGV[kind] if a.startswith("{dir}/in"))
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return Case(kind, list(ARGV[kind]), {name.removeprefix("{dir}/"): raw}, input_name=name)


def _run(case: Case) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as d:
        r = run_case(case, d)
        assert r.problem == "", f"{r.problem} (stderr: {r.stderr!r})"
        return r.rc, r.stderr.replace(d, "DIR")


def refused(case: Case, *needles: str) -> str:
    rc, err = _run(case)
    assert rc == 2, err
    for n in needles:
        assert n in err, err
    return err


# ----------------------------------------------------------- the examples


@pytest.mark.parametrize("kind", ["hardware", "spec", "mapping"])
def test_alias_bomb_is_refused_before_it_expands(kind: str) -> None:
    refused(_file(kind, BOMB), "expands to more than 500,000 values")


def test_sweep_ranges_and_samples_are_bounded() -> None:
    refused(
        _file("spec", SPEC.replace("[8, 16]", "{range: [1, 1e15], step: 1}")),
        "gives 1,000,000,000,000,000 values; expected at most 100,000",
    )
    refused(
        _file("spec", SPEC + "sampling: {method: random, samples: 1000000000000}\n"),
        "expected an integer from 1 to 1,000,000",
    )
    refused(_file("spec", SPEC + "timeout_s: 1e15\n"), "expected at most 86400 s")
    big = SPEC.replace("[8, 16]", "{range: [8, 4096], step: 1}").replace(
        "M: 64", "M: {range: [1, 1000], step: 1}"
    )
    refused(_file("spec", big), "4,089,000 points", "expected at most 500,000")


def test_huge_workload_sizes_are_refused() -> None:
    rc, err = _run(Case("values", ["eval", "-w", "mlp", "-p", "LAYERS=1e15", "--hw", "tpu_like"]))
    assert rc == 2 and "LAYERS=1000000000000000; expected a positive integer <= 2^48" in err
    rc, err = _run(Case("values", ["workload", "show", "mlp", "-p", "LAYERS=20000"]))
    assert rc == 2 and "59,999 Einsums; expected at most 32,768" in err
    rc, err = _run(Case("values", ["workload", "show", "gemm", "-p", f"M={'9' * 5000}"]))
    assert rc == 2 and "expected a positive integer" in err


def test_array_predict_caps_huge_convolutions() -> None:
    conv = "c,conv,,,,2048,2048,3,3,64,64,1,a,128,128,os,64,64,64,32,32,32"
    head = ",".join(ARRAY_HEAD.split(",")[:22])
    refused(
        _file("array_csv", f"{head}\n{conv}\n"),
        "in.csv:2: the convolution's lowered ifmap is 4186116x576",
        "at most 4,194,304",
    )


@pytest.mark.parametrize("kind", ["einsum", "hardware", "spec", "gpu_csv", "array_csv", "mapping"])
@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "directory"])
def test_special_files_are_refused_without_reading(kind: str, special: str) -> None:
    case = _file(kind, "")
    path = {"/dev/zero": "/dev/zero", "fifo": "{dir}/fifo", "directory": "{dir}"}[special]
    case.argv = [path if a.startswith("{dir}/in") else a for a in case.argv]
    case.input_name = None
    rc, err = _run(case)
    assert rc == 2 and err.count("\n") == 1, err
    assert "not a regular file" in err or "directory" in err, err


@pytest.mark.parametrize("base", ["/proc/self/environ", "../../etc/passwd", "/dev/zero"])
def test_a_spec_base_must_be_a_preset_or_a_hardware_file(base: str) -> None:
    refused(
        _file("spec", SPEC.replace("base: tpu_like", f"base: {base}")),
        "in.yaml:2:",
        "expected a preset",
    )


def test_a_spec_base_file_that_is_special_is_refused(tmp_path: Path, capsys) -> None:
    from experiments.cli import main

    os.mkfifo(tmp_path / "hw.yaml")  # resolved next to the spec, and never opened blocking
    (tmp_path / "s.yaml").write_text(SPEC.replace("base: tpu_like", "base: hw.yaml"))
    assert main(["sweep", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "o"), "--check"]) == 2
    assert "not a regular file" in capsys.readouterr().err


def test_python_exceptions_of_the_audit_are_clean_errors() -> None:
    huge = "9" * 4400
    # integers over 4,300 digits, in every kind
    refused(_file("hardware", HW.replace("rows: 256", f"rows: {huge}")), "in.yaml:", "too large")
    refused(_file("spec", SPEC.replace("M: 64", f"M: {huge}")), "in.yaml:5:", "too large")
    refused(_file("einsum", f"declare A[m:{huge}]\nB[m] = A[m]\n"), "in.ein:1:", "out of range")
    kernels = KERNELS[0] + "\n" + KERNELS[1].replace(",256,", f",{huge},", 1) + "\n"
    refused(_file("gpu_csv", kernels), "in.csv:2:", "column 'M'")
    # family: {a: 1} (TypeError), rows: !!float (IndexError), rows: ._ (ValueError)
    refused(_file("hardware", HW.replace("family: spatial", "family: {a: 1}")), "family must be")
    refused(_file("hardware", HW.replace("rows: 256", "rows: !!float")), "not a valid float")
    refused(_file("hardware", HW.replace("rows: 256", "rows: ._")), "not a valid float")
    # 400-digit floats, and 1e308 in CSV fields (OverflowError)
    refused(_file("hardware", HW.replace("rows: 256", f"rows: {'9' * 400}.5")), "out of range")
    row = KERNELS[1].replace(",256,", ",1e308,", 1)
    refused(_file("gpu_csv", KERNELS[0] + "\n" + row + "\n"), "in.csv:2:", "2^48")
    arr = ARRAY_ROW.replace("sq_64,gemm,64,", "sq_64,gemm,1e308,", 1)
    refused(_file("array_csv", f"{ARRAY_HEAD}\n{arr}\n"), "in.csv:2:", "up to 2^48")
    # control characters in a spec (ReaderError); nesting 2,000 deep (RecursionError)
    refused(_file("spec", SPEC.replace("gemm", "ge\x01mm")), "in.yaml:5:", "control character")
    refused(_file("spec", "x: " + "[" * 2000 + "]" * 2000 + "\n"), "in.yaml:1:")
    refused(_file("hardware", "a:\n" + "".join("  " * i + "-\n" for i in range(1, 80))), "nested")
    # CSV fields over 128 KiB (_csv.Error); a non-UTF-8 CSV (UnicodeDecodeError)
    long = KERNELS[1].replace("k000", "x" * 140_000)
    refused(_file("gpu_csv", KERNELS[0] + "\n" + long + "\n"), "in.csv:2:", "longer than 131,072")
    latin = (KERNELS[0] + "\n" + KERNELS[1].replace("k000", "k\xe9")).encode("latin-1")
    refused(_file("gpu_csv", latin), "in.csv:2:2:", "not UTF-8")
    refused(_file("array_csv", b"\xff\xfe" + ARRAY_HEAD.encode()), "in.csv:1:1:", "not UTF-8")


def test_a_dashboard_baseline_design_must_be_a_scalar() -> None:
    # found by the 100,000-input campaign: a mapping as the baseline design
    # was hashed before it was checked (TypeError: unhashable type: 'dict')
    spec = SPEC + "dashboard:\n  baseline: {design: {range: [1, 2]}, rows: 8}\n"
    refused(_file("spec", spec), "in.yaml:7:22:", "dashboard.baseline.design", "expected a scalar")


def test_the_ilp_on_huge_gemms_is_refused_or_bounded() -> None:
    """GEMM 2^47 cubed ran the ILP out of memory (a table as long as each
    rank): refused now, in fixed memory, saying why and what to use."""
    n = str(2**47)
    argv = ["eval", "-w", "gemm", "-p", f"M={n}", "-p", f"N={n}", "-p", f"K={n}"]
    rc, err = _run(Case("values", [*argv, "--hw", "tpu_like", "--mapper", "ilp"]))
    assert rc == 2 and "overflows 64-bit integers" in err and "greedy mapper" in err, err


@pytest.mark.slow
def test_the_ilp_on_gemm_720720_stays_small() -> None:
    """GEMM 720720 cubed peaked at 2.5 GB (the same tables): now the
    tables hold only the extents tile factors can give (240 divisors)."""
    import resource
    import subprocess
    import sys

    n = "720720"
    code = "import sys; from experiments.cli import run; sys.argv[0] = 'einsim'; run()"
    argv = ["eval", "-w", "gemm", "-p", f"M={n}", "-p", f"N={n}", "-p", f"K={n}", "--hw"]
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv, "tpu_like", "--mapper", "ilp"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    assert peak < MEMORY_LIMIT_BYTES, f"peak {peak / 2**20:.0f} MiB"


def test_a_full_simulation_has_a_step_budget() -> None:
    """``--sim des --full-sim`` on GEMM 65536 cubed had no cap (billions of
    events): refused before simulating, naming the way out."""
    n = "65536"
    argv = ["eval", "-w", "gemm", "-p", f"M={n}", "-p", f"N={n}", "-p", f"K={n}"]
    argv += ["--hw", "eyeriss_like", "--mapper", "greedy", "--sim", "des", "--full-sim"]
    rc, err = _run(Case("values", argv))
    assert rc == 2 and "tile steps; the limit is 2,000,000" in err and "--full-sim" in err, err


def test_a_workload_wider_than_the_design_names_the_remedy() -> None:
    """int8 presets and 16-bit library workloads: the error says so and how."""
    base = ["eval", "-w", "gemm", "--hw", "simba_like", "--mapper", "ilp"]
    rc, err = _run(Case("values", base))
    assert rc == 2 and "16-bit but simba_like computes in 8-bit" in err and "-p bits=8" in err
    rc, err = _run(Case("values", [*base, "-p", "bits=8"]))
    assert rc == 0, err
    # the audit's example: the ILP on u280 (int8) and the default 16-bit GEMM
    rc, err = _run(Case("values", ["eval", "-w", "gemm", "--hw", "u280", "--mapper", "ilp"]))
    assert rc == 2 and "add --sim analytical to map it as a spatial array" in err, err
    rc, err = _run(Case("values", ["eval", "-w", "gemm", "--hw", "u280", "--mapper", "ilp",
                                   "--sim", "analytical"]))  # fmt: skip
    assert rc == 2 and "u280 computes in 8-bit" in err and "-p bits=8" in err, err


def test_mapping_errors_name_the_file_and_line() -> None:
    text = seeds()["mapping"][0].replace("level: GlobalBuffer", "level: GlobalBufer")
    refused(_file("mapping", text), "in.yaml:1: mapping of C: unknown level 'GlobalBufer'")


def test_usage_errors_are_one_line() -> None:
    for argv in (["eval", "--bogus"], ["nope"], ["hw", "derive", "tpu_like", "--set", "rows"]):
        rc, err = _run(Case("values", argv))
        assert rc == 2 and err.count("\n") == 1 and err.startswith("einsim: error: "), err


def test_an_output_path_that_cannot_be_written_is_bad_input() -> None:
    case = _file("gpu_csv", "\n".join(KERNELS[:3]) + "\n")
    case.argv = [a if a != "{dir}/out.csv" else "/proc/einsim-nope/out.csv" for a in case.argv]
    case.input_name = None  # the message is about the output
    rc, err = _run(case)
    assert rc == 2 and err == "einsim: error: /proc/einsim-nope: No such file or directory\n"


def test_cascade_structure_is_computed_once() -> None:
    """Cascade.inputs/outputs were recomputed on every access (quadratic
    `workload show`): now cached, and lookups are by index."""
    from workloads import library

    c = library.build("mlp", LAYERS=50)
    assert c.inputs is c.inputs and c.outputs is c.outputs
    assert c.tensor("W7").name == "W7" and c.producer("H7").name == "H7"
    assert [e.name for e in c.consumers("H7")] == ["Z8"]
    roles = {t["name"]: t["role"] for t in c.summary()["tensors"]}
    assert roles["X"] == "input" and roles["Y"] == "output" and roles["H7"] == "intermediate"


def test_tls_options(tmp_path: Path) -> None:
    from experiments.sweep.engine import EngineError, tls_security

    assert tls_security("tcp://h:1") is None
    with pytest.raises(EngineError, match="need --scheduler tls://"):
        tls_security("tcp://h:1", ca_file="ca.pem", cert="c.pem")
    with pytest.raises(EngineError, match="needs --tls-ca-file and --tls-cert"):
        tls_security("tls://h:1", ca_file="ca.pem")
    with pytest.raises(EngineError, match="ca.pem: cannot read --tls-ca-file file"):
        tls_security("tls://h:1", ca_file=str(tmp_path / "ca.pem"), cert="c.pem")
    for n in ("ca.pem", "c.pem", "k.pem"):
        (tmp_path / n).write_text("-----BEGIN CERTIFICATE-----\n")
    sec = tls_security("tls://h:1", *(str(tmp_path / n) for n in ("ca.pem", "c.pem", "k.pem")))
    assert sec.require_encryption and sec.tls_ca_file == str(tmp_path / "ca.pem")
    assert sec.tls_client_cert == str(tmp_path / "c.pem")


# ---------------------------------------------------------------- fuzzing


def _assert_clean(results: dict) -> None:
    for kind, s in results.items():
        assert s.failures == [], f"{kind}: {s.failures[:3]}"
        assert s.max_s < TIME_LIMIT_S, (kind, s.max_s, s.slowest)
        assert s.ok + s.exit2 == s.inputs


def test_quick_fuzz_sample() -> None:
    """A few hundred inputs of every kind (the default run)."""
    counts = {k: 40 for k in KINDS}
    results = campaign(counts, seed=7, timeout_s=900)
    _assert_clean(results)
    assert sum(s.inputs for s in results.values()) == sum(counts.values())
    # both outcomes are exercised (the mutations keep some inputs valid)
    assert sum(s.ok for s in results.values()) > 20


#: the slow campaign (SLOW_COUNTS, 100,000 inputs) in two child processes of
#: about equal time (gpu_csv and mapping cost ~5 and ~1.3 ms an input, the
#: rest ~0.7-4 ms)
SLOW_PARTS = (
    {k: n for k, n in SLOW_COUNTS if k in ("gpu_csv", "mapping")},
    {k: n for k, n in SLOW_COUNTS if k not in ("gpu_csv", "mapping")},
)


@pytest.mark.slow
def test_fuzz_campaign_100k() -> None:
    with ThreadPoolExecutor(2) as ex:
        parts = list(ex.map(lambda c: campaign(c, seed=14, timeout_s=3000), SLOW_PARTS))
    results = {k: v for p in parts for k, v in p.items()}
    print("\n" + table(results))
    assert sum(s.inputs for s in results.values()) >= 100_000
    _assert_clean(results)
    assert set(results) == set(KINDS)


@pytest.mark.slow
def test_a_sample_through_real_processes() -> None:
    """The in-process runs stand for real ``einsim`` processes: the same
    exit status and the same error line."""
    texts = seeds()
    for kind in KINDS:
        rng = random.Random(f"real-{kind}")
        for _ in range(3):
            case = generate(kind, rng, texts)
            with tempfile.TemporaryDirectory() as d:
                r = run_case(case, d)
                rc, err = run_in_subprocess(case, d)
            assert r.problem == ""
            assert rc == r.rc, (case.argv, err, r.stderr)
            last = [ln for ln in err.splitlines() if ln.startswith("einsim: error")]
            if rc == 2:
                assert last and last[-1] in r.stderr, (err, r.stderr)


def test_interesting_values_cover_the_audit() -> None:
    for v in ("9" * 5000, "1e400", "!!float", "._", "{a: 1}", "\x01", "/dev/zero"):
        assert v in INTERESTING
    assert re.search(r"&a|\*a", BOMB) and os.path.exists("/dev/zero")

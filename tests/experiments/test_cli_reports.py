"""What a user reads: long jobs show progress, multi-Einsum results end with
the workload's total, and every command prints SI-prefixed units."""

from __future__ import annotations

import re

from experiments.cli import main
from experiments.report import fmt_si


def _run(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_fmt_si_picks_the_prefix() -> None:
    assert fmt_si(4.2e-05, "s") == "42 us"
    assert fmt_si(6.881e-3, "s") == "6.881 ms"
    assert fmt_si(2.461e9 * 1e-12, "J") == "2.461 mJ"
    assert fmt_si(12.6e6, "B") == "12.6 MB"
    assert fmt_si(0.0, "B") == "0 B"


def test_map_of_a_cascade_shows_progress_and_ends_with_the_total(capsys) -> None:
    rc, out, err = _run(
        capsys, "map", "-w", "mlp", "-p", "LAYERS=3", "--hw", "tpu_like", "--mapper", "greedy"
    )
    assert rc == 0, err
    assert "mapping" in err  # the progress bar over the Einsums (stderr)
    last = out.rstrip().splitlines()[-1]
    assert re.match(
        r"total\s+8 Einsums: [\d.]+ [munp]?s, [\d.]+ [munpk]?J, DRAM [\d.]+ [kMG]?B", last
    )


def test_eval_and_schedule_print_energy_with_prefixes_not_raw_picojoules(capsys) -> None:
    for cmd in (
        ["eval", "-w", "gemm", "--hw", "eyeriss_like"],
        ["schedule", "-w", "mlp", "--hw", "fusemax_cloud", "--method", "greedy"],
    ):
        rc, out, err = _run(capsys, *cmd)
        assert rc == 0, err
        assert "e+" not in out and not re.search(r"\d{4,}(\.\d+)? [pnum]?J\b", out), out
        assert re.search(r"energy\s+[\d.]+ [munpk]?J", out)

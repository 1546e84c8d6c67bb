"""Record the exhaustive optima of the small mapping problems (the ILP's yardstick).

    python experiments/record_exhaustive_optima.py [--only 0,3] [--out FILE]

For each problem of :data:`experiments.problem_sets.SMALL_PROBLEMS`, runs the
exhaustive enumeration (every tiling, keep/bypass choice and loop-order
class; about 20 s of CPU each) and records, per objective, the optimum's
value and mapping, with a fingerprint of the problem and the size of its
space. The ILP-against-exhaustive tests compare against this file; they
re-evaluate every recorded optimum with the current cost model (so a model
change that moves an optimum fails them with a message to rerun this script)
and enumerate a few problems live on every run (so the file and the
enumerator are checked against each other). Prints a table as it goes.

Rerun it after any change to the analytical model, the mapping space or the
problem set; ``--only`` rewrites the listed problems and keeps the others.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from experiments.problem_sets import SMALL_PROBLEMS
from hw_models.arch import Architecture
from mappers.baselines.exhaustive import exhaustive_optima
from mappers.mapping import mapping_to_dict
from mappers.search import OBJECTIVES
from sim.analytical.model import evaluate, evaluate_batch
from workloads.ir import Einsum

#: where the ILP tests read the optima
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tests/mappers/ilp/exhaustive_optima.json"


def problem_fingerprint(einsum: Einsum, arch: Architecture) -> str:
    """A hash of the problem's full description (the Einsum and every
    architecture field): a changed problem no longer matches its record."""
    text = json.dumps(einsum.to_dict(), sort_keys=True) + "\n" + repr(arch)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def solve_exhaustively(einsum: Einsum, arch: Architecture) -> dict[str, Any]:
    """The record of one problem: fingerprint, space size and per-objective optima."""
    ex = exhaustive_optima(
        einsum,
        arch,
        objectives=OBJECTIVES,
        evaluate=lambda m: evaluate(einsum, arch, m),
        evaluate_batch=lambda ms: evaluate_batch(einsum, arch, ms),
        max_points=10**6,
        bypass=True,
    )
    first = next(iter(ex.values()))
    return {
        "einsum": einsum.name,
        "arch": arch.name,
        "fingerprint": problem_fingerprint(einsum, arch),
        "points": int(first.notes["points"]),
        "optima": {
            obj: {"value": r.objective_value, "mapping": mapping_to_dict(r.mapping)}
            for obj, r in ex.items()
        },
    }


def load_records(path: Path) -> dict[str, Any]:
    """The recorded problems by index (as strings, JSON's keys)."""
    return json.loads(path.read_text())["problems"] if path.exists() else {}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help="comma-separated problem indices (default: all)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON file to (re)write")
    args = ap.parse_args(argv)
    wanted = (
        range(len(SMALL_PROBLEMS))
        if args.only is None
        else [int(x) for x in args.only.split(",") if x.strip()]
    )
    records = load_records(args.out)
    print(
        f"{'#':>3} {'einsum':<8} {'arch':<10} {'points':>8} {'s':>6}  optima ({', '.join(OBJECTIVES)})"
    )
    for idx in wanted:
        e, a = SMALL_PROBLEMS[idx]
        t0 = time.perf_counter()
        rec = solve_exhaustively(e, a)
        secs = time.perf_counter() - t0
        records[str(idx)] = rec
        vals = ", ".join(f"{rec['optima'][o]['value']:.6g}" for o in OBJECTIVES)
        print(f"{idx:>3} {e.name:<8} {a.name:<10} {rec['points']:>8} {secs:>6.1f}  {vals}")
    doc = {
        "about": "exhaustive optima of experiments.problem_sets.SMALL_PROBLEMS; "
        "written by experiments/record_exhaustive_optima.py",
        "objectives": list(OBJECTIVES),
        "problems": dict(sorted(records.items(), key=lambda kv: int(kv[0]))),
    }
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {args.out} ({len(records)} problems)")


if __name__ == "__main__":
    main()

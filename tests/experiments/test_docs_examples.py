"""Every ``einsim`` command example in the docs runs.

Collects the lines of fenced code blocks in ``docs/*.md`` and ``README.md``
that invoke ``einsim`` (also after ``&&``, with ``\\`` continuations),
leaves out synopses (``[--opt]``, ``A|B``, ``...``, placeholders such as
``NAME`` or ``FILE``), and runs each as a real process in a fresh folder
where the files the examples name exist (``IN.csv``, ``ws.yaml``,
``my_cascade.ein`` and ``experiments/configs``). Commands run in the order
of their page, in one folder per page, so ``export runs/quickstart`` finds
the sweep the line before made.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
#: words that stand for something the reader fills in
PLACEHOLDERS = re.compile(r"\b(NAME|FILE|DIR|SPEC|PRESET|RANK|HOST|PORT)\b|\[|\||\.\.\.")
#: per-example time limit (s); the quickstart sweep is the longest
LIMIT_S = 900
#: marks an example whose page says it exits 2 (bad input shown on purpose)
EXITS_2 = "  # exits 2"


def commands(page: Path) -> list[str]:
    """The runnable ``einsim`` command lines of ``page``, in order."""
    out: list[str] = []
    for block in re.findall(
        r"^```[^\n]*\n(.*?)^```", page.read_text(encoding="utf-8"), re.S | re.M
    ):
        joined = re.sub(r"\\\n\s*", " ", block)  # continuation lines
        for line in joined.splitlines():
            for part in re.split(r"&&|;", line):
                part = part.strip().removeprefix("$ ").strip()
                cmd = re.sub(r"\s+#.*$", "", part)  # trailing comment
                if cmd.startswith("einsim ") and not PLACEHOLDERS.search(cmd):
                    # an example of bad input says so: "# exits 2"
                    out.append(cmd + (EXITS_2 if re.search(r"#.*exits 2", part) else ""))
    return out


def _fixtures(folder: Path) -> None:
    """The files the examples name."""
    import hw_models
    import sim
    from mappers.mapping import dump_mappings
    from workloads import library

    (folder / "experiments").mkdir(exist_ok=True)
    link = folder / "experiments" / "configs"
    if not link.exists():
        link.symlink_to(ROOT / "experiments" / "configs")
    kernels = (ROOT / "experiments/data/h100/kernels.csv").read_text().splitlines()
    (folder / "IN.csv").write_text("\n".join(kernels[:9]) + "\n")
    gemm = library.build("gemm", M=512, N=512, K=512)
    ws = sim.evaluate(gemm, hw_models.load("fusemax_cloud"), mapper="greedy").mappings
    (folder / "ws.yaml").write_text(dump_mappings(ws))
    (folder / "my_cascade.ein").write_text(library.build_text("attention-3pass", M=64, P=64))
    # the peers' example files the hardware guide imports
    (folder / "tests").symlink_to(ROOT / "tests")


EXAMPLES = [(p, c) for p in PAGES for c in commands(p)]


def test_the_examples_are_found() -> None:
    pages = {p.name for p, _ in EXAMPLES}
    assert {"sweeps.md", "mappers.md", "workloads.md", "README.md"} <= pages
    assert len(EXAMPLES) >= 15
    assert not any(PLACEHOLDERS.search(c) for _, c in EXAMPLES)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {}


@pytest.mark.slow
@pytest.mark.parametrize(("page", "cmd"), EXAMPLES, ids=[f"{p.name}:{c[:60]}" for p, c in EXAMPLES])
def test_doc_example_runs(page: Path, cmd: str, folders, tmp_path_factory) -> None:
    folder = folders.get(page.name)
    if folder is None:
        folder = folders[page.name] = tmp_path_factory.mktemp(page.stem)
        _fixtures(folder)
    expect = 2 if cmd.endswith(EXITS_2) else 0
    argv = shlex.split(cmd.removesuffix(EXITS_2))[1:]
    code = "import sys; sys.argv[0] = 'einsim'; from experiments.cli import run; run()"
    env = {**os.environ, "EINSIM_DEBUG": ""}
    r = subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        env=env,
    )
    assert r.returncode == expect, f"{page.name}: `{cmd}` exited {r.returncode}: {r.stderr[-2000:]}"
    if expect == 2:  # one clear line, no traceback
        assert r.stderr.startswith("einsim: error: ") and r.stderr.count("\n") == 1, r.stderr

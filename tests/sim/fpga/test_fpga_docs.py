"""Every example in docs/fpga.md runs: Python blocks as scripts, and each
``einsim`` line of the bash blocks (``# exits 2`` marks a refused input)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOC = (ROOT / "docs" / "fpga.md").read_text()
PY = re.findall(r"```python\n(.*?)```", DOC, flags=re.S)
SH = [
    line.strip()
    for block in re.findall(r"```bash\n(.*?)```", DOC, flags=re.S)
    for line in block.splitlines()
    if line.strip().startswith("einsim ")
]


def test_the_page_has_examples() -> None:
    assert len(PY) >= 1 and len(SH) >= 3


@pytest.mark.parametrize("i", range(len(PY)))
def test_python_example_runs(i: int, tmp_path: Path) -> None:
    script = tmp_path / f"fpga_block{i + 1}.py"
    script.write_text(PY[i])
    r = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("line", SH)
def test_command_example_runs(line: str, tmp_path: Path) -> None:
    from experiments.cli import main

    cmd, _, comment = line.partition("#")
    want = 2 if "exits 2" in comment else 0
    argv = shlex.split(cmd)[1:]
    argv = [str(tmp_path / a) if a.endswith((".yaml", "-report")) else a for a in argv]
    assert main(argv) == want, line

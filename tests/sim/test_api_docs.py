"""Every Python example in docs/api.md runs, as its own script, and its
assertions hold."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "api.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_api_example_runs(i: int, tmp_path: Path) -> None:
    script = tmp_path / f"api_block{i + 1}.py"
    script.write_text(BLOCKS[i])
    r = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, f"docs/api.md block {i + 1}:\n{r.stderr}"

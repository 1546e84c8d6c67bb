"""One loader for workloads: a library name or a cascade file, with parameters.

    workloads.load("gemm", M=512)                 # the library (workloads/library)
    workloads.load("my_attention.ein", P=4096)    # a text or YAML cascade file

A cascade file may declare parameters (``param NAME = DEFAULT`` lines in the
text format, a ``params:`` mapping in YAML; see ``docs/workloads.md``);
``params`` override their defaults. The CLI (``-w/--workload`` with
``-p/--param``) and sweep specs (``workloads: - name: FILE, params: ...``)
both call this function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workloads.errors import WorkloadError

#: file endings read as cascade files
CASCADE_SUFFIXES = (".ein", ".txt", ".yaml", ".yml")


def is_cascade_file(name: str) -> bool:
    """Whether ``name`` names a cascade file rather than a library workload."""
    from workloads import library

    if name in library.list_workloads():
        return False
    p = Path(name)
    return p.suffix.lower() in CASCADE_SUFFIXES or p.exists()


def load(name_or_path: str | Path, **params: Any) -> Any:
    """A :class:`~workloads.ir.Cascade` from the library or from a file."""
    name = str(name_or_path)
    if not name:
        raise WorkloadError("a workload name or cascade file is needed")
    if is_cascade_file(name):
        from workloads.parser import load_cascade

        return load_cascade(Path(name), params=params)
    from workloads import library

    return library.build(name, **params)


def parameters(name_or_path: str | Path) -> dict[str, Any]:
    """The parameters a workload takes, with their defaults: the library's,
    or a cascade file's ``param NAME = DEFAULT`` lines (YAML files: in the
    ``cascade`` text)."""
    name = str(name_or_path)
    if not is_cascade_file(name):
        from workloads import library

        return library.parameters(name)
    cascade = load(name)  # the file must parse; errors name its line
    del cascade
    from workloads.parser import declared_params, read_cascade_text

    return declared_params(read_cascade_text(Path(name)))

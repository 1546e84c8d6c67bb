"""Workloads: the Einsum-cascade IR (``ir``), its text format (``parser``), the
workload library (``library``), the numpy reference executor (``executor``)
and the one loader, :func:`load` (``loader``).

See ``docs/workloads.md``. Importing this package is cheap: networkx, numpy and
PyYAML are imported by the functions that need them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load"]


def load(name_or_path: Any, **params: Any) -> Any:
    """A cascade from the library (by name) or from a file: see :mod:`workloads.loader`."""
    from workloads.loader import load as _load

    return _load(name_or_path, **params)

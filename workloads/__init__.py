"""Workloads: the Einsum-cascade IR (``ir``), its text format (``parser``), the
workload library (``library``) and the numpy reference executor (``executor``).

See ``docs/workloads.md``. Importing this package is cheap: networkx, numpy and
PyYAML are imported by the functions that need them.
"""

"""Cost models: what a mapped workload costs (latency, traffic, energy).

The front door is :func:`sim.evaluate` (see :mod:`sim.api` and
``docs/api.md``); every command and sweep goes through it. Subpackages:
``analytical/`` (the vectorised reuse-analysis model and the cascade
model), ``des/`` (the discrete-event simulator), ``gpu/`` (the calibrated
GPU kernel model), ``systolic/`` (the SCALE-Sim-compatible array model).
Importing ``sim`` is cheap: the models load when first used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Evaluation", "evaluate", "evaluate_designs"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from sim import api

        return getattr(api, name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")

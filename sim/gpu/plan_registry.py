"""The names of the GPU plans: the one list ``--gpu-plan``, sweep specs and
``sim.evaluate(..., plan=...)`` accept (kept apart from :mod:`sim.gpu.plans`
so the CLI's choices cost no import of the kernel model).

A plan lowers a cascade to GPU kernels (fusion groups of its Einsums); see
docs/llm.md.
"""

from __future__ import annotations

from sim.gpu.spec import GpuModelError

#: plan -> one line for ``--help``
PLANS: dict[str, str] = {
    "library": "PyTorch eager: cuBLAS GEMMs, SDPA FlashAttention, one kernel per norm/activation",
    "fused": "a TensorRT-LLM-class stack: GEMM epilogues, fused norms, CUDA-graph replay",
    "ilp": "the cascade ILP's own fused kernels on the GPU hierarchy (IO-aware speed of light)",
}

#: the plan when none is given: what a framework runs (the layer measurements)
DEFAULT_PLAN = "library"

#: ``einsim schedule --method`` on a GPU: the method's plan (the cascade
#: scheduler's ILP is the ILP plan; the other methods are spatial-array
#: schedules)
SCHEDULE_PLANS: dict[str, str] = {"ilp": "ilp"}

#: the options the GPU model takes from the front door (``sim.evaluate``)
OPTIONS: tuple[str, ...] = (
    "plan",
    "params",
    "include_append",
    "pack",
    "timing",
    "max_group",
    "work_limit",
)


def check_plan(plan: str | None) -> str:
    """``plan`` (``None``: :data:`DEFAULT_PLAN`), or a :class:`GpuModelError`
    naming the plans."""
    if plan is None:
        return DEFAULT_PLAN
    if plan not in PLANS:
        raise GpuModelError(f"unknown GPU plan {plan!r}; expected one of {', '.join(PLANS)}")
    return plan


def help_text() -> str:
    return "; ".join(f"{k}: {v}" for k, v in PLANS.items())

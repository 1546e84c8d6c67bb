"""The one registry of cost models, and which model each hardware family gets.

Two kinds of model:

* **mapping** models cost one mapping per Einsum (the analytical model, the
  discrete-event simulator). ``sim.api`` finds the mappings with a mapper
  from :mod:`mappers.registry` (scored with the analytical model) and then
  costs them with the chosen model.
* **workload** models cost a whole workload on their family themselves (the
  GPU kernel model lowers a cascade to kernels, as the plan option ``plan``
  says: :data:`sim.gpu.plan_registry.PLANS`), so no mapper applies. One
  with a ``schedule`` hook answers ``sim.evaluate(..., schedule=METHOD)``
  too (on a GPU: the ILP plan's kernels as fusion groups).

``model="auto"`` picks :data:`FAMILY_MODELS` ``[arch.family]``. The CLI's
``--sim`` choices and help come from :data:`MODELS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workloads.errors import EinsimError

AUTO = "auto"


class ModelError(EinsimError):
    """An unknown cost model, or one that does not describe the hardware."""


@dataclass(frozen=True)
class CostModel:
    name: str
    #: one line for ``--help``
    summary: str
    #: the hardware families it describes
    families: tuple[str, ...]
    #: "mapping" (needs a mapping per Einsum) or "workload" (costs a workload itself)
    kind: str
    #: mapping models: (einsums, arch, mappings, *, parts, cascade, **opts) -> Metrics;
    #: workload models: (workload, arch, **opts) -> Metrics
    run: Callable[..., Any]
    #: workload models that schedule a cascade themselves:
    #: (workload, arch, method, **opts) -> (Schedule, Metrics)
    schedule: Callable[..., Any] | None = None


MODELS: dict[str, CostModel] = {}

#: hardware family -> the model ``auto`` picks
FAMILY_MODELS: dict[str, str] = {}


def register(model: CostModel, *, default_for: tuple[str, ...] = ()) -> CostModel:
    MODELS[model.name] = model
    for fam in default_for:
        FAMILY_MODELS[fam] = model.name
    return model


def names() -> tuple[str, ...]:
    return tuple(MODELS)


def choices() -> tuple[str, ...]:
    """What ``--sim`` accepts: ``auto`` and every registered model."""
    return (AUTO, *MODELS)


def help_text() -> str:
    parts = [
        f"{AUTO}: the family's model ({', '.join(f'{f} {m}' for f, m in FAMILY_MODELS.items())})"
    ]
    parts += [f"{m.name}: {m.summary}" for m in MODELS.values()]
    return "; ".join(parts)


def resolve(name: str, family: str, arch_name: str = "") -> CostModel:
    """The model ``name`` means on a design of ``family``; refuses models that
    do not describe that family, with the models that do."""
    if name in (AUTO, "", None):
        try:
            name = FAMILY_MODELS[family]
        except KeyError:
            raise ModelError(f"no cost model describes the {family!r} family") from None
    try:
        model = MODELS[name]
    except KeyError:
        raise ModelError(
            f"unknown model {name!r} (expected one of {', '.join(choices())})"
        ) from None
    if family not in model.families:
        fits = [m.name for m in MODELS.values() if family in m.families]
        what = f" {arch_name}" if arch_name else ""
        raise ModelError(
            f"the {model.name} model describes {' and '.join(model.families)} designs, "
            f"but{what} is a {family} design; use {' or '.join([AUTO, *fits])}"
        )
    return model


# ------------------------------------------------------------------ models


def _analytical(
    einsums: list[Any],
    arch: Any,
    mappings: dict[str, Any],
    *,
    parts: dict[str, Any] | None = None,
    **opts: Any,
) -> Any:
    """The Einsums' metrics combined in sequence. ``parts`` are the metrics
    of these mappings from this model, when the caller has them (the front
    door costs them in batches while mapping, :mod:`sim.mapped`)."""
    from sim.analytical.model import combine_sequential, evaluate

    if parts is None:
        parts = {e.name: evaluate(e, arch, mappings[e.name]) for e in einsums}
    if len(parts) == 1:
        return next(iter(parts.values()))
    return combine_sequential([parts[e.name] for e in einsums], arch, parts)


def _des(
    einsums: list[Any],
    arch: Any,
    mappings: dict[str, Any],
    *,
    parts: dict[str, Any] | None = None,
    **opts: Any,
) -> Any:
    """The mapped nests on the DES engine (``parts``, analytical metrics,
    are not used: the simulation times every Einsum itself)."""
    from sim.des.simulate import simulate_einsums

    return simulate_einsums(einsums, arch, mappings, **opts)


def _gpu(workload: Any, arch: Any, **opts: Any) -> Any:
    from sim.gpu.plans import evaluate

    return evaluate(workload, arch, **_gpu_options(opts))


def _gpu_schedule(workload: Any, arch: Any, method: str, **opts: Any) -> Any:
    from sim.gpu.plans import schedule

    return schedule(workload, arch, method, **_gpu_options(opts))


def _gpu_options(opts: dict[str, Any]) -> dict[str, Any]:
    """The front door's options the GPU plans take (``plan``, ...; see
    :data:`sim.gpu.plan_registry.OPTIONS`); ``None`` means the default."""
    from sim.gpu.plan_registry import OPTIONS

    return {k: v for k, v in opts.items() if k in OPTIONS and v is not None}


def _hls4ml(workload: Any, arch: Any, **opts: Any) -> Any:
    from sim.fpga import evaluate

    return evaluate(workload, arch, **{k: v for k, v in opts.items() if k in _HLS4ML_OPTIONS})


#: the options sim.fpga.evaluate takes from the front door
_HLS4ML_OPTIONS = ("reuse_factor", "precision", "strategy", "io_type", "samples")

register(
    CostModel(
        "analytical",
        "reuse analysis of the mapped loop nest (vectorised)",
        ("spatial", "fpga"),
        "mapping",
        _analytical,
    ),
    default_for=("spatial",),
)
register(
    CostModel(
        "hls4ml",
        "the network as hls4ml builds it (Vitis HLS resources, latency, power)",
        ("fpga",),
        "workload",
        _hls4ml,
    ),
    default_for=("fpga",),
)
register(
    CostModel(
        "des",
        "discrete-event simulation of the mapped nest (simpy): ports, buffers, units",
        ("spatial", "fpga"),
        "mapping",
        _des,
    )
)
register(
    CostModel(
        "gpu",
        "the calibrated GPU kernel model (a cascade lowered to kernels by a GPU plan)",
        ("gpu",),
        "workload",
        _gpu,
        schedule=_gpu_schedule,
    ),
    default_for=("gpu",),
)

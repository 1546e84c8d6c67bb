"""Helpers shared by the ``einsim`` commands."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from workloads.errors import EinsimError


def split_param(item: str, error: type[Exception], *, missing: str, empty: str) -> tuple[str, str]:
    """One ``--param NAME=VALUE`` -> (stripped NAME, VALUE as given).

    Raises ``error(f"--param {item!r}: {missing}")`` without ``=`` and
    ``error(f"--param {item!r}: {empty}")`` when NAME is blank.
    """
    if "=" not in item:
        raise error(f"--param {item!r}: {missing}")
    k, v = item.split("=", 1)
    k = k.strip()
    if not k:
        raise error(f"--param {item!r}: {empty}")
    return k, v


class ParamError(EinsimError):
    """A bad ``--param`` / ``--hw-param`` value."""


def parse_params(items: tuple[str, ...], option: str = "--param") -> dict[str, Any]:
    """``NAME=VALUE`` strings -> dict (ints, then floats, else strings)."""
    out: dict[str, Any] = {}
    for it in items:
        k, v = split_param(
            it, ParamError, missing="expected NAME=VALUE (for example M=128)", empty="empty name"
        )
        if k in out:
            raise ParamError(f"{option} {k} is given twice")
        val: Any = v.strip()
        for conv in (int, float):
            try:
                val = conv(val)
                break
            except (ValueError, OverflowError):
                continue
        out[k] = val
    return out


def load_workload(name: str, params: dict[str, Any]) -> Any:
    """The workload of ``-w NAME -p K=V``: :func:`workloads.load`."""
    import workloads

    return workloads.load(name, **params)


def load_hw(name: str, overrides: dict[str, Any]) -> Any:
    """The design of ``--hw NAME --hw-param K=V``: a preset or file, derived."""
    import hw_models

    arch = hw_models.load(name)
    if overrides:
        arch = hw_models.derive(arch, overrides)
    return arch


@dataclass(frozen=True)
class Design:
    """What ``-w/-p/--hw/--hw-param`` name: the workload and the design, loaded."""

    name: str
    workload: Any
    arch: Any


def workload_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``-w/--workload``, ``-p/--param``, ``--hw``, ``--hw-param``; the command
    receives them loaded, as one :class:`Design` argument ``design``."""

    @functools.wraps(f)
    def command(
        workload: str, params: tuple[str, ...], hw: str, hw_params: tuple[str, ...], **kw: Any
    ) -> Any:
        design = Design(
            workload,
            load_workload(workload, parse_params(params)),
            load_hw(hw, parse_params(hw_params, "--hw-param")),
        )
        return f(design=design, **kw)

    for opt in reversed(
        (
            click.option(
                "--workload", "-w", required=True, help="Library workload name or cascade file."
            ),
            click.option(
                "--param", "-p", "params", multiple=True, help="Workload parameter NAME=VALUE."
            ),
            click.option("--hw", "hw", required=True, help="Hardware preset name or YAML file."),
            click.option(
                "--hw-param", "hw_params", multiple=True, help="Hardware parameter NAME=VALUE."
            ),
        )
    ):
        command = opt(command)
    return command


def mapper_option(default: str | None) -> Callable[..., Any]:
    from mappers import registry

    return click.option(
        "--mapper",
        default=default,
        show_default=default is not None,
        type=click.Choice(registry.names()),
        help=f"Mapper for the Einsums ({registry.help_text()}).",
    )


def objective_option(f: Callable[..., Any]) -> Callable[..., Any]:
    from mappers.objectives import ALIASES, OBJECTIVES

    return click.option(
        "--objective",
        default="edp",
        show_default=True,
        type=click.Choice([*OBJECTIVES, *ALIASES]),
        help="What the mapper and scheduler minimise.",
    )(f)


def model_option(f: Callable[..., Any]) -> Callable[..., Any]:
    from sim import models

    return click.option(
        "--sim",
        "sim",
        default=models.AUTO,
        show_default=True,
        type=click.Choice(models.choices()),
        help=f"Cost model ({models.help_text()}).",
    )(f)


def gpu_plan_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--gpu-plan``: how a GPU design lowers the workload to kernels (the
    choices are :data:`sim.gpu.plan_registry.PLANS`); ignored elsewhere."""
    from sim.gpu import plan_registry

    return click.option(
        "--gpu-plan",
        "gpu_plan",
        default=None,
        type=click.Choice(list(plan_registry.PLANS)),
        help=f"On a GPU, the kernels the workload runs as (default {plan_registry.DEFAULT_PLAN}; "
        f"{plan_registry.help_text()}).",
    )(f)

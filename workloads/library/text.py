"""Text pieces the library's builders share: declarations, attributes, model table, norms."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from workloads.errors import WorkloadError

DATA = Path(__file__).resolve().parent


def _decl(name: str, dims: list[tuple[str, int]], bits: int) -> str:
    b = f" {{bits={bits}}}" if bits != 16 else ""
    return f"declare {name}[{', '.join(f'{r}:{s}' for r, s in dims)}]{b}"


def _out(bits: int, **attrs: str) -> str:
    items = ([("bits", str(bits))] if bits != 16 else []) + list(attrs.items())
    return " {" + ", ".join(f"{k}={v}" for k, v in items) + "}" if items else ""


@cache
def load_models() -> dict[str, dict[str, Any]]:
    """Model dimensions from ``models.yaml`` (name -> fields)."""
    from workloads.yamlio import load_yaml

    return load_yaml(DATA / "models.yaml", "model table")[0]


def _model(name: str) -> tuple[str, dict[str, Any]]:
    models = load_models()
    key = name.strip().lower()
    for k, v in models.items():
        if key == k or key in [a.lower() for a in v.get("aliases", [])]:
            return k, v
    raise WorkloadError(
        f"transformer-layer: unknown model {name!r}; expected one of: {', '.join(models)}"
    )


def _norm(
    prefix: str, src: str, kind: str, D: int, bits: int, **attrs: str
) -> tuple[list[str], str]:
    """Lines of a layer norm / RMS norm over d of ``src[b,p,d]``; returns (lines, output).

    The gain (and bias) vectors are ``{prefix}G[d]`` (``{prefix}BETA[d]``);
    ``attrs`` are added to every Einsum.
    """
    o = _out(bits, unit_class="1d", **attrs)
    inv_d = repr(1.0 / D)
    x = f"{src}[b,p,d]"
    lines: list[str] = []
    if kind == "layernorm":
        lines += [
            f"{prefix}SUM[b,p] = sum(d) {x}" + o,
            f"{prefix}MU[b,p] = {prefix}SUM[b,p] * {inv_d}" + o,
            f"{prefix}XC[b,p,d] = {x} - {prefix}MU[b,p]" + o,
        ]
        x = f"{prefix}XC[b,p,d]"
    lines += [
        f"{prefix}SQ[b,p] = sum(d) {x} * {x}" + o,
        f"{prefix}VAR[b,p] = {prefix}SQ[b,p] * {inv_d}" + o,
        f"{prefix}VE[b,p] = {prefix}VAR[b,p] + 1e-05" + o,
        f"{prefix}RS[b,p] = rsqrt({prefix}VE[b,p])" + o,
        f"{prefix}XN[b,p,d] = {x} * {prefix}RS[b,p]" + o,
    ]
    if kind == "layernorm":
        lines += [
            f"{prefix}XG[b,p,d] = {prefix}XN[b,p,d] * {prefix}G[d]" + o,
            f"{prefix}Y[b,p,d] = {prefix}XG[b,p,d] + {prefix}BETA[d]" + o,
        ]
    else:
        lines += [f"{prefix}Y[b,p,d] = {prefix}XN[b,p,d] * {prefix}G[d]" + o]
    return lines, f"{prefix}Y"

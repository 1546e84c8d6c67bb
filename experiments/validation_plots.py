"""Plotly pieces the predicted-vs-measured plots of the validations share
(``experiments.gpu_validation``, ``experiments.fpga_validation``)."""

from __future__ import annotations

from typing import Any


def points(x: Any, y: Any, name: str, text: Any, *, webgl: bool = False, **style: Any) -> Any:
    """One marker trace of predicted ``y`` against measured ``x`` (WebGL for
    many points)."""
    import plotly.graph_objects as go

    trace = go.Scattergl if webgl else go.Scatter
    return trace(x=x, y=y, mode="markers", name=name, text=text, **style)


def identity_line(lo: float, hi: float, name: str) -> Any:
    """The dashed grey diagonal ``predicted = measured`` from ``lo`` to ``hi``."""
    import plotly.graph_objects as go

    return go.Scatter(
        x=[lo, hi], y=[lo, hi], mode="lines", name=name, line={"dash": "dash", "color": "gray"}
    )

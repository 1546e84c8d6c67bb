"""hls4ml layers: what a network (or an Einsum cascade) becomes on the FPGA.

A :class:`Layer` is one hls4ml layer of one inference ("sample"):

* ``dense``: ``n_out`` dot products of length ``n_in`` (hls4ml ``Dense``; the
  bias is part of it), repeated over ``positions`` output positions
  (a Dense on a sequence of tokens);
* ``conv``: hls4ml ``Conv2D`` with ``n_in = C * R * S`` and ``n_out = K``
  (``get_layer_mult_size``), ``positions = P * Q`` output pixels computed
  from ``in_positions = H * W`` input pixels, with a line buffer of
  ``line_buffer_elems`` words (``(R - 1)`` image rows of ``C`` channels);
* ``activation``: an element-wise or reducing operation on ``n_elem``
  values (ReLU, residual add, exp, divide, a max or sum reduction).

A ``dense`` layer whose second operand is another layer's output (attention
scores ``Q K^T``) has ``weights="input"``: its "weights" are stored in a RAM
written at run time instead of a ROM.

:func:`dense_chain` builds the networks of the wa-hls4ml benchmark (widths
``d_in-h1-...-d_out``); :func:`layers_from_cascade` maps an Einsum cascade
(the einsim IR) onto layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from workloads.errors import EinsimError

KINDS = ("dense", "conv", "activation")


class FPGAMappingError(EinsimError):
    """A cascade cannot be expressed as hls4ml layers."""


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str
    #: dense/conv: multiplies per output (reduction length)
    n_in: int = 0
    #: dense/conv: outputs per position
    n_out: int = 0
    #: output positions per sample (conv pixels, tokens)
    positions: int = 1
    #: conv: input positions per sample (the loop hls4ml pipelines at II = RF)
    in_positions: int = 1
    #: "const" (a ROM of trained weights) or "input" (a RAM filled at run time)
    weights: str = "const"
    #: activation: the operator ("relu", "add", "max", "exp", "div", ...)
    op: str = ""
    #: activation: values per sample
    n_elem: int = 0
    #: conv: words held by the line buffer
    line_buffer_elems: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FPGAMappingError(f"layer {self.name}: kind must be one of {KINDS}")
        if self.kind in ("dense", "conv") and (self.n_in < 1 or self.n_out < 1):
            raise FPGAMappingError(
                f"layer {self.name}: n_in and n_out must be >= 1, got {self.n_in}, {self.n_out}"
            )

    @property
    def macs(self) -> int:
        """Multiply-accumulates per sample."""
        if self.kind == "activation":
            return 0
        return self.n_in * self.n_out * self.positions

    @property
    def out_elems(self) -> int:
        """Values the layer hands to the next one per sample."""
        if self.kind == "activation":
            return self.n_elem
        return self.n_out * self.positions


def dense_chain(widths: list[int] | tuple[int, ...], prefix: str = "dense") -> tuple[Layer, ...]:
    """Dense layers ``widths[0] -> widths[1] -> ...`` (a wa-hls4ml ``model_string``)."""
    w = [int(x) for x in widths]
    if len(w) < 2 or any(x < 1 for x in w):
        raise FPGAMappingError(f"a dense network needs two or more widths >= 1, got {widths!r}")
    return tuple(
        Layer(name=f"{prefix}{i + 1}", kind="dense", n_in=a, n_out=b)
        for i, (a, b) in enumerate(zip(w[:-1], w[1:], strict=False))
    )


# ------------------------------------------------------------------ cascades

_ACT_OPS = {
    "max": "relu",
    "min": "min",
    "add": "add",
    "sub": "add",
    "mul": "mul",
    "div": "div",
    "exp": "exp",
    "expdiff": "exp",
    "rsqrt": "div",
    "silu": "exp",
    "gelu": "exp",
    "copy": "copy",
}


def _size(sizes: dict[str, int], ranks: Any) -> int:
    return math.prod(sizes[r] for r in ranks)


def _is_contraction(e: Any) -> bool:
    return (
        e.map_op == "mul" and e.reduce_op == "sum" and len(e.inputs) == 2 and bool(e.reduced_ranks)
    )


def _data_and_weight(e: Any, produced: set[str]) -> tuple[Any, Any]:
    """(data operand, weight operand) of a contraction.

    The operand another Einsum produces is the data; if neither or both are
    produced, one read through affine (sliding-window) indices is the data;
    otherwise the first operand is (the library's ``X * W`` convention).
    """
    a, b = e.inputs
    pa, pb = a.tensor in produced, b.tensor in produced
    if pa != pb:
        return (a, b) if pa else (b, a)
    affine_a = any(ix.simple_rank is None for ix in a.indices)
    affine_b = any(ix.simple_rank is None for ix in b.indices)
    if affine_a != affine_b:
        return (a, b) if affine_a else (b, a)
    return a, b


def _sample_ranks(cascade: Any) -> set[str]:
    """Ranks every Einsum's output carries (the batch of inferences)."""
    common: set[str] | None = None
    for e in cascade.einsums:
        out = set(e.output.ranks)
        common = out if common is None else common & out
    return common or set()


def layers_from_cascade(cascade: Any) -> tuple[tuple[Layer, ...], int]:
    """The cascade as hls4ml layers and the number of samples (inferences).

    Contractions (``sum(...) X * W``) become ``dense`` (or ``conv`` when the
    data operand is read through sliding-window indices); a bias add right
    after a contraction (an add of a cascade input indexed by output ranks
    only) is folded into it, as hls4ml's Dense includes the bias; other
    Einsums become ``activation`` layers. Samples are the ranks that every
    Einsum's output carries (``b`` of an MLP), minus weight ranks and the ranks
    of sliding-window indices (a conv's output pixels are positions).
    """
    produced = {e.output.tensor for e in cascade.einsums}
    samples_r = _sample_ranks(cascade)
    for e in cascade.einsums:
        if _is_contraction(e):
            data, w = _data_and_weight(e, produced)
            samples_r -= set(w.ranks)
            # output ranks of sliding-window indices are positions (pixels), not samples
            samples_r -= {r for ix in data.indices if ix.simple_rank is None for r, _ in ix.terms}
    sizes_all = cascade.rank_sizes
    samples = _size(sizes_all, sorted(samples_r)) if samples_r else 1
    layers: list[Layer] = []
    contraction_out: dict[str, int] = {}
    for e in cascade.einsums:
        sizes = e.rank_sizes
        if _is_contraction(e):
            data, w = _data_and_weight(e, produced)
            red = e.reduced_ranks
            n_in = _size(sizes, red)
            out_w = [r for r in e.output.ordered_ranks if r in w.ranks]
            n_out = _size(sizes, out_w) if out_w else 1
            pos_r = [r for r in e.output.ordered_ranks if r not in w.ranks and r not in samples_r]
            positions = _size(sizes, pos_r) if pos_r else 1
            affine = [ix for ix in data.indices if ix.simple_rank is None]
            weights = "input" if w.tensor in produced else "const"
            extra: dict[str, Any] = {"kind": "dense", "weights": weights}
            if affine and weights == "const":
                extents = [hi - lo + 1 for lo, hi in (ix.bounds(sizes) for ix in affine)]
                window = [math.prod(sizes[r] for r, _ in ix.terms if r in red) for ix in affine]
                chans = max(1, n_in // max(1, math.prod(window)))
                extra = {
                    "kind": "conv",
                    "in_positions": math.prod(extents),
                    "line_buffer_elems": (window[0] - 1) * math.prod(extents[1:]) * chans,
                }
            layers.append(Layer(name=e.name, n_in=n_in, n_out=n_out, positions=positions, **extra))
            contraction_out[e.output.tensor] = len(layers) - 1
            continue
        if _is_bias(e, produced, contraction_out):
            continue
        n_elem = max(1, e.iteration_points // samples)
        layers.append(
            Layer(
                name=e.name, kind="activation", op=_ACT_OPS.get(e.map_op, e.map_op), n_elem=n_elem
            )
        )
    if not layers:
        raise FPGAMappingError("the cascade has no Einsums to map onto hls4ml layers")
    return tuple(layers), samples


def _is_bias(e: Any, produced: set[str], contraction_out: dict[str, int]) -> bool:
    """``Z + BIAS[o]`` right after a contraction writing ``Z``: hls4ml's Dense bias."""
    if e.map_op != "add" or len(e.inputs) != 2 or e.reduced_ranks:
        return False
    a, b = e.inputs
    for z, bias in ((a, b), (b, a)):
        if z.tensor in contraction_out and bias.tensor not in produced:
            if set(bias.ranks) <= set(z.ranks) and len(bias.ranks) < len(z.ranks):
                return True
    return False


def weight_tensors(cascade: Any) -> frozenset[str]:
    """Cascade inputs that are trained constants (weights and biases), not data."""
    produced = {e.output.tensor for e in cascade.einsums}
    out: set[str] = set()
    for e in cascade.einsums:
        if _is_contraction(e):
            _, w = _data_and_weight(e, produced)
            if w.tensor not in produced:
                out.add(w.tensor)
        elif e.map_op == "add" and len(e.inputs) == 2:
            for a in e.inputs:
                if a.tensor not in produced and len(a.ranks) < len(e.output.ranks):
                    out.add(a.tensor)
    return frozenset(out)

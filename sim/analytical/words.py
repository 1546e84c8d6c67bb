"""Whole accesses: a memory that moves at least ``min_access_bits`` per access.

A memory whose ports have a smallest transfer (ZigZag's ``bandwidth_min``,
:attr:`hw_models.arch.Port.min_access_bits`) is charged, for every transfer
of ``n`` elements of ``b`` bits, ``ceil(n*b / m) * m`` bits: ZigZag 3.9.1's
``_calc_memory_access``. A transfer is one tile move of a parent->child
pair: at the child, the child's tile; at the parent, the distinct elements
that one parent instance sends to (or receives from) all its children at
once (the tile times the spatial fan-out between them, over the multicast /
reduction factor). At the compute units a tile is one element.

The element counts the model reports do not change; only the energy uses
the rounded counts. Without such memories every factor is 1 and nothing
changes. Used by :mod:`sim.analytical.scalar` and :mod:`sim.analytical.core`.
"""

from __future__ import annotations

import math

import numpy as np


def round_up_factor(elems: float, bits: float, min_bits: float) -> float:
    """``ceil(elems*bits/min_bits)*min_bits / (elems*bits)`` (1 when not rounded)."""
    need = elems * bits
    if min_bits <= 0 or need <= 0:
        return 1.0
    return math.ceil(need / min_bits - 1e-9) * min_bits / need


def round_up_factors(elems: np.ndarray, bits: np.ndarray, min_bits: np.ndarray) -> np.ndarray:
    """:func:`round_up_factor` element-wise (broadcasting)."""
    need = elems * bits
    safe_m = np.where(min_bits > 0, min_bits, 1.0)
    safe_need = np.where(need > 0, need, 1.0)
    g = np.ceil(safe_need / safe_m - 1e-9) * safe_m / safe_need
    return np.where((min_bits > 0) & (need > 0), g, 1.0)


def network_levels(p: int, c: int, nl: int, net: list[float]) -> list[int]:
    """The levels whose fan-out network a parent->child pair crosses and
    that charge for it (``network_energy_pj_per_word`` > 0): ``p <= l < c``."""
    return [lv for lv in range(p, min(c, nl)) if net[lv] > 0]


def pair_sides(f_child: float, s_child: float, s_parent: float, mcf: float) -> tuple[float, float]:
    """(elements per transfer at the parent, at the child) of one pair."""
    return f_child * s_child / (s_parent * mcf), f_child

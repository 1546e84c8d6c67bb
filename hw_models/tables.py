"""Energy and area tables (YAML in ``hw_models/tables/``) and node scaling.

Node-scaling rule (one rule, used everywhere). Each node ``n`` has an anchor
``A(n)`` = its high-density SRAM bitcell area and a nominal supply ``V(n)``
(``tables/node_scaling.yaml``, cited there; log-log interpolation between
anchors, end slopes beyond them). Moving a figure from node ``a`` to ``b``:

* area:    ``area_b = area_a * A(b) / A(a)``
* energy:  ``E_b = E_a * sqrt(A(b) / A(a)) * (V(b) / V(a))**2``
  (E = C V^2 with switched capacitance ~ linear dimension ~ sqrt(area))
* leakage power scales like area.

Using measured bitcell areas instead of the ideal ``(b/a)**2`` keeps the rule
honest below 16 nm, where node names stopped tracking feature size (ideal
scaling would make 5 nm 81x denser than 45 nm; the measured bitcells give
16.5x). Tables keep the node they were measured at; every figure taken from a
table is scaled to the architecture's node by :func:`scale_energy` and
:func:`scale_area`.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

from hw_models.errors import HardwareError

TABLE_DIR = Path(__file__).resolve().parent / "tables"

#: nodes the rule is documented and tested for
NODES_NM: tuple[int, ...] = (45, 28, 16, 7, 5)
MIN_NODE_NM = 3.0
MAX_NODE_NM = 180.0


@functools.cache
def table(name: str) -> dict[str, Any]:
    """Load ``hw_models/tables/<name>.yaml`` (cached)."""
    from hw_models.yamlio import read_file

    path = TABLE_DIR / f"{name}.yaml"
    if not path.is_file():
        raise HardwareError(
            f"unknown energy/area table {name!r}; known: {', '.join(list_tables())}",
            field="energy_table",
        )
    data, _ = read_file(path)
    return data


def _memo(fn: Any) -> Any:
    """Memoise a pure function of hashable scalars (the tables never change
    once loaded). Sweeps call these for every design point with the same few
    arguments. ``typed``: ``7`` and ``7.0`` are cached apart (they give the
    same figure, but nothing relies on that). An unhashable argument skips
    the cache, so bad input fails exactly as it would without it."""
    cached = functools.lru_cache(maxsize=4096, typed=True)(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return cached(*args, **kwargs)
        except TypeError:
            try:
                hash((args, tuple(kwargs.values())))
            except TypeError:
                return fn(*args, **kwargs)
            raise

    wrapper.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
    wrapper.cache_info = cached.cache_info  # type: ignore[attr-defined]
    return wrapper


def list_tables() -> list[str]:
    return sorted(p.stem for p in TABLE_DIR.glob("*.yaml"))


def _check_node(nm: float) -> None:
    if not (isinstance(nm, (int, float)) and MIN_NODE_NM <= nm <= MAX_NODE_NM):
        raise HardwareError(
            f"tech_node_nm must be a number in [{MIN_NODE_NM:g}, {MAX_NODE_NM:g}], got {nm!r}",
            field="tech_node_nm",
        )


def _interp(points: dict[Any, Any], nm: float) -> float:
    """Log-log interpolation through ``{node: value}``, end slopes outside."""
    pts = sorted((float(k), float(v)) for k, v in points.items())
    xs = [math.log(k) for k, _ in pts]
    ys = [math.log(v) for _, v in pts]
    x = math.log(nm)
    i = 0
    while i < len(xs) - 2 and x > xs[i + 1]:
        i += 1
    slope = (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i])
    return math.exp(ys[i] + slope * (x - xs[i]))


@functools.cache
def _anchor(nm: float) -> tuple[float, float]:
    tab = table("node_scaling")
    return _interp(tab["bitcell_um2"], nm), _interp(tab["vdd_v"], nm)


@_memo
def area_factor(from_nm: float, to_nm: float) -> float:
    """Multiply an area at ``from_nm`` by this to get it at ``to_nm``."""
    _check_node(from_nm)
    _check_node(to_nm)
    return _anchor(float(to_nm))[0] / _anchor(float(from_nm))[0]


@_memo
def energy_factor(from_nm: float, to_nm: float) -> float:
    """Multiply a dynamic energy at ``from_nm`` by this to get it at ``to_nm``."""
    _check_node(from_nm)
    _check_node(to_nm)
    a0, v0 = _anchor(float(from_nm))
    a1, v1 = _anchor(float(to_nm))
    return math.sqrt(a1 / a0) * (v1 / v0) ** 2


def scale_energy(pj: float, from_nm: float, to_nm: float) -> float:
    return pj * energy_factor(from_nm, to_nm)


def scale_area(um2: float, from_nm: float, to_nm: float) -> float:
    return um2 * area_factor(from_nm, to_nm)


# ---------------------------------------------------------------- operators


def _width_scaled(tab: dict[str, Any], kind: str, op: str, bits: int, key: str) -> float:
    """Value for a ``bits``-wide integer operator from the nearest table width.

    Adders (and comparators) scale linearly with width, multipliers with the
    square of the width (array multiplier), as in Accelergy's Aladdin model.
    """
    widths = sorted(
        int(k[len(kind) : -len(op) - 1])
        for k in tab[key]
        if k.startswith(kind) and k.endswith("_" + op) and k[len(kind) : -len(op) - 1].isdigit()
    )
    near = min(widths, key=lambda w: (abs(math.log(w / bits)), w))
    value = tab[key][f"{kind}{near}_{op}"]
    power = 2 if op == "mult" else 1
    return value * (bits / near) ** power


def _horowitz(tab: dict[str, Any], key: str, op: str, bits: int, number_format: str) -> float:
    """``key`` ("energy_pj", "area_um2") of one ``op`` at 45 nm: fp16/fp32
    by the nearest width up, int scaled from the nearest width."""
    if number_format == "fp":
        fbits = 16 if bits <= 16 else 32
        return tab[key][f"fp{fbits}_{op}"]
    return _width_scaled(tab, "int", op, bits, key)


@_memo
def op_energy_pj(op: str, bits: int, number_format: str, node_nm: float) -> float:
    """Energy of one ``op`` ("add", "mult") from Horowitz 45 nm, scaled."""
    tab = table("horowitz_45nm")
    value = _horowitz(tab, "energy_pj", op, bits, number_format)
    return scale_energy(value, tab["node_nm"], node_nm)


@_memo
def op_area_um2(op: str, bits: int, number_format: str, node_nm: float) -> float:
    tab = table("horowitz_45nm")
    value = _horowitz(tab, "area_um2", op, bits, number_format)
    return scale_area(value, tab["node_nm"], node_nm)


def accumulator_bits(bits: int, number_format: str) -> int:
    """Accumulator width: int8/int16 products accumulate in 32 bits, fp16 in
    fp32 (mixed precision), 32-bit data in 32 bits."""
    return 32 if bits <= 32 else bits


@_memo
def mac_energy_pj(bits: int, number_format: str, node_nm: float) -> float:
    """One MAC = one multiply at ``bits`` + one add at the accumulator width.

    Horowitz 45 nm: int8 MAC = 0.2 + 0.1 = 0.3 pJ (Accelergy's Simba-like
    int8 MAC is 0.32 pJ); fp16 MAC with fp32 accumulation = 1.1 + 0.9 = 2.0 pJ.
    """
    acc = accumulator_bits(bits, number_format)
    return op_energy_pj("mult", bits, number_format, node_nm) + op_energy_pj(
        "add", acc, number_format, node_nm
    )


@_memo
def mac_area_um2(bits: int, number_format: str, node_nm: float) -> float:
    acc = accumulator_bits(bits, number_format)
    return op_area_um2("mult", bits, number_format, node_nm) + op_area_um2(
        "add", acc, number_format, node_nm
    )


@_memo
def compare_energy_pj(bits: int, node_nm: float) -> float:
    """Comparator (max): Aladdin 32-bit comparator, linear in width."""
    tab = table("aladdin_40nm")
    return scale_energy(tab["energy_pj"]["int32_compare"] * bits / 32, tab["node_nm"], node_nm)


@_memo
def compare_area_um2(bits: int, node_nm: float) -> float:
    tab = table("aladdin_40nm")
    return scale_area(tab["area_um2"]["int32_compare"] * bits / 32, tab["node_nm"], node_nm)


@_memo
def mac_leakage_w(bits: int, node_nm: float) -> float:
    """Aladdin 32-bit multiplier + adder leakage, multiplier ~ width^2."""
    tab = table("aladdin_40nm")["leakage_w"]
    w = tab["int32_mult"] * (bits / 32) ** 2 + tab["int32_add"]
    return w * area_factor(table("aladdin_40nm")["node_nm"], node_nm)


# ------------------------------------------------------------------ storage


@_memo
def register_energy_pj_per_bit(node_nm: float) -> float:
    tab = table("aladdin_40nm")
    return scale_energy(tab["energy_pj"]["register_per_bit"], tab["node_nm"], node_nm)


@_memo
def register_area_um2_per_bit(node_nm: float) -> float:
    tab = table("aladdin_40nm")
    return scale_area(tab["area_um2"]["register_per_bit"], tab["node_nm"], node_nm)


@_memo
def sram_read_pj_per_bit(bank_bytes: float, node_nm: float) -> float:
    """SRAM read energy per bit for one bank of ``bank_bytes``.

    Log-log interpolation through Horowitz's 8 KB / 32 KB / 1 MB points
    (10 / 20 / 100 pJ per 64 bits), extrapolated with the end slopes.
    """
    tab = table("horowitz_45nm")
    pts = sorted((float(k), float(v)) for k, v in tab["sram_read_pj_per_64b"].items())
    x = math.log(max(bank_bytes, 1.0))
    xs = [math.log(c) for c, _ in pts]
    ys = [math.log(e) for _, e in pts]
    if x <= xs[1]:
        i = 0
    else:
        i = 1
    slope = (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i])
    e64 = math.exp(ys[i] + slope * (x - xs[i]))
    return scale_energy(e64 / 64.0, tab["node_nm"], node_nm)


@_memo
def sram_area_um2_per_bit(node_nm: float) -> float:
    tab = table("sram_area")
    return scale_area(tab["sram_cell_um2"] / tab["sram_array_efficiency"], tab["node_nm"], node_nm)


@_memo
def dram_pj_per_bit(kind: str) -> float:
    """Off-chip energy per bit (not node-scaled: it is I/O- and array-bound)."""
    tab = table("dram")["pj_per_bit"]
    key = kind.lower()
    if key not in tab:
        raise HardwareError(
            f"dram_kind must be one of {', '.join(sorted(tab))}; got {kind!r}",
            field="dram_kind",
        )
    return float(tab[key])


def dram_kinds() -> tuple[str, ...]:
    return tuple(sorted(table("dram")["pj_per_bit"]))

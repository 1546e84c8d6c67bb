"""Family parameter schemas and their validation.

Each family declares its parameters as :class:`Param` values (type, allowed
range or choices, default). :func:`check_params` turns a user dict into a
complete, normalised dict (defaults filled in, integral floats turned into
ints) or raises :class:`HardwareError` naming the parameter and its range.
It never raises anything else, whatever the input (a hypothesis test checks).
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hw_models.errors import HardwareError

_MISSING = object()
#: ints of smaller magnitude convert to float without overflow
_EXACT = 2**1000


@dataclass(frozen=True)
class Param:
    name: str
    #: "int" | "float" | "str" | "rates" (dict name -> float)
    kind: str
    lo: float | None = None
    hi: float | None = None
    #: lower bound is exclusive (x > lo instead of x >= lo)
    lo_open: bool = False
    choices: tuple[str, ...] = ()
    #: _MISSING = required; None = optional ("auto")
    default: Any = _MISSING
    #: for "rates": allowed keys and the ones that must be present
    keys: tuple[str, ...] = ()
    required_keys: tuple[str, ...] = ()
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    def range_text(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        lo = "(" if self.lo_open else "["
        lo_v = "-inf" if self.lo is None else f"{self.lo:g}"
        hi_v = "inf" if self.hi is None else f"{self.hi:g}"
        what = {"int": "an integer", "float": "a number", "rates": "values"}.get(self.kind, "")
        return f"{what} in {lo}{lo_v}, {hi_v}]"


def _num(p: Param, field: str, value: Any) -> float | int:
    t = type(value)
    if t is float or (t is int and -_EXACT < value < _EXACT):
        # the common case, without the ABC checks: plain Python numbers
        # (float() of such an int cannot overflow)
        x = float(value)
        if not math.isfinite(x):
            raise HardwareError(f"{field} must be {p.range_text()}, got {value!r}", field=field)
        return _num_checked(p, field, value, x)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise HardwareError(
            f"{field} must be {p.range_text()}, got {value!r} ({type(value).__name__})",
            field=field,
        )
    try:
        x = float(value)
    except (OverflowError, ValueError, TypeError):
        raise HardwareError(
            f"{field} must be {p.range_text()}, got {value!r}", field=field
        ) from None
    if not math.isfinite(x):
        raise HardwareError(f"{field} must be {p.range_text()}, got {value!r}", field=field)
    return _num_checked(p, field, value, x)


def _num_checked(p: Param, field: str, value: Any, x: float) -> float | int:
    """The range checks of :func:`_num` on ``x = float(value)`` (finite)."""
    if p.kind == "int":
        if not float(x).is_integer():
            raise HardwareError(f"{field} must be {p.range_text()}, got {value!r}", field=field)
    too_low = p.lo is not None and (x <= p.lo if p.lo_open else x < p.lo)
    too_high = p.hi is not None and x > p.hi
    if too_low or too_high:
        raise HardwareError(f"{field} must be {p.range_text()}, got {value!r}", field=field)
    if p.kind == "int":
        return int(x)
    return int(value) if isinstance(value, numbers.Integral) else x


def check_value(p: Param, value: Any, prefix: str = "params.") -> Any:
    field = prefix + p.name
    if value is None:
        if p.required:
            raise HardwareError(f"{field} is required ({p.range_text()})", field=field)
        return p.default
    if p.kind in ("int", "float"):
        return _num(p, field, value)
    if p.kind == "str":
        if not isinstance(value, str) or (p.choices and value not in p.choices):
            raise HardwareError(f"{field} must be {p.range_text()}, got {value!r}", field=field)
        return str(value)  # plain str (numpy.str_ from a sweep grid is a subclass)
    if p.kind == "rates":
        if not isinstance(value, Mapping):
            raise HardwareError(
                f"{field} must be a mapping of {', '.join(p.keys)} to numbers, got {value!r}",
                field=field,
            )
        out: dict[str, float] = {}
        for k, v in value.items():
            if k not in p.keys:
                raise HardwareError(
                    f"{field} has unknown key {k!r}; allowed: {', '.join(p.keys)}", field=field
                )
            out[k] = float(_num(p, f"{field}.{k}", v))
        for k in p.required_keys:
            if k not in out:
                raise HardwareError(
                    f"{field}.{k} is required ({p.range_text()})", field=f"{field}.{k}"
                )
        return out
    raise HardwareError(f"{field}: unsupported parameter kind {p.kind!r}", field=field)


def check_params(family: str, schema: dict[str, Param], params: Any) -> dict[str, Any]:
    """Validate ``params`` against ``schema``; return them with defaults filled in."""
    if not isinstance(params, Mapping):
        raise HardwareError(
            f"params of a {family!r} architecture must be a mapping, got {type(params).__name__}",
            field="params",
        )
    for key in params:
        if key not in schema:
            hint = difflib.get_close_matches(str(key), list(schema), n=1)
            sug = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise HardwareError(
                f"params.{key} is not a {family} parameter{sug}; allowed: {', '.join(schema)}",
                field=f"params.{key}",
            )
    out: dict[str, Any] = {}
    for name, p in schema.items():
        out[name] = check_value(p, params.get(name))
    return out


def at_least(field: str, value: float, bound: float, what: str) -> None:
    """Cross-field check: ``value >= bound`` (e.g. a buffer holds one word)."""
    if value < bound:
        raise HardwareError(f"{field} must be >= {bound:g} ({what}), got {value:g}", field=field)

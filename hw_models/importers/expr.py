"""A small, safe evaluator for the expressions in AccelForge files.

AccelForge writes figures as Python expressions (``1024*1024*128*8``,
``8 * 614e9``, ``weight.bits_per_value if weight else 0``). They are parsed
with :mod:`ast` and evaluated here over a whitelist: numbers, names and
attributes from the namespace given, arithmetic, comparisons, ``and`` /
``or`` / ``not``, ``x if c else y``, and the calls ``len``, ``min``,
``max``, ``abs``, ``float('inf')``. Nothing is ever passed to ``eval``;
anything else raises :class:`ExprError` (the importer then reports the
field as not carried over).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Mapping
from typing import Any


class ExprError(ValueError):
    """An expression outside the whitelist, or one that does not evaluate."""


_BIN = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMP = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_CALLS = {"len": len, "min": min, "max": max, "abs": abs}
#: the largest exponent ``**`` accepts (no huge integers)
_MAX_POW = 64.0
MAX_CHARS = 2000


class Obj(dict):
    """A namespace entry with attributes (``weight.bits_per_value``)."""

    def __bool__(self) -> bool:
        return bool(self.get("__bool__", True))


def evaluate(text: Any, names: Mapping[str, Any] | None = None) -> Any:
    """The value of ``text`` (numbers pass through; strings are parsed)."""
    if isinstance(text, bool):
        return text
    if isinstance(text, int | float):
        return text
    if not isinstance(text, str):
        raise ExprError(f"expected a number or an expression, got {text!r}")
    if len(text) > MAX_CHARS:
        raise ExprError("expression too long")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise ExprError(f"not an expression: {text!r} ({err.msg})") from None
    return _eval(tree.body, dict(names or {}))


def _eval(node: ast.AST, names: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in names:
            return names[node.id]
        if node.id == "inf":
            return math.inf
        raise ExprError(f"unknown name {node.id!r}")
    if isinstance(node, ast.Attribute):
        base = _eval(node.value, names)
        if isinstance(base, Obj) and node.attr in base:
            return base[node.attr]
        raise ExprError(f"unknown attribute {node.attr!r}")
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
        a, b = _eval(node.left, names), _eval(node.right, names)
        _numbers(a, b)
        if isinstance(node.op, ast.Pow) and abs(b) > _MAX_POW:
            raise ExprError("exponent too large")
        try:
            return _BIN[type(node.op)](a, b)
        except (ZeroDivisionError, OverflowError) as err:
            raise ExprError(str(err)) from None
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, names)
        if isinstance(node.op, ast.Not):
            return not v
        _numbers(v)
        if isinstance(node.op, ast.USub):
            return -v
        if isinstance(node.op, ast.UAdd):
            return +v
    if isinstance(node, ast.BoolOp):
        vals = [_eval(v, names) for v in node.values]
        return all(vals) if isinstance(node.op, ast.And) else any(vals)
    if isinstance(node, ast.Compare) and all(type(o) in _CMP for o in node.ops):
        left = _eval(node.left, names)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, names)
            if not _CMP[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _eval(node.test, names) else node.orelse, names)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        args = [_eval(a, names) for a in node.args]
        if node.func.id == "float" and args in (["inf"], ["Inf"]):
            return math.inf
        if node.func.id in _CALLS:
            try:
                return _CALLS[node.func.id](*args)
            except TypeError as err:
                raise ExprError(str(err)) from None
    raise ExprError(f"unsupported expression: {ast.unparse(node)}")


def _numbers(*vals: Any) -> None:
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ExprError(f"expected a number, got {v!r}")

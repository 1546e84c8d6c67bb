"""Hardware files: the one YAML loader (:mod:`workloads.yamlio`) with
:class:`HardwareError`, JSON files, and writing files back.

:func:`parse_yaml` / :func:`read_file` return the data plus ``{path: line}``
where a path is a tuple of keys/indices (``("params", "rows")``), so an
error found later can point at the line that holds the bad value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from hw_models.errors import HardwareError
from workloads import yamlio
from workloads.yamlio import Lines, line_of

__all__ = ["Lines", "dump_yaml", "line_of", "parse_yaml", "read_file", "write_file"]


class _Dumper(yaml.SafeDumper):
    pass


def parse_yaml(text: str, file: str | None = None) -> tuple[Any, Lines]:
    """Parse YAML text; every problem is a ``HardwareError`` with line/col."""
    return yamlio.parse_yaml(text, file, error=HardwareError)


def read_file(path: str | Path) -> tuple[Any, Lines]:
    """Read a ``.yaml``/``.yml``/``.json`` hardware file (safely: see
    :func:`workloads.yamlio.read_input_file`)."""
    p = Path(path)
    text = yamlio.read_input_file(p, "hardware file", error=HardwareError)
    if p.suffix.lower() == ".json":
        # JSON is YAML (1.2) for all a hardware file holds: the YAML loader
        # gives line numbers; json is the arbiter of what is valid JSON
        try:
            data = json.loads(text, parse_constant=_no_constant, parse_int=_json_int)
        except _HugeInteger as err:
            raise HardwareError(
                "an integer is too large; expected at most about 300 digits",
                file=str(path),
                line=_line_of_digits(text, err.digits),
            ) from None
        except json.JSONDecodeError as err:
            raise HardwareError(
                f"JSON syntax error: {err.msg}", file=str(path), line=err.lineno, col=err.colno
            ) from None
        except (RecursionError, ValueError) as err:
            msg = "JSON nesting too deep" if isinstance(err, RecursionError) else str(err)
            raise HardwareError(msg, file=str(path)) from None
        # the YAML reading also refuses what JSON allows but a hardware file
        # must not have (duplicate keys, huge numbers), with the line
        same, lines = parse_yaml(text, str(path))
        return _checked_json(data, str(path)), (lines if same == data else Lines(None))
    return parse_yaml(text, str(path))


class _HugeInteger(ValueError):
    def __init__(self, digits: str) -> None:
        super().__init__("huge integer")
        self.digits = digits


#: digits of the largest integer a hardware file may hold (the YAML reader's
#: ``MAX_INT_BITS``); longer runs are refused before Python's own conversion
#: limit (4,300 digits) answers with a message that names no line
_MAX_INT_DIGITS = int(yamlio.MAX_INT_BITS * 0.30103) + 1


def _json_int(digits: str) -> int:
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS:
        raise _HugeInteger(digits)
    return int(digits)


def _line_of_digits(text: str, digits: str) -> int | None:
    at = text.find(digits)
    return text.count("\n", 0, at) + 1 if at >= 0 else None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; expected a finite number")


def _checked_json(data: Any, file: str) -> Any:
    """Refuse JSON numbers the YAML loader would refuse (huge integers, overflowing floats)."""
    import math

    todo = [data]
    seen = 0
    while todo:
        x = todo.pop()
        seen += 1
        if seen > yamlio.MAX_YAML_NODES:
            raise HardwareError(
                f"the JSON holds more than {yamlio.MAX_YAML_NODES:,} values", file=file
            )
        if isinstance(x, dict):
            todo.extend(x.values())
        elif isinstance(x, list):
            todo.extend(x)
        elif isinstance(x, bool):
            continue
        elif isinstance(x, int) and x.bit_length() > yamlio.MAX_INT_BITS:
            raise HardwareError(
                "an integer is too large; expected at most about 300 digits", file=file
            )
        elif isinstance(x, float) and not math.isfinite(x):
            raise HardwareError("a number is out of range (it overflows a 64-bit float)", file=file)
    return data


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def write_file(path: str | Path, data: Any) -> None:
    p = Path(path)
    text = json.dumps(data, indent=2) + "\n" if p.suffix.lower() == ".json" else dump_yaml(data)
    p.write_text(text, encoding="utf-8")

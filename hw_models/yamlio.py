"""YAML reading with line numbers, and the float syntax people actually type.

PyYAML (YAML 1.1) reads ``4.8e12`` as a *string*; hardware files are full of
such numbers, so :class:`_Loader` also resolves ``1e9``/``4.8e12`` as floats.
:func:`load_yaml` returns the data plus ``{path: line}`` where a path is a
tuple of keys/indices (``("params", "rows")``), so an error found later can
point at the line that holds the bad value.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from hw_models.errors import HardwareError

Lines = dict[tuple, int]


class _Loader(yaml.SafeLoader):
    pass


_FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))


class _Dumper(yaml.SafeDumper):
    pass


def _construct(node: yaml.Node, loader: _Loader, path: tuple, lines: Lines) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                raise HardwareError(
                    "a mapping key must be a plain name",
                    line=key_node.start_mark.line + 1,
                    col=key_node.start_mark.column + 1,
                )
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, loader, path + (key,), lines)
            lines[path + (key,)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(v, loader, path + (i,), lines) for i, v in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def parse_yaml(text: str, file: str | None = None) -> tuple[Any, Lines]:
    """Parse YAML text; syntax errors become ``HardwareError`` with line/col."""
    lines: Lines = {}
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = None if node is None else _construct(node, loader, (), lines)
        finally:
            loader.dispose()
    except HardwareError as err:
        raise err.located(file, err.line) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise HardwareError(
            f"YAML syntax error: {err.problem or err.context}",
            file=file,
            line=mark.line + 1 if mark else None,
            col=mark.column + 1 if mark else None,
        ) from None
    except yaml.YAMLError as err:
        raise HardwareError(f"YAML error: {err}", file=file) from None
    except RecursionError:
        raise HardwareError("YAML nesting too deep (or a recursive alias)", file=file) from None
    return data, lines


def read_file(path: str | Path) -> tuple[Any, Lines]:
    """Read a ``.yaml``/``.yml``/``.json`` hardware file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HardwareError("file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as err:
        raise HardwareError(f"cannot read file: {err}", file=str(path)) from None
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise HardwareError(
                f"JSON syntax error: {err.msg}", file=str(path), line=err.lineno, col=err.colno
            ) from None
        except RecursionError:
            raise HardwareError("JSON nesting too deep", file=str(path)) from None
        # JSON is (nearly) YAML: re-read it for line numbers where that works
        try:
            same, lines = parse_yaml(text, str(path))
        except HardwareError:
            return data, {}
        return data, (lines if same == data else {})
    return parse_yaml(text, str(path))


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def write_file(path: str | Path, data: Any) -> None:
    p = Path(path)
    text = json.dumps(data, indent=2) + "\n" if p.suffix.lower() == ".json" else dump_yaml(data)
    p.write_text(text, encoding="utf-8")


def line_of(lines: Lines, path: tuple) -> int | None:
    """Line of ``path`` or of its nearest ancestor that has one."""
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())

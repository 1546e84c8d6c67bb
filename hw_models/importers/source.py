"""Reading a peer tool's YAML file: its tags, its duplicate keys, its lines.

The peers' files are not einsim files: Timeloop and AccelForge tag nodes
(``!Component``, ``!Memory``), and ZigZag's own loader keeps the last of two
equal keys (its bundled ``tpu_like.yaml`` has ``ports`` twice). So the
importers compose the YAML here (PyYAML's safe composer: no object is ever
constructed from a tag) and build plain data themselves:

* a tagged mapping becomes a dict with the tag name under ``"!"``
  (``{"!": "Component", "name": ...}``), a tagged scalar ``{"!": tag,
  "value": text}``;
* a duplicate key keeps its last value, and is reported in ``duplicates``;
* ``lines`` maps a path of keys and indices to its line (1-based).

Bounded: files over :data:`MAX_BYTES`, nesting over :data:`MAX_DEPTH` and
documents expanding (through aliases) to over :data:`MAX_NODES` nodes are
refused with an :class:`ImportFormatError` naming the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hw_models.errors import HardwareError

MAX_BYTES = 8 * 2**20
MAX_DEPTH = 64
MAX_NODES = 200_000

_STD = "tag:yaml.org,2002:"
# YAML 1.2 floats ("1e9", "4.8e12") as well as YAML 1.1's
_FLOAT = re.compile(r"^[-+]?(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][-+]?\d+)?$")


class ImportFormatError(HardwareError):
    """A peer tool's file that the importer cannot read."""


@dataclass
class Source:
    """A parsed peer file."""

    file: str
    data: Any
    lines: dict[tuple, int] = field(default_factory=dict)
    #: "path.to.key (line N)" for each key given twice (the last one is kept)
    duplicates: list[str] = field(default_factory=list)

    def line(self, *path: Any) -> int | None:
        """Line of ``path`` or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get(())

    def error(self, message: str, *path: Any) -> ImportFormatError:
        return ImportFormatError(message, file=self.file, line=self.line(*path))


class _Walker:
    def __init__(self, src: Source) -> None:
        self.src = src
        self.nodes = 0
        self.ctor = yaml.SafeLoader("")

    def scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag.startswith(_STD) or node.tag == "!":
            if node.style is None and node.tag == _STD + "str" and _FLOAT.match(node.value):
                return float(node.value.replace("_", ""))
            if node.tag == _STD + "int" and len(node.value) > 320:  # int() refuses 4,300 digits
                raise self.src.error("integer too large; expected at most about 300 digits")
            try:
                return self.ctor.construct_object(node)
            except (ValueError, IndexError, TypeError, OverflowError, yaml.YAMLError):
                raise ImportFormatError(
                    f"{node.value[:24]!r} is not a valid {node.tag.replace(_STD, '')}",
                    file=self.src.file,
                    line=node.start_mark.line + 1,
                ) from None
        return {"!": node.tag.lstrip("!"), "value": node.value}

    def walk(self, node: yaml.Node, path: tuple, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ImportFormatError(
                f"the document expands to more than {MAX_NODES} YAML nodes", file=self.src.file
            )
        if depth > MAX_DEPTH:
            raise ImportFormatError(
                f"YAML nested deeper than {MAX_DEPTH} levels",
                file=self.src.file,
                line=node.start_mark.line + 1,
            )
        self.src.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        tag = None if node.tag.startswith(_STD) else node.tag.lstrip("!")
        if isinstance(node, yaml.SequenceNode):
            items = [self.walk(v, path + (i,), depth + 1) for i, v in enumerate(node.value)]
            return {"!": tag, "value": items} if tag else items
        out: dict[Any, Any] = {"!": tag} if tag else {}
        for k, v in node.value:
            key = self.walk(k, path + ("<key>",), depth + 1)
            if isinstance(key, dict | list):
                raise ImportFormatError(
                    "a mapping key must be a plain name",
                    file=self.src.file,
                    line=k.start_mark.line + 1,
                )
            if key in out:
                where = ".".join(str(p) for p in (*path, key))
                self.src.duplicates.append(f"{where} (line {k.start_mark.line + 1})")
            self.src.lines[path + (key,)] = k.start_mark.line + 1
            out[key] = self.walk(v, path + (key,), depth + 1)
        return out


def parse(text: str, file: str) -> Source:
    """Parse ``text`` (the contents of ``file``) into a :class:`Source`."""
    src = Source(file=file, data=None)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise ImportFormatError(
            f"YAML syntax error: {err.problem or err.context}",
            file=file,
            line=mark.line + 1 if mark else None,
        ) from None
    except yaml.YAMLError as err:
        raise ImportFormatError(f"YAML error: {err}", file=file) from None
    except RecursionError:
        raise ImportFormatError("YAML nested too deeply", file=file) from None
    src.data = None if node is None else _Walker(src).walk(node, (), 0)
    return src


def read(path: str | Path) -> Source:
    """Read and parse a peer's YAML file (UTF-8, at most :data:`MAX_BYTES`)."""
    p = Path(path)
    try:
        if not p.is_file():
            raise ImportFormatError("not a file (or not found)", file=str(path))
        if p.stat().st_size > MAX_BYTES:
            raise ImportFormatError(
                f"file larger than {MAX_BYTES // 2**20} MiB; not a hardware description",
                file=str(path),
            )
        text = p.read_text(encoding="utf-8")
    except ImportFormatError:
        raise
    except (OSError, UnicodeDecodeError) as err:
        raise ImportFormatError(f"cannot read file: {err}", file=str(path)) from None
    return parse(text, str(path))

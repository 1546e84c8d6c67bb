"""Reading input files and YAML, safely, with line numbers: the one loader.

Every file einsim reads from a user (hardware files, mapping files, sweep
specs, cascade files, CSV tables) goes through :func:`read_input_file`, and
every YAML text through :func:`parse_nodes` / :func:`parse_yaml`. Both turn
anything malformed into one :class:`~workloads.errors.EinsimError` (or the
caller's subclass) naming the file, the line and what was expected; nothing
here raises a bare Python exception for bad input, recurses without bound
or allocates without bound.

Limits (documented in ``docs/sweeps.md``, "Input limits"):

* :data:`MAX_INPUT_BYTES`: an input file larger than this is refused, and
  only regular files are read (``/dev/zero``, FIFOs, sockets and
  directories are refused before a byte is read);
* :data:`MAX_YAML_BYTES`: YAML texts larger than this are refused (parsing
  YAML costs far more per byte than reading a CSV);
* :data:`MAX_YAML_DEPTH`: collections nested deeper than this are refused
  (no ``RecursionError``);
* :data:`MAX_YAML_NODES`: a document whose aliases would expand to more
  than this many nodes is refused ("billion laughs"): aliases are never
  re-expanded, a shared node is counted at its full size each time it is
  used, and the count is checked while composing;
* :data:`MAX_INT_BITS`: integers too large to convert to a float (more
  than about 300 digits) are refused, and numbers written in digits that
  overflow a float (``1e400``) are refused; ``.inf`` and ``.nan`` written
  as such are kept for the callers to judge.

The YAML is read with the *safe* loader only (libyaml's event parser when
available, else PyYAML's), composed here into a tree of :class:`Node`
(value, line, column), so a caller can point at the exact line of a bad
value. Beyond PyYAML's safe resolution, ``1e9`` and ``4.8e12`` are floats
(YAML 1.2 spelling; YAML 1.1 would make them strings), timestamps stay the
text they were written as, and merge keys (``<<: *defaults``) work.
Duplicate keys are an error.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Iterator
from collections.abc import Mapping as _MappingABC
from pathlib import Path
from typing import Any

import yaml

from workloads.errors import EinsimError

#: largest input file read (bytes)
MAX_INPUT_BYTES = 64 * 2**20
#: largest YAML text parsed (characters)
MAX_YAML_BYTES = 4 * 2**20
#: deepest nesting of YAML collections
MAX_YAML_DEPTH = 64
#: most nodes a YAML document may expand to, aliases counted at full size
MAX_YAML_NODES = 500_000
#: largest integer magnitude (bits) a YAML or CSV number may have (~300 digits)
MAX_INT_BITS = 1000


class YamlError(EinsimError):
    """Malformed YAML (the message names the file, the line and the column)."""


class InputFileError(EinsimError):
    """An input file that cannot be read (missing, special, too large, not UTF-8)."""


# --------------------------------------------------------------- files


def _fail(error: type[EinsimError], msg: str, path: str, line: int | None = None, col=None):
    return error(msg, file=path, line=line, col=col)


def read_input_bytes(
    path: str | Path,
    kind: str = "input file",
    *,
    max_bytes: int = MAX_INPUT_BYTES,
    error: type[EinsimError] = InputFileError,
) -> bytes:
    """The bytes of a *regular* file of at most ``max_bytes``.

    Special files (devices such as ``/dev/zero``, FIFOs, sockets) and
    directories are refused without reading; a FIFO is opened non-blocking so
    the check cannot hang. ``kind`` names the file in messages ("hardware
    file", "sweep spec", ...).
    """
    p = str(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise _fail(error, f"cannot read {kind}: file not found (no such file)", p) from None
    except IsADirectoryError:
        raise _fail(error, f"cannot read {kind}: it is a directory; expected a file", p) from None
    except OSError as exc:
        raise _fail(error, f"cannot read {kind}: {exc.strerror or exc}", p) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise _fail(error, f"cannot read {kind}: it is a directory; expected a file", p)
        if not stat.S_ISREG(st.st_mode):
            raise _fail(
                error,
                f"cannot read {kind}: not a regular file (a device, FIFO or socket); "
                "expected a file",
                p,
            )
        if st.st_size > max_bytes:
            raise _fail(
                error,
                f"cannot read {kind}: it is {_size(st.st_size)}; the limit is {_size(max_bytes)}",
                p,
            )
        chunks: list[bytes] = []
        total = 0
        while True:  # /proc files report size 0: read, but never past the limit
            try:
                b = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            except BlockingIOError:  # pragma: no cover - regular files never block
                continue
            except OSError as exc:
                raise _fail(error, f"cannot read {kind}: {exc.strerror or exc}", p) from None
            if not b:
                break
            chunks.append(b)
            total += len(b)
            if total > max_bytes:
                raise _fail(
                    error,
                    f"cannot read {kind}: it is larger than the limit of {_size(max_bytes)}",
                    p,
                )
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_input_file(
    path: str | Path,
    kind: str = "input file",
    *,
    max_bytes: int = MAX_INPUT_BYTES,
    error: type[EinsimError] = InputFileError,
) -> str:
    """The text of a regular UTF-8 file (a leading byte-order mark is dropped).

    See :func:`read_input_bytes` for what is refused; a byte sequence that
    is not UTF-8 is reported with its line and column.
    """
    data = read_input_bytes(path, kind, max_bytes=max_bytes, error=error)
    return decode_utf8(data, str(path), kind, error=error)


def decode_utf8(
    data: bytes, path: str, kind: str = "input file", *, error: type[EinsimError] = InputFileError
) -> str:
    """``data`` as text, or ``error`` naming the line of the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _fail(
            error,
            f"cannot read {kind}: not UTF-8 text (byte 0x{data[exc.start]:02x}); expected UTF-8",
            path,
            line,
            col,
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} B"


# --------------------------------------------------------------- nodes


class Node:
    """A composed YAML value with its position (1-based line and column).

    ``value`` is a ``dict`` (key -> :class:`Node`), a ``list`` of
    :class:`Node` or a plain scalar (str, int, float, bool, None). For a
    mapping, ``key_marks`` gives each key's (line, column); for a scalar,
    ``style`` is YAML's (``None`` plain, ``"|"`` literal block, ``'"'`` ...).
    Nodes reached through an alias are shared, never copied.
    """

    __slots__ = ("value", "line", "col", "key_marks", "size", "style")

    def __init__(self, value: Any, line: int, col: int, style: str | None = None) -> None:
        self.value = value
        self.line = line
        self.col = col
        self.style = style
        self.key_marks: dict[Any, tuple[int, int]] | None = None
        #: nodes in this subtree, aliases expanded
        self.size = 1

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Node({self.value!r}, line={self.line}, col={self.col})"


class _Loader(yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader):  # type: ignore[misc]
    """The safe loader, used only for its event parser and its resolver."""


_Loader.yaml_implicit_resolvers = {
    k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))

_T = "tag:yaml.org,2002:"
_MAP_TAGS = (None, "!", _T + "map")
_SEQ_TAGS = (None, "!", _T + "seq")
_STR = _T + "str"
_SCALAR_CTORS = {
    _T + "null": yaml.constructor.SafeConstructor.construct_yaml_null,
    _T + "bool": yaml.constructor.SafeConstructor.construct_yaml_bool,
    _T + "int": yaml.constructor.SafeConstructor.construct_yaml_int,
    _T + "float": yaml.constructor.SafeConstructor.construct_yaml_float,
    _T + "str": yaml.constructor.SafeConstructor.construct_yaml_str,
}
#: characters YAML forbids in a stream (C0 and C1 controls but tab, LF, CR, NEL; surrogates)
_BAD_CHAR = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_DIGITS = re.compile(r"[0-9]")


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


class _Composer:
    """Events -> :class:`Node` tree, iteratively (depth and size bounded)."""

    def __init__(self, text: str, file: str | None, error: type[EinsimError]) -> None:
        self.text = text
        self.file = file
        self.error = error
        self.loader = _Loader(text)
        self.anchors: dict[str, Node] = {}
        self.open_anchors: set[str] = set()
        self.expanded = 0

    def fail(self, msg: str, mark: Any = None) -> EinsimError:
        line = mark.line + 1 if mark is not None else None
        col = mark.column + 1 if mark is not None else None
        return self.error(msg, file=self.file, line=line, col=col)

    def scalar(self, ev: Any) -> Any:
        tag = ev.tag
        if tag is None or tag == "!":
            if not ev.implicit[0]:  # quoted: a string
                return ev.value
            tag = self.loader.resolve(yaml.ScalarNode, ev.value, ev.implicit)
            if tag == _STR:
                return ev.value
        if tag in (_T + "timestamp", _T + "value", _T + "merge"):
            return ev.value  # kept as written
        ctor = _SCALAR_CTORS.get(tag)
        if ctor is None:
            raise self.fail(
                f"unsupported YAML tag {tag.replace(_T, '!!')}; expected plain values "
                "(strings, numbers, booleans, null), lists and mappings",
                ev.start_mark,
            )
        kind = tag.replace(_T, "")
        if kind == "int" and len(ev.value) > 320:
            raise self.fail(
                f"integer {_clip(ev.value)} is too large; expected at most about 300 digits",
                ev.start_mark,
            )
        node = yaml.ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, ev.style)
        try:
            v = ctor(self.loader, node)
        except (ValueError, IndexError, TypeError, OverflowError, yaml.YAMLError):
            raise self.fail(f"{_clip(ev.value)!r} is not a valid {kind}", ev.start_mark) from None
        if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > MAX_INT_BITS:
            raise self.fail(
                f"integer {_clip(ev.value)} is too large; expected at most about 300 digits",
                ev.start_mark,
            )
        if isinstance(v, float) and not math.isfinite(v) and _DIGITS.search(ev.value):
            raise self.fail(
                f"number {_clip(ev.value)} is out of range (it overflows a 64-bit float)",
                ev.start_mark,
            )
        return v

    def compose(self) -> Node | None:
        bad = _BAD_CHAR.search(self.text)
        if bad:
            line, col = _position(self.text, bad.start())
            raise self.error(
                f"control character U+{ord(bad.group()):04X} is not allowed in YAML; "
                "expected printable text",
                file=self.file,
                line=line,
                col=col,
            )
        try:
            return self._compose()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            raise self.fail(f"invalid YAML: {exc.problem or exc.context}", mark) from None
        except yaml.YAMLError as exc:
            raise self.error(f"invalid YAML: {exc}", file=self.file) from None
        finally:
            self.loader.dispose()

    def _compose(self) -> Node | None:
        L = self.loader
        L.get_event()  # StreamStart
        if L.check_event(yaml.StreamEndEvent):
            L.get_event()
            return None
        L.get_event()  # DocumentStart
        # frames: [node, pending key (mapping) or None, explicit keys, merges, anchor]
        stack: list[list[Any]] = []
        root: Node | None = None
        while True:
            ev = L.get_event()
            cls = type(ev)
            if cls is yaml.MappingEndEvent or cls is yaml.SequenceEndEvent:
                frame = stack.pop()
                node = frame[0]
                if frame[3]:
                    self._merge(node, frame[3])
                if frame[4] is not None:
                    self.anchors[frame[4]] = node
                    self.open_anchors.discard(frame[4])
                done = node
            elif cls is yaml.AliasEvent:
                if ev.anchor in self.open_anchors:
                    raise self.fail(f"recursive alias *{ev.anchor}", ev.start_mark)
                done = self.anchors.get(ev.anchor)
                if done is None:
                    raise self.fail(f"undefined alias *{ev.anchor}", ev.start_mark)
                self.expanded += done.size
            elif cls is yaml.ScalarEvent:
                done = Node(
                    self.scalar(ev), ev.start_mark.line + 1, ev.start_mark.column + 1, ev.style
                )
                self.expanded += 1
                if ev.anchor is not None:
                    self.anchors[ev.anchor] = done
            elif cls is yaml.MappingStartEvent or cls is yaml.SequenceStartEvent:
                is_map = cls is yaml.MappingStartEvent
                if ev.tag not in (_MAP_TAGS if is_map else _SEQ_TAGS):
                    raise self.fail(
                        f"unsupported YAML tag {ev.tag.replace(_T, '!!')}; expected plain "
                        "lists and mappings",
                        ev.start_mark,
                    )
                if len(stack) >= MAX_YAML_DEPTH:
                    raise self.fail(
                        f"YAML nested more than {MAX_YAML_DEPTH} levels deep", ev.start_mark
                    )
                node = Node({} if is_map else [], ev.start_mark.line + 1, ev.start_mark.column + 1)
                if is_map:
                    node.key_marks = {}
                if ev.anchor is not None:
                    self.open_anchors.add(ev.anchor)
                self.expanded += 1
                if self.expanded > MAX_YAML_NODES:
                    raise self._too_big(ev)
                stack.append([node, None, None, [], ev.anchor])
                continue
            else:  # pragma: no cover - the parser emits nothing else here
                raise self.fail(f"unexpected YAML event {type(ev).__name__}", ev.start_mark)
            if self.expanded > MAX_YAML_NODES:
                raise self._too_big(ev)
            if not stack:
                root = done
                break
            self._attach(stack[-1], done, ev)
        if not L.check_event(yaml.DocumentEndEvent):  # pragma: no cover
            raise self.fail("expected the end of the YAML document")
        L.get_event()
        if not L.check_event(yaml.StreamEndEvent):
            ev = L.get_event()
            raise self.fail(
                "the file holds more than one YAML document; expected one", ev.start_mark
            )
        return root

    def _too_big(self, ev: Any) -> EinsimError:
        return self.fail(
            f"the YAML expands to more than {MAX_YAML_NODES:,} values (aliases counted each "
            "time they are used); expected a smaller document",
            ev.start_mark,
        )

    def _attach(self, frame: list[Any], child: Node, ev: Any) -> None:
        parent: Node = frame[0]
        parent.size += child.size
        if isinstance(parent.value, list):
            parent.value.append(child)
            return
        if frame[1] is None:  # this child is a key
            if isinstance(child.value, (dict, list)):
                raise self.fail(
                    "a mapping key must be a plain value (a name or a number), not a list or mapping",
                    ev.start_mark,
                )
            frame[1] = child
            frame[2] = (
                isinstance(ev, yaml.ScalarEvent)
                and ev.tag is None
                and ev.implicit[0]
                and ev.value == "<<"
            )
            return
        key_node: Node = frame[1]
        frame[1] = None
        if frame[2]:  # merge key: a mapping or a list of mappings
            srcs = child.value if isinstance(child.value, list) else [child]
            if not all(isinstance(s.value, dict) for s in srcs):
                raise self.fail(
                    "a merge key (<<) takes a mapping or a list of mappings", ev.start_mark
                )
            frame[3].extend(srcs)
            return
        key = key_node.value
        if key in parent.value:
            first = parent.key_marks[key][0]  # type: ignore[index]
            raise self.error(
                f"duplicate key {key!r} (first on line {first})",
                file=self.file,
                line=key_node.line,
                col=key_node.col,
            )
        parent.value[key] = child
        parent.key_marks[key] = (key_node.line, key_node.col)  # type: ignore[index]

    @staticmethod
    def _merge(node: Node, sources: list[Node]) -> None:
        """``<<`` merges: explicit keys win, then the earlier source."""
        for src in sources:
            for k, v in src.value.items():
                if k not in node.value:
                    node.value[k] = v
                    node.key_marks[k] = src.key_marks[k]  # type: ignore[index]
                    node.size += v.size


def _clip(s: str, n: int = 24) -> str:
    return s if len(s) <= n else f"{s[:n]}... ({len(s)} characters)"


def parse_nodes(
    text: str, file: str | None = None, *, error: type[EinsimError] = YamlError
) -> Node | None:
    """Compose YAML ``text`` into a :class:`Node` tree (``None`` if empty).

    Raises ``error`` (file, line, column, what was expected) on anything
    malformed or over the limits of this module.
    """
    if not isinstance(text, str):
        raise error("expected YAML text", file=file)
    if len(text) > MAX_YAML_BYTES:
        raise error(
            f"the YAML text is {_size(len(text))}; the limit is {_size(MAX_YAML_BYTES)}", file=file
        )
    return _Composer(text, file, error).compose()


def plain(node: Node | None) -> Any:
    """The plain Python value of a node tree (shared nodes give shared values)."""
    if node is None:
        return None
    memo: dict[int, Any] = {}

    def conv(n: Node) -> Any:
        v = n.value
        if not isinstance(v, (dict, list)):
            return v
        hit = memo.get(id(n))
        if hit is not None:
            return hit
        out: Any = (
            {k: conv(c) for k, c in v.items()} if isinstance(v, dict) else [conv(c) for c in v]
        )
        memo[id(n)] = out
        return out

    return conv(node)


class Lines(_MappingABC):
    """``{key path: line}`` for a node tree, looked up on demand.

    A path is a tuple of mapping keys and list indices, e.g.
    ``("levels", 2, "capacity_bytes")``; a mapping entry's line is its key's.
    Nothing is precomputed, so a large document costs no extra memory.
    """

    def __init__(self, root: Node | None) -> None:
        self.root = root

    def _find(self, path: tuple) -> int | None:
        n = self.root
        if n is None:
            return None
        line = n.line
        for k in path:
            v = n.value
            if isinstance(v, dict):
                if not isinstance(k, (str, int, float, bool)) or k not in v:
                    return None
                line = n.key_marks[k][0]  # type: ignore[index]
                n = v[k]
            elif isinstance(v, list):
                if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < len(v):
                    return None
                n = v[k]
                line = n.line
            else:
                return None
        return line

    def __getitem__(self, path: tuple) -> int:
        line = self._find(path) if isinstance(path, tuple) else None
        if line is None:
            raise KeyError(path)
        return line

    def __contains__(self, path: object) -> bool:
        return isinstance(path, tuple) and self._find(path) is not None

    def __iter__(self) -> Iterator[tuple]:
        if self.root is None:
            return
        todo: list[tuple[tuple, Node]] = [((), self.root)]
        while todo:
            p, n = todo.pop()
            yield p
            if isinstance(n.value, dict):
                todo.extend(((*p, k), c) for k, c in n.value.items())
            elif isinstance(n.value, list):
                todo.extend(((*p, i), c) for i, c in enumerate(n.value))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __bool__(self) -> bool:
        return self.root is not None


def parse_yaml(
    text: str, file: str | None = None, *, error: type[EinsimError] = YamlError
) -> tuple[Any, Lines]:
    """Parse YAML ``text``: (plain data, :class:`Lines`)."""
    root = parse_nodes(text, file, error=error)
    return plain(root), Lines(root)


def load_yaml(
    path: str | Path, kind: str = "YAML file", *, error: type[EinsimError] = YamlError
) -> tuple[Any, Lines]:
    """Read and parse a YAML file safely: (plain data, :class:`Lines`)."""
    text = read_input_file(path, kind, error=error)
    return parse_yaml(text, str(path), error=error)


def line_of(lines: _MappingABC, path: tuple) -> int | None:
    """Line of ``path`` or of its nearest ancestor that has one."""
    while path:
        line = lines.get(path)
        if line is not None:
            return line
        path = path[:-1]
    return lines.get(())


__all__ = [
    "MAX_INPUT_BYTES",
    "MAX_INT_BITS",
    "MAX_YAML_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "InputFileError",
    "Lines",
    "Node",
    "YamlError",
    "decode_utf8",
    "line_of",
    "load_yaml",
    "parse_nodes",
    "parse_yaml",
    "plain",
    "read_input_bytes",
    "read_input_file",
]

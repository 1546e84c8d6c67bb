"""The one YAML loader and the safe file reader (workloads/yamlio.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from workloads import yamlio
from workloads.errors import EinsimError
from workloads.yamlio import (
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    InputFileError,
    YamlError,
    line_of,
    parse_nodes,
    parse_yaml,
    read_input_file,
)


def err(text: str) -> YamlError:
    with pytest.raises(YamlError) as ei:
        parse_yaml(text, "f.yaml")
    assert "\n" not in str(ei.value)
    return ei.value


def test_values_and_lines_match_pyyaml_safe_load() -> None:
    text = "a: 1\nb:\n  - x\n  - {c: 2.5, d: [true, null]}\ne: 1e9\nf: '1e9'\n"
    data, lines = parse_yaml(text)
    want = yaml.safe_load(text)
    want["e"] = 1e9  # YAML 1.2 floats: PyYAML (1.1) would give the string '1e9'
    assert data == want
    assert lines[("a",)] == 1 and lines[("b", 1)] == 4 and lines[("b", 1, "d")] == 4
    assert lines[("e",)] == 5 and ("zz",) not in lines and lines.get(("b", 7)) is None
    assert line_of(lines, ("b", 1, "d", 5, "q")) == 4  # nearest ancestor
    assert len(lines) == len(list(lines))


def test_aliases_are_shared_and_merges_work() -> None:
    text = "base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\nl: [*b, *b]\n"
    data, lines = parse_yaml(text)
    assert data["d"] == {"x": 1, "y": 3}
    assert data["l"][0] is data["l"][1] is data["base"]  # not re-expanded copies
    assert lines[("d", "y")] == 4 and lines[("d", "x")] == 1  # a merged key: its source line


def test_alias_bomb_is_refused_while_composing() -> None:
    rows = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 10):
        prev, name = chr(96 + i), chr(97 + i)
        rows.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    e = err("\n".join(rows) + "\n")
    # level k expands to about 9^(k+1) nodes: f (597,871) passes the limit
    assert "expands to more than 500,000 values" in str(e) and e.line == 6
    data, _ = parse_yaml("\n".join(rows[:5]) + "\n")  # e: 66,430 nodes, fine
    assert data["e"][0] is data["d"]
    assert MAX_YAML_NODES == 500_000


def test_depth_is_limited_without_recursion_error() -> None:
    ok = "a: " + "[" * (MAX_YAML_DEPTH - 1) + "]" * (MAX_YAML_DEPTH - 1) + "\n"
    parse_yaml(ok)
    block = "a:\n" + "".join("  " * i + "-\n" for i in range(1, MAX_YAML_DEPTH + 2))
    assert f"nested more than {MAX_YAML_DEPTH} levels" in str(err(block))
    for n in (2000, 100_000):  # flow nesting: libyaml's own limit or ours, never a crash
        e = err("x: " + "[" * n + "]" * n)
        assert e.line == 1


@pytest.mark.parametrize(
    ("text", "needle", "line"),
    [
        ("a: !!float\n", "'' is not a valid float", 1),
        ("a: 1\nb: ._\n", "'._' is not a valid float", 2),
        ("a: !!int x\n", "'x' is not a valid int", 1),
        ("a: " + "9" * 5000 + "\n", "too large", 1),
        ("a: " + "9" * 310 + "\n", "too large", 1),
        ("a: 1e400\n", "out of range", 1),
        ("a: " + "1" * 400 + ".5\n", "out of range", 1),
        ("a: 1\nb: \x01\n", "control character U+0001", 2),
        ("a: \x85x\x9f\n", "U+009F", 1),
        ("a: 1\na: 2\n", "duplicate key 'a' (first on line 1)", 2),
        ("? [1]\n: x\n", "a mapping key must be a plain value", 1),
        ("a: !!python/object/apply:os.system [ls]\n", "unsupported YAML tag", 1),
        ("a: !!binary aGk=\n", "unsupported YAML tag !!binary", 1),
        ("a: !!set {x}\n", "unsupported YAML tag !!set", 1),
        ("a: !mine x\n", "unsupported YAML tag !mine", 1),
        ("a: &r [*r]\n", "recursive alias *r", 1),
        ("a: *nope\n", "undefined alias *nope", 1),
        ("a: 1\n---\nb: 2\n", "more than one YAML document", 2),
        ("a: [1\n", "invalid YAML", 2),
        ("<<: 5\n", "merge key", 1),
    ],
)
def test_bad_yaml_is_one_clean_error(text: str, needle: str, line: int) -> None:
    e = err(text)
    assert needle in str(e), str(e)
    assert e.file == "f.yaml" and e.line == line, str(e)


def test_kept_as_written() -> None:
    data, _ = parse_yaml("d: 2024-01-01\ninf: .inf\nempty:\n")
    assert data == {"d": "2024-01-01", "inf": float("inf"), "empty": None}
    assert parse_nodes("") is None and parse_yaml("# only a comment\n")[0] is None


def test_the_callers_error_class_is_used() -> None:
    class MyError(EinsimError):
        pass

    with pytest.raises(MyError, match="f.yaml:1:4: '' is not a valid float"):
        parse_yaml("a: !!float\n", "f.yaml", error=MyError)


def test_read_input_file_refuses_special_and_large_files(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not a regular file"):
        read_input_file("/dev/zero", "test file")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(InputFileError, match="not a regular file"):
        read_input_file(tmp_path / "fifo", "test file")  # would block if opened plainly
    with pytest.raises(InputFileError, match="it is a directory"):
        read_input_file(tmp_path, "test file")
    with pytest.raises(InputFileError, match="file not found"):
        read_input_file(tmp_path / "nope", "test file")
    big = tmp_path / "big"
    big.write_bytes(b"x" * 2000)
    with pytest.raises(InputFileError, match="it is 1.95 KiB; the limit is 1000 B"):
        yamlio.read_input_file(big, "test file", max_bytes=1000)
    bad = tmp_path / "bad"
    bad.write_bytes(b"ok\nab\xffc\n")
    with pytest.raises(InputFileError, match=r"bad:2:3: cannot read test file: not UTF-8"):
        read_input_file(bad, "test file")
    bom = tmp_path / "bom"
    bom.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert read_input_file(bom, "test file") == "a: 1\n"
    # /proc files report size 0 but have contents: read, within the limit
    assert "Name:" in read_input_file("/proc/self/status", "test file")


#: the loader itself, and the importers of peers' files (their tags and
#: duplicate keys are data there): PyYAML's safe composer, walked under the
#: same limits (hw_models/importers/source.py, tested in
#: test_peer_files_are_bounded_too)
OWN_YAML_READERS = ("workloads/yamlio.py", "hw_models/importers/source.py")


def test_no_other_yaml_parser_in_the_code() -> None:
    """Every YAML read goes through workloads.yamlio (SafeLoader events only)."""
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for p in root.glob("*/**/*.py"):
        if p.parts[len(root.parts)] in ("tests", ".venv", ".ci-venv") or p.name.startswith(
            "bench_"
        ):
            continue
        text = p.read_text(encoding="utf-8")
        for bad in ("yaml.safe_load(", "yaml.load(", "yaml.compose(", "yaml.full_load(", "Loader="):
            if bad in text and p.relative_to(root).as_posix() not in OWN_YAML_READERS:
                offenders.append(f"{p.relative_to(root)}: {bad}")
    assert offenders == []


@pytest.mark.parametrize(
    "text, needle",
    [
        ("a: " + "9" * 5000 + "\n", "integer too large"),
        ("a: !!float ''\n", "is not a valid float"),
        ("a: !!int ._\n", "is not a valid int"),
        ("a: \x01\n", "YAML error"),
        ("a: " + "[" * 2000 + "]" * 2000 + "\n", "nested"),
    ],
)
def test_peer_files_are_bounded_too(tmp_path: Path, text: str, needle: str) -> None:
    """The importers' composer (peers' YAML) refuses what yamlio refuses."""
    from hw_models.importers.source import ImportFormatError, read

    f = tmp_path / "peer.yaml"
    f.write_text(text)
    with pytest.raises(ImportFormatError, match=needle):
        read(f)
    with pytest.raises(ImportFormatError, match="not a file"):
        read("/dev/zero")

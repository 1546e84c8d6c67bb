"""Reading the CSV tables of ``gpu-predict`` and ``array-predict`` safely.

The file is read with :func:`workloads.yamlio.read_input_file` (regular
files only, at most ``MAX_INPUT_BYTES``, UTF-8 with a clear error; a
leading byte-order mark is dropped), then parsed with :mod:`csv`. Every
problem (a NUL byte, a field over :data:`MAX_FIELD_CHARS`, an unterminated
quote, more than :data:`MAX_ROWS` rows) is the caller's error class with
the file and the line. Column meanings stay with the commands.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from workloads.errors import EinsimError
from workloads.yamlio import read_input_file

#: most data rows a table may have
MAX_ROWS = 1_000_000
#: longest field (characters); :mod:`csv`'s own default limit
MAX_FIELD_CHARS = 131_072


@dataclass(frozen=True)
class CsvTable:
    """A parsed table: the header (stripped) and ``(line, fields)`` per row.

    ``line`` is the 1-based line the row ends on; blank rows are dropped.
    """

    path: str
    header: list[str]
    rows: list[tuple[int, list[str]]]

    #: line of the row last yielded by iteration (as ``csv.DictReader.line_num``)
    line_num: int = 0

    @property
    def fieldnames(self) -> list[str]:
        return self.header

    def __iter__(self) -> Iterator[dict]:
        """Rows as :class:`csv.DictReader` gives them (extra fields under the
        key ``None``, missing ones ``None``), ``line_num`` following."""
        n = len(self.header)
        for line, fields in self.rows:
            row: dict = dict(zip(self.header, fields[:n], strict=False))
            for h in self.header[len(fields) :]:
                row[h] = None
            if len(fields) > n:
                row[None] = fields[n:]
            object.__setattr__(self, "line_num", line)
            yield row

    def __enter__(self) -> CsvTable:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def read_csv(path: str | Path, kind: str, *, error: type[EinsimError]) -> CsvTable:
    """Read and parse the CSV table at ``path``; ``kind`` names it in messages."""
    p = str(path)
    text = read_input_file(path, kind, error=error)
    lines = text.splitlines()
    reader = csv.reader(lines)
    rows: list[tuple[int, list[str]]] = []
    header: list[str] | None = None
    try:
        for fields in reader:
            if header is None:
                header = [h.strip() for h in fields]
                continue
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(rows) >= MAX_ROWS:
                raise error(
                    f"the {kind} has more than {MAX_ROWS:,} rows; split it into smaller files",
                    file=p,
                    line=reader.line_num,
                )
            rows.append((reader.line_num, fields))
    except csv.Error as exc:
        msg = str(exc)
        if "field larger than field limit" in msg:
            msg = f"a field is longer than {MAX_FIELD_CHARS:,} characters"
        elif "NUL" in msg:
            msg = "the line contains a NUL byte; expected text"
        raise error(f"malformed CSV: {msg}", file=p, line=max(1, reader.line_num)) from None
    if header is None or not any(header):
        raise error(f"empty {kind}; expected a CSV header line", file=p, line=1)
    return CsvTable(p, header, rows)

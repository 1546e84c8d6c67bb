"""Importers of other tools' hardware descriptions (``einsim hw import``).

    result = import_file("tpu_like.yaml", "zigzag")   # or "timeloop", "accelforge"
    result.arch        # an einsim Architecture (the tree, validated)
    result.carried     # what was carried over, by name
    result.left_out    # what could not be, by name, with why (empty = nothing)
    result.notes       # how things were read (assumptions, unit conversions)
    write(result, "x.yaml")   # the tree as YAML, the report as a comment header

Formats: ZigZag 3.9.1 hardware YAML (:mod:`.zigzag`), Timeloop/Accelergy
v0.4 architecture YAML with its optional energy and area tables (ERT/ART,
:mod:`.timeloop`), AccelForge architecture YAML (:mod:`.accelforge`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hw_models.arch import Architecture
from hw_models.errors import HardwareError
from hw_models.importers import accelforge, timeloop, zigzag
from hw_models.importers.common import ImportResult, Report
from hw_models.importers.source import ImportFormatError, read

__all__ = ["FORMATS", "ImportFormatError", "ImportResult", "Report", "import_file", "write"]


#: tool -> converter of a parsed file
CONVERTERS: dict[str, Callable[..., tuple[Architecture, Report]]] = {
    "zigzag": zigzag.convert,
    "timeloop": timeloop.convert,
    "accelforge": accelforge.convert,
}
FORMATS = tuple(CONVERTERS)


def import_file(path: str | Path, tool: str, **options: Any) -> ImportResult:
    """Import ``path`` written for ``tool`` (see :data:`FORMATS`).

    Options (each importer takes the ones it needs): ``name`` (the
    architecture's name; default the file's), ``clock_hz``, ``precision``
    (a :class:`~hw_models.arch.Precision` for ZigZag, whose hardware files
    leave it to the workload), ``ert`` / ``art`` (Timeloop's energy and
    area tables), ``bits`` (AccelForge's bits per value).
    """
    if tool not in FORMATS:
        raise HardwareError(f"--from must be one of {', '.join(FORMATS)}, got {tool!r}")
    src = read(path)
    report = Report()
    for dup in src.duplicates:
        report.notes.append(
            f"key given twice, the last one kept (as the tool's loader does): {dup}"
        )
    arch, report = CONVERTERS[tool](src, report, **options)
    if not options.get("name"):
        arch = dataclasses.replace(arch, name=_name_of(arch.name, path))
    return ImportResult(
        arch=arch,
        tool=tool,
        file=str(path),
        carried=tuple(report.carried),
        left_out=tuple(report.left_out),
        notes=tuple(report.notes),
    )


def _name_of(name: str, path: str | Path) -> str:
    return name or Path(path).stem


def write(result: ImportResult, out: str | Path) -> None:
    """Write the imported tree (YAML or JSON by suffix); YAML files start
    with the report as comments."""
    from hw_models.registry import save
    from hw_models.serialize import arch_to_dict
    from hw_models.yamlio import dump_yaml

    p = Path(out)
    if p.suffix.lower() == ".json":
        save(result.arch, p, tree=True)
        return
    lines = [f"# imported by `einsim hw import --from {result.tool}` from {result.file}"]
    lines.append("# left out: " + ("nothing" if not result.left_out else ""))
    lines += [f"#   - {x}" for x in result.left_out]
    if result.notes:
        lines.append("# notes:")
        lines += [f"#   - {x}" for x in result.notes]
    text = "\n".join(lines) + "\n" + dump_yaml(arch_to_dict(result.arch))
    p.write_text(text, encoding="utf-8")

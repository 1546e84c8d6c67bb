"""Click options the ``einsim`` commands declare alike."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import click


def path_option(
    flag: str,
    dest: str,
    *,
    kind: Literal["file", "dir", "any"],
    help: str,
    required: bool = False,
) -> Callable[[Any], Any]:
    """``flag`` taking one path (a ``Path``, None when not given) that must
    not be a folder (``kind="file"``) or a file (``kind="dir"``), or may be
    either (``kind="any"``)."""
    okay = {"file": {"dir_okay": False}, "dir": {"file_okay": False}, "any": {}}[kind]
    return click.option(
        flag,
        dest,
        type=click.Path(path_type=Path, **okay),
        default=None,
        required=required,
        help=help,
    )


def count_option(flag: str, *, maximum: int, help: str) -> Callable[[Any], Any]:
    """``flag N``: an optional whole number from 1 to ``maximum`` (None when
    not given, so that the command picks its own default)."""
    return click.option(
        flag, type=click.IntRange(min=1, max=maximum), default=None, metavar="N", help=help
    )

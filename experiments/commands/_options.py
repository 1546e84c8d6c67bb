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
    kind: Literal["file", "dir"],
    help: str,
    required: bool = False,
) -> Callable[[Any], Any]:
    """``flag`` taking one path (a ``Path``, None when not given) that must
    not be a folder (``kind="file"``) or a file (``kind="dir"``)."""
    okay = {"dir_okay": False} if kind == "file" else {"file_okay": False}
    return click.option(
        flag,
        dest,
        type=click.Path(path_type=Path, **okay),
        default=None,
        required=required,
        help=help,
    )

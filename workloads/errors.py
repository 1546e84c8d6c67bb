"""The one error type every einsim layer raises for bad input.

Every layer's errors subclass :class:`EinsimError`, so the CLI can print one
clear line (file, line, column, what was expected) and exit non-zero, and a
sweep can record the message of a failing point and carry on.
"""

from __future__ import annotations

from typing import Any


class EinsimError(Exception):
    """Bad input a user can act on. ``str(err)`` is the one-line message."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        col: int | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.col = col
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.file:
            where = str(self.file)
        if self.line is not None:
            where += f"{':' if where else 'line '}{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        return f"{where}: {self.message}" if where else self.message


class WorkloadError(EinsimError):
    """A cascade, an Einsum or a workload parameter is malformed.

    ``einsum`` names the Einsum the error is about, when there is one, so the
    parser can point at the line that wrote it.
    """

    def __init__(self, message: str, *, einsum: str | None = None, **where: Any) -> None:
        """``where``: the ``file``, ``line`` and ``col`` of :class:`EinsimError`."""
        self.einsum = einsum
        super().__init__(message, **where)


class ParseError(WorkloadError):
    """The cascade text is malformed; ``line`` (1-based) is always set."""

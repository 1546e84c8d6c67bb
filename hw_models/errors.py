"""Errors raised by the hardware layer.

Every message names the field (``params.rows``, ``levels[2].capacity_bytes``)
and the allowed range; when the value came from a YAML file the error also
carries the file and line, so the CLI prints ``file:line: message``.
"""

from __future__ import annotations

from typing import Any

from workloads.errors import EinsimError


class HardwareError(EinsimError):
    """A hardware description or a family parameter is malformed."""

    def __init__(self, message: str, *, field: str | None = None, **where: Any) -> None:
        """``where``: the ``file``, ``line`` and ``col`` of :class:`EinsimError`."""
        self.field = field
        super().__init__(message, **where)

    def __reduce__(self) -> tuple:
        # keep field/file/line (and FPGAFitError's resource figures) across
        # pickling, e.g. when a Dask worker sends the error back
        return (_rebuild, (type(self), dict(self.__dict__)))

    def located(self, file: str | None, line: int | None) -> HardwareError:
        """The same error with a file and line attached (keeps the subclass)."""
        err = type(self).__new__(type(self))
        err.__dict__.update(self.__dict__)
        err.file = file if file is not None else self.file
        err.line = line if line is not None else self.line
        Exception.__init__(err, err.format())
        return err


def _rebuild(cls: type, state: dict) -> HardwareError:
    err = cls.__new__(cls)
    err.__dict__.update(state)
    Exception.__init__(err, err.format())
    return err


class FPGAFitError(HardwareError):
    """A spatial design does not fit its FPGA device.

    ``resource`` is the first resource that overflowed ("dsp", "bram_18k",
    "uram", "lut", "ff"); ``used`` and ``available`` are in that resource's
    units, ``over`` = used - available.
    """

    def __init__(
        self,
        message: str,
        *,
        resource: str,
        used: float,
        available: float,
        **located: Any,
    ) -> None:
        """``located``: the ``field``, ``file`` and ``line`` of :class:`HardwareError`."""
        self.resource = resource
        self.used = used
        self.available = available
        self.over = used - available
        super().__init__(message, **located)

"""Helpers shared by the ``einsim`` commands."""

from __future__ import annotations


def split_param(item: str, error: type[Exception], *, missing: str, empty: str) -> tuple[str, str]:
    """One ``--param NAME=VALUE`` -> (stripped NAME, VALUE as given).

    Raises ``error(f"--param {item!r}: {missing}")`` without ``=`` and
    ``error(f"--param {item!r}: {empty}")`` when NAME is blank.
    """
    if "=" not in item:
        raise error(f"--param {item!r}: {missing}")
    k, v = item.split("=", 1)
    k = k.strip()
    if not k:
        raise error(f"--param {item!r}: {empty}")
    return k, v

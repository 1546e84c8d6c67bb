"""Builders the family modules share for their storage levels and units.

Each family (``gpu``, ``spatial``, ``fpga``) writes its hierarchy as a list of
levels whose reads and writes cost the same per word; these helpers say that
once instead of spelling both fields out at every level.
"""

from __future__ import annotations

from typing import Any

from hw_models.arch import StorageLevel


def level(
    name: str,
    capacity_bytes: float | None,
    word_bits: int,
    bw_bytes_per_cycle: float,
    energy_pj_per_word: float,
    *,
    write_bw_bytes_per_cycle: float | None = None,
    **fields: Any,
) -> StorageLevel:
    """A :class:`StorageLevel` whose reads and writes cost
    ``energy_pj_per_word`` each and move ``bw_bytes_per_cycle`` (writes
    ``write_bw_bytes_per_cycle`` where it differs); ``fields`` are the
    other :class:`StorageLevel` fields."""
    return StorageLevel(
        name=name,
        capacity_bytes=capacity_bytes,
        word_bits=word_bits,
        read_bw_bytes_per_cycle=bw_bytes_per_cycle,
        write_bw_bytes_per_cycle=(
            bw_bytes_per_cycle if write_bw_bytes_per_cycle is None else write_bw_bytes_per_cycle
        ),
        read_energy_pj_per_word=energy_pj_per_word,
        write_energy_pj_per_word=energy_pj_per_word,
        **fields,
    )

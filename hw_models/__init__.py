"""Hardware models: what a workload runs on.

Public API (stable; other layers code against it)::

    load(name_or_path) -> Architecture       # preset name or YAML/JSON path
    list_presets() -> list[str]
    build(family, params) -> Architecture     # family in gpu | spatial | fpga
    derive(arch_or_name, overrides) -> Architecture   # rebuild with new params
    to_dict(arch) / from_dict(data)           # the full tree (JSON/YAML-able)
    save(arch, path) / dump_yaml / dump_json
    validate(arch) -> arch                    # raises HardwareError
    spatial_array(**p)                        # family functions; also
    hw_models.gpu.gpu(**p), hw_models.fpga.fpga(**p)  # (modules keep their names)
    fits(params) / estimate_resources(params) # FPGA fit (hw_models.fpga)
    HardwareError, FPGAFitError

The architecture tree (per-tensor memories, precision; hw_models.memories)::

    Memory, Port, Precision                   # a level's memories, their ports, bits
    memory_level(name, memories, **fields)    # a level of several memories
    with_memories(level, memories)            # a level given memories (summary refreshed)
    memory_for(arch, level, tensor, roles) -> Memory | None   # who stores T at L
    memory_table(arch, roles) -> [{tensor: Memory | None}]    # every level at once
    memory_figures(arch, roles) -> {field: [level][tensor]}   # the numbers, for arrays
    tensors_by_memory(arch, roles) -> [{memory: tensors}]     # who shares a capacity
    tensor_bits(arch, level, tensor, roles, default_bits=..., partial=...)
    shared_along(level, tensor, roles, axis)  # multicast / spatial reduction per tensor
    level_memories(level)                     # a level's memories (one for a plain level)
"""

from __future__ import annotations

import json
from typing import Any

from hw_models.arch import (
    Architecture,
    ComputeUnit,
    Memory,
    Port,
    Precision,
    StorageLevel,
    level_memories,
)
from hw_models.errors import FPGAFitError, HardwareError
from hw_models.fpga import FPGAResources, estimate_resources
from hw_models.fpga import fits as fpga_fits
from hw_models.memories import (
    memory_figures,
    memory_for,
    memory_level,
    memory_table,
    shared_along,
    tensor_bits,
    tensors_by_memory,
    with_memories,
)
from hw_models.registry import (
    FAMILIES,
    apply_overrides,
    build,
    derive,
    from_spec,
    list_presets,
    load,
    save,
    schema,
    to_spec,
)
from hw_models.serialize import arch_from_dict as from_dict
from hw_models.serialize import arch_to_dict as to_dict
from hw_models.spatial import spatial_array
from hw_models.validate import validate
from hw_models.yamlio import dump_yaml as _dump_yaml
from hw_models.yamlio import parse_yaml


def dump_yaml(arch: Architecture) -> str:
    """The whole tree as YAML text (round-trips through :func:`loads`)."""
    return _dump_yaml(to_dict(arch))


def dump_json(arch: Architecture) -> str:
    return json.dumps(to_dict(arch), indent=2)


def loads(text: str, *, file: str | None = None) -> Architecture:
    """Parse YAML or JSON text (a spec or a tree) into an Architecture."""
    data, lines = parse_yaml(text, file)
    return from_spec(data, file=file, lines=lines)


def fits(params: dict[str, Any]) -> bool:
    """FPGA-family constraint filter (never raises): see :func:`hw_models.fpga.fits`."""
    return fpga_fits(params)


__all__ = [
    "Architecture",
    "ComputeUnit",
    "StorageLevel",
    "Memory",
    "Port",
    "Precision",
    "memory_level",
    "with_memories",
    "memory_for",
    "memory_table",
    "memory_figures",
    "tensors_by_memory",
    "tensor_bits",
    "shared_along",
    "level_memories",
    "HardwareError",
    "FPGAFitError",
    "FPGAResources",
    "FAMILIES",
    "load",
    "loads",
    "list_presets",
    "build",
    "derive",
    "apply_overrides",
    "from_spec",
    "to_spec",
    "to_dict",
    "from_dict",
    "dump_yaml",
    "dump_json",
    "save",
    "schema",
    "validate",
    "spatial_array",
    "estimate_resources",
    "fits",
    "fpga_fits",
]

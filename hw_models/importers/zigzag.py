"""ZigZag 3.9.1 hardware YAML -> einsim architecture tree.

ZigZag's file (``zigzag/inputs/hardware/*.yaml``; schema in ZigZag's
``parser/accelerator_validator.py``) lists memories innermost first, each
with the operands it stores (``I1``, ``I2``, ``O``), its ports and the
array dimensions it is shared over (``served_dimensions``), and an
``operational_array`` of MAC units.

How it is read:

* **Levels.** Each operand's memories, in file order, form its chain. Levels
  are filled innermost first: a level takes the memories that are next in
  the chains of all the operands they store and share the fewest array
  dimensions (ties: the first listed). ZigZag's ``eyeriss_like`` gives
  DRAM -> sram_1M (I, O) -> sram_64KB (W) + sram_8KB (O) -> the three
  register files, one per PE.
* **Fan-out.** A memory not shared over a dimension has one copy per index
  of it: copies of a level = product of the sizes of the dimensions its
  memories are not shared over; the fan-out below a level is over the
  dimensions the level is shared over and the next one down is not.
  ``D1`` is einsim's x axis (columns), ``D2`` its y axis (rows).
* **Memories.** ``size`` (bits) -> capacity; ``r_cost`` / ``w_cost`` (pJ
  per access) -> energy per word, the word being the ports' widest
  transfer (``bandwidth_max``: ZigZag counts accesses in those units);
  each port -> a :class:`~hw_models.arch.Port` (bandwidth_max /
  bandwidth_min, and its allocation: ``fh`` fill, ``tl`` read, ``fl``
  update, ``th`` drain); read / write bandwidth = the sum over the ports
  of each kind; ``latency``, ``area``, ``force_double_buffering`` as such.
* **Operands.** ZigZag's default ``memory_operand_links`` (``I: I1, W:
  I2, O: O``, in every bundled mapping file): I1 -> input, I2 -> weight.
* **Precision.** ZigZag's hardware files carry none (the workload does);
  the default is ZigZag's own for ONNX layers (``parser/onnx/
  onnx_operator_parser.py``): 8-bit inputs and weights, 16-bit partial
  sums (twice the activation width), 8-bit final outputs; ``precision=``
  replaces it.
* **Compute.** ``unit_energy`` (pJ) per operation; the unit runs MACs,
  adds and compares (ZigZag charges every operation of any layer the
  unit energy); ``systolic_dimensions`` -> ``systolic_axes``.
* **Clock.** ZigZag counts cycles only: 1 GHz unless ``clock_hz=`` is given.
"""

from __future__ import annotations

import math
from typing import Any

from hw_models.arch import ComputeUnit, Memory, Port, Precision
from hw_models.importers.common import Draft, Report, assemble, positive_int, source_line
from hw_models.importers.source import Source

ROLE = {"I1": "input", "I2": "weight", "O": "output"}
DIRECTION = {"fh": "fill", "tl": "read", "fl": "update", "th": "drain"}
PORT_KIND = {"read": "read", "write": "write", "read_write": "readwrite"}
#: ZigZag's ONNX defaults: activation 8, weight 8, intermediate output 2 x 8
DEFAULT_PRECISION = Precision(input_bits=8, weight_bits=8, psum_bits=16, output_bits=8)
_MEMORY_KEYS = frozenset(
    (
        "size",
        "r_cost",
        "w_cost",
        "area",
        "latency",
        "operands",
        "ports",
        "served_dimensions",
        "mem_type",
        "auto_cost_extraction",
        "force_double_buffering",
    )
)
_ARRAY_KEYS = frozenset(
    ("unit_energy", "unit_area", "dimensions", "sizes", "systolic_dimensions", "is_imc")
)


def _num(src: Source, value: Any, what: str, *path: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise src.error(
            f"{'.'.join(map(str, path))}: {what} must be a number, got {value!r}", *path
        )
    return float(value)


def _ports(src: Source, name: str, mem: dict) -> list[Port]:
    ports = mem.get("ports")
    if not isinstance(ports, list) or not ports:
        raise src.error(f"memories.{name}.ports must be a list of ports", "memories", name, "ports")
    out = []
    for i, p in enumerate(ports):
        at = ("memories", name, "ports", i)
        if not isinstance(p, dict) or p.get("type") not in PORT_KIND:
            raise src.error(
                f"memories.{name}.ports[{i}] must have type read, write or read_write", *at
            )
        bw_max = _num(src, p.get("bandwidth_max"), "bandwidth_max", *at, "bandwidth_max")
        bw_min = _num(src, p.get("bandwidth_min", bw_max), "bandwidth_min", *at, "bandwidth_min")
        serves = []
        for j, a in enumerate(p.get("allocation") or []):
            op, _, d = str(a).partition(",")
            op, d = op.strip(), d.strip()
            if op not in ROLE or d not in DIRECTION:
                raise src.error(
                    f"memories.{name}.ports[{i}].allocation[{j}] must be 'OPERAND, DIRECTION' "
                    f"(I1|I2|O, fh|tl|fl|th), got {a!r}",
                    *at,
                    "allocation",
                    j,
                )
            serves.append(f"{ROLE[op]}:{DIRECTION[d]}")
        out.append(
            Port(
                name=str(p.get("name", f"port{i}")),
                kind=PORT_KIND[p["type"]],
                bw_bytes_per_cycle=bw_max / 8,
                min_access_bits=int(bw_min),
                serves=tuple(serves),
            )
        )
    return out


def _memory(src: Source, name: str, mem: dict, report: Report) -> Memory:
    at = ("memories", name)
    report.keys(f"memories.{name}", mem, _MEMORY_KEYS)
    ops = mem.get("operands")
    if not isinstance(ops, list) or not ops or any(o not in ROLE for o in ops):
        raise src.error(f"memories.{name}.operands must be a list of I1, I2, O", *at, "operands")
    ports = _ports(src, name, mem)
    reads = [p for p in ports if p.kind in ("read", "readwrite")]
    writes = [p for p in ports if p.kind in ("write", "readwrite")]
    if not reads or not writes:
        raise src.error(f"memories.{name} needs a read and a write (or read_write) port", *at)
    word = int(max(p.bw_bytes_per_cycle for p in reads) * 8)
    w_word = int(max(p.bw_bytes_per_cycle for p in writes) * 8)
    if mem.get("r_cost") is None or mem.get("w_cost") is None:
        if mem.get("auto_cost_extraction"):
            report.left_out.append(
                f"memories.{name}.r_cost/w_cost: extracted by ZigZag with CACTI, which einsim "
                "does not run; set to 0 (give the costs in the file)"
            )
        else:
            raise src.error(f"memories.{name}: r_cost and w_cost are required", *at)
    r_cost = _num(src, mem.get("r_cost") or 0.0, "r_cost", *at, "r_cost")
    w_cost = _num(src, mem.get("w_cost") or 0.0, "w_cost", *at, "w_cost")
    if w_word != word:
        report.notes.append(
            f"memories.{name}: writes are {w_word} bits wide and reads {word}; the write cost "
            f"is rescaled to the {word}-bit word (same energy per bit)"
        )
        w_cost *= word / w_word
    size = _num(src, mem.get("size"), "size", *at, "size")
    report.carried.append(
        f"memory {name}: size, r_cost, w_cost, area, latency, operands, "
        f"{len(ports)} port(s) with their allocation, served_dimensions"
    )
    return Memory(
        name=name,
        serves=tuple(ROLE[o] for o in ops),
        capacity_bytes=size / 8,
        word_bits=word,
        read_bw_bytes_per_cycle=sum(p.bw_bytes_per_cycle for p in reads),
        write_bw_bytes_per_cycle=sum(p.bw_bytes_per_cycle for p in writes),
        read_energy_pj_per_word=r_cost,
        write_energy_pj_per_word=w_cost,
        shared_bw=all(p.kind == "readwrite" for p in ports),
        ports=tuple(ports),
        area_mm2=float(mem.get("area") or 0.0),
        double_buffered=bool(mem.get("force_double_buffering", False)),
        latency_cycles=int(mem.get("latency", 1)),
    )


def _levels(
    names: list[str], operands: dict[str, list[str]], served: dict[str, frozenset[str]], src: Source
) -> list[list[str]]:
    """Memories grouped into levels, innermost first (see the module doc)."""
    chains = {op: [m for m in names if op in operands[m]] for op in ROLE}
    pos = dict.fromkeys(ROLE, 0)
    placed: set[str] = set()
    out: list[list[str]] = []
    while len(placed) < len(names):
        heads = {op: c[pos[op]] for op, c in chains.items() if pos[op] < len(c)}
        ready = [
            m
            for m in names
            if m not in placed
            and all(heads.get(op) == m for op in operands[m])
            and any(heads.get(op) == m for op in operands[m])
        ]
        if not ready:
            raise src.error(
                "the memories' operand chains cross (a memory is above another for one operand "
                "and below it for another); einsim needs one order of levels",
                "memories",
            )
        fewest = min(len(served[m]) for m in ready)
        first = next(m for m in ready if len(served[m]) == fewest)
        group = [m for m in ready if served[m] == served[first]]
        out.append(group)
        for m in group:
            placed.add(m)
            for op in operands[m]:
                pos[op] += 1
    return out


def convert(
    src: Source,
    report: Report,
    *,
    name: str | None = None,
    clock_hz: float | None = None,
    precision: Precision | None = None,
    **_: Any,
) -> tuple[Any, Report]:
    data = src.data
    if not isinstance(data, dict) or not isinstance(data.get("memories"), dict):
        raise src.error("a ZigZag hardware file has 'name', 'memories' and 'operational_array'")
    report.keys("", data, {"name", "memories", "operational_array", "dataflows"})
    if "dataflows" in data:
        report.left_out.append("dataflows: a spatial-mapping constraint (give it to the mapper)")
    oa = data.get("operational_array")
    if not isinstance(oa, dict):
        raise src.error("operational_array is required", "operational_array")
    report.keys("operational_array", oa, _ARRAY_KEYS)
    dims = oa.get("dimensions") or []
    sizes = oa.get("sizes") or []
    if not isinstance(dims, list) or not isinstance(sizes, list) or len(dims) != len(sizes):
        raise src.error(
            "operational_array.dimensions and sizes must be lists of the same length",
            "operational_array",
        )
    size_of = {
        d: positive_int(s, "size", f"{src.file}: operational_array.sizes")
        for d, s in zip(dims, sizes, strict=True)
    }
    if len(dims) > 2:
        report.notes.append(
            f"operational_array has {len(dims)} dimensions; einsim's fan-out has two axes: "
            f"{', '.join(dims[2:])} folded into y"
        )
    axis = {d: ("x" if i == 0 else "y") for i, d in enumerate(dims)}

    mems = data["memories"]
    names = list(mems)
    memories = {n: _memory(src, n, mems[n], report) for n in names}
    operands = {n: list(mems[n]["operands"]) for n in names}
    served = {}
    for n in names:
        sd = mems[n].get("served_dimensions")
        if not isinstance(sd, list) or any(d not in size_of for d in sd):
            raise src.error(
                f"memories.{n}.served_dimensions must list dimensions of the array "
                f"({', '.join(dims)})",
                "memories",
                n,
                "served_dimensions",
            )
        served[n] = frozenset(sd)
    groups = _levels(names, operands, served, src)[::-1]  # outermost first

    drafts = []
    for k, group in enumerate(groups):
        here = served[group[0]]
        below = served[groups[k + 1][0]] if k + 1 < len(groups) else frozenset()
        if not below <= here:
            raise src.error(
                f"memory {groups[k + 1][0]} is shared over more array dimensions than "
                f"{group[0]} above it; einsim's fan-out only splits going down",
                "memories",
                groups[k + 1][0],
            )
        fan = {"x": 1, "y": 1}
        for d in here - below:
            fan[axis[d]] *= size_of[d]
        drafts.append(
            Draft(
                "+".join(group), [memories[m] for m in group], fanout_x=fan["x"], fanout_y=fan["y"]
            )
        )

    pes = math.prod(size_of.values())
    cols = size_of[dims[0]] if dims else 1
    energy = _num(src, oa.get("unit_energy", 0.0), "unit_energy", "operational_array")
    if oa.get("is_imc"):
        report.left_out.append("operational_array.is_imc: in-memory compute is not modelled")
    systolic = tuple(dict.fromkeys(axis[d] for d in oa.get("systolic_dimensions") or []))
    unit = ComputeUnit(
        name="pe_array",
        kind="array2d" if len(dims) >= 2 else "array1d",
        pes=pes,
        ops_per_cycle={"mac": 1.0, "add": 1.0, "max": 1.0},
        energy_pj_per_op={"mac": energy, "add": energy, "max": energy},
        rows=pes // cols,
        cols=cols,
        datatype_bits=(precision or DEFAULT_PRECISION).input_bits or 8,
        area_mm2=float(oa.get("unit_area") or 0.0) * pes,
        precision=precision or DEFAULT_PRECISION,
        systolic_axes=systolic,
        operand_registers=True,
    )
    report.carried.append(
        "operational_array: dimensions, sizes, unit_energy, unit_area"
        + (", systolic_dimensions" if systolic else "")
    )
    report.notes += [
        "operand links I1 = input, I2 = weight, O = output (ZigZag's default memory_operand_links)",
        "precision "
        + (
            "as given"
            if precision
            else "ZigZag's ONNX defaults: inputs and weights 8 bits, partial sums 16, outputs 8"
        ),
        f"clock {clock_hz or 1e9:g} Hz (ZigZag counts cycles only)",
        "areas in ZigZag's own unit, written as area_mm2 (unit_area x units for the array)",
        "every operation (MAC, add, compare) costs unit_energy, as in ZigZag's cost model",
    ]
    arch = assemble(
        name or str(data.get("name") or ""),
        drafts,
        [unit],
        clock_hz=clock_hz or 1e9,
        sources=[source_line(src.file, "zigzag")],
    )
    return arch, report

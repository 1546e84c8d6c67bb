"""The parametric hardware description every mapper and cost model reads.

An :class:`Architecture` is a chain (a degenerate tree: one path from DRAM to
the compute units) of :class:`StorageLevel` values, outermost (DRAM, HBM)
first, with spatial fan-out between levels and :class:`ComputeUnit` values
under the innermost level. All values are SI with the unit in the field name.
``capacity_bytes = None`` means unbounded (off-chip memory).

A level is either **one memory** serving every tensor it ``holds`` (the
level's own fields describe it), or holds several :class:`Memory`
instances in ``memories``, each serving a named set of tensors or operand
roles with its own capacity, word, bandwidth, ports, banks and energies
(Eyeriss's ifmap, filter and psum scratchpads side by side). For such a
level the level's own memory fields are a summary of its memories (see
:func:`hw_models.memories.with_memories`), kept so that code that reads
one memory per level still runs; code that reads "level L, tensor T" calls
:func:`hw_models.memories.memory_for` and gets the memory serving T. A
one-memory level is exactly the special case: ``memory_for`` returns the
level's own figures.

:class:`Precision` gives the bits of inputs, weights, partial sums and
outputs where the hardware fixes them (a compute unit's multiplier and
accumulator widths, a memory's stored width); ``None`` everywhere means
the workload's tensor widths, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: the directions a port may serve, for a memory at level L:
#: "fill" (written from the level above), "read" (read towards the level
#: below or the compute units), "update" (partial sums written back from
#: below), "drain" (read towards the level above: write-backs). ZigZag's
#: fh / tl / fl / th.
PORT_DIRECTIONS = ("fill", "read", "update", "drain")
#: port kinds
PORT_KINDS = ("read", "write", "readwrite")


@dataclass(frozen=True)
class Precision:
    """Bits of each operand role; ``None`` = the workload's tensor width.

    ``input_bits`` applies to the first operand (and any operand after the
    second), ``weight_bits`` to the second, ``psum_bits`` to the output
    while it is still a partial sum, ``output_bits`` to the final output.
    """

    input_bits: int | None = None
    weight_bits: int | None = None
    psum_bits: int | None = None
    output_bits: int | None = None

    @classmethod
    def uniform(cls, bits: int) -> Precision:
        """Every role at ``bits`` (a Timeloop ``datawidth``)."""
        return cls(bits, bits, bits, bits)


@dataclass(frozen=True)
class Port:
    """One port of a memory: its kind, width and what it serves."""

    name: str
    #: "read" | "write" | "readwrite"
    kind: str
    #: widest transfer per cycle (ZigZag's bandwidth_max)
    bw_bytes_per_cycle: float
    #: smallest transfer; an access moves a whole multiple of it (ZigZag's
    #: bandwidth_min); 0 = any amount
    min_access_bits: int = 0
    #: "ROLE_OR_TENSOR:DIRECTION" entries (directions in PORT_DIRECTIONS);
    #: empty = every tensor the memory serves, in every direction its kind allows
    serves: tuple[str, ...] = ()


@dataclass(frozen=True)
class Memory:
    """One memory instance at a storage level (per copy of the level)."""

    name: str
    #: tensor names or roles ("input", "weight", "output") it stores;
    #: None = every tensor (only for the sole memory of a level)
    serves: tuple[str, ...] | None
    #: bytes per copy; None = unbounded (outermost level only)
    capacity_bytes: float | None
    #: bits per access: the unit the energies and ``word`` counts refer to
    word_bits: int
    #: total over its read (write) ports; may be .inf (not a limit)
    read_bw_bytes_per_cycle: float
    write_bw_bytes_per_cycle: float
    read_energy_pj_per_word: float
    write_energy_pj_per_word: float
    #: reads and writes share one port budget (read_bw is then the total)
    shared_bw: bool = False
    banks: int = 1
    #: per-port detail (ZigZag's ports); empty = read_bw/write_bw describe them
    ports: tuple[Port, ...] = ()
    leakage_w: float = 0.0
    area_mm2: float = 0.0
    double_buffered: bool = True
    #: bits of what it stores; None = the compute unit's, else the workload's
    precision: Precision | None = None
    #: access latency (0 = not modelled)
    latency_cycles: int = 0


@dataclass(frozen=True)
class StorageLevel:
    name: str
    #: bytes per instance; None = unbounded (DRAM/HBM)
    capacity_bytes: float | None
    word_bits: int
    read_bw_bytes_per_cycle: float
    write_bw_bytes_per_cycle: float
    read_energy_pj_per_word: float
    write_energy_pj_per_word: float
    #: read and write share one port budget (read_bw is then the total)
    shared_bw: bool = False
    banks: int = 1
    leakage_w: float = 0.0
    area_mm2: float = 0.0
    #: how many copies of this level exist (e.g. one register file per PE)
    instances: int = 1
    #: tensor names (or roles "input"/"weight"/"output") the level may hold;
    #: None means any tensor
    holds: tuple[str, ...] | None = None
    double_buffered: bool = True
    #: spatial fan-out from this level to the next one down (or to compute)
    fanout_x: int = 1
    fanout_y: int = 1
    multicast: bool = True
    spatial_reduce: bool = True
    #: per-tensor memories at this level (see the module doc); empty = the
    #: level is one memory (its own fields) serving ``holds``
    memories: tuple[Memory, ...] = ()
    #: bits of what a one-memory level stores (None: the unit's / workload's)
    precision: Precision | None = None
    #: tensors or roles the fan-out network shares along x (y): a read
    #: tensor is multicast, the output reduced spatially; None = every
    #: tensor (as ``multicast`` / ``spatial_reduce`` say), () = none
    share_x: tuple[str, ...] | None = None
    share_y: tuple[str, ...] | None = None
    #: energy to carry one word across the fan-out network below this level
    network_energy_pj_per_word: float = 0.0

    @property
    def fanout(self) -> int:
        return self.fanout_x * self.fanout_y


def level_memories(level: StorageLevel) -> tuple[Memory, ...]:
    """The memories of a level: its ``memories``, or for a one-memory level
    the one memory its own fields describe (named like the level)."""
    if level.memories:
        return level.memories
    return (
        Memory(
            name=level.name,
            serves=level.holds,
            capacity_bytes=level.capacity_bytes,
            word_bits=level.word_bits,
            read_bw_bytes_per_cycle=level.read_bw_bytes_per_cycle,
            write_bw_bytes_per_cycle=level.write_bw_bytes_per_cycle,
            read_energy_pj_per_word=level.read_energy_pj_per_word,
            write_energy_pj_per_word=level.write_energy_pj_per_word,
            shared_bw=level.shared_bw,
            banks=level.banks,
            leakage_w=level.leakage_w,
            area_mm2=level.area_mm2,
            double_buffered=level.double_buffered,
            precision=level.precision,
        ),
    )


@dataclass(frozen=True)
class ComputeUnit:
    name: str
    #: "array2d", "array1d", "sm", "dsp_array"
    kind: str
    #: processing elements (MAC lanes); rows x cols for a 2D array
    pes: int
    #: operations per cycle per PE, by operator class ("mac", "add", "max",
    #: "exp", "div") -- for the datatype the design is built for
    ops_per_cycle: dict[str, float]
    #: energy per operation by operator class
    energy_pj_per_op: dict[str, float]
    rows: int = 1
    cols: int = 1
    #: "os" | "ws" | "is" for systolic arrays, "" otherwise
    dataflow: str = ""
    datatype_bits: int = 16
    area_mm2: float = 0.0
    leakage_w: float = 0.0
    #: storage level that feeds this unit; "" = the innermost level. (The
    #: FuseMax 1D array reads the GlobalBuffer directly, not a PE_RF.)
    fed_by: str = ""
    #: throughput of other datatypes relative to the native one, e.g. an
    #: H100 tensor core {"bf16": 1, "fp8": 2, "tf32": 0.5}; empty = native only
    dtype_scale: dict[str, float] = field(default_factory=dict)
    #: operand widths of the datapath (multiplier inputs, accumulator);
    #: None = ``datatype_bits`` / the workload's widths
    precision: Precision | None = None
    #: fan-out axes ("x", "y") along which operands move one PE per cycle
    #: (ZigZag's systolic_dimensions); empty = none stated. ``dataflow``
    #: still selects the SCALE-Sim skew.
    systolic_axes: tuple[str, ...] = ()
    #: each PE keeps its last input operands: over the innermost loops that
    #: do not index an input, the MAC reuses it instead of reading the level
    #: that feeds it again (ZigZag 3.9.1 charges inputs this way)
    operand_registers: bool = False

    def peak_ops_per_s(self, op: str, clock_hz: float, dtype: str | None = None) -> float:
        """Peak rate of operator class ``op`` over all PEs (0 if unsupported);
        ``dtype`` scales it by :attr:`dtype_scale` (0 for an unlisted dtype)."""
        rate = self.pes * self.ops_per_cycle.get(op, 0.0) * clock_hz
        if dtype is None:
            return rate
        return rate * self.dtype_scale.get(dtype, 0.0)


@dataclass(frozen=True)
class Architecture:
    name: str
    #: "gpu" | "spatial" | "fpga"
    family: str
    clock_hz: float
    #: outermost (off-chip) first
    levels: tuple[StorageLevel, ...]
    compute: tuple[ComputeUnit, ...]
    static_power_w: float = 0.0
    #: the family parameters the architecture was built from (what a sweep or
    #: ``einsim hw derive`` varies); plain JSON-able values
    params: dict[str, Any] = field(default_factory=dict)
    #: where the figures come from
    sources: tuple[str, ...] = ()
    #: explicit per-component overrides applied after the family built the
    #: tree: {level or unit name: {field: value}}; kept so that
    #: ``hw_models.derive`` can re-apply them to a rebuilt variant
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def level(self, name: str) -> StorageLevel:
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise KeyError(name)

    def memory(self, name: str) -> Memory:
        """A memory by name: one of a level's ``memories``, or a one-memory
        level's own memory (named like the level)."""
        for lv in self.levels:
            for m in level_memories(lv):
                if m.name == name:
                    return m
        raise KeyError(name)

    def unit(self, name: str) -> ComputeUnit:
        for cu in self.compute:
            if cu.name == name:
                return cu
        raise KeyError(name)

    @property
    def area_mm2(self) -> float:
        """Total area: per-instance level area x instances + compute units."""
        return sum(lv.area_mm2 * lv.instances for lv in self.levels) + sum(
            cu.area_mm2 for cu in self.compute
        )

    @property
    def leakage_w(self) -> float:
        """Static power: the architecture's own plus every component's leakage."""
        return (
            self.static_power_w
            + sum(lv.leakage_w * lv.instances for lv in self.levels)
            + sum(cu.leakage_w for cu in self.compute)
        )

    def peak_ops_per_s(self, op: str = "mac", unit: str | None = None) -> float:
        """Peak rate of operator class ``op`` (one unit, or all units summed)."""
        units = [self.unit(unit)] if unit else list(self.compute)
        return sum(cu.peak_ops_per_s(op, self.clock_hz) for cu in units)

"""Timeloop / Accelergy v0.4 architecture YAML -> einsim architecture tree.

The v0.4 file (``architecture: {version: 0.4, nodes: [...]}``) lists its
nodes top-down: ``!Container`` nodes open a level of the hierarchy (with
``spatial: {meshX, meshY}`` for a fan-out) and pass their ``attributes``
down (``technology``, ``datawidth``); ``!Component`` nodes are storage
(``DRAM``, ``SRAM``, ``smartbuffer_SRAM``, ``smartbuffer_RF``, ``regfile``,
``storage``) or compute (``intmac``, ``fpmac``, ``mac``); ``!Parallel``
puts several storage components side by side (one einsim level of several
memories); ``!Nothing`` in a ``!Parallel`` lets a dataspace pass.

How it is read (Timeloop's own figures, as its stats print them):

* **Memories.** ``depth`` x ``width`` bits -> capacity (no depth: unbounded,
  DRAM); the word (the unit of an access and of its energy) is ``width``
  bits, or ``width / cluster_size`` where a cluster of instances shares
  one access; ``datawidth`` -> the bits every tensor is stored with there
  (a uniform :class:`~hw_models.arch.Precision`); ``read_bandwidth`` /
  ``write_bandwidth`` (``datawidth`` words per cycle) -> bytes per cycle
  (none given: .inf, Timeloop's '-'); ``n_banks`` -> banks;
  ``num_ports``/``nports`` 2 -> a read and a write port; Timeloop buffers
  are single-buffered (``multiple_buffering`` 1).
* **Dataspaces.** ``constraints.dataspace.keep`` (or all but ``bypass``)
  -> the roles a memory serves (Inputs, Weights, Outputs -> input, weight,
  output). A forced ``keep`` is a mapping constraint; it is carried as
  "may hold" (noted).
* **Fan-out.** ``meshX`` / ``meshY`` of the containers (or components)
  between two storage levels -> that level's fan-out (x, y); copies are the
  product of the fan-outs above.
* **Energy and area.** From Accelergy's tables when given (``ert=``: the
  ERT, per-action energies in pJ; ``art=``: the ART, areas in um^2),
  matched by component name; ``leak`` (pJ per cycle) -> leakage. Without a
  table: einsim's own estimates at the ``technology`` node (noted).
* **Compute.** ``multiplier_width`` / ``adder_width`` -> the unit's
  precision (inputs and weights / partial sums); one MAC per PE per cycle.
* **Clock.** The ERT's ``global_cycle_seconds`` if it has one, else 1 GHz
  (Timeloop's default), unless ``clock_hz=`` is given.
* **Left out** (by name): mapping constraints (``temporal``, ``spatial``
  factors and permutations), ``update_fifo_depth``, unknown attributes.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from hw_models.arch import ComputeUnit, Memory, Port, Precision
from hw_models.importers.common import (
    ALL_ROLES,
    TIMELOOP_ROLES,
    Draft,
    Report,
    array_shape,
    assemble,
    clean,
    dram_kind_of,
    estimate_pj_per_bit,
    positive_int,
    source_line,
)
from hw_models.importers.source import ImportFormatError, Source, read

STORAGE_CLASSES = frozenset(
    ("DRAM", "SRAM", "smartbuffer_SRAM", "smartbuffer_RF", "regfile", "storage", "smartbuffer")
)
COMPUTE_CLASSES = frozenset(("intmac", "fpmac", "mac", "compute", "intadder", "fpadder"))
#: attributes the importer reads (others are reported)
_KNOWN_ATTRS = frozenset(
    (
        "depth",
        "width",
        "datawidth",
        "n_banks",
        "read_bandwidth",
        "write_bandwidth",
        "shared_bandwidth",
        "num_ports",
        "nports",
        "cluster_size",
        "technology",
        "type",
        "multiple_buffering",
        "multiplier_width",
        "adder_width",
        "meshX",
        "meshY",
        "latency",
        "global_cycle_seconds",
    )
)
_NODE_KEYS = frozenset(
    ("name", "class", "subclass", "attributes", "constraints", "spatial", "nodes")
)


def _node_m(text: Any) -> float | None:
    """Metres of a technology attribute ("65nm", "45nm", 45e-9) as nm."""
    if isinstance(text, int | float):
        return float(text) * (1e9 if text < 1 else 1.0)
    m = re.fullmatch(r"\s*([\d.]+)\s*nm\s*", str(text or ""))
    return float(m.group(1)) if m else None


class _Tables:
    """Accelergy's ERT (energy per action, pJ) and ART (area, um^2)."""

    def __init__(self, ert: Any, art: Any) -> None:
        self.energy: dict[str, dict[str, float]] = {}
        self.area: dict[str, float] = {}
        self.cycle_s: float | None = None
        for table in self._rows(ert, "ERT", "tables"):
            acts = {}
            for a in table.get("actions") or []:
                acts[str(a.get("name"))] = float(a.get("energy", 0.0))
                cyc = (a.get("arguments") or {}).get("global_cycle_seconds")
                if isinstance(cyc, int | float) and cyc > 0:
                    self.cycle_s = float(cyc)
            self.energy[self._key(table.get("name"))] = acts
        for row in self._rows(art, "ART", "tables"):
            self.area[self._key(row.get("name"))] = float(row.get("area", 0.0))

    @staticmethod
    def _rows(src: Source | None, top: str, key: str) -> list[dict]:
        if src is None:
            return []
        body = (src.data or {}).get(top) if isinstance(src.data, dict) else None
        rows = (body or {}).get(key) if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise src.error(f"expected an Accelergy {top} with {top}.{key}: [...]")
        return [r for r in rows if isinstance(r, dict)]

    @staticmethod
    def _key(name: Any) -> str:
        """``system_top_level.psum_spad[1..168]`` -> ``psum_spad``."""
        return re.sub(r"\[.*\]$", "", str(name)).split(".")[-1]


def _roles(node: dict, where: str, report: Report) -> tuple[str, ...] | None:
    ds = ((node.get("constraints") or {}).get("dataspace") or {}) if isinstance(node, dict) else {}
    keep = [TIMELOOP_ROLES.get(d, d) for d in ds.get("keep") or []]
    bypass = [TIMELOOP_ROLES.get(d, d) for d in ds.get("bypass") or []]
    if keep:
        report.notes.append(
            f"{where}: keep {sorted(keep)} is a mapping constraint, carried as the roles it may hold"
        )
        return tuple(r for r in ALL_ROLES if r in keep) + tuple(
            k for k in keep if k not in ALL_ROLES
        )
    if bypass:
        return tuple(r for r in ALL_ROLES if r not in bypass)
    return None


def _mapping_constraints(node: dict, where: str, report: Report) -> None:
    cons = node.get("constraints") or {}
    for key in cons:
        if key != "dataspace":
            report.left_out.append(f"{where}.constraints.{key}: a mapping constraint")


class _Reader:
    def __init__(self, src: Source, report: Report, tables: _Tables, clock_hz: float) -> None:
        self.src, self.report, self.tables, self.clock_hz = src, report, tables, clock_hz
        self.drafts: list[Draft] = []
        self.fan = {"x": 1, "y": 1}
        self.units: list[ComputeUnit] = []
        self.copies = 1

    # ------------------------------------------------------------ helpers
    def _attrs(self, node: dict, inherited: dict, where: str) -> dict:
        attrs = node.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise self.src.error(f"{where}.attributes must be a mapping")
        for k in attrs:
            if k not in _KNOWN_ATTRS:
                self.report.left_out.append(f"{where}.attributes.{k}: not modelled by einsim")
        return {**inherited, **attrs}

    def _spatial(self, node: dict, attrs: dict, where: str) -> None:
        sp = node.get("spatial") or {}
        for axis, key in (("x", "meshX"), ("y", "meshY")):
            n = sp.get(key, attrs.get(key) if "spatial" not in node else None)
            if n is not None:
                self.fan[axis] *= positive_int(n, key, where)

    def _energy(self, name: str, kind: str, attrs: dict, word_bits: int, bank_bytes: float):
        acts = self.tables.energy.get(name)
        if acts is not None:
            r = acts.get("read", 0.0)
            w = acts.get("write", acts.get("update", 0.0))
            if "update" in acts and not math.isclose(acts["update"], w):
                self.report.notes.append(
                    f"{name}: update energy {acts['update']:g} pJ differs from write {w:g} pJ; "
                    "einsim charges an update as a write"
                )
            leak = acts.get("leak", 0.0) * 1e-12 * self.clock_hz
            return r, w, leak, True
        node = _node_m(attrs.get("technology")) or 45.0
        dram = dram_kind_of(attrs.get("type"))
        pj = estimate_pj_per_bit(kind, node, bank_bytes, dram) * word_bits
        self.report.notes.append(
            f"{name}: no ERT entry, energy {pj:.4g} pJ per {word_bits}-bit access estimated from "
            f"einsim's tables ({kind}, {node:g} nm)"
        )
        return pj, pj, 0.0, False

    # ------------------------------------------------------------ nodes
    def memory(self, node: dict, attrs: dict, where: str, outermost: bool) -> Memory:
        name = str(node.get("name"))
        cls = str(node.get("class", ""))
        sub = str(node.get("subclass", ""))
        width = positive_int(attrs.get("width", attrs.get("datawidth", 8)), "width", where)
        datawidth = positive_int(attrs.get("datawidth", width), "datawidth", where)
        cluster = positive_int(attrs.get("cluster_size", 1), "cluster_size", where)
        word = width // cluster if width % cluster == 0 else width
        depth = attrs.get("depth")
        if depth is None:
            if not outermost:
                raise self.src.error(f"{where}: depth is required below the outermost level")
            capacity = None
        else:
            capacity = positive_int(depth, "depth", where) * word / 8
        banks = positive_int(attrs.get("n_banks", 1), "n_banks", where)

        def bw(key: str) -> float:
            v = attrs.get(key)
            return math.inf if v is None else float(v) * datawidth / 8

        rbw, wbw = bw("read_bandwidth"), bw("write_bandwidth")
        shared = attrs.get("shared_bandwidth")
        if shared is not None:
            rbw = wbw = float(shared) * datawidth / 8
        kind = (
            "dram"
            if cls == "DRAM"
            else ("regfile" if "RF" in (cls + sub) or "regfile" in (cls + sub) else "sram")
        )
        bank_bytes = (capacity or 0.0) / banks
        r, w, leak, from_ert = self._energy(name, kind, attrs, word, bank_bytes)
        if cluster > 1:
            r, w, leak = r / cluster, w / cluster, leak / cluster
            self.report.notes.append(
                f"{name}: cluster_size {cluster}: one {width}-bit access serves {cluster} "
                f"instances; einsim's word is {word} bits at 1/{cluster} of its energy"
            )
        ports: tuple[Port, ...] = ()
        nports = attrs.get("num_ports", attrs.get("nports"))
        if nports is not None and int(nports) >= 2 and shared is None:
            ports = (Port("read", "read", rbw), Port("write", "write", wbw))
        area = self.tables.area.get(name, 0.0) * 1e-6
        self.report.carried.append(
            f"memory {name}: depth, width, datawidth, banks, bandwidths, dataspaces"
            + (", ERT energies" if from_ert else "")
            + (", ART area" if name in self.tables.area else "")
        )
        return Memory(
            name=name,
            serves=_roles(node, where, self.report),
            capacity_bytes=capacity,
            word_bits=word,
            read_bw_bytes_per_cycle=rbw,
            write_bw_bytes_per_cycle=wbw,
            read_energy_pj_per_word=clean(r),
            write_energy_pj_per_word=clean(w),
            shared_bw=shared is not None,
            banks=banks,
            ports=ports,
            leakage_w=clean(leak),
            area_mm2=clean(area),
            double_buffered=float(attrs.get("multiple_buffering", 1)) >= 2,
            precision=Precision.uniform(datawidth),
        )

    def level(self, name: str, memories: list[Memory]) -> None:
        if self.drafts:
            self.drafts[-1].fanout_x *= self.fan["x"]
            self.drafts[-1].fanout_y *= self.fan["y"]
        elif self.fan["x"] * self.fan["y"] > 1:
            raise self.src.error(f"{name}: a fan-out above the outermost storage level")
        self.copies *= self.fan["x"] * self.fan["y"]
        self.fan = {"x": 1, "y": 1}
        self.drafts.append(Draft(name, memories))

    def compute(self, node: dict, attrs: dict, where: str) -> None:
        name = str(node.get("name"))
        mw = attrs.get("multiplier_width", attrs.get("datawidth", 16))
        aw = attrs.get("adder_width", mw)
        acts = self.tables.energy.get(name)
        if acts is not None and "compute" in acts:
            e = acts["compute"]
            leak = acts.get("leak", 0.0) * 1e-12 * self.clock_hz
        else:
            from hw_models import tables

            node_nm = _node_m(attrs.get("technology")) or 45.0
            e, leak = tables.mac_energy_pj(int(mw), "int", node_nm), 0.0
            self.report.notes.append(
                f"{name}: no ERT entry, MAC energy {e:.4g} pJ from einsim's tables"
            )
        below = self.fan["x"] * self.fan["y"]
        if below > 1 and self.drafts:
            self.drafts[-1].fanout_x *= self.fan["x"]
            self.drafts[-1].fanout_y *= self.fan["y"]
        rows, cols = array_shape(self.drafts)
        pes = math.prod(d.fanout_x * d.fanout_y for d in self.drafts)
        self.fan = {"x": 1, "y": 1}
        area = self.tables.area.get(name, 0.0) * 1e-6 * pes
        self.units.append(
            ComputeUnit(
                name=name,
                kind="array2d" if rows > 1 and cols > 1 else "array1d",
                pes=pes,
                ops_per_cycle={"mac": 1.0},
                energy_pj_per_op={"mac": e},
                rows=rows,
                cols=cols,
                datatype_bits=int(mw),
                area_mm2=clean(area),
                leakage_w=clean(leak * pes),
                precision=Precision(input_bits=int(mw), weight_bits=int(mw), psum_bits=int(aw)),
            )
        )
        self.report.carried.append(
            f"compute {name}: multiplier_width, adder_width, instances"
            + (", ERT energy" if acts else "")
        )

    def walk(self, nodes: list, inherited: dict, path: tuple) -> None:
        for i, node in enumerate(nodes):
            at = (*path, i)
            if not isinstance(node, dict):
                raise self.src.error("a node must be a tagged mapping (!Component, ...)", *at)
            tag = node.get("!")
            where = str(node.get("name") or f"nodes[{i}]")
            self.report.keys(where, node, _NODE_KEYS)
            if tag == "Container":
                inherited = self._attrs(node, inherited, where)
                self._spatial(node, {}, where)
                _mapping_constraints(node, where, self.report)
            elif tag == "Component":
                attrs = self._attrs(node, inherited, where)
                self._spatial(node, {}, where)
                cls = str(node.get("class", ""))
                if cls in COMPUTE_CLASSES:
                    self.compute(node, attrs, where)
                elif cls in STORAGE_CLASSES or "depth" in attrs:
                    _mapping_constraints(node, where, self.report)
                    m = self.memory(node, attrs, where, outermost=not self.drafts)
                    self.level(m.name, [m])
                else:
                    raise self.src.error(f"{where}: component class {cls!r} is not known", *at)
            elif tag == "Parallel":
                self.parallel(node, inherited, "!Parallel", at)
            else:
                raise self.src.error(f"{where}: unknown node tag !{tag}", *at)

    def parallel(self, node: dict, inherited: dict, where: str, at: tuple) -> None:
        mems = []
        passing: list[str] = []
        for j, sub in enumerate(node.get("nodes") or []):
            if not isinstance(sub, dict):
                raise self.src.error("a node must be a tagged mapping", *at, "nodes", j)
            if sub.get("!") == "Nothing":
                keep = ((sub.get("constraints") or {}).get("dataspace") or {}).get("keep") or []
                passing += [str(k) for k in keep]
                continue
            name = str(sub.get("name") or f"{where}.nodes[{j}]")
            self.report.keys(name, sub, _NODE_KEYS)
            attrs = self._attrs(sub, inherited, name)
            _mapping_constraints(sub, name, self.report)
            mems.append(self.memory(sub, attrs, name, outermost=not self.drafts))
        if not mems:
            raise self.src.error(f"{where}: a !Parallel without storage", *at)
        name = "+".join(m.name for m in mems)
        self.level(name, mems)
        if passing:
            self.report.notes.append(
                f"{name}: !Nothing for {', '.join(passing)}: they bypass this level"
            )


def _table(path: str | Path | None) -> Source | None:
    return None if path is None else read(path)


def convert(
    src: Source,
    report: Report,
    *,
    name: str | None = None,
    clock_hz: float | None = None,
    ert: str | Path | None = None,
    art: str | Path | None = None,
    **_: Any,
) -> tuple[Any, Report]:
    data = src.data
    arch = data.get("architecture") if isinstance(data, dict) else None
    if not isinstance(arch, dict) or not isinstance(arch.get("nodes"), list):
        raise src.error("a Timeloop v0.4 file has architecture: {version: 0.4, nodes: [...]}")
    if str(arch.get("version", "0.4")) != "0.4":
        raise src.error(f"only Timeloop v0.4 files are read, got version {arch.get('version')}")
    tables = _Tables(_table(ert), _table(art))
    clock = clock_hz or (float(f"{1.0 / tables.cycle_s:.12g}") if tables.cycle_s else 1e9)
    reader = _Reader(src, report, tables, clock)
    try:
        reader.walk(arch["nodes"], {}, ("architecture", "nodes"))
    except ImportFormatError:
        raise
    if not reader.units:
        raise src.error("no compute component (intmac, mac, ...) in the architecture")
    top = next((n.get("name") for n in arch["nodes"] if isinstance(n, dict)), None)
    report.notes.append(
        f"clock {clock:g} Hz ({'given' if clock_hz else 'from the ERT' if tables.cycle_s else 'Timeloop default'})"
    )
    if ert is None:
        report.notes.append("no ERT given: energies estimated from einsim's tables")
    out = assemble(
        name or str(top or ""),
        reader.drafts,
        reader.units,
        clock_hz=clock,
        sources=[source_line(src.file, "timeloop")]
        + ([f"energies: Accelergy ERT {Path(ert).name}"] if ert else [])
        + ([f"areas: Accelergy ART {Path(art).name}"] if art else []),
    )
    return out, report

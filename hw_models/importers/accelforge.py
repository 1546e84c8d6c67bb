"""AccelForge architecture YAML -> einsim architecture tree.

AccelForge's file (``arch: {nodes: [...]}``; its ``examples/arches/``) lists
``!Memory``, ``!Container`` and ``!Compute`` nodes top-down. Figures are
expressions (:mod:`.expr` evaluates them safely) in SI units: sizes in
bits, energies in J per action, areas in m^2, leakage in W, throughputs in
actions per second; an action moves ``bits_per_action`` bits (default 1).

How it is read:

* **Clock.** The throughput of the innermost ``!Compute``'s ``compute``
  action (one operation per instance per cycle), else 1 GHz.
* **Memories.** ``size`` -> capacity; each action's energy per bit times an
  8-bit word (or ``bits_per_action`` bits) -> energy per word; throughput x
  bits per action / clock -> bytes per cycle (``inf``: no limit);
  ``total_latency: max(...)`` = separate read and write ports, ``sum(...)``
  (the default) = one shared budget; ``leak_power``, ``area`` converted.
* **Tensors.** ``tensors: {keep, may_keep}`` set expressions over
  ``All``, ``Nothing``, ``Intermediates``, ``input``, ``weight``,
  ``output``, ``Inputs``, ``Outputs`` and ``NODE.tensors`` (with ``~``,
  ``|``, ``&``, ``-``) -> the roles the level may hold (everything that is
  not an intermediate counts as all roles). A forced ``keep`` is a mapping
  constraint, carried as "may hold".
* **Fan-out.** ``spatial: [{name, fanout, reuse / may_reuse}]`` on a node
  replicates it and everything below: the fan-out of the level above, one
  axis per entry (x, then y); ``may_reuse`` (or ``reuse``) -> the tensors
  that level's network shares along that axis (``Nothing``: none).
* **Compute.** A ``!Compute`` between memories is fed by the memory above
  it (``fed_by``), with as many units as that memory has copies; ``enabled:
  len(All) == 3`` -> MACs (two operands and an output), ``len(All) == 2``
  -> one-operand operations (add, max, exp, div); otherwise MAC, add, max.
* **Precision.** AccelForge's workload gives bits per value; ``bits=``
  (default 8) stands for it where the architecture refers to it
  (``weight.bits_per_value``).
* **Left out** (by name): ``min_usage``, ``loop_bounds``, ``tile_shape``
  and other mapping constraints; ``!Toll`` / ``!Network`` nodes; fields the
  importer does not know.
"""

from __future__ import annotations

import ast
import math
import re
from typing import Any

from hw_models.arch import ComputeUnit, Memory, Port, Precision
from hw_models.importers import expr
from hw_models.importers.common import (
    ALL_ROLES,
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
from hw_models.importers.source import Source

_SUM_CALLS = "sum(a.n_calls for a in actions)"
_MAX_LAT = "max(a.n_calls / a.throughput for a in actions)"
_SUM_LAT = "sum(a.n_calls / a.throughput for a in actions)"
UNIVERSE = frozenset((*ALL_ROLES, "intermediate"))
_BASE_SETS = {
    "All": UNIVERSE,
    "Nothing": frozenset(),
    "Intermediates": frozenset({"intermediate"}),
    "Inputs": frozenset({"input", "weight"}),
    "Outputs": frozenset({"output"}),
    "input": frozenset({"input"}),
    "weight": frozenset({"weight"}),
    "output": frozenset({"output"}),
}
_MEMORY_KEYS = frozenset(
    (
        "name",
        "size",
        "actions",
        "tensors",
        "spatial",
        "leak_power",
        "area",
        "total_latency",
        "component_class",
        "extra_attributes_for_component_model",
        "bits_per_action",
        "bits_per_value",
        "enabled",
    )
)
_COMPUTE_KEYS = frozenset(
    (
        "name",
        "actions",
        "enabled",
        "leak_power",
        "area",
        "total_latency",
        "component_class",
        "extra_attributes_for_component_model",
        "spatial",
    )
)
_SPATIAL_KEYS = frozenset(("name", "fanout", "reuse", "may_reuse", "min_usage", "loop_bounds"))


class _Sets:
    """Evaluates AccelForge's tensor-set expressions over einsim's roles."""

    def __init__(self) -> None:
        self.named: dict[str, frozenset[str]] = {}

    def __call__(self, text: Any) -> frozenset[str]:
        if text is None:
            return UNIVERSE
        try:
            return self._eval(ast.parse(str(text).strip(), mode="eval").body)
        except SyntaxError:
            raise expr.ExprError(f"not a tensor set: {text!r}") from None

    def _eval(self, node: ast.AST) -> frozenset[str]:
        if isinstance(node, ast.Name) and node.id in _BASE_SETS:
            return _BASE_SETS[node.id]
        if isinstance(node, ast.Name) and node.id in self.named:
            return self.named[node.id]
        if isinstance(node, ast.Attribute) and node.attr == "tensors":
            return self._eval(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
            return UNIVERSE - self._eval(node.operand)
        if isinstance(node, ast.BinOp):
            a, b = self._eval(node.left), self._eval(node.right)
            if isinstance(node.op, ast.BitOr):
                return a | b
            if isinstance(node.op, ast.BitAnd):
                return a & b
            if isinstance(node.op, ast.Sub):
                return a - b
        raise expr.ExprError(f"unsupported tensor set: {ast.unparse(node)}")


def _roles(s: frozenset[str]) -> tuple[str, ...] | None:
    """einsim's ``holds``/``share`` of a set: None = every role."""
    if set(ALL_ROLES) <= s:
        return None
    return tuple(r for r in ALL_ROLES if r in s)


class _Reader:
    def __init__(self, src: Source, report: Report, bits: int, clock_hz: float, node_nm: float):
        self.src, self.report, self.bits, self.clock, self.node_nm = (
            src,
            report,
            bits,
            clock_hz,
            node_nm,
        )
        self.sets = _Sets()
        self.drafts: list[Draft] = []
        self.pending: list[tuple[int, tuple[str, ...] | None]] = []
        self.units: list[ComputeUnit] = []
        self.copies = 1
        self.names = {
            "inf": math.inf,
            **{r: expr.Obj(bits_per_value=bits) for r in ALL_ROLES},
        }

    def num(self, value: Any, where: str) -> float:
        try:
            v = expr.evaluate(value, self.names)
        except expr.ExprError as err:
            raise self.src.error(f"{where}: {err}") from None
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.src.error(f"{where}: expected a number, got {v!r}")
        return float(v)

    # ---------------------------------------------------------- spatial
    def spatial(self, node: dict, where: str) -> None:
        for i, sp in enumerate(node.get("spatial") or []):
            at = f"{where}.spatial[{i}]"
            if not isinstance(sp, dict):
                raise self.src.error(f"{at} must be a mapping")
            self.report.keys(at, sp, _SPATIAL_KEYS)
            fan = positive_int(self.num(sp.get("fanout", 1), f"{at}.fanout"), "fanout", at)
            share_text = sp.get("may_reuse", sp.get("reuse"))
            try:
                share = None if share_text is None else _roles(self.sets(share_text))
            except expr.ExprError as err:
                raise self.src.error(f"{at}: {err}") from None
            for key in ("min_usage", "loop_bounds"):
                if sp.get(key) not in (None, 0, 0.0, []):
                    self.report.left_out.append(f"{at}.{key}: a mapping constraint")
            if "reuse" in sp and "may_reuse" not in sp:
                self.report.notes.append(
                    f"{at}: reuse {sp['reuse']} (a constraint on spatial loops) carried as "
                    "what the network shares"
                )
            self.pending.append((fan, share))

    def flush(self, name: str) -> None:
        """Give the pending fan-outs to the level above ``name``."""
        if not self.pending:
            return
        if not self.drafts:
            raise self.src.error(f"{name}: a fan-out above the outermost memory")
        d = self.drafts[-1]
        for fan, share in self.pending:
            if d.fanout_x == 1 and d.share_x is None:
                d.fanout_x, d.share_x = fan, share
            else:
                if d.fanout_y > 1:
                    self.report.notes.append(f"{d.name}: more than two fan-out axes, folded into y")
                d.fanout_y *= fan
                d.share_y = (
                    share
                    if d.share_y is None
                    else tuple(r for r in d.share_y if share is None or r in share)
                )
            self.copies *= fan
        self.pending = []

    # ---------------------------------------------------------- actions
    def actions(self, node: dict, where: str) -> dict[str, dict]:
        out = {}
        for i, a in enumerate(node.get("actions") or []):
            if not isinstance(a, dict) or "name" not in a:
                raise self.src.error(f"{where}.actions[{i}] must be a mapping with a name")
            out[str(a["name"])] = a
        return out

    def throughput(self, node: dict, acts: dict, name: str, where: str) -> float | None:
        """Actions per second of action ``name`` (None: not given)."""
        a = acts.get(name) or {}
        if a.get("throughput") is not None:
            return self.num(a["throughput"], f"{where}.actions.{name}.throughput")
        lat = node.get("total_latency")
        if isinstance(lat, str) and _SUM_CALLS in lat:
            per = self.num(lat.replace(_SUM_CALLS, "1"), f"{where}.total_latency")
            return math.inf if per <= 0 else 1.0 / per
        return None

    # ---------------------------------------------------------- nodes
    def memory(self, node: dict, where: str) -> None:
        name = str(node.get("name"))
        self.report.keys(where, node, _MEMORY_KEYS)
        self.spatial(node, where)
        self.flush(name)
        size_bits = self.num(node.get("size", math.inf), f"{where}.size")
        capacity = None if math.isinf(size_bits) else size_bits / 8
        acts = self.actions(node, where)
        bpa_default = node.get("bits_per_action")
        word = 8
        energies, bws = {}, {}
        estimated = None
        for act in ("read", "write"):
            a = acts.get(act) or {}
            bpa = self.num(
                a.get("bits_per_action", bpa_default or 1), f"{where}.{act}.bits_per_action"
            )
            if bpa > 1:
                word = int(bpa)
            if a.get("energy") is not None:
                pj_bit = self.num(a["energy"], f"{where}.actions.{act}.energy") * 1e12 / bpa
            else:
                estimated = self._estimate(node, capacity) if estimated is None else estimated
                pj_bit = estimated
            energies[act] = pj_bit
            thr = self.throughput(node, acts, act, where)
            bws[act] = math.inf if thr is None or math.isinf(thr) else thr * bpa / 8 / self.clock
        lat = node.get("total_latency")
        if lat is None or (isinstance(lat, str) and (_SUM_LAT in lat or _SUM_CALLS in lat)):
            shared = True
        elif isinstance(lat, str) and _MAX_LAT in lat:
            shared = False
        else:
            shared = True
            self.report.left_out.append(
                f"{where}.total_latency: {lat!r} is not a pattern the importer knows "
                "(read and write taken to share one budget)"
            )
        keep = node.get("tensors") or {}
        try:
            kept = self.sets(keep.get("keep")) if "keep" in keep else frozenset()
            may = (
                self.sets(keep.get("may_keep"))
                if "may_keep" in keep
                else (UNIVERSE if "keep" not in keep else frozenset())
            )
        except expr.ExprError as err:
            raise self.src.error(f"{where}.tensors: {err}") from None
        self.sets.named[name] = kept
        if "keep" in keep:
            self.report.notes.append(
                f"{name}: keep {keep['keep']} is a mapping constraint, carried as the roles it may hold"
            )
        leak = self.num(node.get("leak_power", 0), f"{where}.leak_power")
        area = self.num(node.get("area", 0), f"{where}.area") * 1e6
        mem = Memory(
            name=name,
            serves=_roles(kept | may),
            capacity_bytes=capacity,
            word_bits=word,
            read_bw_bytes_per_cycle=clean(bws["read"]),
            write_bw_bytes_per_cycle=clean(bws["write"]),
            read_energy_pj_per_word=clean(energies["read"] * word),
            write_energy_pj_per_word=clean(energies["write"] * word),
            shared_bw=shared,
            ports=()
            if shared
            else (
                Port("read", "read", clean(bws["read"])),
                Port("write", "write", clean(bws["write"])),
            ),
            leakage_w=leak,
            area_mm2=clean(area),
            double_buffered=False,
            precision=self.precision(node.get("bits_per_value"), f"{where}.bits_per_value"),
        )
        self.report.carried.append(
            f"memory {name}: size, read/write energy and throughput, tensors, leak_power, area"
            + (" (energies estimated: none given)" if estimated is not None else "")
        )
        self.drafts.append(Draft(name, [mem]))

    def precision(self, bpv: Any, where: str) -> Precision | None:
        """A memory's ``bits_per_value: {TENSOR_SET: bits}`` as a Precision."""
        if not bpv:
            return None
        if not isinstance(bpv, dict):
            raise self.src.error(f"{where} must be a mapping of tensor set to bits")
        bits: dict[str, int] = {}
        for key, value in bpv.items():
            try:
                roles = self.sets(key)
            except expr.ExprError as err:
                raise self.src.error(f"{where}: {err}") from None
            n = positive_int(self.num(value, f"{where}.{key}"), "bits", where)
            for r in roles & set(ALL_ROLES):
                bits[r] = n
        out = bits.get("output")
        return Precision(bits.get("input"), bits.get("weight"), out, out)

    def _estimate(self, node: dict, capacity: float | None) -> float:
        cls = str(node.get("component_class") or "").lower()
        kind = (
            "dram"
            if "dram" in cls or "ddr" in cls or "hbm" in cls
            else ("regfile" if "reg" in cls or "rf" in cls else "sram")
        )
        extra = node.get("extra_attributes_for_component_model") or {}
        banks = float(extra.get("n_banks", 1)) if isinstance(extra, dict) else 1.0
        pj = estimate_pj_per_bit(
            kind, self.node_nm, (capacity or 0) / max(banks, 1), dram_kind_of(cls)
        )
        self.report.notes.append(
            f"{node.get('name')}: {node.get('component_class')} has no energies in the file; "
            f"{pj:.4g} pJ/bit from einsim's tables ({kind}, {self.node_nm:g} nm)"
        )
        return pj

    def compute(self, node: dict, where: str, last: bool) -> None:
        name = str(node.get("name"))
        self.report.keys(where, node, _COMPUTE_KEYS)
        self.spatial(node, where)
        acts = self.actions(node, where)
        a = acts.get("compute") or {}
        if a.get("energy") is not None:
            e = self.num(a["energy"], f"{where}.actions.compute.energy") * 1e12
        else:
            from hw_models import tables

            extra = node.get("extra_attributes_for_component_model") or {}
            mw = (
                int(extra.get("multiplier_width", self.bits))
                if isinstance(extra, dict)
                else self.bits
            )
            e = tables.mac_energy_pj(mw, "int", self.node_nm)
            self.report.notes.append(
                f"{name}: no compute energy in the file; {e:.4g} pJ from einsim's tables"
            )
        thr = self.throughput(node, acts, "compute", where)
        rate = 1.0 if thr is None or math.isinf(thr) else thr / self.clock
        enabled = str(node.get("enabled", "")).replace(" ", "")
        if enabled == "len(All)==3":
            classes = ("mac",)
        elif enabled == "len(All)==2":
            classes = ("add", "max", "exp", "div")
        else:
            classes = ("mac", "add", "max")
            if "enabled" in node:
                self.report.left_out.append(f"{where}.enabled: {node['enabled']!r} not interpreted")
        if "enabled" in node and classes != ("mac", "add", "max"):
            self.report.notes.append(
                f"{name}: enabled {node['enabled']} -> runs {', '.join(classes)}"
            )
        pending = math.prod(f for f, _ in self.pending)
        if last:
            self.flush(name)
            fed_by = ""
        else:
            fed_by = self.drafts[-1].name if self.drafts else ""
        pes = self.copies * (1 if last else pending)
        rows, cols = array_shape(self.drafts) if last else (1, pes)
        extra = node.get("extra_attributes_for_component_model") or {}
        precision = None
        if isinstance(extra, dict) and "multiplier_width" in extra:
            mw, aw = (
                int(extra["multiplier_width"]),
                int(extra.get("adder_width", extra["multiplier_width"])),
            )
            precision = Precision(input_bits=mw, weight_bits=mw, psum_bits=aw)
        self.units.append(
            ComputeUnit(
                name=name,
                kind="array2d" if last and rows > 1 and cols > 1 else "array1d",
                pes=pes,
                ops_per_cycle=dict.fromkeys(classes, clean(rate)),
                energy_pj_per_op=dict.fromkeys(classes, clean(e)),
                rows=rows,
                cols=cols,
                datatype_bits=self.bits,
                area_mm2=clean(self.num(node.get("area", 0), f"{where}.area") * 1e6 * pes),
                leakage_w=self.num(node.get("leak_power", 0), f"{where}.leak_power") * pes,
                fed_by=fed_by,
                precision=precision,
            )
        )
        self.report.carried.append(f"compute {name}: energy, throughput, enabled, area, leak_power")

    def walk(self, nodes: list) -> None:
        computes = [
            i for i, n in enumerate(nodes) if isinstance(n, dict) and n.get("!") == "Compute"
        ]
        for i, node in enumerate(nodes):
            if not isinstance(node, dict):
                raise self.src.error(
                    f"arch.nodes[{i}] must be a tagged mapping", "arch", "nodes", i
                )
            tag = node.get("!")
            where = str(node.get("name") or f"nodes[{i}]")
            if tag == "Memory":
                self.memory(node, where)
            elif tag == "Container":
                self.report.keys(where, node, {"name", "spatial"})
                self.spatial(node, where)
            elif tag == "Compute":
                self.compute(node, where, last=i == computes[-1])
            elif tag in ("Toll", "Network"):
                self.report.left_out.append(f"{where}: !{tag} nodes are not modelled by einsim")
            else:
                raise self.src.error(
                    f"{where}: unknown node !{tag} (expected !Memory, !Container, !Compute)",
                    "arch",
                    "nodes",
                    i,
                )


def _clock(nodes: list, names: dict) -> float | None:
    for node in reversed(nodes):
        if isinstance(node, dict) and node.get("!") == "Compute":
            for a in node.get("actions") or []:
                if (
                    isinstance(a, dict)
                    and a.get("name") == "compute"
                    and a.get("throughput") is not None
                ):
                    return float(expr.evaluate(a["throughput"], names))
            lat = node.get("total_latency")
            if isinstance(lat, str) and _SUM_CALLS in lat:
                return 1.0 / float(expr.evaluate(lat.replace(_SUM_CALLS, "1"), names))
            return None
    return None


def convert(
    src: Source,
    report: Report,
    *,
    name: str | None = None,
    clock_hz: float | None = None,
    bits: int = 8,
    **_: Any,
) -> tuple[Any, Report]:
    data = src.data
    arch = data.get("arch") if isinstance(data, dict) else None
    if not isinstance(arch, dict) or not isinstance(arch.get("nodes"), list):
        raise src.error("an AccelForge architecture file has arch: {nodes: [...]}")
    text = str(data)
    if re.search(r"\{\{|\{%", text):
        raise src.error("the file uses Jinja templates; render it with AccelForge first")
    report.keys("arch", arch, {"nodes", "extra_attributes_for_all_component_models", "variables"})
    extra = arch.get("extra_attributes_for_all_component_models") or {}
    node_m = extra.get("tech_node") if isinstance(extra, dict) else None
    node_nm = float(expr.evaluate(node_m)) * 1e9 if node_m is not None else 45.0
    try:
        clock = clock_hz or _clock(arch["nodes"], {"inf": math.inf})
    except (expr.ExprError, ZeroDivisionError, TypeError, ValueError):
        clock = None
    if not clock or math.isinf(clock):
        clock = clock_hz or 1e9
        report.notes.append("no compute throughput in the file: clock 1 GHz")
    else:
        report.notes.append(f"clock {clock:g} Hz (one operation per compute unit per cycle)")
    report.notes.append(f"bits per value {bits} where the architecture refers to it")
    reader = _Reader(src, report, bits, clock, node_nm)
    reader.walk(arch["nodes"])
    if not reader.units:
        raise src.error("no !Compute node in the architecture")
    # the innermost compute (the main array) first: einsim's default unit
    units = [reader.units[-1], *reader.units[:-1]]
    out = assemble(
        name or "",
        reader.drafts,
        units,
        clock_hz=clock,
        sources=[source_line(src.file, "accelforge")],
    )
    return out, report

"""``einsim hw``: list, show, check, derive and import hardware models."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from experiments.commands.hw_import import import_cmd


def _derived(arch: Any) -> dict[str, Any]:
    """Figures computed from the tree (units in the key names)."""
    out: dict[str, Any] = {
        "area_mm2": arch.area_mm2,
        "leakage_w": arch.leakage_w,
        "peak_ops_per_s": {
            cu.name: {op: cu.peak_ops_per_s(op, arch.clock_hz) for op in cu.ops_per_cycle}
            for cu in arch.compute
        },
        "capacity_total_bytes": {
            lv.name: (None if lv.capacity_bytes is None else lv.capacity_bytes * lv.instances)
            for lv in arch.levels
        },
        "bandwidth_bytes_per_s": {
            lv.name: lv.read_bw_bytes_per_cycle * lv.instances * arch.clock_hz for lv in arch.levels
        },
    }
    if arch.family == "fpga":
        from hw_models.fpga import estimate_resources

        res = estimate_resources(arch.params)
        out["fpga_resources"] = {
            "used": res.used,
            "available": res.available,
            "utilization": res.utilization,
            "achievable_clock_hz": res.achievable_clock_hz,
            "initiation_interval_cycles": res.initiation_interval_cycles,
            "notes": list(res.notes),
        }
    return out


def _fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return "unbounded"
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.4g} {prefix}{unit}"
    return f"{x:.4g} {unit}".rstrip()


@click.group(name="hw")
def command() -> None:
    """List, show, check and derive hardware models (presets and files)."""


@command.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(as_json: bool) -> None:
    """List the presets."""
    import hw_models

    rows = []
    for name in hw_models.list_presets():
        a = hw_models.load(name)
        main = a.compute[0]
        rows.append(
            {
                "name": name,
                "family": a.family,
                "clock_hz": a.clock_hz,
                "peak_macs_per_s": main.peak_ops_per_s("mac", a.clock_hz),
                "area_mm2": a.area_mm2,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'name':<15} {'family':<8} {'clock':>10} {'peak MAC/s':>12} {'area mm2':>9}")
    for r in rows:
        click.echo(
            f"{r['name']:<15} {r['family']:<8} {_fmt(r['clock_hz'], 'Hz'):>10} "
            f"{_fmt(r['peak_macs_per_s']):>12} {r['area_mm2']:>9.1f}"
        )


@command.command(name="show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Whole tree as JSON (units in key names).")
def show_cmd(name: str, as_json: bool) -> None:
    """Show a preset or a hardware file."""
    import hw_models

    arch = hw_models.load(name)
    if as_json:
        data = hw_models.to_dict(arch)
        data["derived"] = _derived(arch)
        click.echo(json.dumps(data, indent=2))
        return
    d = _derived(arch)
    click.echo(f"{arch.name}  (family {arch.family}, clock {_fmt(arch.clock_hz, 'Hz')})")
    click.echo(f"  area {arch.area_mm2:.2f} mm2, static power {arch.leakage_w:.3g} W")
    click.echo("  levels (outermost first):")
    for lv in arch.levels:
        fan = f", fan-out {lv.fanout_x}x{lv.fanout_y}" if lv.fanout > 1 else ""
        inst = f" x{lv.instances}" if lv.instances > 1 else ""
        click.echo(
            f"    {lv.name:<13} {_fmt(lv.capacity_bytes, 'B'):>10}{inst:<7} "
            f"{_fmt(d['bandwidth_bytes_per_s'][lv.name], 'B/s'):>11} "
            f"read {lv.read_energy_pj_per_word:.3g} pJ/{lv.word_bits}b{fan}"
        )
        for m in lv.memories if len(lv.memories) > 1 else ():
            click.echo(
                f"      {m.name:<11} {_fmt(m.capacity_bytes, 'B'):>10} serves "
                f"{', '.join(m.serves or ('all',))}, read {m.read_energy_pj_per_word:.3g} pJ/{m.word_bits}b"
            )
    click.echo("  compute:")
    for cu in arch.compute:
        flow = f" {cu.dataflow}" if cu.dataflow else ""
        click.echo(
            f"    {cu.name:<13} {cu.kind}{flow} {cu.pes} PEs, "
            f"{_fmt(cu.peak_ops_per_s('mac', arch.clock_hz), 'MAC/s')}, "
            f"MAC {cu.energy_pj_per_op.get('mac', 0):.3g} pJ, area {cu.area_mm2:.2f} mm2"
        )
    if "fpga_resources" in d:
        r = d["fpga_resources"]
        parts = ", ".join(f"{k} {r['used'][k]:.0f}/{r['available'][k]:.0f}" for k in r["used"])
        click.echo(f"  resources: {parts}")
        for note in r["notes"]:
            click.echo(f"  note: {note}")


@command.command(name="check")
@click.argument("file", type=click.Path(dir_okay=False))
def check_cmd(file: str) -> None:
    """Validate a hardware file (YAML or JSON); exit 2 with one message if bad."""
    from hw_models.registry import load_file

    arch = load_file(file)
    click.echo(
        f"ok: {arch.name} ({arch.family}), {len(arch.levels)} levels, "
        f"{len(arch.compute)} compute units, area {arch.area_mm2:.2f} mm2"
    )


def _parse_set(values: tuple[str, ...]) -> dict[str, Any]:
    from hw_models.yamlio import parse_yaml

    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        value, _ = parse_yaml(raw, f"--set {key.strip()}")
        out[key.strip()] = value
    return out


@command.command(name="derive")
@click.argument("name")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Parameter to change (repeatable; dotted keys for mappings).",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write here (.yaml/.json); default stdout.",
)
@click.option("--name", "new_name", default=None, help="Name of the variant.")
@click.option("--tree", is_flag=True, help="Write the whole tree instead of family + params.")
def derive_cmd(
    name: str, sets: tuple[str, ...], out: str | None, new_name: str | None, tree: bool
) -> None:
    """Write a variant of NAME with some parameters changed."""
    import dataclasses

    import hw_models
    from hw_models.yamlio import dump_yaml

    arch = hw_models.derive(name, _parse_set(sets))
    if new_name:
        arch = dataclasses.replace(arch, name=new_name)
    if out:
        hw_models.save(arch, out, tree=tree)
        click.echo(f"wrote {out}", err=True)
        return
    data = hw_models.to_dict(arch) if tree else hw_models.to_spec(arch)
    sys.stdout.write(dump_yaml(data))


command.add_command(import_cmd)

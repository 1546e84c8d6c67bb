"""``einsim hw import``: bring a ZigZag, Timeloop or AccelForge architecture in."""

from __future__ import annotations

import sys

import click

from hw_models.importers import FORMATS


def _precision(text: str | None):
    """``input=8,weight=8,psum=16,output=8`` -> a Precision (None if not given)."""
    if text is None:
        return None
    from hw_models.arch import Precision
    from hw_models.errors import HardwareError

    bits: dict[str, int] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if (
            not sep
            or key not in ("input", "weight", "psum", "output")
            or not value.strip().isdigit()
        ):
            raise HardwareError(
                f"--precision {text!r}: expected ROLE=BITS,... with ROLE one of input, weight, "
                f"psum, output (for example input=8,weight=8,psum=16,output=8)"
            )
        bits[f"{key}_bits"] = int(value)
    return Precision(**bits)


@click.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--from", "tool", type=click.Choice(FORMATS), required=True, help="The file's tool.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the einsim tree here (.yaml/.json); default stdout.",
)
@click.option("--name", default=None, help="Name of the architecture (default: the file's).")
@click.option("--clock-hz", type=float, default=None, help="Clock, where the file has none.")
@click.option(
    "--ert",
    type=click.Path(dir_okay=False),
    default=None,
    help="Timeloop: Accelergy ERT (energies).",
)
@click.option(
    "--art", type=click.Path(dir_okay=False), default=None, help="Timeloop: Accelergy ART (areas)."
)
@click.option(
    "--precision",
    default=None,
    metavar="ROLE=BITS,...",
    help="ZigZag: operand bits (default ZigZag's: input=8,weight=8,psum=16,output=8).",
)
@click.option("--bits", type=int, default=8, show_default=True, help="AccelForge: bits per value.")
def import_cmd(
    file: str,
    tool: str,
    out: str | None,
    name: str | None,
    clock_hz: float | None,
    ert: str | None,
    art: str | None,
    precision: str | None,
    bits: int,
) -> None:
    """Import FILE, a ZigZag 3.9.1 hardware YAML, a Timeloop/Accelergy v0.4
    architecture YAML or an AccelForge architecture YAML, as an einsim tree.
    Prints what could not be carried over, by name."""
    from hw_models.importers import import_file, write
    from hw_models.serialize import arch_to_dict
    from hw_models.yamlio import dump_yaml

    opts = {"name": name, "clock_hz": clock_hz, "precision": _precision(precision)}
    opts |= {"ert": ert, "art": art} if tool == "timeloop" else {}
    opts |= {"bits": bits} if tool == "accelforge" else {}
    res = import_file(file, tool, **opts)
    a = res.arch
    mems = sum(len(lv.memories) for lv in a.levels)
    click.echo(
        f"imported {a.name}: {len(a.levels)} levels, {mems} memories, "
        f"{len(a.compute)} compute units ({', '.join(cu.name for cu in a.compute)})",
        err=True,
    )
    click.echo("left out: " + ("nothing" if not res.left_out else ""), err=True)
    for item in res.left_out:
        click.echo(f"  - {item}", err=True)
    for note in res.notes:
        click.echo(f"  note: {note}", err=True)
    if out:
        write(res, out)
        click.echo(f"wrote {out}", err=True)
    else:
        sys.stdout.write(dump_yaml(arch_to_dict(a)))

"""``einsim experiment fusemax --out DIR``: reproduce the FuseMax study."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="fusemax")
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output directory."
)
@click.option(
    "--models",
    default="bert,trxl,t5,xlm",
    show_default=True,
    help="Comma-separated models (FuseMax's four).",
)
@click.option(
    "--max-seq",
    default=1 << 20,
    show_default=True,
    type=int,
    help="Longest sequence length to run (1K..1M in powers of 4).",
)
def command(out_dir: str, models: str, max_seq: int) -> None:
    """Attention and transformer layers on unfused, FLAT and FuseMax designs.

    Writes DIR/fusemax.csv (model, seq, design, scope, latency_s, energy_pj,
    dram_bytes, util_2d, util_1d) and DIR/fusemax.html (speedup and energy
    relative to FLAT, next to the published means).
    """
    from tqdm import tqdm

    from experiments import fusemax
    from workloads.errors import EinsimError

    chosen = tuple(m.strip().lower() for m in models.split(",") if m.strip())
    unknown = [m for m in chosen if m not in fusemax.MODELS]
    if unknown:
        raise EinsimError(
            f"--models: unknown model(s) {unknown}; expected some of {', '.join(fusemax.MODELS)}"
        )
    seqs = tuple(s for s in fusemax.SEQ_LENGTHS if s <= max_seq)
    if not seqs:
        raise EinsimError(
            f"--max-seq {max_seq} is below the shortest length {fusemax.SEQ_LENGTHS[0]}"
        )
    out = Path(out_dir)
    with tqdm(total=len(chosen) * len(seqs), desc="fusemax", unit="point") as bar:
        rows = fusemax.run(out, models=chosen, seqs=seqs, progress=bar.update)
    fusemax.write_html(rows, out / "fusemax.html")
    click.echo(f"wrote {out / 'fusemax.csv'} and {out / 'fusemax.html'}")
    for (scope, what), mean in sorted(fusemax.summary(rows).items()):
        pub = fusemax.PUBLISHED[(scope, what)]
        click.echo(
            f"{scope:9s} {what:7s} einsim mean {mean:6.3f}   published {pub:5.2f}   "
            f"({100 * (mean - pub) / pub:+.1f}%)"
        )

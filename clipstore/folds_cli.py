"""`clipstore folds STORE`: re-choose a built store's fold scheme without rebuilding."""
from __future__ import annotations

import json
import os

import click

from .errors import InputError


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("store")
@click.option("--scheme", type=click.Choice(["chromosomes", "bed", "blocks"]), required=True,
              help="chromosomes: a chrom,fold CSV (default CLIPNET's map); bed: regions → fold; "
                   "blocks: contiguous blocks dealt to folds (works inside one chromosome).")
@click.option("--map", "fold_map", default=None, type=click.Path(dir_okay=False),
              help="chromosomes: CSV chrom,fold (default: CLIPNET's map).")
@click.option("--bed", default=None, type=click.Path(dir_okay=False),
              help="bed: BED of regions with the fold (0-9) in column 4.")
@click.option("--block-size", type=int, default=1_000_000, show_default=True,
              help="blocks: block length in bp.")
@click.option("--seed", type=int, default=0, show_default=True, help="blocks: shuffling seed.")
@click.option("--assign", type=click.Choice(["shuffled", "hashed"]), default="shuffled",
              show_default=True,
              help="blocks: shuffled round-robin (every fold gets a block once there are 10) "
                   "or a hash of seed, contig and block.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def folds(store, scheme, fold_map, bed, block_size, seed, assign, as_json):
    """Re-choose STORE's folds (fold 0 = test; replicate k validates on fold k).

    Rewrites only the `fold` coordinate and the scheme recorded in the store's attributes; a
    crash midway leaves a store readers refuse until this command is rerun. Loci whose stored
    windows share bases always share a fold, so held-out windows never overlap training ones.
    """
    from .refold import refold
    if scheme == "bed" and not bed:
        raise InputError("--scheme bed needs --bed REGIONS.bed (chrom, start, end, fold)")
    spec = {"chromosomes": {"scheme": "chromosomes",
                            "map": os.path.abspath(fold_map) if fold_map else None},
            "bed": {"scheme": "bed", "path": os.path.abspath(bed) if bed else None},
            "blocks": {"scheme": "blocks", "block_size": block_size, "seed": seed,
                       "assign": assign}}[scheme]
    s = refold(store, spec)
    if as_json:
        click.echo(json.dumps(s, indent=2))
        return
    click.echo(f"folds        {s['scheme']}")
    click.echo("loci         " + "  ".join(f"{f}:{n}" for f, n in s["folds"].items()))
    left = {k: v for k, v in s["counts"].items() if v}
    if left:
        click.echo("no fold      " + ", ".join(f"{k} {v}" for k, v in left.items()))

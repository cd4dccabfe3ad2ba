"""`clipstore build`, `clipstore info`, `clipstore validate`."""
from __future__ import annotations

import json

import click

from .cliutil import is_quiet
from .errors import InputError, OutputError


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("-o", "--output", default=None,
              help="Store path or fsspec URL (s3://, gs://, ...). Default: CONFIG's name with .zarr.")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Worker processes (>= 2 starts a dask LocalCluster).")
@click.option("--scheduler", default=None, help="Address of an existing dask scheduler.")
@click.option("--max-memory", default=None, help="Memory per worker, e.g. 2GB; shards shrink to fit.")
@click.option("--overwrite", is_flag=True, help="Replace a store built from a different config.")
@click.option("--reference", default=None, help="Override the config's reference FASTA.")
@click.option("--variants", default=None, help="Override the config's VCF/BCF.")
@click.option("--peaks", default=None, help="Override the config's peak file.")
@click.option("--libraries", default=None, help="Override the config's library table.")
@click.option("--input-length", type=int, default=None)
@click.option("--max-jitter", type=int, default=None)
@click.option("--output-length", type=int, default=None)
@click.option("--divergent-distance", type=int, default=None,
              help="Largest gap between a minus and a plus peak that pairs them.")
@click.option("--folds", default=None, help="CSV chrom,fold replacing CLIPNET's fold map.")
@click.option("--shard-loci", type=int, default=None, help="Loci per shard.")
@click.option("--signal-dtype", type=click.Choice(["auto", "uint16", "float32"]), default=None,
              help="Signal storage: uint16 for whole counts (auto: when every bigWig's header "
                   "shows them), else float32.")
@click.option("--alias", "aliases", multiple=True, metavar="NAME=CONTIG",
              help="Contig alias, e.g. --alias 22=chr22 (repeatable).")
def build(config, output, workers, scheduler, max_memory, overwrite, aliases, **overrides):
    """Build a store from CONFIG (YAML). Rerun the same command to resume a killed build.

    \b
    Peaks: stranded records pair into divergent loci (a - peak, then a + peak within
    --divergent-distance); unstranded records are loci themselves. Loci are centred on the
    span midpoint (or a narrowPeak summit); windows off a contig edge are dropped and counted.
    A FASTA record named like `22:20000001-21000000` is read as that slice of contig 22.
    Indels, SVs, multi-allelic sites and missing calls are skipped and counted.
    """
    from .build import build as run_build
    import os
    for key in ("reference", "variants", "peaks", "libraries", "folds"):
        v = overrides.get(key)          # paths given on the command line are relative to the cwd
        if v and "://" not in v:
            overrides[key] = os.path.abspath(v)
    if output is None:
        from pathlib import Path
        output = str(Path(config).with_suffix(".zarr"))
    extra = {}
    for a in aliases:
        if "=" not in a:
            raise InputError(f"--alias expects NAME=CONTIG, got {a!r}")
        k, v = a.split("=", 1)
        extra[k] = v
    if extra:
        from .config import load_config
        cfg = load_config(config, **overrides)
        overrides = {"contig_aliases": {**cfg.contig_aliases, **extra}}
        config = cfg
    try:
        run_build(config, output, workers=workers, scheduler=scheduler, max_memory=max_memory,
                  overwrite=overwrite, quiet=is_quiet(), **overrides)
    except OutputError as e:          # the disk's fault, not the input's: exit 1, not 2
        click.echo(f"error: {e.message()}", err=True)
        raise SystemExit(1) from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("store")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def info(store, as_json):
    """Summarise STORE: dims, folds with locus counts, skipped counts, size, build config."""
    from .info import format_summary, store_summary
    s = store_summary(store)
    click.echo(json.dumps(s, indent=2) if as_json else format_summary(s))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("store")
@click.option("--inputs", default=None, type=click.Path(dir_okay=False),
              help="Build config whose input files to re-check a random sample against.")
@click.option("--n", default=200, show_default=True, help="Examples to re-check.")
@click.option("--seed", default=0, show_default=True)
def validate(store, inputs, n, seed):
    """Check STORE's shard checksums and (with --inputs) a random sample against the inputs.

    Exits 1 when anything differs."""
    from .validate import validate as run
    rep = run(store, inputs, n=n, seed=seed)
    for p in rep.problems:
        click.echo(f"problem: {p}", err=True)
    click.echo(f"{rep.shards_checked} shards checksummed, {rep.examples_checked} examples "
               f"re-checked: {'OK' if rep.ok else f'{len(rep.problems)} problem(s)'}")
    if not rep.ok:
        raise SystemExit(1)

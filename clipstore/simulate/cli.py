"""`clipstore simulate OUT_DIR`: the click command around `simulate()`."""
from __future__ import annotations

import dataclasses

import click

from .simulate import SimParams, simulate as run_simulation

_D = SimParams()


@click.command("simulate")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--seed", default=0, show_default=True, help="Random seed (same seed, same files).")
@click.option("--individuals", "n_individuals", default=_D.n_individuals, show_default=True,
              help="Individuals in the cohort (one library each).")
@click.option("--replicates", default=_D.replicates, show_default=True,
              help="Individuals that also get an isogenic replicate library.")
@click.option("--loci", "n_loci", default=_D.n_loci, show_default=True,
              help="Divergent promoter loci (at least 22: one per chromosome).")
@click.option("--depth", default=_D.depth, show_default=True,
              help="Reads per median locus (output window) at library depth 1.")
@click.option("--depth-sd", default=_D.depth_sd, show_default=True,
              help="Log-normal sd of library depth factors.")
@click.option("--snp-density", default=_D.snp_density, show_default=True,
              help="Background SNPs per bp inside locus windows.")
@click.option("--motif-snp-rate", default=_D.motif_snp_rate, show_default=True,
              help="Mean common motif-breaking SNPs planted per locus.")
@click.option("--negative-minus", is_flag=True,
              help="Write minus-strand bigWig values as negatives (like real PRO-cap files).")
@click.option("--input-length", default=_D.input_length, show_default=True)
@click.option("--max-jitter", default=_D.max_jitter, show_default=True)
@click.option("--output-length", default=_D.output_length, show_default=True)
@click.option("--shard-loci", default=_D.shard_loci, show_default=True,
              help="shard_loci written to build.yaml.")
@click.option("--set", "extra", multiple=True, metavar="KEY=VALUE",
              help="Any other simulator parameter, e.g. --set trans_sd=0.3 (repeatable).")
def simulate(out_dir: str, seed: int, extra: tuple[str, ...], **params) -> None:
    """Write a seeded synthetic cohort to OUT_DIR: reference FASTA (bgzip + .fai/.gzi), phased
    VCF, per-library plus/minus bigWigs, stranded peaks, libraries.tsv, build.yaml and the
    ground truth (truth/: snps.tsv, qtls.tsv, mpra.tsv, loci.tsv, planted.json).

    Then: clipstore build OUT_DIR/build.yaml --output store.zarr
    """
    from ..cliutil import is_quiet
    from ..errors import InputError

    fields = {f.name: f for f in dataclasses.fields(SimParams)}
    for item in extra:
        key, _, value = item.partition("=")
        if key not in fields or not value:
            raise InputError(f"unknown or empty simulator parameter {item!r}",
                             hint=f"known: {', '.join(sorted(fields))}")
        kind = type(getattr(_D, key))
        params[key] = (value.lower() in ("1", "true", "yes")) if kind is bool else kind(value)
    bar = None
    if not is_quiet():
        from tqdm import tqdm
        bar = tqdm(total=params["n_loci"], desc="simulate", unit="locus")

    def progress(stage: str, i: int, n: int) -> None:
        if bar is not None:
            bar.set_postfix_str(stage)
            if stage == "tracks":
                bar.update(i - bar.n)

    try:
        out = run_simulation(out_dir, seed=seed, progress=progress, **params)
    except ValueError as e:
        raise InputError(str(e))
    finally:
        if bar is not None:
            bar.close()
    if not is_quiet():
        p = out.planted
        click.echo(f"wrote {out.out_dir}: {p['loci']} loci, {len(out.samples)} individuals, "
                   f"{len(out.libraries)} libraries, {p['snps']} SNPs "
                   f"({p['truth_tiqtls']} tiQTL, {p['truth_diqtls']} diQTL rows)")
        click.echo(f"next: clipstore build {out.config} --output store.zarr")

"""Shared plumbing for bench/*.py: one flat JSON of named figures per benchmark, plus a table.

Every benchmark runs with one command (`python bench/NAME.py`, or `make bench` for all), prints a
table and writes `bench/results/NAME.json` with `machine`, `date` and `commit` beside its figures.
Speed goals are ratios against a baseline measured in the same run: these machines are shared.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import shutil
import subprocess
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
WORK = Path(__file__).resolve().parent / "work"   # scratch data, git-ignored


def machine() -> str:
    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def peak_rss_mb() -> float:
    """Peak resident memory of this process (and its waited-for children), in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def report(name: str, figures: dict[str, float | int | str | None]) -> Path:
    """Print figures as a two-column table and write bench/results/NAME.json."""
    out = {**figures, "machine": machine(),
           "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "commit": commit()}
    width = max(len(k) for k in out)
    print(f"\n{name}")
    for k, v in out.items():
        shown = f"{v:,.3f}" if isinstance(v, float) else str(v)
        print(f"  {k:<{width}}  {shown}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    return path


def simulated_cohort(path: Path, n_loci: int, *, individuals: int = 58, replicates: int = 9,
                     variants_per_locus: int = 5, reuse: bool = True) -> Path:
    """The benchmarks' seeded cohort under `path` (FASTA, VCF, bigWigs, peaks, build.yaml), kept
    when `reuse` finds one: two contigs of n_loci / 2 loci, 1000 bp input, 250 bp jitter,
    128-locus shards, rare-skewed genotypes and TSS-clustered counts
    (tests/_build_inputs.write_cohort, `realistic`)."""
    from tests._build_inputs import write_cohort

    if reuse and (path / "build.yaml").exists():
        return path
    shutil.rmtree(path, ignore_errors=True)
    per = n_loci // 2
    write_cohort(path, n_individuals=individuals, replicates=replicates, loci_per_contig=per,
                 input_length=1000, max_jitter=250, shard_loci=128,
                 contigs={"chr1": per * 400, "chr2": per * 400},
                 variants_per_locus=variants_per_locus, realistic=True)
    return path


def open_genvarloader(files: dict, inputs: Path, jitter: int, length: int, reuse: bool = True):
    """GenVarLoader's dataset of the cohort's files (bench/loader.py's `cohort_files`), written
    once under inputs/gvl, read back with `jitter` and windows of `length` bp. GVL reconstructs
    bi-allelic, non-symbolic variants only; its error message names this reader filter (the
    clipstore build skips the same records and counts them)."""
    import genvarloader as gvl
    import polars as pl
    from genoray import VCF, Filter, exprs

    out = inputs / "gvl"
    ds = None
    if reuse and out.exists():
        try:
            ds = gvl.Dataset.open(out, reference=files["fasta"], jitter=jitter, rng=0,
                                  deterministic=False)
        except Exception:
            ds = None
    if ds is None:
        bed = pl.read_csv(files["bed"], separator="\t", has_header=False,
                          new_columns=["chrom", "chromStart", "chromEnd"])
        tracks = [gvl.BigWigs(st, {s: files["bigwigs"][(s, st)] for s in files["samples"]})
                  for st in ("plus", "minus")]
        keep = Filter(record=lambda v: len(v.ALT) == 1 and not v.ALT[0].startswith("<"),
                      expr=exprs.is_biallelic & ~exprs.is_symbolic & ~exprs.is_breakend)
        gvl.write(out, bed, variants=VCF(files["vcf"], filter=keep), tracks=tracks,
                  max_jitter=jitter, overwrite=True)
        ds = gvl.Dataset.open(out, reference=files["fasta"], jitter=jitter, rng=0,
                              deterministic=False)
    return ds.with_len(length)

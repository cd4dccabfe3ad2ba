"""PRO-cap-like count tracks: Poisson draws of the grammar's expected initiation on each
individual's two true haplotypes, one plus and one minus bigWig per library.

Expected counts of library ℓ (individual i) at locus j =
    scale · depth_ℓ · trans_ij · rep_ℓj · (rate(h1) + rate(h2))
where `scale` makes a reference-homozygous locus of median strength get `depth` reads in the
output window, depth_ℓ (log-normal) differs between libraries — also between isogenic
replicates, so RPM matters — trans_ij is per-individual variation the genotype does not explain
(shared by replicates) and rep_ℓj is replicate noise. Outside loci, a thin uniform background.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyBigWig

from . import grammar
from .cohort import Variant
from .genome import CODE, Genome

PAD = 300


@dataclass(frozen=True)
class TrackParams:
    depth: float = 150.0           # reads per locus (output window, median ref locus, depth 1)
    depth_sd: float = 0.5          # log-normal sd of library depth factors
    trans_sd: float = 0.25         # log-normal sd of individual × locus variation
    replicate_sd: float = 0.1      # log-normal sd of library × locus variation
    background: float = 2e-4       # reads per bp per library outside loci
    negative_minus: bool = False   # write minus-strand values as negatives
    variant_effects: bool = True   # False: every haplotype initiates as the reference (null)


def haplotype_rates(genome: Genome, window: tuple[str, int, int], variants: list[Variant],
                    n_individuals: int) -> np.ndarray:
    """(n_individuals, 2, W, 2) expected initiation of each true haplotype over the window.

    SNPs and multi-allelic SNPs change the sequence; indels and SVs are neutral by design."""
    chrom, ws, we = window
    codes = genome.codes(chrom, ws - PAD, we + PAD)
    snv = [v for v in variants if v.kind in ("snp", "multi")]
    if not snv:
        r = grammar.initiation_variants(codes, np.zeros(0, np.int64), np.zeros((1, 0), np.uint8))
        return np.broadcast_to(r[:, PAD:PAD + we - ws][None], (n_individuals, 2, we - ws, 2))
    pos = np.array([v.pos - ws + PAD for v in snv])
    table = [np.array([CODE[a] for a in (v.ref, *v.alts)], np.uint8) for v in snv]
    haps = np.stack([v.haps for v in snv], axis=-1)               # (n, 2, V)
    alleles = np.stack([table[k][haps[..., k]] for k in range(len(snv))], axis=-1)
    flat = alleles.reshape(-1, len(snv))
    uniq, inv = np.unique(flat, axis=0, return_inverse=True)
    r = grammar.initiation_variants(codes, pos, uniq)[:, PAD:PAD + we - ws]
    return r[inv.reshape(-1)].reshape(n_individuals, 2, we - ws, 2)


def reference_rate(genome: Genome, window: tuple[str, int, int]) -> np.ndarray:
    chrom, ws, we = window
    codes = genome.codes(chrom, ws - PAD, we + PAD)
    r = grammar.initiation_variants(codes, np.zeros(0, np.int64), np.zeros((1, 0), np.uint8))
    return r[0, PAD:PAD + we - ws]


def write_tracks(genome: Genome, windows: list[tuple[str, int, int]],
                 variants_by_locus: list[list[Variant]], n_individuals: int,
                 lib_individual: list[int], paths: list[tuple[Path, Path]], scale: float,
                 params: TrackParams, rng: np.random.Generator,
                 progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Write every library's bigWigs, chromosome by chromosome; returns depth factors."""
    n_lib = len(lib_individual)
    depth = np.exp(rng.normal(0, params.depth_sd, n_lib))
    libs = np.asarray(lib_individual)
    writers = []
    header = [(c, len(s)) for c, s in genome.seqs.items()]
    for pl, mn in paths:
        pair = []
        for p in (pl, mn):
            bw = pyBigWig.open(str(p), "w")
            bw.addHeader(header, maxZooms=0)   # zoom levels are optional; readers here use values
            pair.append(bw)
        writers.append(pair)
    sign = -1.0 if params.negative_minus else 1.0
    try:
        for chrom, seq in genome.seqs.items():
            idx = [j for j, w in enumerate(windows) if w[0] == chrom]
            covered = np.zeros(len(seq), bool)
            blocks = []
            for j in idx:
                _, ws, we = windows[j]
                covered[ws:we] = True
                rates = haplotype_rates(genome, windows[j],
                                        variants_by_locus[j] if params.variant_effects else [],
                                        n_individuals)
                diploid = rates.sum(axis=1)                              # (n, W, 2)
                trans = np.exp(rng.normal(0, params.trans_sd, n_individuals))
                rep = np.exp(rng.normal(0, params.replicate_sd, n_lib))
                lam = (scale * depth * trans[libs] * rep)[:, None, None] * diploid[libs]
                blocks.append(np.minimum(rng.poisson(lam), 65535).astype(np.uint16))
                if progress:
                    progress(1)
            counts = np.stack(blocks, axis=1) if blocks else None    # (lib, locus, W, 2)
            starts = np.array([windows[j][1] for j in idx], dtype=np.int64)
            free = np.flatnonzero(~covered & (seq < 4))
            for li in range(n_lib):
                for s in (0, 1):
                    pos, val = np.zeros(0, np.int64), np.zeros(0)
                    if counts is not None:
                        loc, off = np.nonzero(counts[li, :, :, s])
                        pos, val = starts[loc] + off, counts[li, loc, off, s].astype(float)
                    k = int(rng.poisson(params.background * depth[li] * len(free)))
                    bg = np.unique(rng.choice(free, k)) if k and len(free) else np.zeros(0, int)
                    pos = np.concatenate([pos, bg]).astype(np.int64)
                    val = np.concatenate([val, np.ones(len(bg))])
                    order = np.argsort(pos, kind="stable")
                    if len(pos):
                        writers[li][s].addEntries(chrom, pos[order].tolist(),
                                                  values=((sign if s else 1.0) * val[order]).tolist(),
                                                  span=1)
    finally:
        for pair in writers:
            for bw in pair:
                bw.close()
    return depth

"""`simulate()`: write a seeded synthetic cohort in real file formats, plus its ground truth.

Output folder:
    reference.fa.gz (+ .fai, .gzi)   bgzipped FASTA, chr1..chr22 (short), N runs
    cohort.vcf.gz (+ .tbi)           phased SNPs; indels, multi-allelic, SV, missing, unphased
    tracks/<library>.{pl,mn}.bw      PRO-cap-like counts per library (minus optionally negative)
    peaks.bed.gz                     unidirectional peak calls, both strands (BED6)
    libraries.tsv, build.yaml        ready for `clipstore build build.yaml`
    truth/                           snps.tsv, qtls.tsv, mpra.tsv, loci.tsv, planted.json

Every stage draws from its own child of the seed, so changing e.g. the depth leaves the
genome and genotypes as they were.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from ..folds import fold_of, load_fold_map
from . import genome as genome_mod
from . import peaks as peaks_mod
from .cohort import CohortParams, make_variants, sample_names, write_vcf
from .tracks import TrackParams, reference_rate, write_tracks
from .truth import TruthParams, write_loci, write_snp_tables


@dataclass(frozen=True)
class SimParams:
    """Every knob of the simulator; defaults are the small cohort the test suite uses."""
    n_individuals: int = 8
    replicates: int = 2               # individuals with a second (isogenic) library
    n_loci: int = 240
    input_length: int = 1000
    max_jitter: int = 250
    output_length: int = 500
    shard_loci: int = 64
    lone_peaks: float = 0.05          # one-sided promoters (unpaired peaks) per locus
    edge_loci: int = 2                # divergent pairs whose window runs off a chromosome end
    # cohort
    snp_density: float = 1 / 250
    motif_snp_rate: float = 0.5
    maf_min: float = 0.01
    multiallelic_rate: float = 0.03
    indel_rate: float = 0.05
    n_sv: int = 2
    missing_rate: float = 0.005
    unphased_rate: float = 0.002
    # tracks
    depth: float = 150.0
    depth_sd: float = 0.5
    trans_sd: float = 0.25
    replicate_sd: float = 0.1
    background: float = 2e-4
    negative_minus: bool = False
    # truth
    ti_threshold: float = 0.4
    di_threshold: float = 0.3
    mpra_max: int = 400
    mpra_noise: float = 0.25
    # calibration knobs (the demo's negative control and mechanism regime; README "The demo")
    variant_effects: bool = True      # False: the null cohort. Every haplotype initiates as the
                                      # reference does, so genotype has no effect on the signal;
                                      # genome, genotypes, depths and noise draws stay the same
                                      # and the truth tables state every effect as 0
    hidden_motifs: tuple[str, ...] = ()  # activator types the reference never carries intact:
                                      # each planted site of these types is written with the
                                      # type's one breaking base (grammar.hidden_break), chance
                                      # intact sites in the background are broken too, and a
                                      # common SNP restores each planted one. What the
                                      # reference alone cannot teach (the paper's mechanism);
                                      # () = every motif type is intact in the reference
    hidden_restored: float = 1.0      # share of the hidden sites a common SNP restores; the
                                      # rest stay broken in every haplotype (decoys), so the
                                      # broken site in the reference does not tell which loci
                                      # gain activity in some people. Measured when each site
                                      # had a break of its own (now one shared break,
                                      # grammar.hidden_break): at 0.25 it starved the
                                      # personalized network too (README "The demo")

    def part(self, cls):
        """The subset of these parameters that one stage's dataclass (`cls`) takes."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dataclasses.asdict(self).items() if k in names})


@dataclass(frozen=True)
class SimOutputs:
    out_dir: Path
    config: Path
    reference: Path
    vcf: Path
    peaks: list[Path]
    libraries_tsv: Path
    truth_dir: Path
    samples: list[str] = field(default_factory=list)
    libraries: list[tuple[str, str]] = field(default_factory=list)   # (library, individual)
    planted: dict[str, Any] = field(default_factory=dict)


def _loci(genome, slots, peaks_by_slot, window: int, fold_map) -> list[dict]:
    """Loci exactly as `clipstore build` derives them from the peaks (span, centre, window)."""
    loci = []
    for slot, pk in zip(slots, peaks_by_slot):
        if slot.kind != "locus":
            continue
        m, p = (next(x for x in pk if x.strand == s) for s in "-+")
        s, e = m.start, max(m.end, p.end)
        centre = (s + e) // 2
        ws = centre - window // 2
        assert 0 <= ws and ws + window <= len(genome.seqs[slot.chrom])
        loci.append({"locus_id": f"{slot.chrom}:{s}-{e}", "chrom": slot.chrom, "start": ws,
                     "end": ws + window, "centre": centre,
                     "fold": fold_of(slot.chrom, fold_map), "span_start": s, "span_end": e,
                     "tss_plus": p.summit, "tss_minus": m.summit,
                     "motifs": ";".join(f"{x.name}{x.strand}:{x.start}" for x in slot.sites),
                     "slot": slot})
    return loci


OUTPUTS = ("reference.fa.gz", "reference.fa.gz.fai", "reference.fa.gz.gzi", "cohort.vcf.gz",
           "cohort.vcf.gz.tbi", "peaks.bed.gz", "libraries.tsv", "build.yaml", "tracks", "truth")


def _clear(out: Path, overwrite: bool) -> None:
    """Remove a previous simulation's files (only those), refuse any other non-empty folder."""
    if not out.exists() or not any(out.iterdir()):
        return
    if not (out / "truth" / "planted.json").exists():
        raise ValueError(f"{out} is not empty and holds no earlier simulation: "
                         "give a new or empty folder")
    if not overwrite:
        raise ValueError(f"{out} already holds a simulation (pass overwrite=True to replace it)")
    for name in OUTPUTS:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def simulate(out_dir: str | Path, *, seed: int = 0, overwrite: bool = True,
             progress: Callable[[str, int, int], None] | None = None, **params: Any
             ) -> SimOutputs:
    """Write a synthetic cohort under `out_dir`; `params` are SimParams fields."""
    p = SimParams(**params)
    if p.n_individuals < 1 or not 0 <= p.replicates <= p.n_individuals:
        raise ValueError("need n_individuals >= 1 and 0 <= replicates <= n_individuals")
    from . import grammar
    bad = [m for m in p.hidden_motifs if m not in grammar.ACTIVATORS]
    if bad:
        raise ValueError(f"hidden_motifs must name activators {grammar.ACTIVATORS}, got {bad}")
    if not 0 < p.hidden_restored <= 1:
        raise ValueError(f"hidden_restored must be in (0, 1], got {p.hidden_restored}")
    out = Path(out_dir)
    _clear(out, overwrite)
    (out / "tracks").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    r_genome, r_peaks, r_cohort, r_tracks, r_truth = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5))
    W = p.input_length + 2 * p.max_jitter
    say = progress or (lambda stage, i, n: None)

    say("genome", 0, 1)
    genome = genome_mod.make_genome(r_genome, p.n_loci, window=W,
                                    n_lone=max(1, round(p.lone_peaks * p.n_loci)),
                                    n_edge=p.edge_loci, output_length=p.output_length,
                                    input_length=p.input_length,
                                    hidden=tuple(p.hidden_motifs))
    reference = genome_mod.write_fasta(genome, out / "reference.fa.gz")
    peaks_by_slot = [peaks_mod.call_slot(genome, s, r_peaks) for s in genome.slots]
    all_peaks = [x for pk in peaks_by_slot for x in pk]
    peaks_path = peaks_mod.write_peaks(all_peaks, out / "peaks.bed.gz")
    loci = _loci(genome, genome.slots, peaks_by_slot, W, load_fold_map())
    windows = [(d["chrom"], d["start"], d["end"]) for d in loci]

    # scale: a median reference-homozygous locus gets `depth` reads in the output window
    o = W // 2 - p.output_length // 2
    ref_tot = np.array([reference_rate(genome, w)[o:o + p.output_length].sum(axis=0)
                        for w in windows], dtype=np.float64)            # (loci, 2), one haplotype
    scale = p.depth / float(np.median(2 * ref_tot.sum(axis=1)))
    for d, t in zip(loci, ref_tot):
        d["ref_plus"], d["ref_minus"] = f"{2 * scale * t[0]:.4g}", f"{2 * scale * t[1]:.4g}"

    say("genotypes", 0, 1)
    samples = sample_names(p.n_individuals)
    variants = make_variants(genome, windows, [d["slot"] for d in loci], p.part(CohortParams),
                             r_cohort)
    by_locus = [[] for _ in loci]
    for v in variants:
        by_locus[v.locus].append(v)
    for d, vs in zip(loci, by_locus):
        d["n_snps"] = sum(v.kind == "snp" for v in vs)
    vcf = write_vcf(variants, samples, genome, out / "cohort.vcf.gz")

    libs = [(f"{s}.1", s) for s in samples] + [(f"{s}.2", s) for s in samples[:p.replicates]]
    paths = [(out / "tracks" / f"{lib}.pl.bw", out / "tracks" / f"{lib}.mn.bw") for lib, _ in libs]
    done = [0]

    def tick(k: int) -> None:
        done[0] += k
        say("tracks", done[0], len(loci))

    depth = write_tracks(genome, windows, by_locus, p.n_individuals,
                         [samples.index(ind) for _, ind in libs], paths, scale,
                         p.part(TrackParams), r_tracks, progress=tick)
    lines = ["library\tindividual\tplus\tminus"]
    lines += [f"{lib}\t{ind}\t{pl.relative_to(out)}\t{mn.relative_to(out)}"
              for (lib, ind), (pl, mn) in zip(libs, paths)]
    tsv = out / "libraries.tsv"
    tsv.write_text("\n".join(lines) + "\n")
    config = out / "build.yaml"
    config.write_text(yaml.safe_dump({
        "reference": reference.name, "variants": vcf.name, "libraries": tsv.name,
        "peaks": peaks_path.name, "input_length": p.input_length, "max_jitter": p.max_jitter,
        "output_length": p.output_length, "divergent_distance": 200,
        "shard_loci": p.shard_loci}, sort_keys=False))

    say("truth", 0, 1)
    truth = out / "truth"
    counts = write_snp_tables(truth, genome, loci, by_locus, scale, p.output_length,
                              p.part(TruthParams), r_truth)
    write_loci(truth / "loci.tsv", loci)
    snp_calls = [c for v in variants if v.kind == "snp" for c in v.calls]
    hidden = {(d["chrom"], st.restore[0]) for d in loci for st in d["slot"].sites
              if st.restore is not None and d["start"] <= st.restore[0] < d["end"]}
    planted = {
        # the counts `clipstore build` must report as skipped (same keys)
        "peaks_read": len(all_peaks),
        "peaks_unpaired": sum(s.kind == "lone" for s in genome.slots),
        "loci_off_edge": sum(s.kind == "edge" for s in genome.slots),
        "loci_no_fold": 0,
        "duplicate_peaks": 0,
        "snps": sum(v.kind == "snp" for v in variants),
        "indels": sum(v.kind == "indel" for v in variants),
        "multiallelic": sum(v.kind == "multi" for v in variants),
        "sv": sum(v.kind == "sv" for v in variants),
        "missing_calls": sum("." in c for c in snp_calls),
        "unphased": sum("/" in c and "." not in c for c in snp_calls),
        # everything else about the cohort
        "loci": len(loci),
        "planted_motif_snps": sum(bool(v.site) for v in variants),
        # hidden sites (mechanism regime): planted broken, and those a common SNP restores
        "hidden_sites": len(hidden),
        "hidden_sites_restored": sum((v.chrom, v.pos) in hidden for v in variants),
        **counts,
        "scale": scale,
        "conventions": {
            "pos": "1-based, as in the VCF",
            "true_log2_quantity_effect": "log2(alt/alt ÷ ref/ref expected counts), output window",
            "true_directionality_effect": "Δ[log1p(plus) − log1p(minus)], alt/alt − ref/ref",
            "log2fc_observed": "log2(ref activity / alt activity) + noise (DESIGN: log2(ref/alt))",
            "scale": "expected reads per unit of grammar rate at library depth 1 (GrammarOracle)",
        },
        "library_depth": {lib: float(f) for (lib, _), f in zip(libs, depth)},
        "seed": seed,
        "params": dataclasses.asdict(p),
    }
    (truth / "planted.json").write_text(json.dumps(planted, indent=1))
    say("done", 1, 1)
    return SimOutputs(out, config, reference, vcf, [peaks_path], tsv, truth, samples, libs,
                      planted)

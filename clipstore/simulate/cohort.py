"""Individuals and their phased genotypes: SNPs with a realistic allele-frequency spectrum,
common SNPs planted in motifs (the causal variants the truth tables describe), and the records a
real cohort VCF also holds and the build must skip: indels, multi-allelic sites, a structural
variant, missing and unphased calls.

Genotypes are drawn per haplotype (Hardy–Weinberg). The *true* haplotypes drive the tracks; the
VCF holds calls, so a missing call hides a real allele, as in real data. Indels and SVs are
placed away from planted motifs and treated as neutral (they never touch the grammar).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pysam

from . import grammar
from .genome import CHROMS, Genome, Slot

BASES = "ACGT"
_COMPL = str.maketrans("ACGT", "TGCA")


@dataclass
class Variant:
    chrom: str
    pos: int                 # 0-based
    ref: str
    alts: list[str]
    kind: str                # "snp", "multi", "indel", "sv"
    haps: np.ndarray         # (n_individuals, 2) true allele index per haplotype
    af: list[float]
    locus: int               # index into the loci list
    site: str = ""           # planted motif it breaks (or restores, for a hidden site), e.g.
                             # "TATA+" ("" = background)
    calls: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.chrom}_{self.pos + 1}_{self.ref}_{','.join(self.alts)}"


@dataclass(frozen=True)
class CohortParams:
    n_individuals: int = 8
    snp_density: float = 1 / 250      # background SNPs per bp of window
    motif_snp_rate: float = 0.5       # mean planted motif-breaking SNPs per locus
    maf_min: float = 0.01
    multiallelic_rate: float = 0.03   # share of background SNP sites that are multi-allelic
    indel_rate: float = 0.05          # indels per background SNP
    n_sv: int = 2
    missing_rate: float = 0.005       # per call, SNP records
    unphased_rate: float = 0.002      # per call, SNP records
    hidden_restored: float = 1.0      # share of hidden sites a common SNP restores (SimParams)


def sample_names(n: int) -> list[str]:
    return [f"SIM{i:03d}" for i in range(n)]


def _draw_haps(rng, n: int, freqs: list[float], polymorphic: bool = True) -> np.ndarray:
    p = np.array([1 - sum(freqs), *freqs])
    haps = rng.choice(len(p), size=(n, 2), p=p).astype(np.int8)
    if polymorphic and n * 2 > len(p):
        flat = haps.reshape(-1)
        for a in range(len(p)):          # every allele of the record shows up in the cohort
            if not (flat == a).any():
                idx = rng.integers(len(flat))
                while (flat == flat[idx]).sum() == 1:
                    idx = rng.integers(len(flat))
                flat[idx] = a
    return haps


def _maf_background(rng, maf_min: float) -> float:
    """Log-uniform minor allele frequency (the neutral spectrum's 1/f shape) in [maf_min, 0.5]."""
    return float(np.exp(rng.uniform(np.log(maf_min), np.log(0.5))))


def _alt_freq(rng, maf: float, minor_alt: float = 0.8) -> float:
    return maf if rng.random() < minor_alt else 1 - maf


def _motif_snp(site, rng) -> tuple[int, str]:
    """Forward-strand position and alt base of a SNP that breaks a planted site."""
    m = grammar.MOTIFS[site.name]
    motif_seq = site.seq if site.strand == "+" else site.seq[::-1].translate(_COMPL)
    i, alt = grammar.breaking_snp(m, motif_seq, rng)
    if site.strand == "+":
        return site.start + i, alt
    return site.start + len(m) - 1 - i, alt.translate(_COMPL)


def make_variants(genome: Genome, windows: list[tuple[str, int, int]], slots: list[Slot],
                  params: CohortParams, rng: np.random.Generator) -> list[Variant]:
    """Variants inside each locus window [start, end), sorted by chromosome then position."""
    n = params.n_individuals
    out: list[Variant] = []
    sv_loci = set(rng.choice(len(windows), min(params.n_sv, len(windows)), replace=False).tolist())
    for j, ((chrom, ws, we), slot) in enumerate(zip(windows, slots)):
        seq = genome.seqs[chrom]
        taken: set[int] = set()
        planted = np.zeros(we - ws, bool)
        for s in slot.sites:
            planted[max(0, s.start - 12 - ws):max(0, s.end + 12 - ws)] = True
        # hidden sites (SimParams.hidden_motifs): a common SNP restores the broken base of a
        # share `hidden_restored` of them; the others stay broken in everyone (decoys)
        for site in slot.sites:
            if site.restore is None or site.restore[0] in taken or not ws <= site.restore[0] < we:
                continue
            if params.hidden_restored < 1 and rng.random() >= params.hidden_restored:
                taken.add(site.restore[0])
                continue
            p, base = site.restore
            taken.add(p)
            f = float(rng.uniform(0.15, 0.5))
            out.append(Variant(chrom, p, BASES[seq[p]], [base], "snp", _draw_haps(rng, n, [f]),
                               [f], j, site=f"{site.name}{site.strand}"))
        intact = [s for s in slot.sites if s.restore is None]
        # planted causal SNPs: common, breaking a motif the reference carries intact
        for _ in range(min(3, int(rng.poisson(params.motif_snp_rate)))):
            if not intact:
                break
            site = intact[int(rng.integers(len(intact)))]
            p, alt = _motif_snp(site, rng)
            if p in taken or not ws <= p < we:
                continue
            taken.add(p)
            maf = float(rng.uniform(0.05, 0.5))
            f = _alt_freq(rng, maf, minor_alt=0.75)
            out.append(Variant(chrom, p, BASES[seq[p]], [alt], "snp", _draw_haps(rng, n, [f]),
                               [f], j, site=f"{site.name}{site.strand}"))
        # background SNPs (some multi-allelic)
        n_bg = int(rng.poisson((we - ws) * params.snp_density))
        for p in rng.choice(np.arange(ws, we), size=n_bg, replace=False):
            p = int(p)
            if p in taken or seq[p] > 3:
                continue
            taken.add(p)
            ref = BASES[seq[p]]
            others = [b for b in BASES if b != ref]
            f = _alt_freq(rng, _maf_background(rng, params.maf_min))
            if rng.random() < params.multiallelic_rate:
                a1, a2 = rng.choice(others, 2, replace=False)
                fr = [f * 0.7, min(f * 0.3, 0.99 - f * 0.7)]
                out.append(Variant(chrom, p, ref, [str(a1), str(a2)], "multi",
                                   _draw_haps(rng, n, fr), fr, j))
            else:
                out.append(Variant(chrom, p, ref, [str(rng.choice(others))], "snp",
                                   _draw_haps(rng, n, [f]), [f], j))
        # indels (and one SV here and there), away from planted motifs and other variants
        n_indel = int(rng.binomial(n_bg, params.indel_rate)) + (j in sv_loci)
        for k in range(n_indel):
            for _try in range(20):
                p = int(rng.integers(ws, we - 4))
                span = set(range(p, p + 4))
                if span & taken or planted[p - ws:p - ws + 4].any() or (seq[p:p + 4] > 3).any():
                    continue
                taken |= span
                ref = BASES[seq[p]]
                f = _alt_freq(rng, _maf_background(rng, 0.05))
                if k == 0 and j in sv_loci:
                    out.append(Variant(chrom, p, ref, ["<DEL>"], "sv", _draw_haps(rng, n, [f]),
                                       [f], j))
                elif rng.random() < 0.5:
                    ins = "".join(rng.choice(list(BASES), int(rng.integers(1, 4))))
                    out.append(Variant(chrom, p, ref, [ref + ins], "indel",
                                       _draw_haps(rng, n, [f]), [f], j))
                else:
                    d = int(rng.integers(1, 4))
                    r = "".join(BASES[c] for c in seq[p:p + d + 1])
                    out.append(Variant(chrom, p, r, [ref], "indel", _draw_haps(rng, n, [f]),
                                       [f], j))
                break
    order = {c: i for i, c in enumerate(CHROMS)}
    out.sort(key=lambda v: (order[v.chrom], v.pos))
    for v in out:
        v.calls = _calls(v, params, rng)
    return out


def _calls(v: Variant, params: CohortParams, rng) -> list[str]:
    """GT strings: phased true genotype; on SNP records some calls missing or unphased."""
    calls = []
    for a, b in v.haps.tolist():
        r = rng.random()
        if v.kind == "snp" and r < params.missing_rate:
            calls.append(["./.", f".|{b}", f"{a}|."][int(rng.integers(3))])
        elif v.kind == "snp" and r < params.missing_rate + params.unphased_rate:
            calls.append(f"{min(a, b)}/{max(a, b)}")
        else:
            calls.append(f"{a}|{b}")
    return calls


def called_genotype(call: str) -> int | None:
    """Alt-allele dosage of a biallelic call, None when any allele is missing."""
    alleles = call.replace("/", "|").split("|")
    if "." in alleles:
        return None
    return sum(int(a) > 0 for a in alleles)


def write_vcf(variants: list[Variant], samples: list[str], genome: Genome, path: Path) -> Path:
    """bgzipped, tabix-indexed VCF 4.2 (pysam); returns the .vcf.gz path."""
    head = ["##fileformat=VCFv4.2", "##source=clipstore simulate",
            '##FILTER=<ID=PASS,Description="All filters passed">',
            '##INFO=<ID=AF,Number=A,Type=Float,Description="Population allele frequency the '
            'genotypes were drawn from">',
            '##INFO=<ID=SVTYPE,Number=1,Type=String,Description="Type of structural variant">',
            '##INFO=<ID=END,Number=1,Type=Integer,Description="End position of the variant">',
            '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">']
    head += [f"##contig=<ID={c},length={len(s)}>" for c, s in genome.seqs.items()]
    head.append("\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO",
                           "FORMAT", *samples]))
    lines = []
    for v in variants:
        info = "AF=" + ",".join(f"{f:.4g}" for f in v.af)
        if v.kind == "sv":
            info += f";SVTYPE=DEL;END={v.pos + 1 + 300}"
        lines.append("\t".join([v.chrom, str(v.pos + 1), v.id, v.ref, ",".join(v.alts), ".",
                                "PASS", info, "GT", *v.calls]))
    plain = path.with_suffix("") if path.suffix == ".gz" else path
    plain.write_text("\n".join(head + lines) + "\n")
    return Path(pysam.tabix_index(str(plain), preset="vcf", force=True))

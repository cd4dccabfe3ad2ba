"""Phased (or unphased) VCF/BCF → each individual's two-hot sequence over a window.

Only biallelic SNPs change the sequence. Indels, structural variants (symbolic ALT or SVTYPE),
multi-allelic records and missing calls are skipped and counted; unphased calls are used
(two-hot is phase-free) and counted. A REF allele that disagrees with the FASTA is an error:
it means the VCF and FASTA are on different assemblies.
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import cyvcf2
import numpy as np
import pysam

from .contigs import reverse_map
from .errors import InputError
from .fingerprint import fingerprint

SKIP_KEYS = ("snps", "indels", "multiallelic", "sv", "missing_calls", "unphased")
_BASE_INDEX = {"A": 0, "C": 1, "G": 2, "T": 3}


def require_indexed(path: str) -> None:
    if not os.path.exists(path):
        raise InputError("VCF not found", file=path)
    if not any(os.path.exists(path + ext) for ext in (".tbi", ".csi")):
        raise InputError("VCF/BCF is not indexed (no .tbi or .csi beside it)", file=path,
                         hint=f"bgzip it and run `bcftools index -t {path}` (or tabix -p vcf)")


def open_vcf(path: str, samples: Sequence[str] | None = None) -> cyvcf2.VCF:
    """Open an indexed VCF/BCF; missing file, missing index or samples → InputError."""
    require_indexed(path)
    try:
        vcf = cyvcf2.VCF(path, lazy=True, threads=1)
    except (OSError, Exception) as e:  # cyvcf2 raises bare Exception on bad headers
        raise InputError(f"cannot read VCF ({e})", file=path)
    if samples is not None:
        missing = [s for s in samples if s not in set(vcf.samples)]
        if missing:
            raise InputError(f"sample(s) {missing[:5]} from the library table are not in the VCF "
                             f"({len(vcf.samples)} samples, e.g. {vcf.samples[:3]})", file=path,
                             hint="fix the individual column of the library table")
    return vcf


def contigs_with_records(path: str) -> set[str]:
    """VCF contigs that the index holds records for. A contig declared in the header but absent
    from the index has no variants; querying it makes cyvcf2 warn "no intervals found", so the
    build gives such loci the reference without asking."""
    with pysam.VariantFile(path) as vf:
        return set(vf.index.keys())


def vcf_contig_map(path: str, individuals: Sequence[str], used: Sequence[str],
                   fasta_contigs: Sequence[str], aliases: Mapping[str, str] | None
                   ) -> tuple[dict[str, str], dict]:
    """({FASTA contig: VCF contig} for the contigs loci lie on that the VCF holds records for,
    the VCF's fingerprint). Every BGZF block and the index are verified first
    (`bgzf.check_indexed`): htslib would read a damaged file silently up to the damage.

    A contig the VCF does not name at all (no alias resolves it) is an error: every individual
    would silently be stored as the reference. A contig the VCF names but holds no records for
    is legitimate (no variants there): those loci get the reference without a query."""
    require_indexed(path)
    fp = fingerprint(path, is_vcf=True)
    vcf = open_vcf(path, individuals)
    seqnames = list(vcf.seqnames)
    vcf.close()
    found = reverse_map(seqnames, used, aliases)
    absent = [c for c in used if c not in found]
    if absent:
        example = seqnames[0] if seqnames else "NAME"
        raise InputError(
            f"no VCF contig resolves to the FASTA contig(s) {absent[:5]} that loci lie on, so "
            f"every individual would be stored as the reference (VCF contigs: {seqnames[:8]}; "
            f"FASTA contigs: {list(fasta_contigs)[:8]})", file=path, record=f"contig {absent[0]}",
            hint=f"map the names with contig_aliases in the config (e.g. {{'{example}': "
                 f"'{absent[0]}'}}) or --alias {example}={absent[0]}, or use the VCF made for "
                 "this assembly")
    indexed = contigs_with_records(path)
    return {c: v for c, v in found.items() if v in indexed}, fp


def classify(ref: str, alts: list[str], info_svtype: bool) -> str:
    """'snps', 'indels', 'multiallelic' or 'sv' for one record."""
    if info_svtype or any(a.startswith("<") or "[" in a or "]" in a for a in alts):
        return "sv"
    if len(alts) > 1:
        return "multiallelic"
    if len(ref) != 1 or not alts or len(alts[0]) != 1 or alts[0] in ("*", ".") \
            or alts[0].upper() not in _BASE_INDEX:
        return "indels"
    return "snps"


def apply_snps(vcf: cyvcf2.VCF, path: str, vcf_chrom: str, start: int, ref_seq: bytes,
               ref_onehot: np.ndarray, sample_idx: np.ndarray, count_from: int,
               counts: dict[str, int]) -> np.ndarray:
    """(n_individuals, W, 4) two-hot over [start, start + W) of contig `vcf_chrom`.

    Records at 0-based positions < `count_from` were already counted by an earlier window that
    overlaps this one, so skipped counts stay per VCF record, not per window.
    """
    W = len(ref_seq)
    out = np.repeat((ref_onehot * 2)[None], len(sample_idx), axis=0)
    records = vcf(f"{vcf_chrom}:{start + 1}-{start + W}")  # contig checked by the caller
    eye = np.vstack([np.eye(4, dtype=np.uint8), np.zeros((1, 4), np.uint8)])  # row 4: N
    haps: dict[int, np.ndarray] = {}   # window offset → (n, 2) base index of each haplotype
    for v in records:
        p = v.POS - 1
        if p < start or p >= start + W:
            continue  # records overlapping the window but starting before it (deletions)
        count = p >= count_from
        kind = classify(v.REF, v.ALT, v.INFO.get("SVTYPE") is not None)
        if kind != "snps":
            if count:
                counts[kind] += 1
            continue
        fa = chr(ref_seq[p - start])
        if v.REF.upper() != fa and fa != "N":
            raise InputError(f"REF allele {v.REF} does not match the FASTA base {fa} at "
                             f"{vcf_chrom}:{v.POS}", file=path,
                             record=f"{vcf_chrom}:{v.POS} {v.ID or '.'}",
                             hint="the VCF and FASTA must be on the same assembly")
        gt = v.genotype.array()[sample_idx]  # (n, ploidy + 1): alleles..., phased flag
        alleles = gt[:, :-1].astype(np.int64)
        if alleles.shape[1] == 1:
            alleles = np.repeat(alleles, 2, axis=1)
        alleles = np.where(alleles == -2, alleles[:, :1], alleles)[:, :2]  # haploid → homozygous
        missing = alleles < 0
        if count:
            counts["snps"] += 1
            counts["missing_calls"] += int(missing.any(axis=1).sum())
            counts["unphased"] += int(((gt[:, -1] == 0) & ~missing.any(axis=1)).sum())
        # per haplotype, so split multi-allelic records at one position (bcftools norm -m-)
        # combine: 1|0 at A>C and 0|1 at A>G give C/G. A missing allele reads as the reference.
        hb = haps.setdefault(p - start, np.full((len(sample_idx), 2), _BASE_INDEX[v.REF.upper()]))
        hb[alleles == 1] = _BASE_INDEX[v.ALT[0].upper()]
    for k, hb in haps.items():
        out[:, k] = eye[hb[:, 0]] + eye[hb[:, 1]]
    return out

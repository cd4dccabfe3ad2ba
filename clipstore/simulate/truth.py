"""Ground truth of a simulated cohort, computed from the same grammar that made the tracks.

* snps.tsv — every biallelic SNP in a locus window (the SNPs the store applies): its true
  effect on the locus (homozygous alt vs homozygous ref, reference background, output window,
  nominal depth): log2 quantity ratio and change in directionality log1p(plus) − log1p(minus).
* qtls.tsv — SNPs whose true effect passes a threshold and that have both hom-ref and
  alt-carrying individuals in the VCF calls: tiQTLs (quantity) and diQTLs (directionality),
  with genotype counts, in the shape of the paper's QTL lists.
* mpra.tsv — a 200 bp oligo per tested SNP (ref/alt, SNP at offset 100) placed in a reporter
  construct upstream of a minimal promoter; activity = plus-strand initiation from the oligo into
  the reporter; log2fc_observed = log2(ref/alt activity) + measurement noise (the DESIGN's
  orientation: effect = log2(ref/alt)); emVar = active and |observed| beyond noise.
* loci.tsv, planted.json — the loci (as the build will make them) and every planted count the
  build must report as skipped.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import grammar
from .cohort import Variant, called_genotype
from .genome import CODE, Genome, LETTERS

PAD = 300
# pMPRAv3-like reporter: 300 bp upstream of the oligo, then minP (TATA) + start of GFP.
MPRA_UPSTREAM = (
    "ACGAAAATGTTGGATGCTCATACTCGTCCTTTTTCAATATTATTGAAGCATTTATCAGGGTTACTAGTACGTCTCTCAAGGATAAGTAA"
    "GTAATATTAAGGTACGGGAGGTATTGGACAGGCCGCAATAAAATATCTTTATTTTCATTACATCTGTGTGTTGGTTTTTTGTGTGAATC"
    "GATAGTACTAACATACGCTCTCCATCAAAACAAAACGAAACAAAACAAACTAGCAAAATAGGCTGTCCCCAGTGCAAGTGCAGGTGCCAG"
    "AACATTTCTCTGGCCTAACTGGCCGCTTGACG")
MPRA_DOWNSTREAM = (
    "CACTGCGGCTCCTGCGATCTAACTGGCCGGTACCTGAGCTCGCTAGCCTCGAGGATATCAAGATCTGGCCTCGGCGGCCAAGCTTAGAC"
    "ACTAGAGGGTATATAATGGAAGCTCGACTTCCAGCTTGGCAATCCGGTACTGTTGGTAAAGCCACCATGGTGAGCAAGGGCGAGGAGCTG"
    "TTCACCGGGGTGGTGCCCATCCTGGTCGAGCTGGACGGCGACGTAAACGGCCACAAGTTCAGCGTGTCCGGCGAGGGCGAGGGCGATGCC"
    "ACCTACGGCAAGCTGACCCTGAAGTTCATCT")
OLIGO = 200


def mpra_construct(oligo: str, length: int = 1000) -> tuple[str, int]:
    """(construct, oligo start): upstream piece + oligo + minP-GFP piece, padded to `length` with
    a fixed filler (seeded), so every allele is scored in the same context."""
    core = MPRA_UPSTREAM + oligo + MPRA_DOWNSTREAM
    fill = np.random.default_rng(2016).choice(list("ACGT"), max(0, length - len(core)))
    right = "".join(fill)
    return (core + right)[:length], len(MPRA_UPSTREAM)


def _codes(seq: str) -> np.ndarray:
    lut = np.full(256, 4, np.uint8)
    for i, b in enumerate(b"ACGT"):
        lut[b] = i
    return lut[np.frombuffer(seq.encode(), np.uint8)]


def mpra_activity(oligos: list[str], alts: list[str] | None = None) -> np.ndarray:
    """Reporter activity per oligo: plus-strand initiation from the oligo start to the end.

    With `alts` (same length as `oligos`, each differing from its ref oligo at single bases),
    returns (n, 2) activities of (ref, alt), scoring each pair in one pass."""
    out = np.zeros((len(oligos), 2 if alts is not None else 1))
    for i, o in enumerate(oligos):
        seq, start = mpra_construct(o)
        ref = _codes(seq)
        if alts is None:
            pos, al = np.zeros(0, np.int64), np.zeros((1, 0), np.uint8)
        else:
            alt = _codes(mpra_construct(alts[i])[0])
            pos = np.flatnonzero(alt != ref)
            al = np.stack([ref[pos], alt[pos]])
        r = grammar.initiation_variants(ref, pos, al)
        out[i] = r[:, start:, 0].sum(axis=1)
    return out if alts is not None else out[:, 0]


@dataclass(frozen=True)
class TruthParams:
    ti_threshold: float = 0.4        # |log2 quantity effect| for a tiQTL
    di_threshold: float = 0.3        # |directionality effect| for a diQTL
    qtl_min_homref: int = 1
    qtl_min_alt: int = 1             # individuals carrying the alt allele (het or hom)
    mpra_max: int = 400              # oligos tested (planted SNPs first, then a random share)
    mpra_noise: float = 0.25         # sd of measured log2 fold change
    mpra_active_fraction: float = 0.4
    emvar_z: float = 2.5
    variant_effects: bool = True     # False (null cohort): every true effect is 0; qtls.tsv still
                                     # lists the SNPs that would be QTLs with effects, so the
                                     # control scores the same QTL list as the cohort with effects


def snp_effects(genome: Genome, window: tuple[str, int, int], snps: list[Variant],
                scale: float, output_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(quantity effect log2, directionality effect, ref (plus, minus) expected counts)."""
    chrom, ws, we = window
    codes = genome.codes(chrom, ws - PAD, we + PAD)
    pos = np.array([v.pos - ws + PAD for v in snps], dtype=np.int64)
    ref = codes[pos] if len(snps) else np.zeros(0, np.uint8)
    alleles = np.repeat(ref[None], len(snps) + 1, axis=0)
    for k, v in enumerate(snps):
        alleles[k + 1, k] = CODE[v.alts[0]]
    r = grammar.initiation_variants(codes, pos, alleles)[:, PAD:PAD + we - ws]
    o = (we - ws) // 2 - output_length // 2
    tot = 2 * scale * r[:, o:o + output_length].sum(axis=1).astype(np.float64)   # (1+V, 2)
    q = np.log2(tot.sum(1)[1:] / tot.sum(1)[0])
    d = np.log1p(tot[:, 0]) - np.log1p(tot[:, 1])
    return q, d[1:] - d[0], tot[0]


def motif_hits(genome: Genome, snps: list[Variant]) -> list[str]:
    """Motif (name + orientation) with occupancy ≥ 0.5 over the SNP in ref or alt, '' if none."""
    if not snps:
        return []
    K = grammar._KMAX
    eye = np.vstack([np.eye(4, dtype=np.float32), np.zeros((1, 4), np.float32)])
    ref = np.stack([genome.codes(v.chrom, v.pos - K + 1, v.pos + K) for v in snps])
    alt = ref.copy()
    alt[:, K - 1] = [CODE[v.alts[0]] for v in snps]
    occ = grammar.occupancy(eye[np.concatenate([ref, alt])])
    best = np.zeros(len(snps))
    out = [""] * len(snps)
    for (name, rc), o in occ.items():
        k = len(grammar.MOTIFS[name])
        cover = o[:, K - k:K].max(axis=1)
        cover = np.maximum(cover[:len(snps)], cover[len(snps):])
        for i in np.flatnonzero((cover >= 0.5) & (cover > best)):
            best[i] = cover[i]
            out[i] = f"{name}{'-' if rc else '+'}"
    return out


def genotype_counts(v: Variant) -> tuple[int, int, int, int]:
    """(hom-ref, het, hom-alt, missing) from the VCF calls."""
    g = [called_genotype(c) for c in v.calls]
    return (sum(x == 0 for x in g), sum(x == 1 for x in g), sum(x == 2 for x in g),
            sum(x is None for x in g))


def _write_tsv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


SNP_COLUMNS = ["variant_id", "chrom", "pos", "ref", "alt", "locus_id",
               "true_log2_quantity_effect", "true_directionality_effect", "in_motif",
               "motif", "planted", "af", "n_homref", "n_het", "n_homalt", "n_missing"]
QTL_COLUMNS = ["variant_id", "chrom", "pos", "ref", "alt", "locus_id", "kind", "true_effect",
               "n_homref", "n_het", "n_homalt"]
MPRA_COLUMNS = ["variant_id", "chrom", "pos", "oligo_ref", "oligo_alt", "log2fc_observed",
                "emvar", "active", "log2fc_true", "activity_ref", "activity_alt", "locus_id"]


def write_snp_tables(out: Path, genome: Genome, loci: list[dict], variants_by_locus,
                     scale: float, output_length: int, params: TruthParams, rng
                     ) -> dict[str, int]:
    """snps.tsv, qtls.tsv and mpra.tsv; returns counts for planted.json."""
    snp_rows, qtl_rows, mpra_cand = [], [], []
    n_ti = n_di = 0
    for locus, vs in zip(loci, variants_by_locus):
        snps = [v for v in vs if v.kind == "snp"]
        if not snps:
            continue
        window = (locus["chrom"], locus["start"], locus["end"])
        q, d, _ = snp_effects(genome, window, snps, scale, output_length)
        tq, td = (q, d) if params.variant_effects else (np.zeros_like(q), np.zeros_like(d))
        hits = motif_hits(genome, snps)
        for v, qe, de, te_q, te_d, hit in zip(snps, q, d, tq, td, hits):
            hr, het, ha, miss = genotype_counts(v)
            base = [v.id, v.chrom, v.pos + 1, v.ref, v.alts[0], locus["locus_id"]]
            snp_rows.append(base + [f"{te_q:.6g}", f"{te_d:.6g}", int(bool(hit)), hit or ".",
                                    int(bool(v.site)), f"{v.af[0]:.4g}", hr, het, ha, miss])
            ok = hr >= params.qtl_min_homref and het + ha >= params.qtl_min_alt
            if ok and abs(qe) >= params.ti_threshold:
                qtl_rows.append(base + ["ti", f"{te_q:.6g}", hr, het, ha])
                n_ti += 1
            if ok and abs(de) >= params.di_threshold:
                qtl_rows.append(base + ["di", f"{te_d:.6g}", hr, het, ha])
                n_di += 1
            mpra_cand.append((v, locus["locus_id"]))
    _write_tsv(out / "snps.tsv", SNP_COLUMNS, snp_rows)
    _write_tsv(out / "qtls.tsv", QTL_COLUMNS, qtl_rows)
    n_mpra, n_emvar = _write_mpra(out / "mpra.tsv", genome, mpra_cand, params, rng)
    return {"truth_snps": len(snp_rows), "truth_tiqtls": n_ti, "truth_diqtls": n_di,
            "truth_mpra": n_mpra, "truth_emvars": n_emvar,
            "truth_snps_in_motif": sum(r[8] for r in snp_rows)}


def _write_mpra(path: Path, genome: Genome, cands, params: TruthParams, rng) -> tuple[int, int]:
    planted = [c for c in cands if c[0].site]
    other = [c for c in cands if not c[0].site]
    k = max(0, params.mpra_max - len(planted))
    pick = planted[:params.mpra_max] + [other[i] for i in
                                         sorted(rng.choice(len(other), min(k, len(other)),
                                                           replace=False))]
    pick = [c for c in pick if (genome.codes(c[0].chrom, c[0].pos - OLIGO // 2,
                                             c[0].pos + OLIGO // 2) < 4).all()]
    pick.sort(key=lambda c: (c[1], c[0].pos))
    refs, alts = [], []
    for v, _ in pick:
        o = LETTERS[genome.codes(v.chrom, v.pos - OLIGO // 2, v.pos + OLIGO // 2)].tobytes().decode()
        refs.append(o)
        alts.append(o[:OLIGO // 2] + v.alts[0] + o[OLIGO // 2 + 1:])
    a = mpra_activity(refs, alts).reshape(-1, 2)
    a_ref, a_alt = a[:, 0], (a[:, 1] if params.variant_effects else a[:, 0])
    true = np.log2(a_ref / a_alt)
    obs = true + rng.normal(0, params.mpra_noise, len(pick))
    level = np.log2(np.maximum(a_ref, a_alt)) + rng.normal(0, params.mpra_noise, len(pick))
    active = level >= np.quantile(level, 1 - params.mpra_active_fraction) if len(pick) else level
    emvar = active & (np.abs(obs) >= params.emvar_z * params.mpra_noise)
    rows = [[v.id, v.chrom, v.pos + 1, r, al, f"{ob:.6g}", int(e), int(ac), f"{t:.6g}",
             f"{ar:.6g}", f"{aa:.6g}", lid]
            for (v, lid), r, al, ob, e, ac, t, ar, aa in
            zip(pick, refs, alts, obs, emvar, active, true, a_ref, a_alt)]
    _write_tsv(path, MPRA_COLUMNS, rows)
    return len(rows), int(emvar.sum())


LOCI_COLUMNS = ["locus_id", "chrom", "start", "end", "centre", "fold", "span_start",
                "span_end", "tss_plus", "tss_minus", "ref_plus", "ref_minus", "n_snps", "motifs"]


def write_loci(path: Path, loci: list[dict]) -> Path:
    return _write_tsv(path, LOCI_COLUMNS, [[d[c] for c in LOCI_COLUMNS] for d in loci])

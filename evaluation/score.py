"""Variant-effect scoring for any SNP list: the tool to prioritise SNPs for validation.

    from evaluation.score import score_snps
    ranked = score_snps("gwas.vcf.gz", "hg38.fa", predictor)          # or a TSV / DataFrame
    ranked.head()   # variant_id chrom pos ref alt q_ref q_alt log2_quantity_ratio profile_l2
                    # strand_balance_change rank

For each biallelic SNP, the reference window of the predictor's input length is cut from the
FASTA (pysam, through clipstore.fasta) with the SNP at index input_length // 2, the alternative window differs only
there; both are encoded homozygous (2 x one-hot, the models' scale) and predicted in the same
batch. Scores (alt relative to ref):

    log2_quantity_ratio     log2((q_alt + 1e-6) / (q_ref + 1e-6))
    profile_l2              L2 norm of profile(alt) - profile(ref)
    strand_balance_change   directionality(alt) - directionality(ref), directionality =
                            log1p(plus sum) - log1p(minus sum)

Rows are ranked by |score| of `rank_by` (rank 1 = strongest). Variants that are not SNPs, sit
on a contig the FASTA lacks, fall off its records, or whose REF disagrees with it are left out
and counted in `ranked.attrs["skipped"]`; if most REF alleles disagree the FASTA is probably
another genome build and it is an InputError. Reverse-complement averaging and ensembles are properties of the predictor
(`evaluation.predictor.load_model(paths, rc_average=True)`).
"""
from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from clipstore.encoding import one_hot
from clipstore.errors import InputError
from clipstore.paths import open_text
from clipstore.prefetch import prefetched

from .metrics import directionality
from .layouts import SNP_COLUMNS, snp_columns_help
from .predictor import Predictor, check_predictor

log = logging.getLogger(__name__)
PSEUDO = 1e-6
SCORE_COLUMNS = ("log2_quantity_ratio", "profile_l2", "strand_balance_change")


# ---- SNP lists --------------------------------------------------------------------------
def read_snps(path: str | Path) -> pd.DataFrame:
    """A SNP list -> DataFrame(variant_id, chrom, pos (1-based), ref, alt), one row per
    alternative allele (multi-allelic records are split). Recognised by content, not name:

    * VCF/BCF (a `##fileformat=VCF` header, plain, gzipped or bgzipped): read with cyvcf2;
    * any tab-separated table with a header row, names in any case (`SNP_COLUMNS`): e.g. a
      VCF-like hQTL table (`Chr Pos ID Ref Alt Beta ...`, Grubert 2015) or a bare
      `#CHROM POS ID REF ALT` list.
    """
    path = str(path)
    if not os.path.exists(path):
        raise InputError("SNP list not found", file=path)
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:3] == b"BCF" or (head[:2] == b"\x1f\x8b" and _gz_head(path).startswith(b"BCF")):
        return _read_vcf(path)
    first = _gz_head(path) if head[:2] == b"\x1f\x8b" else head
    if first.startswith(b"##fi"):
        return _read_vcf(path)
    return _read_tsv(path)


def _gz_head(path: str) -> bytes:
    try:
        with gzip.open(path, "rb") as f:
            return f.read(16)
    except OSError as e:
        raise InputError(f"cannot read the gzip stream ({e})", file=path)


def _read_vcf(path: str) -> pd.DataFrame:
    from cyvcf2 import VCF

    try:
        v = VCF(path, lazy=True)
    except Exception as e:          # cyvcf2 raises a bare Exception for a header htslib refuses
        if not str(path).lower().endswith(".bcf"):
            return _read_tsv(path)  # e.g. a sites-only list with fewer than 8 columns
        raise InputError(f"not a readable VCF/BCF ({e})", file=path,
                         hint="check the header; bgzip -t FILE tests a compressed one")
    rows = []
    for rec in v:
        chrom, pos, ref = rec.CHROM, rec.POS, rec.REF.upper()
        for alt in rec.ALT or ["."]:
            rid = rec.ID or f"{chrom}:{pos}:{ref}:{alt.upper()}"
            rows.append((rid, chrom, int(pos), ref, alt.upper()))
    v.close()
    return pd.DataFrame(rows, columns=["variant_id", "chrom", "pos", "ref", "alt"])


def _meta_lines(path: str) -> int:
    """Leading `##` lines (a VCF's meta-information) to skip before the header row."""
    import itertools

    with open_text(path) as f:
        return sum(1 for _ in itertools.takewhile(lambda line: line.startswith("##"), f))


def _read_tsv(path: str) -> pd.DataFrame:
    try:
        t = pd.read_csv(path, sep="\t", dtype=str, compression="infer", skiprows=_meta_lines(path))
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as e:
        raise InputError(f"cannot parse as a tab-separated table ({e})", file=path)
    lower = {c.lower(): c for c in t.columns}
    cols = {}
    for key, names in SNP_COLUMNS.items():
        hit = next((lower[n] for n in names if n in lower), None)
        if hit is None and key != "variant_id":
            raise InputError(f"SNP table has no {key} column", file=path,
                             record=f"header: {' '.join(map(str, t.columns[:8]))}",
                             hint="a VCF (with its ##fileformat line) or a tab-separated table "
                                  "with a header naming " + snp_columns_help())
        cols[key] = hit
    out = pd.DataFrame({k: t[c] for k, c in cols.items() if c is not None})
    bad = ~out["pos"].astype(str).str.fullmatch(r"\d+")
    if bad.any():
        raise InputError("pos must be a positive integer", file=path,
                         record=f"row {int(np.flatnonzero(bad)[0]) + 2}")
    out["pos"] = out["pos"].astype(np.int64)
    out["ref"] = out["ref"].str.upper()
    out["alt"] = out["alt"].str.upper().str.split(",")
    out = out.explode("alt", ignore_index=True)
    made = out["chrom"] + ":" + out["pos"].astype(str) + ":" + out["ref"] + ":" + out["alt"]
    if "variant_id" not in out:
        out["variant_id"] = made
    else:
        out["variant_id"] = out["variant_id"].where(~out["variant_id"].isin([".", ""]) &
                                                    out["variant_id"].notna(), made)
    return out[["variant_id", "chrom", "pos", "ref", "alt"]]


# ---- reference --------------------------------------------------------------------------
class Reference:
    """The reference FASTA through clipstore.fasta (pysam: plain or bgzipped, .fai/.gzi), with
    chr-prefix tolerance and region-named records (`22:20000001-21000000` is read as that
    slice of contig 22, as `samtools faidx` writes it)."""

    def __init__(self, path: str | Path):
        from clipstore import fasta

        self.path = str(path)
        self.fa = fasta.open_fasta(self.path)
        self.contigs: dict[str, tuple[str, int, int]] = {   # chrom -> (record, offset, length)
            c.name: (c.record, c.offset, c.length) for c in fasta.contigs_of(self.fa).values()}

    def contig(self, chrom: str) -> tuple[str, int, int] | None:
        if chrom in self.contigs:
            return self.contigs[chrom]
        alt = chrom[3:] if chrom.startswith("chr") else f"chr{chrom}"
        return self.contigs.get(alt)

    def fetch(self, chrom: str, start: int, end: int) -> str | None:
        """Upper-case bases of 0-based [start, end) or None when the window leaves the record."""
        c = self.contig(chrom)
        if c is None:
            return None
        rec, off, n = c
        if start - off < 0 or end - off > n:
            return None
        return self.fa.fetch(reference=rec, start=start - off, end=end - off).upper()


# ---- scoring ----------------------------------------------------------------------------
def prepare(snps: pd.DataFrame, ref: Reference, input_length: int) -> tuple[pd.DataFrame, dict]:
    """Keep SNPs the FASTA can score; return (kept rows with their window start, skip counts)."""
    half = input_length // 2
    skipped = {"not_snp": 0, "no_contig": 0, "off_fasta": 0, "ref_mismatch": 0}
    keep, starts = [], []
    is_snp = snps["ref"].str.fullmatch("[ACGT]") & snps["alt"].str.fullmatch("[ACGT]") & (snps["ref"] != snps["alt"])
    for i, (chrom, pos, r, ok) in enumerate(zip(snps["chrom"].astype(str), snps["pos"], snps["ref"], is_snp)):
        if not ok:
            skipped["not_snp"] += 1
            continue
        p0 = int(pos) - 1
        c = ref.contig(chrom)
        if c is None:
            skipped["no_contig"] += 1
            continue
        if p0 - half < c[1] or p0 - half + input_length > c[1] + c[2]:
            skipped["off_fasta"] += 1
            continue
        base = ref.fetch(chrom, p0, p0 + 1)
        if base != r:
            skipped["ref_mismatch"] += 1
            continue
        keep.append(i)
        starts.append(p0 - half)
    checked = skipped["ref_mismatch"] + len(keep)
    if checked and skipped["ref_mismatch"] > 0.5 * checked:
        raise InputError(f"REF disagrees with the FASTA for {skipped['ref_mismatch']} of {checked} "
                         "SNPs", file=ref.path, hint="is the SNP list on the same genome build?")
    out = snps.iloc[keep].reset_index(drop=True).assign(window_start=np.asarray(starts, np.int64))
    return out, skipped


def why_none_scored(snps: pd.DataFrame, ref: Reference, skipped: dict, L: int) -> str:
    """Why not one SNP could be scored: no overlap, contig naming or assembly."""
    chroms = sorted(set(snps["chrom"].astype(str)))
    have = [c for c in chroms if ref.contig(c) is not None]
    show = lambda xs: ", ".join(xs[:5]) + (f" ... ({len(xs)} in all)" if len(xs) > 5 else "")
    if skipped.get("not_snp") == len(snps):
        return f"none of the {len(snps)} variants is a biallelic SNP (indels and N are not scored)"
    if not have:
        return (f"no SNP is on a contig of the FASTA: the SNPs are on {show(chroms)}, the FASTA "
                f"has {show(list(ref.contigs))} (contig naming, or a FASTA of other chromosomes)")
    spans = ", ".join(f"{c} {ref.contig(c)[1] + 1}-{ref.contig(c)[1] + ref.contig(c)[2]}" for c in have[:5])
    return (f"no SNP on the shared contig(s) lies where the FASTA has the {L} bp window the "
            f"model needs (FASTA covers {spans}; {skipped.get('off_fasta', 0)} SNPs off it, "
            f"{skipped.get('ref_mismatch', 0)} with a REF mismatch): another assembly, or a "
            "FASTA slice that does not cover the SNPs?")


def _batches(snps: pd.DataFrame, ref: Reference, L: int, batch_size: int
             ) -> Iterator[np.ndarray]:
    """(2B, L, 4) uint8: B reference windows then their B alternative windows."""
    half = L // 2
    for s in range(0, len(snps), batch_size):
        part = snps.iloc[s:s + batch_size]
        seqs = np.frombuffer("".join(ref.fetch(c, int(w), int(w) + L) for c, w in
                                     zip(part["chrom"].astype(str), part["window_start"])).encode("ascii"),
                             np.uint8).reshape(len(part), L)
        x = one_hot(seqs.reshape(-1)).reshape(len(part), L, 4)
        alt = x.copy()
        alt[:, half] = one_hot(part["alt"].str.cat().encode("ascii"))
        yield np.concatenate([x, alt]) * np.uint8(2)


def score_snps(snps: str | Path | pd.DataFrame, fasta: str | Path | Reference, predictor: Predictor,
               *, batch_size: int = 128, rank_by: str = "log2_quantity_ratio",
               progress: bool = False) -> pd.DataFrame:
    """Score and rank SNPs (see module doc). `snps` is a VCF/TSV path or a DataFrame with
    chrom, pos (1-based), ref, alt [, variant_id]."""
    check_predictor(predictor)
    if rank_by not in SCORE_COLUMNS:
        raise ValueError(f"rank_by must be one of {SCORE_COLUMNS}")
    table = read_snps(snps) if not isinstance(snps, pd.DataFrame) else snps.copy()
    if "variant_id" not in table:
        table["variant_id"] = [f"{c}:{p}:{r}:{a}" for c, p, r, a in
                               zip(table["chrom"], table["pos"], table["ref"], table["alt"])]
    table["ref"], table["alt"] = table["ref"].str.upper(), table["alt"].str.upper()
    ref = fasta if isinstance(fasta, Reference) else Reference(fasta)
    L = int(predictor.input_length)
    kept, skipped = prepare(table, ref, L)
    if len(table) and not len(kept):
        raise InputError(why_none_scored(table, ref, skipped, L), file=ref.path,
                         hint="check that the SNP list and the FASTA use the same assembly and "
                              "contig names (chr-prefixes are matched either way)")
    if sum(skipped.values()):
        log.warning("left out %s", ", ".join(f"{v} {k}" for k, v in skipped.items() if v))
    n = len(kept)
    cols = {k: np.empty(n, np.float64) for k in ("q_ref", "q_alt", *SCORE_COLUMNS)}
    # the next batch's windows are cut in a thread while the model runs on this one
    # (TensorFlow releases the GIL; measured ~8 % of the time outside the network without it)
    it = (x for x, _ in prefetched(_batches(kept, ref, L, batch_size), lambda x: None, depth=1))
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n, unit="SNP", desc="scoring")
    i = 0
    for x in it:
        b = len(x) // 2
        p, q = predictor(x)
        p = np.asarray(p, np.float64)
        q = np.asarray(q, np.float64).reshape(-1)
        sl = slice(i, i + b)
        cols["q_ref"][sl], cols["q_alt"][sl] = q[:b], q[b:]
        cols["log2_quantity_ratio"][sl] = np.log2((q[b:] + PSEUDO) / (q[:b] + PSEUDO))
        cols["profile_l2"][sl] = np.linalg.norm(p[b:] - p[:b], axis=1)
        cols["strand_balance_change"][sl] = directionality(p[b:]) - directionality(p[:b])
        i += b
        if bar is not None:
            bar.update(b)
    if bar is not None:
        bar.close()
    out = kept.drop(columns="window_start").assign(**cols)
    order = np.argsort(-np.abs(out[rank_by].to_numpy()), kind="stable")
    out = out.iloc[order].reset_index(drop=True)
    out["rank"] = np.arange(1, n + 1)
    out.attrs["skipped"] = skipped
    return out

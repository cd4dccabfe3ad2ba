"""MPRA tables as labs publish them -> the one table `evaluation.mpra` scores.

    from evaluation import mpra_tables as mt
    t = mt.load("tewhey_counts.tsv.gz")                # layout recognised from the header
    t = mt.with_oligos(t, "hg19.fa")                   # 200 bp around each SNP, REF checked

Layouts (`FORMATS`, column names matched in any case):

    oligos   variant_id chrom pos oligo_ref oligo_alt log2fc_observed emvar active
             (the simulator's truth/mpra.tsv; oligos are the tested sequences)
    emvar    a table of calls with coordinates: chrom pos ref alt log2fc emvar active
             [variant_id] (aliases in `EMVAR_COLUMNS`); reporters are built from a FASTA
    allelic  allelic counts, one row per variant: snp_id, DNA_allele_A_1.., RNA_allele_A_1..,
             DNA_allele_B_1.., RNA_allele_B_1.. (Tewhey et al. 2016 as the Bioconductor `mpra`
             package's allelic MPRASet holds it; allele A is taken as ref)
    barcode  barcode counts, one row per barcode: variant_id, allele (ref/alt), barcode,
             DNA1.., RNA1.. (Ulirsch et al. 2016 as the `mpra` package's barcode-level example)

Count layouts are turned into calls here (`calls_from_allelic`, `calls_from_barcodes`): the
unit of replication is the replicate (barcodes are summed within one), activity =
log2((RNA CPM + 1) / (DNA CPM + 1)) per replicate, an allele is active when a one-sided t-test
says its mean activity > 0 at BH FDR < active_fdr, a variant is active when either allele is
(Tewhey 2016), and an emVar is an active variant whose replicate skew (ref - alt activity) is
non-zero at BH FDR < emvar_fdr (scipy.stats.false_discovery_control). These are approximate
calls, not the authors' published ones. CPM scaling makes activity relative to the library's
own average, which is all a count table without negative controls can say.

Reporters from coordinates follow the paper: the `oligo_length` (200) bp centred on the SNP
(SNP at index oligo_length // 2) are cut from the reference FASTA, REF is checked against it,
and `mpra.reporter_window` inserts the oligo upstream of minP in pMPRAv3.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from clipstore.errors import InputError

from .layouts import EMVAR_COLUMNS, FORMATS, TABLE_COLUMNS
from .layouts import mpra_format_help as format_help

log = logging.getLogger(__name__)
OLIGO_LENGTH = 200


def bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values; NaN stays NaN (not counted as a test)."""
    p = np.asarray(p, np.float64)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok], method="bh")
    return out


def _read(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise InputError("MPRA table not found", file=str(path))
    try:
        return pd.read_csv(path, sep="\t", dtype={"variant_id": str, "snp_id": str, "chrom": str})
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as e:
        raise InputError(f"cannot parse as a tab-separated table ({e})", file=str(path))


def detect(columns) -> str:
    """Which layout a header is (see module doc)."""
    cols = {str(c).lower() for c in columns}
    if "snp_id" in cols and any(c.startswith("dna_allele_a_") for c in cols):
        return "allelic"
    if "allele" in cols and any(c.startswith("dna") for c in cols) and any(c.startswith("rna") for c in cols):
        return "barcode"
    if {"oligo_ref", "oligo_alt"} <= cols:
        return "oligos"
    return "emvar"


def load(path: str | Path, fmt: str = "auto", **kw) -> pd.DataFrame:
    """Any layout (see module doc) -> DataFrame with variant_id chrom pos log2fc_observed emvar
    active, plus ref/alt and oligo_ref/oligo_alt where the table has them."""
    if fmt not in FORMATS:
        raise InputError(f"unknown MPRA table format {fmt!r}", hint=f"one of {', '.join(FORMATS)}")
    raw = _read(path)
    fmt = detect(raw.columns) if fmt == "auto" else fmt
    if fmt == "allelic":
        return calls_from_allelic(raw, str(path), **kw)
    if fmt == "barcode":
        return calls_from_barcodes(raw, str(path), **kw)
    return _calls_table(raw, str(path), need_oligos=fmt == "oligos")


def _calls_table(t: pd.DataFrame, path: str, need_oligos: bool) -> pd.DataFrame:
    lower = {str(c).lower(): c for c in t.columns}
    cols = {k: next((lower[n] for n in names if n in lower), None) for k, names in EMVAR_COLUMNS.items()}
    need = ["chrom", "pos", "log2fc_observed", "emvar", "active"]
    need += ["variant_id", "oligo_ref", "oligo_alt"] if need_oligos else []
    missing = [k for k in need if cols[k] is None]
    if missing:
        raise InputError(f"MPRA table lacks column(s) {', '.join(missing)}", file=path,
                         record=f"header: {' '.join(map(str, t.columns[:10]))}",
                         hint=f"expected tab-separated columns {', '.join(TABLE_COLUMNS)}; "
                              f"or a table of calls with coordinates. {format_help()}")
    out = pd.DataFrame({k: t[c] for k, c in cols.items() if c is not None})
    out["chrom"] = out["chrom"].astype(str)
    if "variant_id" not in out:
        ra = (":" + out["ref"].astype(str) + ":" + out["alt"].astype(str)) if "ref" in out and "alt" in out else ""
        out["variant_id"] = out["chrom"] + ":" + out["pos"].astype(str) + ra
    out["variant_id"] = out["variant_id"].astype(str)
    for col in ("emvar", "active"):
        v = out[col].astype(str).str.lower().map({"1": 1, "0": 0, "true": 1, "false": 0,
                                                  "1.0": 1, "0.0": 0})
        if v.isna().any():
            i = int(np.flatnonzero(v.isna())[0])
            raise InputError(f"{col} must be 0/1 or TRUE/FALSE", file=path,
                             record=f"row {i + 2} ({out['variant_id'].iloc[i]}): {out[col].iloc[i]!r}")
        out[col] = v.astype(int)
    for col in ("ref", "alt"):
        if col in out:
            out[col] = out[col].astype(str).str.upper()
    for col in ("oligo_ref", "oligo_alt"):
        if col in out:
            bad = ~out[col].astype(str).str.fullmatch(r"[ACGTNacgtn]+")
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InputError(f"{col} is not a DNA sequence", file=path,
                                 record=f"row {i + 2} ({out['variant_id'].iloc[i]})")
    return out


def _parse_id(v: str) -> tuple[str | None, float]:
    """'chr1:161556950[:I]' -> ('chr1', 161556950); '1_205247315_2-3' -> ('1', 205247315);
    rs ids -> (None, nan)."""
    for sep in (":", "_"):
        parts = v.split(sep)
        if len(parts) >= 2 and parts[1].isdigit():
            return parts[0], float(parts[1])
    return None, float("nan")


def _calls(ids: pd.Series, act_ref: np.ndarray, act_alt: np.ndarray, active_fdr: float,
           emvar_fdr: float, extra: dict) -> pd.DataFrame:
    """Calls from per-replicate activities (variants x replicates) of each allele."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p_ref = stats.ttest_1samp(act_ref, 0, axis=1, alternative="greater").pvalue
        p_alt = stats.ttest_1samp(act_alt, 0, axis=1, alternative="greater").pvalue
        p_skew = stats.ttest_1samp(act_ref - act_alt, 0, axis=1).pvalue
    q = bh(np.r_[p_ref, p_alt])
    n = len(ids)
    active = (q[:n] < active_fdr) | (q[n:] < active_fdr)
    emvar = active & (bh(p_skew) < emvar_fdr)
    loc = [_parse_id(str(v)) for v in ids]
    return pd.DataFrame({"variant_id": ids.astype(str).to_numpy(), "chrom": [c for c, _ in loc],
                         "pos": [p for _, p in loc],
                         "log2fc_observed": np.nanmean(act_ref - act_alt, 1),
                         "activity": np.nanmean((act_ref + act_alt) / 2, 1),
                         "p_active": np.fmin(p_ref, p_alt), "p_skew": p_skew,
                         "active": active.astype(int), "emvar": emvar.astype(int), **extra})


def _activity(rna: np.ndarray, dna: np.ndarray) -> np.ndarray:
    """log2((RNA CPM + 1) / (DNA CPM + 1)); columns are scaled to CPM over the whole table."""
    cpm = lambda m: m / m.sum(0) * 1e6
    return np.log2((cpm(rna) + 1) / (cpm(dna) + 1))


def calls_from_allelic(t: pd.DataFrame, path: str = "", *, active_fdr: float = 0.01,
                       emvar_fdr: float = 0.1) -> pd.DataFrame:
    """Tewhey-style allelic counts (see module doc): replicate r pairs DNA_allele_X_r with
    RNA_allele_X_r."""
    cols = {(kind, allele): sorted((c for c in t.columns if c.startswith(f"{kind}_allele_{allele}_")),
                                   key=lambda c: int(c.rsplit("_", 1)[1]) if c.rsplit("_", 1)[1].isdigit() else 0)
            for kind in ("DNA", "RNA") for allele in ("A", "B")}
    if "snp_id" not in t.columns or any(not v for v in cols.values()):
        raise InputError("not a Tewhey-style allelic count table", file=path,
                         hint="expected snp_id and DNA_allele_A_1.., RNA_allele_B_1.. columns")
    reps = len(cols[("DNA", "A")])
    if any(len(v) != reps for v in cols.values()):
        raise InputError("allelic count table has unequal replicate columns", file=path,
                         hint="each of DNA/RNA x allele A/B needs the same replicates")
    act = {a: _activity(t[cols[("RNA", a)]].to_numpy(np.float64), t[cols[("DNA", a)]].to_numpy(np.float64))
           for a in ("A", "B")}
    return _calls(t["snp_id"], act["A"], act["B"], active_fdr, emvar_fdr, {"n_replicates": reps})


def calls_from_barcodes(t: pd.DataFrame, path: str = "", *, active_fdr: float = 0.05,
                        emvar_fdr: float = 0.1) -> pd.DataFrame:
    """Ulirsch-style barcode counts (see module doc). Barcodes are summed per variant, allele
    and replicate; DNA replicates are averaged (their number may differ from RNA's), so each RNA
    replicate gives one activity per allele."""
    dna = [c for c in t.columns if str(c).upper().startswith("DNA")]
    rna = [c for c in t.columns if str(c).upper().startswith("RNA")]
    if not {"variant_id", "allele"} <= set(t.columns) or not dna or not rna:
        raise InputError("not an Ulirsch-style barcode count table", file=path,
                         hint="expected variant_id, allele, barcode, DNA1.., RNA1.. columns")
    bad = ~t["allele"].isin(["ref", "alt"])
    if bad.any():
        raise InputError("allele must be ref or alt", file=path,
                         record=f"row {int(np.flatnonzero(bad)[0]) + 2}")
    n_bc = t.groupby(["variant_id", "allele"], sort=False).size().unstack(fill_value=0)
    summed = t.groupby(["variant_id", "allele"], sort=False)[dna + rna].sum()
    ids = pd.Series(pd.unique(t["variant_id"]))
    both = ids[ids.isin(n_bc.index[(n_bc.get("ref", 0) > 0) & (n_bc.get("alt", 0) > 0)])]
    act = {}
    m = summed.to_numpy(np.float64)
    cpm = m / m.sum(0) * 1e6
    frame = pd.DataFrame(cpm, index=summed.index, columns=dna + rna)
    for allele in ("ref", "alt"):
        f = frame.xs(allele, level="allele").reindex(both)
        d = f[dna].to_numpy().mean(1, keepdims=True)
        act[allele] = np.log2((f[rna].to_numpy() + 1) / (d + 1))
    out = _calls(both.reset_index(drop=True), act["ref"], act["alt"], active_fdr, emvar_fdr,
                 {"n_barcodes_ref": n_bc.loc[both, "ref"].to_numpy(),
                  "n_barcodes_alt": n_bc.loc[both, "alt"].to_numpy()})
    out.attrs["skipped"] = {"one_allele_only": int(len(ids) - len(both))}
    if len(ids) > len(both):
        log.warning("left out %d variant(s) with barcodes for one allele only (%s)",
                    len(ids) - len(both), path)
    return out


def with_oligos(table: pd.DataFrame, fasta: str | Path, *, oligo_length: int = OLIGO_LENGTH
                ) -> tuple[pd.DataFrame, dict]:
    """Add oligo_ref/oligo_alt cut from the reference FASTA (SNP at index oligo_length // 2).

    Rows that are not biallelic SNPs, or whose oligo runs off the FASTA, are left out and
    counted (returned dict); a REF that disagrees with the FASTA is an InputError naming the
    variant (a wrong genome build or strand would otherwise be scored as real effects)."""
    from .score import Reference

    missing = [c for c in ("chrom", "pos", "ref", "alt") if c not in table]
    if missing:
        raise InputError(f"building reporters from coordinates needs column(s) {', '.join(missing)}",
                         hint="give ref and alt alleles, or a table with oligo_ref/oligo_alt")
    ref = fasta if hasattr(fasta, "fetch") and hasattr(fasta, "contig") else Reference(fasta)
    half = oligo_length // 2
    skipped = {"not_snp": 0, "off_fasta": 0}
    keep, o_ref, o_alt = [], [], []
    for i, (vid, c, p, r, a) in enumerate(zip(table["variant_id"], table["chrom"], table["pos"],
                                              table["ref"], table["alt"])):
        if not (len(str(r)) == 1 and len(str(a)) == 1 and str(r) in "ACGT" and str(a) in "ACGT"
                and r != a and np.isfinite(float(p))):
            skipped["not_snp"] += 1
            continue
        p0 = int(p) - 1
        seq = ref.fetch(str(c), p0 - half, p0 - half + oligo_length)
        if seq is None:
            skipped["off_fasta"] += 1
            continue
        if seq[half] != r:
            raise InputError(f"REF {r} of {vid} disagrees with the FASTA ({seq[half]} at "
                             f"{c}:{int(p)})", file=str(ref.path), record=str(vid),
                             hint="is the MPRA table on the FASTA's genome build (and forward strand)?")
        keep.append(i)
        o_ref.append(seq)
        o_alt.append(seq[:half] + a + seq[half + 1:])
    out = table.iloc[keep].reset_index(drop=True).assign(oligo_ref=o_ref, oligo_alt=o_alt)
    return out, skipped

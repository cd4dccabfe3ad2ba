"""MPRA benchmark: predict reporter constructs, classify emVars, compare models by bootstrap.

    from evaluation import mpra
    table = mpra.load_table("truth/mpra.tsv")          # variant_id chrom pos oligo_ref oligo_alt
                                                        # log2fc_observed emvar active
    effect = mpra.predict_effects(table, predictor)     # log2(ref / alt) of predicted quantity
    res = mpra.evaluate(table, {"personal": e1, "reference": e2}, test_fold_only=True)
    res["models"]["personal"]["auprc"], res["comparisons"][0]["p_value"]
    mpra.run(table, {"personal": predictor, "reference": e2}, "out/")   # numbers + figures

Constructs follow the paper: each oligo is inserted directly upstream of the minimal-promoter
piece of the pMPRAv3:minP-GFP reporter (sequences shipped in evaluation/data with their
source, see `Backbone`), and the model sees a window of its own input length containing the
oligo and the promoter piece (1000 bp: 330 bp 5' piece + 200 bp oligo + 470 bp downstream).
Inputs are homozygous (2 x one-hot), the scale the models train on.

Classification: emVars (emvar = 1) against active non-emVars (active = 1, emvar = 0), scored
by the squared predicted effect, as average precision (auPRC, the step-wise definition of
scikit-learn). Model comparison: 1000 bootstrap resamples of the variants, delta auPRC per
resample, two-sided p from the smaller tail around zero (see `bootstrap_delta`). Agreement: Pearson r of
predicted effect vs observed log2 fold change and the number of emVars whose predicted sign
disagrees. Observed log2FC must be log2(ref/alt) too (the sim truth and parsers here are).

Parsers for real tables (no oligo sequences, so they feed the observed side only):
`load_tewhey` (Tewhey 2016 allelic counts) and `load_ulirsch` (Ulirsch 2016 barcode counts)
derive log2FC, activity and emVar calls from counts with simple replicate t-tests + BH FDR —
approximate calls, documented in each function, not the authors' published calls.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from clipstore.errors import InputError
from clipstore.folds import TEST_FOLD, fold_of, load_fold_map

from .predictor import Predictor, check_predictor, encode_haploid, predict

TABLE_COLUMNS = ("variant_id", "chrom", "pos", "oligo_ref", "oligo_alt", "log2fc_observed",
                 "emvar", "active")
PSEUDO = 1e-6   # keeps log2(ref/alt) finite when a model predicts exactly zero


# ---- reporter constructs ----------------------------------------------------------------
@dataclass(frozen=True)
class Backbone:
    """Plasmid sequence on each side of the oligo (5'->3', oligo inserted between them)."""

    upstream: str
    downstream: str
    name: str = "custom"


def _read_fasta_text(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    name = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(">"):
            name = line[1:].split()[0]
            out[name] = ""
        elif name is not None:
            out[name] += line
    return out


@lru_cache(maxsize=1)
def load_backbone() -> Backbone:
    """pMPRAv3:minP-GFP as shipped in evaluation/data (see SOURCE.md there)."""
    text = resources.files("evaluation").joinpath("data", "pMPRAv3_minP-GFP.fa").read_text()
    rec = {k: v.upper() for k, v in _read_fasta_text(text).items()}
    return Backbone(upstream=rec["clipnet_k562_procapnet_5prime"] + rec["clipnet_k562_Sfi1_5prime"],
                    downstream=rec["clipnet_k562_minP_GFP"], name="pMPRAv3:minP-GFP")


SFI1_5PRIME = 330   # bp of the 5' piece the paper's 1 kb window keeps


def reporter_window(oligo: str, input_length: int, backbone: Backbone | None = None) -> str:
    """The input_length window of the construct that holds the oligo and the promoter piece.

    The oligo is placed (input_length - len(oligo)) // 2 bp from the window start, but never
    with more than the Sfi1 5' piece (330 bp) before it while the downstream piece lasts: for
    1000 bp and a 200 bp oligo this is 330 + 200 + 470, the paper's layout.
    """
    bb = backbone or load_backbone()
    oligo = oligo.upper()
    L, n = int(input_length), len(oligo)
    if n > L:
        raise InputError(f"oligo of {n} bp is longer than the model input ({L} bp)")
    before = min((L - n) // 2, SFI1_5PRIME if backbone is None else len(bb.upstream))
    after = L - n - before
    if after > len(bb.downstream):               # long inputs: take more 5' context instead
        before, after = L - n - len(bb.downstream), len(bb.downstream)
    if before > len(bb.upstream):
        raise InputError(f"the {bb.name} backbone is too short for a {L} bp window",
                         hint="pass a Backbone with longer flanks")
    return bb.upstream[len(bb.upstream) - before:] + oligo + bb.downstream[:after]


def predict_effects(table: pd.DataFrame, predictor: Predictor, *, backbone: Backbone | None = None,
                    batch_size: int = 128) -> np.ndarray:
    """log2(ref / alt) of the predicted quantity for each row's oligo_ref / oligo_alt."""
    check_predictor(predictor)
    L = int(predictor.input_length)
    ref = [reporter_window(s, L, backbone) for s in table["oligo_ref"]]
    alt = [reporter_window(s, L, backbone) for s in table["oligo_alt"]]
    _, q = predict(predictor, encode_haploid(ref + alt), batch_size)
    n = len(ref)
    return np.log2((q[:n].astype(np.float64) + PSEUDO) / (q[n:].astype(np.float64) + PSEUDO))


# ---- classification and comparison ------------------------------------------------------
def pr_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds) at each distinct score, highest threshold first, plus the
    (1, 0) end point — the same points as sklearn's precision_recall_curve (reversed order)."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, np.float64)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y)[last].astype(np.float64)
    fps = (last + 1) - tps
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tps / (tps + fps)
        recall = tps / tps[-1] if len(tps) and tps[-1] > 0 else np.full_like(tps, np.nan)
    return np.r_[1.0, precision], np.r_[0.0, recall], s[last]


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """auPRC as step-wise average precision: sum over thresholds of (R_n - R_n-1) * P_n.
    NaN unless there is at least one positive."""
    y = np.asarray(labels).astype(bool)
    if len(y) == 0 or not y.any():
        return float("nan")
    precision, recall, _ = pr_curve(y, scores)
    return float(np.sum(np.diff(recall) * precision[1:]))


def labels_for(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(row mask, labels): rows that are emVars or active non-emVars; label 1 = emVar."""
    em = table["emvar"].to_numpy().astype(int) == 1
    act = table["active"].to_numpy().astype(int) == 1
    keep = em | act
    return keep, em[keep]


def bootstrap_delta(labels: np.ndarray, score_a: np.ndarray, score_b: np.ndarray, *,
                    n_boot: int = 1000, seed: int = 0) -> dict:
    """Bootstrap of auPRC(a) - auPRC(b) over variants (resampled jointly for both models).

    Returns delta (on all data), mean, ci_low/ci_high (2.5/97.5 %), p_value (two-sided
    Monte-Carlo: 2 x (min(#d <= 0, #d >= 0) + 1) / (n + 1), capped at 1, so never 0; with 1000
    resamples the smallest is ~0.002), n_boot (valid resamples) and `deltas`.
    """
    y = np.asarray(labels).astype(bool)
    a, b = np.asarray(score_a, np.float64), np.asarray(score_b, np.float64)
    if not (len(y) == len(a) == len(b)):
        raise ValueError("labels and scores must have the same length")
    rng = np.random.default_rng(seed)
    deltas = np.full(n_boot, np.nan)
    for i in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        yi = y[idx]
        if yi.any() and not yi.all():
            deltas[i] = average_precision(yi, a[idx]) - average_precision(yi, b[idx])
    d = deltas[np.isfinite(deltas)]
    tail = min(int(np.sum(d <= 0)), int(np.sum(d >= 0)))
    p = min(1.0, 2 * (tail + 1) / (len(d) + 1)) if len(d) else float("nan")
    return {"delta": average_precision(y, a) - average_precision(y, b),
            "mean": float(d.mean()) if len(d) else float("nan"),
            "ci_low": float(np.percentile(d, 2.5)) if len(d) else float("nan"),
            "ci_high": float(np.percentile(d, 97.5)) if len(d) else float("nan"),
            "p_value": float(p), "n_boot": int(len(d)), "deltas": d}


def agreement(effect: np.ndarray, log2fc: np.ndarray, emvar: np.ndarray | None = None) -> dict:
    """Pearson r (all rows) of predicted effect vs observed log2FC; sign mismatches among emVars
    (all rows when `emvar` is None)."""
    from .crossloci import pearson

    e, o = np.asarray(effect, np.float64), np.asarray(log2fc, np.float64)
    sub = np.ones(len(e), bool) if emvar is None else np.asarray(emvar).astype(int) == 1
    sub &= np.isfinite(e) & np.isfinite(o)
    mism = int(np.sum(np.sign(e[sub]) != np.sign(o[sub])))
    return {"pearson_r": pearson(e, o), "n_sign_compared": int(sub.sum()),
            "sign_mismatches": mism,
            "sign_mismatch_share": mism / sub.sum() if sub.sum() else float("nan")}


def test_fold_rows(table: pd.DataFrame, fold_map: Mapping[str, int] | None = None) -> np.ndarray:
    """Boolean mask of rows on test-fold chromosomes (CLIPNET fold 0 by default)."""
    fmap = dict(fold_map) if fold_map is not None else load_fold_map()
    return np.array([fold_of(str(c), fmap) == TEST_FOLD for c in table["chrom"]], bool)


def evaluate(table: pd.DataFrame, effects: Mapping[str, np.ndarray], *, test_fold_only: bool = False,
             n_boot: int = 1000, seed: int = 0, fold_map: Mapping[str, int] | None = None) -> dict:
    """auPRC + PR curve + agreement per model, and bootstrap delta auPRC for every model pair.

    `effects` maps model name -> log2(ref/alt) per row of `table` (from `predict_effects` or any
    other tool). Returns {"n_variants", "n_emvar", "n_active_non_emvar", "models": {name:
    {...}}, "comparisons": [{"a", "b", delta, p_value, ...}]} (bootstrap deltas kept under
    "deltas" for figures).
    """
    rows = np.ones(len(table), bool)
    if test_fold_only:
        rows = test_fold_rows(table, fold_map)
    t = table.loc[rows].reset_index(drop=True)
    keep, y = labels_for(t)
    out: dict = {"n_variants": int(len(t)), "n_emvar": int(y.sum()),
                 "n_active_non_emvar": int((~y).sum()), "test_fold_only": bool(test_fold_only),
                 "models": {}, "comparisons": []}
    sq = {}
    for name, e in effects.items():
        e = np.asarray(e, np.float64)
        if len(e) != len(table):
            raise ValueError(f"effects for {name!r} have {len(e)} rows, table has {len(table)}")
        e = e[rows]
        sq[name] = e[keep] ** 2
        precision, recall, _ = pr_curve(y, sq[name]) if len(y) else (np.array([]),) * 3
        out["models"][name] = {"auprc": average_precision(y, sq[name]),
                               "precision": precision, "recall": recall,
                               **agreement(e, t["log2fc_observed"].to_numpy(), t["emvar"].to_numpy())}
    names = list(effects)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            out["comparisons"].append({"a": a, "b": b, **bootstrap_delta(
                y, sq[a], sq[b], n_boot=n_boot, seed=seed)})
    return out


# ---- tables -----------------------------------------------------------------------------
def load_table(path: str | Path) -> pd.DataFrame:
    """An MPRA table with oligos (TSV; the simulator's truth/mpra.tsv format, TABLE_COLUMNS)."""
    path = Path(path)
    try:
        t = pd.read_csv(path, sep="\t", dtype={"chrom": str, "variant_id": str})
    except FileNotFoundError:
        raise InputError("MPRA table not found", file=str(path))
    missing = [c for c in TABLE_COLUMNS if c not in t.columns]
    if missing:
        raise InputError(f"MPRA table lacks column(s) {', '.join(missing)}", file=str(path),
                         hint=f"expected tab-separated columns {', '.join(TABLE_COLUMNS)}")
    for col in ("oligo_ref", "oligo_alt"):
        bad = ~t[col].astype(str).str.fullmatch(r"[ACGTNacgtn]+")
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"{col} is not a DNA sequence", file=str(path),
                             record=f"row {i + 2} ({t['variant_id'].iloc[i]})")
    return t


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN kept)."""
    p = np.asarray(p, np.float64)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    q = p[ok]
    order = np.argsort(q)
    ranked = q[order] * len(q) / np.arange(1, len(q) + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    res = np.empty_like(q)
    res[order] = np.clip(ranked, 0, 1)
    out[ok] = res
    return out


def _parse_id(v: str) -> tuple[str | None, float]:
    """'chr1:161556950[:I]' -> ('chr1', 161556950); '1_205247315_2-3' -> ('1', 205247315);
    rs ids -> (None, nan)."""
    for sep in (":", "_"):
        parts = v.split(sep)
        if len(parts) >= 2 and parts[1].isdigit():
            return parts[0], float(parts[1])
    return None, float("nan")


def load_tewhey(path: str | Path, *, active_fdr: float = 0.01, emvar_fdr: float = 0.1) -> pd.DataFrame:
    """Tewhey et al. 2016 allelic counts (snp_id, DNA/RNA_allele_A/B_1..5).

    Per replicate, counts are scaled to counts per million; allele activity = log2((RNA + 1) /
    (DNA + 1)); log2fc_observed = mean over replicates of activity(A) - activity(B) (A taken as
    ref); active = BH FDR < active_fdr of a one-sided t-test that mean activity > 0; emvar =
    active and BH FDR < emvar_fdr of a t-test that the skew != 0.
    """
    path = Path(path)
    try:
        t = pd.read_csv(path, sep="\t")
    except FileNotFoundError:
        raise InputError("MPRA count table not found", file=str(path))
    cols = {(kind, allele): sorted(c for c in t.columns if c.startswith(f"{kind}_allele_{allele}_"))
            for kind in ("DNA", "RNA") for allele in ("A", "B")}
    if "snp_id" not in t.columns or any(not v for v in cols.values()):
        raise InputError("not a Tewhey-style allelic count table", file=str(path),
                         hint="expected snp_id and DNA_allele_A_1.., RNA_allele_B_1.. columns")
    reps = len(cols[("DNA", "A")])
    act = {}
    for allele in ("A", "B"):
        d = t[cols[("DNA", allele)]].to_numpy(np.float64)
        r = t[cols[("RNA", allele)]].to_numpy(np.float64)
        d = d / d.sum(0) * 1e6
        r = r / r.sum(0) * 1e6
        act[allele] = np.log2((r + 1) / (d + 1))        # (variants, replicates)
    skew = act["A"] - act["B"]
    mean_act = (act["A"] + act["B"]) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        p_act = stats.ttest_1samp(mean_act, 0, axis=1, alternative="greater").pvalue
        p_skew = stats.ttest_1samp(skew, 0, axis=1).pvalue
    active = _bh(p_act) < active_fdr
    emvar = active & (_bh(p_skew) < emvar_fdr)
    ids = t["snp_id"].astype(str)
    loc = [_parse_id(v) for v in ids]
    return pd.DataFrame({"variant_id": ids, "chrom": [c for c, _ in loc],
                         "pos": [p for _, p in loc], "log2fc_observed": skew.mean(1),
                         "activity": mean_act.mean(1), "p_active": p_act, "p_skew": p_skew,
                         "active": active.astype(int), "emvar": emvar.astype(int),
                         "n_replicates": reps})


def load_ulirsch(path: str | Path, *, active_fdr: float = 0.05, emvar_fdr: float = 0.1) -> pd.DataFrame:
    """Ulirsch et al. 2016 barcode counts (variant_id, allele ref/alt, barcode, DNA*, RNA*).

    Columns are scaled to counts per million; each barcode's activity = log2((mean RNA + 1) /
    (mean DNA + 1)); log2fc_observed = mean ref activity - mean alt activity; active = BH FDR <
    active_fdr of a one-sided t-test over all barcodes that activity > 0; emvar = active and BH
    FDR < emvar_fdr of a Welch t-test ref vs alt barcodes.
    """
    path = Path(path)
    try:
        t = pd.read_csv(path, sep="\t", dtype={"variant_id": str})
    except FileNotFoundError:
        raise InputError("MPRA count table not found", file=str(path))
    dna = [c for c in t.columns if c.startswith("DNA")]
    rna = [c for c in t.columns if c.startswith("RNA")]
    if not {"variant_id", "allele"} <= set(t.columns) or not dna or not rna:
        raise InputError("not an Ulirsch-style barcode count table", file=str(path),
                         hint="expected variant_id, allele, barcode, DNA1.., RNA1.. columns")
    bad = ~t["allele"].isin(["ref", "alt"])
    if bad.any():
        raise InputError("allele must be ref or alt", file=str(path),
                         record=f"row {int(np.flatnonzero(bad)[0]) + 2}")
    cpm = lambda cols: (t[cols] / t[cols].sum(0) * 1e6).mean(1).to_numpy()
    t = t.assign(activity=np.log2((cpm(rna) + 1) / (cpm(dna) + 1)))
    rows = []
    for vid, g in t.groupby("variant_id", sort=False):
        r = g.loc[g["allele"] == "ref", "activity"].to_numpy()
        a = g.loc[g["allele"] == "alt", "activity"].to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            p_act = stats.ttest_1samp(g["activity"], 0, alternative="greater").pvalue
            p_skew = stats.ttest_ind(r, a, equal_var=False).pvalue if len(r) > 1 and len(a) > 1 else np.nan
        c, p = _parse_id(str(vid))
        rows.append({"variant_id": vid, "chrom": c, "pos": p,
                     "log2fc_observed": r.mean() - a.mean() if len(r) and len(a) else np.nan,
                     "activity": g["activity"].mean(), "p_active": p_act, "p_skew": p_skew,
                     "n_barcodes_ref": len(r), "n_barcodes_alt": len(a)})
    out = pd.DataFrame(rows)
    out["active"] = (_bh(out["p_active"].to_numpy()) < active_fdr).astype(int)
    out["emvar"] = ((out["active"] == 1) & (_bh(out["p_skew"].to_numpy()) < emvar_fdr)).astype(int)
    return out


# ---- one call: numbers and figures ------------------------------------------------------
def run(table: pd.DataFrame | str | Path, models: Mapping[str, "Predictor | np.ndarray"],
        out_dir: str | Path, *, test_fold_only: bool = False, n_boot: int = 1000, seed: int = 0,
        backbone: Backbone | None = None) -> dict:
    """Evaluate and write everything to `out_dir`: mpra_effects.tsv, mpra_models.json,
    mpra_comparisons.json, PR curves, delta-auPRC histograms and observed-vs-predicted
    scatters. `models` maps name -> Predictor (effects predicted here) or an effect array."""
    from . import figures
    from .figures import write_json

    t = load_table(table) if not isinstance(table, pd.DataFrame) else table
    effects = {name: (np.asarray(m, np.float64) if isinstance(m, (np.ndarray, list, pd.Series))
                      else predict_effects(t, m, backbone=backbone)) for name, m in models.items()}
    res = evaluate(t, effects, test_fold_only=test_fold_only, n_boot=n_boot, seed=seed)
    o = Path(out_dir)
    o.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"variant_id": t["variant_id"], **effects}).to_csv(
        o / "mpra_effects.tsv", sep="\t", index=False)
    rows = [{"model": k, **{kk: vv for kk, vv in v.items() if kk not in ("precision", "recall")}}
            for k, v in res["models"].items()]
    write_json(o / "mpra_models.json", rows)
    comps = [{kk: vv for kk, vv in c.items() if kk != "deltas"} for c in res["comparisons"]]
    if comps:
        write_json(o / "mpra_comparisons.json", comps)
    n_all = res["n_emvar"] + res["n_active_non_emvar"]
    figures.pr_curves({k: (v["precision"], v["recall"], v["auprc"]) for k, v in res["models"].items()},
                      o / "mpra_pr", baseline=res["n_emvar"] / n_all if n_all else None)
    for c in res["comparisons"]:
        figures.delta_auprc(c["deltas"], o / f"mpra_delta_{c['a']}_vs_{c['b']}",
                            label=f"{c['a']} - {c['b']}", delta=c["delta"], p_value=c["p_value"])
    rows_used = test_fold_rows(t) if test_fold_only else np.ones(len(t), bool)
    for k, e in effects.items():
        figures.density_scatter(t["log2fc_observed"].to_numpy()[rows_used], e[rows_used],
                                o / f"mpra_scatter_{k}", xlabel="observed log2FC",
                                ylabel="predicted log2(ref/alt)", title=k)
    res["effects"] = effects
    return res

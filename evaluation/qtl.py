"""Initiation-QTL benchmark (tiQTL quantity, diQTL directionality), observed vs predicted.

    from evaluation import qtl
    qtls = qtl.load_qtls("truth/qtls.tsv")                    # or a Grubert-style hQTL table
    scores, summary = qtl.evaluate_store("store.zarr", qtls, {0: ensemble, 1: rep1, ..., 9: rep9})
    summary["pearson_r"], summary["share_no_effect"], summary["by_kind"]["ti"]["pearson_r"]
    qtl.run("store.zarr", "truth/qtls.tsv", predictors, "out/")   # + qtl_scores.tsv, figures

For each QTL, individuals are grouped by genotype at the SNP (read from the store's two-hot
sequences, or from a VCF); the mean track of the hom-ref individuals minus the mean track of
the hom-alt individuals, as an L2 norm, is the QTL's score — once with observed tracks (each
individual's libraries averaged, reads per million by default) and once with predicted tracks
(each individual's own genome from the store, predicted by the model). Reported: Pearson r of
predicted vs observed scores (overall and per kind), and the share of QTLs predicted as no
effect.

Only SNPs the model sees are scored: a QTL whose position lies outside the predictor's input
window (centred in the stored window, `input_slice`) would get pred_l2 = 0 by construction and
count as "no effect"; such QTLs are left out and counted (`summary["left_out"]`).

"No effect" is defined explicitly: predicted L2 score <= `no_effect_tol` (default 1e-6, in
predicted counts: the hom-ref and hom-alt mean predicted tracks are identical to float32
precision). The threshold is a parameter (`--no-effect-tol`) and is recorded in the summary.

No leakage: `predictors` maps fold -> Predictor; a QTL whose locus is on fold 0 is predicted by
the ensemble (key 0), one on fold k by replicate k only. A single Predictor is used for all.

The core, `l2_score(tracks, genotypes)`, works on plain arrays, so any tool's tracks can be
scored the same way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from clipstore import layout
from clipstore.errors import InputError
from clipstore.schema import store_info, window_starts

from .metrics import directionality, pearson
from .predictor import Predictor, check_predictor, predict, tracks

QTL_COLUMNS = ("variant_id", "chrom", "pos", "ref", "alt", "locus_id", "kind", "effect")
BASE_INDEX = {b: i for i, b in enumerate("ACGT")}


# ---- tables -----------------------------------------------------------------------------
def load_qtls(path: str | Path) -> pd.DataFrame:
    """A QTL table -> DataFrame(QTL_COLUMNS). Two formats are recognised:

    * the simulator's truth/qtls.tsv: variant_id chrom pos ref alt locus_id kind true_effect ...
    * a VCF-like hQTL table (Grubert 2015): Chr Pos ID Ref Alt Beta P.value ... (no locus_id:
      `locate` assigns the store locus whose window holds the SNP; kind = "ti").
    """
    path = Path(path)
    try:
        t = pd.read_csv(path, sep="\t", dtype={"chrom": str, "Chr": str, "locus_id": str})
    except FileNotFoundError:
        raise InputError("QTL table not found", file=str(path))
    if {"variant_id", "chrom", "pos", "ref", "alt"} <= set(t.columns):
        out = pd.DataFrame({"variant_id": t["variant_id"].astype(str), "chrom": t["chrom"],
                            "pos": t["pos"], "ref": t["ref"], "alt": t["alt"],
                            "locus_id": t["locus_id"] if "locus_id" in t else None,
                            "kind": t["kind"] if "kind" in t else "ti",
                            "effect": t["true_effect"] if "true_effect" in t
                            else t.get("effect", np.nan)})
    elif {"Chr", "Pos", "Ref", "Alt"} <= set(t.columns):
        out = pd.DataFrame({"variant_id": t["ID"].astype(str) if "ID" in t
                            else t["Chr"] + ":" + t["Pos"].astype(str),
                            "chrom": t["Chr"], "pos": t["Pos"], "ref": t["Ref"], "alt": t["Alt"],
                            "locus_id": None, "kind": "ti", "effect": t.get("Beta", np.nan)})
    else:
        raise InputError("unrecognised QTL table", file=str(path),
                         hint="expected variant_id chrom pos ref alt [locus_id kind] or "
                              "Chr Pos ID Ref Alt Beta columns, tab-separated")
    bad = ~(out["ref"].astype(str).str.fullmatch("[ACGTacgt]") & out["alt"].astype(str).str.fullmatch("[ACGTacgt]"))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError("QTLs must be biallelic SNPs", file=str(path),
                         record=f"row {first + 2} ({out['variant_id'].iloc[first]})")
    out["ref"], out["alt"] = out["ref"].str.upper(), out["alt"].str.upper()
    out["pos"] = out["pos"].astype(np.int64)
    if not out["kind"].isin(["ti", "di"]).all():
        raise InputError("kind must be ti or di", file=str(path))
    return out


# ---- scoring core -----------------------------------------------------------------------
def l2_score(tracks: np.ndarray, genotypes: np.ndarray) -> float:
    """||mean(tracks of hom-ref) - mean(tracks of hom-alt)||_2; NaN without both groups.

    tracks (n_individuals, T); genotypes (n_individuals,) alt-allele dosage 0/1/2 (NaN =
    unknown, ignored).
    """
    g = np.asarray(genotypes, np.float64)
    t = np.asarray(tracks, np.float64)
    ref, alt = g == 0, g == 2
    if not ref.any() or not alt.any():
        return float("nan")
    return float(np.linalg.norm(t[ref].mean(0) - t[alt].mean(0)))


def group_effects(tracks: np.ndarray, genotypes: np.ndarray) -> dict[str, float]:
    """L2 score plus signed summaries: log2 ratio of group-mean quantity (alt/ref, log1p) and
    change in directionality (alt - ref)."""
    g = np.asarray(genotypes, np.float64)
    t = np.asarray(tracks, np.float64)
    ref, alt = g == 0, g == 2
    if not ref.any() or not alt.any():
        return {"l2": np.nan, "log_quantity_change": np.nan, "directionality_change": np.nan}
    mr, ma = t[ref].mean(0, keepdims=True), t[alt].mean(0, keepdims=True)
    return {"l2": float(np.linalg.norm(mr - ma)),
            "log_quantity_change": float(np.log1p(ma.sum()) - np.log1p(mr.sum())),
            "directionality_change": float(directionality(ma)[0] - directionality(mr)[0])}


NO_EFFECT_TOL = 1e-6


def input_slice(info, input_length: int) -> slice:
    """The predictor's input inside a stored sequence window, as the reader cuts it (the
    store's one geometry, `clipstore.schema.window_starts`); an InputError when it cannot fit."""
    a = int(window_starts(info, int(input_length), int(input_length))[0])
    if a < 0 or a + int(input_length) > info.window:
        raise InputError(f"model input of {input_length} bp is longer than the store's window "
                         f"({info.window} bp)", hint="use a model with a shorter input")
    return slice(a, a + int(input_length))


def summarise(scores: pd.DataFrame, *, no_effect_tol: float = NO_EFFECT_TOL) -> dict:
    """Pearson r of pred_l2 vs obs_l2 (overall and per kind) and the share predicted as no
    effect (pred_l2 <= no_effect_tol), over QTLs with both scores."""
    def one(s: pd.DataFrame) -> dict:
        ok = s["obs_l2"].notna() & s["pred_l2"].notna()
        s = s[ok]
        return {"n": int(len(s)), "pearson_r": pearson(s["pred_l2"], s["obs_l2"]),
                "share_no_effect": float((s["pred_l2"] <= no_effect_tol).mean()) if len(s) else float("nan")}
    out = one(scores)
    out["no_effect_definition"] = f"pred_l2 <= {no_effect_tol:g}"
    out["by_kind"] = {k: one(g) for k, g in scores.groupby("kind")}
    if "model" in scores:
        out["by_model"] = {k: one(g) for k, g in scores.groupby("model")}
    return out


def composite_model(fold: int, predictors: Mapping[int, Predictor]) -> int | None:
    """Which predictor may score a QTL on `fold` without leakage: 0 (ensemble) for the test
    fold, replicate k for fold k; None when that model is not given."""
    return int(fold) if int(fold) in predictors else None


# ---- store plumbing ---------------------------------------------------------------------
def _norm(c: str) -> str:
    c = str(c)
    return c[3:] if c.startswith("chr") else c


def locate(qtls: pd.DataFrame, root) -> pd.DataFrame:
    """Add `locus` (store index), `offset` (0-based position in the stored window) and `fold`;
    QTLs with no locus_id get the locus whose window holds them (nearest centre). Rows that
    fall in no locus are dropped."""
    ids = root["locus_id"][:]
    chrom = np.array([_norm(c) for c in root["chrom"][:]])
    start, end, centre = root["start"][:], root["end"][:], root["centre"][:]
    fold = root["fold"][:]
    by_id = {s: i for i, s in enumerate(ids.tolist())}
    loci, offs = [], []
    for lid, c, p in zip(qtls["locus_id"], qtls["chrom"], qtls["pos"]):
        p0 = int(p) - 1
        if isinstance(lid, str) and lid in by_id:
            i = by_id[lid]
        else:
            hit = np.flatnonzero((chrom == _norm(c)) & (start <= p0) & (p0 < end))
            i = int(hit[np.argmin(np.abs(centre[hit] - p0))]) if len(hit) else -1
        if i >= 0 and not (start[i] <= p0 < end[i]):
            i = -1
        loci.append(i)
        offs.append(p0 - start[i] if i >= 0 else -1)
    out = qtls.assign(locus=np.asarray(loci, np.int64), offset=np.asarray(offs, np.int64))
    out = out[out["locus"] >= 0].reset_index(drop=True)
    out["fold"] = fold[out["locus"].to_numpy()].astype(int)
    out["locus_id"] = ids[out["locus"].to_numpy()]
    return out


def genotypes_from_store(root, located: pd.DataFrame) -> np.ndarray:
    """(n_qtl, n_individuals) alt dosage from the two-hot sequences; NaN where the individual
    carries neither a clean ref/alt pair (another allele or N)."""
    out = np.full((len(located), root["individual_id"].shape[0]), np.nan)
    rows = located.reset_index(drop=True).groupby("locus").indices
    for locus, seq in layout.iter_loci(root, list(rows)):
        for j in rows[locus]:
            r, a = located["ref"].iloc[j], located["alt"].iloc[j]
            x = np.asarray(seq[:, int(located["offset"].iloc[j]), :], np.int64)  # (n_ind, 4)
            ra, aa = x[:, BASE_INDEX[r]], x[:, BASE_INDEX[a]]
            out[j] = np.where(ra + aa == 2, aa, np.nan)
    return out


def genotypes_from_vcf(vcf: str | Path, located: pd.DataFrame, individuals: list[str]) -> np.ndarray:
    """(n_qtl, n_individuals) alt dosage from a VCF (cyvcf2); NaN where the call is missing,
    the sample is absent or the QTL's ref/alt pair is not in the VCF. Indexed VCFs are queried
    per QTL, others are read once."""
    from cyvcf2 import VCF

    vcf = str(vcf)
    v = VCF(vcf)
    col = {s: i for i, s in enumerate(v.samples)}
    idx = np.array([col.get(s, -1) for s in individuals])
    want: dict[tuple[str, int], list[int]] = {}
    for j, (c, p) in enumerate(zip(located["chrom"], located["pos"])):
        want.setdefault((_norm(c), int(p)), []).append(j)   # a SNP can be a ti- and a diQTL
    out = np.full((len(located), len(individuals)), np.nan)

    def take(rec) -> None:
        for j in want.get((_norm(rec.CHROM), rec.POS), []):
            if rec.REF != located["ref"].iloc[j] or located["alt"].iloc[j] not in rec.ALT:
                continue
            k = rec.ALT.index(located["alt"].iloc[j]) + 1
            gt = [g[:2] for g in rec.genotypes]
            for m, s in enumerate(idx):
                if s >= 0 and gt[s][0] >= 0 and gt[s][1] >= 0:
                    out[j, m] = int(gt[s][0] == k) + int(gt[s][1] == k)

    indexed = any(Path(vcf + ext).exists() for ext in (".tbi", ".csi"))
    if not indexed:
        for rec in v:
            take(rec)
        return out
    names = {_norm(c): c for c in v.seqnames}
    for c, p in dict.fromkeys(zip(located["chrom"], located["pos"])):
        name = names.get(_norm(c))
        if name is not None:
            for rec in v(f"{name}:{int(p)}-{int(p)}"):
                take(rec)
    return out


def observed_tracks(url: str, loci: np.ndarray, output_length: int, *, rpm: bool = True,
                    storage_options: dict | None = None) -> dict[int, np.ndarray]:
    """locus -> (n_individuals, 2*out) mean over each individual's libraries (NaN rows for
    individuals without a library); centred output window, plus strand then minus. Tracks come
    from the reader (`StoreDataset`), which owns the window geometry and the RPM scaling."""
    from clipstore.reader import StoreDataset

    ds = StoreDataset.open(url, storage_options=storage_options)
    if output_length > ds.info.output_length:
        raise InputError(f"output length {output_length} is longer than the store's "
                         f"({ds.info.output_length} bp)", hint="use a shorter output length")
    loci = np.unique(np.asarray(loci, np.int64))
    lib_ind = ds.meta.library_individual
    n_ind = ds.meta.n_individuals
    sums = {int(k): np.zeros((n_ind, 2 * output_length)) for k in loci}
    count = np.bincount(lib_ind, minlength=n_ind).astype(np.float64)
    part = ds.with_loci(loci).with_lengths(ds.info.input_length, output_length).with_rpm(rpm)
    for b in part.batches(256, shuffle=False):
        for prof, lib, locus in zip(b.profile, b.library, b.locus):
            sums[int(locus)][lib_ind[lib]] += prof
    with np.errstate(invalid="ignore", divide="ignore"):
        return {k: np.where(count[:, None] > 0, v / count[:, None], np.nan) for k, v in sums.items()}


def predicted_tracks(root, loci: np.ndarray, predictor: Predictor, *, masked: bool = False,
                     batch_size: int = 256) -> dict[int, np.ndarray]:
    """locus -> (n_individuals, 2*out) predicted tracks (profile shape x quantity, see
    `predictor.tracks`) from each individual's own genome (the store's two-hot sequence,
    centred input window); `masked` feeds 2 x reference instead."""
    check_predictor(predictor)
    sl = input_slice(store_info(root), int(predictor.input_length))
    i0, L = sl.start, sl.stop - sl.start
    out = {}
    if masked:
        for locus in np.unique(loci):
            x = np.asarray(root["reference"][int(locus), i0:i0 + L, :])[None] * np.uint8(2)
            x = np.repeat(x, root["individual_id"].shape[0], 0)
            out[int(locus)] = tracks(*predict(predictor, x, batch_size))
        return out
    for locus, seq in layout.iter_loci(root, loci):
        out[locus] = tracks(*predict(predictor, seq[:, i0:i0 + L], batch_size))
    return out


def score(located: pd.DataFrame, genotypes: np.ndarray, observed: Mapping[int, np.ndarray],
          predicted: Mapping[int, np.ndarray]) -> pd.DataFrame:
    """One row per QTL: obs_/pred_ l2, log_quantity_change, directionality_change, and the
    genotype group sizes (individuals with observed tracks only, for both sides)."""
    rows = []
    for j, locus in enumerate(located["locus"]):
        g = np.asarray(genotypes[j], np.float64)
        if int(locus) in observed:      # individuals without a library count in neither group
            g = np.where(np.isfinite(observed[int(locus)]).all(1), g, np.nan)
        o = group_effects(observed[int(locus)], g) if int(locus) in observed else {}
        p = group_effects(predicted[int(locus)], g) if int(locus) in predicted else {}
        rows.append({"n_homref": int(np.sum(g == 0)), "n_het": int(np.sum(g == 1)),
                     "n_homalt": int(np.sum(g == 2)),
                     **{f"obs_{k}": v for k, v in o.items()},
                     **{f"pred_{k}": v for k, v in p.items()}})
    res = pd.concat([located.reset_index(drop=True), pd.DataFrame(rows)], axis=1)
    for col in ("obs_l2", "pred_l2"):
        if col not in res:
            res[col] = np.nan
    return res


MODEL_NONE, MODEL_OUTSIDE = "none", "outside_input"


def _observed_side(url, qtls, vcf, storage_options):
    """(root, table, located QTLs, genotypes): everything but predictions."""
    from clipstore import schema

    root = schema.open_store(str(url), storage_options=storage_options)
    table = load_qtls(qtls) if not isinstance(qtls, pd.DataFrame) else qtls
    located = locate(table, root)
    if len(located) == 0:
        raise InputError("no QTL falls inside a store locus", file=str(url),
                         hint="check chromosome names and genome build")
    if vcf is not None:
        genotypes = genotypes_from_vcf(vcf, located, root["individual_id"][:].tolist())
    else:
        genotypes = genotypes_from_store(root, located)
    return root, table, located, genotypes


def evaluate_predictions(url: str, qtls: pd.DataFrame | str | Path, path: str | Path, *,
                         vcf: str | Path | None = None, rpm: bool = True,
                         no_effect_tol: float = NO_EFFECT_TOL, storage_options: dict | None = None
                         ) -> tuple[pd.DataFrame, dict]:
    """Observed scores from the store, predicted ones from a file keyed by variant
    (`external.read_table`: variant_id, pred_l2 [, pred_log_quantity_change,
    pred_directionality_change] [, kind]). A QTL the file leaves NaN is left out and counted
    (`left_out["not_predicted"]`); leakage and the input window are the tool's to respect."""
    from .external import QTL_PRED_COLUMNS, read_table

    root, table, located, genotypes = _observed_side(url, qtls, vcf, storage_options)
    pred = read_table(path)
    if "pred_l2" not in pred:
        raise InputError("QTL predictions need a pred_l2 column", file=str(path),
                         hint="variant_id, pred_l2 [, pred_log_quantity_change, pred_directionality_change]")
    keys = ["variant_id", "kind"] if "kind" in pred else ["variant_id"]
    if pred.duplicated(keys).any():
        raise InputError(f"{'/'.join(keys)} {pred.loc[pred.duplicated(keys), 'variant_id'].iloc[0]!r} "
                         "appears twice", file=str(path), hint="add a kind column (ti/di) to tell them apart")
    out_len = int(store_info(root).output_length)
    observed = observed_tracks(url, located["locus"].to_numpy(), out_len, rpm=rpm,
                               storage_options=storage_options)
    scores = score(located, genotypes, observed, {}).drop(columns=["pred_l2"])
    cols = keys + [c for c in QTL_PRED_COLUMNS if c in pred]
    scores = scores.merge(pred[cols], on=keys, how="left")
    scores["model"] = np.where(scores["pred_l2"].notna(), "external", "not_predicted")
    used = scores[scores["model"] == "external"]
    summary = summarise(used, no_effect_tol=no_effect_tol)
    summary["left_out"] = {"not_in_store": int(len(table) - len(located)),
                           "not_predicted": int((scores["model"] == "not_predicted").sum()),
                           "no_genotype_groups": int(used["obs_l2"].isna().sum())}
    return scores.sort_values(["locus", "pos"]).reset_index(drop=True), summary


def evaluate_store(url: str, qtls: pd.DataFrame | str | Path,
                   predictors: Mapping[int, Predictor] | Predictor, *, vcf: str | Path | None = None,
                   rpm: bool = True, masked: bool = False, no_effect_tol: float = NO_EFFECT_TOL,
                   storage_options: dict | None = None) -> tuple[pd.DataFrame, dict]:
    """Score every QTL with the leakage-free composite of `predictors` (see module doc).

    Returns (per-QTL table with a `model` column, summary from `summarise` plus `left_out`).
    Rows with model "none" (no predictor for their fold) or "outside_input" (the SNP is outside
    that predictor's input window) keep their observed scores but no prediction, and are not in
    the summary's numbers. Genotypes come from the store's sequences unless `vcf` is given.
    """
    root, table, located, genotypes = _observed_side(url, qtls, vcf, storage_options)
    single = not isinstance(predictors, Mapping)
    models = {None: check_predictor(predictors)} if single else dict(predictors)
    info = store_info(root)
    out_len = info.output_length
    observed = observed_tracks(url, located["locus"].to_numpy(), out_len, rpm=rpm,
                               storage_options=storage_options)
    which = np.array([None if single else composite_model(f, models) for f in located["fold"]], object)
    label = np.array(["single" if single else MODEL_NONE if k is None else
                      "ensemble" if k == 0 else f"replicate_{k}" for k in which], object)
    for key in dict.fromkeys(which.tolist()):       # SNPs the model never sees are not scored
        if key is None and not single:
            continue
        sl = input_slice(info, int(models[key].input_length))
        off = located["offset"].to_numpy()
        label[(which == key) & ((off < sl.start) | (off >= sl.stop))] = MODEL_OUTSIDE
    parts = []
    for key in dict.fromkeys(which.tolist()):
        for lab in dict.fromkeys(label[which == key].tolist()):
            m = (which == key) & (label == lab)
            sub = located[m].reset_index(drop=True)
            pred = ({} if lab in (MODEL_NONE, MODEL_OUTSIDE) else
                    predicted_tracks(root, sub["locus"].to_numpy(), models[key], masked=masked))
            s = score(sub, genotypes[m], observed, pred)
            s["model"] = lab
            parts.append(s)
    scores = pd.concat(parts, ignore_index=True).sort_values(["locus", "pos"]).reset_index(drop=True)
    used = scores[~scores["model"].isin([MODEL_NONE, MODEL_OUTSIDE])]
    summary = summarise(used, no_effect_tol=no_effect_tol)
    summary["left_out"] = {
        "not_in_store": int(len(table) - len(located)),
        "outside_input": int((scores["model"] == MODEL_OUTSIDE).sum()),
        "no_model_for_fold": {str(f): int(n) for f, n in
                              scores.loc[scores["model"] == MODEL_NONE, "fold"].value_counts().sort_index().items()},
        "no_genotype_groups": int((used["obs_l2"].isna() | used["pred_l2"].isna()).sum()),
    }
    return scores, summary


def why_nothing_scored(left_out: dict, folds_given: list[int]) -> str:
    """The message for a QTL run that scored nothing: what happened and what to do."""
    no_model = {int(f): n for f, n in left_out.get("no_model_for_fold", {}).items()}
    parts = []
    if no_model:
        where = ", ".join(f"{n} on fold {f}" for f, n in sorted(no_model.items()))
        parts.append(f"no QTL was scored: the QTLs in store loci sit on folds with no model "
                     f"given ({where}; models given for folds {folds_given})")
        if 0 in no_model:
            parts.append("fold 0 is the test fold, which only the ensemble may score without "
                         "leakage: add --ensemble PATH (repeat for each member)")
        rest = sorted(f for f in no_model if f)
        if rest:
            parts.append("add --replicate K=PATH for fold(s) " + ", ".join(map(str, rest)))
    if left_out.get("outside_input"):
        parts.append(f"{left_out['outside_input']} QTL(s) lie outside the model's input window "
                     "(the model never sees them)")
    if left_out.get("not_predicted"):
        parts.append(f"{left_out['not_predicted']} QTL(s) have no prediction in the file")
    if left_out.get("no_genotype_groups"):
        parts.append(f"{left_out['no_genotype_groups']} QTL(s) lack hom-ref or hom-alt "
                     "individuals with a library (check genotypes, or pass --vcf)")
    return "; ".join(parts) or "no QTL was scored"


def run(url: str, qtls: pd.DataFrame | str | Path, predictors: Mapping[int, Predictor] | Predictor,
        out_dir: str | Path, **kw) -> tuple[pd.DataFrame, dict]:
    """`evaluate_store` and write qtl_scores.tsv, qtl_summary.json and a KDE-coloured scatter
    of predicted vs observed L2 scores (qtl_scatter.*)."""
    from . import figures
    from .figures import write_json

    if isinstance(predictors, (str, Path)):           # a predictions file (external.read_table)
        scores, summary = evaluate_predictions(url, qtls, predictors, **kw)
    else:
        scores, summary = evaluate_store(url, qtls, predictors, **kw)
    o = Path(out_dir)
    o.mkdir(parents=True, exist_ok=True)
    scores.to_csv(o / "qtl_scores.tsv", sep="\t", index=False)
    write_json(o / "qtl_summary.json", summary)
    used = scores[~scores["model"].isin([MODEL_NONE, MODEL_OUTSIDE, "not_predicted"])]
    figures.density_scatter(used["obs_l2"], used["pred_l2"], o / "qtl_scatter",
                            xlabel="observed L2", ylabel="predicted L2", title="QTLs")
    return scores, summary

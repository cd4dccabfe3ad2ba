"""Metrics of each compared condition (an ensemble of training seeds) on held-out folds.

Cross-locus and MPRA metrics use the ensemble predictor (members' profiles and quantities
averaged, as trainer.predict does). QTL scores use the mean of the members' predicted tracks,
and every member's genotype-group difference is kept (eval/qtl_<run>_members.npz): the
ensemble's predicted L2 score is the norm of the members' mean difference, so the verdict can
resample members as well as QTLs (experiment.verdict.ensemble_gain)."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from .jsonio import Log, _pearson, read_json, write_json
from .plans import Plan, Run

N_BOOT = 1000


def predictors_for(folders: list[str], plan: Plan) -> dict[int, Any]:
    """fold -> Predictor without leakage: fold 0 (test) by the ensemble of all replicates,
    fold k by replicate k. With one replicate (k = 1), folds 0 and 1 are both held out."""
    from trainer.predict import load_predictor

    if plan.ensemble:
        reps = {k: f for k, f in zip(plan.ensemble, folders)}
        preds = {k: load_predictor(f) for k, f in reps.items()}
        members = [p.models[0] for p in preds.values()]
        from trainer.predict import Predictor
        preds[0] = Predictor(members, paths=list(reps.values()))
        return preds
    p = load_predictor(folders[0])
    return {0: p, 1: p}


def mpra_backbone():
    """The simulated assay's reporter (the simulator's pMPRAv3-like construct), so predicted
    and 'measured' effects come from the same construct."""
    from clipstore.simulate import truth
    from evaluation.mpra import Backbone

    construct, start = truth.mpra_construct("N" * truth.OLIGO)
    return Backbone(upstream=construct[:start], downstream=construct[start + truth.OLIGO:],
                    name="simulated pMPRAv3-like")


def ensemble_predictors(members: list[dict[int, Any]]) -> dict[int, Any]:
    """fold -> one Predictor averaging every member's model for that fold."""
    if len(members) == 1:
        return members[0]
    from trainer.predict import Predictor

    out = {}
    for k in members[0]:
        ps = [m[k] for m in members]
        out[k] = Predictor([x for p in ps for x in p.models],
                           paths=[x for p in ps for x in p.paths])
    return out


def _group_diffs(located, genotypes: np.ndarray, observed: dict, predicted: dict) -> np.ndarray:
    """(QTLs, T): mean predicted track of hom-ref minus that of hom-alt individuals, over the
    individuals `evaluation.qtl.score` counts (those with observed tracks); NaN rows where a
    group is empty. Its norm is qtl.score's pred_l2."""
    rows = []
    for j, locus in enumerate(located["locus"]):
        t = np.asarray(predicted[int(locus)], np.float64)
        g = np.where(np.isfinite(observed[int(locus)]).all(1),
                     np.asarray(genotypes[j], np.float64), np.nan)
        ref, alt = g == 0, g == 2
        rows.append(t[ref].mean(0) - t[alt].mean(0) if ref.any() and alt.any()
                    else np.full(t.shape[1], np.nan))
    return np.stack(rows) if rows else np.zeros((0, 0))


def qtl_members(store: str, qtls_path: Path, members: list[dict[int, Any]], rpm: bool):
    """(per-QTL scores of the ensemble, (members, QTLs, T) group differences): QTLs on folds
    some member holds out only, each predicted by the model that never trained on it."""
    from clipstore import schema
    from evaluation import qtl

    root = schema.open_store(store)
    located = qtl.locate(qtl.load_qtls(qtls_path), root)
    which = [qtl.composite_model(f, members[0]) for f in located["fold"]]
    # only SNPs inside the models' input are scored (evaluation/qtl.py's window rule)
    sl = qtl.input_slice(schema.store_info(root), int(next(iter(members[0].values())).input_length))
    off = located["offset"].to_numpy()
    keep = np.array([w is not None for w in which], bool) & (off >= sl.start) & (off < sl.stop)
    located = located[keep].reset_index(drop=True)
    which = [w for w, k in zip(which, keep) if k]
    genotypes = qtl.genotypes_from_store(root, located)
    out_len = int(root.attrs["clipstore"]["output_length"])
    observed = qtl.observed_tracks(store, located["locus"].to_numpy(), out_len, rpm=rpm)
    tracks = []
    for m in members:
        t: dict[int, np.ndarray] = {}
        for k in sorted(set(which)):
            loci = located["locus"].to_numpy()[np.array(which) == k]
            t.update(qtl.predicted_tracks(root, loci, m[k]))
        tracks.append(t)
    ens = {locus: np.mean([t[locus] for t in tracks], axis=0) for locus in tracks[0]}
    scores = qtl.score(located, genotypes, observed, ens)
    scores["model"] = ["ensemble" if k == 0 else f"replicate_{k}" for k in which]
    diffs = np.stack([_group_diffs(located, genotypes, observed, t) for t in tracks])
    return scores, diffs


def _spearman(a, b) -> float:
    from evaluation.metrics import spearman
    return float(spearman(np.asarray(a, np.float64), np.asarray(b, np.float64)))


def evaluate_run(out: Path, run: Run, folders: list[list[str]], store: str, sim: dict,
                 plan: Plan, log: Log) -> dict:
    """Cross-loci, QTL and MPRA numbers of one condition (the ensemble of its seeds' models),
    cached in eval/<run>.json; per-QTL scores in eval/qtl_<run>.csv, member differences in
    eval/qtl_<run>_members.npz."""
    path = out / "eval" / f"{run.name}.json"
    if path.exists():
        return read_json(path)
    from clipstore.folds import fold_of, load_fold_map
    from evaluation import crossloci, mpra, qtl

    t0 = time.perf_counter()
    members = [predictors_for(f, plan) for f in folders]
    preds = ensemble_predictors(members)
    cl = crossloci.evaluate_store(store, {0: preds[0]}, rpm=plan.rpm).iloc[0].to_dict()
    scores, diffs = qtl_members(store, Path(sim["truth_dir"]) / "qtls.tsv", members, plan.rpm)
    summary = qtl.summarise(scores)
    (out / "eval").mkdir(parents=True, exist_ok=True)
    scores.to_csv(out / "eval" / f"qtl_{run.name}.csv", index=False)
    np.savez_compressed(out / "eval" / f"qtl_{run.name}_members.npz", diffs=diffs,
                        obs_l2=scores["obs_l2"].to_numpy(np.float64),
                        key=(scores["variant_id"] + "|" + scores["kind"]).to_numpy(str))
    ok = np.isfinite(scores["obs_l2"].to_numpy(np.float64))
    member_r = [_pearson(np.linalg.norm(d, axis=1)[ok], scores["obs_l2"][ok]) for d in diffs]
    truth_r, truth_rho = {}, {}
    for kind, col in (("ti", "pred_log_quantity_change"), ("di", "pred_directionality_change")):
        s = scores[scores["kind"] == kind]
        truth_r[kind] = _pearson(s[col], s["effect"]) if len(s) > 2 else float("nan")
        truth_rho[kind] = _spearman(s[col], s["effect"]) if len(s) > 2 else float("nan")
    # MPRA: each oligo predicted by the model that never trained on its fold
    table = mpra.load_table(Path(sim["truth_dir"]) / "mpra.tsv")
    fmap = load_fold_map()
    folds = np.array([fold_of(str(c), fmap) for c in table["chrom"]])
    keep = np.isin(folds, list(preds))
    table = table[keep].reset_index(drop=True)
    folds = folds[keep]
    effects = np.full(len(table), np.nan)
    bb = mpra_backbone()
    for k, p in preds.items():
        m = folds == k
        if m.any():
            effects[m] = mpra.predict_effects(table[m].reset_index(drop=True), p, backbone=bb)
    np.save(out / "eval" / f"mpra_effects_{run.name}.npy", effects)
    mres = mpra.evaluate(table, {run.name: effects}, n_boot=0)
    mp = mres["models"][run.name]
    res = {"run": dataclasses.asdict(run), "models": folders,
           "crossloci": {k: v for k, v in cl.items() if k not in ("model", "fold")},
           "qtl": {"pearson_r": summary["pearson_r"],
                   "spearman_r": _spearman(scores["pred_l2"], scores["obs_l2"]),
                   "member_pearson_r": member_r, "n": summary["n"],
                   "share_no_effect": summary["share_no_effect"],
                   "by_kind": summary["by_kind"], "truth_r": truth_r,
                   "truth_spearman": truth_rho},
           "mpra": {"auprc": mp["auprc"], "pearson_r": mp["pearson_r"],
                    "sign_mismatch_share": mp["sign_mismatch_share"],
                    "n_variants": int(len(table)), "n_emvar": mres["n_emvar"],
                    "n_active_non_emvar": mres["n_active_non_emvar"],
                    "precision": mp["precision"], "recall": mp["recall"]},
           "seconds": time.perf_counter() - t0}
    write_json(path, res)
    log(f"evaluate {run.name} ({len(folders)} member(s)): profile r "
        f"{cl['profile_r_median']:.3f}, QTL r {summary['pearson_r']:.3f} (n={summary['n']}), "
        f"auPRC {mp['auprc']:.3f} ({res['seconds']:.0f}s)")
    return res


def mpra_gain(out: Path, a: str, b: str, sim: dict, plan: Plan) -> dict:
    """Bootstrap delta auPRC between two models on the same held-out oligos."""
    from clipstore.folds import fold_of, load_fold_map
    from evaluation import mpra

    table = mpra.load_table(Path(sim["truth_dir"]) / "mpra.tsv")
    fmap = load_fold_map()
    folds = np.array([fold_of(str(c), fmap) for c in table["chrom"]])
    held = [0] + (list(plan.ensemble) if plan.ensemble else [1])
    table = table[np.isin(folds, held)].reset_index(drop=True)
    ea = np.load(out / "eval" / f"mpra_effects_{a}.npy")
    eb = np.load(out / "eval" / f"mpra_effects_{b}.npy")
    res = mpra.evaluate(table, {a: ea, b: eb}, n_boot=N_BOOT)
    c = res["comparisons"][0]
    return {k: c[k] for k in ("delta", "ci_low", "ci_high", "p_value", "deltas")}



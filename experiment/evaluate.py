"""Metrics of each trained model on held-out folds, and the bootstrap gains between two."""
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


def evaluate_run(out: Path, run: Run, folders: list[str], store: str, sim: dict, plan: Plan,
                 log: Log) -> dict:
    """Cross-loci, QTL and MPRA numbers of one model, cached in eval/<run>.json."""
    path = out / "eval" / f"{run.name}.json"
    if path.exists():
        return read_json(path)
    from clipstore.folds import fold_of, load_fold_map
    from evaluation import crossloci, mpra, qtl

    t0 = time.perf_counter()
    preds = predictors_for(folders, plan)
    test = {0: preds[0]}
    cl = crossloci.evaluate_store(store, test, rpm=plan.rpm).iloc[0].to_dict()
    scores, summary = qtl.evaluate_store(store, Path(sim["truth_dir"]) / "qtls.tsv", preds,
                                         rpm=plan.rpm)
    scores = scores[scores["model"] != "none"].reset_index(drop=True)
    (out / "eval").mkdir(parents=True, exist_ok=True)
    scores.to_csv(out / "eval" / f"qtl_{run.name}.csv", index=False)
    truth_r = {}
    for kind, col in (("ti", "pred_log_quantity_change"), ("di", "pred_directionality_change")):
        s = scores[scores["kind"] == kind]
        truth_r[kind] = _pearson(s[col], s["effect"]) if len(s) > 2 else float("nan")
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
           "qtl": {"pearson_r": summary["pearson_r"], "n": summary["n"],
                   "share_no_effect": summary["share_no_effect"],
                   "by_kind": summary["by_kind"], "truth_r": truth_r},
           "mpra": {"auprc": mp["auprc"], "pearson_r": mp["pearson_r"],
                    "sign_mismatch_share": mp["sign_mismatch_share"],
                    "n_variants": int(len(table)), "n_emvar": mres["n_emvar"],
                    "n_active_non_emvar": mres["n_active_non_emvar"],
                    "precision": mp["precision"], "recall": mp["recall"]},
           "seconds": time.perf_counter() - t0}
    write_json(path, res)
    log(f"evaluate {run.name}: profile r {cl['profile_r_median']:.3f}, "
        f"QTL r {summary['pearson_r']:.3f} (n={summary['n']}), auPRC {mp['auprc']:.3f} "
        f"({res['seconds']:.0f}s)")
    return res


def qtl_gain(out: Path, a: str, b: str, seed: int = 0) -> dict:
    """Pearson r(pred, obs L2) of model a minus model b, with a bootstrap 95 % CI over QTLs."""
    import pandas as pd

    sa = pd.read_csv(out / "eval" / f"qtl_{a}.csv")
    sb = pd.read_csv(out / "eval" / f"qtl_{b}.csv")
    key = ["variant_id", "kind"]
    m = sa.merge(sb, on=key, suffixes=("_a", "_b"))
    m = m[np.isfinite(m["obs_l2_a"]) & np.isfinite(m["pred_l2_a"]) & np.isfinite(m["pred_l2_b"])]
    obs, pa, pb = (m[c].to_numpy(np.float64) for c in ("obs_l2_a", "pred_l2_a", "pred_l2_b"))
    rng = np.random.default_rng(seed)
    d = []
    for _ in range(N_BOOT):
        i = rng.integers(0, len(obs), len(obs))
        d.append(_pearson(pa[i], obs[i]) - _pearson(pb[i], obs[i]))
    d = np.asarray(d)
    d = d[np.isfinite(d)]
    return {"delta": _pearson(pa, obs) - _pearson(pb, obs), "n": int(len(obs)),
            "ci_low": float(np.percentile(d, 2.5)) if len(d) else float("nan"),
            "ci_high": float(np.percentile(d, 97.5)) if len(d) else float("nan"),
            "p_value": float(min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0)))) if len(d)
            else float("nan")}


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



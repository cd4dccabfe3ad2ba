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

Tables as labs publish them (allelic counts, barcode counts, emVar calls with coordinates) are
read by `mpra_tables`; where a table has coordinates but no oligos, `mpra_tables.with_oligos`
cuts them from a reference FASTA the way the paper built its reporters.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from clipstore.errors import InputError
from clipstore.folds import TEST_FOLD, fold_of, load_fold_map

from . import mpra_tables
from .mpra_tables import TABLE_COLUMNS  # noqa: F401  (callers use mpra.TABLE_COLUMNS)
from .predictor import Predictor, check_predictor, encode_haploid, predict

PSEUDO = 1e-6   # keeps log2(ref/alt) finite when a model predicts exactly zero


# ---- reporter constructs ----------------------------------------------------------------
@dataclass(frozen=True)
class Backbone:
    """Plasmid sequence on each side of the oligo (5'->3', oligo inserted between them)."""

    upstream: str
    downstream: str
    name: str = "custom"


@lru_cache(maxsize=1)
def load_backbone() -> Backbone:
    """pMPRAv3:minP-GFP as shipped in evaluation/data (see SOURCE.md there)."""
    import pysam

    with resources.as_file(resources.files("evaluation").joinpath("data", "pMPRAv3_minP-GFP.fa")) as f:
        with pysam.FastxFile(str(f)) as fa:
            rec = {r.name: r.sequence.upper() for r in fa}
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
    """(precision, recall, thresholds), highest threshold first, plus the (1, 0) end point:
    sklearn.metrics.precision_recall_curve in the order figures draw it."""
    from sklearn.metrics import precision_recall_curve

    y = np.asarray(labels).astype(bool)
    if len(y) == 0:
        return np.array([1.0]), np.array([0.0]), np.array([])
    with np.errstate(invalid="ignore", divide="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")        # no positives: recall NaN, said by auPRC NaN
            p, r, t = precision_recall_curve(y, np.asarray(scores, np.float64))
    return p[::-1], r[::-1], t[::-1]


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """auPRC as step-wise average precision (sklearn.metrics.average_precision_score); NaN
    unless there is at least one positive."""
    from sklearn.metrics import average_precision_score

    y = np.asarray(labels).astype(bool)
    if len(y) == 0 or not y.any():
        return float("nan")
    return float(average_precision_score(y, np.asarray(scores, np.float64)))


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
    from .metrics import pearson

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


# ---- tables (parsers live in mpra_tables; these names stay for callers) ------------------
def load_table(path: str | Path, fmt: str = "oligos") -> pd.DataFrame:
    """An MPRA table (default: with oligos, TABLE_COLUMNS; see `mpra_tables` for the others)."""
    return mpra_tables.load(path, fmt)


def load_tewhey(path: str | Path, **kw) -> pd.DataFrame:
    """Tewhey et al. 2016 allelic counts -> calls (`mpra_tables.calls_from_allelic`)."""
    return mpra_tables.load(path, "allelic", **kw)


def load_ulirsch(path: str | Path, **kw) -> pd.DataFrame:
    """Ulirsch et al. 2016 barcode counts -> calls (`mpra_tables.calls_from_barcodes`)."""
    return mpra_tables.load(path, "barcode", **kw)


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

"""Cross-locus accuracy: CLIPNET's metric suite, for any model's predictions.

    from evaluation import crossloci
    m = crossloci.metrics(pred_profile, obs_profile, pred_quantity, obs_quantity)
    m["profile_r_median"], m["directionality_r"], m["quantity_log_r"], ...

Profiles are (N, 2*out): plus-strand values then minus-strand values (minus made positive).
Keys returned by `metrics` (NaN where undefined, e.g. a locus with a flat track is skipped):

    n                    examples scored
    profile_r_median     median over examples of Pearson r(pred profile, obs profile)
    profile_r_mean       mean of the same
    js_median, js_mean   Jensen-Shannon distance of the normalised profiles (base 2, in [0, 1])
    directionality_r     Pearson r of log1p(plus sum) - log1p(minus sum)
    tss_r_plus/minus     Pearson r of the argmax position on each strand; tss_r = their mean
    quantity_log_r       Pearson r of log1p(quantity) (the paper's text says log10)
    quantity_spearman    Spearman rho of quantity
    note                 why a metric is NaN when the cause is the predictions themselves
                         (e.g. every predicted quantity is 0), else ""

`evaluate_store` runs the paper's protocol on a store: replicate k on its validation fold k,
the ensemble (key 0) on test fold 0, one row per model; `run` does the same and writes the
table and figures into a folder:

    table = crossloci.run("store.zarr", {0: ensemble, 1: rep1, ..., 9: rep9}, "out/")
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from clipstore.errors import InputError

from .metrics import directionality, pearson, spearman  # noqa: F401  (names callers import here)
from .predictor import Predictor, check_predictor

METRIC_KEYS = ("n", "profile_r_median", "profile_r_mean", "js_median", "js_mean",
               "directionality_r", "tss_r_plus", "tss_r_minus", "tss_r", "quantity_log_r",
               "quantity_spearman")


def rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each row of a with the same row of b; NaN where a row is constant."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(1) / den
    r[den == 0] = np.nan
    return np.clip(r, -1, 1)


def rowwise_js(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (base 2) of each row pair after normalising to sum 1; NaN where
    a row sums to 0 (nothing to compare)."""
    p = np.clip(np.asarray(p, np.float64), 0, None)
    q = np.clip(np.asarray(q, np.float64), 0, None)
    ps, qs = p.sum(1, keepdims=True), q.sum(1, keepdims=True)
    bad = (ps[:, 0] <= 0) | (qs[:, 0] <= 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p, q = p / ps, q / qs
        m = (p + q) / 2
        kl = lambda u: np.where(u > 0, u * np.log2(np.where(u > 0, u, 1) / np.where(m > 0, m, 1)), 0).sum(1)
        js = np.sqrt(np.clip((kl(p) + kl(q)) / 2, 0, None))
    js[bad] = np.nan
    return js


def per_locus(pred_profile: np.ndarray, obs_profile: np.ndarray) -> pd.DataFrame:
    """Per-example profile Pearson r and JS distance (for histograms and tables)."""
    _check(pred_profile, obs_profile)
    return pd.DataFrame({"profile_r": rowwise_pearson(pred_profile, obs_profile),
                         "js": rowwise_js(pred_profile, obs_profile)})


EXAMPLE_FIELDS = ("profile_r", "js", "dir_pred", "dir_obs", "tss_pred_plus", "tss_obs_plus",
                  "tss_pred_minus", "tss_obs_minus", "q_pred", "q_obs")


def example_stats(pred_profile: np.ndarray, obs_profile: np.ndarray,
                  pred_quantity: np.ndarray | None = None, obs_quantity: np.ndarray | None = None,
                  *, chunk: int = 4096) -> pd.DataFrame:
    """Everything the metric suite needs, one row per example (EXAMPLE_FIELDS), so that large
    evaluations keep scalars, not profiles. tss_obs_* is NaN where that strand has no signal."""
    _check(pred_profile, obs_profile)
    n, width = np.shape(pred_profile)
    half = width // 2
    pq = None if pred_quantity is None else np.asarray(pred_quantity, np.float64).reshape(-1)
    oq = None if obs_quantity is None else np.asarray(obs_quantity, np.float64).reshape(-1)
    if (pq is not None and len(pq) != n) or (oq is not None and len(oq) != n):
        raise ValueError("quantity and profile arrays must have the same number of rows")
    parts = []
    for s in range(0, max(n, 1), chunk):
        p = np.asarray(pred_profile[s:s + chunk], np.float64)
        o = np.asarray(obs_profile[s:s + chunk], np.float64)
        d = {"profile_r": rowwise_pearson(p, o), "js": rowwise_js(p, o),
             "dir_pred": directionality(p), "dir_obs": directionality(o)}
        for name, sl in (("plus", slice(0, half)), ("minus", slice(half, None))):
            d[f"tss_pred_{name}"] = p[:, sl].argmax(1).astype(np.float64)
            d[f"tss_obs_{name}"] = np.where(o[:, sl].sum(1) > 0, o[:, sl].argmax(1), np.nan)
        d["q_pred"] = p.sum(1) if pq is None else pq[s:s + chunk]
        d["q_obs"] = o.sum(1) if oq is None else oq[s:s + chunk]
        parts.append(pd.DataFrame(d))
    return pd.concat(parts, ignore_index=True)


def summarise(ex: pd.DataFrame) -> dict[str, float]:
    """The metric suite from `example_stats` rows (see module doc for the keys)."""
    nanstat = lambda f, v: float(f(v)) if np.isfinite(v).any() else float("nan")
    r, js = ex["profile_r"].to_numpy(), ex["js"].to_numpy()
    tss = {k: pearson(ex[f"tss_pred_{k}"], ex[f"tss_obs_{k}"]) for k in ("plus", "minus")}
    pq = np.clip(ex["q_pred"].to_numpy(np.float64), 0, None)
    oq = np.clip(ex["q_obs"].to_numpy(np.float64), 0, None)
    return {
        "note": _note(ex, pq),
        "n": int(len(ex)),
        "profile_r_median": nanstat(np.nanmedian, r),
        "profile_r_mean": nanstat(np.nanmean, r),
        "js_median": nanstat(np.nanmedian, js),
        "js_mean": nanstat(np.nanmean, js),
        "directionality_r": pearson(ex["dir_pred"], ex["dir_obs"]),
        "tss_r_plus": tss["plus"],
        "tss_r_minus": tss["minus"],
        "tss_r": nanstat(np.nanmean, np.array([tss["plus"], tss["minus"]])),
        "quantity_log_r": pearson(np.log1p(pq), np.log1p(oq)),
        "quantity_spearman": spearman(pq, oq),
    }


def _note(ex: pd.DataFrame, pq: np.ndarray) -> str:
    """Say why correlations are undefined when the model, not the data, makes them so."""
    notes = []
    if len(pq) and np.all(pq == 0):
        notes.append("every predicted quantity is 0 (the model predicts no initiation), so "
                     "quantity_log_r and quantity_spearman are undefined: check the model "
                     "(untrained or collapsed?) and its input scale (two-hot, 2 = homozygous)")
    elif len(pq) > 1 and np.ptp(pq) == 0:
        notes.append(f"every predicted quantity is the same ({pq[0]:g}), so quantity "
                     "correlations are undefined")
    if len(ex) and not np.isfinite(ex["profile_r"].to_numpy(np.float64)).any():
        notes.append("every predicted or observed profile is flat, so profile_r is undefined")
    return "; ".join(notes)


def metrics(pred_profile: np.ndarray, obs_profile: np.ndarray,
            pred_quantity: np.ndarray | None = None, obs_quantity: np.ndarray | None = None
            ) -> dict[str, float]:
    """The metric suite (see module doc). Quantities default to the profile sums."""
    return summarise(example_stats(pred_profile, obs_profile, pred_quantity, obs_quantity))


def _check(pred: np.ndarray, obs: np.ndarray) -> None:
    if np.ndim(pred) != 2 or np.shape(pred) != np.shape(obs):
        raise ValueError(f"profiles must both be (N, 2*out); got {np.shape(pred)} and {np.shape(obs)}")
    if np.shape(pred)[1] % 2:
        raise ValueError("profile width must be even (plus strand then minus strand)")


def evaluate_store(url: str, predictors: Mapping[int, Predictor], *, libraries=None,
                   masked: bool = False, rpm: bool = False, batch_size: int = 256,
                   storage_options: dict | None = None, return_arrays: bool = False):
    """The paper's protocol on a store: one row per model with `metrics` on its held-out fold.

    `predictors` maps fold -> Predictor: k in 1..9 is replicate k (scored on its validation fold
    k), 0 is the ensemble (scored on test fold 0). Every (library, locus) pair of the fold is an
    example: the individual's own sequence (or the reference when `masked`) against that
    library's observed track (reads per million when `rpm`). Profiles are reduced to
    `example_stats` batch by batch, so memory stays small; with `return_arrays`, also returns
    {model: example_stats table (+ library, locus store indices)}.
    """
    from clipstore.reader import StoreDataset

    ds = StoreDataset.open(url, storage_options=storage_options)
    if libraries is not None:
        ds = ds.with_libraries(libraries)
    ds = ds.masked(masked).with_rpm(rpm)
    rows, arrays = [], {}
    for fold, pred in sorted(predictors.items()):
        check_predictor(pred)
        part = ds.with_loci(ds.meta.fold == int(fold)).with_lengths(
            pred.input_length, pred.output_length)
        parts = []
        for b in part.batches(batch_size, shuffle=False):
            p, q = pred(b.x)
            parts.append(example_stats(p, b.profile, q, b.quantity).assign(
                library=b.library, locus=b.locus))
        model = "ensemble" if int(fold) == 0 else f"replicate_{int(fold)}"
        if not parts:
            rows.append({"model": model, "fold": int(fold), **{k: np.nan for k in METRIC_KEYS}, "n": 0,
                         "note": f"no examples on fold {int(fold)} in this store"})
            continue
        ex = pd.concat(parts, ignore_index=True)
        arrays[model] = ex
        rows.append({"model": model, "fold": int(fold), **summarise(ex)})
    table = pd.DataFrame(rows)
    return (table, arrays) if return_arrays else table


def evaluate_predictions(url: str, path: str | Path, *, rpm: bool = False,
                         storage_options: dict | None = None, return_arrays: bool = False):
    """The metric suite for predictions read from a file (`external.read_tracks` layout), one
    row per model, against the store's observed tracks for the same (library, locus) pairs.

    Leakage cannot be checked here: the row says which folds the loci are on (`folds`), so the
    user can see whether a tool was scored on its held-out loci."""
    from clipstore.reader import StoreDataset

    from .external import read_tracks

    pr = read_tracks(path)
    ds = StoreDataset.open(url, storage_options=storage_options).with_rpm(rpm)
    out_len = pr["profile"].shape[1] // 2
    ids = {s: i for i, s in enumerate(ds.meta.locus_id.tolist())}
    libs = {s: i for i, s in enumerate(ds.meta.library_id.tolist())}
    for name, known, keys in (("locus_id", ids, pr["locus_id"]), ("library_id", libs, pr["library_id"])):
        unknown = sorted(set(keys) - set(known))
        if unknown:
            raise InputError(f"{len(unknown)} {name}(s) of the predictions are not in the store",
                             file=str(path), record=unknown[0], hint=f"the store is {url}")
    locus = np.array([ids[s] for s in pr["locus_id"]], np.int64)
    lib = np.array([libs[s] for s in pr["library_id"]], np.int64)
    part = ds.with_loci(np.unique(locus)).with_libraries(np.unique(lib).tolist()).with_lengths(
        ds.info.input_length, out_len)
    row_of = {int(k): i for i, k in enumerate(lib * len(ids) + locus)}
    if len(row_of) != len(locus):
        raise InputError("a (library_id, locus_id) pair appears twice in the predictions", file=str(path))
    obs = np.full(pr["profile"].shape, np.nan)
    obs_q = np.full(len(locus), np.nan)
    for b in part.batches(256, shuffle=False):
        for j, k in enumerate(b.library * len(ids) + b.locus):
            i = row_of.get(int(k))
            if i is not None:
                obs[i], obs_q[i] = b.profile[j], b.quantity[j]
    rows, arrays = [], {}
    for model in dict.fromkeys(pr["model"].tolist()):
        m = pr["model"] == model
        ex = example_stats(pr["profile"][m], obs[m], pr["quantity"][m], obs_q[m]).assign(
            library=lib[m], locus=locus[m])
        arrays[model] = ex
        folds = ",".join(map(str, sorted(set(ds.meta.fold[locus[m]].tolist()))))
        rows.append({"model": model, "fold": folds, **summarise(ex)})
    table = pd.DataFrame(rows)
    return (table, arrays) if return_arrays else table


def run(url: str, predictors: Mapping[int, Predictor], out_dir: str | Path, **kw) -> pd.DataFrame:
    """`evaluate_store` (or `evaluate_predictions` when `predictors` is a file) and write
    crossloci.csv plus, per model, a KDE-coloured scatter of
    predicted vs observed quantity (log1p) and the per-example table (crossloci_examples_*.tsv)."""
    from . import figures

    if isinstance(predictors, (str, Path)):           # a predictions file (external.read_tracks)
        table, arrays = evaluate_predictions(url, predictors, return_arrays=True, **kw)
    else:
        table, arrays = evaluate_store(url, predictors, return_arrays=True, **kw)
    o = Path(out_dir)
    o.mkdir(parents=True, exist_ok=True)
    table.to_csv(o / "crossloci.csv", index=False)
    for model, ex in arrays.items():
        figures.density_scatter(ex["q_obs"], ex["q_pred"], o / f"crossloci_quantity_{model}",
                                xlabel="observed quantity", ylabel="predicted quantity",
                                title=model, log=True)
        ex.to_csv(o / f"crossloci_examples_{model}.tsv", sep="\t", index=False)
    return table

"""Figures like the paper's, each saved as PNG + SVG + the numbers plotted (JSON or CSV).

    from evaluation import figures
    paths = figures.pr_curves({"personal": (precision, recall, auprc), ...}, "out/mpra_pr")
    figures.delta_auprc(deltas, "out/delta", label="personal - reference", p_value=0.01)
    figures.density_scatter(pred, obs, "out/qtl_scatter", xlabel="observed", ylabel="predicted")
    figures.subsampling_curve(curve, runs, "out/subsampling", reference=0.31, personalized=0.52)

Every function takes an output stem (no suffix) and returns the list of files written:
stem.png, stem.svg and stem.json (curves, distributions) or stem.csv (scatter points). The
data file holds every number drawn, so a figure can be re-checked or re-plotted elsewhere.
Uses matplotlib's Agg backend (no display needed).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import gaussian_kde  # noqa: E402

plt.rcParams["svg.hashsalt"] = "clipstore"     # reproducible SVG ids


def _save(fig, stem: str | Path, data: dict | pd.DataFrame) -> list[Path]:
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(out[0], dpi=150, bbox_inches="tight")
    fig.savefig(out[1], bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    if isinstance(data, pd.DataFrame):
        out.append(stem.with_suffix(".csv"))
        data.to_csv(out[-1], index=False)
    else:
        out.append(stem.with_suffix(".json"))
        out[-1].write_text(json.dumps(_jsonable(data), indent=1) + "\n")
    return out


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (np.floating, float)):
        return None if not np.isfinite(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def write_json(path: str | Path, data) -> Path:
    """JSON with numpy values converted and non-finite numbers as null."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(data), indent=1) + "\n")
    return path


def pr_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]], stem: str | Path, *,
              baseline: float | None = None, title: str = "emVars vs active non-emVars"
              ) -> list[Path]:
    """Precision-recall step curves, one per model: name -> (precision, recall, auPRC).
    `baseline` (share of positives) is drawn as a dashed line."""
    fig, ax = plt.subplots(figsize=(4.2, 4))
    data: dict = {"title": title, "baseline": baseline, "models": {}}
    for name, (precision, recall, auprc) in curves.items():
        ax.step(recall, precision, where="pre", label=f"{name} (auPRC {auprc:.3f})")  # AP steps
        data["models"][name] = {"precision": precision, "recall": recall, "auprc": auprc}
    if baseline is not None:
        ax.axhline(baseline, ls="--", c="grey", lw=1, label=f"random ({baseline:.3f})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.legend(fontsize=7, loc="upper right")
    return _save(fig, stem, data)


def delta_auprc(deltas: np.ndarray, stem: str | Path, *, label: str = "delta auPRC",
                delta: float | None = None, p_value: float | None = None) -> list[Path]:
    """Histogram of bootstrap delta auPRC with zero and the observed delta marked."""
    d = np.asarray(deltas, np.float64)
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    counts, edges, _ = ax.hist(d, bins=40, color="#4C72B0", alpha=0.8)
    ax.axvline(0, c="k", lw=1)
    if delta is not None:
        ax.axvline(delta, c="#C44E52", ls="--", lw=1.2, label=f"observed {delta:+.3f}")
    title = label + (f"  (p = {p_value:.3g})" if p_value is not None else "")
    ax.set(xlabel="delta auPRC", ylabel="bootstrap resamples", title=title)
    if delta is not None:
        ax.legend(fontsize=7)
    return _save(fig, stem, {"label": label, "delta": delta, "p_value": p_value,
                             "deltas": d, "hist_counts": counts, "hist_edges": edges})


def density_scatter(x: np.ndarray, y: np.ndarray, stem: str | Path, *, xlabel: str = "observed",
                    ylabel: str = "predicted", title: str = "", log: bool = False,
                    max_points: int = 20_000, kde_points: int = 5_000, seed: int = 0) -> list[Path]:
    """Scatter coloured by Gaussian KDE density (dense points on top); r (all points) in the
    title. Big inputs draw a seeded random `max_points` subset and fit the KDE on at most
    `kde_points` of them (KDE cost grows with n x fit points); the CSV lists what is drawn."""
    from .metrics import pearson

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if log:
        x, y = np.log1p(np.clip(x, 0, None)), np.log1p(np.clip(y, 0, None))
    r, n_all = pearson(x, y), len(x)
    rng = np.random.default_rng(seed)
    if len(x) > max_points:
        keep = np.sort(rng.choice(len(x), max_points, replace=False))
        x, y = x[keep], y[keep]
    pts = np.vstack([x, y])
    fit = pts if len(x) <= kde_points else pts[:, rng.choice(len(x), kde_points, replace=False)]
    try:
        dens = gaussian_kde(fit)(pts) if len(x) > 2 else np.ones(len(x))
    except np.linalg.LinAlgError:      # all points on a line: density is undefined
        dens = np.ones(len(x))
    order = np.argsort(dens, kind="stable")
    fig, ax = plt.subplots(figsize=(4, 4))
    sc = ax.scatter(x[order], y[order], c=dens[order], s=8, cmap="viridis", linewidths=0)
    fig.colorbar(sc, ax=ax, label="density")
    ax.set(xlabel=xlabel + (" (log1p)" if log else ""), ylabel=ylabel + (" (log1p)" if log else ""),
           title=(title + "  " if title else "") + f"r = {r:.3f}  n = {n_all}")
    return _save(fig, stem, pd.DataFrame({"x": x[order], "y": y[order], "density": dens[order]}))


def subsampling_curve(curve: pd.DataFrame, runs: pd.DataFrame | None, stem: str | Path, *,
                      x: str = "n_libraries", metric: str = "metric",
                      reference: float | None = None, personalized: float | None = None
                      ) -> list[Path]:
    """Mean with 95 % CI band vs number of libraries, each run as a point, and horizontal
    lines for the reference-trained model and the full personalized model. Sizes with a single
    run have no CI: they are drawn hollow and labelled so, never with a zero-width band."""
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    single = curve["single_run"].to_numpy(bool) if "single_run" in curve else curve["n_runs"].to_numpy() == 1
    ax.fill_between(curve[x], curve["ci_low"], curve["ci_high"], color="#4C72B0", alpha=0.2,
                    label="95% CI")
    ax.plot(curve[x], curve["mean"], "-", c="#4C72B0")
    ax.plot(curve[x][~single], curve["mean"][~single], "o", c="#4C72B0", label="mean")
    if single.any():
        ax.plot(curve[x][single], curve["mean"][single], "o", mfc="white", c="#4C72B0",
                label="single run (no CI)")
    if runs is not None and len(runs):
        ax.scatter(runs[x], runs["value"], s=10, c="k", alpha=0.6, zorder=3, label="runs")
    if reference is not None:
        ax.axhline(reference, ls="--", c="#C44E52", label="reference-trained")
    if personalized is not None:
        ax.axhline(personalized, ls="--", c="#55A868", label="personalized (all)")
    ax.set(xlabel="training libraries", ylabel=metric)
    ax.legend(fontsize=7)
    return _save(fig, stem, {"metric": metric, "curve": curve.to_dict(orient="list"),
                             "runs": None if runs is None else runs.to_dict(orient="list"),
                             "reference": reference, "personalized": personalized})

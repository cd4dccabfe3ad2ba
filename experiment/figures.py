"""The demo's own figures: QTL scatters on log axes (L2 scores are heavy-tailed) with Pearson
and Spearman, and subsampling points marked as the single runs they are. Each figure is saved
as PNG + SVG with the numbers it draws beside it (JSON), like evaluation.figures."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, stem: Path, data: dict) -> list[Path]:
    from .jsonio import _clean

    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg"), stem.with_suffix(".json")]
    fig.savefig(paths[0], dpi=120, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    paths[2].write_text(json.dumps(_clean(data), indent=1) + "\n")
    return paths


def qtl_scatter(obs: np.ndarray, pred: np.ndarray, stem: Path, *, title: str) -> list[Path]:
    """Predicted vs observed L2 score on log-log axes, coloured by point density (KDE in log
    space); Pearson r (the rule's metric) and Spearman rho (robust to the heavy tail) in the
    title; points with a zero score cannot sit on log axes and are counted in the title."""
    from scipy.stats import gaussian_kde
    from evaluation.metrics import pearson, spearman

    obs, pred = np.asarray(obs, np.float64), np.asarray(pred, np.float64)
    ok = np.isfinite(obs) & np.isfinite(pred)
    obs, pred = obs[ok], pred[ok]
    r, rho = pearson(pred, obs), spearman(pred, obs)
    pos = (obs > 0) & (pred > 0)
    x, y = obs[pos], pred[pos]
    lx, ly = np.log10(x), np.log10(y)
    try:
        dens = gaussian_kde(np.vstack([lx, ly]))(np.vstack([lx, ly])) if len(x) > 2 \
            else np.ones(len(x))
    except np.linalg.LinAlgError:
        dens = np.ones(len(x))
    order = np.argsort(dens, kind="stable")
    fig, ax = plt.subplots(figsize=(4.6, 4), layout="constrained")
    sc = ax.scatter(x[order], y[order], c=dens[order], s=9, cmap="viridis", linewidths=0)
    if len(x):
        ax.set(xscale="log", yscale="log")
    else:
        ax.text(0.5, 0.5, "no QTL with both scores > 0", ha="center", transform=ax.transAxes)
    ax.set(xlabel="observed L2 score (RPM)", ylabel="predicted L2 score")
    cb = fig.colorbar(sc, ax=ax, pad=0.02)
    cb.set_label("point density (log space)", rotation=270, labelpad=14)
    zero = int((~pos).sum())
    ax.set_title(f"{title}\nPearson r = {r:.3f}, Spearman \u03c1 = {rho:.3f}, n = {len(obs)}"
                 + (f" ({zero} at 0 not drawn)" if zero else ""), fontsize=9)
    return _save(fig, stem, {"title": title, "pearson_r": r, "spearman_r": rho, "n": len(obs),
                             "not_drawn_zero": zero, "x_observed_l2": x[order].tolist(),
                             "y_predicted_l2": y[order].tolist(), "density": dens[order].tolist()})


def subsampling_points(points: list[dict], stem: Path, *, metric: str,
                       lines: dict[str, dict]) -> list[Path]:
    """One hollow marker per subsampled model (each a single run: one seed, one draw; no
    mean or CI can be drawn from one point) and, for the all-library ensembles, a line at the
    ensemble's value with a band spanning its members' values."""
    fig, ax = plt.subplots(figsize=(4.8, 3.6), layout="constrained")
    if points:
        ax.scatter([p["n_libraries"] for p in points], [p["value"] for p in points],
                   facecolors="none", edgecolors="k", s=30, zorder=3,
                   label="subsampled: single run (1 seed, 1 draw)")
    colours = {"personalized": "#55A868", "reference": "#C44E52"}
    for name, v in lines.items():
        c = colours.get(name, "grey")
        if v.get("value") is not None and np.isfinite(v["value"]):
            ax.axhline(v["value"], ls="--", c=c, label=f"{name} ensemble ({v['n']} seeds)")
        m = [x for x in (v.get("members") or []) if x is not None and np.isfinite(x)]
        if len(m) > 1:
            ax.axhspan(min(m), max(m), color=c, alpha=0.15, label=f"{name}: member range")
    ax.set(xlabel="training libraries", ylabel=metric)
    ax.legend(fontsize=6)
    return _save(fig, stem, {"metric": metric, "points": points, "lines": lines})

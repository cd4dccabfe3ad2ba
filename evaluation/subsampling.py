"""Subsampling curves: a metric against the number of training libraries.

    from evaluation import subsampling
    runs = pd.DataFrame({"n_libraries": [5, 5, 10, 10, ...], "run": [0, 1, ...],
                         "value": [0.41, 0.45, ...]})
    curve = subsampling.summarise(runs)   # n_libraries, n_runs, mean, sd, ci_low, ci_high
    subsampling.run(runs, "out/", metric="auPRC", reference=0.3, personalized=0.5)  # + figure

One row per training run (the paper draws 5 random sets of libraries per size). The 95 %
confidence interval of the mean is Student-t: mean +/- t(0.975, k - 1) * sd / sqrt(k). A size
with one run has no interval: its sd and CI are NaN and `single_run` is True, and the figure
draws it as a hollow marker labelled "single run (no CI)" instead of a zero-width band.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats


def summarise(runs: pd.DataFrame, *, x: str = "n_libraries", y: str = "value",
              level: float = 0.95) -> pd.DataFrame:
    """Mean and `level` CI of `y` per value of `x` (NaN values dropped), sorted by x."""
    if x not in runs or y not in runs:
        raise ValueError(f"runs need columns {x!r} and {y!r}")
    rows = []
    for n, g in runs.groupby(x, sort=True):
        v = g[y].to_numpy(np.float64)
        v = v[np.isfinite(v)]
        k = len(v)
        mean = v.mean() if k else np.nan
        sd = v.std(ddof=1) if k > 1 else np.nan
        half = stats.t.ppf(0.5 + level / 2, k - 1) * sd / np.sqrt(k) if k > 1 else np.nan
        rows.append({x: n, "n_runs": k, "mean": mean, "sd": sd,
                     "ci_low": mean - half, "ci_high": mean + half, "single_run": k == 1})
    return pd.DataFrame(rows)


def collect(results: list[dict], *, metric: str, x: str = "n_libraries") -> pd.DataFrame:
    """Rows of {x, "run", metric: ...} (e.g. one metrics dict per trained model) -> runs table."""
    rows = [{x: r[x], "run": r.get("run", i), "value": r[metric]} for i, r in enumerate(results)]
    return pd.DataFrame(rows)


def run(runs: pd.DataFrame, out_dir: str | Path, *, metric: str, name: str = "subsampling",
        x: str = "n_libraries", y: str = "value", reference: float | None = None,
        personalized: float | None = None) -> pd.DataFrame:
    """`summarise` and write NAME_curve.csv, NAME_runs.csv and the curve figure (NAME.*) with
    the reference-trained and full personalized models as horizontal lines."""
    from . import figures

    curve = summarise(runs, x=x, y=y)
    o = Path(out_dir)
    o.mkdir(parents=True, exist_ok=True)
    curve.to_csv(o / f"{name}_curve.csv", index=False)
    runs.to_csv(o / f"{name}_runs.csv", index=False)
    figures.subsampling_curve(curve, runs.rename(columns={y: "value"}), o / name, x=x,
                              metric=metric, reference=reference, personalized=personalized)
    return curve

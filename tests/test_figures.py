"""Figures: PNG + SVG + the numbers plotted, which must equal the inputs (and scipy's KDE)."""
from __future__ import annotations

import json

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from scipy.stats import gaussian_kde
from sklearn.metrics import precision_recall_curve

from evaluation import figures, mpra, subsampling


def _check_files(paths, data_suffix):
    assert [p.suffix for p in paths] == [".png", ".svg", data_suffix]
    img = mpimg.imread(paths[0])
    assert img.ndim == 3 and img.shape[0] > 100
    assert paths[1].read_text().lstrip().startswith("<?xml")


def test_pr_curves_data_is_the_curve(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.random(50) < 0.3
    s = rng.random(50)
    p, r, _ = mpra.pr_curve(y, s)
    paths = figures.pr_curves({"m": (p, r, mpra.average_precision(y, s))}, tmp_path / "pr", baseline=y.mean())
    _check_files(paths, ".json")
    data = json.loads(paths[2].read_text())
    sp, sr, _ = precision_recall_curve(y, s)
    np.testing.assert_allclose(data["models"]["m"]["precision"][::-1], sp)
    np.testing.assert_allclose(data["models"]["m"]["recall"][::-1], sr)
    assert data["baseline"] == pytest.approx(y.mean())


def test_delta_histogram_counts(tmp_path):
    d = np.random.default_rng(1).normal(0.05, 0.02, 300)
    paths = figures.delta_auprc(d, tmp_path / "delta", delta=0.05, p_value=0.02)
    _check_files(paths, ".json")
    data = json.loads(paths[2].read_text())
    counts, edges = np.histogram(d, bins=40)
    assert data["hist_counts"] == counts.tolist()
    np.testing.assert_allclose(data["hist_edges"], edges)
    assert len(data["deltas"]) == 300


def test_density_scatter_matches_scipy_kde(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=200)
    y = x + rng.normal(scale=0.5, size=200)
    x[0] = np.nan
    paths = figures.density_scatter(x, y, tmp_path / "sc")
    _check_files(paths, ".csv")
    got = pd.read_csv(paths[2])
    ok = np.isfinite(x)
    dens = gaussian_kde(np.vstack([x[ok], y[ok]]))(np.vstack([x[ok], y[ok]]))
    assert len(got) == ok.sum()
    want = pd.DataFrame({"x": x[ok], "y": y[ok], "density": dens}).sort_values(["x"]).reset_index(drop=True)
    got = got.sort_values(["x"]).reset_index(drop=True)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-9)
    assert (np.diff(pd.read_csv(paths[2])["density"]) >= 0).all()        # dense points drawn last


def test_subsampling_curve_numbers(tmp_path):
    runs = pd.DataFrame({"n_libraries": [5, 5, 10, 10], "value": [0.3, 0.4, 0.5, 0.55]})
    curve = subsampling.summarise(runs)
    paths = figures.subsampling_curve(curve, runs, tmp_path / "sub", metric="auPRC",
                                      reference=0.2, personalized=0.6)
    _check_files(paths, ".json")
    data = json.loads(paths[2].read_text())
    assert data["curve"]["mean"] == pytest.approx([0.35, 0.525])
    assert data["runs"]["value"] == [0.3, 0.4, 0.5, 0.55]
    assert (data["reference"], data["personalized"]) == (0.2, 0.6)


def test_density_scatter_caps_points(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.normal(size=3000)
    paths = figures.density_scatter(x, 2 * x + rng.normal(size=3000), tmp_path / "big",
                                    max_points=500, kde_points=100)
    got = pd.read_csv(paths[2])
    assert len(got) == 500 and np.isin(got["x"], x).all()

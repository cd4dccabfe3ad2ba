"""Small statistics every benchmark shares (one definition, no circles: crossloci, figures,
qtl, mpra and score all import from here and this imports none of them)."""
from __future__ import annotations

import numpy as np
from scipy import stats


def _correlation(a: np.ndarray, b: np.ndarray, fn) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return float("nan")
    return float(fn(a[ok], b[ok])[0])


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r over finite pairs; NaN with fewer than 3 pairs or a constant side."""
    return _correlation(a, b, stats.pearsonr)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rho over finite pairs; NaN with fewer than 3 pairs or a constant side."""
    return _correlation(a, b, stats.spearmanr)


def directionality(profile: np.ndarray) -> np.ndarray:
    """log1p(plus-strand sum) - log1p(minus-strand sum) per row."""
    profile = np.asarray(profile, np.float64)
    half = profile.shape[1] // 2
    return np.log1p(profile[:, :half].sum(1)) - np.log1p(profile[:, half:].sum(1))
